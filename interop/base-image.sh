#!/usr/bin/env bash
# Builds the local Debian bookworm base image of the lab, since the machines of this
# project have no image registry: debootstrap from the configured Debian mirror, then
# `docker import`. Cached: nothing is done when the image exists.
#
#   interop/base-image.sh [IMAGE]      (default pecd-lab-base:bookworm)
#
# The image carries what the lab's services run: OpenSSL and the CA bundle (pecd),
# Postfix (the ordinary mail server), clamd (antivirus), dnsmasq (the lab's DNS) and
# PostgreSQL (the HA profile). Users build the pecd image on debian:bookworm-slim.
set -euo pipefail
image=${1:-pecd-lab-base:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image: present"
    exit 0
fi
command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
# The mirror apt uses on this machine (deb822 or one-line sources), else Debian's.
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null \
    | head -1 | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/pecd-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
packages=ca-certificates,libssl3,openssl,postfix,clamav-daemon,dnsmasq-base,postgresql-15,iproute2,procps,python3
echo "building $image with debootstrap from $mirror (a few minutes)"
DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include="$packages" \
    bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# No daemon of the packages starts by itself in a container; drop caches and logs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base image $image: built"

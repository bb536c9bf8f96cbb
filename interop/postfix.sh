#!/usr/bin/env bash
# A private Postfix on loopback: the ordinary mail server of the lab (posta.ordinaria.test).
# It delivers what it receives for its domain to a Maildir and relays to the gestori
# through a static transport map.
#
#   postfix.sh up DIR PORT [DOMAIN=HOST:PORT ...]   start (DIR is created)
#   postfix.sh down DIR                             stop
#   postfix.sh status DIR                           exit 0 when running
#
# The Maildir is DIR/mail/ordinaria/ (one Maildir for every address of the domain).
# Facts behind the settings: shared/notes/postfix-on-loopback.md.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,10p' "$0"; exit 2; }

case "$cmd" in
up)
    # Postfix's daemons run as `postfix` and read what is made here: whatever the caller's
    # umask (pecd's own is 077), the tree must be readable by them.
    umask 022
    port=${3:?port}
    shift 3
    command -v postfix >/dev/null || { echo "postfix is not installed (apt-get install postfix)" >&2; exit 1; }
    dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
    mkdir -p "$dir/conf" "$dir/queue" "$dir/mail"
    cp /etc/postfix/master.cf "$dir/conf/master.cf"
    : > "$dir/conf/main.cf"
    : > "$dir/conf/transport"
    for route in "$@"; do
        domain=${route%%=*}
        target=${route#*=}
        echo "$domain smtp:[${target%:*}]:${target##*:}" >> "$dir/conf/transport"
    done
    chown -R nobody:nogroup "$dir/mail"
    pc() { postconf -c "$dir/conf" "$@"; }
    pc -e "queue_directory = $dir/queue" \
        "data_directory = $dir/data" \
        "maillog_file_prefixes = /var, /dev/stdout, $dir" \
        "maillog_file = $dir/postfix.log" \
        "inet_interfaces = 127.0.0.1" \
        "inet_protocols = ipv4" \
        "mynetworks = 127.0.0.0/8" \
        "myhostname = mx.posta.ordinaria.test" \
        "mydomain = posta.ordinaria.test" \
        "mydestination =" \
        "local_transport = error:no local delivery in the lab" \
        "virtual_mailbox_domains = posta.ordinaria.test" \
        "virtual_mailbox_base = $dir/mail" \
        "virtual_mailbox_maps = static:ordinaria/" \
        "virtual_uid_maps = static:$(id -u nobody)" \
        "virtual_gid_maps = static:$(id -g nobody)" \
        "transport_maps = texthash:$dir/conf/transport" \
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
        "smtp_tls_security_level = may" \
        "smtp_tls_CAfile = ${POSTFIX_CAFILE:-}" \
        "smtpd_tls_security_level = none" \
        "compatibility_level = 3.6" \
        "maximal_queue_lifetime = 1h" \
        "bounce_queue_lifetime = 1h" \
        "message_size_limit = 52428800" \
        "virtual_mailbox_limit = 0"
    pc -F '*/*/chroot = n'
    # Listen on the lab port instead of 25.
    sed -i -E "s/^smtp[[:space:]]+inet[[:space:]].*smtpd$/127.0.0.1:$port inet n - n - - smtpd/" "$dir/conf/master.cf"
    grep -q "^127.0.0.1:$port inet" "$dir/conf/master.cf" || { echo "cannot set the listener in master.cf" >&2; exit 1; }
    postfix -c "$dir/conf" start >/dev/null 2>&1 || script -qec "postfix -c $dir/conf start" /dev/null
    ;;
down)
    [ -d "$dir/conf" ] && postfix -c "$dir/conf" stop >/dev/null 2>&1 || true
    ;;
status)
    postfix -c "$dir/conf" status >/dev/null 2>&1
    ;;
*)
    sed -n '2,10p' "$0"; exit 2 ;;
esac

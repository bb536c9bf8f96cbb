#!/usr/bin/env bash
# The docker-compose lab (interop/compose.yaml): gestore alfa (pec.alfa.test), gestore
# beta (pec.beta.test, pec.comune.beta.test), Postfix as posta.ordinaria.test, clamd and a
# DNS server (dnsmasq) serving the lab zones with MX records, each on its own address of
# a private network. Same mailboxes and passwords as interop/lab.sh.
#
#   interop/compose.sh up [--ha]  build what is missing, start everything, wait until it answers
#   interop/compose.sh down       stop and remove the containers and the network
#   interop/compose.sh status     what is running
#   interop/compose.sh test       PEC both ways, receipts, beta stopped and cut off mid-stream;
#                                 with the HA profile up, also one alfa node killed under load
#
# --ha: the HA profile, alfa as two nodes (the second publishes 12465 and 12993) on one
# PostgreSQL container.
#
# Published on the host's loopback: alfa submission TLS 11465, IMAPS 11993, HTTP 11080;
# beta submission TLS 21465, IMAPS 21993. The lab CA: interop/.compose/ca.pem.
# Environment: PECD (the pecd binary; default target/release/pecd when present, else a
# debug build, rebuilt when stale), LAB_NET (the first three octets of the network,
# default 10.89.99), PECD_UID (the uid pecd runs as in the image, default 10025),
# LAB_PROJECT (the compose project and image name, default pecd-lab) and the published
# ports LAB_ALFA_SMTP, LAB_ALFA_IMAP, LAB_ALFA_HTTP, LAB_BETA_SMTP, LAB_BETA_IMAP,
# LAB_ALFA2_SMTP, LAB_ALFA2_IMAP (defaults above): two labs can then run side by side.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lab="$here/.compose"
export LAB_NET=${LAB_NET:-10.89.99}
export LAB_PROJECT=${LAB_PROJECT:-pecd-lab}
export LAB_IMAGE="$LAB_PROJECT:latest"
export LAB_ALFA_SMTP=${LAB_ALFA_SMTP:-11465} LAB_ALFA_IMAP=${LAB_ALFA_IMAP:-11993}
export LAB_ALFA_HTTP=${LAB_ALFA_HTTP:-11080}
export LAB_BETA_SMTP=${LAB_BETA_SMTP:-21465} LAB_BETA_IMAP=${LAB_BETA_IMAP:-21993}
export LAB_ALFA2_SMTP=${LAB_ALFA2_SMTP:-12465} LAB_ALFA2_IMAP=${LAB_ALFA2_IMAP:-12993}
uid=${PECD_UID:-10025}
base=pecd-lab-base:bookworm
# Compose v2 (the docker plugin) when present, else Debian's docker-compose.
if docker compose version >/dev/null 2>&1; then
    export LAB_COMPOSE="docker compose"
else
    export LAB_COMPOSE="docker-compose"
fi
compose() { $LAB_COMPOSE -p "$LAB_PROJECT" -f "$here/compose.yaml" "$@"; }

# The binary to ship: an explicit PECD, else the release build when present, else the
# debug build (cargo rebuilds it when a source changed).
binary() {
    if [ -n "${PECD:-}" ]; then
        realpath "$PECD"
    elif [ -x "$root/target/release/pecd" ]; then
        (cd "$root" && cargo build -q --release -p pecd)
        echo "$root/target/release/pecd"
    else
        (cd "$root" && cargo build -q -p pecd)
        echo "$root/target/debug/pecd"
    fi
}

config() { # node gestore-id name domains mailboxes accept_ordinary [store-url]
    local node=$1 id=$2 name=$3 domains=$4 mailboxes=$5 ordinary=$6 url=${7:-}
    cat > "$lab/$node.toml" <<TOML
[gestore]
name = "$name"
hostname = "mx.pec.$id.test"
data_dir = "/lab/$node-data"
domains = [$domains]

[certificates]
dir = "/lab"
id = "$id"
TOML
    if [ -n "$url" ]; then
        cat >> "$lab/$node.toml" <<TOML

[store]
url = "$url"
connections = 4
lease_secs = 10
TOML
    fi
    cat >> "$lab/$node.toml" <<TOML

[listen]
submission_tls = "0.0.0.0:465"
submission = "0.0.0.0:587"
mx = "0.0.0.0:25"
imaps = "0.0.0.0:993"
imap = "0.0.0.0:143"
pop3s = "0.0.0.0:995"
http = "0.0.0.0:80"

[policy]
accept_ordinary = [$ordinary]

[dns]
resolver = "$LAB_NET.2:53"
mx_port = 25

[antivirus]
clamd = "$LAB_NET.3:3310"

[queue]
retry_base_secs = 2
retry_max_secs = 10

[lab]
mailboxes = [$mailboxes]
TOML
}

write_lab() {
    local pecd=$1 ha=$2 url="" nodes=(alfa beta)
    mkdir -p "$lab/clamd-db"
    if [ ! -f "$lab/ca.pem" ]; then
        "$pecd" certs init --dir "$lab" \
            --gestore "alfa=pec.alfa.test:Alfa PEC (lab)" \
            --gestore "beta=pec.beta.test,pec.comune.beta.test:Beta PEC (lab)" >/dev/null
    fi
    rm -f "$lab/ha" "$lab/alfa2.toml"
    if [ "$ha" = 1 ]; then
        [ -f "$lab/postgres.password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$lab/postgres.password"
        url="postgresql://pecd:$(cat "$lab/postgres.password")@$LAB_NET.6:5432/pecd"
        nodes+=(alfa2)
        touch "$lab/ha"
    fi
    local alfa=("Alfa PEC (lab)" '"pec.alfa.test"' '"mario.rossi@pec.alfa.test"' '')
    config alfa alfa "${alfa[@]}" "$url"
    if [ "$ha" = 1 ]; then config alfa2 alfa "${alfa[@]}" "$url"; fi
    config beta beta "Beta PEC (lab)" '"pec.beta.test", "pec.comune.beta.test"' \
        '"anna.bianchi@pec.beta.test", "luca.verdi@pec.beta.test", "ufficio.protocollo@pec.comune.beta.test"' \
        '"pec.comune.beta.test"'
    cat > "$lab/dnsmasq.conf" <<CONF
# The lab's zones: answered here, never forwarded.
no-resolv
no-hosts
local=/test/
log-queries
log-facility=-
mx-host=pec.alfa.test,mx.pec.alfa.test,10
mx-host=pec.beta.test,mx.pec.beta.test,10
mx-host=pec.comune.beta.test,mx.pec.beta.test,10
mx-host=posta.ordinaria.test,mx.posta.ordinaria.test,10
host-record=mx.pec.alfa.test,$LAB_NET.10
host-record=mx.pec.beta.test,$LAB_NET.20
host-record=mx.posta.ordinaria.test,$LAB_NET.4
CONF
    # The second alfa node: a second MX under a name alfa's TLS certificate carries.
    if [ "$ha" = 1 ]; then
        printf 'mx-host=pec.alfa.test,mail.pec.alfa.test,10\nhost-record=mail.pec.alfa.test,%s\n' \
            "$LAB_NET.11" >> "$lab/dnsmasq.conf"
    fi
    # clamd with one offline signature (the EICAR test string): no download needed.
    printf 'Eicar-Test-Signature:0:*:%s\n' \
        "$(printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' | od -An -tx1 | tr -d ' \n')" \
        > "$lab/clamd-db/pec-lab.ndb"
    cat > "$lab/clamd.conf" <<CONF
DatabaseDirectory /lab/clamd-db
TCPSocket 3310
TCPAddr 0.0.0.0
Foreground yes
User root
CONF
    cp "$here/compose/postfix-start.sh" "$here/compose/postgres-start.sh" "$lab/"
    # Public files readable by pecd's user in the containers; the CA key stays root's.
    chmod 644 "$lab/ca.pem" "$lab/index.ldif"
    for node in "${nodes[@]}"; do
        mkdir -p "$lab/$node-data"
        chmod 700 "$lab/$node-data"
        chown -R "$uid" "$lab/$node-data"
    done
    chown -R "$uid" "$lab/alfa" "$lab/beta"
}

build_images() {
    local pecd=$1
    "$here/base-image.sh" "$base"
    case "$pecd" in
    "$root"/*) ;;
    *) echo "PECD must be inside $root (the image's build context)" >&2; exit 1 ;;
    esac
    docker build -q -t "$LAB_IMAGE" --build-arg "BASE=$base" --build-arg "UID=$uid" \
        --build-arg "PECD=${pecd#"$root"/}" "$root" >"$lab/build.log" 2>&1 \
        || { cat "$lab/build.log" >&2; exit 1; }
}

# Waits until each published service answers with its greeting over TLS, or fails
# naming the one that does not (and shows its log).
wait_ready() {
    python3 - "$lab/ca.pem" "$1" <<'PY'
import os, socket, ssl, subprocess, sys, time
ca = sys.argv[1]
def exited():
    out = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" + os.environ["LAB_PROJECT"],
                          "--filter", "status=exited"], capture_output=True, text=True).stdout
    return bool(out.strip())
port = lambda name: int(os.environ[name])
services = [("alfa", port("LAB_ALFA_SMTP"), b"220"), ("alfa", port("LAB_ALFA_IMAP"), b"* OK"),
            ("beta", port("LAB_BETA_SMTP"), b"220"), ("beta", port("LAB_BETA_IMAP"), b"* OK")]
if sys.argv[2] == "1":
    services += [("alfa2", port("LAB_ALFA2_SMTP"), b"220"), ("alfa2", port("LAB_ALFA2_IMAP"), b"* OK")]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
deadline = time.monotonic() + 180
for name, port, greeting in services:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw) as tls:
                    if tls.recv(64).startswith(greeting):
                        break
        except OSError:
            pass
        if time.monotonic() > deadline or exited():
            print(f"{name} does not answer on 127.0.0.1:{port}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.5)
PY
}

up() {
    command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }
    local pecd ha=0
    [ "${1:-}" = "--ha" ] && ha=1
    pecd=$(binary)
    mkdir -p "$lab"
    write_lab "$pecd" "$ha"
    build_images "$pecd"
    if [ "$ha" = 1 ]; then
        # The database first: the nodes need it at start.
        compose --profile ha up -d postgres >"$lab/up.log" 2>&1 || { cat "$lab/up.log" >&2; exit 1; }
        local deadline=$((SECONDS + 120))
        until compose exec -T postgres su postgres -s /bin/sh -c \
            "/usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -d pecd" 2>/dev/null; do
            [ $SECONDS -lt $deadline ] || { compose logs --no-color postgres >&2; exit 1; }
            sleep 0.5
        done
        compose --profile ha up -d >>"$lab/up.log" 2>&1 || { cat "$lab/up.log" >&2; exit 1; }
    else
        compose up -d >"$lab/up.log" 2>&1 || { cat "$lab/up.log" >&2; exit 1; }
    fi
    if ! wait_ready "$ha"; then
        compose ps >&2
        compose logs --no-color --tail 30 >&2
        exit 1
    fi
    echo "compose lab up: alfa ($LAB_ALFA_SMTP, $LAB_ALFA_IMAP, $LAB_ALFA_HTTP), beta ($LAB_BETA_SMTP, $LAB_BETA_IMAP) on 127.0.0.1; CA $lab/ca.pem"
    [ "$ha" = 0 ] || echo "HA profile: second alfa node ($LAB_ALFA2_SMTP, $LAB_ALFA2_IMAP), alfa's store in PostgreSQL"
}

down() {
    compose --profile ha down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || true
    rm -f "$lab/ha"
    # A lab under a project name of its own (a test run's) takes its image with it.
    [ "$LAB_PROJECT" = pecd-lab ] || docker image rm -f "$LAB_IMAGE" >/dev/null 2>&1 || true
    echo "compose lab down"
}

status() {
    compose --profile ha ps
    local expected=5
    [ -f "$lab/ha" ] && expected=7
    [ "$(docker ps -q --filter label=com.docker.compose.project=$LAB_PROJECT --filter status=running | wc -l)" -eq $expected ]
}

case "${1:-}" in
up) up "${2:-}" ;;
down) down ;;
status) status ;;
test) exec python3 "$here/compose_test.py" "$here" ;;
*) sed -n '2,20p' "$0"; exit 2 ;;
esac

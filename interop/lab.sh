#!/usr/bin/env bash
# The interoperability lab on loopback: gestore alfa (pec.alfa.test), gestore beta
# (pec.beta.test, pec.comune.beta.test) sharing one lab CA and provider index, and Postfix
# as the ordinary mail server of posta.ordinaria.test. See interop/README.md.
#
#   interop/lab.sh up       build pecd if needed, start everything, return once all answer
#   interop/lab.sh down     stop everything (state stays in interop/.lab)
#   interop/lab.sh status   what is running
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lab="$here/.lab"
pecd="${PECD:-$root/target/debug/pecd}"
# The default binary is rebuilt when a source changed (cargo does nothing otherwise).
[ -n "${PECD:-}" ] || (cd "$root" && cargo build -q -p pecd)

ports_alfa=(10465 10587 10025 10993 10143 10995 10443)
ports_beta=(20465 20587 20025 20993 20143 20995 20443)
port_postfix=30025

config() { # id name domains mailboxes listen-prefix accept_ordinary [extra TOML]
    local id=$1 name=$2 domains=$3 mailboxes=$4 p=$5 ordinary=$6 extra=${7:-}
    cat > "$lab/$id.toml" <<TOML
[gestore]
name = "$name"
hostname = "mx.pec.$id.test"
data_dir = "$id-data"
domains = [$domains]

[certificates]
dir = "."
id = "$id"

[listen]
submission_tls = "127.0.0.1:${p}465"
submission = "127.0.0.1:${p}587"
mx = "127.0.0.1:${p}025"
imaps = "127.0.0.1:${p}993"
imap = "127.0.0.1:${p}143"
pop3s = "127.0.0.1:${p}995"
https = "127.0.0.1:${p}443"

[policy]
accept_ordinary = [$ordinary]

[dns]
resolver = "off"

[queue]
retry_base_secs = 30
retry_max_secs = 300

[routes]
"pec.alfa.test" = "127.0.0.1:10025"
"pec.beta.test" = "127.0.0.1:20025"
"pec.comune.beta.test" = "127.0.0.1:20025"
"posta.ordinaria.test" = "127.0.0.1:$port_postfix"

[lab]
mailboxes = [$mailboxes]
$extra
TOML
}

wait_ports() {
    local deadline=$((SECONDS + 60))
    for port in "$@"; do
        until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
            if [ $SECONDS -gt $deadline ]; then echo "port $port does not answer" >&2; return 1; fi
            sleep 0.2
        done
    done
}

running() { [ -f "$lab/$1.pid" ] && kill -0 "$(cat "$lab/$1.pid")" 2>/dev/null; }

up() {
    mkdir -p "$lab"
    if [ ! -f "$lab/ca.pem" ]; then
        "$pecd" certs init --dir "$lab" \
            --gestore "alfa=pec.alfa.test:Alfa PEC (lab)" \
            --gestore "beta=pec.beta.test,pec.comune.beta.test:Beta PEC (lab)" >/dev/null
    fi
    config alfa "Alfa PEC (lab)" '"pec.alfa.test"' '"mario.rossi@pec.alfa.test"' 10 ''
    config beta "Beta PEC (lab)" '"pec.beta.test", "pec.comune.beta.test"' \
        '"anna.bianchi@pec.beta.test", "luca.verdi@pec.beta.test", "ufficio.protocollo@pec.comune.beta.test"' \
        20 '"pec.comune.beta.test"' '
# The municipality'"'"'s protocol office: PDF, PDF/A, RTF, TIFF, XML and their .p7m;
# a PEC with anything else is delivered with the IMAP keyword $NonConforme, and its
# sender gets a ripudio from the office.
[[protocol_office]]
mailbox = "ufficio.protocollo@pec.comune.beta.test"
formats = ["pdf", "pdf/a", "rtf", "tiff", "xml"]
signed = true
ripudio = true
# Nothing needs to listen there: undelivered events wait in the store and are retried.
webhook = "http://127.0.0.1:39080/hook"
webhook_secret = "lab-hook-secret"'
    for id in alfa beta; do
        if ! running "$id"; then
            "$pecd" --config "$lab/$id.toml" serve >>"$lab/$id.log" 2>&1 &
            echo $! > "$lab/$id.pid"
        fi
    done
    if ! "$here/postfix.sh" status "$lab/postfix"; then
        POSTFIX_CAFILE="$lab/ca.pem" "$here/postfix.sh" up "$lab/postfix" "$port_postfix" \
            pec.alfa.test=127.0.0.1:10025 pec.beta.test=127.0.0.1:20025 \
            pec.comune.beta.test=127.0.0.1:20025
    fi
    wait_ports "${ports_alfa[@]}" "${ports_beta[@]}" "$port_postfix"
    # A port that answers may belong to another program: each gestore must still run.
    for id in alfa beta; do
        if ! running "$id"; then
            echo "gestore $id did not start; the end of $lab/$id.log:" >&2
            tail -5 "$lab/$id.log" >&2
            exit 1
        fi
    done
    echo "lab up: alfa (10xxx), beta (20xxx), postfix (30025); CA $lab/ca.pem"
}

down() {
    for id in alfa beta; do
        if running "$id"; then
            kill -TERM "$(cat "$lab/$id.pid")"
            for _ in $(seq 50); do running "$id" || break; sleep 0.2; done
        fi
        rm -f "$lab/$id.pid"
    done
    "$here/postfix.sh" down "$lab/postfix"
    echo "lab down"
}

status() {
    local rc=0
    for id in alfa beta; do
        if running "$id"; then echo "$id: running (pid $(cat "$lab/$id.pid"))"; else echo "$id: stopped"; rc=1; fi
    done
    if "$here/postfix.sh" status "$lab/postfix" 2>/dev/null; then echo "postfix: running"; else echo "postfix: stopped"; rc=1; fi
    return $rc
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*) sed -n '2,9p' "$0"; exit 2 ;;
esac

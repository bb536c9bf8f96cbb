#!/usr/bin/env bash
# Runs Dovecot's imaptest (scripted tests, then stress mode) against a private Dovecot
# and against a lab pecd, both on loopback, and leaves the reports in an output
# directory. See docs/IMAPTEST.md.
#
#   interop/imaptest.sh /path/to/imaptest /path/to/imaptest/src/tests [OUT_DIR]
#
# Skips (exit 0) when the imaptest binary or its tests directory is missing.
# Needs: dovecot-imapd (for the Dovecot side), python3, a release pecd
# (cargo build --release -p pecd; CARGO_TARGET_DIR is honoured).
# Environment: SECS (stress duration, default 30), CLIENTS (default 10), PECD (the pecd
# binary, default the release one), SERVERS (default "dovecot pecd": which to run),
# ONLY (test file names, e.g. "notify select": only these, and no stress run).
set -euo pipefail

IMAPTEST=${1:-${IMAPTEST:-}}
TESTS=${2:-${IMAPTEST_TESTS:-}}
OUT=${3:-$(mktemp -d /tmp/imaptest-run.XXXXXX)}
SECS=${SECS:-30}
SERVERS=${SERVERS:-dovecot pecd}
ONLY=${ONLY:-}
CLIENTS=${CLIENTS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PECD=${PECD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/pecd}

if [[ -z "$IMAPTEST" || ! -x "$IMAPTEST" ]]; then
    echo "imaptest: no imaptest binary given (see docs/IMAPTEST.md), skipping"
    exit 0
fi
if [[ -z "$TESTS" || ! -d "$TESTS" ]]; then
    echo "imaptest: no scripted tests directory (imaptest's src/tests) given, skipping"
    exit 0
fi
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# An mbox of messages for stress-mode APPENDs: imaptest's own default.mbox when present,
# else generated.
MBOX=$OUT/stress.mbox
if [[ -f "$TESTS/default.mbox" ]]; then
    cp "$TESTS/default.mbox" "$MBOX"
else
    python3 - "$MBOX" <<'EOF'
import sys
with open(sys.argv[1], "w", newline="") as f:
    for i in range(300):
        f.write(f"From sender{i}@example.test Mon Jan  1 00:00:00 2024\n"
                f"From: Sender {i} <sender{i}@example.test>\nTo: box@example.test\n"
                f"Subject: message {i}\nMessage-ID: <{i}@example.test>\n"
                f"Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n" + ("line of body text\n" * (i % 40 + 1)) + "\n")
EOF
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run_imaptest() { # name host port user pass [extra args...]
    local name=$1 host=$2 port=$3 user=$4 pass=$5
    shift 5
    echo "== $name: scripted tests, one file at a time"
    # imaptest's summary never counts the groups it skips for a capability the server
    # does not announce: one run per file, and a group whose command totals are all 0
    # counts as skipped. The broken/ directory holds tests imaptest itself disowns.
    : >"$OUT/$name-scripted.log"
    for file in "$TESTS"/*; do
        [[ -f $file && $file != *.mbox ]] || continue
        [[ -z $ONLY || " $ONLY " == *" $(basename "$file") "* ]] || continue
        echo "=== $(basename "$file")" >>"$OUT/$name-scripted.log"
        timeout 120 "$IMAPTEST" host="$host" port="$port" user="$user" pass="$pass" \
            test="$file" "$@" >>"$OUT/$name-scripted.log" 2>&1 || true
    done
    python3 - "$OUT/$name-scripted.log" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
executed, skipped, failed = [], [], []
for block in re.split(r"^=== ", text, flags=re.M)[1:]:
    name = block.split("\n", 1)[0].strip()
    totals = re.search(r"base protocol: (\d+)/(\d+).*?extensions: (\d+)/(\d+)", block, re.S)
    groups = re.search(r"(\d+) failed,", block)
    bad = groups is None or groups.group(1) != "0"
    if totals and totals.group(2) == "0" and totals.group(4) == "0" and not bad:
        skipped.append(name)
    else:
        executed.append(name)
        if bad:
            failed.append(name)
print(f"{len(executed)} executed, {len(skipped)} skipped, {len(failed)} failed: {' '.join(failed)}")
print(f"skipped: {' '.join(skipped)}")
PY
    [[ -z $ONLY ]] || return 0
    echo "== $name: stress, $CLIENTS clients, $SECS s"
    "$IMAPTEST" host="$host" port="$port" user="$user" pass="$pass" mbox="$MBOX" \
        clients="$CLIENTS" secs="$SECS" "$@" >"$OUT/$name-stress.log" 2>&1 || true
    tail -n 8 "$OUT/$name-stress.log"
}

# --- Dovecot: passwd-file user, Maildir, plain IMAP on a free loopback port.
if [[ " $SERVERS " != *" dovecot "* ]]; then
    :
elif [[ -x /usr/sbin/dovecot ]]; then
    D=$OUT/dovecot
    mkdir -p "$D/run" "$D/mail"
    chmod 755 "$D" "$D/run"
    id imaptestu >/dev/null 2>&1 || useradd -M -d "$D/mail" -s /usr/sbin/nologin imaptestu
    chown imaptestu "$D/mail"
    DPORT=$(free_port)
    echo "imaptest:{PLAIN}pass:$(id -u imaptestu):$(id -g imaptestu)::$D/mail" >"$D/users"
    cat >"$D/dovecot.conf" <<EOF
base_dir = $D/run
state_dir = $D/run
log_path = $D/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 100
passdb {
  driver = passwd-file
  args = scheme=PLAIN $D/users
}
userdb {
  driver = passwd-file
  args = $D/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DPORT
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
    /usr/sbin/dovecot -c "$D/dovecot.conf"
    trap 'kill "$(cat "$D/run/master.pid")" 2>/dev/null || true; cleanup' EXIT
    sleep 1
    run_imaptest dovecot 127.0.0.1 "$DPORT" imaptest pass
else
    echo "dovecot-imapd not installed: Dovecot side skipped"
fi

# --- pecd: the demo config on free ports with a fresh data directory; implicit TLS
# with the lab CA (imaptest's ssl=any-cert: the lab certificate is not for 127.0.0.1).
if [[ " $SERVERS " != *" pecd "* ]]; then
    :
elif [[ -x "$PECD" ]]; then
    P=$OUT/pecd
    mkdir -p "$P"
    conf=$(cat "$ROOT/conf/pecd.toml")
    conf=${conf//..\/data\/demo/$P\/data}
    for key in submission_tls submission mx imaps imap pop3s http https; do
        port=$(free_port)
        conf=$(sed -E "s#^$key = \"127.0.0.1:[0-9]+\"#$key = \"127.0.0.1:$port\"#" <<<"$conf")
        [[ $key == imaps ]] && PPORT=$port
    done
    printf '%s\n' "$conf" >"$P/pecd.toml"
    "$PECD" --config "$P/pecd.toml" serve >"$P/pecd.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $PPORT))" 2>/dev/null && break
        sleep 0.2
    done
    run_imaptest pecd 127.0.0.1 "$PPORT" mario.rossi@pec.demo.test secret-mario.rossi ssl=any-cert
else
    echo "no release pecd at $PECD: pecd side skipped"
fi
echo "reports in $OUT"

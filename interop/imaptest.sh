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
# Environment: SECS (stress duration, default 20), CLIENTS (default 20), PECD (the pecd
# binary, default the release one), SERVERS (default "dovecot pecd": which to run),
# ONLY (test file names, e.g. "notify select": only these, and no stress run),
# STRESS_ONLY (set: the stress runs without the scripted tests).
#
# The comparison is kept fair: pecd starts first, then Dovecot serves implicit TLS with
# pecd's certificate and key and checks the same argon2id hash (pecd's PHC string, with
# pecd's parameters) for the same password, so both pay the same TLS and password costs.
# The two stress runs follow one another in the same invocation (same machine load as
# far as the machine allows); the per-command latencies of both are printed side by side.
set -euo pipefail

IMAPTEST=${1:-${IMAPTEST:-}}
TESTS=${2:-${IMAPTEST_TESTS:-}}
OUT=${3:-$(mktemp -d /tmp/imaptest-run.XXXXXX)}
SECS=${SECS:-20}
SERVERS=${SERVERS:-dovecot pecd}
ONLY=${ONLY:-}
STRESS_ONLY=${STRESS_ONLY:-}
CLIENTS=${CLIENTS:-20}
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
    if [[ -n $STRESS_ONLY ]]; then
        run_stress "$@"
        return 0
    fi
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
    run_stress "$@"
}

run_stress() { # uses name host port user pass of run_imaptest; extra args
    echo "== $name: stress, $CLIENTS clients, $SECS s"
    "$IMAPTEST" host="$host" port="$port" user="$user" pass="$pass" mbox="$MBOX" \
        clients="$CLIENTS" secs="$SECS" output="$OUT/$name-stress.tsv" "$@" \
        >"$OUT/$name-stress.log" 2>&1 || true
    tail -n 8 "$OUT/$name-stress.log"
}

# Per-command latency of each stress run (imaptest's output= file: per second and per
# command, the commands started, those timed and their summed milliseconds), side by
# side with the ratio to Dovecot's.
latency_table() {
    python3 - "$OUT" "$SERVERS" <<'PY'
import os, sys
out, servers = sys.argv[1], sys.argv[2].split()
def totals(path):
    lines = open(path).read().splitlines()
    names = [c[: -len(" count")] for c in lines[0].split("\t") if c.endswith(" count")]
    # imaptest's header names COPY, which its rows leave out when COPY is not run.
    width = len(lines[1].split("\t")) // 3 if len(lines) > 1 else len(names)
    if width == len(names) - 1 and "COPY" in names:
        names.remove("COPY")
    count, msecs = [0] * len(names), [0] * len(names)
    for line in lines[1:]:
        cols = line.split("\t")
        if len(cols) != 3 * len(names):
            continue
        for i in range(len(names)):
            count[i] += int(cols[3 * i + 1])
            msecs[i] += int(cols[3 * i + 2])
    return {n: (c, m) for n, c, m in zip(names, count, msecs)}
runs = {s: totals(f"{out}/{s}-stress.tsv") for s in servers
        if os.path.exists(f"{out}/{s}-stress.tsv")}
if not runs:
    sys.exit(0)
names = next(iter(runs.values())).keys()
both = "dovecot" in runs and "pecd" in runs
print("| command | " + " | ".join(f"{s} ms (timed)" for s in runs) + (" | pecd / Dovecot |" if both else " |"))
print("| --- " * (len(runs) + 1 + both) + "|")
for n in names:
    avg = {s: (r[n][1] / r[n][0] if r.get(n, (0, 0))[0] else None) for s, r in runs.items()}
    cells = [f"{avg[s]:.1f} ({runs[s][n][0]})" if avg[s] is not None else "-" for s in runs]
    ratio = ""
    if both:
        d, p = avg["dovecot"], avg["pecd"]
        ratio = f" | {p / d:.2f}" if d and p is not None else " | -"
    print(f"| {n} | " + " | ".join(cells) + ratio + " |")
PY
}


# --- pecd: the demo config on free ports with a fresh data directory; implicit TLS
# with the lab CA (imaptest's ssl=any-cert: the lab certificate is not for 127.0.0.1).
# Started first: Dovecot borrows its TLS key and its password hash.
PECD_UP=
PECD_USER=mario.rossi@pec.demo.test
PECD_PASS=secret-mario.rossi
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
    # All imaptest clients come from 127.0.0.1: room for them (the default is 10).
    conf=$(sed -E "s#^max_connections_per_ip = [0-9]+#max_connections_per_ip = 1000#" <<<"$conf")
    printf '%s\n' "$conf" >"$P/pecd.toml"
    "$PECD" --config "$P/pecd.toml" serve >"$P/pecd.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 300); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $PPORT))" 2>/dev/null && break
        sleep 0.2
    done
    PECD_UP=1
else
    echo "no release pecd at $PECD: pecd side skipped"
fi

# --- Dovecot: passwd-file user, Maildir. With pecd up: implicit TLS with pecd's lab
# certificate and key, and pecd's argon2id hash of the demo password (Dovecot's
# {ARGON2ID} scheme reads the parameters from the PHC string); else plain IMAP, PLAIN.
if [[ " $SERVERS " != *" dovecot "* ]]; then
    :
elif [[ -x /usr/sbin/dovecot ]]; then
    D=$OUT/dovecot
    mkdir -p "$D/run" "$D/mail"
    chmod 755 "$D" "$D/run"
    id imaptestu >/dev/null 2>&1 || useradd -M -d "$D/mail" -s /usr/sbin/nologin imaptestu
    chown imaptestu "$D/mail"
    DPORT=$(free_port)
    DUSER=imaptest
    DSSL=()
    if [[ -n $PECD_UP ]]; then
        HASH=$(python3 - "$P/data/store.db" "$PECD_USER" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute("SELECT password_hash FROM accounts WHERE address = ?", (sys.argv[2],))
print(row.fetchone()[0])
PY
)
        DPASS=$PECD_PASS
        DSSL=(ssl=any-cert)
        echo "$DUSER:{ARGON2ID}$HASH:$(id -u imaptestu):$(id -g imaptestu)::$D/mail" >"$D/users"
        TLSDIR=$P/data/certs/demo
        TLS_CONF="ssl = required
ssl_cert = <$TLSDIR/tls.pem
ssl_key = <$TLSDIR/tls.key"
        LISTENERS="inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DPORT
    ssl = yes
  }"
    else
        DPASS=pass
        echo "$DUSER:{PLAIN}pass:$(id -u imaptestu):$(id -g imaptestu)::$D/mail" >"$D/users"
        TLS_CONF="ssl = no"
        LISTENERS="inet_listener imap {
    address = 127.0.0.1
    port = $DPORT
  }
  inet_listener imaps {
    port = 0
  }"
    fi
    cat >"$D/dovecot.conf" <<EOF
base_dir = $D/run
state_dir = $D/run
log_path = $D/dovecot.log
protocols = imap
listen = 127.0.0.1
$TLS_CONF
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 100
# All imaptest clients are one user from 127.0.0.1 (the default allows 10).
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = $D/users
}
userdb {
  driver = passwd-file
  args = $D/users
}
service imap-login {
  $LISTENERS
}
EOF
    /usr/sbin/dovecot -c "$D/dovecot.conf"
    trap 'kill "$(cat "$D/run/master.pid")" 2>/dev/null || true; cleanup' EXIT
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $DPORT))" 2>/dev/null && break
        sleep 0.2
    done
    run_imaptest dovecot 127.0.0.1 "$DPORT" "$DUSER" "$DPASS" "${DSSL[@]}"
else
    echo "dovecot-imapd not installed: Dovecot side skipped"
fi

if [[ -n $PECD_UP ]]; then
    run_imaptest pecd 127.0.0.1 "$PPORT" "$PECD_USER" "$PECD_PASS" ssl=any-cert
fi
[[ -n $ONLY ]] || latency_table | tee "$OUT/latency.md"
echo "reports in $OUT"

"""The docker-compose lab's end-to-end test (`interop/compose.sh test`), run from the host
against the published ports with Python's smtplib and imaplib as independent clients:

1. PEC alfa -> beta and beta -> alfa: accettazione and avvenuta consegna come back, the
   recipient gets the envelope; routing went through the lab's DNS (MX queries seen by
   dnsmasq).
2. beta stopped mid-stream: alfa accepts and holds the messages; after beta restarts each
   is delivered exactly once, with its consegna.
3. beta cut off the network (`docker network disconnect`), then reconnected: the same.
4. Ordinary mail both ways through Postfix: a PEC to posta.ordinaria.test lands in its
   Maildir, and ordinary mail to beta's pec.comune.beta.test (which accepts it) reaches
   the mailbox as an anomalia envelope.
5. With the HA profile up (two alfa nodes on one PostgreSQL): a stream of submissions to
   both nodes, one node killed (SIGKILL) in the middle; every acknowledged message gets
   exactly one accettazione, one consegna and one envelope; the killed node rejoins.

Exit status 0 when every check holds; the first failed check is printed.
"""

import imaplib
import os
import shlex
import smtplib
import ssl
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from email.header import decode_header, make_header

HERE = sys.argv[1]
CA = f"{HERE}/.compose/ca.pem"
NET = os.environ.get("LAB_NET", "10.89.99")
PROJECT = os.environ.get("LAB_PROJECT", "pecd-lab")


def ports(node, smtp, imap):
    """The published ports of a node: compose.sh exports them, defaults as documented."""
    env = lambda what, default: int(os.environ.get(f"LAB_{node}_{what}", default))
    return {"smtp": env("SMTP", smtp), "imap": env("IMAP", imap)}


ALFA = ports("ALFA", 11465, 11993)
ALFA2 = ports("ALFA2", 12465, 12993)
BETA = ports("BETA", 21465, 21993)
MARIO = ("mario.rossi@pec.alfa.test", "secret-mario.rossi")
ANNA = ("anna.bianchi@pec.beta.test", "secret-anna.bianchi")
PROTOCOLLO = ("ufficio.protocollo@pec.comune.beta.test", "secret-ufficio.protocollo")
RUN = uuid.uuid4().hex[:8]
TIMEOUT = 120


def compose(*args, check=True):
    """Runs `docker compose` on the lab's file and returns its standard output."""
    cmd = [*shlex.split(os.environ.get("LAB_COMPOSE", "docker-compose")), "-p", PROJECT]
    cmd += ["-f", f"{HERE}/compose.yaml", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done.stdout


def tls():
    """A client context that trusts only the lab CA and checks the server's name (the
    lab certificates name 127.0.0.1)."""
    return ssl.create_default_context(cafile=CA)


def submit(server, user, to, subject):
    msg = EmailMessage()
    msg["From"] = user[0]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg.set_content(f"compose lab test {subject}\n")
    with smtplib.SMTP_SSL("127.0.0.1", server["smtp"], context=tls(), timeout=30) as s:
        s.login(*user)
        s.send_message(msg)


def subjects(server, user):
    """Every subject in the user's INBOX, decoded; None when the server does not answer."""
    try:
        with imaplib.IMAP4_SSL("127.0.0.1", server["imap"], ssl_context=tls(), timeout=10) as m:
            m.login(*user)
            m.select("INBOX", readonly=True)
            typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            if typ != "OK":
                return []
            out = []
            for item in data:
                if isinstance(item, tuple):
                    raw = item[1].decode("utf-8", "replace")
                    value = raw.split(":", 1)[1] if ":" in raw else ""
                    out.append(str(make_header(decode_header(" ".join(value.split())))))
            return out
    except (OSError, imaplib.IMAP4.error):
        return None


def wait_for(what, server, user, expected):
    """Polls the mailbox until every expected subject is there (a condition, not a fixed
    delay), then returns the subjects."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        got = subjects(server, user) or []
        if all(e in got for e in expected):
            return got
        if time.monotonic() > deadline:
            missing = [e for e in expected if e not in got]
            raise SystemExit(f"FAIL {what}: missing {missing} in {user[0]}")
        time.sleep(0.5)


def roundtrip():
    s1 = f"alfa-beta {RUN}"
    submit(ALFA, MARIO, ANNA[0], s1)
    wait_for("alfa->beta receipts", ALFA, MARIO, [f"ACCETTAZIONE: {s1}", f"CONSEGNA: {s1}"])
    wait_for("alfa->beta envelope", BETA, ANNA, [f"POSTA CERTIFICATA: {s1}"])
    s2 = f"beta-alfa {RUN}"
    submit(BETA, ANNA, MARIO[0], s2)
    wait_for("beta->alfa receipts", BETA, ANNA, [f"ACCETTAZIONE: {s2}", f"CONSEGNA: {s2}"])
    wait_for("beta->alfa envelope", ALFA, MARIO, [f"POSTA CERTIFICATA: {s2}"])
    logs = compose("logs", "dns")
    for domain in ("pec.beta.test", "pec.alfa.test"):
        if f"query[MX] {domain}" not in logs:
            raise SystemExit(f"FAIL DNS routing: no MX query for {domain} in dnsmasq's log")
    print("ok: PEC both ways with receipts, routed by MX records")


def held_then_delivered(label, cut, restore, count=3):
    """Sends while beta is unreachable, checks alfa accepted without delivering, restores
    beta and checks each message arrives once with its consegna."""
    cut()
    subs = [f"{label}-{i} {RUN}" for i in range(count)]
    for s in subs:
        submit(ALFA, MARIO, ANNA[0], s)
    got = wait_for(f"{label}: accettazione", ALFA, MARIO, [f"ACCETTAZIONE: {s}" for s in subs])
    early = [s for s in subs if f"CONSEGNA: {s}" in got]
    if early:
        raise SystemExit(f"FAIL {label}: consegna while beta was unreachable: {early}")
    restore()
    wait_for(f"{label}: consegna", ALFA, MARIO, [f"CONSEGNA: {s}" for s in subs])
    got = wait_for(f"{label}: envelopes", BETA, ANNA, [f"POSTA CERTIFICATA: {s}" for s in subs])
    for s in subs:
        n = got.count(f"POSTA CERTIFICATA: {s}")
        if n != 1:
            raise SystemExit(f"FAIL {label}: {s!r} delivered {n} times")
        n = (subjects(ALFA, MARIO) or []).count(f"CONSEGNA: {s}")
        if n != 1:
            raise SystemExit(f"FAIL {label}: {n} consegna receipts for {s!r}")
    print(f"ok: {label}: {count} messages held by alfa, delivered once each afterwards")


def ordinary():
    s1 = f"to-ordinary {RUN}"
    submit(ALFA, MARIO, "chiunque@posta.ordinaria.test", s1)
    wait_for("PEC to ordinary mail: accettazione", ALFA, MARIO, [f"ACCETTAZIONE: {s1}"])
    deadline = time.monotonic() + TIMEOUT
    while compose("exec", "-T", "postfix", "grep", "-rlF", s1, "/var/mail/lab", check=False) == "":
        if time.monotonic() > deadline:
            raise SystemExit("FAIL PEC to ordinary mail: not in Postfix's Maildir")
        time.sleep(0.5)
    s2 = f"from-ordinary {RUN}"
    mail = f"From: someone@posta.ordinaria.test\nTo: {PROTOCOLLO[0]}\nSubject: {s2}\n\nciao\n"
    done = subprocess.run(
        [*shlex.split(os.environ.get("LAB_COMPOSE", "docker-compose")), "-p", PROJECT,
         "-f", f"{HERE}/compose.yaml", "exec", "-T", "postfix",
         "sendmail", "-f", "someone@posta.ordinaria.test", PROTOCOLLO[0]],
        input=mail, text=True, capture_output=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"FAIL sendmail in the postfix container: {done.stderr.strip()}")
    wait_for("ordinary mail to a PEC mailbox", BETA, PROTOCOLLO, [f"ANOMALIA MESSAGGIO: {s2}"])
    print("ok: ordinary mail both ways through Postfix (Maildir; anomalia envelope)")


def node_killed_under_load(total=24, kill_after=8):
    alfa = container("alfa")
    acked = []
    killed = False
    i = 0
    while len(acked) < total:
        node = ALFA if (i % 2 == 0 and not killed) else ALFA2
        subject = f"ha-{i} {RUN}"
        i += 1
        try:
            submit(node, MARIO, ANNA[0], subject)
            acked.append(subject)
        except (OSError, smtplib.SMTPException):
            pass  # not acknowledged: the client would retry; nothing is promised
        if len(acked) == kill_after and not killed:
            subprocess.run(["docker", "kill", alfa], check=True, capture_output=True)
            killed = True
    got = wait_for("HA: accettazione and consegna", ALFA2, MARIO,
                   [f"{p}{s}" for s in acked for p in ("ACCETTAZIONE: ", "CONSEGNA: ")])
    envelopes = wait_for("HA: envelopes", BETA, ANNA, [f"POSTA CERTIFICATA: {s}" for s in acked])
    for s in acked:
        counts = (got.count(f"ACCETTAZIONE: {s}"), got.count(f"CONSEGNA: {s}"),
                  envelopes.count(f"POSTA CERTIFICATA: {s}"))
        if counts != (1, 1, 1):
            raise SystemExit(f"FAIL HA: {s!r} accettazione/consegna/envelope = {counts}")
    subprocess.run(["docker", "start", alfa], check=True, capture_output=True)
    deadline = time.monotonic() + TIMEOUT
    while subjects(ALFA, MARIO) is None:
        if time.monotonic() > deadline:
            raise SystemExit("FAIL HA: the killed node does not come back")
        time.sleep(0.5)
    print(f"ok: HA: one alfa node killed after {kill_after} of {len(acked)} acknowledged "
          "submissions; each has one accettazione, one consegna, one envelope; node back")


def container(service):
    return compose("ps", "-q", service).strip()


def main():
    roundtrip()
    ordinary()
    held_then_delivered(
        "beta-stopped",
        lambda: compose("stop", "beta"),
        lambda: compose("start", "beta"),
    )
    beta = container("beta")
    network = f"{PROJECT}_lab"
    held_then_delivered(
        "beta-cut-off",
        lambda: subprocess.run(["docker", "network", "disconnect", network, beta], check=True),
        lambda: subprocess.run(
            ["docker", "network", "connect", "--ip", f"{NET}.20", network, beta], check=True
        ),
    )
    if os.path.exists(f"{HERE}/.compose/ha"):
        node_killed_under_load()
    print("compose lab test: all checks passed")


if __name__ == "__main__":
    main()

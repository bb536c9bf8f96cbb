"""The security archive as an independent client sees it, with imaplib: a folder of its
own (UIDs from 1 per address, UIDVALIDITY, modseqs), read marks shared between sessions
and nothing else writable.

Usage: imap_archive.py TLS_PORT FILES_DIR
Every check is an assert: any failure makes the script (and the Rust test) fail.
"""
import imaplib
import os
import re
import ssl
import sys

tls_port, files = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=os.path.join(files, "cert.pem"))
ANNA, MARIO, PW = "anna@pec.example.it", "mario@pec.example.it", "segreta"
ARCHIVE = '"Archivio di sicurezza"'


def ok(resp):
    typ, data = resp
    assert typ == "OK", (typ, data)
    return data


def session(user):
    m = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx)
    ok(m.login(user, PW))
    ok(m.enable("CONDSTORE"))
    return m


def code(m, name):
    return int(m.untagged_responses[name][-1])


one, two = session(ANNA), session(ANNA)
assert ok(one.select(ARCHIVE)) == [b"2"]
uidvalidity, uidnext = code(one, "UIDVALIDITY"), code(one, "UIDNEXT")
highest = code(one, "HIGHESTMODSEQ")
assert uidvalidity > 1 and uidnext == 3, (uidvalidity, uidnext)
assert ok(one.uid("SEARCH", None, "ALL")) == [b"1 2"]
ok(two.select(ARCHIVE))
assert code(two, "UIDVALIDITY") == uidvalidity

# A read mark made by one session, with a new modseq, reaches the other at NOOP.
stored = b" ".join(ok(one.uid("STORE", "1", "+FLAGS", "(\\Seen)"))).decode()
modseq = int(re.search(r"MODSEQ \((\d+)\)", stored).group(1))
assert modseq > highest, (stored, highest)
two.untagged_responses.clear()
ok(two.noop())
told = b" ".join(two.untagged_responses.get("FETCH", [])).decode()
assert "UID 1 " in told and "\\Seen" in told, told
changed = b" ".join(ok(two.uid("FETCH", "1:*", "(FLAGS) (CHANGEDSINCE %d)" % highest)))
assert b"UID 1 " in changed and b"UID 2 " not in changed, changed
# Changed after `highest`: left alone, reported [MODIFIED 1] on the tagged OK.
two.untagged_responses.clear()
typ, data = two.uid("STORE", "1", "(UNCHANGEDSINCE %d) -FLAGS" % highest, "(\\Seen)")
assert typ == "OK" and two.untagged_responses.get("MODIFIED") == [b"1"], two.untagged_responses

# Nothing else changes.
for refused in (
    lambda: one.uid("STORE", "2", "+FLAGS", "(\\Deleted)"),
    lambda: one.expunge(),
    lambda: one.uid("COPY", "1", "INBOX"),
    lambda: one.append(ARCHIVE, None, None, b"Subject: x\r\n\r\nx\r\n"),
    lambda: one.rename(ARCHIVE, "Altro"),
    lambda: one.delete(ARCHIVE),
):
    assert refused()[0] == "NO"
assert ok(one.uid("SEARCH", None, "ALL")) == [b"1 2"]
for m in (one, two):
    assert m.logout()[0] == "BYE"

# Mario's archive is his own: its UIDs start at 1 too.
m = session(MARIO)
assert ok(m.select(ARCHIVE, readonly=True)) == [b"1"]
assert ok(m.uid("SEARCH", None, "ALL")) == [b"1"]
assert code(m, "UIDNEXT") == 2
assert m.logout()[0] == "BYE"
print("archive ok")

"""First sync of a mail client (what Thunderbird/Outlook do), with imaplib.

Usage: imap_client.py PLAIN_PORT TLS_PORT FILES_DIR
Every check is an assert: any failure makes the script (and the Rust test) fail.
"""
import imaplib
import os
import re
import ssl
import sys
import time

plain_port, tls_port, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=os.path.join(files, "cert.pem"))
ANNA, MARIO, PW = "anna@pec.example.it", "mario@pec.example.it", "segreta"
plain = open(os.path.join(files, "plain.eml"), "rb").read()
inner = open(os.path.join(files, "inner.eml"), "rb").read()


def ok(resp):
    typ, data = resp
    assert typ == "OK", (typ, data)
    return data


# --- port 143: LOGINDISABLED until STARTTLS ---------------------------------
m = imaplib.IMAP4("127.0.0.1", plain_port)
assert "STARTTLS" in m.capabilities and "LOGINDISABLED" in m.capabilities, m.capabilities
assert "AUTH=PLAIN" not in m.capabilities, m.capabilities
try:
    m.login(ANNA, PW)
    raise AssertionError("LOGIN accepted before TLS")
except imaplib.IMAP4.error:
    pass
m.starttls(ssl_context=ctx)
assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities, m.capabilities
try:
    m.login(ANNA, "sbagliata")
    raise AssertionError("wrong password accepted")
except imaplib.IMAP4.error:
    pass
ok(m.login(ANNA, PW))
assert m.logout()[0] == "BYE"
print("starttls ok")

# --- port 993: AUTHENTICATE PLAIN, first sync --------------------------------
m = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx)
ok(m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (ANNA, PW)).encode()))
caps = ok(m.capability())[0].decode()
for cap in ("IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "QUOTA", "NAMESPACE", "CHILDREN"):
    assert cap in caps.split(), (cap, caps)
ok(m.xatom("ID", '("name" "imaplib")'))
assert "NAMESPACE" in m.untagged_responses or True
ok(m.namespace())

lines = [l.decode() for l in ok(m.list('""', "*"))]
print("\n".join(lines))
def attrs(name):
    for l in lines:
        if l.endswith('"/" %s' % name) or l.endswith('"/" "%s"' % name):
            return l
    raise AssertionError("no LIST line for " + name)
assert "\\Sent" in attrs("Sent") and "\\HasNoChildren" in attrs("Sent")
assert "\\Drafts" in attrs("Drafts") and "\\Trash" in attrs("Trash") and "\\Junk" in attrs("Junk")
assert "\\HasNoChildren" in attrs("INBOX")
attrs("Archivio di sicurezza")
ok(m.lsub('""', "*"))

typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"2"], (typ, data)
uidvalidity = int(m.response("UIDVALIDITY")[1][0])
assert uidvalidity > 0
assert m.response("UIDNEXT")[1][0] == b"3"
assert m.response("PERMANENTFLAGS")[1][0] is not None

data = ok(m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE BODYSTRUCTURE)"))
text = b" ".join(d if isinstance(d, bytes) else b"".join(d) for d in data).decode()
print(text)
assert "RFC822.SIZE %d" % len(plain) in text, text
assert '"MESSAGE" "RFC822"' in text and "postacert.eml" in text, text
assert '"APPLICATION" "PDF"' in text, text   # the part inside postacert.eml

# BODY.PEEK[] gives the exact bytes and does not set \Seen
data = ok(m.uid("FETCH", "1", "(BODY.PEEK[])"))
assert data[0][1] == plain, data
flags = ok(m.uid("FETCH", "1", "(FLAGS)"))[0].decode()
assert "\\Seen" not in flags, flags

# the attached original of the PEC envelope: BODY[2], BODY[2.1], BODY[2.HEADER]
data = ok(m.uid("FETCH", "2", "(BODY.PEEK[2])"))
assert data[0][1] == inner, data[0][1]
data = ok(m.uid("FETCH", "2", "(BODY.PEEK[2.1])"))
assert data[0][1] == b"In allegato il contratto.", data
data = ok(m.uid("FETCH", "2", "(BODY.PEEK[2.2])"))
assert data[0][1] == b"JVBERi0xLjQ=", data
data = ok(m.uid("FETCH", "2", "(BODY.PEEK[2.HEADER.FIELDS (SUBJECT)])"))
assert data[0][1] == b"Subject: Contratto firmato\r\n\r\n", data
data = ok(m.uid("FETCH", "2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT X-TRASPORTO)] ENVELOPE)"))
assert b"X-Trasporto: posta-certificata" in data[0][1], data
data = ok(m.uid("FETCH", "1", "(BODY.PEEK[]<0.4>)"))
assert data[0][1] == b"From", data
data = ok(m.fetch("1", "(RFC822.HEADER INTERNALDATE ENVELOPE)"))
assert b"Riunione di lunedi" in data[0][0] + data[0][1], data

# BODY[] without PEEK sets \Seen
data = ok(m.uid("FETCH", "1", "(BODY[])"))
flags = ok(m.uid("FETCH", "1", "(FLAGS)"))[0].decode()
assert "\\Seen" in flags, flags

# STORE and SEARCH
data = ok(m.uid("STORE", "2", "+FLAGS", "(\\Flagged)"))
assert b"\\Flagged" in data[0], data
assert ok(m.uid("SEARCH", None, "FLAGGED"))[0] == b"2"
assert ok(m.uid("SEARCH", None, "UNSEEN"))[0] == b"2"
assert ok(m.uid("SEARCH", None, "SEEN"))[0] == b"1"
assert ok(m.search(None, "SUBJECT", "riunione"))[0] == b"1"
assert ok(m.search(None, "FROM", "mario"))[0] == b"1 2"
assert ok(m.search(None, "TEXT", "contratto"))[0] == b"2"
assert ok(m.search(None, "SINCE", "1-Jan-2025", "BEFORE", "1-Jan-2099"))[0] == b"1 2"
assert ok(m.uid("SEARCH", None, "UID", "2:*"))[0] == b"2"
ok(m.uid("STORE", "2", "-FLAGS.SILENT", "(\\Flagged)"))
assert ok(m.uid("SEARCH", None, "FLAGGED"))[0] == b""

# APPEND to Sent: durable, with APPENDUID
typ, data = m.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(time.time()),
                     b"Subject: inviata\r\n\r\nciao\r\n")
assert typ == "OK" and b"APPENDUID" in data[0], data
status = ok(m.status("Sent", "(MESSAGES UIDNEXT UNSEEN)"))[0].decode()
assert "MESSAGES 1" in status and "UNSEEN 0" in status, status

# MOVE to Trash (COPYUID + EXPUNGE), then EXPUNGE of a \Deleted message
typ, data = m.uid("MOVE", "1", "Trash")
assert typ == "OK", data
assert any(b"COPYUID" in r for r in m.untagged_responses.get("OK", [])), m.untagged_responses
assert m.untagged_responses.pop("EXPUNGE") == [b"1"]
status = ok(m.status("Trash", "(MESSAGES)"))[0].decode()
assert "MESSAGES 1" in status, status
ok(m.noop())
ok(m.create("Pratiche/2025"))
lines = [l.decode() for l in ok(m.list('""', "Pratiche*"))]
assert any("\\HasChildren" in l for l in lines) or len(lines) >= 1, lines
ok(m.copy("1", "Pratiche/2025"))
ok(m.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
data = ok(m.expunge())
assert data == [b"1"], data
typ, data = m.select("INBOX")
assert data == [b"0"], data

# QUOTA from the store
typ, data = m.getquotaroot("INBOX")
assert typ == "OK", data
quota = b" ".join(x for d in data for x in d).decode()
assert "STORAGE" in quota and "9765" in quota, quota

# the security archive: entries that cannot change or go, but can be marked read
typ, data = m.select('"Archivio di sicurezza"')
assert typ == "OK" and data == [b"1"], (typ, data)
assert m.response("PERMANENTFLAGS")[1] == [b"(\\Seen)"]
data = ok(m.fetch("1", "(BODY.PEEK[2])"))
assert data[0][1] == inner
assert m.store("1", "+FLAGS", "(\\Deleted)")[0] == "NO"
typ, data = m.store("1", "+FLAGS", "(\\Seen)")
assert typ == "OK" and b"\\Seen" in data[0], (typ, data)
assert m.append('"Archivio di sicurezza"', None, None, b"Subject: x\r\n\r\nx\r\n")[0] == "NO"
assert m.expunge()[0] == "NO"
ok(m.unselect()) if hasattr(m, "unselect") else ok(m._simple_command("UNSELECT"))

# isolation: mario's mail is not anna's, and anna cannot open other folders
assert m.select("mario@pec.example.it/INBOX")[0] == "NO"
assert m.status("INBOX", "(MESSAGES)")[0] == "OK"

# IDLE woken by a delivery made through the store + notifier
ok(m.select("INBOX"))
tag = m._new_tag().decode()
m.send(("%s IDLE\r\n" % tag).encode())
line = m.readline()
assert line.startswith(b"+"), line
print("IDLE_READY", flush=True)
line = m.readline()
assert re.match(rb"\* 1 EXISTS", line), line
m.send(b"DONE\r\n")
while True:
    line = m.readline()
    if line.startswith(tag.encode()):
        assert b"OK" in line, line
        break
print("idle ok")

# QRESYNC (RFC 7162): resynchronise after another session changed and expunged
ok(m.unselect())
typ, data = m.enable("QRESYNC")
assert typ == "OK" and b"QRESYNC" in b" ".join(m.untagged_responses.pop("ENABLED", [])), data
ok(m.select("INBOX"))
modseq = int(m.response("HIGHESTMODSEQ")[1][0])
known = int(ok(m.uid("SEARCH", None, "ALL"))[0])
other = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx)
ok(other.login(ANNA, PW))
for subject in (b"kept", b"gone"):
    ok(other.append("INBOX", None, None, b"Subject: " + subject + b"\r\n\r\nx\r\n"))
ok(other.select("INBOX"))
kept, gone = [int(u) for u in ok(other.uid("SEARCH", None, "ALL"))[0].split()][1:]
ok(other.uid("STORE", str(known), "+FLAGS", "(\\Flagged)"))
ok(other.uid("STORE", str(gone), "+FLAGS", "(\\Deleted)"))
ok(other.expunge())
assert other.logout()[0] == "BYE"
ok(m.unselect())
m.untagged_responses.clear()
typ, data = m._simple_command("SELECT", "INBOX (QRESYNC (%d %d))" % (uidvalidity, modseq))
assert typ == "OK", data
assert m.untagged_responses.pop("VANISHED") == [b"(EARLIER) %d" % gone], m.untagged_responses
fetched = b" ".join(m.untagged_responses.pop("FETCH")).decode()
assert "UID %d FLAGS (\\Flagged" % known in fetched and "UID %d " % kept in fetched, fetched
assert "UID %d " % gone not in fetched and "MODSEQ" in fetched, fetched
print("qresync ok")
assert m.logout()[0] == "BYE"

# --- mario sees only his own mail -------------------------------------------
m = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx)
ok(m.login(MARIO, PW))
typ, data = m.select("INBOX")
assert data == [b"1"], data
assert ok(m.search(None, "SUBJECT", "Riunione"))[0] == b""
assert ok(m.search(None, "SUBJECT", "mario"))[0] == b"1"
typ, data = m.select('"Archivio di sicurezza"', readonly=True)
assert data == [b"0"], data
assert m.logout()[0] == "BYE"
print("imap ok")

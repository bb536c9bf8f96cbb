"""Python's imaplib as an independent judge of MULTIAPPEND, CATENATE, BINARY, LITERAL+
and a long ID before login (argv[1]: the port of a session that counts as private)."""
import imaplib
import re
import sys

port = int(sys.argv[1])
m = imaplib.IMAP4("127.0.0.1", port)
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))

# --- a 31 KB ID before login, as imaptest sends it: answered, the session goes on ------
pairs = " ".join('"k%d" "%s"' % (i, "v" * 1024) for i in range(30))
typ, data = m._simple_command("ID", "(%s)" % pairs)
assert typ == "OK", (typ, data)
typ, data = m._untagged_response(typ, data, "ID")
assert data and b'"name" "pecd"' in data[0], data
assert "LITERAL-" in m.capabilities and "LITERAL+" not in m.capabilities, m.capabilities

typ, _ = m.login("anna@pec.example.it", "segreta")
assert typ == "OK"
typ, data = m.capability()
caps = data[0].decode().upper().split()
for cap in ("MULTIAPPEND", "CATENATE", "BINARY", "LITERAL+"):
    assert cap in caps, caps


def raw(command_bytes):
    """Sends a whole command (non-synchronising literals inside) and its tagged reply."""
    tag = m._new_tag()
    m.tagged_commands[tag] = None
    m.send(tag + b" " + command_bytes + b"\r\n")
    return m._command_complete("APPEND", tag)


one = b"Subject: uno\r\n\r\nprimo\r\n"
two = b"Subject: due\r\n\r\nsecondo\r\n"
# --- MULTIAPPEND with LITERAL+: one APPENDUID naming both ------------------------------
typ, data = raw(
    b"APPEND INBOX (\\Seen) {%d+}\r\n%s {%d+}\r\n%s" % (len(one), one, len(two), two)
)
assert typ == "OK", (typ, data)
uid = re.search(rb"APPENDUID (\d+) ([0-9,:]+)", data[0])
assert uid and uid.group(2) in (b"1,2", b"1:2"), data
validity = int(uid.group(1))

# --- CATENATE: the header of message 1 and new text --------------------------------------
typ, data = raw(
    b'APPEND INBOX CATENATE (URL "/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=HEADER" TEXT {7+}\r\nterzo\r\n)'
    % validity
)
assert typ == "OK", (typ, data)
typ, data = raw(b'APPEND INBOX CATENATE (URL "/INBOX;UIDVALIDITY=%d/;UID=1")' % (validity + 1))
assert typ == "NO" and b"BADURL" in data[0], (typ, data)

# --- BINARY of a base64 part; APPEND of a literal8 ----------------------------------------
mime = (
    b"Subject: b64\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nY2lhbw==\r\n--x--\r\n"
)
typ, _ = m.append("INBOX", None, None, mime)
assert typ == "OK"
nul = b"A: b\r\n\r\n\x00\r\n"
typ, data = raw(b"APPEND INBOX ~{%d+}\r\n%s" % (len(nul), nul))
assert typ == "OK", (typ, data)

typ, _ = m.select("INBOX")
assert typ == "OK"
typ, data = m.fetch("3", "(BODY.PEEK[])")
assert data[0][1] == b"Subject: uno\r\n\r\nterzo\r\n", data
typ, data = m.fetch("4", "(BINARY.SIZE[1] BINARY.PEEK[1])")
assert typ == "OK" and b"BINARY.SIZE[1] 4" in data[0][0] and data[0][1] == b"ciao", data
typ, data = m.fetch("5", "(BINARY.PEEK[1])")
assert data[0][0].endswith(b"~{3}") and data[0][1] == b"\x00\r\n", data
m.logout()
print("OK")

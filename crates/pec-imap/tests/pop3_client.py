"""POP3 session of a mail client with poplib: STLS and implicit TLS.

Usage: pop3_client.py PLAIN_PORT TLS_PORT FILES_DIR
"""
import os
import poplib
import ssl
import sys

plain_port, tls_port, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=os.path.join(files, "cert.pem"))
ANNA, PW = "anna@pec.example.it", "segreta"
plain = open(os.path.join(files, "plain.eml"), "rb").read()

# port 110: no USER before STLS
p = poplib.POP3("127.0.0.1", plain_port)
caps = p.capa()
assert "STLS" in caps and "USER" not in caps, caps
try:
    p.user(ANNA)
    raise AssertionError("USER accepted before TLS")
except poplib.error_proto:
    pass
p.stls(context=ctx)
assert "USER" in p.capa()
p.user(ANNA)
p.pass_(PW)
assert p.stat()[0] == 2
p.quit()

# port 995: the client's download
p = poplib.POP3_SSL("127.0.0.1", tls_port, context=ctx)
try:
    p.user(ANNA)
    p.pass_("sbagliata")
    raise AssertionError("wrong password accepted")
except poplib.error_proto:
    pass
p.user(ANNA)
p.pass_(PW)
count, size = p.stat()
assert count == 2, (count, size)
resp, listing, _ = p.list()
sizes = [int(l.split()[1]) for l in listing]
assert sizes[0] == len(plain) and sum(sizes) == size, (listing, size)
resp, uidl, _ = p.uidl()
assert len(uidl) == 2 and uidl[0].split()[1] != uidl[1].split()[1], uidl
resp, lines, octets = p.retr(1)
assert b"\r\n".join(lines) + b"\r\n" == plain, lines   # dot-unstuffed by poplib
resp, lines, _ = p.top(1, 1)
assert lines[-1] == b"Ciao Anna,", lines
assert b"Subject: Riunione di lunedi" in lines
p.dele(1)
assert p.stat()[0] == 1
p.rset()
assert p.stat()[0] == 2
p.dele(1)
p.quit()

# AUTH PLAIN and the deletion applied at QUIT
p = poplib.POP3_SSL("127.0.0.1", tls_port, context=ctx)
import base64
resp = p._shortcmd("AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (ANNA, PW)).encode()).decode())
assert resp.startswith(b"+OK"), resp
assert p.stat()[0] == 1
p.quit()
print("pop3 ok")

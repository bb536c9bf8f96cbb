//! What a hostile probe of the lab gestore found sound, kept so: no open relay, AUTH only
//! over TLS in every protocol, no STARTTLS command injection, no SMTP smuggling, long
//! lines and many recipients answered with bounded replies, TLS 1.2/1.3 with AEAD
//! ciphers only. The attacker is Python's socket and ssl modules, not our own client.

use pec_e2e::{Lab, run_python, standard};

const ANNA: &str = "anna.bianchi@pec.beta.test";

/// Runs `script` with the lab's ports and CA: `sys.argv[1:]` are the MX, submission
/// with STARTTLS, submission with implicit TLS, IMAP, POP3, IMAPS ports and the CA
/// file. Returns what it printed; a failed assertion in it fails the test.
fn probe(lab: &Lab, script: &str) -> String {
    let beta = lab.node("beta");
    let args = [
        beta.mx_port.to_string(),
        beta.submission_starttls_port.to_string(),
        beta.submission_port.to_string(),
        beta.imap_port.to_string(),
        beta.pop3_port.to_string(),
        beta.imaps_port.to_string(),
        lab.ca().display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let prelude = r#"
import socket, ssl, sys
MX, SUB, SUBS, IMAP, POP3, IMAPS = (int(p) for p in sys.argv[1:7])
CA = sys.argv[7]

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s, s.makefile("rb")

def reply(f):
    """One SMTP reply, all its lines."""
    lines = []
    while True:
        line = f.readline().decode()
        assert line, "connection closed: " + repr(lines)
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return "".join(lines)

def line(f):
    l = f.readline().decode()
    assert l, "connection closed"
    return l
"#;
    let script = format!("{prelude}\n{script}");
    run_python(&script, &args, &[], b"").unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_open_relay_and_auth_only_over_tls() {
    let lab = Lab::start(standard(), &[]).await;
    let out = probe(
        &lab,
        r#"
# The MX takes mail for its own domains only.
s, f = connect(MX)
reply(f)
s.sendall(b"EHLO probe.test\r\n"); reply(f)
s.sendall(b"MAIL FROM:<x@esterno.test>\r\n"); assert reply(f).startswith("250")
r = (s.sendall(b"RCPT TO:<vittima@altrove.test>\r\n"), reply(f))[1]
assert r.startswith("5"), r
print("relay:", r.strip())

# Submission: nothing before AUTH, and AUTH neither offered nor accepted before TLS.
s, f = connect(SUB)
reply(f)
s.sendall(b"EHLO probe.test\r\n"); ehlo = reply(f)
assert "AUTH" not in ehlo and "STARTTLS" in ehlo, ehlo
s.sendall(b"AUTH PLAIN AGFubmEuYmlhbmNoaUBwZWMuYmV0YS50ZXN0AHNlY3JldC1hbm5hLmJpYW5jaGk=\r\n")
r = reply(f); assert r.startswith("538"), r
s.sendall(b"MAIL FROM:<anna.bianchi@pec.beta.test>\r\n")
r = reply(f); assert r.startswith("530"), r

# IMAP and POP3 in plaintext refuse logins, with the right password too.
s, f = connect(IMAP)
greeting = line(f); assert "LOGINDISABLED" in greeting, greeting
s.sendall(b"a1 LOGIN anna.bianchi@pec.beta.test secret-anna.bianchi\r\n")
r = line(f); assert r.startswith("a1 NO"), r
s, f = connect(POP3)
line(f)
s.sendall(b"USER anna.bianchi@pec.beta.test\r\n"); u = line(f)
s.sendall(b"PASS secret-anna.bianchi\r\n"); p = line(f)
assert u.startswith("-ERR") or p.startswith("-ERR"), (u, p)
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_with_starttls_are_not_run_inside_tls() {
    let lab = Lab::start(standard(), &[]).await;
    let out = probe(
        &lab,
        r#"
ctx = ssl.create_default_context(cafile=CA)
ctx.check_hostname = False

# SMTP: a NOOP sent in the same packet as STARTTLS must be discarded (CVE-2011-0411).
s, f = connect(SUB)
reply(f)
s.sendall(b"EHLO probe.test\r\n"); reply(f)
s.sendall(b"STARTTLS\r\nNOOP\r\n")
r = reply(f); assert r.startswith("220"), r
t = ctx.wrap_socket(s); tf = t.makefile("rb")
t.sendall(b"EHLO probe.test\r\n")
r = reply(tf)
assert r.startswith("250-") and "AUTH" in r, "the first reply inside TLS answers EHLO: " + r

# IMAP: the same with a tagged command.
s, f = connect(IMAP)
line(f)
s.sendall(b"a1 STARTTLS\r\na2 NOOP\r\n")
r = line(f); assert r.startswith("a1 OK"), r
t = ctx.wrap_socket(s); tf = t.makefile("rb")
t.sendall(b"a3 CAPABILITY\r\n")
first = line(tf)
assert not first.startswith("a2"), "a2 was run inside TLS: " + first
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_end_of_data_never_starts_a_second_transaction() {
    let lab = Lab::start(standard(), &[]).await;
    let before = lab.node("beta").store.list_archive(ANNA).unwrap().len();
    let out = probe(
        &lab,
        r#"
variants = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\n", b"\n.\r",
            b"\r\n.\x00\r\n", b"\r\n\x00.\r\n", b".\r\n"]
for v in variants:
    s, f = connect(MX)
    reply(f)
    s.sendall(b"EHLO probe.test\r\n"); reply(f)
    s.sendall(b"MAIL FROM:<x@esterno.test>\r\n"); reply(f)
    s.sendall(b"RCPT TO:<anna.bianchi@pec.beta.test>\r\n"); reply(f)
    s.sendall(b"DATA\r\n"); r = reply(f); assert r.startswith("354"), r
    smuggled = (b"Subject: uno\r\n\r\ntesto" + v +
                b"MAIL FROM:<direttore@pec.beta.test>\r\nRCPT TO:<anna.bianchi@pec.beta.test>\r\n"
                b"DATA\r\nSubject: contrabbando\r\n\r\nx\r\n.\r\n")
    s.sendall(smuggled)
    first = reply(f)
    s.sendall(b"QUIT\r\n")
    rest = f.read().decode()
    assert "354" not in first + rest, (v, first, rest)
    print(repr(v), first.strip())
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
    // Nothing reached the mailbox: ordinary mail is refused, whole.
    let after = lab.node("beta").store.list_archive(ANNA).unwrap().len();
    assert_eq!(before, after, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_and_many_recipients_get_bounded_answers() {
    let lab = Lab::start(standard(), &[]).await;
    let out = probe(
        &lab,
        r#"
s, f = connect(MX)
reply(f)
s.sendall(b"EHLO " + b"a" * 1_000_000 + b"\r\n")
r = reply(f); assert r.startswith("500"), r
s.sendall(b"EHLO probe.test\r\n"); assert reply(f).startswith("250")
s.sendall(b"MAIL FROM:<x@esterno.test>\r\n"); reply(f)
# 10,000 recipients pipelined: the limit answers 452 for the extra ones, one line each.
s.sendall(b"".join(b"RCPT TO:<anna.bianchi@pec.beta.test>\r\n" for _ in range(10_000)))
codes = {}
for _ in range(10_000):
    c = reply(f)[:3]
    codes[c] = codes.get(c, 0) + 1
assert codes.get("452", 0) >= 9_000, codes
s.sendall(b"NOOP\r\n"); r = reply(f); assert r.startswith("250"), r
print(codes)
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_tls_1_2_and_1_3_with_aead_ciphers() {
    let lab = Lab::start(standard(), &[]).await;
    let out = probe(
        &lab,
        r#"
def handshake(port, configure):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CA)
    ctx.check_hostname = False
    configure(ctx)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        t = ctx.wrap_socket(s)
        return t.version(), t.cipher()[0]
    except (ssl.SSLError, OSError) as e:
        return None

def old(ctx):
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1

def cbc(ctx):
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:AES128-SHA:AES256-SHA256")

def modern12(ctx):
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

for port in (SUBS, IMAPS):
    assert handshake(port, old) is None, "TLS 1.0/1.1 accepted"
    assert handshake(port, cbc) is None, "a CBC cipher accepted"
    v = handshake(port, modern12)
    assert v and v[0] == "TLSv1.2" and ("GCM" in v[1] or "CHACHA20" in v[1]), v
    v = handshake(port, lambda c: None)
    assert v and v[0] == "TLSv1.3", v
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
}

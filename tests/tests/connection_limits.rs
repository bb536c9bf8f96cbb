//! One client address cannot take a listener: with `max_connections_per_ip = 2`, two idle
//! sockets from 127.0.0.1 (no TLS handshake, no request) make every listener turn a third
//! one from 127.0.0.1 away, while a client from 127.0.0.2 is served. Python's socket and
//! ssl modules are the clients.

use pec_e2e::{Lab, run_python, standard};

/// Holds `limit` idle sockets from 127.0.0.1, then prints what a third one from there
/// receives before the server closes it, and the first line a client from 127.0.0.2 gets
/// (over TLS for the TLS listeners, after a request for HTTP).
const CLIENT: &str = r#"
import socket, ssl, sys
port, kind, ca, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the lab certificate names mx.<domain>, not 127.0.0.1
def connect(source):
    return socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0))
held = [connect("127.0.0.1") for _ in range(limit)]
extra = connect("127.0.0.1")
try:
    refused = extra.recv(200)
except ConnectionResetError:
    refused = b""
print("refused", refused.decode().strip())
other = connect("127.0.0.2")
if kind in ("submissions", "imaps", "pop3s", "https"):
    other = ctx.wrap_socket(other)
if kind in ("http", "https"):
    other.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
print("served", other.recv(200).split(b"\r\n")[0].decode())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_any_listener() {
    let mut specs = standard();
    specs.truncate(1);
    specs[0].extra = "[limits]\nmax_connections_per_ip = 2\ntls_handshake_secs = 60\n".into();
    let lab = Lab::start(specs, &[]).await;
    let node = lab.node("alfa");
    let ca = lab.ca().display().to_string();
    let cases = [
        ("submissions", node.submission_port, "", "220 "),
        ("mx", node.mx_port, "421 4.7.0 ", "220 "),
        ("imaps", node.imaps_port, "", "* OK "),
        ("pop3s", node.pop3s_port, "", "+OK "),
        ("http", node.http_port, "", "HTTP/1.1 404"),
        ("https", node.https_port, "", "HTTP/1.1 404"),
    ];
    for (kind, port, refused, served) in cases {
        let out = run_python(CLIENT, &[&port.to_string(), kind, &ca, "2"], &[], b"")
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{kind}: {out}");
        let refusal = lines[0].strip_prefix("refused").unwrap().trim();
        if refused.is_empty() {
            assert_eq!(refusal, "", "{kind}: closed without a byte");
        } else {
            assert!(refusal.starts_with(refused), "{kind}: {out}");
        }
        assert!(
            lines[1].starts_with(&format!("served {served}")),
            "{kind}: {out}"
        );
    }
    lab.shutdown().await;
}

/// Sends a request whose head is `pad` bytes of one header, then prints the status line.
const LARGE_HEAD: &str = r#"
import socket, sys
port, pad = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
head = b"GET /nothing HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * pad + b"\r\nConnection: close\r\n\r\n"
try:
    s.sendall(head)
except (BrokenPipeError, ConnectionResetError):
    pass
print(s.recv(200).split(b"\r\n")[0].decode())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_beyond_a_few_kilobytes_is_refused_before_login() {
    let mut specs = standard();
    specs.truncate(1);
    let lab = Lab::start(specs, &[]).await;
    let port = lab.node("alfa").http_port.to_string();
    let status = |pad: &str| run_python(LARGE_HEAD, &[&port, pad], &[], b"").unwrap();
    assert!(
        status("8000").starts_with("HTTP/1.1 404"),
        "a head of 8 KB is read"
    );
    let big = status("65536");
    assert!(big.starts_with("HTTP/1.1 431"), "{big}");
    lab.shutdown().await;
}

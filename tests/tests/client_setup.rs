//! Mail client set-up over HTTP: Thunderbird's autoconfig and Outlook's Autodiscover,
//! fetched with Python's urllib and parsed with Python's xml.etree (judges we did not
//! write). alfa announces public ports from `[client]` (as behind NAT), beta the ports it
//! listens on. Outlook asks Autodiscover over HTTPS: the same documents are served there,
//! and Python verifies the certificate against the lab CA. Every TLS listener, implicit or
//! STARTTLS, sends its certificate with the intermediate CA: `openssl s_client` verifies it
//! against the lab root alone, as a client configured with only the root does.

use pec_e2e::{Lab, run_python, standard};

/// Fetches a URL (POST when a body is given) and prints one line per service found:
/// `kind protocol host port security`, or `HTTP <status>` on an HTTP error.
const CLIENT: &str = r#"
import ssl, sys, urllib.request, urllib.error, xml.etree.ElementTree as ET
url, ca, body = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=body.encode() if body else None,
                             headers={"Content-Type": "text/xml"} if body else {})
ctx = None
if ca:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the lab certificate names mx.<domain>, not 127.0.0.1
try:
    doc = urllib.request.urlopen(req, timeout=20, context=ctx).read()
except urllib.error.HTTPError as e:
    print("HTTP", e.code)
    sys.exit(0)
root = ET.fromstring(doc)
if root.tag == "clientConfig":
    p = root.find("emailProvider")
    print("provider", p.get("id"), p.findtext("displayName"))
    for kind in ("incomingServer", "outgoingServer"):
        for s in p.findall(kind):
            print(kind, s.get("type"), s.findtext("hostname"), s.findtext("port"),
                  s.findtext("socketType"), s.findtext("username"))
else:
    ns = {"r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    acc = root.find("r:Response/r:Account", ns)
    print("account", acc.findtext("r:AccountType", namespaces=ns), acc.findtext("r:Action", namespaces=ns))
    for p in acc.findall("r:Protocol", ns):
        f = lambda n: p.findtext("r:" + n, namespaces=ns)
        print("protocol", f("Type"), f("Server"), f("Port"), f("SSL"), f("Encryption"), f("LoginName"))
"#;

fn fetch(port: u16, path_and_query: &str, body: Option<&str>) -> Vec<String> {
    fetch_from(
        &format!("http://127.0.0.1:{port}{path_and_query}"),
        "",
        body,
    )
}

/// Fetches `url`, verifying an HTTPS server against the CA file `ca`.
fn fetch_from(url: &str, ca: &str, body: Option<&str>) -> Vec<String> {
    let mut args = vec![url, ca];
    if let Some(b) = body {
        args.push(b);
    }
    run_python(CLIENT, &args, &[], b"")
        .expect("python client")
        .lines()
        .map(str::to_string)
        .collect()
}

/// `openssl s_client` to `port` (with `-starttls` for `starttls`), verifying the server
/// name `host` against the CA file `ca` and failing on any verification error.
fn s_client(port: u16, starttls: Option<&str>, host: &str, ca: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", host, "-verify_hostname", host])
        .args(["-CAfile", ca, "-verify_return_error", "-showcerts"])
        .stdin(std::process::Stdio::null());
    if let Some(protocol) = starttls {
        cmd.args(["-starttls", protocol]);
    }
    cmd.output().expect("the openssl command-line tool")
}

fn autodiscover_request(address: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\
         <Request><EMailAddress>{address}</EMailAddress>\
         <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>\
         </Request></Autodiscover>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thunderbird_autoconfig_and_outlook_autodiscover() {
    let mut specs = standard();
    specs[0].extra = "[client]\nhost = \"mail.pec.alfa.test\"\nimaps_port = 993\n\
                      submission_tls_port = 465\npop3s_port = 995\nimap_port = 143\n\
                      submission_port = 587\n"
        .into();
    let lab = Lab::start(specs, &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));

    // Thunderbird, both paths, on beta: the ports it listens on, its hostname.
    let beta_expected = vec![
        "provider pec.comune.beta.test Beta PEC (lab)".to_string(),
        format!(
            "incomingServer imap mx.pec.beta.test {} SSL %EMAILADDRESS%",
            beta.imaps_port
        ),
        format!(
            "incomingServer imap mx.pec.beta.test {} STARTTLS %EMAILADDRESS%",
            beta.imap_port
        ),
        format!(
            "incomingServer pop3 mx.pec.beta.test {} SSL %EMAILADDRESS%",
            beta.pop3s_port
        ),
        format!(
            "outgoingServer smtp mx.pec.beta.test {} SSL %EMAILADDRESS%",
            beta.submission_port
        ),
        format!(
            "outgoingServer smtp mx.pec.beta.test {} STARTTLS %EMAILADDRESS%",
            beta.submission_starttls_port
        ),
    ];
    for path in [
        "/mail/config-v1.1.xml",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
    ] {
        let got = fetch(
            beta.http_port,
            &format!("{path}?emailaddress=ufficio.protocollo%40pec.comune.beta.test"),
            None,
        );
        assert_eq!(got, beta_expected, "{path}");
    }

    // alfa announces the public ports of its [client] table.
    let got = fetch(
        alfa.http_port,
        "/mail/config-v1.1.xml?emailaddress=mario.rossi@pec.alfa.test",
        None,
    );
    assert_eq!(
        got,
        vec![
            "provider pec.alfa.test Alfa PEC (lab)",
            "incomingServer imap mail.pec.alfa.test 993 SSL %EMAILADDRESS%",
            "incomingServer imap mail.pec.alfa.test 143 STARTTLS %EMAILADDRESS%",
            "incomingServer pop3 mail.pec.alfa.test 995 SSL %EMAILADDRESS%",
            "outgoingServer smtp mail.pec.alfa.test 465 SSL %EMAILADDRESS%",
            "outgoingServer smtp mail.pec.alfa.test 587 STARTTLS %EMAILADDRESS%",
        ]
    );

    // Outlook: POST with the request schema, and GET.
    let expected = vec![
        "account email settings",
        "protocol IMAP mail.pec.alfa.test 993 on SSL mario.rossi@pec.alfa.test",
        "protocol IMAP mail.pec.alfa.test 143 off TLS mario.rossi@pec.alfa.test",
        "protocol POP3 mail.pec.alfa.test 995 on SSL mario.rossi@pec.alfa.test",
        "protocol SMTP mail.pec.alfa.test 465 on SSL mario.rossi@pec.alfa.test",
        "protocol SMTP mail.pec.alfa.test 587 off TLS mario.rossi@pec.alfa.test",
    ];
    let got = fetch(
        alfa.http_port,
        "/autodiscover/autodiscover.xml",
        Some(&autodiscover_request("Mario.Rossi@pec.alfa.test")),
    );
    assert_eq!(got, expected);
    let got = fetch(
        alfa.http_port,
        "/autodiscover/autodiscover.xml?emailaddress=mario.rossi%40pec.alfa.test",
        None,
    );
    assert_eq!(got, expected);

    // Over HTTPS, as Outlook asks, with a certificate chaining to the lab CA.
    let ca = lab.ca().display().to_string();
    let got = fetch_from(
        &format!(
            "https://127.0.0.1:{}/autodiscover/autodiscover.xml",
            alfa.https_port
        ),
        &ca,
        Some(&autodiscover_request("mario.rossi@pec.alfa.test")),
    );
    assert_eq!(got, expected);
    let got = fetch_from(
        &format!(
            "https://127.0.0.1:{}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=mario.rossi%40pec.alfa.test",
            alfa.https_port
        ),
        &ca,
        None,
    );
    assert_eq!(got.len(), 6, "{got:?}");
    // A client that does not trust the lab CA refuses the server.
    let untrusted = run_python(
        CLIENT,
        &[
            &format!(
                "https://127.0.0.1:{}/autodiscover/autodiscover.xml",
                alfa.https_port
            ),
            "/etc/ssl/certs/ca-certificates.crt",
        ],
        &[],
        b"",
    );
    assert!(
        untrusted
            .as_ref()
            .is_err_and(|e| e.contains("CERTIFICATE_VERIFY_FAILED")),
        "{untrusted:?}"
    );

    // Only hosted domains: beta's domain at alfa, an unknown one, a malformed request.
    for (path, body, status) in [
        (
            "/mail/config-v1.1.xml?emailaddress=anna.bianchi%40pec.beta.test",
            None,
            "HTTP 404",
        ),
        (
            "/autodiscover/autodiscover.xml",
            Some(autodiscover_request("chi@altro.example.it")),
            "HTTP 404",
        ),
        (
            "/autodiscover/autodiscover.xml",
            Some("<Autodiscover><Request/></Autodiscover>".to_string()),
            "HTTP 400",
        ),
        ("/index.html", None, "HTTP 404"),
    ] {
        assert_eq!(
            fetch(alfa.http_port, path, body.as_deref()),
            vec![status],
            "{path}"
        );
    }

    // Every TLS listener sends its chain: the root alone verifies it.
    for (what, port, starttls) in [
        ("submission (TLS)", beta.submission_port, None),
        (
            "submission (STARTTLS)",
            beta.submission_starttls_port,
            Some("smtp"),
        ),
        ("MX", beta.mx_port, Some("smtp")),
        ("IMAPS", beta.imaps_port, None),
        ("IMAP", beta.imap_port, Some("imap")),
        ("POP3S", beta.pop3s_port, None),
        ("POP3", beta.pop3_port, Some("pop3")),
        ("HTTPS", beta.https_port, None),
    ] {
        let out = s_client(port, starttls, "mx.pec.beta.test", &ca);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Verify return code: 0 (ok)"),
            "{what}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(" 1 s:C = IT, O = PEC Lab, CN = PEC Lab CA1 (NOT FOR PRODUCTION)"),
            "{what}: the intermediate is sent: {text}"
        );
        // Without the lab root: refused.
        let refused = s_client(
            port,
            starttls,
            "mx.pec.beta.test",
            "/etc/ssl/certs/ca-certificates.crt",
        );
        assert!(!refused.status.success(), "{what}");
    }
    lab.shutdown().await;
}

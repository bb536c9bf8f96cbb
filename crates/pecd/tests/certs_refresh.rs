//! `pecd certs refresh` against a small HTTP server of the test: the provider index and a
//! DER CRL (made by the `openssl` CLI) are downloaded, checked and installed; a broken
//! index or a missing CRL changes nothing; a `file://` index is installed too.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use pec_proto::labpki::GestoreSpec;

type Files = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// Serves `files` by path over HTTP/1.1 (404 for the others); returns the base URL.
fn serve(files: Files) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            let path = request.split(' ').nth(1).unwrap_or("").to_string();
            let found = files.lock().unwrap().get(&path).cloned();
            let (status, body) = match found {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", Vec::new()),
            };
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn refresh(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pecd"))
        .arg("--config")
        .arg(config)
        .args(["certs", "refresh"])
        .output()
        .expect("run pecd")
}

#[test]
fn index_and_der_crl_are_downloaded_checked_and_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    let specs = ["alfa", "beta"]
        .iter()
        .map(|id| GestoreSpec {
            id: id.to_string(),
            provider_name: format!("{id} PEC (lab)"),
            domains: vec![format!("pec.{id}.test")],
        })
        .collect();
    pecd::certs::write_lab(&certs, specs, 30, false).unwrap();
    // The intermediate is an anchor too, so a DER CRL of it checks without its certificate.
    let mut bundle = std::fs::read(certs.join("ca.pem")).unwrap();
    bundle.extend(std::fs::read(certs.join("ca1.pem")).unwrap());
    std::fs::write(certs.join("ca.pem"), bundle).unwrap();
    // The intermediate revokes beta's signing certificate; the CRL is published in DER.
    common::intermediate_revokes(&certs, "beta/sign.pem", "ca1-crl.pem");
    common::openssl(
        &certs,
        &[
            "crl",
            "-in",
            "ca1-crl.pem",
            "-outform",
            "DER",
            "-out",
            "ca1.crl",
        ],
    );
    let index = std::fs::read(certs.join("index.ldif")).unwrap();
    let files: Files = Arc::default();
    files
        .lock()
        .unwrap()
        .insert("/igpec/index.ldif".into(), index.clone());
    files.lock().unwrap().insert(
        "/crl/ca1.crl".into(),
        std::fs::read(certs.join("ca1.crl")).unwrap(),
    );
    let base = serve(files.clone());
    // The local index is gone: only the download can bring it back.
    std::fs::remove_file(certs.join("index.ldif")).unwrap();
    let config = tmp.path().join("pecd.toml");
    std::fs::write(
        &config,
        format!(
            "[gestore]\ndata_dir = \"state\"\n\n[certificates]\ndir = \"certs\"\nid = \"alfa\"\n\
             index_url = \"{base}/igpec/index.ldif\"\ncrl_urls = [\"{base}/crl/ca1.crl\"]\n"
        ),
    )
    .unwrap();

    let out = refresh(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2 providers") && text.contains("1 CRLs"),
        "{text}"
    );
    assert_eq!(std::fs::read(certs.join("index.ldif")).unwrap(), index);
    // The installed CRL is the published one, now PEM: openssl reads it back to the DER.
    common::openssl(
        &certs,
        &[
            "crl",
            "-in",
            "crl/ca1.pem",
            "-outform",
            "DER",
            "-out",
            "back.crl",
        ],
    );
    assert_eq!(
        std::fs::read(certs.join("back.crl")).unwrap(),
        std::fs::read(certs.join("ca1.crl")).unwrap()
    );
    let material = pecd::trust::load(&certs).unwrap();
    assert_eq!(material.index.providers.len(), 2);

    // A broken index is refused and nothing changes; an unreachable CRL likewise.
    files
        .lock()
        .unwrap()
        .insert("/igpec/index.ldif".into(), b"not: an\nindex".to_vec());
    let out = refresh(&config);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing was changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(certs.join("index.ldif")).unwrap(), index);
    files.lock().unwrap().remove("/crl/ca1.crl");
    files
        .lock()
        .unwrap()
        .insert("/igpec/index.ldif".into(), index.clone());
    let out = refresh(&config);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert!(certs.join("crl/ca1.pem").exists());

    // A file another job fetched (the official index wants HTTPS and a client certificate).
    let fetched = tmp.path().join("fetched.ldif");
    std::fs::write(&fetched, &index).unwrap();
    std::fs::remove_file(certs.join("index.ldif")).unwrap();
    std::fs::write(
        &config,
        format!(
            "[gestore]\ndata_dir = \"state\"\n\n[certificates]\ndir = \"certs\"\nid = \"alfa\"\n\
             index_url = \"file://{}\"\n",
            fetched.display()
        ),
    )
    .unwrap();
    let out = refresh(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(certs.join("index.ldif")).unwrap(), index);
}

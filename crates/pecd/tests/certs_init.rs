//! `pecd certs init`, run as a user would, judged by the `openssl` command-line tool.

use std::path::Path;
use std::process::{Command, Output};

use pec_proto::index::ProviderIndex;

fn pecd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pecd"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `openssl` in `dir`; a missing tool fails the test.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool is required by this test")
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const FILES: [&str; 13] = [
    "ca.pem",
    "ca.key",
    "ca1.pem",
    "ca1.key",
    "index.ldif",
    "alfa/sign.pem",
    "alfa/sign.key",
    "alfa/tls.pem",
    "alfa/tls.key",
    "beta/sign.pem",
    "beta/sign.key",
    "beta/tls.pem",
    "beta/tls.key",
];

fn snapshot(dir: &Path) -> Vec<Vec<u8>> {
    FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

#[test]
fn init_writes_a_working_lab_pki() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let dir_s = dir.to_str().unwrap();
    let args = [
        "certs",
        "init",
        "--dir",
        dir_s,
        "--gestore",
        "alfa=pec.alfa.test,pec.cliente.test",
        "--gestore",
        "beta=pec.beta.test:Beta Servizi PEC S.p.A.",
        "--days",
        "30",
    ];
    let out = pecd(&args);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT FOR PRODUCTION"));

    for f in FILES {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    for id in ["alfa", "beta"] {
        for purpose_file in [("smimesign", "sign.pem"), ("sslserver", "tls.pem")] {
            // The file carries its chain: the root alone is enough.
            let cert = format!("{id}/{}", purpose_file.1);
            assert_ok(&openssl(
                &dir,
                &[
                    "verify",
                    "-CAfile",
                    "ca.pem",
                    "-untrusted",
                    &cert,
                    "-purpose",
                    purpose_file.0,
                    &cert,
                ],
            ));
            assert_ok(&openssl(
                &dir,
                &[
                    "crl2pkcs7",
                    "-nocrl",
                    "-certfile",
                    &cert,
                    "-out",
                    "chain.p7",
                ],
            ));
            let listed = openssl(
                &dir,
                &["pkcs7", "-in", "chain.p7", "-print_certs", "-noout"],
            );
            assert_ok(&listed);
            let listed = String::from_utf8_lossy(&listed.stdout);
            assert_eq!(
                listed.matches("subject=").count(),
                2,
                "{cert}: the certificate, then the intermediate CA: {listed}"
            );
            assert!(
                listed
                    .contains("issuer=C = IT, O = PEC Lab, CN = PEC Lab CA1 (NOT FOR PRODUCTION)"),
                "{listed}"
            );
        }
        // Without the chain, the root alone is not enough: the intermediate is needed.
        let alone = openssl(
            &dir,
            &["verify", "-CAfile", "ca.pem", &format!("{id}/sign.pem")],
        );
        assert!(!alone.status.success());
        // Each key matches its certificate.
        for (cert, key) in [("sign.pem", "sign.key"), ("tls.pem", "tls.key")] {
            let a = openssl(
                &dir,
                &["x509", "-in", &format!("{id}/{cert}"), "-noout", "-pubkey"],
            );
            let b = openssl(&dir, &["pkey", "-in", &format!("{id}/{key}"), "-pubout"]);
            assert_ok(&a);
            assert_ok(&b);
            assert_eq!(a.stdout, b.stdout);
        }
    }
    // HTTPS client set-up: the TLS certificate names autoconfig.<domain> (Thunderbird)
    // and autodiscover.<domain> (Outlook) of every domain of its gestore, and no other's.
    let sans = openssl(
        &dir,
        &[
            "x509",
            "-in",
            "alfa/tls.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert_ok(&sans);
    let sans = String::from_utf8_lossy(&sans.stdout);
    for domain in ["pec.alfa.test", "pec.cliente.test"] {
        for host in ["autoconfig", "autodiscover"] {
            let name = format!("{host}.{domain}");
            assert!(sans.contains(&format!("DNS:{name}")), "{name}: {sans}");
            assert_ok(&openssl(
                &dir,
                &[
                    "verify",
                    "-CAfile",
                    "ca.pem",
                    "-untrusted",
                    "alfa/tls.pem",
                    "-purpose",
                    "sslserver",
                    "-verify_hostname",
                    &name,
                    "alfa/tls.pem",
                ],
            ));
        }
    }
    assert!(!sans.contains("pec.beta.test"), "{sans}");
    let other = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "alfa/tls.pem",
            "-verify_hostname",
            "autoconfig.pec.beta.test",
            "alfa/tls.pem",
        ],
    );
    assert!(!other.status.success(), "a name of another gestore");
    let text = openssl(
        &dir,
        &[
            "x509",
            "-in",
            "beta/sign.pem",
            "-noout",
            "-subject",
            "-enddate",
        ],
    );
    assert_ok(&text);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(
            "O = Beta Servizi PEC S.p.A., CN = Posta Certificata Beta Servizi PEC S.p.A."
        ),
        "{text}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in FILES {
            let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            if f.ends_with(".key") {
                assert_eq!(mode, 0o600, "{f}");
            } else {
                assert_eq!(mode & 0o077 & !0o044, 0, "{f}: {mode:o}");
            }
        }
    }

    let index = ProviderIndex::parse_ldif(&std::fs::read(dir.join("index.ldif")).unwrap()).unwrap();
    assert_eq!(index.providers.len(), 2);
    assert_eq!(
        index.by_domain("pec.cliente.test").unwrap().name,
        "Alfa PEC (lab)"
    );
    let beta = index.by_domain("PEC.BETA.TEST").unwrap();
    assert_eq!(beta.name, "Beta Servizi PEC S.p.A.");
    assert_eq!(beta.mail_receipt, "ricevute@pec.beta.test");
    let der = openssl(&dir, &["x509", "-in", "beta/sign.pem", "-outform", "DER"]);
    assert_ok(&der);
    let beta_der = der.stdout;
    assert_eq!(beta.certificates, vec![beta_der.clone()]);
    assert_eq!(
        beta.certificate_hashes,
        vec![pec_proto::smime::sha1_hex(&beta_der)]
    );

    // A second run without --force fails and changes nothing.
    let before = snapshot(&dir);
    let out = pecd(&args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(snapshot(&dir), before);

    // With --force, new keys.
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_ok(&pecd(&forced));
    let after = snapshot(&dir);
    assert_ne!(after[1], before[1]);
    assert_ok(&openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "alfa/sign.pem",
            "alfa/sign.pem",
        ],
    ));
}

#[test]
fn init_defaults_to_one_demo_gestore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    assert_ok(&pecd(&["certs", "init", "--dir", dir.to_str().unwrap()]));
    assert_ok(&openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "ca1.pem",
            "demo/sign.pem",
        ],
    ));
    let index = ProviderIndex::parse_ldif(&std::fs::read(dir.join("index.ldif")).unwrap()).unwrap();
    assert_eq!(index.providers.len(), 1);
    assert_eq!(index.providers[0].name, "Demo PEC (lab)");
    assert_eq!(index.providers[0].managed_domains, vec!["pec.demo.test"]);
    // Default validity: 825 days.
    let out = openssl(
        &dir,
        &[
            "x509",
            "-in",
            "demo/sign.pem",
            "-noout",
            "-checkend",
            &(824 * 86400).to_string(),
        ],
    );
    assert_ok(&out);
    let out = openssl(
        &dir,
        &[
            "x509",
            "-in",
            "demo/sign.pem",
            "-noout",
            "-checkend",
            &(826 * 86400).to_string(),
        ],
    );
    assert!(!out.status.success());
}

#[test]
fn init_refuses_bad_arguments_and_documents_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let out = pecd(&[
        "certs",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--gestore",
        "nodomain",
    ]);
    assert!(!out.status.success());
    let out = pecd(&[
        "certs",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--gestore",
        "a=bad domain",
    ]);
    assert!(!out.status.success());
    assert!(!dir.exists());

    let out = pecd(&["certs", "init", "--help"]);
    assert_ok(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "NOT FOR PRODUCTION",
        "--gestore",
        "--force",
        "--days",
        "index.ldif",
        "0600",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
}

/// Runs `pecd certs publish` for `config` into `<dir>/alfa.ldif.p7m`, opens the file
/// with openssl and the lab CA, and returns the records in it.
fn published(dir: &Path, config: &str) -> ProviderIndex {
    let p7m = dir.join("alfa.ldif.p7m").display().to_string();
    assert_ok(&pecd(&[
        "--config", config, "certs", "publish", "--out", &p7m,
    ]));
    let out = openssl(
        dir,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "alfa.ldif.p7m",
            "-CAfile",
            "certs/ca.pem",
            "-purpose",
            "smimesign",
        ],
    );
    assert_ok(&out);
    ProviderIndex::parse_ldif(&out.stdout).unwrap()
}

#[test]
fn publish_signs_only_our_own_index_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_ok(&pecd(&[
        "certs",
        "init",
        "--dir",
        &dir.join("certs").display().to_string(),
        "--gestore",
        "alfa=pec.alfa.test,pec.comune.alfa.test",
        "--gestore",
        "beta=pec.beta.test",
    ]));
    let config = dir.join("pecd.toml");
    std::fs::write(
        &config,
        "[gestore]\nname = \"Alfa PEC (lab)\"\ndata_dir = \"data\"\n\
         domains = [\"pec.alfa.test\", \"pec.comune.alfa.test\"]\n\
         [certificates]\ndir = \"certs\"\nid = \"alfa\"\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let p7m = dir.join("alfa.ldif.p7m").display().to_string();

    // The record of alfa, with both domains, not beta's.
    let index = published(dir, &config);
    assert_eq!(index.providers.len(), 1);
    assert_eq!(index.providers[0].name, "Alfa PEC (lab)");
    assert_eq!(
        index.providers[0].managed_domains,
        ["pec.alfa.test", "pec.comune.alfa.test"]
    );

    // Its domains follow `pecd domain add` and `remove`.
    let added = pecd(&["--config", &config, "domain", "add", "pec.nuovo.alfa.test"]);
    assert_ok(&added);
    assert!(String::from_utf8_lossy(&added.stdout).contains("pecd certs publish"));
    assert_eq!(
        published(dir, &config).providers[0].managed_domains,
        [
            "pec.alfa.test",
            "pec.comune.alfa.test",
            "pec.nuovo.alfa.test"
        ]
    );
    assert_ok(&pecd(&[
        "--config",
        &config,
        "domain",
        "remove",
        "pec.nuovo.alfa.test",
        "--yes",
    ]));
    assert_eq!(
        published(dir, &config).providers[0].managed_domains,
        ["pec.alfa.test", "pec.comune.alfa.test"]
    );

    // A gestore name the index does not know is refused.
    let wrong = dir.join("wrong.toml");
    std::fs::write(
        &wrong,
        "[gestore]\nname = \"Gamma PEC\"\ndata_dir = \"data\"\ndomains = [\"pec.alfa.test\"]\n\
         [certificates]\ndir = \"certs\"\nid = \"alfa\"\n",
    )
    .unwrap();
    let out = pecd(&[
        "--config",
        &wrong.display().to_string(),
        "certs",
        "publish",
        "--out",
        &p7m,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no record named"));
}

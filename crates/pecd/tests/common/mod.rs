//! Helpers shared by the pecd integration tests that make certificates and CRLs with the
//! `openssl` command-line tool, the independent judge of the lab PKI.

use std::path::Path;
use std::process::Command;

/// Runs `openssl args` in `dir`; panics with its error output when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Has the lab's intermediate CA (`ca1.pem`/`ca1.key` in `dir`, as `pecd certs init`
/// writes them) revoke the certificate file `revoked` and write its CRL, in PEM, to
/// `crl_out`; both paths relative to `dir`.
pub fn intermediate_revokes(dir: &Path, revoked: &str, crl_out: &str) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = lab\n[lab]\ndatabase = ca-index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 7\n",
    )
    .unwrap();
    std::fs::write(dir.join("ca-index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    let ca = [
        "-config", "ca.cnf", "-keyfile", "ca1.key", "-cert", "ca1.pem",
    ];
    openssl(dir, &[&["ca"][..], &ca, &["-revoke", revoked]].concat());
    openssl(
        dir,
        &[&["ca"][..], &ca, &["-gencrl", "-out", crl_out]].concat(),
    );
}

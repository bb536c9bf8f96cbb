//! `pecd config check`, run as an operator would before a restart: a good configuration
//! passes; each kind of problem is reported with the file, the line of its key and the
//! key; the exit status says whether the server would start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pec_proto::labpki::{self, GestoreSpec};

/// A lab: certificates of two gestori (`alfa`, `beta`) and a data directory.
struct Lab {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Lab {
    fn new(days: u32) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let specs = ["alfa", "beta"]
            .iter()
            .map(|id| GestoreSpec {
                id: id.to_string(),
                provider_name: format!("{id} (lab)"),
                domains: vec![format!("pec.{id}.test")],
            })
            .collect();
        pecd::certs::write_lab(&dir.join("certs"), specs, days, false).unwrap();
        std::fs::create_dir(dir.join("data")).unwrap();
        Lab { _tmp: tmp, dir }
    }

    /// Writes `pecd.toml` with `text` and checks it.
    fn check(&self, text: &str) -> Checked {
        let path = self.dir.join("pecd.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pecd"))
            .arg("--config")
            .arg(&path)
            .args(["config", "check"])
            .output()
            .unwrap();
        Checked {
            path,
            text: text.to_string(),
            out,
        }
    }
}

/// A configuration with no problem at all (not even a warning).
const GOOD: &str = r#"[gestore]
name = "Alfa PEC"
hostname = "mx.pec.alfa.test"
data_dir = "data"
domains = ["pec.alfa.test", "pec.cliente.test"]

[certificates]
dir = "certs"
id = "alfa"

[listen]
submission_tls = "127.0.0.1:10465"
mx = "127.0.0.1:10025"
imaps = "127.0.0.1:10993"
http = "127.0.0.1:10080"

[routes]
"pec.beta.test" = "127.0.0.1:20025"

[antivirus]
clamd = "127.0.0.1:3310"
"#;

struct Checked {
    path: PathBuf,
    text: String,
    out: Output,
}

impl Checked {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// The 1-based line of the first line of the file that starts with `start`.
    fn line(&self, start: &str) -> usize {
        self.text
            .lines()
            .position(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("{start:?} not in the file"))
            + 1
    }

    /// Asserts that a problem of `level` is reported for `key` on the line starting
    /// with `line_start`, its message containing `words`.
    fn reports(&self, level: &str, line_start: &str, key: &str, words: &str) {
        let head = format!(
            "{}:{}: {level}: {key}: ",
            self.path.display(),
            self.line(line_start)
        );
        let stderr = self.stderr();
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&head) && l.contains(words)),
            "expected {head}…{words}… in:\n{stderr}"
        );
    }
}

#[test]
fn a_good_configuration_passes_silently() {
    let lab = Lab::new(400);
    let c = lab.check(GOOD);
    assert_eq!(c.code(), Some(0), "{}", c.stderr());
    assert_eq!(c.stderr(), "");
    assert!(String::from_utf8_lossy(&c.out.stdout).contains("valid, 0 warning(s)"));
}

#[test]
fn syntax_unknown_keys_and_wrong_types_name_their_line_and_key() {
    let lab = Lab::new(400);
    let c = lab.check(&GOOD.replace("[listen]", "[listen"));
    assert_eq!(c.code(), Some(1));
    assert!(
        c.stderr().starts_with(&format!(
            "{}:{}: error: ",
            c.path.display(),
            c.line("[listen")
        )),
        "{}",
        c.stderr()
    );

    let c = lab.check(&GOOD.replace("id = \"alfa\"", "id = \"alfa\"\nide = \"x\""));
    assert_eq!(c.code(), Some(1));
    c.reports("error", "ide =", "certificates.ide", "unknown field `ide`");

    let c = lab.check(&GOOD.replace("127.0.0.1:10025", "127.0.0.1:99999"));
    assert_eq!(c.code(), Some(1));
    c.reports("error", "mx =", "listen.mx", "socket address");

    let c = lab.check(&GOOD.replace("data_dir = \"data\"", "data_dir = 5"));
    assert_eq!(c.code(), Some(1));
    c.reports("error", "data_dir", "gestore.data_dir", "invalid type");
}

#[test]
fn every_value_problem_is_reported_at_once() {
    let lab = Lab::new(400);
    let text = GOOD
        .replace(
            "domains = [\"pec.alfa.test\", \"pec.cliente.test\"]",
            "domains = [\"PEC.alfa.test\", \"pec.cliente.test\", \"pec.cliente.test\"]\n\
             default_quota = \"2 parsecs\"",
        )
        .replace("http = \"127.0.0.1:10080\"", "http = \"127.0.0.1:10025\"")
        .replace("127.0.0.1:20025", "beta-without-port")
        .replace(
            "[antivirus]",
            "[store]\nurl = \"postgresql://db:port/pecd\"\n\n[limits]\nmax_recipients = 10\n\n\
             [dns]\nresolver = \"dns.example\"\n\n[antivirus]",
        );
    let c = lab.check(&text);
    assert_eq!(c.code(), Some(1), "{}", c.stderr());
    c.reports(
        "error",
        "domains",
        "gestore.domains",
        "\"PEC.alfa.test\" is not a lower-case DNS name",
    );
    c.reports(
        "error",
        "domains",
        "gestore.domains",
        "\"pec.cliente.test\" is listed twice",
    );
    c.reports(
        "error",
        "default_quota",
        "gestore.default_quota",
        "\"2 parsecs\" is not a size",
    );
    c.reports(
        "error",
        "http =",
        "listen.http",
        "127.0.0.1:10025 is also listen.mx",
    );
    c.reports(
        "error",
        "\"pec.beta.test\"",
        "routes.pec.beta.test",
        "not host:port",
    );
    c.reports("error", "url =", "store.url", "not a PostgreSQL URL");
    c.reports(
        "error",
        "max_recipients",
        "limits.max_recipients",
        "at least 50",
    );
    c.reports(
        "error",
        "resolver",
        "dns.resolver",
        "not system, off or IP:PORT",
    );
    assert!(
        String::from_utf8_lossy(&c.out.stdout).contains("8 error(s), 0 warning(s)"),
        "{}",
        c.stderr()
    );
}

/// Replaces `alfa`'s `file` in the lab with `contents`, mode 0600.
fn replace(lab: &Lab, file: &str, contents: &[u8]) {
    let path = lab.dir.join("certs/alfa").join(file);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn certificates_keys_and_the_data_directory_are_checked() {
    let lab = Lab::new(400);
    // Another gestore's key.
    let beta_key = std::fs::read(lab.dir.join("certs/beta/tls.key")).unwrap();
    replace(&lab, "tls.key", &beta_key);
    // A signing key anyone can read.
    let sign_key = lab.dir.join("certs/alfa/sign.key");
    std::fs::set_permissions(&sign_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = lab.check(&GOOD.replace("data_dir = \"data\"", "data_dir = \"pecd.toml\""));
    assert_eq!(c.code(), Some(1));
    c.reports(
        "error",
        "dir = \"certs\"",
        "certificates.dir",
        "TLS certificate: the key",
    );
    c.reports(
        "error",
        "dir = \"certs\"",
        "certificates.dir",
        "accessible to every user",
    );
    c.reports(
        "error",
        "data_dir",
        "gestore.data_dir",
        "is not a directory",
    );

    // Missing files.
    std::fs::remove_file(lab.dir.join("certs/alfa/sign.pem")).unwrap();
    let c = lab.check(&GOOD.replace("id = \"alfa\"", "id = \"alfa\"\n"));
    c.reports(
        "error",
        "dir = \"certs\"",
        "certificates.dir",
        "cannot read",
    );
    assert_eq!(c.code(), Some(1));
}

#[test]
fn expired_certificates_fail_and_expiring_ones_warn() {
    // Expiring in 10 days: a warning, the check passes.
    let lab = Lab::new(10);
    let c = lab.check(GOOD);
    assert_eq!(c.code(), Some(0), "{}", c.stderr());
    c.reports(
        "warning",
        "dir = \"certs\"",
        "certificates.dir",
        "expires in",
    );
    assert_eq!(
        c.stderr().lines().count(),
        2,
        "signing and TLS: {}",
        c.stderr()
    );

    // Expired a month ago.
    let lab = Lab::new(400);
    let spec = GestoreSpec {
        id: "alfa".into(),
        provider_name: "Alfa".into(),
        domains: vec!["pec.alfa.test".into()],
    };
    let old =
        labpki::generate(&[spec], chrono::Utc::now() - chrono::Duration::days(60), 30).unwrap();
    replace(&lab, "tls.pem", old.gestori[0].tls_cert_pem.as_bytes());
    replace(&lab, "tls.key", old.gestori[0].tls_key_pem.as_bytes());
    let c = lab.check(GOOD);
    assert_eq!(c.code(), Some(1));
    c.reports(
        "error",
        "dir = \"certs\"",
        "certificates.dir",
        "TLS certificate",
    );
    assert!(c.stderr().contains("has expired"), "{}", c.stderr());
}

#[test]
fn an_unreadable_file_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_pecd"))
        .arg("--config")
        .arg(Path::new("/nonexistent/pecd.toml"))
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

#[test]
fn protocol_offices_are_checked() {
    let lab = Lab::new(400);
    let good = format!(
        "{GOOD}\n[[protocol_office]]\nmailbox = \"protocollo@pec.alfa.test\"\n\
         formats = [\"pdf\", \"PDF/A\", \"tiff\"]\nmax_attachment_size = \"20MiB\"\n\n\
         [[protocol_office]]\ndomain = \"pec.cliente.test\"\n"
    );
    let c = lab.check(&good);
    assert_eq!(c.code(), Some(0), "{}", c.stderr());
    assert_eq!(c.stderr(), "");

    let c = lab.check(&good.replace("\"tiff\"", "\"docx\""));
    assert_eq!(c.code(), Some(1));
    c.reports(
        "error",
        "[[protocol_office]]",
        "protocol_office.formats",
        "unknown format \"docx\"",
    );

    let c = lab.check(&good.replace("20MiB", "twenty"));
    assert_eq!(c.code(), Some(1));
    c.reports(
        "error",
        "[[protocol_office]]",
        "protocol_office.max_attachment_size",
        "",
    );

    let c = lab.check(&good.replace(
        "domain = \"pec.cliente.test\"",
        "domain = \"pec.cliente.test\"\nmailbox = \"x@pec.cliente.test\"",
    ));
    assert_eq!(c.code(), Some(1));
    c.reports(
        "error",
        "[[protocol_office]]",
        "protocol_office.mailbox",
        "exactly one of mailbox and domain",
    );

    let c = lab.check(&good.replace("pec.cliente.test\"\n", "pec.gamma.test\"\n"));
    assert_eq!(c.code(), Some(0), "{}", c.stderr());
    c.reports(
        "warning",
        "[[protocol_office]]",
        "protocol_office.domain",
        "pec.gamma.test is not a hosted domain",
    );

    let c = lab.check(&good.replace(
        "pec.cliente.test\"\n",
        "pec.cliente.test\"\nripudiare = 1\n",
    ));
    assert_eq!(c.code(), Some(1));
    assert!(
        c.stderr().contains("unknown field `ripudiare`"),
        "{}",
        c.stderr()
    );
}

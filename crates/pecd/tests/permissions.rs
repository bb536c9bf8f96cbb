//! What `pecd` keeps is private to its user: the data directory and the store are closed
//! to other users, and a signing key that everyone can read stops the server before it
//! serves anything.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn pecd(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pecd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_store_is_private_and_an_open_one_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pecd.toml");
    std::fs::write(&config, "[gestore]\ndata_dir = \"state\"\n").unwrap();
    assert_ok(&pecd(&config, &["domain", "add", "pec.comune.test"]));
    let state = dir.path().join("state");
    assert_eq!(mode(&state), 0o700);
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        let m = mode(&path);
        assert_eq!(m & 0o077, 0, "{} is mode {m:o}", path.display());
    }

    // A data directory left open by an older version or by hand is closed, loudly.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = pecd(&config, &["domain", "list"]);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("0755"),
        "{stderr}"
    );
    assert_eq!(mode(&state), 0o700);
}

#[test]
fn a_key_readable_by_everyone_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let init = Command::new(env!("CARGO_BIN_EXE_pecd"))
        .args(["certs", "init", "--dir"])
        .arg(&certs)
        .args(["--gestore", "demo=pec.demo.test"])
        .output()
        .unwrap();
    assert_ok(&init);
    assert_eq!(mode(&certs.join("demo/sign.key")), 0o600);
    std::fs::set_permissions(
        certs.join("demo/sign.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let config = dir.path().join("pecd.toml");
    // No listener is configured: a server that got past the check would run until killed.
    std::fs::write(
        &config,
        "[gestore]\ndata_dir = \"state\"\ndomains = [\"pec.demo.test\"]\n\
         [certificates]\ndir = \"certs\"\nid = \"demo\"\n",
    )
    .unwrap();
    let out = pecd(&config, &["serve"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sign.key") && stderr.contains("0644"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "refused before opening the store"
    );
}

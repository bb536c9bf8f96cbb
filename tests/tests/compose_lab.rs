//! The docker-compose lab, whole: `interop/compose.sh up --ha` builds the base image
//! (debootstrap, once per machine) and the lab image with this build's pecd, starts both
//! gestori, the second alfa node on PostgreSQL, Postfix, clamd and the DNS server;
//! `interop/compose.sh test` then checks PEC both ways through MX records, ordinary mail
//! through Postfix, beta stopped and cut off mid-stream, and one alfa node killed under
//! load (see interop/compose_test.py); `down` must leave no container of the lab.
//!
//! Skipped only on a machine without the `docker` command; a docker that is there but
//! does not work fails the test. The lab runs under a project name, a network and
//! published ports of this run's own (free loopback ports), so another lab on the same
//! Docker engine — a second checkout's test suite, or a sysadmin's `compose.sh up` — is
//! not disturbed and does not disturb it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::sync::OnceLock;

use pec_e2e::{free_port, pecd_binary};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// This run's project name (also the image's name).
fn project() -> String {
    format!("pecd-lab-test-{}", std::process::id())
}

/// What makes this run's lab its own: project, network, published ports.
fn lab_env() -> &'static [(String, String)] {
    static ENV: OnceLock<Vec<(String, String)>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = vec![
            ("LAB_PROJECT".to_string(), project()),
            (
                "LAB_NET".to_string(),
                format!("10.89.{}", 100 + std::process::id() % 150),
            ),
        ];
        for name in [
            "LAB_ALFA_SMTP",
            "LAB_ALFA_IMAP",
            "LAB_ALFA_HTTP",
            "LAB_BETA_SMTP",
            "LAB_BETA_IMAP",
            "LAB_ALFA2_SMTP",
            "LAB_ALFA2_IMAP",
        ] {
            env.push((name.to_string(), free_port().to_string()));
        }
        env
    })
}

fn compose_sh(args: &[&str]) -> Output {
    Command::new(root().join("interop/compose.sh"))
        .args(args)
        .env("PECD", pecd_binary())
        .envs(lab_env().iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run interop/compose.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Brings the lab down however the test ends.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let out = compose_sh(&["down"]);
        if !out.status.success() {
            eprintln!("compose.sh down: {}", text(&out));
        }
    }
}

fn lab_containers() -> usize {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", project()),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn compose_lab_up_test_down() {
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no docker command on this machine");
        return;
    }
    let guard = Down;
    let up = compose_sh(&["up", "--ha"]);
    assert!(
        up.status.success(),
        "compose.sh up --ha failed:\n{}",
        text(&up)
    );
    let status = compose_sh(&["status"]);
    assert!(
        status.status.success(),
        "not every service runs:\n{}",
        text(&status)
    );
    let test = compose_sh(&["test"]);
    let report = text(&test);
    assert!(test.status.success(), "compose.sh test failed:\n{report}");
    for check in [
        "routed by MX records",
        "ordinary mail both ways",
        "beta-stopped: 3 messages held",
        "beta-cut-off: 3 messages held",
        "HA: one alfa node killed",
    ] {
        assert!(
            report.contains(check),
            "check {check:?} did not run:\n{report}"
        );
    }
    drop(guard);
    assert_eq!(
        lab_containers(),
        0,
        "down left containers of the lab behind"
    );
}

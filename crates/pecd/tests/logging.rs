//! The operational log as a service manager or a container runtime collects it: no
//! terminal escape sequences when standard error is not a terminal, addresses written
//! plainly, and with `[logging] format = "json"` one JSON object per line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts `pecd serve` on `config` (stderr piped, so not a terminal) and returns its log
/// lines up to and including the first that contains `marker`.
fn log_until(config: &Path, marker: &str) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pecd"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let ready = line.contains(marker);
                lines.push(line);
                if ready {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no {marker:?} in pecd's log:\n{}", lines.join("\n"));
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("pecd.toml");
    std::fs::write(
        &path,
        format!(
            "[gestore]\ndata_dir = \"state\"\ndomains = [\"pec.log.test\"]\n\n\
             [certificates]\ndir = \"certs\"\nid = \"log\"\nlab_generate = true\n\n\
             [listen]\nmx = \"127.0.0.1:0\"\n\n{extra}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn text_log_off_a_terminal_has_no_escape_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let lines = log_until(&config(dir.path(), ""), "listener started");
    let all = lines.join("\n");
    assert!(!all.contains('\u{1b}'), "escape sequences in:\n{all}");
    let listener = lines.last().unwrap();
    assert!(
        listener.contains("addr=127.0.0.1:") && !listener.contains("Some("),
        "{listener}"
    );
}

#[test]
fn json_log_is_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = "[logging]\nformat = \"json\"\n";
    let lines = log_until(&config(dir.path(), json), "pecd ready");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"pecd ready\"")),
        "{lines:?}"
    );
}

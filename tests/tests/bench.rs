//! `pecd bench` checks its own work: a short run prints JSON with the figures the issue
//! names and no acknowledged message without its receipts. A functional test, not a
//! timing one: no figure is compared with a threshold.

use std::process::Command;

#[test]
fn a_short_bench_run_reports_every_figure_and_loses_nothing() {
    let out = Command::new(pec_e2e::pecd_binary())
        .args([
            "bench",
            "--seconds",
            "2",
            "--json",
            "--clients",
            "4",
            "--idle-connections",
            "100",
        ])
        .output()
        .expect("run pecd bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pecd bench failed:\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stderr}"));
    for key in [
        "accepted_per_s",
        "p99_ms",
        "signing_limit_per_s",
        "ratio_to_signing_limit",
        "postfix_accepted_per_s",
        "ratio_to_postfix",
        "lost",
    ] {
        assert!(report.get(key).is_some(), "{key} missing in {report}");
    }
    assert_eq!(report["lost"], 0);
    assert!(report["accepted_per_s"].as_f64().is_some_and(|v| v > 0.0));
    assert!(
        report["signing_limit_per_s"]
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );
    let cases = report["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8, "every case runs: {cases:?}");
    assert!(
        cases
            .iter()
            .all(|c| c["lost"] == 0 && c["accepted"].as_u64() > Some(0))
    );
}

#[test]
fn a_short_bench_run_on_postgres_with_two_nodes_reports_cpu_per_message() {
    let out = Command::new(pec_e2e::pecd_binary())
        .args([
            "bench",
            "--postgres",
            "--nodes",
            "2",
            "--main-only",
            "--no-postfix",
            "--seconds",
            "2",
            "--json",
            "--clients",
            "4",
            "--idle-connections",
            "10",
        ])
        .output()
        .expect("run pecd bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pecd bench failed:\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stderr}"));
    assert_eq!(report["nodes"], 2);
    assert!(
        report["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("postgresql")),
        "{report}"
    );
    let cases = report["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for c in cases {
        assert_eq!(c["lost"], 0, "{c}");
        assert!(c["accepted"].as_u64() > Some(0), "{c}");
        assert!(c["cpu_ms_per_msg"].as_f64().is_some_and(|v| v > 0.0), "{c}");
        assert!(
            c["db_cpu_ms_per_msg"].as_f64().is_some_and(|v| v > 0.0),
            "the database server's CPU is measured: {c}"
        );
    }
}

//! `chatbench` in a tiny bounded form against a spawned daemon, plain and
//! over TLS, so the load generator's two transports cannot rot: every
//! message reaches every member and the report says which transport ran.
//! The full-size runs are documented in docs/benchmarks.md.

use std::process::Command;

use serde_json::Value;

/// Runs chatbench with a spawned server and returns its JSON report.
fn chatbench(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_chatbench"))
        .args([
            "--spawn-server",
            "--clients",
            "20",
            "--rate",
            "2",
            "--duration",
            "1",
            "--drain",
            "10",
            "--json",
        ])
        .args(extra)
        .output()
        .expect("chatbench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chatbench failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// Every accepted message reached every one of the 20 members, once.
fn assert_all_delivered(report: &Value) {
    assert_eq!(report["connected"], 20, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["messages_sent"], 40, "{report}");
    assert_eq!(report["deliveries_expected"], 40 * 20, "{report}");
    assert_eq!(report["deliveries_received"], 40 * 20, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
}

#[test]
fn plain_run_delivers_every_message_and_says_plain() {
    let report = chatbench(&[]);
    assert_all_delivered(&report);
    assert_eq!(report["tls"], false, "{report}");
}

#[test]
fn tls_run_completes_every_handshake_and_delivers_every_message() {
    let report = chatbench(&["--tls"]);
    assert_all_delivered(&report);
    assert_eq!(report["tls"], true, "{report}");
    assert_eq!(report["tls_errors"], 0, "{report}");
}

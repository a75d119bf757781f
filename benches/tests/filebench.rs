//! `filebench` in a tiny bounded form (2 MiB) against a spawned daemon,
//! plain and over TLS, so both transports of the file benchmark keep
//! working: the run fails unless the downloaded file has the uploaded
//! size and SHA-256, and the report says which transport ran. The 1 GiB
//! runs are documented in docs/benchmarks.md.

use std::process::Command;

use serde_json::Value;

/// Runs filebench on a 2 MiB file and returns its JSON report.
fn filebench(extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_filebench"))
        .args(["--size-mib", "2", "--json"])
        .args(extra)
        .output()
        .expect("filebench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "filebench failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

#[test]
fn plain_file_round_trip_arrives_intact() {
    let report = filebench(&[]);
    assert_eq!(report["tls"], false, "{report}");
    assert!(
        report["download_mb_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
}

#[test]
fn tls_file_round_trip_arrives_intact_through_a_tls_server() {
    let report = filebench(&["--tls"]);
    assert_eq!(report["tls"], true, "{report}");
    assert!(
        report["upload_mb_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    assert!(
        report["download_mb_s"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
}

//! `chatattack` in a tiny bounded form against a spawned debug server, so
//! the load script cannot rot: every scenario name is listed, and one
//! scenario's report carries the attack's, the probe's and the server's
//! figures. The full-size runs are documented in docs/security.md.

use std::process::Command;

use serde_json::Value;

fn chatattack(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatattack"))
        .args(args)
        .output()
        .expect("chatattack runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_names_all_ten_scenarios() {
    let (ok, stdout, stderr) = chatattack(&["--list"]);
    assert!(ok, "{stderr}");
    for name in [
        "offer-flood",
        "quota-squat",
        "spool-leak",
        "idle-uploads",
        "silent-sockets",
        "partial-frames",
        "error-flood-slow-reader",
        "voice-spoof",
        "voice-tcp-squat",
        "log-volume",
    ] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
}

#[test]
fn a_tiny_silent_sockets_run_reports_attack_probe_and_server_figures() {
    let (ok, stdout, stderr) = chatattack(&[
        "--scenario",
        "silent-sockets",
        "--spawn-server",
        "--count",
        "20",
        "--seconds",
        "1",
        "--json",
    ]);
    assert!(ok, "chatattack failed: {stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["scenario"], "silent-sockets");
    let r = &v["result"];
    assert_eq!(r["sockets_opened"], 20, "{r}");
    assert_eq!(r["real_logins_meanwhile"]["tried"], 50, "{r}");
    // The probe logged in and saw its own chats come back.
    let p = &v["probe"];
    assert!(p["login_ms"].is_number(), "{p}");
    assert!(p["chats_back"].as_u64().is_some_and(|n| n >= 1), "{p}");
    assert!(p["rtt_ms"]["p99"].is_number(), "{p}");
    // The server's own figures were read from /proc of the spawned PID:
    // it held at least the 20 silent sockets as descriptors.
    let s = &v["server"];
    assert!(s["rss_peak_kib"].as_u64().is_some_and(|k| k > 0), "{s}");
    assert!(s["fds_peak"].as_u64().is_some_and(|n| n >= 20), "{s}");
}

#[test]
fn a_non_loopback_target_is_refused() {
    let (ok, _, stderr) =
        chatattack(&["--scenario", "silent-sockets", "--server", "192.0.2.1:6789"]);
    assert!(!ok);
    assert!(stderr.contains("loopback"), "{stderr}");
}

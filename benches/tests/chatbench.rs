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

#[test]
fn rooms_run_delivers_each_chat_to_the_members_of_its_room_only() {
    // 20 clients over 4 rooms: 5 members each, 40 chats, 200 deliveries.
    let report = chatbench(&["--rooms", "4"]);
    assert_eq!(report["connected"], 20, "{report}");
    assert_eq!(report["messages_sent"], 40, "{report}");
    assert_eq!(report["deliveries_expected"], 40 * 5, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["out_of_order"], 0, "{report}");
    let rooms = &report["rooms"];
    assert_eq!(rooms["rooms"], 4, "{report}");
    assert_eq!(rooms["wrong_room"], 0, "{report}");
    assert_eq!(rooms["join_refused"], 0, "{report}");
    assert_eq!(rooms["small"]["deliveries_received"], 200, "{report}");
}

#[test]
fn big_room_run_reports_the_big_and_the_small_rooms_apart() {
    // 10 clients in `big` (2 chats/s each for 1 s: 20 chats to 10 members)
    // and 10 in 2 small rooms of 5 (20 chats to 5 members).
    let report = chatbench(&["--rooms", "2", "--big-room-clients", "10"]);
    assert_eq!(report["connected"], 20, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    let rooms = &report["rooms"];
    assert_eq!(rooms["wrong_room"], 0, "{report}");
    assert_eq!(rooms["big"]["clients"], 10, "{report}");
    assert_eq!(rooms["big"]["deliveries_expected"], 20 * 10, "{report}");
    assert_eq!(rooms["big"]["deliveries_received"], 20 * 10, "{report}");
    assert_eq!(rooms["small"]["clients"], 10, "{report}");
    assert_eq!(rooms["small"]["deliveries_expected"], 20 * 5, "{report}");
    assert_eq!(rooms["small"]["deliveries_received"], 20 * 5, "{report}");
}

#[test]
fn without_rooms_the_report_has_no_rooms_field() {
    let report = chatbench(&[]);
    assert!(report.get("rooms").is_none(), "{report}");
}

//! The history file of the real binary: what a member saw survives `kill -9`.

mod support;

use std::time::{Duration, Instant};

use chatcore::protocol::ServerMessage;
use chatcore::{Client, Event};
use support::{Daemon, START, temp_dir};

#[test]
fn every_message_a_member_saw_is_in_the_welcome_after_kill_9_and_a_restart() {
    let dir = temp_dir("store-kill");
    let mut daemon = Daemon::spawn_plain_in(&dir);
    let addr = daemon.chat_addr();
    let alice = Client::connect_plain(addr, "alice").expect("alice logs in");
    let bob = Client::connect_plain(addr, "bob").expect("bob logs in");
    let sent: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    for text in &sent {
        alice.send_chat(text.clone()).expect("send");
    }
    // Bob has seen every message: the last one arrived.
    let mut seen = Vec::new();
    let deadline = Instant::now() + START;
    while seen.len() < sent.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match bob.recv_timeout(left) {
            Ok(Some(Event::Message(ServerMessage::Chat(c)))) => seen.push((c.id, c.text)),
            Ok(Some(_)) => {}
            other => panic!(
                "bob saw {} of {} messages: {other:?}",
                seen.len(),
                sent.len()
            ),
        }
    }
    daemon.signal("KILL");
    daemon
        .wait_exit(Duration::from_secs(5))
        .expect("killed within 5 s");

    let mut daemon = Daemon::spawn_plain_in(&dir);
    let addr = daemon.chat_addr();
    let carol = Client::connect_plain(addr, "carol").expect("carol logs in");
    let history: Vec<(u64, String)> = carol
        .welcome()
        .history
        .iter()
        .map(|c| (c.id, c.text.clone()))
        .collect();
    assert_eq!(
        history, seen,
        "the welcome after restart holds what bob saw"
    );
    carol.send_chat("after the crash").expect("send");
    let deadline = Instant::now() + START;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match carol.recv_timeout(left) {
            Ok(Some(Event::Message(ServerMessage::Chat(c)))) => {
                assert_eq!(c.id, seen.last().expect("some").0 + 1, "ids continue");
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("no echo of carol's chat: {other:?}"),
        }
    }
    daemon.signal("TERM");
    let _ = daemon.wait_exit(Duration::from_secs(5));
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

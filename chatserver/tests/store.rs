//! The history file of the real binary: what a member saw survives `kill -9`.

mod support;

use std::time::{Duration, Instant};

use std::collections::HashSet;

use chatcore::protocol::{ErrorCode, ServerMessage};
use chatcore::{Client, Event};
use support::{Daemon, START, TempFile, temp_dir};

/// A config that lifts the flood limits, so that members can storm.
fn storm_config() -> TempFile {
    TempFile::new(
        &format!("storm-{}.toml", rand_tag()),
        "rate_per_sec = 1000000.0\nrate_burst = 1000000.0\n",
    )
}

/// A tag that keeps two tests' temporary files apart.
fn rand_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Every chat a client gets until its connection ends (or `idle` passes
/// with nothing), as (id, text).
fn drain_chats(c: &Client, idle: Duration, into: &mut Vec<(u64, String)>) {
    loop {
        match c.recv_timeout(idle) {
            Ok(Some(Event::Message(ServerMessage::Chat(m)))) => into.push((m.id, m.text)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// The whole history of the server at `addr`, oldest first, paged back
/// from the newest with `history` requests.
fn page_everything(addr: std::net::SocketAddr) -> Vec<(u64, String)> {
    let pager = Client::connect_plain(addr, "pager").expect("pager logs in");
    let mut all = Vec::new();
    let mut before = None;
    loop {
        pager.request_history(before, 200).expect("ask a page");
        let page = loop {
            match pager.recv_timeout(START) {
                Ok(Some(Event::Message(ServerMessage::History(h)))) => break h,
                Ok(Some(_)) => {}
                other => panic!("no history page: {other:?}"),
            }
        };
        let mut chats: Vec<(u64, String)> =
            page.messages.into_iter().map(|c| (c.id, c.text)).collect();
        before = chats.first().map(|c| c.0);
        chats.append(&mut all);
        all = chats;
        if !page.more || before.is_none() {
            return all;
        }
    }
}

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

#[test]
fn a_second_server_on_the_same_data_directory_is_refused_and_the_first_keeps_serving() {
    let dir = temp_dir("store-twice");
    let mut first = Daemon::spawn_plain_in(&dir);
    let addr = first.chat_addr();
    let mut second = Daemon::spawn_plain_in(&dir);
    let (code, stderr) = second.finish(Duration::from_secs(10));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("in use by another server") && stderr.contains("chat.db.lock"),
        "{stderr}"
    );
    let a = Client::connect_plain(addr, "a").expect("the first server still serves");
    a.send_chat("still here").expect("send");
    drop(a);
    first.signal("TERM");
    let _ = first.wait_exit(Duration::from_secs(5));
    drop(first);
    // Stopped, it lets the next one in.
    let mut third = Daemon::spawn_plain_in(&dir);
    third.chat_addr();
    drop(third);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_in_the_middle_of_a_chat_storm_keeps_every_message_any_member_saw_exactly_once() {
    let dir = temp_dir("store-storm");
    let dir_arg = dir.to_str().expect("utf-8 path").to_owned();
    let config = storm_config();
    let args = [
        "--no-tls",
        "--no-voice",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir_arg,
        "-c",
        config.path(),
    ];
    let mut daemon = Daemon::spawn_exact(&args);
    let addr = daemon.chat_addr();
    let watcher = Client::connect_plain(addr, "watcher").expect("watcher logs in");
    // Three members storm from threads of their own until the server dies,
    // each keeping every chat it receives.
    let senders: Vec<_> = (0..3)
        .map(|i| {
            let c = Client::connect_plain(addr, &format!("s{i}")).expect("sender logs in");
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for n in 0..1_000_000u32 {
                    if c.send_chat(format!("s{i} #{n}")).is_err() {
                        break;
                    }
                    while let Ok(Some(ev)) = c.try_recv() {
                        if let Event::Message(ServerMessage::Chat(m)) = ev {
                            seen.push((m.id, m.text));
                        }
                    }
                }
                drain_chats(&c, Duration::from_secs(2), &mut seen);
                seen
            })
        })
        .collect();
    // Mid-storm: once the watcher has seen 2000 chats, kill -9.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 2000 {
        assert!(
            Instant::now() < deadline,
            "only {} chats in 60 s",
            seen.len()
        );
        if let Ok(Some(Event::Message(ServerMessage::Chat(m)))) =
            watcher.recv_timeout(Duration::from_secs(1))
        {
            seen.push((m.id, m.text));
        }
    }
    daemon.signal("KILL");
    daemon
        .wait_exit(Duration::from_secs(5))
        .expect("killed within 5 s");
    drain_chats(&watcher, Duration::from_secs(2), &mut seen);
    let mut received: HashSet<(u64, String)> = seen.into_iter().collect();
    for s in senders {
        received.extend(s.join().expect("sender thread"));
    }

    let mut daemon = Daemon::spawn_exact(&args);
    let addr = daemon.chat_addr();
    let stored = page_everything(addr);
    let ids: Vec<u64> = stored.iter().map(|c| c.0).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids strictly increase, none twice"
    );
    let texts: HashSet<&str> = stored.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(texts.len(), stored.len(), "no message is stored twice");
    let stored_set: HashSet<(u64, String)> = stored.iter().cloned().collect();
    let missing: Vec<_> = received.difference(&stored_set).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} received chats are not in the history, e.g. {missing:?}",
        received.difference(&stored_set).count(),
        received.len()
    );
    assert!(received.len() >= 2000);
    daemon.signal("TERM");
    let _ = daemon.wait_exit(Duration::from_secs(5));
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_gives_members_store_unavailable_and_keeps_what_was_stored_before() {
    let dir = temp_dir("store-full");
    let config = storm_config();
    // 256 KiB of file per file: the WAL reaches it after some dozens of
    // 3000-byte chats, and every write past it fails (EFBIG) as on a full
    // disk.
    let mut daemon = Daemon::spawn_plain_limited(&dir, 256, &["-c", config.path()]);
    let addr = daemon.chat_addr();
    let alice = Client::connect_plain(addr, "alice").expect("alice logs in");
    let bob = Client::connect_plain(addr, "bob").expect("bob logs in");
    let mut delivered = Vec::new();
    let mut refused = None;
    for n in 0..1000u64 {
        alice
            .send_chat_ref(format!("{n} {}", "x".repeat(3000)), n)
            .expect("send");
        let answer = loop {
            match alice.recv_timeout(START) {
                Ok(Some(Event::Message(
                    m @ (ServerMessage::Chat(_) | ServerMessage::Error(_)),
                ))) => {
                    break m;
                }
                Ok(Some(_)) => {}
                other => panic!("no answer to chat {n}: {other:?}"),
            }
        };
        match answer {
            ServerMessage::Chat(c) => delivered.push((c.id, c.text)),
            ServerMessage::Error(e) => {
                assert_eq!(e.code, ErrorCode::StoreUnavailable, "{e:?}");
                assert_eq!(e.reference, Some(n));
                refused = Some(n);
                break;
            }
            _ => unreachable!(),
        }
    }
    let refused = refused.expect("the file size limit was reached");
    assert!(refused > 0, "some chats were stored before the disk filled");
    assert!(
        daemon
            .wait_for_line("cannot write the history store", START)
            .is_some(),
        "the failure is logged"
    );
    // The room goes on: pings, presence; bob got exactly the stored chats.
    alice.ping(9).expect("ping");
    let carol = Client::connect_plain(addr, "carol").expect("carol logs in");
    assert_eq!(
        carol
            .welcome()
            .history
            .iter()
            .map(|c| (c.id, c.text.clone()))
            .collect::<Vec<_>>(),
        delivered
    );
    let mut bob_saw = Vec::new();
    loop {
        match bob.recv_timeout(START) {
            Ok(Some(Event::Message(ServerMessage::Chat(c)))) => bob_saw.push((c.id, c.text)),
            Ok(Some(Event::Message(ServerMessage::Joined(j)))) if j.name == "carol" => break,
            Ok(Some(_)) => {}
            other => panic!("bob: {other:?}"),
        }
    }
    assert_eq!(bob_saw, delivered, "the refused chat reached nobody");
    drop((alice, bob, carol));
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(5)).expect("stops");

    // Restarted with room on the disk: everything stored before is intact.
    let mut daemon = Daemon::spawn_plain_in(&dir);
    let addr = daemon.chat_addr();
    let dave = Client::connect_plain(addr, "dave").expect("dave logs in");
    let history: Vec<(u64, String)> = dave
        .welcome()
        .history
        .iter()
        .map(|c| (c.id, c.text.clone()))
        .collect();
    let keep = delivered.len().saturating_sub(history.len());
    assert_eq!(
        history,
        delivered[keep..],
        "the newest stored chats, unchanged"
    );
    assert_eq!(page_everything(addr), delivered, "and every older one");
    daemon.signal("TERM");
    let _ = daemon.wait_exit(Duration::from_secs(5));
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

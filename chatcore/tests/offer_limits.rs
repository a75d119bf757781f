//! The file-sharing attacks of issue 10, each reproduced over real loopback
//! sockets against a real server and real spool files: offers that outlive
//! their sender, quota that costs nothing, spool files left behind, open
//! descriptors per idle upload, and downloads that starve each other.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;

use chatcore::ServerConfig;
use chatcore::protocol::transfer::{FileAccept, FileChunk, MAX_CHUNK};
use chatcore::protocol::{ClientMessage, ErrorCode, Hello, ServerMessage, encode_client};
use common::{
    Raw, WAIT, offer_msg, send_chunks, share, spool, spool_config, spool_files, start, try_offer,
};

#[test]
fn the_offer_cap_per_name_survives_leaving_and_logging_in_again() {
    let dir = spool("name");
    let server = start(ServerConfig {
        max_offers_per_name: 3,
        ..spool_config(&dir)
    });
    let addr = server.local_addr();
    let mut next_ref = 0;
    // The attack: fill the cap, leave, come back under the same name.
    for _ in 0..2 {
        let (mut a, _) = Raw::login(addr, "alice");
        loop {
            next_ref += 1;
            match try_offer(&mut a, &format!("e{next_ref}.txt"), b"", next_ref) {
                Ok(id) => {
                    a.until(|m| matches!(m, ServerMessage::FileReady(t) if t.transfer == id));
                }
                Err(code) => {
                    assert_eq!(code, ErrorCode::TooManyOffers);
                    break;
                }
            }
        }
    }
    assert_eq!(next_ref, 5, "3 offers, then one refusal per login");
    // Someone else is not affected.
    let (mut b, _) = Raw::login(addr, "bob");
    assert!(try_offer(&mut b, "mine.txt", b"", 100).is_ok());
}

#[test]
fn the_offer_cap_per_address_counts_every_name_and_session() {
    let dir = spool("addr");
    let server = start(ServerConfig {
        max_offers_per_address: 4,
        ..spool_config(&dir)
    });
    let addr = server.local_addr();
    let mut accepted = 0;
    for i in 0..4 {
        let (mut c, _) = Raw::login(addr, &format!("sock{i}"));
        for j in 0..2 {
            match try_offer(&mut c, &format!("{i}-{j}.txt"), b"", j) {
                Ok(id) => {
                    c.until(|m| matches!(m, ServerMessage::FileReady(t) if t.transfer == id));
                    accepted += 1;
                }
                Err(code) => assert_eq!(code, ErrorCode::TooManyOffers),
            }
        }
    }
    assert_eq!(accepted, 4);
}

#[test]
fn the_room_cap_counts_uploads_and_offers_of_everyone() {
    let dir = spool("room");
    let server = start(ServerConfig {
        max_offers: 3,
        ..spool_config(&dir)
    });
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    share(&mut a, "one.txt", b"1", 1);
    // An upload in progress counts too.
    try_offer(&mut b, "two.txt", b"22", 2).expect("second");
    share(&mut b, "three.txt", b"3", 3);
    assert_eq!(
        try_offer(&mut a, "four.txt", b"4", 4),
        Err(ErrorCode::TooManyOffers)
    );
    assert!(a.is_alive(1));
}

/// The fields of a `welcome` this test looks at, including the newer
/// `offers_omitted` (absent when nothing was left out).
#[derive(serde::Deserialize)]
struct WelcomeHead {
    #[serde(rename = "type")]
    kind: String,
    session: u64,
    offers_omitted: Option<u64>,
}

/// Logs in with raw frames; returns the welcome's head and what followed
/// it up to (not including) the member's own `joined` or `presence`.
fn login_raw(addr: std::net::SocketAddr, name: &str) -> (WelcomeHead, Vec<ServerMessage>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(&encode_client(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: chatcore::protocol::PROTOCOL_VERSION,
            name: name.into(),
            last_seen: None,
        })))
        .expect("hello");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut len = [0u8; 4];
    std::io::Read::read_exact(&mut stream, &mut len).expect("welcome length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    std::io::Read::read_exact(&mut stream, &mut body).expect("welcome body");
    let head: WelcomeHead = rmp_serde::from_slice(&body).expect("welcome");
    assert_eq!(head.kind, "welcome");
    let mut raw = Raw::from_stream(stream);
    let mut after = Vec::new();
    loop {
        match raw.next() {
            Some(ServerMessage::Joined(j)) if j.session == head.session => break,
            Some(ServerMessage::Presence(p))
                if p.joined.iter().any(|u| u.session == head.session) =>
            {
                break;
            }
            Some(m) => after.push(m),
            None => panic!("closed"),
        }
    }
    (head, after)
}

#[test]
fn a_late_joiner_gets_the_newest_offers_and_a_count_of_the_others() {
    let dir = spool("welcome");
    let server = start(ServerConfig {
        welcome_offers: 5,
        ..spool_config(&dir)
    });
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let ids: Vec<u64> = (0..12)
        .map(|i| share(&mut a, &format!("f{i}.txt"), &[i as u8], i))
        .collect();
    let (head, after) = login_raw(addr, "late");
    assert_eq!(head.offers_omitted, Some(7));
    let offered: Vec<u64> = after
        .iter()
        .filter_map(|m| match m {
            ServerMessage::FileOffer(o) => Some(o.transfer),
            _ => None,
        })
        .collect();
    assert_eq!(offered, ids[7..], "the newest five, oldest first");
    // An omitted offer is still available to whoever knows its id.
    let (mut late, _) = Raw::login(addr, "late2");
    late.send(&ClientMessage::FileAccept(FileAccept {
        transfer: ids[0],
        offset: 0,
    }));
    late.until(|m| matches!(m, ServerMessage::FileDone(t) if t.transfer == ids[0]));
    // With few offers nothing is omitted and the key is left out.
    let dir2 = spool("welcome-few");
    let server2 = start(spool_config(&dir2));
    let (mut b, _) = Raw::login(server2.local_addr(), "bob");
    share(&mut b, "only.txt", b"x", 1);
    let (head, after) = login_raw(server2.local_addr(), "late");
    assert_eq!(head.offers_omitted, None);
    assert_eq!(
        after
            .iter()
            .filter(|m| matches!(m, ServerMessage::FileOffer(_)))
            .count(),
        1
    );
}

#[test]
fn declared_sizes_reserve_no_quota_and_completed_offers_are_never_evicted() {
    let dir = spool("quota");
    let server = start(ServerConfig {
        spool_quota_bytes: 10_000,
        max_file_bytes: 10_000,
        ..spool_config(&dir)
    });
    let addr = server.local_addr();
    let (mut bob, _) = Raw::login(addr, "bob");
    let kept = share(&mut bob, "kept.bin", &[7u8; 4000], 1);
    // The attack: offers declaring more than the free space, never uploaded.
    let (mut attacker, _) = Raw::login(addr, "mallory");
    let mut pending = Vec::new();
    for i in 0..3 {
        let id = try_offer(&mut attacker, &format!("big{i}"), &[0u8; 6000], i).expect("offer");
        pending.push(id);
    }
    // Everyone else can still share, and bob's offer stays.
    let (mut carol, _) = Raw::login(addr, "carol");
    share(&mut carol, "honest.bin", &[1u8; 5000], 7);
    let (_, after) = login_raw(addr, "late");
    let offered: Vec<u64> = after
        .iter()
        .filter_map(|m| match m {
            ServerMessage::FileOffer(o) => Some(o.transfer),
            _ => None,
        })
        .collect();
    assert!(offered.contains(&kept), "{offered:?}");
    // Uploading real bytes past the quota is refused mid-upload.
    send_chunks(&mut attacker, pending[0], &[0u8; 6000]);
    match attacker.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::QuotaExceeded);
            assert_eq!(e.transfer, Some(pending[0]));
        }
        _ => unreachable!(),
    }
    attacker.until(
        |m| matches!(m, ServerMessage::FileCancelled(c) if c.transfer == pending[0] && c.reason == "error"),
    );
    // And no completed offer was cancelled for any of it.
    assert!(bob.is_alive(9));
    let mut bob_saw = Vec::new();
    while let Some(Some(m)) = bob.try_next(std::time::Duration::from_millis(100)) {
        bob_saw.push(m);
    }
    assert!(
        !bob_saw
            .iter()
            .any(|m| matches!(m, ServerMessage::FileCancelled(_))),
        "{bob_saw:?}"
    );
}

#[test]
fn an_upload_that_makes_no_progress_is_aborted() {
    let dir = spool("stall");
    let server = start(ServerConfig {
        upload_stall_secs: 1,
        heartbeat_ms: 100,
        ..spool_config(&dir)
    });
    let (mut a, _) = Raw::login(server.local_addr(), "alice");
    let id = try_offer(&mut a, "never.bin", &[0u8; 1000], 1).expect("offer");
    match a.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::UploadTimeout);
            assert_eq!(e.transfer, Some(id));
        }
        _ => unreachable!(),
    }
    a.until(
        |m| matches!(m, ServerMessage::FileCancelled(c) if c.transfer == id && c.reason == "error"),
    );
    // The slot is free again.
    assert!(try_offer(&mut a, "next.bin", b"", 2).is_ok());
}

#[test]
fn a_whole_session_in_one_write_leaves_no_spool_file() {
    let dir = spool("oneshot");
    let server = start(spool_config(&dir));
    let addr = server.local_addr();
    let data = vec![3u8; 300_000];
    for i in 0..30 {
        let mut bytes = encode_client(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: chatcore::protocol::PROTOCOL_VERSION,
            name: format!("burst{i}"),
            last_seen: None,
        }))
        .to_vec();
        bytes.extend_from_slice(&encode_client(&offer_msg(
            "f.bin",
            &data,
            data.len() as u64,
            1,
        )));
        // The first transfer id is the session's index + 1 (ids are given
        // in order and each burst is handled before the next connects).
        let id = i + 1;
        for (j, piece) in data.chunks(MAX_CHUNK as usize).enumerate() {
            bytes.extend_from_slice(&encode_client(&ClientMessage::FileChunk(FileChunk {
                transfer: id,
                offset: (j * MAX_CHUNK as usize) as u64,
                data: piece.to_vec(),
            })));
        }
        bytes.extend_from_slice(&encode_client(&ClientMessage::Bye));
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(&bytes).expect("burst");
        // Wait for the server to close it: everything above was handled.
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut sink);
    }
    // The disk thread works in order: once a later upload is verified,
    // every job of the bursts is done.
    let (mut a, _) = Raw::login(addr, "alice");
    share(&mut a, "last.bin", b"last", 99);
    assert_eq!(spool_files(&dir).len(), 1, "{:?}", spool_files(&dir));
    drop(server);
    assert!(!dir.exists(), "the spool is removed at shutdown");
}

#[test]
fn a_dead_servers_spool_is_removed_at_start_and_a_live_ones_is_kept() {
    let dir = spool("stale");
    // What a SIGKILLed server leaves: a run directory whose lock nobody holds.
    let dead = dir.join("run-999999999");
    std::fs::create_dir_all(&dead).expect("dead run dir");
    std::fs::write(dead.join("lock"), "999999999\n").expect("lock");
    std::fs::write(dead.join("7.chatspool"), vec![1u8; 1000]).expect("file");
    let first = start(spool_config(&dir));
    assert!(!dead.exists(), "the dead server's files were removed");
    // A second server on the same spool keeps the first one's files.
    let (mut a, _) = Raw::login(first.local_addr(), "alice");
    share(&mut a, "live.bin", b"live", 1);
    let second = start(spool_config(&dir));
    assert_eq!(spool_files(&dir).len(), 1);
    drop(second);
    assert_eq!(spool_files(&dir).len(), 1, "the live server's file stays");
    drop(first);
    assert!(!dir.exists());
}

/// Spool files under `dir` this process has open (the server runs in it;
/// other tests of this binary run servers with other spool directories at
/// the same time, so only `dir` counts).
fn open_spool_files(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.starts_with(dir) && p.to_string_lossy().contains(".chatspool"))
        .count()
}

#[test]
fn idle_uploads_and_downloads_hold_at_most_the_configured_open_files() {
    let dir = spool("fds");
    let server = start(ServerConfig {
        max_open_spool_files: 3,
        ..spool_config(&dir)
    });
    let addr = server.local_addr();
    let (mut owner, _) = Raw::login(addr, "owner");
    let file = vec![5u8; 3 * MAX_CHUNK as usize];
    let shared = share(&mut owner, "big.bin", &file, 1);
    let mut clients = Vec::new();
    for i in 0..10 {
        let (mut c, _) = Raw::login(addr, &format!("idle{i}"));
        // Half an upload, then silence.
        let id = try_offer(&mut c, "half.bin", &[0u8; 1000], 1).expect("offer");
        c.send(&ClientMessage::FileChunk(FileChunk {
            transfer: id,
            offset: 0,
            data: vec![0u8; 500],
        }));
        // A download that is not read.
        c.send(&ClientMessage::FileAccept(FileAccept {
            transfer: shared,
            offset: 0,
        }));
        clients.push(c);
    }
    // Once this upload is verified the disk thread did all the above.
    share(&mut owner, "marker.bin", b"m", 2);
    assert!(spool_files(&dir).len() >= 12);
    let open = open_spool_files(&dir);
    assert!(open <= 3, "{open} spool files open");
    // The idle downloads still complete when read.
    let mut first = clients.remove(0);
    let mut got = 0;
    while got < file.len() {
        if let Some(ServerMessage::FileData(d)) = first.next() {
            got += d.data.len();
        }
    }
    first.until(|m| matches!(m, ServerMessage::FileDone(t) if t.transfer == shared));
}

#[test]
fn two_downloads_on_one_connection_are_interleaved() {
    let dir = spool("rr");
    let server = start(spool_config(&dir));
    let addr = server.local_addr();
    let (mut owner, _) = Raw::login(addr, "owner");
    let chunks = 16;
    let a_data = vec![1u8; chunks * MAX_CHUNK as usize];
    let b_data = vec![2u8; chunks * MAX_CHUNK as usize];
    let a = share(&mut owner, "a.bin", &a_data, 1);
    let b = share(&mut owner, "b.bin", &b_data, 2);
    let (mut r, _) = Raw::login(addr, "reader");
    for transfer in [a, b] {
        r.send(&ClientMessage::FileAccept(FileAccept {
            transfer,
            offset: 0,
        }));
    }
    let mut order = Vec::new();
    let mut done = 0;
    while done < 2 {
        match r.next() {
            Some(ServerMessage::FileData(d)) => order.push(d.transfer),
            Some(ServerMessage::FileDone(_)) => done += 1,
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    assert_eq!(order.len(), 2 * chunks);
    // Served in turn: neither download waits for the other to finish, and
    // no run of one download is longer than its reads ahead allow.
    let last_a = order.iter().rposition(|&t| t == a).expect("a");
    let first_b = order.iter().position(|&t| t == b).expect("b");
    assert!(first_b < last_a, "{order:?}");
    let longest_run = order
        .chunk_by(|x, y| x == y)
        .map(<[u64]>::len)
        .max()
        .unwrap_or(0);
    assert!(longest_run <= 3, "{order:?}");
}

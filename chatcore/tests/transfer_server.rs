//! File transfer at the protocol level, over real sockets: the server's
//! rules for offers, chunks, accepts and cancels, and what it keeps on disk.

mod common;

use std::path::Path;
use std::time::Duration;

use chatcore::protocol::transfer::{FileAccept, FileChunk, FileKind, FileOffer, TransferId};
use chatcore::protocol::{ClientMessage, ErrorCode, ServerMessage};
use common::{Raw, offer, send_chunks, spool, spool_config, spool_files, start};
use sha2::{Digest, Sha256};

/// Waits until the spool under `dir` holds no file: the disk thread deletes
/// them, after the loop has handled the event that ends a transfer.
fn no_spool_files_left(dir: &Path) -> bool {
    let deadline = std::time::Instant::now() + common::WAIT;
    while std::time::Instant::now() < deadline {
        if spool_files(dir).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn upload_id(c: &mut Raw) -> u64 {
    match c.until(|m| matches!(m, ServerMessage::FileUpload(_) | ServerMessage::Error(_))) {
        ServerMessage::FileUpload(u) => u.transfer,
        other => panic!("expected file_upload, got {other:?}"),
    }
}

/// Downloads `id` from `offset`; returns the bytes received.
fn download(c: &mut Raw, id: u64, offset: u64) -> Vec<u8> {
    c.send(&ClientMessage::FileAccept(FileAccept {
        transfer: id,
        offset,
    }));
    let mut got = Vec::new();
    loop {
        match c.next() {
            Some(ServerMessage::FileData(d)) => {
                assert_eq!(d.offset, offset + got.len() as u64, "data arrives in order");
                got.extend_from_slice(&d.data);
            }
            Some(ServerMessage::FileDone(t)) if t.transfer == id => return got,
            Some(ServerMessage::Error(e)) => panic!("download refused: {e:?}"),
            Some(_) => {}
            None => panic!("closed during download"),
        }
    }
}

#[test]
fn an_upload_is_verified_offered_to_the_others_and_downloaded_intact() {
    let dir = spool("basic");
    let server = start(spool_config(&dir));
    let addr = server.local_addr();
    let (mut alice, _) = Raw::login(addr, "alice");
    let (mut bob, _) = Raw::login(addr, "bob");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    offer(&mut alice, "notes.txt", &data, 1);
    let id = upload_id(&mut alice);
    send_chunks(&mut alice, id, &data);
    alice.until(|m| matches!(m, ServerMessage::FileReady(t) if t.transfer == id));
    let offered = match bob.until(|m| matches!(m, ServerMessage::FileOffer(_))) {
        ServerMessage::FileOffer(o) => o,
        _ => unreachable!(),
    };
    assert_eq!(
        (
            offered.transfer,
            offered.name.as_str(),
            offered.size,
            offered.from.as_str()
        ),
        (id, "notes.txt", data.len() as u64, "alice")
    );
    assert_eq!(offered.sha256, Sha256::digest(&data).to_vec());
    assert_eq!(download(&mut bob, id, 0), data);
    // Resuming from the middle sends the rest.
    assert_eq!(download(&mut bob, id, 1_000_000), &data[1_000_000..]);
    // A late joiner is told about offers still available.
    let (mut carol, _) = Raw::login(addr, "carol");
    carol.until(|m| matches!(m, ServerMessage::FileOffer(o) if o.transfer == id));
    // Chat keeps working for everyone.
    alice.chat("done");
    bob.until(|m| matches!(m, ServerMessage::Chat(c) if c.text == "done"));
    drop(server);
    assert!(!dir.exists(), "the spool is removed at shutdown");
}

#[test]
fn bad_offers_get_their_documented_errors_and_nothing_is_stored() {
    let dir = spool("offers");
    let mut cfg = spool_config(&dir);
    cfg.max_file_bytes = 1000;
    let server = start(cfg);
    let (mut a, _) = Raw::login(server.local_addr(), "alice");
    let cases: [(&str, usize, ErrorCode); 7] = [
        ("../../etc/passwd", 10, ErrorCode::FileNameInvalid),
        ("con", 10, ErrorCode::FileNameInvalid),
        ("", 10, ErrorCode::FileNameInvalid),
        ("a\u{1}b", 10, ErrorCode::FileNameInvalid),
        ("..", 10, ErrorCode::FileNameInvalid),
        (&"n".repeat(4096), 10, ErrorCode::FileNameTooLong),
        ("big.bin", 1001, ErrorCode::FileTooLarge),
    ];
    for (i, (name, size, code)) in cases.into_iter().enumerate() {
        offer(&mut a, name, &vec![0; size], i as u64);
        match a.until(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::FileUpload(_))) {
            ServerMessage::Error(e) => {
                assert_eq!(e.code, code, "{name:?}");
                assert_eq!(e.reference, Some(i as u64));
            }
            other => panic!("{name:?} was accepted: {other:?}"),
        }
    }
    a.send(&ClientMessage::FileOffer(FileOffer {
        room: None,
        to: None,
        name: "x".into(),
        size: 1,
        sha256: vec![1, 2, 3],
        kind: FileKind::File,
        reference: None,
    }));
    assert_eq!(a.expect_error(), ErrorCode::BadHash);
    assert!(no_spool_files_left(&dir), "{:?}", spool_files(&dir));
    assert!(a.is_alive(1));
}

#[test]
fn chunks_that_do_not_fit_the_upload_are_refused() {
    let dir = spool("chunks");
    let server = start(spool_config(&dir));
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    let data = vec![5u8; 1000];
    offer(&mut a, "a.bin", &data, 1);
    let id = upload_id(&mut a);
    // Someone else's upload, and an id that does not exist.
    b.send(&ClientMessage::FileChunk(FileChunk {
        transfer: id,
        offset: 0,
        data: vec![1; 10],
    }));
    assert_eq!(b.expect_error(), ErrorCode::UnknownTransfer);
    a.send(&ClientMessage::FileChunk(FileChunk {
        transfer: 999,
        offset: 0,
        data: vec![1; 10],
    }));
    assert_eq!(a.expect_error(), ErrorCode::UnknownTransfer);
    // Past the declared size: refused, and the upload is aborted.
    a.send(&ClientMessage::FileChunk(FileChunk {
        transfer: id,
        offset: 0,
        data: vec![1; 1001],
    }));
    assert_eq!(a.expect_error(), ErrorCode::BadOffset);
    a.until(|m| matches!(m, ServerMessage::FileCancelled(c) if c.transfer == id));
    assert!(no_spool_files_left(&dir), "{:?}", spool_files(&dir));

    // A gap in the offsets is refused the same way.
    offer(&mut a, "b.bin", &data, 2);
    let id = upload_id(&mut a);
    a.send(&ClientMessage::FileChunk(FileChunk {
        transfer: id,
        offset: 10,
        data: vec![1; 10],
    }));
    assert_eq!(a.expect_error(), ErrorCode::BadOffset);

    // Content that does not match the offered hash is never offered.
    offer(&mut a, "c.bin", &data, 3);
    let id = upload_id(&mut a);
    send_chunks(&mut a, id, &[6u8; 1000]);
    assert_eq!(a.expect_error(), ErrorCode::HashMismatch);
    assert!(no_spool_files_left(&dir), "{:?}", spool_files(&dir));
    b.send(&ClientMessage::FileAccept(FileAccept {
        transfer: id,
        offset: 0,
    }));
    assert_eq!(b.expect_error(), ErrorCode::UnknownTransfer);
    assert!(
        b.try_next(Duration::from_millis(200))
            .is_none_or(|m| !matches!(m, Some(ServerMessage::FileOffer(_))))
    );
}

#[test]
fn a_sender_leaving_mid_upload_leaves_no_partial_file() {
    let dir = spool("leave");
    let server = start(spool_config(&dir));
    let addr = server.local_addr();
    let (mut watcher, _) = Raw::login(addr, "watcher");
    let (mut a, wa) = Raw::login(addr, "alice");
    let data = vec![9u8; 2_000_000];
    offer(&mut a, "half.bin", &data, 1);
    let id = upload_id(&mut a);
    send_chunks(&mut a, id, &data[..1_500_000]);
    // Progress comes every MiB stored.
    a.until(|m| matches!(m, ServerMessage::FileProgress(p) if p.done >= 1 << 20));
    assert_eq!(spool_files(&dir).len(), 1);
    drop(a);
    watcher.until_left(wa.session);
    assert!(no_spool_files_left(&dir), "{:?}", spool_files(&dir));
}

#[test]
fn accepting_unknown_or_finished_ids_and_bad_offsets_is_refused() {
    let dir = spool("accept");
    let server = start(spool_config(&dir));
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    b.send(&ClientMessage::FileAccept(FileAccept {
        transfer: 42,
        offset: 0,
    }));
    assert_eq!(b.expect_error(), ErrorCode::UnknownTransfer);
    b.send(&ClientMessage::FileDecline(TransferId { transfer: 42 }));
    assert_eq!(b.expect_error(), ErrorCode::UnknownTransfer);
    let data = vec![3u8; 100];
    offer(&mut a, "small.bin", &data, 1);
    let id = upload_id(&mut a);
    send_chunks(&mut a, id, &data);
    b.until(|m| matches!(m, ServerMessage::FileOffer(_)));
    b.send(&ClientMessage::FileAccept(FileAccept {
        transfer: id,
        offset: 101,
    }));
    assert_eq!(b.expect_error(), ErrorCode::BadOffset);
    // Declining is silent; the sender withdrawing tells everyone.
    b.send(&ClientMessage::FileDecline(TransferId { transfer: id }));
    a.send(&ClientMessage::FileCancel(TransferId { transfer: id }));
    b.until(|m| matches!(m, ServerMessage::FileCancelled(c) if c.transfer == id && c.reason == "cancelled"));
    assert!(no_spool_files_left(&dir), "{:?}", spool_files(&dir));
}

#[test]
fn file_messages_before_hello_are_refused() {
    let dir = spool("hello");
    let server = start(spool_config(&dir));
    let mut c = Raw::connect(server.local_addr());
    offer(&mut c, "x.txt", b"x", 1);
    assert_eq!(c.expect_error(), ErrorCode::NotLoggedIn);
}

#[test]
fn quota_counts_uploaded_bytes_and_refuses_what_cannot_fit_without_evicting() {
    let dir = spool("quota");
    let mut cfg = spool_config(&dir);
    cfg.spool_quota_bytes = 1000;
    let server = start(cfg);
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    let first = vec![1u8; 600];
    offer(&mut a, "first.bin", &first, 1);
    let id1 = upload_id(&mut a);
    send_chunks(&mut a, id1, &first);
    a.until(|m| matches!(m, ServerMessage::FileReady(_)));
    // 600 bytes are used: a 600-byte offer cannot fit, and the completed
    // offer is not expired to make room for it.
    offer(&mut a, "second.bin", &[2u8; 600], 2);
    assert_eq!(a.expect_error(), ErrorCode::QuotaExceeded);
    // Two offers of 400 each fit as declared (declared sizes reserve
    // nothing), but only the bytes really sent count: the second one's
    // chunk no longer fits and aborts that upload.
    let third = vec![3u8; 400];
    offer(&mut a, "third.bin", &third, 3);
    let id3 = upload_id(&mut a);
    offer(&mut a, "fourth.bin", &third, 4);
    let id4 = upload_id(&mut a);
    send_chunks(&mut a, id3, &third);
    a.until(|m| matches!(m, ServerMessage::FileReady(t) if t.transfer == id3));
    send_chunks(&mut a, id4, &third);
    assert_eq!(a.expect_error(), ErrorCode::QuotaExceeded);
    a.until(|m| matches!(m, ServerMessage::FileCancelled(c) if c.transfer == id4));
    // The first offer is still there for bob.
    b.send(&ClientMessage::FileAccept(FileAccept {
        transfer: id1,
        offset: 0,
    }));
    b.until(|m| matches!(m, ServerMessage::FileDone(t) if t.transfer == id1));
}

#[test]
fn offers_expire_after_their_time_to_live() {
    let dir = spool("ttl");
    let mut cfg = spool_config(&dir);
    cfg.file_ttl_secs = 1;
    cfg.heartbeat_ms = 100;
    let server = start(cfg);
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "alice");
    let (mut b, _) = Raw::login(addr, "bob");
    offer(&mut a, "short-lived.txt", b"hello", 1);
    let id = upload_id(&mut a);
    send_chunks(&mut a, id, b"hello");
    b.until(|m| matches!(m, ServerMessage::FileOffer(_)));
    b.until(|m| matches!(m, ServerMessage::FileCancelled(c) if c.transfer == id && c.reason == "expired"));
    assert!(no_spool_files_left(&dir), "{:?}", spool_files(&dir));
}

#[test]
fn errors_about_a_transfer_name_it() {
    let dir = spool("naming");
    let server = start(spool_config(&dir));
    let (mut a, _) = Raw::login(server.local_addr(), "alice");
    a.send(&ClientMessage::FileAccept(FileAccept {
        transfer: 77,
        offset: 0,
    }));
    match a.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::UnknownTransfer);
            assert_eq!(e.transfer, Some(77));
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_member_cannot_flood_the_room_with_empty_offers() {
    // 32 is the default `max_offers_per_name`; see tests/offer_limits.rs for
    // the caps that survive reconnects.
    let dir = spool("flood");
    let server = start(spool_config(&dir));
    let (mut a, _) = Raw::login(server.local_addr(), "alice");
    for i in 0..32 {
        offer(&mut a, &format!("empty{i}.txt"), b"", i);
        a.until(|m| matches!(m, ServerMessage::FileReady(_)));
    }
    offer(&mut a, "one-too-many.txt", b"", 99);
    assert_eq!(a.expect_error(), ErrorCode::TooManyOffers);
}

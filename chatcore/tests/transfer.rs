//! File transfer through `chatcore::Client`, over loopback with a real
//! in-process server (and, for what a real server never sends, a fake one):
//! a 64 MiB file to receivers of different speeds while the room chats,
//! resuming from a `.part` file, refused and hostile names, empty files,
//! withdrawn offers, corrupt downloads.
//!
//! Every test uses its own spool and download directories under the system
//! temporary directory and removes them at the end; every wait is bounded.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chatcore::client::{FileKind, TransferEvent, sanitize_file_name, unique_path};
use chatcore::protocol::transfer::{FileAccept, FileData, FileOffer, FileOffered, TransferId};
use chatcore::protocol::{
    ClientMessage, DecodeError, ErrorCode, Hello, ServerMessage, Welcome, decode_client,
    decode_server, encode_client, encode_server,
};
use chatcore::{Client, Event, ServerConfig};
use common::{Raw, start, test_config};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// Upper bound for a whole big transfer (debug builds hash slowly).
const LONG: Duration = Duration::from_secs(180);
/// Upper bound for anything quick.
const SHORT: Duration = Duration::from_secs(10);
const MIB: usize = 1024 * 1024;

/// A directory of its own under the system temporary directory, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "chatcore-transfer-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create a temp dir");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn sub(&self, name: &str) -> PathBuf {
        let dir = self.0.join(name);
        fs::create_dir_all(&dir).expect("create a sub dir");
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The test config with a spool of its own.
fn config(spool: &Path) -> ServerConfig {
    ServerConfig {
        spool_dir: Some(spool.to_path_buf()),
        ..test_config()
    }
}

/// Writes `len` random bytes to `dir/name`; returns the path and the bytes.
fn random_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Arc<Vec<u8>>) {
    let mut data = vec![0u8; len];
    // A small fast generator seeded from the system: unpredictable enough
    // for test data, and quick in debug builds.
    SmallRng::from_rng(&mut rand::rng()).fill_bytes(&mut data);
    let path = dir.join(name);
    fs::write(&path, &data).expect("write the test file");
    (path, Arc::new(data))
}

/// Waits until `pick` returns something for an event of `client`; panics
/// with `what` after `wait`. Events not picked are dropped.
fn wait_for<T>(
    client: &Client,
    what: &str,
    wait: Duration,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.recv_timeout(left) {
            Ok(Some(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
                if let Event::Closed(why) = event {
                    panic!("closed while waiting for {what}: {why}");
                }
            }
            Ok(None) => panic!("timed out waiting for {what}"),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// Waits for a transfer event matching `pick`.
fn wait_transfer<T>(
    client: &Client,
    what: &str,
    wait: Duration,
    mut pick: impl FnMut(&TransferEvent) -> Option<T>,
) -> T {
    wait_for(client, what, wait, |e| match e {
        Event::Transfer(TransferEvent::Failed {
            transfer,
            code,
            reason,
            ..
        }) => panic!("transfer {transfer} failed while waiting for {what}: {code:?} {reason}"),
        Event::Transfer(t) => pick(t),
        _ => None,
    })
}

/// Offers `path` from `client`; waits until it is on offer; returns its id.
fn upload(client: &Client, path: &Path, wait: Duration) -> u64 {
    let reference = client.send_file(path, FileKind::File).expect("send_file");
    let transfer = wait_transfer(client, "upload started", SHORT, |e| match e {
        TransferEvent::UploadStarted {
            reference: r,
            transfer,
            ..
        } if *r == reference => Some(*transfer),
        TransferEvent::OfferRefused { code, message, .. } => panic!("refused: {code} {message}"),
        _ => None,
    });
    wait_transfer(client, "upload ready", wait, |e| {
        matches!(e, TransferEvent::UploadReady { transfer: t } if *t == transfer).then_some(())
    });
    transfer
}

/// Waits for the offer of `transfer` (or any offer if `None`).
fn offer_of(client: &Client, transfer: Option<u64>) -> FileOffered {
    wait_for(client, "a file offer", SHORT, |e| match e {
        Event::Message(ServerMessage::FileOffer(o)) if transfer.is_none_or(|t| t == o.transfer) => {
            Some(o.clone())
        }
        _ => None,
    })
}

/// Waits until `client` knows offer `transfer` (without taking events).
fn known_offer(client: &Client, transfer: u64) -> FileOffered {
    let deadline = Instant::now() + SHORT;
    loop {
        if let Some(o) = client.sender().offer(transfer) {
            return o;
        }
        assert!(Instant::now() < deadline, "offer {transfer} never came");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for `Saved` of `transfer`; returns the path.
fn saved(client: &Client, transfer: u64, wait: Duration) -> PathBuf {
    wait_transfer(client, "the file saved", wait, |e| match e {
        TransferEvent::Saved { transfer: t, path } if *t == transfer => Some(path.clone()),
        _ => None,
    })
}

/// Sends `text` from `from` and waits until `to` has it; returns how long
/// that took.
fn chat_latency(from: &Client, to: &Client, text: &str) -> Duration {
    let start = Instant::now();
    from.send_chat(text).expect("send chat");
    wait_for(to, text, SHORT, |e| {
        matches!(e, Event::Message(ServerMessage::Chat(c)) if c.text == text).then_some(())
    });
    start.elapsed()
}

/// A hand-made protocol client that reads as slowly as it is told to.
struct Wire {
    stream: TcpStream,
    buf: BytesMut,
}

impl Wire {
    fn login(addr: SocketAddr, name: &str) -> (Self, Welcome) {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut wire = Self {
            stream,
            buf: BytesMut::new(),
        };
        wire.send(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: chatcore::protocol::PROTOCOL_VERSION,
            name: name.into(),
            last_seen: None,
        }));
        match wire.next(SHORT, 64 * 1024, Duration::ZERO) {
            ServerMessage::Welcome(w) => (wire, w),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    fn send(&mut self, msg: &ClientMessage) {
        self.stream.write_all(&encode_client(msg)).expect("send");
    }

    /// The next message, reading at most `read` bytes at a time and pausing
    /// `pause` after each read; pings are answered.
    fn next(&mut self, wait: Duration, read: usize, pause: Duration) -> ServerMessage {
        let deadline = Instant::now() + wait;
        let mut chunk = vec![0u8; read];
        loop {
            match decode_server(&mut self.buf, u32::MAX) {
                Ok(Some(ServerMessage::Ping(seq))) => {
                    self.send(&ClientMessage::Pong(seq));
                    continue;
                }
                Ok(Some(msg)) => return msg,
                Ok(None) => {}
                Err(e) => panic!("bad message from the server: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no message within {wait:?}");
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e}"),
            }
            if !pause.is_zero() {
                thread::sleep(pause);
            }
        }
    }
}

#[test]
fn a_big_file_reaches_each_receiver_at_its_own_pace_while_the_room_chats() {
    let tmp = TempDir::new("big");
    let server = start(config(&tmp.sub("spool")));
    let addr = server.local_addr();
    let (path, data) = random_file(&tmp.sub("src"), "big.bin", 64 * MIB);
    let size = data.len() as u64;

    let alice = Client::connect_plain(addr, "alice").expect("alice");
    let bob = Client::connect_plain(addr, "bob").expect("bob");
    let (mut carol, _) = Wire::login(addr, "carol");
    let dave = Client::connect_plain(addr, "dave").expect("dave");

    // The upload streams through alice's writer; chat still goes out and
    // comes in meanwhile.
    let reference = alice.send_file(&path, FileKind::File).expect("send_file");
    let during_upload = chat_latency(&alice, &bob, "while uploading");
    assert!(during_upload < SHORT, "{during_upload:?}");
    let transfer = wait_transfer(&alice, "upload started", SHORT, |e| match e {
        TransferEvent::UploadStarted {
            reference: r,
            transfer,
            size: s,
            name,
        } if *r == reference => {
            assert_eq!((*s, name.as_str()), (size, "big.bin"));
            Some(*transfer)
        }
        _ => None,
    });
    let mut last_progress = 0;
    wait_transfer(&alice, "upload ready", LONG, |e| match e {
        TransferEvent::UploadProgress {
            transfer: t,
            done,
            total,
        } if *t == transfer => {
            assert!(*done >= last_progress && *total == size, "{done} {total}");
            last_progress = *done;
            None
        }
        TransferEvent::UploadReady { transfer: t } if *t == transfer => Some(()),
        _ => None,
    });
    assert_eq!(last_progress, size, "the final progress is the whole file");

    // Everyone else is offered the file; the sender is not.
    for c in [&bob, &dave] {
        let o = known_offer(c, transfer);
        assert_eq!((o.name.as_str(), o.size), ("big.bin", size));
        assert_eq!(o.sha256, Sha256::digest(data.as_slice()).to_vec());
        assert_eq!(o.from, "alice");
        assert_eq!(c.offers().len(), 1);
    }
    assert!(alice.offers().is_empty());
    let carol_offer = loop {
        if let ServerMessage::FileOffer(o) = carol.next(SHORT, 64 * 1024, Duration::ZERO) {
            break o;
        }
    };
    assert_eq!(carol_offer.transfer, transfer);

    // bob declines; carol reads 64 KiB every 4 ms (at most 16 MB/s);
    // dave takes it as fast as his disk and hashing go.
    bob.decline_file(transfer).expect("decline");
    assert!(bob.offers().is_empty());
    carol.send(&ClientMessage::FileAccept(FileAccept {
        transfer,
        offset: 0,
    }));
    let carol_done = Arc::new(AtomicU64::new(0));
    let carol_thread = {
        let data = Arc::clone(&data);
        let done = Arc::clone(&carol_done);
        thread::spawn(move || {
            let mut hasher = Sha256::new();
            let mut got = 0u64;
            loop {
                match carol.next(LONG, 64 * 1024, Duration::from_millis(4)) {
                    ServerMessage::FileData(d) => {
                        assert_eq!((d.transfer, d.offset), (transfer, got), "in order");
                        let start = got as usize;
                        let end = start + d.data.len();
                        assert!(end <= data.len(), "no byte past the end");
                        assert!(d.data == data[start..end], "bytes at {start} differ");
                        hasher.update(&d.data);
                        got += d.data.len() as u64;
                        done.store(got, Ordering::SeqCst);
                    }
                    ServerMessage::FileDone(t) if t.transfer == transfer => break,
                    ServerMessage::Error(e) => panic!("carol got an error: {e:?}"),
                    ServerMessage::FileCancelled(c) => panic!("carol's download ended: {c:?}"),
                    _ => {}
                }
            }
            (got, hasher.finalize().to_vec())
        })
    };
    let dave_dir = tmp.sub("dave");
    let part = dave.accept_file(transfer, &dave_dir).expect("accept");
    assert_eq!(part, dave_dir.join("big.bin.part"));

    // While carol is still downloading, alice and bob talk both ways.
    let deadline = Instant::now() + LONG;
    while carol_done.load(Ordering::SeqCst) < 4 * MIB as u64 {
        assert!(Instant::now() < deadline, "carol's download does not start");
        thread::sleep(Duration::from_millis(10));
    }
    let there = chat_latency(&alice, &bob, "carol is slow");
    let back = chat_latency(&bob, &alice, "yes she is");
    assert!(
        carol_done.load(Ordering::SeqCst) < size,
        "carol finished before the chat was done"
    );
    assert!(there < Duration::from_secs(2), "{there:?}");
    assert!(back < Duration::from_secs(2), "{back:?}");

    // dave's progress comes in steps, then the file is saved and checked.
    let mut progress = Vec::new();
    let dave_path = wait_for(&dave, "dave's file", LONG, |e| match e {
        Event::Transfer(TransferEvent::DownloadProgress {
            transfer: t,
            done,
            total,
        }) if *t == transfer => {
            assert_eq!(*total, size);
            progress.push(*done);
            None
        }
        Event::Transfer(TransferEvent::Saved { transfer: t, path }) if *t == transfer => {
            Some(path.clone())
        }
        Event::Transfer(other) => panic!("dave: {other:?}"),
        _ => None,
    });
    assert_eq!(dave_path, dave_dir.join("big.bin"));
    assert!(!part.exists(), "the .part file was renamed");
    assert_eq!(progress.last(), Some(&size));
    assert!(
        progress
            .windows(2)
            .all(|w| w[1] - w[0] >= 1024 * 1024 || w[1] == size)
    );
    assert_eq!(progress.len(), 64, "one report per MiB");
    let dave_bytes = fs::read(&dave_path).expect("read dave's copy");
    assert!(dave_bytes == *data, "dave's copy differs");

    let (carol_got, carol_hash) = carol_thread.join().expect("carol's thread");
    assert_eq!(carol_got, size);
    assert_eq!(carol_hash, Sha256::digest(data.as_slice()).to_vec());

    // bob declined and got nothing; the room still works for everyone.
    assert!(
        fs::read_dir(tmp.path()).expect("tmp").count() == 3,
        "spool, src, dave only"
    );
    chat_latency(&dave, &bob, "done");
    drop((alice, bob, dave));
    server.stop().expect("stop");
}

#[test]
fn a_cancelled_download_resumes_from_its_part_file() {
    let tmp = TempDir::new("resume");
    let server = start(config(&tmp.sub("spool")));
    let addr = server.local_addr();
    let (path, data) = random_file(&tmp.sub("src"), "movie.bin", 8 * MIB + 12_345);
    let size = data.len() as u64;
    let alice = Client::connect_plain(addr, "alice").expect("alice");
    let transfer = upload(&alice, &path, LONG);

    // A first download by hand: take about 1 MiB, cancel, keep what came.
    let (mut rita, _) = Wire::login(addr, "rita");
    let downloads = tmp.sub("downloads");
    let part = downloads.join("movie.bin.part");
    let mut partial = fs::File::create(&part).expect("create the part");
    rita.send(&ClientMessage::FileAccept(FileAccept {
        transfer,
        offset: 0,
    }));
    let mut got = 0u64;
    let mut cancelled = false;
    loop {
        match rita.next(SHORT, 64 * 1024, Duration::ZERO) {
            ServerMessage::FileData(d) => {
                assert_eq!(d.offset, got);
                partial.write_all(&d.data).expect("write the part");
                got += d.data.len() as u64;
                if got >= MIB as u64 && !cancelled {
                    rita.send(&ClientMessage::FileCancel(TransferId { transfer }));
                    cancelled = true;
                }
            }
            ServerMessage::FileCancelled(c) if c.transfer == transfer => {
                assert_eq!(c.reason, "cancelled");
                break;
            }
            ServerMessage::FileDone(_) => panic!("the whole file came before the cancel"),
            _ => {}
        }
    }
    drop(partial);
    assert!(got >= MIB as u64 && got < size, "{got}");
    drop(rita);

    // Another client resumes from the part file's length and gets the rest.
    let dave = Client::connect_plain(addr, "dave").expect("dave");
    // Offers still available come right after the welcome.
    offer_of(&dave, Some(transfer));
    dave.resume_file(transfer, &part).expect("resume");
    let mut first = None;
    let path = wait_for(&dave, "the resumed file", LONG, |e| match e {
        Event::Transfer(TransferEvent::DownloadProgress { done, .. }) => {
            first.get_or_insert(*done);
            None
        }
        Event::Transfer(TransferEvent::Saved { path, .. }) => Some(path.clone()),
        Event::Transfer(other) => panic!("{other:?}"),
        _ => None,
    });
    assert!(
        first.is_some_and(|d| d > got),
        "progress counts what was there"
    );
    assert_eq!(path, downloads.join("movie.bin"));
    assert!(!part.exists());
    assert!(fs::read(&path).expect("read") == *data);

    // Through the client alone: cancel on the first progress, then accept
    // again, which resumes. (On a fast machine the file may be complete
    // before the cancel arrives; then it is simply saved.)
    let erin = Client::connect_plain(addr, "erin").expect("erin");
    offer_of(&erin, Some(transfer));
    let erin_dir = tmp.sub("erin");
    erin.accept_file(transfer, &erin_dir).expect("accept");
    let outcome = wait_for(&erin, "progress", LONG, |e| match e {
        Event::Transfer(TransferEvent::DownloadProgress { .. }) => {
            // Fails only if the download already completed.
            let _ = erin.cancel_file(transfer);
            None
        }
        Event::Transfer(TransferEvent::Cancelled { part, .. }) => Some(Err(part.clone())),
        Event::Transfer(TransferEvent::Saved { path, .. }) => Some(Ok(path.clone())),
        Event::Transfer(other) => panic!("{other:?}"),
        _ => None,
    });
    let path = match outcome {
        Ok(path) => path,
        Err(part) => {
            let part = part.expect("a cancelled download keeps its part");
            let kept = fs::metadata(&part).expect("part").len();
            assert!(kept < size, "{kept}");
            assert_eq!(erin.sender().partial_file(transfer), Some(part.clone()));
            assert_eq!(erin.accept_file(transfer, &erin_dir).expect("again"), part);
            saved(&erin, transfer, LONG)
        }
    };
    assert_eq!(path, erin_dir.join("movie.bin"));
    assert!(fs::read(&path).expect("read") == *data);
    assert_eq!(
        fs::read_dir(&erin_dir).expect("dir").count(),
        1,
        "no part file left"
    );
    drop((alice, dave, erin));
    server.stop().expect("stop");
}

#[test]
fn hostile_names_are_refused_by_the_server_and_never_escape_the_download_dir() {
    let tmp = TempDir::new("names");
    let server = start(config(&tmp.sub("spool")));
    let (mut mallory, _) = Raw::login(server.local_addr(), "mallory");
    let content = b"root:x:0:0";
    let cases = [
        ("../../etc/passwd", ErrorCode::FileNameInvalid),
        ("..", ErrorCode::FileNameInvalid),
        ("a\\b", ErrorCode::FileNameInvalid),
        ("con", ErrorCode::FileNameInvalid),
        ("x\u{7}y", ErrorCode::FileNameInvalid),
        ("", ErrorCode::FileNameInvalid),
    ];
    let long = "n".repeat(4096);
    let cases = cases
        .iter()
        .map(|&(n, c)| (n, c))
        .chain([(long.as_str(), ErrorCode::FileNameTooLong)]);
    for (i, (name, code)) in cases.enumerate() {
        let reference = 100 + i as u64;
        mallory.send(&ClientMessage::FileOffer(FileOffer {
            room: None,
            to: None,
            name: name.into(),
            size: content.len() as u64,
            sha256: Sha256::digest(content).to_vec(),
            kind: FileKind::File,
            reference: Some(reference),
        }));
        match mallory.until(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::FileUpload(_)))
        {
            ServerMessage::Error(e) => {
                assert_eq!((e.code, e.reference), (code, Some(reference)), "{name:?}")
            }
            other => panic!("{name:?} was accepted: {other:?}"),
        }
    }
    server.stop().expect("stop");

    // What the client would make of such names if a server sent them.
    let dir = tmp.sub("downloads");
    for hostile in [
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\system32",
        "..",
        ".",
        "",
        "con",
        "x\u{0}y\n",
        &"é".repeat(3000),
    ] {
        let name = sanitize_file_name(hostile);
        let path = unique_path(&dir, &name);
        assert_eq!(
            path.parent(),
            Some(dir.as_path()),
            "{hostile:?} -> {name:?}"
        );
        assert!(name.len() <= 255 && !name.is_empty() && !name.starts_with('.'));
        assert!(
            !name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        );
    }
}

/// A fake server: logs one client in, offers it `name` with `content` but
/// claims `sha256`, and serves an accept with `frames` (offset, bytes).
fn fake_server(
    name: &str,
    sha256: Vec<u8>,
    size: u64,
    frames: Vec<(u64, Vec<u8>)>,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let name = name.to_owned();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(SHORT)).expect("read timeout");
        let mut buf = BytesMut::new();
        let mut next = |stream: &mut TcpStream| loop {
            match decode_client(&mut buf, 1 << 20) {
                Ok(Some(m)) => return Some(m),
                Ok(None) => {}
                Err(DecodeError::Message(_)) => continue,
                Err(e) => panic!("fake server: {e}"),
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let Some(ClientMessage::Hello(_)) = next(&mut stream) else {
            panic!("no hello");
        };
        let send = |stream: &mut TcpStream, msg: ServerMessage| {
            stream.write_all(&encode_server(&msg)).expect("fake send");
        };
        send(
            &mut stream,
            ServerMessage::Welcome(Welcome {
                registered: false,
                token: None,
                version: chatcore::protocol::PROTOCOL_VERSION,
                name: "victim".into(),
                session: 2,
                users: Vec::new(),
                history: Vec::new(),
                heartbeat_ms: 10_000,
                max_frame: 1 << 20,
                max_text: 4096,
            }),
        );
        send(
            &mut stream,
            ServerMessage::FileOffer(FileOffered {
                room: None,
                to: None,
                transfer: 9,
                from: "mallory".into(),
                session: 1,
                name,
                size,
                sha256,
                kind: FileKind::File,
                ts: 0,
            }),
        );
        loop {
            match next(&mut stream) {
                Some(ClientMessage::FileAccept(a)) => {
                    assert_eq!((a.transfer, a.offset), (9, 0));
                    for (offset, data) in frames {
                        send(
                            &mut stream,
                            ServerMessage::FileData(FileData {
                                transfer: 9,
                                offset,
                                data,
                            }),
                        );
                    }
                    send(
                        &mut stream,
                        ServerMessage::FileDone(TransferId { transfer: 9 }),
                    );
                    break;
                }
                Some(_) => {}
                None => return,
            }
        }
        // Wait for the client to go.
        while next(&mut stream).is_some() {}
    });
    (addr, handle)
}

#[test]
fn a_hostile_name_from_a_server_is_saved_inside_the_download_dir() {
    let tmp = TempDir::new("hostile");
    let dir = tmp.sub("inbox");
    let content = b"not your passwd".to_vec();
    let (addr, fake) = fake_server(
        "../../passwd",
        Sha256::digest(&content).to_vec(),
        content.len() as u64,
        vec![(0, content[..5].to_vec()), (5, content[5..].to_vec())],
    );
    let victim = Client::connect_plain(addr, "victim").expect("connect");
    offer_of(&victim, Some(9));
    victim.accept_file(9, &dir).expect("accept");
    let path = saved(&victim, 9, SHORT);
    assert_eq!(path, dir.join("_.._passwd"));
    assert_eq!(fs::read(&path).expect("read"), content);
    assert!(!tmp.path().join("passwd").exists());
    assert_eq!(fs::read_dir(&dir).expect("dir").count(), 1, "only the file");
    drop(victim);
    fake.join().expect("fake server");
}

#[test]
fn a_download_whose_content_does_not_match_is_not_kept() {
    let tmp = TempDir::new("corrupt");
    let dir = tmp.sub("inbox");
    let content = b"hello world".to_vec();
    // Right size, wrong hash.
    let (addr, fake) = fake_server(
        "hello.txt",
        vec![7; 32],
        content.len() as u64,
        vec![(0, content.clone())],
    );
    let victim = Client::connect_plain(addr, "victim").expect("connect");
    offer_of(&victim, Some(9));
    victim.accept_file(9, &dir).expect("accept");
    let reason = wait_for(&victim, "the failure", SHORT, |e| match e {
        Event::Transfer(TransferEvent::Failed {
            transfer: 9,
            reason,
            part,
            ..
        }) => {
            assert_eq!(part, &None);
            Some(reason.clone())
        }
        Event::Transfer(TransferEvent::Saved { .. }) => panic!("a corrupt file was saved"),
        _ => None,
    });
    assert!(reason.contains("SHA-256"), "{reason}");
    assert_eq!(fs::read_dir(&dir).expect("dir").count(), 0, "nothing left");
    drop(victim);
    fake.join().expect("fake server");

    // More bytes than offered.
    let (addr, fake) = fake_server(
        "hello.txt",
        Sha256::digest(&content).to_vec(),
        4,
        vec![(0, content.clone())],
    );
    let victim = Client::connect_plain(addr, "victim").expect("connect");
    offer_of(&victim, Some(9));
    victim.accept_file(9, &dir).expect("accept");
    wait_for(&victim, "the failure", SHORT, |e| match e {
        Event::Transfer(TransferEvent::Failed { transfer: 9, .. }) => Some(()),
        Event::Transfer(TransferEvent::Saved { .. }) => panic!("saved"),
        _ => None,
    });
    assert_eq!(fs::read_dir(&dir).expect("dir").count(), 0, "nothing left");
    drop(victim);
    fake.join().expect("fake server");
}

#[test]
fn empty_files_refusals_and_withdrawn_offers() {
    let tmp = TempDir::new("small");
    let server = start(ServerConfig {
        max_file_bytes: 1000,
        ..config(&tmp.sub("spool"))
    });
    let addr = server.local_addr();
    let src = tmp.sub("src");
    let alice = Client::connect_plain(addr, "alice").expect("alice");
    let bob = Client::connect_plain(addr, "bob").expect("bob");

    // An empty file: no chunk, ready at once, saved empty.
    let empty = src.join("empty.txt");
    fs::write(&empty, b"").expect("write");
    let transfer = upload(&alice, &empty, SHORT);
    offer_of(&bob, Some(transfer));
    let dir = tmp.sub("bob");
    bob.accept_file(transfer, &dir).expect("accept");
    let path = saved(&bob, transfer, SHORT);
    assert_eq!(path, dir.join("empty.txt"));
    assert_eq!(fs::metadata(&path).expect("meta").len(), 0);
    // The same file again does not overwrite the first copy.
    bob.accept_file(transfer, &dir).expect("accept again");
    assert_eq!(saved(&bob, transfer, SHORT), dir.join("empty (1).txt"));

    // Too large for this server: refused, with the name.
    let (big, _) = random_file(&src, "big.bin", 1001);
    let reference = alice.send_file(&big, FileKind::File).expect("send");
    let (code, name) = wait_for(&alice, "the refusal", SHORT, |e| match e {
        Event::Transfer(TransferEvent::OfferRefused {
            reference: r,
            code,
            name,
            ..
        }) if *r == reference => Some((*code, name.clone())),
        _ => None,
    });
    assert_eq!((code, name.as_str()), (ErrorCode::FileTooLarge, "big.bin"));

    // A local file that does not exist is an error at once.
    assert!(alice.send_file(&src.join("nope"), FileKind::File).is_err());
    assert!(bob.accept_file(12345, &dir).is_err(), "unknown offer");

    // The sender withdraws an offer: the others are told.
    let (small, _) = random_file(&src, "small.bin", 999);
    let transfer = upload(&alice, &small, SHORT);
    offer_of(&bob, Some(transfer));
    alice.cancel_file(transfer).expect("withdraw");
    wait_transfer(&alice, "the withdrawal", SHORT, |e| {
        matches!(e, TransferEvent::Cancelled { transfer: t, part: None } if *t == transfer)
            .then_some(())
    });
    let c = wait_for(&bob, "the end of the offer", SHORT, |e| match e {
        Event::Message(ServerMessage::FileCancelled(c)) => Some(c.clone()),
        _ => None,
    });
    assert_eq!((c.transfer, c.reason.as_str()), (transfer, "cancelled"));
    assert!(bob.offers().iter().all(|o| o.transfer != transfer));
    drop((alice, bob));
    server.stop().expect("stop");
}

#[test]
fn an_upload_whose_file_changes_under_it_fails_cleanly() {
    let tmp = TempDir::new("changed");
    let server = start(config(&tmp.sub("spool")));
    let addr = server.local_addr();
    let src = tmp.sub("src");
    let alice = Client::connect_plain(addr, "alice").expect("alice");

    // Same length, other bytes at the end: the server's SHA-256 check fails.
    let (path, data) = random_file(&src, "changing.bin", 16 * MIB);
    let reference = alice.send_file(&path, FileKind::File).expect("send");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.seek_end_and_write(&data[data.len() - 16..]);
    let failure = wait_for(&alice, "the failure", LONG, |e| match e {
        Event::Transfer(TransferEvent::Failed { code, .. }) => Some(*code),
        Event::Transfer(TransferEvent::UploadReady { .. }) => panic!("a changed file was offered"),
        Event::Transfer(TransferEvent::OfferRefused { reference: r, .. }) if *r == reference => {
            panic!("refused")
        }
        Event::Message(ServerMessage::Error(e)) => panic!("error not attributed: {e:?}"),
        _ => None,
    });
    assert_eq!(failure, Some(ErrorCode::HashMismatch));

    // Shorter than hashed: the client notices and cancels the upload.
    let (path, _) = random_file(&src, "shrinking.bin", 16 * MIB);
    alice.send_file(&path, FileKind::File).expect("send");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(1000))
        .expect("truncate");
    let reason = wait_for(&alice, "the failure", LONG, |e| match e {
        Event::Transfer(TransferEvent::Failed { code, reason, .. }) => {
            assert_eq!(*code, None);
            Some(reason.clone())
        }
        Event::Transfer(TransferEvent::UploadReady { .. }) => panic!("offered"),
        _ => None,
    });
    assert!(reason.contains("shorter"), "{reason}");
    // The server's answer to the client's cancel is not reported, and the
    // connection is fine.
    alice.ping(77).expect("ping");
    wait_for(&alice, "the pong", SHORT, |e| match e {
        Event::Message(ServerMessage::Pong(p)) if p.seq == 77 => Some(()),
        Event::Message(ServerMessage::FileCancelled(c)) => panic!("{c:?}"),
        // Nothing after the failure: its `UploadStarted` came before it.
        Event::Transfer(t) => panic!("{t:?}"),
        _ => None,
    });
    drop(alice);
    server.stop().expect("stop");
}

/// Overwrites the last bytes of a file with `bytes` (as many as given).
trait OverwriteEnd {
    fn seek_end_and_write(&mut self, bytes: &[u8]);
}

impl OverwriteEnd for fs::File {
    fn seek_end_and_write(&mut self, bytes: &[u8]) {
        use std::io::{Seek, SeekFrom};
        let flipped: Vec<u8> = bytes.iter().map(|b| !b).collect();
        self.seek(SeekFrom::End(-(bytes.len() as i64)))
            .and_then(|_| self.write_all(&flipped))
            .and_then(|()| self.sync_all())
            .expect("overwrite the end");
    }
}

//! TLS on the chat port of the embedded server: real handshakes over
//! loopback with rustls clients, members chatting inside TLS, bad input
//! (plain text, garbage, oversized records, stalled handshakes) closed
//! without disturbing anyone, and certificate replacement at run time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chatcore::protocol::{
    ChatSend, ClientMessage, DecodeError, Hello, PROTOCOL_VERSION, ServerMessage, Welcome,
    decode_server, encode_client,
};
use chatcore::tls::{Fingerprint, insecure_client_config};
use chatcore::{HandleError, RunningServer, Server, ServerConfig, ServerTls};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// A fresh data directory for one test.
fn data_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatcore-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start_tls(tls: ServerTls, config: ServerConfig) -> RunningServer {
    Server::builder()
        .config(config)
        .listen("127.0.0.1:0".parse().expect("addr"))
        .voice_listen(None)
        .tls(tls)
        .build()
        .expect("bind")
        .spawn()
        .expect("spawn")
}

/// A frame-level client speaking TLS (any certificate accepted; the test
/// checks the fingerprint itself).
struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: BytesMut,
    /// The name the server gave it, to skip the echoes of its own chats.
    name: String,
}

impl TlsClient {
    fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        tcp.set_read_timeout(Some(WAIT)).expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(insecure_client_config(), name).expect("client");
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .expect("TLS handshake");
        }
        Self {
            stream,
            buf: BytesMut::new(),
            name: String::new(),
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        let certs = self.stream.conn.peer_certificates().expect("certificates");
        Fingerprint::of(certs.first().expect("leaf"))
    }

    fn send(&mut self, msg: &ClientMessage) {
        self.stream.write_all(&encode_client(msg)).expect("send");
        self.stream.flush().expect("flush");
    }

    fn login(addr: SocketAddr, name: &str) -> (Self, Welcome) {
        let mut c = Self::connect(addr);
        c.send(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: name.into(),
            last_seen: None,
        }));
        match c.next() {
            Some(ServerMessage::Welcome(w)) => {
                c.name = w.name.clone();
                (c, w)
            }
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    fn chat(&mut self, text: &str) {
        self.send(&ClientMessage::Chat(ChatSend {
            room: None,
            text: text.into(),
            reference: None,
        }));
    }

    /// The next message (pings answered); `None` once the server closed.
    fn next(&mut self) -> Option<ServerMessage> {
        let deadline = Instant::now() + WAIT;
        loop {
            match decode_server(&mut self.buf, u32::MAX) {
                Ok(Some(ServerMessage::Ping(seq))) => {
                    self.send(&ClientMessage::Pong(seq));
                    continue;
                }
                Ok(Some(msg)) => return Some(msg),
                Ok(None) => {}
                Err(DecodeError::Message(e)) => panic!("bad message: {e}"),
                Err(DecodeError::Frame(e)) => panic!("bad frame: {e}"),
            }
            assert!(Instant::now() < deadline, "no message within {WAIT:?}");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// A message already received or readable without waiting, if any.
    fn try_message(&mut self) -> Option<ServerMessage> {
        loop {
            match decode_server(&mut self.buf, u32::MAX) {
                Ok(Some(ServerMessage::Ping(seq))) => {
                    self.send(&ClientMessage::Pong(seq));
                    continue;
                }
                Ok(Some(msg)) => return Some(msg),
                Ok(None) => {}
                Err(e) => panic!("bad frame: {e:?}"),
            }
            self.stream.sock.set_nonblocking(true).expect("nonblocking");
            let mut chunk = [0u8; 65536];
            let r = self.stream.read(&mut chunk);
            self.stream.sock.set_nonblocking(false).expect("blocking");
            match r {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next chat text from someone else.
    fn next_chat(&mut self) -> String {
        loop {
            match self.next() {
                Some(ServerMessage::Chat(c)) if c.from != self.name => return c.text,
                Some(_) => {}
                None => panic!("closed while waiting for a chat"),
            }
        }
    }
}

/// Everything the server sends to a raw socket until it closes it (a reset
/// counts as closed too); fails after `WAIT`.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

#[test]
fn members_log_in_and_chat_inside_tls_and_see_the_servers_fingerprint() {
    let dir = data_dir("e2e");
    let tls = ServerTls::self_signed(&dir).expect("certificate");
    let server = start_tls(tls.clone(), ServerConfig::default());
    let addr = server.local_addr();
    let (mut alice, w) = TlsClient::login(addr, "alice");
    assert_eq!(w.name, "alice");
    assert_eq!(alice.fingerprint(), tls.fingerprint());
    let (mut bob, _) = TlsClient::login(addr, "bob");
    alice.chat("hello over TLS");
    assert_eq!(bob.next_chat(), "hello over TLS");
    // A burst (within the rate limit's) larger than one TLS record,
    // delivered whole and in order.
    for i in 0..30 {
        bob.chat(&format!("line {i:03} {}", "x".repeat(2000)));
    }
    for i in 0..30 {
        let text = alice.next_chat();
        assert!(text.starts_with(&format!("line {i:03} ")), "{text}");
    }
    let stats = server.handle().stats().expect("stats");
    assert!(stats.tls_handshakes >= 2, "{stats:?}");
    assert_eq!(stats.tls_failures, 0, "{stats:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plain_client_on_the_tls_port_gets_an_alert_and_is_closed_while_members_chat_on() {
    let dir = data_dir("plain");
    let server = start_tls(
        ServerTls::self_signed(&dir).expect("certificate"),
        ServerConfig::default(),
    );
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    let (mut bob, _) = TlsClient::login(addr, "bob");

    let mut plain = TcpStream::connect(addr).expect("connect");
    plain
        .write_all(&encode_client(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: "plain".into(),
            last_seen: None,
        })))
        .expect("send a plain hello");
    let got = read_until_closed(&mut plain);
    // A TLS alert record (content type 21), nothing else.
    assert_eq!(got.first(), Some(&21), "{got:?}");

    alice.chat("still here");
    assert_eq!(bob.next_chat(), "still here");
    let stats = server.handle().stats().expect("stats");
    assert_eq!(stats.tls_failures, 1, "{stats:?}");
    assert_eq!(stats.members, 2, "{stats:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_and_oversized_records_in_the_handshake_are_closed_without_disturbing_members() {
    let dir = data_dir("garbage");
    let server = start_tls(
        ServerTls::self_signed(&dir).expect("certificate"),
        ServerConfig::default(),
    );
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    let (mut bob, _) = TlsClient::login(addr, "bob");
    let attacks: [&[u8]; 4] = [
        // A handshake record announcing 65535 bytes: more than any record.
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00],
        // A handshake record full of garbage.
        &[
            0x16, 0x03, 0x01, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3,
        ],
        // An application-data record before any handshake.
        &[0x17, 0x03, 0x03, 0x00, 0x04, 1, 2, 3, 4],
        // An unknown content type.
        &[0x42; 64],
    ];
    for (i, bytes) in attacks.iter().enumerate() {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(bytes).expect("send");
        read_until_closed(&mut s);
        alice.chat(&format!("after attack {i}"));
        assert_eq!(bob.next_chat(), format!("after attack {i}"));
    }
    let stats = server.handle().stats().expect("stats");
    assert_eq!(stats.tls_failures, attacks.len() as u64, "{stats:?}");
    assert_eq!(stats.members, 2, "{stats:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_stalling_in_the_tls_handshake_is_timed_out_like_one_that_never_says_hello() {
    let dir = data_dir("stall");
    let config = ServerConfig {
        handshake_timeout_ms: 300,
        ..ServerConfig::default()
    };
    let server = start_tls(ServerTls::self_signed(&dir).expect("certificate"), config);
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    // The first bytes of a ClientHello, and then nothing.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00])
        .expect("send");
    read_until_closed(&mut s);
    let stats = server.handle().stats().expect("stats");
    assert_eq!(stats.tls_failures, 1, "{stats:?}");
    let (mut bob, _) = TlsClient::login(addr, "bob");
    alice.chat("unaffected");
    assert_eq!(bob.next_chat(), "unaffected");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_new_certificate_applies_to_new_connections_while_members_stay() {
    let first = ServerTls::self_signed(&data_dir("reload-a")).expect("first");
    let second = ServerTls::self_signed(&data_dir("reload-b")).expect("second");
    assert_ne!(first.fingerprint(), second.fingerprint());
    let server = start_tls(first.clone(), ServerConfig::default());
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    assert_eq!(alice.fingerprint(), first.fingerprint());

    server.handle().set_tls(second.clone()).expect("replaced");
    let (mut bob, _) = TlsClient::login(addr, "bob");
    assert_eq!(bob.fingerprint(), second.fingerprint());
    alice.chat("across certificates");
    assert_eq!(bob.next_chat(), "across certificates");
    bob.chat("and back");
    assert_eq!(alice.next_chat(), "and back");
    let stats = server.handle().stats().expect("stats");
    assert_eq!(stats.tls_reloads, 1, "{stats:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(data_dir("reload-a"));
    let _ = std::fs::remove_dir_all(data_dir("reload-b"));
}

#[test]
fn a_plain_server_refuses_a_certificate_at_run_time() {
    let dir = data_dir("plain-server");
    let tls = ServerTls::self_signed(&dir).expect("certificate");
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .voice_listen(None)
        .build()
        .expect("bind")
        .spawn()
        .expect("spawn");
    assert_eq!(server.handle().set_tls(tls), Err(HandleError::TlsOff));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_trusting_client_verifies_the_self_signed_certificate_by_name() {
    let dir = data_dir("verify");
    let tls = ServerTls::self_signed(&dir).expect("certificate");
    let server = start_tls(tls, ServerConfig::default());
    let pem = std::fs::read(dir.join("tls").join("cert.pem")).expect("cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("pem")).expect("add");
    }
    let config = rustls::ClientConfig::builder_with_provider(chatcore::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    for name in ["localhost", "127.0.0.1"] {
        let tcp = TcpStream::connect(server.local_addr()).expect("connect");
        tcp.set_read_timeout(Some(WAIT)).expect("timeout");
        let conn = ClientConnection::new(
            Arc::new(config.clone()),
            ServerName::try_from(name).expect("name").to_owned(),
        )
        .expect("client");
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .unwrap_or_else(|e| panic!("verified handshake as {name}: {e}"));
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_goes_up_and_down_intact_inside_tls_while_the_chat_goes_on() {
    use chatcore::protocol::transfer::{FileAccept, FileChunk, FileKind, FileOffer, MAX_CHUNK};
    use sha2::{Digest, Sha256};
    let dir = data_dir("transfer");
    let spool = data_dir("transfer-spool");
    let config = ServerConfig {
        spool_dir: Some(spool.clone()),
        rate_per_sec: 1000.0,
        rate_burst: 1000.0,
        ..ServerConfig::default()
    };
    let server = start_tls(ServerTls::self_signed(&dir).expect("certificate"), config);
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    let (mut bob, _) = TlsClient::login(addr, "bob");
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    alice.send(&ClientMessage::FileOffer(FileOffer {
        name: "big.bin".into(),
        size: data.len() as u64,
        sha256: Sha256::digest(&data).to_vec(),
        kind: FileKind::File,
        reference: Some(1),
        room: None,
        to: None,
    }));
    let id = loop {
        match alice.next() {
            Some(ServerMessage::FileUpload(u)) => break u.transfer,
            Some(ServerMessage::Error(e)) => panic!("offer refused: {e:?}"),
            Some(_) => {}
            None => panic!("closed"),
        }
    };
    for (i, piece) in data.chunks(MAX_CHUNK as usize).enumerate() {
        alice.send(&ClientMessage::FileChunk(FileChunk {
            transfer: id,
            offset: (i * MAX_CHUNK as usize) as u64,
            data: piece.to_vec(),
        }));
    }
    loop {
        match alice.next() {
            Some(ServerMessage::FileReady(t)) if t.transfer == id => break,
            Some(ServerMessage::Error(e)) => panic!("upload refused: {e:?}"),
            Some(_) => {}
            None => panic!("closed during upload"),
        }
    }
    bob.send(&ClientMessage::FileAccept(FileAccept {
        transfer: id,
        offset: 0,
    }));
    alice.chat("while you download");
    let mut got = Vec::new();
    let mut chatted = false;
    loop {
        match bob.next() {
            Some(ServerMessage::FileData(d)) => {
                assert_eq!(d.offset, got.len() as u64, "in order");
                got.extend_from_slice(&d.data);
            }
            Some(ServerMessage::FileDone(t)) if t.transfer == id => break,
            Some(ServerMessage::Chat(c)) if c.text == "while you download" => chatted = true,
            Some(ServerMessage::Error(e)) => panic!("download refused: {e:?}"),
            Some(_) => {}
            None => panic!("closed during download"),
        }
    }
    assert!(got == data, "the download is intact");
    if !chatted {
        assert_eq!(bob.next_chat(), "while you download");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn a_tls_member_that_stops_reading_is_cut_off_as_slow_and_the_others_are_not() {
    use chatcore::protocol::LeaveReason;
    let dir = data_dir("slow");
    let config = ServerConfig {
        max_frame: 64 * 1024,
        max_output_bytes: 256 * 1024,
        rate_per_sec: 10_000.0,
        rate_burst: 10_000.0,
        ..ServerConfig::default()
    };
    let server = start_tls(ServerTls::self_signed(&dir).expect("certificate"), config);
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    let (mut bob, _) = TlsClient::login(addr, "bob");
    let (_sleeper, sleeper_welcome) = TlsClient::login(addr, "sleeper");
    let text = "z".repeat(4000);
    // Alice chats, bob reads each message before the next is sent (so no
    // loop turn queues more than one message), and the sleeper reads
    // nothing: its queue (beyond the socket buffers and rustls' bounded
    // buffer) passes the cap.
    let mut reason = None;
    for _ in 0..20_000 {
        alice.chat(&text);
        while alice.try_message().is_some() {}
        loop {
            match bob.next() {
                Some(ServerMessage::Chat(c)) if c.from == "alice" => break,
                Some(ServerMessage::Left(l)) if l.session == sleeper_welcome.session => {
                    reason = Some(l.reason)
                }
                Some(ServerMessage::Presence(p)) => {
                    if let Some(d) = p.left.iter().find(|d| d.session == sleeper_welcome.session) {
                        reason = Some(d.reason);
                    }
                }
                Some(_) => {}
                None => panic!("bob was closed"),
            }
        }
        if reason.is_some() {
            break;
        }
    }
    assert_eq!(reason, Some(LeaveReason::Slow));
    alice.chat("after");
    loop {
        if let Some(ServerMessage::Chat(c)) = bob.next()
            && c.text == "after"
        {
            break;
        }
    }
    assert!(server.handle().stats().expect("stats").slow_disconnects >= 1);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_burst_of_tls_handshakes_all_complete_and_a_member_keeps_chatting() {
    let dir = data_dir("burst");
    let config = ServerConfig {
        max_connections_per_address: 1000,
        max_handshakes_per_address: 1000,
        // The 600 log in one after the other below, each welcome listing
        // everyone: on a loaded machine the last may say hello more than
        // the default 10 s after connecting. This test is about the burst,
        // not the timeout (tested elsewhere).
        handshake_timeout_ms: 300_000,
        ..ServerConfig::default()
    };
    let server = start_tls(ServerTls::self_signed(&dir).expect("certificate"), config);
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    let (mut bob, _) = TlsClient::login(addr, "bob");
    // 600 ClientHellos sent before any handshake is driven further: more
    // than one loop turn handles (the rest wait for the next turns).
    let name = ServerName::try_from("localhost").expect("name");
    let pending: Vec<StreamOwned<ClientConnection, TcpStream>> = (0..600)
        .map(|_| {
            let tcp = TcpStream::connect(addr).expect("connect");
            tcp.set_read_timeout(Some(WAIT)).expect("timeout");
            let mut conn =
                ClientConnection::new(insecure_client_config(), name.clone()).expect("client");
            let mut sock = tcp;
            while conn.wants_write() {
                conn.write_tls(&mut sock).expect("ClientHello");
            }
            StreamOwned::new(conn, sock)
        })
        .collect();
    alice.chat("during the burst");
    assert_eq!(bob.next_chat(), "during the burst");
    let mut pending = pending;
    for (i, stream) in pending.iter_mut().enumerate() {
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .unwrap_or_else(|e| panic!("handshake {i}: {e}"));
        }
    }
    // Every one of them logs in (the server finished its handshakes too).
    let mut members = Vec::new();
    for (i, stream) in pending.into_iter().enumerate() {
        let mut c = TlsClient {
            stream,
            buf: BytesMut::new(),
            name: String::new(),
        };
        c.send(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: format!("u{i}"),
            last_seen: None,
        }));
        match c.next() {
            Some(ServerMessage::Welcome(_)) => {}
            other => panic!("u{i}: expected a welcome, got {other:?}"),
        }
        members.push(c);
    }
    let stats = server.handle().stats().expect("stats");
    assert_eq!(stats.tls_handshakes, 602, "{stats:?}");
    assert_eq!(stats.tls_failures, 0, "{stats:?}");
    assert_eq!(stats.members, 602, "{stats:?}");
    bob.chat("after the burst");
    assert_eq!(alice.next_chat(), "after the burst");
    drop(members);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn close_notify_ends_a_membership_even_while_tcp_stays_open() {
    use chatcore::protocol::LeaveReason;
    let dir = data_dir("close-notify");
    let server = start_tls(
        ServerTls::self_signed(&dir).expect("certificate"),
        ServerConfig::default(),
    );
    let addr = server.local_addr();
    let (mut alice, _) = TlsClient::login(addr, "alice");
    let (mut bob, bob_welcome) = TlsClient::login(addr, "bob");
    bob.stream.conn.send_close_notify();
    while bob.stream.conn.wants_write() {
        bob.stream
            .conn
            .write_tls(&mut bob.stream.sock)
            .expect("send close_notify");
    }
    let reason = loop {
        match alice.next() {
            Some(ServerMessage::Left(l)) if l.session == bob_welcome.session => break l.reason,
            Some(ServerMessage::Presence(p)) => {
                if let Some(d) = p.left.iter().find(|d| d.session == bob_welcome.session) {
                    break d.reason;
                }
            }
            Some(_) => {}
            None => panic!("alice was closed"),
        }
    };
    assert_eq!(reason, LeaveReason::Quit);
    // The server closed bob's socket too.
    let mut rest = Vec::new();
    let closed = bob.stream.sock.read_to_end(&mut rest);
    assert!(closed.is_ok(), "{closed:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tls12_only_client_logs_in_and_chats_and_a_default_client_gets_tls13() {
    let dir = data_dir("tls12");
    let server = start_tls(
        ServerTls::self_signed(&dir).expect("certificate"),
        ServerConfig::default(),
    );
    let addr = server.local_addr();
    let provider = chatcore::tls::provider();
    let tls12 = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(chatcore::tls::AcceptAnyCertificate::new(
            provider,
        )))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let conn = ClientConnection::new(
        Arc::new(tls12),
        ServerName::try_from("localhost").expect("name"),
    )
    .expect("client");
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS 1.2 handshake");
    }
    assert_eq!(
        stream.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let mut old = TlsClient {
        stream,
        buf: BytesMut::new(),
        name: String::new(),
    };
    old.send(&ClientMessage::Hello(Hello {
        password: None,
        token: None,
        version: PROTOCOL_VERSION,
        name: "old".into(),
        last_seen: None,
    }));
    match old.next() {
        Some(ServerMessage::Welcome(w)) => old.name = w.name,
        other => panic!("expected a welcome, got {other:?}"),
    }
    let (mut new, _) = TlsClient::login(addr, "new");
    assert_eq!(
        new.stream.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    old.chat("over TLS 1.2");
    assert_eq!(new.next_chat(), "over TLS 1.2");
    new.chat("over TLS 1.3");
    assert_eq!(old.next_chat(), "over TLS 1.3");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

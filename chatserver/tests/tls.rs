//! The real binary with TLS, its default: the self-signed certificate is
//! created on first start (key mode 0600) and reused with the same
//! fingerprint; the fingerprint is logged; SIGHUP swaps in new certificate
//! files while members keep chatting; a plain client gets an alert.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use bytes::BytesMut;
use chatcore::ServerTls;
use chatcore::protocol::{
    ChatSend, ClientMessage, DecodeError, Hello, PROTOCOL_VERSION, ServerMessage, decode_server,
    encode_client,
};
use chatcore::tls::{Fingerprint, insecure_client_config};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use support::{Daemon, START, temp_dir};

const FINGERPRINT_LINE: &str = "TLS certificate SHA-256 fingerprint: ";

/// A member speaking frames inside TLS (any certificate accepted: the
/// tests compare fingerprints themselves).
struct Member {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: BytesMut,
    name: String,
}

impl Member {
    fn join(addr: SocketAddr, name: &str) -> Self {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(START)).expect("timeout");
        let server = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(insecure_client_config(), server).expect("client");
        let mut m = Self {
            stream: StreamOwned::new(conn, tcp),
            buf: BytesMut::new(),
            name: String::new(),
        };
        m.send(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: name.into(),
            last_seen: None,
        }));
        match m.next() {
            Some(ServerMessage::Welcome(w)) => m.name = w.name,
            other => panic!("expected a welcome, got {other:?}"),
        }
        m
    }

    fn fingerprint(&self) -> Fingerprint {
        let certs = self.stream.conn.peer_certificates().expect("certificates");
        Fingerprint::of(certs.first().expect("leaf"))
    }

    fn send(&mut self, msg: &ClientMessage) {
        self.stream.write_all(&encode_client(msg)).expect("send");
        self.stream.flush().expect("flush");
    }

    fn chat(&mut self, text: &str) {
        self.send(&ClientMessage::Chat(ChatSend {
            room: None,
            text: text.into(),
            reference: None,
        }));
    }

    fn next(&mut self) -> Option<ServerMessage> {
        let deadline = Instant::now() + START;
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
            assert!(Instant::now() < deadline, "no message within {START:?}");
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next chat from someone else.
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

/// The fingerprint in the daemon's log line.
fn logged_fingerprint(line: &str) -> Fingerprint {
    let text = line.split(FINGERPRINT_LINE).nth(1).expect("fingerprint");
    Fingerprint::parse(text.split_whitespace().next().expect("value")).expect("parses")
}

#[test]
fn the_self_signed_certificate_is_created_private_on_first_start_and_reused_after() {
    let data = temp_dir("tls-first-start");
    let data_arg = data.to_str().expect("utf-8");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--no-voice",
        "--data-dir",
        data_arg,
    ];

    let mut first = Daemon::spawn_exact(&args);
    let addr = first.chat_addr();
    let line = first
        .wait_for_line(FINGERPRINT_LINE, START)
        .expect("fingerprint logged");
    let logged = logged_fingerprint(&line);
    let key = data.join("tls").join("key.pem");
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&data.join("tls")), 0o700);
    let mut alice = Member::join(addr, "alice");
    assert_eq!(
        alice.fingerprint(),
        logged,
        "the logged fingerprint is served"
    );
    let mut bob = Member::join(addr, "bob");
    alice.chat("over TLS by default");
    assert_eq!(bob.next_chat(), "over TLS by default");
    first.signal("TERM");
    let (code, stderr) = first.finish(START);
    assert_eq!(code, Some(0), "{stderr}");
    let key_before = std::fs::read(&key).expect("key");

    let mut second = Daemon::spawn_exact(&args);
    let addr = second.chat_addr();
    let line = second
        .wait_for_line(FINGERPRINT_LINE, START)
        .expect("fingerprint logged");
    assert_eq!(logged_fingerprint(&line), logged, "the same certificate");
    assert_eq!(std::fs::read(&key).expect("key"), key_before);
    assert_eq!(Member::join(addr, "carol").fingerprint(), logged);
    drop(second);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn sighup_loads_new_certificate_files_while_members_keep_chatting() {
    let work = temp_dir("tls-reload");
    let a = ServerTls::self_signed(&work.join("a")).expect("pair a");
    let b = ServerTls::self_signed(&work.join("b")).expect("pair b");
    let cert = work.join("cert.pem");
    let key = work.join("key.pem");
    let install = |from: &str| {
        std::fs::copy(work.join(from).join("tls/cert.pem"), &cert).expect("cert");
        std::fs::copy(work.join(from).join("tls/key.pem"), &key).expect("key");
    };
    install("a");
    let mut daemon = Daemon::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--no-voice",
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        key.to_str().expect("utf-8"),
    ]);
    let addr = daemon.chat_addr();
    let mut alice = Member::join(addr, "alice");
    let mut bob = Member::join(addr, "bob");
    assert_eq!(alice.fingerprint(), a.fingerprint());

    install("b");
    daemon.signal("HUP");
    let want = format!("{FINGERPRINT_LINE}{}", b.fingerprint());
    assert!(
        daemon.wait_for_line(&want, START).is_some(),
        "the new fingerprint is logged:\n{}",
        daemon.seen.join("\n")
    );
    alice.chat("still connected");
    assert_eq!(bob.next_chat(), "still connected");
    let mut carol = Member::join(addr, "carol");
    assert_eq!(carol.fingerprint(), b.fingerprint());
    bob.chat("hello carol");
    assert_eq!(carol.next_chat(), "hello carol");

    // A broken file keeps the current certificate.
    std::fs::write(&key, b"not a key").expect("break the key");
    daemon.signal("HUP");
    assert!(
        daemon
            .wait_for_line("keeping the current one", START)
            .is_some(),
        "{}",
        daemon.seen.join("\n")
    );
    assert_eq!(Member::join(addr, "dave").fingerprint(), b.fingerprint());
    drop(daemon);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn a_plain_client_on_the_tls_port_gets_an_alert_and_the_members_do_not_notice() {
    let mut daemon = Daemon::spawn(&["--listen", "127.0.0.1:0", "--no-voice"]);
    let addr = daemon.chat_addr();
    let mut alice = Member::join(addr, "alice");
    let mut bob = Member::join(addr, "bob");

    let mut plain = TcpStream::connect(addr).expect("connect");
    plain.set_read_timeout(Some(START)).expect("timeout");
    plain
        .write_all(&encode_client(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: PROTOCOL_VERSION,
            name: "plain".into(),
            last_seen: None,
        })))
        .expect("send");
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match plain.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("not closed: {e}"),
        }
    }
    assert_eq!(got.first(), Some(&21), "a TLS alert record: {got:?}");
    alice.chat("unaffected");
    assert_eq!(bob.next_chat(), "unaffected");
}

#[test]
fn no_tls_warns_loudly() {
    let mut daemon = Daemon::spawn(&["--listen", "127.0.0.1:0", "--no-voice", "--no-tls"]);
    daemon.chat_addr();
    let line = daemon
        .wait_for_line("TLS IS OFF", START)
        .expect("a warning");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        !daemon.seen.iter().any(|l| l.contains(FINGERPRINT_LINE)),
        "{}",
        daemon.seen.join("\n")
    );
}

//! The client side of TLS over real loopback sockets, real handshakes and
//! real files: trust on first use (remembered, known, changed), CA
//! verification, `--insecure`, the split halves under load, and a whole
//! `Client` login through a TLS peer in front of a real embedded server.
//!
//! The TLS peer is made here with rustls and rcgen (the server's own TLS is
//! tested with the server).

mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use chatcore::Client;
use chatcore::client::Event;
use chatcore::protocol::ServerMessage;
use chatcore::tls::{self, ClientTls, Fingerprint, KnownServers, TlsError, Trust, Verify};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A directory of its own under the system temporary directory.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chatcore-tls-client-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A certificate and its key, as a TLS server needs them.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    /// A self-signed certificate for localhost and 127.0.0.1 (what the
    /// daemon makes on first start).
    fn self_signed() -> Self {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("self-signed certificate");
        Self {
            chain: vec![made.cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()),
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.chain[0])
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .expect("server certificate");
        Arc::new(config)
    }
}

/// A CA (written to `ca.pem` in `dir`) and a certificate it signed for
/// "localhost" only.
fn ca_and_leaf(dir: &Path) -> (PathBuf, Identity) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let ca_file = dir.join("ca.pem");
    fs::write(&ca_file, ca_cert.pem()).expect("write ca.pem");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let identity = Identity {
        chain: vec![leaf.der().clone()],
        key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
    };
    (ca_file, identity)
}

/// What a TLS peer saw on one connection.
#[derive(Debug)]
struct Seen {
    /// The handshake's outcome (the error text when it failed).
    handshake: Result<(), String>,
    /// Application bytes received.
    plaintext: usize,
}

/// A TLS server thread on 127.0.0.1 serving `conns` connections one after
/// the other: it completes the handshake, then echoes every byte (or, with
/// `relay_to`, relays both ways to a plain TCP server).
struct Peer {
    addr: SocketAddr,
    thread: JoinHandle<Vec<Seen>>,
}

impl Peer {
    fn echo(identity: &Identity, conns: usize) -> Self {
        Self::spawn(identity, conns, None)
    }

    fn spawn(identity: &Identity, conns: usize, relay_to: Option<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = identity.server_config();
        let thread = thread::spawn(move || {
            (0..conns)
                .map(|_| {
                    let (sock, _) = listener.accept().expect("accept");
                    serve(sock, config.clone(), relay_to)
                })
                .collect()
        });
        Self { addr, thread }
    }

    fn server(&self) -> String {
        self.addr.to_string()
    }

    fn finish(self) -> Vec<Seen> {
        self.thread.join().expect("peer thread")
    }
}

fn serve(
    mut sock: TcpStream,
    config: Arc<rustls::ServerConfig>,
    relay: Option<SocketAddr>,
) -> Seen {
    sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut conn = rustls::ServerConnection::new(config).expect("server connection");
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) => {
                return Seen {
                    handshake: Err("closed during the handshake".into()),
                    plaintext: 0,
                };
            }
            Ok(_) => {}
            Err(e) => {
                // Whatever may still arrive is counted: it must be nothing.
                let mut plaintext = 0;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.reader().read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    plaintext += n;
                }
                return Seen {
                    handshake: Err(e.to_string()),
                    plaintext,
                };
            }
        }
    }
    match relay {
        None => echo(conn, sock),
        Some(to) => relay_to(conn, sock, to),
    }
}

fn echo(conn: rustls::ServerConnection, sock: TcpStream) -> Seen {
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut buf = vec![0u8; 64 * 1024];
    let mut plaintext = 0;
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                plaintext += n;
                if tls.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    Seen {
        handshake: Ok(()),
        plaintext,
    }
}

/// Terminates TLS and relays to a plain server, polling both sockets (a
/// test helper: simple rather than fast).
fn relay_to(mut conn: rustls::ServerConnection, mut sock: TcpStream, to: SocketAddr) -> Seen {
    let mut plain = TcpStream::connect(to).expect("connect to the plain server");
    sock.set_nonblocking(true).expect("nonblocking");
    plain.set_nonblocking(true).expect("nonblocking");
    let mut buf = vec![0u8; 64 * 1024];
    let mut plaintext = 0;
    'relay: loop {
        let mut idle = true;
        // TLS side -> plain side (the handshake may have read some already).
        match conn.read_tls(&mut sock) {
            Ok(0) => break,
            Ok(_) => idle = false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if conn.process_new_packets().is_err() {
            break;
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => break 'relay,
                Ok(n) => {
                    idle = false;
                    plaintext += n;
                    if write_fully(&mut plain, &buf[..n]).is_err() {
                        break 'relay;
                    }
                }
                Err(_) => break,
            }
        }
        // Plain side -> TLS side.
        match plain.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                idle = false;
                if conn.writer().write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        while conn.wants_write() {
            match conn.write_tls(&mut sock) {
                Ok(_) => idle = false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(_) => break 'relay,
            }
        }
        if idle {
            thread::sleep(Duration::from_millis(2));
        }
    }
    Seen {
        handshake: Ok(()),
        plaintext,
    }
}

/// `write_all` on a non-blocking socket.
fn write_fully(sock: &mut TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match sock.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tofu(file: &Path) -> ClientTls {
    ClientTls::Tls(Verify::TrustOnFirstUse(KnownServers::at(
        file.to_path_buf(),
    )))
}

/// Writes `msg` and reads the same bytes back from the echo peer.
fn round_trip(stream: tls::ChatStream, msg: &[u8]) -> Vec<u8> {
    let (mut read, mut write) = stream.split();
    write.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    read.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    read.read_exact(&mut back).expect("read the echo");
    write.shutdown().expect("shutdown");
    back
}

#[test]
fn first_use_remembers_the_fingerprint_in_a_private_file_and_the_next_connect_knows_it() {
    let dir = TempDir::new("tofu");
    let file = dir.0.join("sub").join("known_servers");
    let id = Identity::self_signed();
    let peer = Peer::echo(&id, 2);
    let server = peer.server();

    let (stream, trust) = tls::connect(&server, &tofu(&file), TIMEOUT).expect("first connect");
    assert!(stream.is_tls());
    assert_eq!(trust, Trust::FirstUse(id.fingerprint()));
    assert_eq!(round_trip(stream, b"hello over tls"), b"hello over tls");

    let text = fs::read_to_string(&file).expect("the known-servers file exists");
    assert!(
        text.lines()
            .any(|l| l == format!("{server} {}", id.fingerprint())),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(
        KnownServers::at(file.clone()).get(&server).expect("get"),
        Some(id.fingerprint())
    );

    let (stream, trust) = tls::connect(&server, &tofu(&file), TIMEOUT).expect("second connect");
    assert_eq!(trust, Trust::Known(id.fingerprint()));
    assert_eq!(round_trip(stream, b"again"), b"again");
    // Known: the file was not rewritten with a second line.
    assert_eq!(fs::read_to_string(&file).expect("read"), text);
    let seen = peer.finish();
    assert!(seen.iter().all(|s| s.handshake.is_ok()), "{seen:?}");
}

#[test]
fn a_changed_certificate_is_refused_in_the_handshake_naming_both_fingerprints_and_nothing_is_sent()
{
    let dir = TempDir::new("changed");
    let file = dir.0.join("known_servers");
    let old = Identity::self_signed();
    let new = Identity::self_signed();
    let peer = Peer::echo(&new, 1);
    let server = peer.server();
    fs::write(
        &file,
        "# my servers\nother.example:7000 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\n",
    )
    .expect("write");
    let known = KnownServers::at(file.clone());
    known
        .remember(&server, old.fingerprint())
        .expect("remember");
    let before = fs::read_to_string(&file).expect("read");
    assert!(
        before.starts_with("# my servers\nother.example:7000 "),
        "{before}"
    );

    let err = tls::connect(&server, &tofu(&file), TIMEOUT).expect_err("must be refused");
    match &err {
        TlsError::CertificateChanged {
            server: s,
            remembered,
            presented,
            file: f,
        } => {
            assert_eq!(s, &server);
            assert_eq!(*remembered, old.fingerprint());
            assert_eq!(*presented, new.fingerprint());
            assert_eq!(f, &file);
        }
        other => panic!("expected CertificateChanged, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&old.fingerprint().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&new.fingerprint().to_string()),
        "{message}"
    );
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains(&server), "{message}");

    let seen = peer.finish();
    assert!(seen[0].handshake.is_err(), "{seen:?}");
    assert_eq!(seen[0].plaintext, 0, "no application byte reached the peer");
    // The file is untouched: the old fingerprint stays until the user acts.
    assert_eq!(fs::read_to_string(&file).expect("read"), before);

    // Accepting the new one (what a client does when the user says yes)
    // replaces the line and keeps the rest.
    known.remember(&server, new.fingerprint()).expect("accept");
    let after = fs::read_to_string(&file).expect("read");
    assert!(
        after.starts_with("# my servers\nother.example:7000 "),
        "{after}"
    );
    assert_eq!(after.matches(&server).count(), 1, "{after}");
    assert_eq!(known.get(&server).expect("get"), Some(new.fingerprint()));
}

#[test]
fn a_ca_file_verifies_a_certificate_for_the_host_and_refuses_another_name() {
    let dir = TempDir::new("ca");
    let (ca_file, leaf) = ca_and_leaf(&dir.0);
    let peer = Peer::echo(&leaf, 2);
    let port = peer.addr.port();
    let ca = ClientTls::Tls(Verify::CaFile(ca_file.clone()));

    let (stream, trust) =
        tls::connect(&format!("localhost:{port}"), &ca, TIMEOUT).expect("verified by the CA");
    assert_eq!(trust, Trust::CaVerified);
    assert_eq!(round_trip(stream, b"ca"), b"ca");

    // Same server, but the certificate does not name 127.0.0.1.
    let err = tls::connect(&format!("127.0.0.1:{port}"), &ca, TIMEOUT).expect_err("wrong name");
    assert!(matches!(err, TlsError::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    let seen = peer.finish();
    assert!(seen[0].handshake.is_ok());
    assert!(seen[1].handshake.is_err());
    assert_eq!(seen[1].plaintext, 0);

    // A self-signed certificate is not signed by the CA either.
    let stranger = Identity::self_signed();
    let peer = Peer::echo(&stranger, 1);
    let err = tls::connect(&format!("localhost:{}", peer.addr.port()), &ca, TIMEOUT)
        .expect_err("unknown issuer");
    assert!(matches!(err, TlsError::Handshake { .. }), "{err:?}");
    peer.finish();

    // A CA file without certificates is refused before connecting.
    let empty = dir.0.join("empty.pem");
    fs::write(&empty, "nothing here\n").expect("write");
    let err = tls::connect(
        &format!("localhost:{port}"),
        &ClientTls::Tls(Verify::CaFile(empty)),
        TIMEOUT,
    );
    assert!(matches!(err, Err(TlsError::CaFile { .. })), "{err:?}");
}

#[test]
fn insecure_accepts_any_certificate_and_says_so() {
    let id = Identity::self_signed();
    let peer = Peer::echo(&id, 1);
    let (stream, trust) = tls::connect(&peer.server(), &ClientTls::Tls(Verify::Insecure), TIMEOUT)
        .expect("insecure connect");
    assert_eq!(trust, Trust::Insecure);
    assert_eq!(round_trip(stream, b"x"), b"x");
    peer.finish();
}

#[test]
fn a_tls_client_against_a_plain_server_fails_the_handshake_with_a_hint() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let plain = thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        // What a plain chat server might answer: not TLS.
        let _ = sock.write_all(b"\x00\x00\x00\x05hello");
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf);
    });
    let err = tls::connect(
        &addr.to_string(),
        &ClientTls::Tls(Verify::Insecure),
        TIMEOUT,
    )
    .expect_err("not TLS");
    assert!(matches!(err, TlsError::Handshake { .. }), "{err:?}");
    assert!(err.to_string().contains("--no-tls"), "{err}");
    plain.join().expect("plain thread");
}

#[test]
fn the_split_halves_carry_10_mb_each_way_from_two_threads_at_once() {
    let id = Identity::self_signed();
    let peer = Peer::echo(&id, 1);
    let (stream, _) =
        tls::connect(&peer.server(), &ClientTls::Tls(Verify::Insecure), TIMEOUT).expect("connect");
    let (mut read, mut write) = stream.split();
    const TOTAL: usize = 10 * 1024 * 1024;
    let pattern = |i: usize| (i % 251) as u8;
    let writer = thread::spawn(move || {
        let chunk: Vec<u8> = (0..TOTAL).map(pattern).collect();
        // Uneven pieces, to cross record boundaries anywhere.
        let mut at = 0;
        let mut size = 1;
        while at < TOTAL {
            let end = (at + size).min(TOTAL);
            write.write_all(&chunk[at..end]).expect("write");
            at = end;
            size = size * 3 % 70_001 + 1;
        }
        write
    });
    read.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut got = 0;
    let mut buf = vec![0u8; 50_000];
    while got < TOTAL {
        let n = read.read(&mut buf).expect("read");
        assert!(n > 0, "the stream ended after {got} bytes");
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(got + k), "byte {}", got + k);
        }
        got += n;
    }
    let write = writer.join().expect("writer thread");
    write.shutdown().expect("shutdown");
    let seen = peer.finish();
    assert_eq!(seen[0].plaintext, TOTAL);
}

#[test]
fn a_client_logs_in_and_chats_through_tls_trusting_on_first_use() {
    let dir = TempDir::new("client");
    let file = dir.0.join("known_servers");
    let server = common::start(common::test_config());
    let id = Identity::self_signed();
    let peer = Peer::spawn(&id, 2, Some(server.local_addr()));

    let alice = Client::connect_with(&peer.server(), "alice", &tofu(&file)).expect("alice");
    assert_eq!(alice.trust(), Trust::FirstUse(id.fingerprint()));
    alice.send_chat_ref("over tls", 7).expect("send");
    let mut echoed = false;
    while let Some(event) = alice.recv_timeout(TIMEOUT).expect("event") {
        if let Event::Message(ServerMessage::Chat(c)) = event
            && c.text == "over tls"
        {
            assert_eq!(c.reference, Some(7));
            echoed = true;
            break;
        }
    }
    assert!(echoed, "the chat came back through TLS");
    drop(alice);

    let bob = Client::connect_with(&peer.server(), "bob", &tofu(&file)).expect("bob");
    assert_eq!(bob.trust(), Trust::Known(id.fingerprint()));
    assert!(
        bob.welcome().history.iter().any(|c| c.text == "over tls"),
        "bob sees alice's line in the history"
    );
    drop(bob);
    peer.finish();
}

#[test]
fn known_servers_refuses_a_malformed_line_instead_of_guessing() {
    let dir = TempDir::new("malformed");
    let file = dir.0.join("known_servers");
    fs::write(&file, "good.example:1 not-a-fingerprint\n").expect("write");
    let known = KnownServers::at(file.clone());
    let err = known.get("other:2").expect_err("malformed");
    assert!(
        matches!(err, TlsError::KnownServersLine { line: 1, .. }),
        "{err:?}"
    );
    // A missing file is an empty one.
    let missing = KnownServers::at(dir.0.join("none"));
    assert_eq!(missing.get("a:1").expect("get"), None);
}

//! The `chat` program's TLS flags as a user meets them: a real embedded
//! server behind a TLS peer (rustls with an rcgen certificate, terminating
//! TLS and relaying to the plain server), the compiled `chat` binary as a
//! child process, a real known-servers file.
//!
//! `cargo test -p chat-examples` builds the examples first.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use chatcore::tls::{self, Fingerprint};
use chatcore::{RunningServer, Server};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Exit status of `chat` when the server's certificate is refused.
const EXIT_TLS: i32 = 4;

fn start_server() -> RunningServer {
    Server::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .voice_listen(None)
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server")
}

/// `.../debug/deps/tls_terminal_client-*` -> `.../debug/examples/chat`.
fn chat_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary in <target>/<profile>/deps");
    let path = dir
        .join("examples")
        .join(format!("chat{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo test -p chat-examples`",
        path.display()
    );
    path
}

/// Runs `chat` with `args` and no input (it logs in, then end of input
/// quits it), and returns what it did.
fn run_chat(args: &[&str]) -> Output {
    let mut child = Command::new(chat_binary())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CHAT_KNOWN_SERVERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat");
    // Bounded: a hung client is killed rather than hanging the test.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let watchdog = thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait for chat");
    let _ = tx.send(());
    watchdog.join().expect("watchdog");
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A self-signed certificate and its key.
struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    fn new() -> Self {
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        Self {
            cert: made.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()),
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert)
    }
}

/// A TLS front for a plain server: accepts `conns` connections one after
/// the other, completes the handshake and relays to `to`. Returns, per
/// connection, whether the handshake succeeded and the application bytes
/// received.
fn tls_front(
    id: &Identity,
    conns: usize,
    to: SocketAddr,
) -> (SocketAddr, JoinHandle<Vec<(bool, usize)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![id.cert.clone()],
                PrivateKeyDer::Pkcs8(id.key.clone_key()),
            )
            .expect("server certificate"),
    );
    let thread = thread::spawn(move || {
        (0..conns)
            .map(|_| {
                let (sock, _) = listener.accept().expect("accept");
                relay(sock, config.clone(), to)
            })
            .collect()
    });
    (addr, thread)
}

fn relay(mut sock: TcpStream, config: Arc<rustls::ServerConfig>, to: SocketAddr) -> (bool, usize) {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut conn = rustls::ServerConnection::new(config).expect("connection");
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) | Err(_) => return (false, 0),
            Ok(_) => {}
        }
    }
    let mut plain = TcpStream::connect(to).expect("connect to the server");
    sock.set_nonblocking(true).expect("nonblocking");
    plain.set_nonblocking(true).expect("nonblocking");
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0;
    'relay: loop {
        let mut idle = true;
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
                    received += n;
                    if write_fully(&mut plain, &buf[..n]).is_err() {
                        break 'relay;
                    }
                }
                Err(_) => break,
            }
        }
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
    (true, received)
}

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

/// A scratch directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("chat-examples-tls-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn chat_prints_the_fingerprint_it_remembers_on_first_use_and_refuses_a_changed_certificate() {
    let server = start_server();
    let dir = TempDir::new("tofu");
    let known = dir.0.join("known_servers");
    let known_arg = known.to_str().expect("utf-8 path");
    let id = Identity::new();
    let (front, thread) = tls_front(&id, 2, server.local_addr());
    let front = front.to_string();
    let fp = id.fingerprint().to_string();

    // First use: logs in, says which fingerprint it remembered, and where.
    let first = run_chat(&[
        "--server",
        &front,
        "--name",
        "alice",
        "--known-servers",
        known_arg,
    ]);
    let (out, err) = (text(&first.stdout), text(&first.stderr));
    assert!(first.status.success(), "{:?}\n{out}\n{err}", first.status);
    assert!(out.lines().any(|l| l == "* you are alice"), "{out}");
    assert!(
        err.contains("first connection") && err.contains(&fp) && err.contains(known_arg),
        "{err}"
    );
    let file = fs::read_to_string(&known).expect("known-servers file");
    assert!(file.lines().any(|l| l == format!("{front} {fp}")), "{file}");

    // Known: logs in without a word about the certificate.
    let second = run_chat(&[
        "--server",
        &front,
        "--name",
        "bob",
        "--known-servers",
        known_arg,
    ]);
    let (out, err) = (text(&second.stdout), text(&second.stderr));
    assert!(second.status.success(), "{:?}\n{out}\n{err}", second.status);
    assert!(out.lines().any(|l| l == "* you are bob"), "{out}");
    assert!(!err.contains("first connection"), "{err}");
    assert!(thread.join().expect("front").iter().all(|(ok, _)| *ok));

    // The same address now presents another certificate: refused, exit 4,
    // both fingerprints and the file named, nothing reaches the server.
    let other = Identity::new();
    let (front2, thread2) = tls_front(&other, 1, server.local_addr());
    let front2 = front2.to_string();
    // The file is keyed by what the user typed: remember the first
    // certificate for the new front's address.
    fs::write(&known, format!("# mine\n{front2} {fp}\n")).expect("write");
    let refused = run_chat(&[
        "--server",
        &front2,
        "--name",
        "carol",
        "--known-servers",
        known_arg,
    ]);
    let (out, err) = (text(&refused.stdout), text(&refused.stderr));
    assert_eq!(refused.status.code(), Some(EXIT_TLS), "{out}\n{err}");
    assert!(err.contains("CHANGED"), "{err}");
    assert!(err.contains(&fp), "{err}");
    assert!(err.contains(&other.fingerprint().to_string()), "{err}");
    assert!(err.contains(known_arg), "{err}");
    assert!(!out.contains("you are carol"), "{out}");
    let seen = thread2.join().expect("front");
    assert_eq!(
        seen,
        vec![(false, 0)],
        "the handshake failed before any byte"
    );
    assert_eq!(
        fs::read_to_string(&known).expect("read"),
        format!("# mine\n{front2} {fp}\n"),
        "the file is left for the user to decide"
    );
}

#[test]
fn chat_insecure_warns_and_no_tls_against_a_tls_port_fails_cleanly() {
    let server = start_server();
    let id = Identity::new();
    let (front, thread) = tls_front(&id, 2, server.local_addr());
    let front = front.to_string();

    let insecure = run_chat(&["--server", &front, "--name", "dave", "--insecure"]);
    let (out, err) = (text(&insecure.stdout), text(&insecure.stderr));
    assert!(insecure.status.success(), "{out}\n{err}");
    assert!(out.lines().any(|l| l == "* you are dave"), "{out}");
    assert!(err.contains("WARNING: --insecure"), "{err}");

    // A plain client on a TLS port: no login, a non-zero exit.
    let plain = run_chat(&["--server", &front, "--name", "erin", "--no-tls"]);
    let (out, err) = (text(&plain.stdout), text(&plain.stderr));
    assert!(!plain.status.success(), "{out}\n{err}");
    assert!(!out.contains("you are erin"), "{out}");
    let seen = thread.join().expect("front");
    assert!(seen[0].0);
    assert!(!seen[1].0, "garbage is no handshake");
}

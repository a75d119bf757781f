//! Test helpers: a server on 127.0.0.1:0 and a raw frame-level client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chatcore::protocol::transfer::{FileChunk, FileKind, FileOffer, MAX_CHUNK};
use chatcore::protocol::{
    Chat, ChatSend, ClientMessage, DecodeError, ErrorCode, Hello, LeaveReason, Seq, ServerMessage,
    Welcome, decode_server, encode_client,
};
use chatcore::{RunningServer, Server, ServerConfig};
use sha2::{Digest, Sha256};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A config for tests: ephemeral port, no voice port.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        voice_listen: None,
        ..ServerConfig::default()
    }
}

/// Starts a server with `config` on its own thread.
pub fn start(config: ServerConfig) -> RunningServer {
    Server::bind(config).expect("bind").spawn().expect("spawn")
}

/// A client speaking raw frames, for tests that need full control.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Wraps a stream already connected (and possibly part-read).
    pub fn from_stream(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Connects from the local address `from` (e.g. another loopback
    /// address, to be counted as another client by the per-address caps).
    pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Self {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket.bind(&SocketAddr::new(from, 0).into()).expect("bind");
        socket.connect(&addr.into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Connects and logs in; returns the client and its welcome.
    pub fn login(addr: SocketAddr, name: &str) -> (Self, Welcome) {
        let mut c = Self::connect(addr);
        c.hello(name);
        match c.next() {
            Some(ServerMessage::Welcome(w)) => (c, w),
            other => panic!("expected welcome for {name}, got {other:?}"),
        }
    }

    pub fn send(&mut self, msg: &ClientMessage) {
        self.stream.write_all(&encode_client(msg)).expect("send");
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send bytes");
    }

    pub fn hello(&mut self, name: &str) {
        self.send(&ClientMessage::Hello(Hello {
            password: None,
            token: None,
            version: chatcore::protocol::PROTOCOL_VERSION,
            name: name.into(),
            last_seen: None,
        }));
    }

    pub fn chat(&mut self, text: &str) {
        self.send(&ClientMessage::Chat(ChatSend {
            room: None,
            text: text.into(),
            reference: None,
        }));
    }

    pub fn chat_ref(&mut self, text: &str, reference: u64) {
        self.send(&ClientMessage::Chat(ChatSend {
            room: None,
            text: text.into(),
            reference: Some(reference),
        }));
    }

    pub fn ping(&mut self, seq: u64) {
        self.send(&ClientMessage::Ping(Seq { seq }));
    }

    /// The next message within `WAIT`, answering server pings; `None` when
    /// the server closed the connection.
    pub fn next(&mut self) -> Option<ServerMessage> {
        self.next_within(WAIT)
    }

    /// Like `next` with a custom wait; panics on timeout.
    pub fn next_within(&mut self, wait: Duration) -> Option<ServerMessage> {
        self.try_next(wait)
            .unwrap_or_else(|| panic!("no message within {wait:?}"))
    }

    /// The next message, `Some(None)` if closed, `None` on timeout.
    pub fn try_next(&mut self, wait: Duration) -> Option<Option<ServerMessage>> {
        let deadline = Instant::now() + wait;
        loop {
            match decode_server(&mut self.buf, u32::MAX) {
                Ok(Some(ServerMessage::Ping(seq))) => {
                    self.send(&ClientMessage::Pong(seq));
                    continue;
                }
                Ok(Some(msg)) => return Some(Some(msg)),
                Ok(None) => {}
                Err(DecodeError::Message(e)) => panic!("server sent a bad message: {e}"),
                Err(DecodeError::Frame(e)) => panic!("server sent a bad frame: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Some(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(None),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Skips messages until one matches `pred`; returns it.
    pub fn until(&mut self, mut pred: impl FnMut(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            match self.next() {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => panic!("connection closed while waiting"),
            }
        }
    }

    /// Waits until the room announces that `session` left, as a `left` or
    /// inside a `presence` batch; returns the reason.
    pub fn until_left(&mut self, session: u64) -> LeaveReason {
        loop {
            match self.next() {
                Some(ServerMessage::Left(l)) if l.session == session => return l.reason,
                Some(ServerMessage::Presence(p)) => {
                    if let Some(d) = p.left.iter().find(|d| d.session == session) {
                        return d.reason;
                    }
                }
                Some(_) => {}
                None => panic!("connection closed while waiting for {session} to leave"),
            }
        }
    }

    /// Skips messages until the next chat; returns it.
    pub fn next_chat(&mut self) -> Chat {
        match self.until(|m| matches!(m, ServerMessage::Chat(_))) {
            ServerMessage::Chat(c) => c,
            _ => unreachable!(),
        }
    }

    /// Waits for an error frame and returns its code.
    pub fn expect_error(&mut self) -> ErrorCode {
        match self.until(|m| matches!(m, ServerMessage::Error(_))) {
            ServerMessage::Error(e) => e.code,
            _ => unreachable!(),
        }
    }

    /// Reads until the server closes the connection; returns what came.
    pub fn until_closed(&mut self) -> Vec<ServerMessage> {
        let mut got = Vec::new();
        while let Some(m) = self.next() {
            got.push(m);
        }
        got
    }

    /// Whether the connection is still open: a ping gets its pong.
    pub fn is_alive(&mut self, seq: u64) -> bool {
        if self
            .stream
            .write_all(&encode_client(&ClientMessage::Ping(Seq { seq })))
            .is_err()
        {
            return false;
        }
        loop {
            match self.try_next(WAIT) {
                Some(Some(ServerMessage::Pong(s))) if s.seq == seq => return true,
                Some(Some(_)) => {}
                _ => return false,
            }
        }
    }
}

/// Encodes a raw MessagePack value (anything serde) as one frame.
pub fn frame_of<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let body = rmp_serde::to_vec_named(value).expect("encode");
    frame_of_body(&body)
}

/// MessagePack str of `s` (short strings only), for hand-built bodies.
pub fn fixstr(s: &str) -> Vec<u8> {
    let mut v = vec![0xa0 | u8::try_from(s.len()).expect("short")];
    v.extend_from_slice(s.as_bytes());
    v
}

/// MessagePack bin 8 of `b`, where a test needs a bin (not a str).
pub fn bin8(b: &[u8]) -> Vec<u8> {
    let mut v = vec![0xc4, u8::try_from(b.len()).expect("short")];
    v.extend_from_slice(b);
    v
}

/// A map body from str keys and raw MessagePack values, in this order.
pub fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![0x80 | u8::try_from(entries.len()).expect("few")];
    for (k, v) in entries {
        body.extend_from_slice(&fixstr(k));
        body.extend_from_slice(v);
    }
    body
}

/// Puts a length prefix in front of `body`.
pub fn frame_of_body(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A fresh spool directory for one test (unique per process and thread).
pub fn spool(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatcore-test-spool-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The test config with file sharing on `dir` and a rate limit high enough
/// that file messages are never throttled.
pub fn spool_config(dir: &Path) -> ServerConfig {
    ServerConfig {
        spool_dir: Some(dir.to_path_buf()),
        rate_per_sec: 1000.0,
        rate_burst: 1000.0,
        ..test_config()
    }
}

/// Every spool file under `dir`, at any depth (the server keeps them in a
/// run directory of its own inside it).
pub fn spool_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "chatspool") {
                found.push(path);
            }
        }
    }
    found
}

/// A `file_offer` of `data` declaring `size` (which may lie about it).
pub fn offer_msg(name: &str, data: &[u8], size: u64, reference: u64) -> ClientMessage {
    ClientMessage::FileOffer(FileOffer {
        room: None,
        to: None,
        name: name.into(),
        size,
        sha256: Sha256::digest(data).to_vec(),
        kind: FileKind::File,
        reference: Some(reference),
    })
}

/// Sends a truthful `file_offer` of `data`.
pub fn offer(c: &mut Raw, name: &str, data: &[u8], reference: u64) {
    c.send(&offer_msg(name, data, data.len() as u64, reference));
}

/// Offers `data` and answers with the `file_upload` id or the error code.
pub fn try_offer(c: &mut Raw, name: &str, data: &[u8], reference: u64) -> Result<u64, ErrorCode> {
    offer(c, name, data, reference);
    match c.until(|m| {
        matches!(m, ServerMessage::FileUpload(u) if u.reference == Some(reference))
            || matches!(m, ServerMessage::Error(e) if e.reference == Some(reference))
    }) {
        ServerMessage::FileUpload(u) => Ok(u.transfer),
        ServerMessage::Error(e) => Err(e.code),
        _ => unreachable!(),
    }
}

/// Sends all of `data` for upload `id` in chunks of at most `MAX_CHUNK`.
pub fn send_chunks(c: &mut Raw, id: u64, data: &[u8]) {
    for (i, piece) in data.chunks(MAX_CHUNK as usize).enumerate() {
        c.send(&ClientMessage::FileChunk(FileChunk {
            transfer: id,
            offset: (i * MAX_CHUNK as usize) as u64,
            data: piece.to_vec(),
        }));
    }
}

/// Uploads `data` completely; returns its transfer id once it is on offer.
pub fn share(c: &mut Raw, name: &str, data: &[u8], reference: u64) -> u64 {
    let id = try_offer(c, name, data, reference).expect("offer accepted");
    send_chunks(c, id, data);
    c.until(|m| matches!(m, ServerMessage::FileReady(t) if t.transfer == id));
    id
}

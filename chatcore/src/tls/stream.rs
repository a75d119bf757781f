//! A connected chat stream, plain TCP or TLS, that splits into a reading
//! half and a writing half usable from two threads at once (the client's
//! reader thread and its writers).
//!
//! TLS state is shared: `conn` (the rustls connection) is locked only
//! while bytes are encrypted or decrypted, never while the socket blocks.
//! The reader reads raw bytes from the socket without any lock, then locks
//! `conn` to decrypt them. A writer holds `write_lock` from encrypting to
//! writing the records to the socket, so records leave in the order they
//! were made, and a writer blocked on a full socket never blocks the
//! reader. What the reader makes itself (alerts, key updates) is written
//! under `write_lock` too.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustls::ClientConnection;

/// Raw bytes read from the socket at a time (TLS records are at most ~16 KiB).
const RAW_CHUNK: usize = 64 * 1024;
/// How long a shutdown waits to write its `close_notify` alert.
const CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_secs(1);

/// What both halves of a TLS stream share.
struct Shared {
    /// The rustls state: locked only to encrypt or decrypt.
    conn: Mutex<ClientConnection>,
    /// Held from encrypting to writing the records out, so that records
    /// reach the socket in the order rustls made them.
    write_lock: Mutex<()>,
    /// The socket; `&TcpStream` reads and writes without `&mut`.
    sock: TcpStream,
}

impl Shared {
    fn conn(&self) -> MutexGuard<'_, ClientConnection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes whatever TLS output rustls has queued (alerts, key updates).
    fn flush_pending(&self) -> io::Result<()> {
        let _order = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        {
            let mut conn = self.conn();
            while conn.wants_write() {
                conn.write_tls(&mut out)?;
            }
        }
        (&self.sock).write_all(&out)
    }

    /// Sends `close_notify` if no writer is busy (waiting at most a second
    /// for the socket), then shuts the socket down, which ends a blocked
    /// read or write.
    fn shutdown(&self) -> io::Result<()> {
        if let Ok(_order) = self.write_lock.try_lock() {
            let mut out = Vec::new();
            {
                let mut conn = self.conn();
                conn.send_close_notify();
                while conn.wants_write() {
                    if conn.write_tls(&mut out).is_err() {
                        break;
                    }
                }
            }
            let _ = self.sock.set_write_timeout(Some(CLOSE_NOTIFY_TIMEOUT));
            let _ = (&self.sock).write_all(&out);
        }
        self.sock.shutdown(Shutdown::Both)
    }
}

/// The socket behind a half.
#[derive(Clone)]
enum Inner {
    /// Plain TCP.
    Plain(Arc<TcpStream>),
    /// TLS over TCP.
    Tls(Arc<Shared>),
}

impl Inner {
    fn sock(&self) -> &TcpStream {
        match self {
            Inner::Plain(s) => s,
            Inner::Tls(t) => &t.sock,
        }
    }

    fn shutdown(&self) -> io::Result<()> {
        match self {
            Inner::Plain(s) => s.shutdown(Shutdown::Both),
            Inner::Tls(t) => t.shutdown(),
        }
    }
}

/// A connected stream to a chat server, plain or TLS (see
/// [`super::connect`]). It reads and writes as is, or splits into halves
/// for two threads.
pub struct ChatStream {
    /// The reading side (with its decrypted-bytes buffer).
    read: ReadHalf,
    /// The writing side.
    write: WriteHalf,
}

impl ChatStream {
    /// A plain TCP stream.
    pub fn plain(sock: TcpStream) -> Self {
        Self::new(Inner::Plain(Arc::new(sock)))
    }

    /// A TLS stream whose handshake is complete.
    pub(crate) fn tls(conn: ClientConnection, sock: TcpStream) -> Self {
        Self::new(Inner::Tls(Arc::new(Shared {
            conn: Mutex::new(conn),
            write_lock: Mutex::new(()),
            sock,
        })))
    }

    fn new(inner: Inner) -> Self {
        Self {
            read: ReadHalf {
                inner: inner.clone(),
                raw: Vec::new(),
                plain: Vec::new(),
                pos: 0,
                eof: false,
            },
            write: WriteHalf {
                inner,
                out: Vec::new(),
            },
        }
    }

    /// Splits into the reading and the writing half.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }

    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.read.inner, Inner::Tls(_))
    }

    /// The server's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.read.inner.sock().peer_addr()
    }

    /// A handle that shuts the stream down from anywhere (ends a read or
    /// write blocked in another thread).
    pub fn closer(&self) -> Closer {
        self.read.closer()
    }

    /// Bounds how long a read waits (`None`: forever); see
    /// [`ReadHalf::set_read_timeout`].
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read.set_read_timeout(timeout)
    }

    /// Sends `close_notify` (TLS) and shuts the socket down.
    pub fn shutdown(&self) -> io::Result<()> {
        self.read.inner.shutdown()
    }
}

impl From<TcpStream> for ChatStream {
    fn from(sock: TcpStream) -> Self {
        Self::plain(sock)
    }
}

impl Read for ChatStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

impl Write for ChatStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write.flush()
    }
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("tls", &self.is_tls())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

/// The reading half of a [`ChatStream`].
pub struct ReadHalf {
    /// The socket (and the TLS state shared with the writing half).
    inner: Inner,
    /// Raw bytes from the socket (TLS only; allocated on first read).
    raw: Vec<u8>,
    /// Decrypted bytes not yet handed to the caller (TLS only).
    plain: Vec<u8>,
    /// How much of `plain` the caller has taken.
    pos: usize,
    /// The server closed its side (TLS only): reads return 0.
    eof: bool,
}

impl ReadHalf {
    /// Bounds how long a read waits (`None`: forever). A read that times out
    /// fails with `WouldBlock` or `TimedOut` and loses nothing.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.sock().set_read_timeout(timeout)
    }

    /// Sends `close_notify` (TLS, unless a writer is busy) and shuts the
    /// socket down.
    pub fn shutdown(&self) -> io::Result<()> {
        self.inner.shutdown()
    }

    /// A handle that shuts the stream down from anywhere.
    pub fn closer(&self) -> Closer {
        Closer {
            inner: self.inner.clone(),
        }
    }

    /// Reads and decrypts until some plaintext (or the end) is there.
    fn read_tls(&mut self, shared: &Shared, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.pos);
                buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.eof {
                return Ok(0);
            }
            if self.raw.len() != RAW_CHUNK {
                self.raw = vec![0; RAW_CHUNK];
            }
            // No lock held while the socket blocks: writers go on.
            let n = match (&shared.sock).read(&mut self.raw) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.plain.clear();
            self.pos = 0;
            let (result, wants_write) = {
                let mut conn = shared.conn();
                let result = self.decrypt(&mut conn, n);
                (result, conn.wants_write())
            };
            if wants_write {
                // An alert after an error, or an answer to a key update.
                let flushed = shared.flush_pending();
                result?;
                flushed?;
            } else {
                result?;
            }
        }
    }

    /// Feeds `n` raw bytes (0: the end of the stream) to rustls and moves
    /// the plaintext into `self.plain`.
    fn decrypt(&mut self, conn: &mut ClientConnection, n: usize) -> io::Result<()> {
        let mut slice = &self.raw[..n];
        loop {
            // Reading from an empty slice tells rustls the stream ended.
            conn.read_tls(&mut slice)?;
            conn.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, TlsStreamError(e)))?;
            match conn.reader().read_to_end(&mut self.plain) {
                // A close_notify: the server ended the session cleanly.
                Ok(_) => self.eof = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without close_notify: for a framed chat
                // protocol that is an ordinary close (truncation shows as an
                // incomplete frame).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.eof = true,
                Err(e) => return Err(e),
            }
            if slice.is_empty() || self.eof {
                return Ok(());
            }
        }
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &self.inner {
            Inner::Plain(s) => (&**s).read(buf),
            Inner::Tls(t) => {
                let t = t.clone();
                self.read_tls(&t, buf)
            }
        }
    }
}

impl fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf")
            .field("tls", &matches!(self.inner, Inner::Tls(_)))
            .field("buffered", &(self.plain.len() - self.pos))
            .finish()
    }
}

/// The writing half of a [`ChatStream`].
pub struct WriteHalf {
    /// The socket (and the TLS state shared with the reading half).
    inner: Inner,
    /// Encrypted records waiting to be written (TLS; reused between writes).
    out: Vec<u8>,
}

impl WriteHalf {
    /// Sends `close_notify` (TLS) and shuts the socket down.
    pub fn shutdown(&self) -> io::Result<()> {
        self.inner.shutdown()
    }

    /// A handle that shuts the stream down from anywhere.
    pub fn closer(&self) -> Closer {
        Closer {
            inner: self.inner.clone(),
        }
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.inner {
            Inner::Plain(s) => (&**s).write(buf),
            Inner::Tls(t) => {
                let _order = t.write_lock.lock().unwrap_or_else(PoisonError::into_inner);
                self.out.clear();
                let n = {
                    let mut conn = t.conn();
                    let n = conn.writer().write(buf)?;
                    while conn.wants_write() {
                        conn.write_tls(&mut self.out)?;
                    }
                    n
                };
                // The records leave with `conn` unlocked: the reader goes on.
                (&t.sock).write_all(&self.out)?;
                if self.out.capacity() > 4 * RAW_CHUNK {
                    self.out = Vec::new();
                }
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write hands its records to the socket before returning.
        match &self.inner {
            Inner::Plain(s) => (&**s).flush(),
            Inner::Tls(_) => Ok(()),
        }
    }
}

impl fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf")
            .field("tls", &matches!(self.inner, Inner::Tls(_)))
            .finish()
    }
}

/// Shuts a [`ChatStream`] down from any thread (the client's `Drop` uses it
/// to end its reader thread).
#[derive(Clone)]
pub struct Closer {
    /// The socket (and TLS state) to shut down.
    inner: Inner,
}

impl Closer {
    /// Sends `close_notify` (TLS, unless a writer is busy) and shuts the
    /// socket down: blocked reads and writes on it return.
    pub fn shutdown(&self) -> io::Result<()> {
        self.inner.shutdown()
    }
}

impl fmt::Debug for Closer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closer").finish()
    }
}

/// A rustls error inside an `io::Error`, with a message that says it came
/// from TLS.
#[derive(Debug)]
struct TlsStreamError(rustls::Error);

impl fmt::Display for TlsStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS error on the connection to the server: {}", self.0)
    }
}

impl std::error::Error for TlsStreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

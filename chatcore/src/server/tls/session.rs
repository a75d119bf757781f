//! One connection's TLS, driven by the loop without ever blocking (the
//! rustls mio example is the model): bytes read from the socket go into
//! rustls, are processed, and the plaintext is handed to the connection's
//! framing; output is moved into rustls with one vectored write (rustls
//! packs it into full records, so a turn's output costs a few records, not
//! one per frame), then written with `write_tls` until the socket is full.

use std::io::{self, BufRead, IoSlice, Read, Write};

use mio::net::TcpStream;
use rustls::ServerConnection;

/// Plaintext (and unsent TLS records) rustls may hold for one connection:
/// on top of the connection's own output queue, which the slow-reader cap
/// (`max_output_bytes`) checks, so a client that does not read holds at
/// most this much more.
pub(crate) const TLS_BUFFER_LIMIT: usize = 128 * 1024;

/// A connection's TLS state.
#[derive(Debug)]
pub(crate) struct TlsSession {
    /// The rustls state machine.
    pub conn: ServerConnection,
    /// The handshake completed (counted once in `tls_handshakes`).
    pub established: bool,
    /// A fatal TLS error happened: no `close_notify` after the alert.
    pub failed: bool,
}

/// What one [`TlsSession::read_from`] call found.
#[derive(Debug)]
pub(crate) enum TlsRead {
    /// `wire` bytes came off the socket (their plaintext, possibly none
    /// for a handshake message, went to the sink).
    Data {
        /// Bytes read from the socket.
        wire: usize,
    },
    /// The socket has nothing more now.
    WouldBlock,
    /// The peer closed (with or without `close_notify`).
    Eof,
    /// The socket failed.
    Io(io::Error),
    /// The peer broke the TLS protocol (what rustls said); rustls queued
    /// the alert to send.
    Tls(String),
}

impl TlsSession {
    /// A session for a connection just accepted.
    pub fn new(mut conn: ServerConnection) -> Self {
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Self {
            conn,
            established: false,
            failed: false,
        }
    }

    /// Reads once from `stream` (at most `wire.len()` bytes), feeds rustls,
    /// and hands every plaintext byte to `sink`. One socket read of a large
    /// buffer, not rustls' own 4 KiB reads: a file upload costs the same
    /// number of syscalls as over plain TCP.
    pub fn read_from(
        &mut self,
        stream: &mut TcpStream,
        wire: &mut [u8],
        mut sink: impl FnMut(&[u8]),
    ) -> TlsRead {
        let n = match stream.read(wire) {
            Ok(0) => return self.finish_eof(&mut sink),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return TlsRead::WouldBlock,
            Err(e) => return TlsRead::Io(e),
        };
        let mut fed = &wire[..n];
        while !fed.is_empty() {
            let full = match self.conn.read_tls(&mut fed) {
                Ok(0) => break,
                Ok(_) => false,
                // The plaintext buffer is full: drain it below, then feed on.
                Err(e) if e.kind() == io::ErrorKind::Other => true,
                // A handshake message larger than rustls allows.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.failed = true;
                    return TlsRead::Tls(e.to_string());
                }
                Err(e) => return TlsRead::Io(e),
            };
            if let Err(e) = self.conn.process_new_packets() {
                self.failed = true;
                return TlsRead::Tls(e.to_string());
            }
            let got = self.drain(&mut sink);
            if full && got == 0 {
                // No progress possible (cannot happen while we drain).
                return TlsRead::Io(io::Error::other("TLS plaintext buffer stuck"));
            }
        }
        TlsRead::Data { wire: n }
    }

    /// The peer closed its side: whatever plaintext is left goes to `sink`.
    fn finish_eof(&mut self, sink: &mut impl FnMut(&[u8])) -> TlsRead {
        let _ = self.drain(sink);
        TlsRead::Eof
    }

    /// Moves every decrypted byte to `sink`; returns how many.
    fn drain(&mut self, sink: &mut impl FnMut(&[u8])) -> usize {
        let mut total = 0;
        let mut reader = self.conn.reader();
        loop {
            let chunk = match reader.fill_buf() {
                Ok(chunk) if !chunk.is_empty() => chunk,
                // Empty (close_notify), WouldBlock, or UnexpectedEof.
                _ => return total,
            };
            let n = chunk.len();
            sink(chunk);
            reader.consume(n);
            total += n;
        }
    }

    /// Writes pending TLS records until the socket is full or none are left.
    pub fn flush(&mut self, stream: &mut TcpStream) -> io::Result<usize> {
        let mut written = 0;
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// A writer that takes plaintext into rustls and pushes the records to
    /// `stream`, for `OutQueue::write_to`.
    pub fn writer<'a>(&'a mut self, stream: &'a mut TcpStream) -> TlsWriter<'a> {
        TlsWriter {
            session: self,
            stream,
        }
    }

    /// Ends a healthy session with `close_notify` (best effort, one write).
    pub fn close(&mut self, stream: &mut TcpStream) {
        if self.established && !self.failed {
            self.conn.send_close_notify();
        }
        let _ = self.flush(stream);
    }
}

/// See [`TlsSession::writer`]. `WouldBlock` means rustls' buffer is at its
/// limit and the socket took no more of it.
pub(crate) struct TlsWriter<'a> {
    session: &'a mut TlsSession,
    stream: &'a mut TcpStream,
}

impl Write for TlsWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.session.flush(self.stream)?;
        let n = self.session.conn.writer().write_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.session.flush(self.stream)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.session.flush(self.stream).map(|_| ())
    }
}

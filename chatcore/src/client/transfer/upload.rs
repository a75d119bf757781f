//! One upload's thread: reads the file and sends it chunk by chunk through
//! the shared writer, so chat messages and pongs go out between chunks.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;

use super::{Failure, Transfers};
use crate::client::{ClientSender, Event};
use crate::protocol::ClientMessage;
use crate::protocol::transfer::FileChunk;

/// What an upload thread needs.
pub(crate) struct Uploader {
    /// Where to report that the upload gave up.
    pub(crate) transfers: Arc<Transfers>,
    /// The shared writer the chunks go through.
    pub(crate) sender: ClientSender,
    /// The event channel, for the failure.
    pub(crate) tx: SyncSender<Event>,
    /// The transfer id of every chunk.
    pub(crate) transfer: u64,
    /// The file, at its start.
    pub(crate) file: File,
    /// Bytes to send (the size hashed and offered).
    pub(crate) size: u64,
    /// Largest chunk.
    pub(crate) chunk: usize,
    /// Set when the upload is to stop (cancelled, failed, connection closed).
    pub(crate) stop: Arc<AtomicBool>,
}

impl Uploader {
    /// Sends the file, unless told to stop; a file that cannot be read to
    /// its offered size fails the upload.
    pub(crate) fn run(mut self) {
        let mut buf = vec![0u8; self.chunk];
        let mut offset = 0u64;
        while offset < self.size {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let want = (self.size - offset).min(self.chunk as u64) as usize;
            buf.resize(want, 0);
            if let Err(e) = self.file.read_exact(&mut buf) {
                let reason = if e.kind() == io::ErrorKind::UnexpectedEof {
                    Failure::Shrunk
                } else {
                    Failure::Read(e)
                };
                let transfers = Arc::clone(&self.transfers);
                return transfers.upload_failed(self.transfer, reason, &self.sender, &self.tx);
            }
            let msg = ClientMessage::FileChunk(FileChunk {
                transfer: self.transfer,
                offset,
                data: std::mem::take(&mut buf),
            });
            if self.sender.send(&msg).is_err() {
                // The connection is gone; the reader reports it.
                return;
            }
            if let ClientMessage::FileChunk(chunk) = msg {
                buf = chunk.data;
            }
            offset += want as u64;
            // Let a chat message waiting for the writer go first.
            std::thread::yield_now();
        }
    }
}

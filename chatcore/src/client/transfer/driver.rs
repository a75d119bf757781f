//! [`Transfers`]: the state machine behind a lock, the files and threads it
//! speaks of, and the code that carries out its [`Action`]s.
//!
//! The sender's calls, the reader thread and the upload threads all reach
//! the machine through here. Locks: `machine` and `io` are never held
//! together except in [`Transfers::start_download`], which takes `io` then
//! `machine`; nothing takes them in the other order.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Failure;
use super::download::DownloadFile;
use super::state::{Action, Machine};
use super::upload::Uploader;
use crate::client::{ClientError, ClientSender, Event};
use crate::protocol::ServerMessage;

/// The files and threads of the transfers: what the machine must not touch.
#[derive(Debug, Default)]
struct Io {
    /// Our offers' files, opened and hashed, by `ref`, until uploaded.
    offers: HashMap<u64, File>,
    /// Our downloads' `.part` files, by transfer.
    downloads: HashMap<u64, DownloadFile>,
    /// Our upload threads' stop flags, by transfer.
    uploads: HashMap<u64, Arc<AtomicBool>>,
}

/// The transfer state shared by the senders, the reader and the uploaders.
#[derive(Debug)]
pub(crate) struct Transfers {
    /// What the client knows; decides everything.
    machine: Mutex<Machine>,
    /// The files and upload threads the machine's actions name.
    io: Mutex<Io>,
    /// Whether uploader threads may still send events: the reader closes
    /// it before it sends `Closed`, so `Closed` stays the last event.
    gate: Mutex<bool>,
}

impl Transfers {
    /// The state of a client whose server accepts frames of `max_frame` bytes.
    pub(crate) fn new(max_frame: u32) -> Self {
        Self {
            machine: Mutex::new(Machine::new(max_frame)),
            io: Mutex::default(),
            gate: Mutex::new(true),
        }
    }

    /// The machine, locked.
    pub(crate) fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn io(&self) -> MutexGuard<'_, Io> {
        self.io.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Handles a server message in the reader thread (one that
    /// `super::concerns`). Returns the events to deliver.
    pub(crate) fn on_message(
        self: &Arc<Self>,
        msg: ServerMessage,
        sender: &ClientSender,
        tx: &SyncSender<Event>,
    ) -> Vec<Event> {
        let actions = self.machine().on_message(msg);
        let mut out = Vec::new();
        self.apply(actions, sender, tx, &mut out);
        out
    }

    /// Called by the reader once, before `Closed`: stops the uploads, closes
    /// the downloads (keeping their parts) and closes the event gate.
    pub(crate) fn close(
        self: &Arc<Self>,
        sender: &ClientSender,
        tx: &SyncSender<Event>,
    ) -> Vec<Event> {
        let actions = self.machine().close();
        let mut out = Vec::new();
        self.apply(actions, sender, tx, &mut out);
        *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = false;
        out
    }

    /// An upload thread gave up: tells the machine, and sends what follows
    /// from a thread other than the reader.
    pub(crate) fn upload_failed(
        self: &Arc<Self>,
        transfer: u64,
        reason: Failure,
        sender: &ClientSender,
        tx: &SyncSender<Event>,
    ) {
        let actions = self.machine().upload_failed(transfer, reason);
        let mut out = Vec::new();
        self.apply(actions, sender, tx, &mut out);
        let open = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        if *open {
            for event in out {
                let _ = tx.send(event);
            }
        }
    }

    /// Carries out `actions` in order; events go to `out` (those before a
    /// `StartUpload` are sent to `tx` at once, see there).
    fn apply(
        self: &Arc<Self>,
        actions: Vec<Action>,
        sender: &ClientSender,
        tx: &SyncSender<Event>,
        out: &mut Vec<Event>,
    ) {
        for action in actions {
            match action {
                // A failed write: the reader reports the connection's end.
                Action::Send(msg) => {
                    let _ = sender.send(&msg);
                }
                Action::Report(event) => out.push(Event::Transfer(event)),
                Action::PassOn(msg) => out.push(Event::Message(msg)),
                Action::StartUpload {
                    reference,
                    transfer,
                    size,
                    chunk,
                } => {
                    // The events so far (this upload's `UploadStarted`) go
                    // out before its thread exists: a thread that fails at
                    // once (the file shrank) sends `Failed` itself, and it
                    // must not overtake them.
                    for event in out.drain(..) {
                        let _ = tx.send(event);
                    }
                    let file = self.io().offers.remove(&reference);
                    let started = match file {
                        Some(file) => self.spawn_upload(transfer, file, size, chunk, sender, tx),
                        None => Err(io::Error::other("the offered file is not open")),
                    };
                    if let Err(e) = started {
                        let more = self.machine().upload_failed(transfer, Failure::NoThread(e));
                        self.apply(more, sender, tx, out);
                    }
                }
                Action::StopUpload(transfer) => {
                    let stop = self.io().uploads.remove(&transfer);
                    if let Some(stop) = stop {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                Action::DropOffer(reference) => {
                    let file = self.io().offers.remove(&reference);
                    drop(file);
                }
                Action::Write { transfer, data } => {
                    let written = {
                        let mut io = self.io();
                        match io.downloads.get_mut(&transfer) {
                            Some(file) => file.write(&data),
                            None => Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                "the download's file is not open",
                            )),
                        }
                    };
                    let more = match written {
                        Ok(()) => self.machine().written(transfer, data.len()),
                        Err(e) => self.machine().write_failed(transfer, e),
                    };
                    self.apply(more, sender, tx, out);
                }
                Action::Finish(transfer) => {
                    let file = self.io().downloads.remove(&transfer);
                    let outcome = match file {
                        Some(file) => file.finish(),
                        None => Err((Failure::NotOpen, None)),
                    };
                    let more = self.machine().finished(transfer, outcome);
                    self.apply(more, sender, tx, out);
                }
                Action::KeepPart(transfer) => {
                    let file = self.io().downloads.remove(&transfer);
                    if let Some(file) = file {
                        file.keep();
                    }
                }
                Action::DiscardPart(transfer) => {
                    let file = self.io().downloads.remove(&transfer);
                    if let Some(file) = file {
                        file.discard();
                    }
                }
            }
        }
    }

    /// Starts the thread sending `file` as `transfer`.
    fn spawn_upload(
        self: &Arc<Self>,
        transfer: u64,
        file: File,
        size: u64,
        chunk: usize,
        sender: &ClientSender,
        tx: &SyncSender<Event>,
    ) -> io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        self.io().uploads.insert(transfer, Arc::clone(&stop));
        let job = Uploader {
            transfers: Arc::clone(self),
            sender: sender.clone(),
            tx: tx.clone(),
            transfer,
            file,
            size,
            chunk,
            stop,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("chatcore-upload-{transfer}"))
            .spawn(move || job.run());
        if let Err(e) = spawned {
            self.io().uploads.remove(&transfer);
            return Err(e);
        }
        Ok(())
    }

    // ---- for the sender's calls ------------------------------------------

    /// Records an offer of `file` (`size` bytes, hashed) named `name` about
    /// to be sent; returns its `ref`.
    pub(crate) fn offer(&self, name: String, size: u64, file: File) -> Result<u64, ClientError> {
        let reference = self.machine().offer(name, size)?;
        self.io().offers.insert(reference, file);
        Ok(reference)
    }

    /// The offer `reference` could not be sent.
    pub(crate) fn offer_not_sent(&self, reference: u64) {
        self.machine().offer_not_sent(reference);
        self.io().offers.remove(&reference);
    }

    /// Registers the download of `transfer` into `file` (`have` of `size`
    /// bytes already there) and sends its `file_accept`, now or when its
    /// turn comes.
    pub(crate) fn start_download(
        &self,
        transfer: u64,
        file: DownloadFile,
        size: u64,
        have: u64,
        sender: &ClientSender,
    ) -> Result<(), ClientError> {
        let accept = {
            // `io` first: the file is in place before any data can arrive.
            let mut io = self.io();
            let part = file.part().to_owned();
            let accept = self.machine().start_download(transfer, part, size, have)?;
            io.downloads.insert(transfer, file);
            accept
        };
        let Some(accept) = accept else {
            return Ok(());
        };
        let sent = sender.send(&crate::protocol::ClientMessage::FileAccept(accept));
        if let Err(e) = sent {
            self.machine().accept_not_sent(transfer);
            let file = self.io().downloads.remove(&transfer);
            drop(file);
            return Err(e);
        }
        Ok(())
    }

    /// Cancels `transfer` (see [`Machine::cancel`]).
    pub(crate) fn cancel(&self, transfer: u64, sender: &ClientSender) -> Result<(), ClientError> {
        let actions = self.machine().cancel(transfer)?;
        for action in actions {
            match action {
                Action::StopUpload(t) => {
                    let stop = self.io().uploads.remove(&t);
                    if let Some(stop) = stop {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                Action::Send(msg) => sender.send(&msg)?,
                // `cancel` never reports: events come from the reader only.
                other => debug_assert!(false, "unexpected {other:?}"),
            }
        }
        Ok(())
    }
}

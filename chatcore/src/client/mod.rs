//! A small blocking client: connect, log in, send, receive typed events.
//!
//! One reader thread per client decodes frames, answers the server's pings
//! (so the heartbeat is kept without the caller's help) and hands everything
//! else over a bounded channel. If the caller stops taking events the
//! channel fills, the reader stops reading, and TCP pushes back: the server
//! will eventually cut the client off as `slow` rather than buffer forever.
//!
//! File transfer (offer, upload, accept, download, resume, cancel) is in
//! [`transfer`]: the calls are on [`ClientSender`] (and [`Client`]), the
//! outcomes arrive as [`Event::Transfer`]. The reader hands only file
//! messages (and errors about transfers) to it; chat, presence and the rest
//! go straight to the event channel.

mod roster;
pub mod transfer;

pub use roster::{Change, Roster};
pub use transfer::{
    OfferTo, TransferError, TransferEvent, human_size, sanitize_file_name, unique_path,
};

pub use crate::protocol::transfer::{FileKind, FileOffered};

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use thiserror::Error;

use crate::tls::{
    ChatStream, ClientTls, Closer, KnownServers, ReadHalf, TlsError, Trust, Verify, WriteHalf,
};

use crate::protocol::{
    ChatSend, ClientMessage, DecodeError, ErrorCode, Hello, HistoryRequest, PROTOCOL_VERSION, Seq,
    ServerMessage, Welcome, decode_server, encode_client,
};

/// Events queued before the reader thread waits for the caller.
const EVENT_QUEUE: usize = 16 * 1024;
/// Largest frame accepted from the server. The server's own frames are not
/// bound by the `max_frame` it imposes on clients: a `welcome` lists every
/// member and grows with the room.
const MAX_SERVER_FRAME: u32 = 64 * 1024 * 1024;
/// How long `connect` waits for the `welcome`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the socket at a time (a `file_data` frame is up to 256 KiB).
const READ_CHUNK: usize = 64 * 1024;

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// A socket error.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// The server refused the login (or another request) with this error.
    #[error("refused by the server: {message} ({code})")]
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server sent something this client cannot understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// A local file could not be read, written or created.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// No offer or transfer with this id is known to this client.
    #[error("no file transfer {0} known")]
    UnknownTransfer(u64),
    /// A file transfer cannot do this now (already downloading, a partial
    /// file longer than the offer...).
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Connecting over TLS failed: among others a server certificate that
    /// changed since it was remembered ([`TlsError::CertificateChanged`]),
    /// which the caller must show the user as it is.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Something that happened, as the reader thread saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message from the server. Server pings are answered by the client
    /// itself and not reported; `file_data` is written to its download and
    /// never reported; other messages about this client's own transfers
    /// come as [`Event::Transfer`] instead (see [`transfer`]).
    Message(ServerMessage),
    /// Something happened to one of this client's file transfers.
    Transfer(TransferEvent),
    /// The connection ended; the text says why. No more events follow.
    Closed(String),
}

/// The writing half, cloneable and shareable between threads. It also
/// starts and stops file transfers ([`ClientSender::send_file`],
/// [`ClientSender::accept_file`]...).
#[derive(Debug, Clone)]
pub struct ClientSender {
    stream: Arc<Mutex<WriteHalf>>,
    transfers: Arc<transfer::Transfers>,
    /// The highest chat id received (welcome, `chat`, `history`), 0 for
    /// none: what a reconnect passes as `last_seen` to miss nothing.
    last_seen: Arc<AtomicU64>,
}

impl ClientSender {
    /// Sends any client message.
    pub fn send(&self, msg: &ClientMessage) -> Result<(), ClientError> {
        let frame = encode_client(msg);
        let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        stream.write_all(&frame)?;
        Ok(())
    }

    /// Sends a chat message.
    pub fn send_chat(&self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send(&ClientMessage::Chat(ChatSend {
            room: None,
            text: text.into(),
            reference: None,
        }))
    }

    /// Asks for a page of at most `limit` chats older than id `before`
    /// (`None`: the newest); the answer arrives as a
    /// [`ServerMessage::History`] event, or an error event (`history_limit`,
    /// `unknown_message`, `rate_limited`).
    pub fn request_history(&self, before: Option<u64>, limit: u32) -> Result<(), ClientError> {
        self.send(&ClientMessage::History(HistoryRequest {
            room: None,
            before,
            limit,
        }))
    }

    /// Sends a chat message to named room `room` (which this client must
    /// have joined, else the answer is an `error` `not_in_room`).
    pub fn send_chat_in(
        &self,
        room: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Chat(ChatSend {
            room: Some(room.into()),
            text: text.into(),
            reference: None,
        }))
    }

    /// Like [`ClientSender::request_history`], in named room `room`.
    pub fn request_history_in(
        &self,
        room: impl Into<String>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::History(HistoryRequest {
            room: Some(room.into()),
            before,
            limit,
        }))
    }

    /// Sends a direct message to `to` (online, or a registered name that is
    /// away); answered by a [`ServerMessage::Dm`] event (our own copy), or
    /// an `error` (`no_such_member`...).
    pub fn send_dm(
        &self,
        to: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Dm(crate::protocol::DmSend {
            to: to.into(),
            text: text.into(),
            reference: None,
        }))
    }

    /// Asks for a page of the direct conversation with `with`; answered by
    /// [`ServerMessage::DmHistory`].
    pub fn request_dm_history(
        &self,
        with: impl Into<String>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::DmHistory(
            crate::protocol::DmHistoryRequest {
                with: with.into(),
                before,
                limit,
            },
        ))
    }

    /// Marks the direct conversation with `with` read up to `id` (the
    /// server counts it no more in the next `dm_unread`).
    pub fn mark_dm_read(&self, with: impl Into<String>, id: u64) -> Result<(), ClientError> {
        self.send(&ClientMessage::DmRead(crate::protocol::DmRead {
            with: with.into(),
            id,
        }))
    }

    /// Enters named room `room`, creating it if it does not exist (when the
    /// server lets this client). The answer is a
    /// [`ServerMessage::RoomJoined`] event (who is there, recent history),
    /// or an `error` (`room_invalid`, `room_unknown`, `too_many_rooms`).
    pub fn join_room(&self, room: impl Into<String>) -> Result<(), ClientError> {
        self.send(&ClientMessage::Join(crate::protocol::JoinRoom {
            room: room.into(),
            invite_only: false,
        }))
    }

    /// Creates named room `room` invite-only (docs/protocol.md 23.5) and
    /// enters it; an existing room is entered as with
    /// [`ClientSender::join_room`], its mode unchanged.
    pub fn create_private_room(&self, room: impl Into<String>) -> Result<(), ClientError> {
        self.send(&ClientMessage::Join(crate::protocol::JoinRoom {
            room: room.into(),
            invite_only: true,
        }))
    }

    /// Makes named room `room` invite-only (`true`) or open; answered by
    /// [`ServerMessage::RoomMode`] to the room, or an `error` (`forbidden`
    /// for a member who is not a moderator there).
    pub fn set_room_mode(
        &self,
        room: impl Into<String>,
        invite_only: bool,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::RoomMode(crate::protocol::RoomMode {
            room: room.into(),
            invite_only,
            by: None,
        }))
    }

    /// Invites `name` to invite-only room `room` (moderators); `name` gets
    /// [`ServerMessage::Invited`].
    pub fn invite(
        &self,
        room: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Invite(crate::protocol::Invite {
            room: room.into(),
            name: Some(name.into()),
            by: None,
        }))
    }

    /// Leaves named room `room`; answered [`ServerMessage::RoomParted`].
    pub fn part_room(&self, room: impl Into<String>) -> Result<(), ClientError> {
        self.send(&ClientMessage::Part(crate::protocol::RoomName {
            room: room.into(),
        }))
    }

    /// Asks for every room and its member count; answered
    /// [`ServerMessage::RoomList`].
    pub fn list_rooms(&self) -> Result<(), ClientError> {
        self.send(&ClientMessage::Rooms)
    }

    /// Sets the topic of named room `room`; everyone in it gets
    /// [`ServerMessage::Topic`].
    pub fn set_topic(
        &self,
        room: impl Into<String>,
        topic: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Topic(crate::protocol::SetTopic {
            room: room.into(),
            topic: topic.into(),
        }))
    }

    /// The highest chat id this client has received so far (in the
    /// welcome, a `chat` or a `history` frame, whether or not the caller
    /// took the event yet); `None` before any. Pass it to a resuming
    /// connect ([`Client::connect_plain_resuming`]...) after a lost
    /// connection to get exactly what was missed.
    pub fn last_seen(&self) -> Option<u64> {
        Some(self.last_seen.load(Ordering::Relaxed)).filter(|&id| id > 0)
    }

    /// Sends a chat message with a `ref` the server echoes in our own copy.
    pub fn send_chat_ref(
        &self,
        text: impl Into<String>,
        reference: u64,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Chat(ChatSend {
            room: None,
            text: text.into(),
            reference: Some(reference),
        }))
    }
}

/// How a login proves that a registered name is its own
/// (docs/protocol.md section 19).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No proof: a guest (refused for a registered name).
    #[default]
    Guest,
    /// The name's password.
    Password(String),
    /// A session token from an earlier login ([`Client::token`]): what an
    /// automatic reconnect uses instead of the password.
    Token(String),
}

/// A logged-in connection to a room.
#[derive(Debug)]
pub struct Client {
    sender: ClientSender,
    events: Receiver<Event>,
    welcome: Welcome,
    /// Why this connection is trusted (plain, first use, known...).
    trust: Trust,
    /// A handle on the socket to shut it down, which ends the reader thread.
    control: Closer,
    reader: Option<JoinHandle<()>>,
}

impl Client {
    /// Connects to `addr` (`host:port`) over TLS, trusting the server on
    /// first use (the user's known-servers file, see
    /// [`KnownServers::default_location`]), and logs in as `name`.
    ///
    /// A changed server certificate is [`ClientError::Tls`] with
    /// [`TlsError::CertificateChanged`]; [`Client::trust`] says whether the
    /// server was met for the first time. A refused name (`name_empty`,
    /// `name_too_long`...) is [`ClientError::Refused`]. The name actually
    /// given is in [`Client::welcome`] (it may be `name(1)`).
    pub fn connect(addr: &str, name: &str) -> Result<Self, ClientError> {
        let known = KnownServers::default_location()?;
        Self::connect_with(addr, name, &ClientTls::Tls(Verify::TrustOnFirstUse(known)))
    }

    /// Connects to `addr` over plain TCP (a server without TLS: embedded
    /// servers by default, `chatserver --no-tls`) and logs in as `name`.
    pub fn connect_plain(addr: impl ToSocketAddrs, name: &str) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Self::login(stream, name)
    }

    /// Connects to `addr` (`host:port`) plain or over TLS as `tls` says and
    /// logs in as `name`.
    pub fn connect_with(addr: &str, name: &str, tls: &ClientTls) -> Result<Self, ClientError> {
        let (stream, trust) = crate::tls::connect(addr, tls, HANDSHAKE_TIMEOUT)?;
        Self::login_with_trust(stream, trust, name)
    }

    /// Logs in over an already connected plain TCP stream.
    pub fn login(stream: TcpStream, name: &str) -> Result<Self, ClientError> {
        Self::login_with_trust(ChatStream::plain(stream), Trust::Plain, name)
    }

    /// Like [`Client::connect_plain`], resuming after a lost connection:
    /// `last_seen` is the id of the last chat seen ([`Client::last_seen`]
    /// of the old client). The first event after the welcome is then a
    /// [`ServerMessage::History`] with `after` = `last_seen` holding the
    /// chats missed (`gap: true` if there were more than the server sends:
    /// page back with [`Client::request_history`]), or an error event
    /// `unknown_message` if the server never had that id.
    pub fn connect_plain_resuming(
        addr: impl ToSocketAddrs,
        name: &str,
        last_seen: Option<u64>,
    ) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Self::login_resuming(ChatStream::plain(stream), Trust::Plain, name, last_seen)
    }

    /// Like [`Client::connect_with`], resuming from `last_seen` as
    /// [`Client::connect_plain_resuming`] does.
    pub fn connect_with_resuming(
        addr: &str,
        name: &str,
        tls: &ClientTls,
        last_seen: Option<u64>,
    ) -> Result<Self, ClientError> {
        let (stream, trust) = crate::tls::connect(addr, tls, HANDSHAKE_TIMEOUT)?;
        Self::login_resuming(stream, trust, name, last_seen)
    }

    /// Logs in over a stream from [`crate::tls::connect`]; `trust` is what
    /// that returned (kept for [`Client::trust`]).
    pub fn login_with_trust(
        stream: ChatStream,
        trust: Trust,
        name: &str,
    ) -> Result<Self, ClientError> {
        Self::login_full(stream, trust, name, &Credentials::Guest, None)
    }

    /// [`Client::login_with_trust`] with the `hello`'s `last_seen`
    /// (`None`: a fresh login, no resume).
    pub fn login_resuming(
        stream: ChatStream,
        trust: Trust,
        name: &str,
        last_seen: Option<u64>,
    ) -> Result<Self, ClientError> {
        Self::login_full(stream, trust, name, &Credentials::Guest, last_seen)
    }

    /// Connects to `addr` over plain TCP and logs in as `name` with
    /// `credentials` (a registered name's password or session token).
    pub fn connect_plain_as(
        addr: impl ToSocketAddrs,
        name: &str,
        credentials: &Credentials,
    ) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Self::login_with_credentials(ChatStream::plain(stream), Trust::Plain, name, credentials)
    }

    /// Like [`Client::connect_with`], logging in with `credentials`.
    pub fn connect_with_as(
        addr: &str,
        name: &str,
        tls: &ClientTls,
        credentials: &Credentials,
    ) -> Result<Self, ClientError> {
        let (stream, trust) = crate::tls::connect(addr, tls, HANDSHAKE_TIMEOUT)?;
        Self::login_with_credentials(stream, trust, name, credentials)
    }

    /// Logs in over a stream from [`crate::tls::connect`] with
    /// `credentials`. A wrong password or token is [`ClientError::Refused`]
    /// with `auth_failed`; too many failures give `auth_throttled` (its
    /// message ends with the wait, "try again in N ms"). The token to
    /// reconnect with is [`Client::token`].
    pub fn login_with_credentials(
        stream: ChatStream,
        trust: Trust,
        name: &str,
        credentials: &Credentials,
    ) -> Result<Self, ClientError> {
        Self::login_full(stream, trust, name, credentials, None)
    }

    /// The login every other entry point makes: `credentials` (guest,
    /// password or token) and, to resume, the `last_seen` chat id.
    pub fn login_full(
        stream: ChatStream,
        trust: Trust,
        name: &str,
        credentials: &Credentials,
        last_seen: Option<u64>,
    ) -> Result<Self, ClientError> {
        let (mut stream, mut writer) = stream.split();
        let (password, token) = match credentials {
            Credentials::Guest => (None, None),
            Credentials::Password(p) => (Some(p.clone()), None),
            Credentials::Token(t) => (None, Some(t.clone())),
        };
        let hello = ClientMessage::Hello(Hello {
            password,
            token,
            version: PROTOCOL_VERSION,
            name: name.to_owned(),
            last_seen,
        });
        writer.write_all(&encode_client(&hello))?;
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let mut buf = BytesMut::with_capacity(4096);
        let welcome = loop {
            match decode_server(&mut buf, MAX_SERVER_FRAME)
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                Some(ServerMessage::Welcome(w)) => break w,
                Some(ServerMessage::Error(e)) => {
                    return Err(ClientError::Refused {
                        code: e.code,
                        message: e.message,
                    });
                }
                Some(ServerMessage::Ping(seq)) => {
                    writer.write_all(&encode_client(&ClientMessage::Pong(seq)))?;
                }
                Some(_) => {}
                None => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ClientError::Timeout);
                    }
                    stream.set_read_timeout(Some(left))?;
                    if read_some(&mut stream, &mut buf)? == 0 {
                        return Err(ClientError::Closed);
                    }
                }
            }
        };
        stream.set_read_timeout(None)?;
        let control = stream.closer();
        let writer = Arc::new(Mutex::new(writer));
        let newest = welcome.history.iter().map(|c| c.id).max();
        let sender = ClientSender {
            stream: writer,
            transfers: Arc::new(transfer::Transfers::new(welcome.max_frame)),
            last_seen: Arc::new(AtomicU64::new(
                newest.unwrap_or(0).max(last_seen.unwrap_or(0)),
            )),
        };
        let (tx, events) = sync_channel(EVENT_QUEUE);
        let reader_sender = sender.clone();
        let reader = std::thread::Builder::new()
            .name("chatcore-client-reader".into())
            .spawn(move || read_loop(stream, buf, MAX_SERVER_FRAME, tx, reader_sender))?;
        Ok(Self {
            sender,
            events,
            welcome,
            trust,
            control,
            reader: Some(reader),
        })
    }

    /// The server's `welcome`: our name and session, who is here, recent history.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The session token the server issued at a password login (from the
    /// `welcome`), to reconnect with [`Credentials::Token`]; `None` for
    /// guests and token logins (keep the token you logged in with). Tokens
    /// from `register` and `change_password` arrive as
    /// [`ServerMessage::Registered`] / [`ServerMessage::PasswordChanged`].
    pub fn token(&self) -> Option<&str> {
        self.welcome.token.as_deref()
    }

    /// Registers this guest's current name with `password` (8 to 1024
    /// bytes). The answer is an event: [`ServerMessage::Registered`] with
    /// the token, or an `error` (`name_registered`, `password_invalid`,
    /// `accounts_unavailable`).
    pub fn register(&self, password: impl Into<String>) -> Result<(), ClientError> {
        self.sender
            .send(&ClientMessage::Register(crate::protocol::Register {
                password: password.into(),
            }))
    }

    /// Replaces the password of the registered name this client logged in
    /// with. The answer is [`ServerMessage::PasswordChanged`] with a new
    /// token (all older tokens are revoked), or an `error` (`auth_failed`,
    /// `password_invalid`, `auth_throttled`).
    pub fn change_password(
        &self,
        old: impl Into<String>,
        new: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.sender.send(&ClientMessage::ChangePassword(
            crate::protocol::ChangePassword {
                old: old.into(),
                new: new.into(),
            },
        ))
    }

    /// Revokes this connection's session token; answered
    /// [`ServerMessage::LoggedOut`]. The session goes on.
    pub fn logout(&self) -> Result<(), ClientError> {
        self.sender.send(&ClientMessage::Logout)
    }

    /// Why this connection is trusted: show [`Trust::FirstUse`] to the user
    /// ("first connection: remembered fingerprint ...").
    pub fn trust(&self) -> Trust {
        self.trust
    }

    /// A cloneable sender for other threads.
    pub fn sender(&self) -> ClientSender {
        self.sender.clone()
    }

    /// Sends any client message.
    pub fn send(&self, msg: &ClientMessage) -> Result<(), ClientError> {
        self.sender.send(msg)
    }

    /// Sends a chat message.
    pub fn send_chat(&self, text: impl Into<String>) -> Result<(), ClientError> {
        self.sender.send_chat(text)
    }

    /// Sends a chat message with a `ref`.
    pub fn send_chat_ref(
        &self,
        text: impl Into<String>,
        reference: u64,
    ) -> Result<(), ClientError> {
        self.sender.send_chat_ref(text, reference)
    }

    /// Asks for a page of older chats; see [`ClientSender::request_history`].
    pub fn request_history(&self, before: Option<u64>, limit: u32) -> Result<(), ClientError> {
        self.sender.request_history(before, limit)
    }

    /// The highest chat id received so far; see [`ClientSender::last_seen`].
    pub fn last_seen(&self) -> Option<u64> {
        self.sender.last_seen()
    }

    /// Sends a `ping`; the `pong` arrives as an event.
    pub fn ping(&self, seq: u64) -> Result<(), ClientError> {
        self.sender.send(&ClientMessage::Ping(Seq { seq }))
    }

    /// Offers a file to the default room; see [`ClientSender::send_file`].
    pub fn send_file(&self, path: &Path, kind: FileKind) -> Result<u64, ClientError> {
        self.sender.send_file(path, kind)
    }

    /// Offers a file to a named room or a member; see
    /// [`ClientSender::send_file_to`].
    pub fn send_file_to(
        &self,
        path: &Path,
        kind: FileKind,
        to: OfferTo,
    ) -> Result<u64, ClientError> {
        self.sender.send_file_to(path, kind, to)
    }

    /// Downloads an offered file into `dir`; see [`ClientSender::accept_file`].
    pub fn accept_file(&self, transfer: u64, dir: &Path) -> Result<PathBuf, ClientError> {
        self.sender.accept_file(transfer, dir)
    }

    /// Resumes a download into a partial file; see [`ClientSender::resume_file`].
    pub fn resume_file(&self, transfer: u64, part: &Path) -> Result<(), ClientError> {
        self.sender.resume_file(transfer, part)
    }

    /// Declines an offered file; see [`ClientSender::decline_file`].
    pub fn decline_file(&self, transfer: u64) -> Result<(), ClientError> {
        self.sender.decline_file(transfer)
    }

    /// Cancels an upload, an own offer or a download; see
    /// [`ClientSender::cancel_file`].
    pub fn cancel_file(&self, transfer: u64) -> Result<(), ClientError> {
        self.sender.cancel_file(transfer)
    }

    /// The offers seen and not ended; see [`ClientSender::offers`].
    pub fn offers(&self) -> Vec<FileOffered> {
        self.sender.offers()
    }

    /// Waits for the next event. `Err(Closed)` once the connection is gone
    /// and every event was taken.
    pub fn recv(&self) -> Result<Event, ClientError> {
        self.events.recv().map_err(|_| ClientError::Closed)
    }

    /// Waits at most `timeout` for the next event (`Ok(None)` on timeout).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Event>, ClientError> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(ClientError::Closed),
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Result<Option<Event>, ClientError> {
        match self.events.try_recv() {
            Ok(e) => Ok(Some(e)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(ClientError::Closed),
        }
    }

    /// Says `bye` and closes the connection.
    pub fn bye(self) -> Result<(), ClientError> {
        self.sender.send(&ClientMessage::Bye)
        // Drop shuts the socket down and joins the reader.
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.control.shutdown();
        // Unblock a reader waiting on a full queue.
        while self.events.try_recv().is_ok() {}
        if let Some(reader) = self.reader.take() {
            // The reader may be blocked on the full channel; draining above
            // plus the shutdown lets it finish.
            drop(std::mem::replace(&mut self.events, sync_channel(0).1));
            let _ = reader.join();
        }
    }
}

/// Reads once into `buf`, growing it; returns the bytes read.
fn read_some(stream: &mut ReadHalf, buf: &mut BytesMut) -> Result<usize, ClientError> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let read = stream.read(&mut buf[start..]);
    buf.truncate(start + *read.as_ref().unwrap_or(&0));
    match read {
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(ClientError::Timeout)
        }
        Err(e) => Err(e.into()),
    }
}

/// The reader thread: decode, answer pings, forward the rest.
fn read_loop(
    mut stream: ReadHalf,
    mut buf: BytesMut,
    max_frame: u32,
    tx: SyncSender<Event>,
    sender: ClientSender,
) {
    let reason = loop {
        match decode_server(&mut buf, max_frame) {
            Ok(Some(ServerMessage::Ping(seq))) => {
                if sender.send(&ClientMessage::Pong(seq)).is_err() {
                    break "write failed".to_owned();
                }
            }
            Ok(Some(msg)) if transfer::concerns(&msg) => {
                for event in sender.transfers.on_message(msg, &sender, &tx) {
                    if tx.send(event).is_err() {
                        sender.transfers.close(&sender, &tx);
                        return;
                    }
                }
            }
            Ok(Some(msg)) => {
                let newest = match &msg {
                    ServerMessage::Chat(c) => Some(c.id),
                    ServerMessage::History(h) => h.messages.last().map(|c| c.id),
                    _ => None,
                };
                if let Some(id) = newest {
                    sender.last_seen.fetch_max(id, Ordering::Relaxed);
                }
                if tx.send(Event::Message(msg)).is_err() {
                    sender.transfers.close(&sender, &tx);
                    return;
                }
            }
            // A message this version does not understand: skip it.
            Err(DecodeError::Message(_)) => {}
            Err(DecodeError::Frame(e)) => break format!("bad frame from server: {e}"),
            Ok(None) => match read_some(&mut stream, &mut buf) {
                Ok(0) => break "the server closed the connection".to_owned(),
                Ok(_) => {}
                Err(e) => break e.to_string(),
            },
        }
    };
    // The socket is of no more use; shutting it down also ends any upload
    // blocked writing to it.
    let _ = stream.shutdown();
    for event in sender.transfers.close(&sender, &tx) {
        let _ = tx.send(event);
    }
    let _ = tx.send(Event::Closed(reason));
}

//! The network worker: runs the blocking [`chatcore::Client`] on threads of
//! its own and talks to the UI through channels only.
//!
//! [`connect`] is the body of an iced subscription
//! (`Subscription::run_with(params, net::connect)`): it starts the worker
//! and returns the stream of [`Event`]s the UI receives. The first event is
//! always [`Event::Ready`] with a [`Handle`], the UI's way to send
//! [`Command`]s back. Nothing here runs on the UI thread except pushing a
//! command into a channel.
//!
//! # Threads
//! - `net-worker` connects, logs in, forwards every event of the client and,
//!   when the connection drops after a successful login, reconnects with
//!   [`Backoff`] and logs in again with the same (assigned) name. A failed
//!   *first* login is reported as [`Event::LoginFailed`] and ends the
//!   worker: the user is still on the login screen and decides what next.
//!
//! # Accounts
//! [`Login`] says how the first login proves the name: as a guest, with a
//! password, or as a guest that then registers its name. The session
//! token the server hands back (the password login's `welcome`, the
//! `registered` answer) is kept in the worker's memory and reported as
//! [`Event::Token`]; every automatic reconnection logs in with that token,
//! never with the password, which the worker forgets once it has a token.
//! A reconnection whose token (or name) the server refuses (expired,
//! revoked, registered meanwhile) ends the worker with
//! [`Event::SessionEnded`]: the user logs in again on the form.
//! - `net-commands` executes commands with the current connection's
//!   [`ClientSender`] (writes may block when the socket is full; opening and
//!   hashing a file to offer runs on a short-lived thread of its own).
//!
//! Dropping the stream (the subscription ends) makes the worker's next
//! send fail, and it stops; dropping every [`Handle`] stops the command
//! thread.
//!
//! # TLS
//! Every connection goes through [`chatcore::tls::connect`] with the
//! [`Security`] the command line chose (trust on first use by default).
//! The worker reports how the connection is protected ([`Event::Secured`],
//! before each [`Event::LoggedIn`]). A server whose certificate is not the
//! one remembered is never connected to, neither at login nor on an
//! automatic reconnection: the worker reports
//! [`Event::CertificateChanged`] and stops, and only the user's explicit
//! "trust" starts a new worker ([`Params::accept`]) that writes the new
//! fingerprint into the known-servers file before connecting.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use chatcore::client::{ClientSender, Credentials, FileKind, OfferTo, TransferEvent};
use chatcore::protocol::voice::VoiceMute;
use chatcore::protocol::{
    ChatSend, ClientMessage, DmSend, ErrorCode, ServerMessage, VoiceJoinRoom, Welcome,
};
use chatcore::tls::{self, ClientTls, Fingerprint, KnownServers, TlsError, Trust, Verify};
use chatcore::{Client, ClientError, Event as ClientEvent};
use iced::futures::SinkExt;
use iced::futures::channel::mpsc;
use iced::futures::executor::block_on;

/// Events buffered between the worker and the UI. When the UI falls
/// behind, the worker waits, the client's own queue fills and TCP pushes
/// back on the server, instead of memory growing.
const EVENT_QUEUE: usize = 4096;
/// How long the TCP connect and the TLS handshake may take before they
/// count as a timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting worker checks whether the UI is still listening.
const POLL: Duration = Duration::from_millis(200);

/// What the worker connects to. Hashed by iced to identify the
/// subscription: a new `attempt` starts a fresh worker (a new login after a
/// failed one), the same value keeps the running one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Params {
    /// `host:port` of the chat server.
    pub addr: String,
    /// The name to ask for.
    pub name: String,
    /// Counts login attempts, so that retrying with the same address and
    /// name still starts a new worker.
    pub attempt: u64,
    /// How to protect and verify the connection (command line).
    pub security: Security,
    /// The user chose to trust this certificate for `addr` (the prompt
    /// after [`Event::CertificateChanged`]): the worker writes it into the
    /// known-servers file before it connects. Done by the worker, so that
    /// no file is written on the UI thread.
    pub accept: Option<Fingerprint>,
    /// We were in the room before (this worker follows a trust prompt after
    /// a reconnection): a failed connection is retried with backoff instead
    /// of ending as [`Event::LoginFailed`].
    pub rejoin: bool,
    /// How the login proves the name (guest, password, register, token).
    pub login: Login,
}

/// A password or a session token. Kept in memory only and never printed:
/// its `Debug` hides the text, so no log line, panic or `{:?}` of a
/// message or state that holds one shows it.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password or token.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text, to put into a `hello` or an input field; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Nothing typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// How a worker logs in (docs/protocol.md, accounts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Login {
    /// No password: a guest, exactly as before accounts existed.
    #[default]
    Guest,
    /// The registered name's password; the `welcome` brings a token.
    Password(Secret),
    /// Log in as a guest, then `register` the name with this password;
    /// the `registered` answer brings a token.
    Register(Secret),
    /// A session token from an earlier login (a worker started again after
    /// a trust prompt in the room).
    Token(Secret),
}

impl Login {
    /// What the `hello` carries.
    fn credentials(&self) -> Credentials {
        match self {
            Self::Guest | Self::Register(_) => Credentials::Guest,
            Self::Password(p) => Credentials::Password(p.expose().to_owned()),
            Self::Token(t) => Credentials::Token(t.expose().to_owned()),
        }
    }
}

/// How the connection is protected and the server verified, as the command
/// line chose (`--no-tls`, `--insecure`, `--ca-file`, `--system-roots`,
/// `--known-servers`). Hashable (part of [`Params`]), unlike
/// [`ClientTls`], which holds an open known-servers handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Security {
    /// Plain TCP (`--no-tls`): readable by anyone on the path.
    Plain,
    /// TLS, any certificate accepted (`--insecure`): encrypted but not
    /// verified, so an on-path attacker can read everything.
    Insecure,
    /// TLS verified against these PEM CA certificates (`--ca-file`).
    CaFile(PathBuf),
    /// TLS verified against the system's CA store (`--system-roots`).
    SystemRoots,
    /// TLS with trust on first use (the default): the fingerprint is
    /// remembered in the known-servers file (`--known-servers`, or the
    /// default location when `None`) and must match afterwards.
    FirstUse {
        /// The known-servers file, or `None` for the default location.
        known_servers: Option<PathBuf>,
    },
}

impl Default for Security {
    fn default() -> Self {
        Self::FirstUse {
            known_servers: None,
        }
    }
}

impl Security {
    /// The known-servers file this setting trusts on first use with, if it
    /// does.
    pub fn known_servers(&self) -> Option<Result<KnownServers, TlsError>> {
        match self {
            Self::FirstUse {
                known_servers: Some(path),
            } => Some(Ok(KnownServers::at(path.clone()))),
            Self::FirstUse {
                known_servers: None,
            } => Some(KnownServers::default_location()),
            _ => None,
        }
    }

    /// What to connect with.
    pub fn client_tls(&self) -> Result<ClientTls, TlsError> {
        Ok(match self {
            Self::Plain => ClientTls::Plain,
            Self::Insecure => ClientTls::Tls(Verify::Insecure),
            Self::CaFile(path) => ClientTls::Tls(Verify::CaFile(path.clone())),
            Self::SystemRoots => ClientTls::Tls(Verify::SystemRoots),
            Self::FirstUse { .. } => match self.known_servers() {
                Some(known) => ClientTls::Tls(Verify::TrustOnFirstUse(known?)),
                None => ClientTls::Tls(Verify::Insecure),
            },
        })
    }
}

/// A server showed a certificate other than the one remembered for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The server as typed (`host:port`), the known-servers key.
    pub server: String,
    /// The fingerprint remembered from earlier connections.
    pub remembered: Fingerprint,
    /// The fingerprint the server presented now.
    pub presented: Fingerprint,
    /// The known-servers file holding `remembered`, named in the prompt.
    pub file: PathBuf,
}

/// Something the UI asks the worker to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Say something to the room.
    Chat {
        /// The text.
        text: String,
        /// Our number for it, echoed in our own copy and in errors.
        reference: u64,
    },
    /// Offer a file; `local` is the UI's id for the card showing it.
    SendFile {
        /// The UI's card id.
        local: u64,
        /// The file.
        path: PathBuf,
        /// Who it is offered to: the room shown, or the member of the
        /// conversation shown.
        to: OfferTo,
    },
    /// Offer a recorded voice message (kind `voice`); `local` is its card.
    SendVoice {
        /// The UI's card id.
        local: u64,
        /// The Ogg Opus file.
        path: PathBuf,
        /// Who it is offered to.
        to: OfferTo,
    },
    /// Download an offered file into `dir` (resumes a cancelled download).
    Accept {
        /// The offer.
        transfer: u64,
        /// Where to save it.
        dir: PathBuf,
    },
    /// Not interested in an offer.
    Decline(u64),
    /// Stop an upload or a download.
    Cancel(u64),
    /// A request about the voice call.
    Voice(VoiceRequest),
    /// `voice_join` of named room `room`'s call (docs/protocol.md 23.6).
    VoiceJoinIn(String),
    /// Ask the server for a page of older chats (`history`): at most
    /// `limit` chats with ids below `before` (`None`: the newest).
    History {
        /// Only chats older than this id.
        before: Option<u64>,
        /// Most chats in the page.
        limit: u32,
    },
    /// Say something in named room `room` (docs/protocol.md section 23).
    ChatIn {
        /// The room.
        room: String,
        /// The text.
        text: String,
        /// Our number for it, echoed in our own copy and in errors.
        reference: u64,
    },
    /// A page of older chats of named room `room`.
    HistoryIn {
        /// The room.
        room: String,
        /// Only chats older than this id.
        before: Option<u64>,
        /// Most chats in the page.
        limit: u32,
    },
    /// Enter (or create) a named room; answered `room_joined`.
    Join(String),
    /// Create a named room invite-only (or enter it if it exists).
    CreatePrivate(String),
    /// Join each of these rooms again (after an automatic reconnection).
    Rejoin(Vec<String>),
    /// Leave a named room; answered `room_parted`.
    Part(String),
    /// Ask for every room (`rooms`); answered `room_list`.
    ListRooms,
    /// Set the topic of a named room.
    Topic {
        /// The room.
        room: String,
        /// The new topic ("" clears it).
        topic: String,
    },
    /// A moderation request (kick, ban, mute, unmute, delete) as the
    /// protocol message itself: the room screen builds it, the worker only
    /// sends it.
    Moderate(ClientMessage),
    /// A direct message to member `to` (docs/protocol.md section 25).
    Dm {
        /// The recipient.
        to: String,
        /// The text.
        text: String,
        /// Our number for it, echoed in our own copy and in errors.
        reference: u64,
    },
    /// The newest page of the direct conversation with `with`.
    DmHistory {
        /// The other member.
        with: String,
        /// Only messages older than this id.
        before: Option<u64>,
        /// Most messages in the page.
        limit: u32,
    },
    /// The direct conversation with `with` is read up to `id`.
    DmRead {
        /// The other member.
        with: String,
        /// The newest id read.
        id: u64,
    },
}

/// What the UI asks the server about the voice call, over the chat
/// connection (the voice path itself is the audio worker's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceRequest {
    /// `voice_join`: let us into the call.
    Join,
    /// `voice_leave`: we left the call.
    Leave,
    /// `voice_mute`: tell the others we are (un)muted.
    Mute(bool),
}

impl VoiceRequest {
    /// The protocol message carrying this request.
    pub fn message(self) -> ClientMessage {
        match self {
            Self::Join => ClientMessage::VoiceJoin,
            Self::Leave => ClientMessage::VoiceLeave,
            Self::Mute(muted) => ClientMessage::VoiceMute(VoiceMute { muted }),
        }
    }
}

/// What a failed command was about, so the UI can show the error in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// A chat message with this reference.
    Chat(u64),
    /// The file card with this local id (an offer being prepared).
    Upload(u64),
    /// This transfer (accept, decline, cancel).
    Transfer(u64),
    /// A voice request.
    Voice,
    /// A request for older chats.
    History,
    /// Registering our name (the `register` could not be sent).
    Account,
    /// A room request (join, part, list, topic) or a moderation request.
    Room,
}

/// What the worker tells the UI.
#[derive(Debug, Clone)]
pub enum Event {
    /// The worker runs; send commands through this handle.
    Ready(Handle),
    /// Trying to connect (`attempt` 0 is the first login).
    Connecting {
        /// 0 for the first login, then 1, 2... for reconnections.
        attempt: u32,
    },
    /// How the connection about to log in is protected; sent before every
    /// [`Event::LoggedIn`].
    Secured(Trust),
    /// Logged in (first time or again after a reconnection).
    LoggedIn(Box<Welcome>),
    /// The server presented a certificate other than the remembered one.
    /// Nothing was sent to it; the worker has stopped (also during
    /// automatic reconnection): only the user decides to trust it.
    CertificateChanged(Box<Changed>),
    /// The first login failed; the worker has stopped. The text is for people.
    LoginFailed(String),
    /// The server handed us a session token (password login, `registered`,
    /// `password_changed`): the worker reconnects with it; the application
    /// keeps it for a worker it starts again after a trust prompt.
    Token {
        /// The registered name the token belongs to (what a token login
        /// asks for, even while we are shown as `name(1)`).
        name: String,
        /// The token.
        token: Secret,
    },
    /// After we were in the room, a reconnection was refused for good: the
    /// token expired or was revoked, or our guest name got registered. The
    /// worker has stopped; the user logs in again. The text is for people.
    SessionEnded(String),
    /// The connection dropped (or a reconnection failed); the next attempt
    /// comes after `retry_in`.
    Disconnected {
        /// Why, for people.
        reason: String,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
    /// A message from the server.
    Server(ServerMessage),
    /// Something happened to one of our file transfers.
    Transfer(TransferEvent),
    /// The offer for card `local` went out as `reference`.
    OfferSent {
        /// The UI's card id.
        local: u64,
        /// The reference `send_file` returned; `UploadStarted` carries it.
        reference: u64,
    },
    /// A download started: it is written to `part` first.
    Downloading {
        /// The transfer.
        transfer: u64,
        /// The partial file.
        part: PathBuf,
    },
    /// A command could not be carried out.
    Failed {
        /// What it was about.
        about: About,
        /// Why, for people.
        error: String,
    },
}

/// The UI's end of the command channel. Sending never blocks.
#[derive(Debug, Clone)]
pub struct Handle(std_mpsc::Sender<Command>);

impl Handle {
    /// Queues a command; `false` if the worker is gone.
    pub fn send(&self, command: Command) -> bool {
        self.0.send(command).is_ok()
    }

    /// A handle whose commands go to `tx`, for tests of the UI logic.
    pub fn from_sender(tx: std_mpsc::Sender<Command>) -> Self {
        Self(tx)
    }
}

/// Reconnection delays: 0.5 s, doubling, at most 10 s; reset after a
/// successful login.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Failed attempts since the last successful login.
    failures: u32,
}

impl Backoff {
    /// The first delay.
    pub const BASE: Duration = Duration::from_millis(500);
    /// The longest delay.
    pub const MAX: Duration = Duration::from_secs(10);

    /// The delay before the next attempt; each call doubles it.
    pub fn next_delay(&mut self) -> Duration {
        let delay = Self::BASE
            .saturating_mul(1u32 << self.failures.min(16))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Back to the first delay (after a successful login).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Starts a worker for `params` and returns its events. The body of the
/// network subscription.
pub fn connect(params: &Params) -> mpsc::Receiver<Event> {
    let (mut tx, rx) = mpsc::channel(EVENT_QUEUE);
    let (cmd_tx, cmd_rx) = std_mpsc::channel();
    // The channel is new and empty: this cannot fail for lack of room.
    let _ = tx.try_send(Event::Ready(Handle(cmd_tx)));
    let current: Arc<Mutex<Option<ClientSender>>> = Arc::default();
    let commands = {
        let (tx, current) = (tx.clone(), Arc::clone(&current));
        thread::Builder::new()
            .name("net-commands".into())
            .spawn(move || command_loop(cmd_rx, current, tx))
    };
    let params = params.clone();
    let worker = {
        let tx = tx.clone();
        thread::Builder::new()
            .name("net-worker".into())
            .spawn(move || worker_loop(params, current, tx))
    };
    if let Err(e) = commands.and(worker) {
        let _ = tx.try_send(Event::LoginFailed(format!("cannot start a thread: {e}")));
    }
    rx
}

/// Sends one event to the UI, waiting for room; `false` once the UI is gone.
fn emit(tx: &mut mpsc::Sender<Event>, event: Event) -> bool {
    block_on(tx.send(event)).is_ok()
}

/// Sleeps for `d` in short steps; `false` if the UI went away meanwhile.
fn wait(tx: &mpsc::Sender<Event>, d: Duration) -> bool {
    let mut left = d;
    while !left.is_zero() {
        if tx.is_closed() {
            return false;
        }
        let step = left.min(POLL);
        thread::sleep(step);
        left -= step;
    }
    !tx.is_closed()
}

/// Connect, log in, forward, reconnect: the `net-worker` thread.
fn worker_loop(
    params: Params,
    current: Arc<Mutex<Option<ClientSender>>>,
    mut tx: mpsc::Sender<Event>,
) {
    let mut name = params.name.trim().to_owned();
    let mut logged_in = params.rejoin;
    // How the next login proves the name; a token replaces the password
    // as soon as the server hands one out.
    let mut login = params.login.clone();
    // "Register": log in as a guest first, then register (once).
    let mut register = match &login {
        Login::Register(password) => Some(password.clone()),
        _ => None,
    };
    // The registered name a token login asks for: the typed (or
    // registered) name, not a `name(1)` we were given meanwhile.
    let mut account = matches!(login, Login::Token(_)).then(|| name.clone());
    let mut backoff = Backoff::default();
    let mut attempt = u32::from(params.rejoin);
    // The newest chat id received on the last connection: a reconnection
    // resumes from it, so the server sends exactly what was missed.
    let mut last_seen: Option<u64> = None;
    if let Some(presented) = params.accept
        && let Err(e) = accept(&params, presented)
    {
        let _ = emit(&mut tx, Event::LoginFailed(e));
        return;
    }
    let tls = match params.security.client_tls() {
        Ok(tls) => tls,
        Err(e) => {
            let _ = emit(&mut tx, Event::LoginFailed(e.to_string()));
            return;
        }
    };
    loop {
        if !emit(&mut tx, Event::Connecting { attempt }) {
            return;
        }
        attempt = attempt.saturating_add(1);
        let asked = match (&login, &account) {
            (Login::Token(_), Some(account)) => account.clone(),
            _ => name.clone(),
        };
        let client = match open(&params.addr, &asked, &tls, &login, last_seen) {
            Ok((client, trust)) => {
                if !emit(&mut tx, Event::Secured(trust)) {
                    return;
                }
                client
            }
            Err(ClientError::Tls(TlsError::CertificateChanged {
                server,
                remembered,
                presented,
                file,
            })) => {
                let changed = Changed {
                    server,
                    remembered,
                    presented,
                    file,
                };
                let _ = emit(&mut tx, Event::CertificateChanged(Box::new(changed)));
                return;
            }
            Err(e) if !logged_in => {
                let _ = emit(&mut tx, Event::LoginFailed(explain(&e, &params)));
                return;
            }
            Err(ClientError::Refused { code, message }) if ends_session(code) => {
                let why = session_ended(code, &message, &login);
                let _ = emit(&mut tx, Event::SessionEnded(why));
                return;
            }
            Err(e) => {
                // A throttled token login waits at least as long as the
                // server asks.
                let asked_wait = match &e {
                    ClientError::Refused {
                        code: ErrorCode::AuthThrottled,
                        message,
                    } => throttle_wait(message),
                    _ => None,
                };
                let retry_in = backoff.next_delay().max(asked_wait.unwrap_or_default());
                let reason = explain(&e, &params);
                if !emit(&mut tx, Event::Disconnected { reason, retry_in }) || !wait(&tx, retry_in)
                {
                    return;
                }
                continue;
            }
        };
        logged_in = true;
        backoff.reset();
        if let Some(token) = client.token() {
            // A password login: from now on the token, never the password.
            login = Login::Token(Secret::new(token));
            account = Some(asked.clone());
            let token = Event::Token {
                name: asked.clone(),
                token: Secret::new(token),
            };
            if !emit(&mut tx, token) {
                return;
            }
        }
        // Next time, ask for the name we were given: that is who we are
        // to the others.
        name.clone_from(&client.welcome().name);
        *lock(&current) = Some(client.sender());
        if !emit(&mut tx, Event::LoggedIn(Box::new(client.welcome().clone()))) {
            return;
        }
        if let Some(password) = register.take()
            && let Err(e) = client.register(password.expose())
        {
            let failed = Event::Failed {
                about: About::Account,
                error: e.to_string(),
            };
            if !emit(&mut tx, failed) {
                return;
            }
        }
        let reason = loop {
            match client.recv_timeout(POLL) {
                Ok(Some(ClientEvent::Message(msg))) => {
                    let issued = match &msg {
                        ServerMessage::Registered(r) => Some((r.name.clone(), r.token.clone())),
                        ServerMessage::PasswordChanged(p) => Some((
                            account.clone().unwrap_or_else(|| name.clone()),
                            p.token.clone(),
                        )),
                        _ => None,
                    };
                    if let Some((registered, token)) = issued {
                        login = Login::Token(Secret::new(token.clone()));
                        account = Some(registered.clone());
                        let token = Event::Token {
                            name: registered,
                            token: Secret::new(token),
                        };
                        if !emit(&mut tx, token) {
                            return;
                        }
                    }
                    if !emit(&mut tx, Event::Server(msg)) {
                        return;
                    }
                }
                Ok(Some(ClientEvent::Transfer(t))) => {
                    if !emit(&mut tx, Event::Transfer(t)) {
                        return;
                    }
                }
                Ok(Some(ClientEvent::Closed(why))) => break why,
                Ok(None) => {
                    if tx.is_closed() {
                        return;
                    }
                }
                Err(_) => break "connection closed".to_owned(),
            }
        };
        *lock(&current) = None;
        last_seen = client.last_seen().or(last_seen);
        drop(client);
        let retry_in = backoff.next_delay();
        if !emit(&mut tx, Event::Disconnected { reason, retry_in }) || !wait(&tx, retry_in) {
            return;
        }
    }
}

/// Writes the fingerprint the user chose to trust for `params.addr` into
/// the known-servers file; the error is in words for the login screen.
fn accept(params: &Params, presented: Fingerprint) -> Result<(), String> {
    let known = params.security.known_servers().ok_or_else(|| {
        "This connection does not use trust on first use: nothing to remember.".to_owned()
    })?;
    known
        .and_then(|k| k.remember(&params.addr, presented))
        .map_err(|e| format!("Cannot remember the new certificate: {e}"))
}

/// Connects (TCP, then TLS unless plain, with a timeout) to `addr` as
/// typed and logs in as `name` the way `login` says, resuming from
/// `last_seen` if given.
fn open(
    addr: &str,
    name: &str,
    tls: &ClientTls,
    login: &Login,
    last_seen: Option<u64>,
) -> Result<(Client, Trust), ClientError> {
    let (stream, trust) = tls::connect(addr, tls, CONNECT_TIMEOUT).map_err(ClientError::Tls)?;
    let client = Client::login_full(stream, trust, name, &login.credentials(), last_seen)?;
    Ok((client, trust))
}

/// Refusals of a reconnection that retrying cannot fix: the user must log
/// in again (a new password, another name).
fn ends_session(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::AuthFailed | ErrorCode::NameRegistered | ErrorCode::AccountRequired
    )
}

/// Why a reconnection was refused for good, in words for the login form.
fn session_ended(code: ErrorCode, message: &str, login: &Login) -> String {
    match (code, login) {
        (ErrorCode::AuthFailed, Login::Token(_)) => "Your session has expired or was revoked: \
             enter your password to log in again."
            .to_owned(),
        _ => account_refusal(code, message)
            .unwrap_or_else(|| format!("The server refused the login: {message} ({code}).")),
    }
}

/// The wait an `auth_throttled` message asks for ("... try again in N ms").
pub fn throttle_wait(message: &str) -> Option<Duration> {
    let (_, rest) = message.rsplit_once("try again in ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let ms: u64 = digits.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// An account refusal (login, register) in words for people; `None` for
/// codes that are not about accounts.
pub fn account_refusal(code: ErrorCode, message: &str) -> Option<String> {
    Some(match code {
        ErrorCode::AuthFailed => {
            "Wrong password, or this name is not registered (log in without a password, or \
             choose Register)."
                .to_owned()
        }
        ErrorCode::AuthThrottled => match throttle_wait(message) {
            Some(wait) => format!(
                "Too many failed logins: wait {} before trying again.",
                crate::format::seconds(wait)
            ),
            None => format!("Too many failed logins: {message}."),
        },
        ErrorCode::NameRegistered => "This name is registered: enter its password and Log in, \
             or choose another name."
            .to_owned(),
        ErrorCode::PasswordInvalid => "The password must be 8 to 1024 bytes long.".to_owned(),
        ErrorCode::AccountRequired => "This server admits registered names only: log in with \
             your name and password."
            .to_owned(),
        ErrorCode::AccountsUnavailable => "This server has no accounts (it keeps no store): log \
             in without a password."
            .to_owned(),
        _ => return None,
    })
}

/// A client error in words for the login screen and the status line.
pub fn describe(e: &ClientError, addr: &str) -> String {
    match e {
        ClientError::Io(io) => describe_io(io, addr),
        ClientError::Tls(tls) => describe_tls(tls, addr),
        ClientError::Refused { code, message } => {
            account_refusal(*code, message).unwrap_or_else(|| match code {
                ErrorCode::NameEmpty | ErrorCode::NameTooLong | ErrorCode::NameInvalid => {
                    format!("The server refused this name: {message}.")
                }
                _ => format!("The server refused the login: {message} ({code})."),
            })
        }
        ClientError::Timeout => format!("Timed out: {addr} did not answer the login."),
        ClientError::Closed => format!("{addr} closed the connection during login."),
        other => other.to_string(),
    }
}

/// A socket error in words.
fn describe_io(io: &std::io::Error, addr: &str) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => {
            format!("Connection refused: no chat server is listening at {addr}.")
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            format!("Timed out: no answer from {addr}.")
        }
        ErrorKind::NotFound | ErrorKind::InvalidInput => {
            format!("Cannot find the server \"{addr}\": use host:port, e.g. 127.0.0.1:6789.")
        }
        _ => format!("Cannot connect to {addr}: {io}."),
    }
}

/// A TLS error in words.
fn describe_tls(e: &TlsError, addr: &str) -> String {
    match e {
        TlsError::Connect { source, .. } => describe_io(source, addr),
        TlsError::Resolve { .. } | TlsError::BadAddress { .. } => {
            format!("Cannot find the server \"{addr}\": use host:port, e.g. 127.0.0.1:6789.")
        }
        TlsError::Timeout { .. } => format!("Timed out: no answer from {addr}."),
        // chatcore's reason already hints at --no-tls when the server
        // answered in plain text.
        TlsError::Handshake { reason, .. } => {
            format!("The secure connection to {addr} failed: {reason}")
        }
        other => format!("{}{}", capitalized(&other.to_string()), "."),
    }
}

/// `s` with its first letter in upper case (error texts start lower case).
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// [`describe`], with a hint when a plain client probably met a TLS
/// server (it closes the connection at the first plain bytes).
fn explain(e: &ClientError, params: &Params) -> String {
    let words = describe(e, &params.addr);
    let plain_mismatch = params.security == Security::Plain
        && matches!(e, ClientError::Closed | ClientError::Protocol(_));
    if plain_mismatch {
        format!("{words} The server may speak TLS: connect without --no-tls.")
    } else {
        words
    }
}

/// The mutex guard, whatever a panicking thread left behind.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `net-commands` thread: one command at a time with the current
/// connection.
fn command_loop(
    commands: std_mpsc::Receiver<Command>,
    current: Arc<Mutex<Option<ClientSender>>>,
    mut tx: mpsc::Sender<Event>,
) {
    while let Ok(command) = commands.recv() {
        let sender = lock(&current).clone();
        let about = about(&command);
        let voice_kind = matches!(command, Command::SendVoice { .. });
        let Some(sender) = sender else {
            let error = "not connected: try again once the connection is back".to_owned();
            if !emit(&mut tx, Event::Failed { about, error }) {
                return;
            }
            continue;
        };
        let outcome = match command {
            Command::Chat { text, reference } => {
                sender.send_chat_ref(text, reference).map(|()| None)
            }
            Command::SendFile { local, path, to } | Command::SendVoice { local, path, to } => {
                let kind = if voice_kind {
                    FileKind::Voice
                } else {
                    FileKind::File
                };
                // Hashing a large file takes a while: not on this thread,
                // so chat keeps flowing.
                let mut tx = tx.clone();
                let spawned = thread::Builder::new()
                    .name("net-offer".into())
                    .spawn(move || {
                        let event = match sender.send_file_to(&path, kind, to) {
                            Ok(reference) => Event::OfferSent { local, reference },
                            Err(e) => Event::Failed {
                                about: About::Upload(local),
                                error: e.to_string(),
                            },
                        };
                        let _ = emit(&mut tx, event);
                    });
                spawned.map(|_| None).map_err(ClientError::Io)
            }
            Command::Accept { transfer, dir } => sender
                .accept_file(transfer, &dir)
                .map(|part| Some(Event::Downloading { transfer, part })),
            Command::Decline(transfer) => sender.decline_file(transfer).map(|()| None),
            Command::Cancel(transfer) => sender.cancel_file(transfer).map(|()| None),
            Command::Voice(request) => sender.send(&request.message()).map(|()| None),
            Command::VoiceJoinIn(room) => sender
                .send(&ClientMessage::VoiceJoinRoom(VoiceJoinRoom {
                    room: Some(room),
                }))
                .map(|()| None),
            Command::History { before, limit } => {
                sender.request_history(before, limit).map(|()| None)
            }
            Command::ChatIn {
                room,
                text,
                reference,
            } => sender
                .send(&ClientMessage::Chat(ChatSend {
                    text,
                    reference: Some(reference),
                    room: Some(room),
                }))
                .map(|()| None),
            Command::HistoryIn {
                room,
                before,
                limit,
            } => sender
                .request_history_in(room, before, limit)
                .map(|()| None),
            Command::Join(room) => sender.join_room(room).map(|()| None),
            Command::CreatePrivate(room) => sender.create_private_room(room).map(|()| None),
            Command::Rejoin(rooms) => rooms
                .into_iter()
                .try_for_each(|room| sender.join_room(room))
                .map(|()| None),
            Command::Part(room) => sender.part_room(room).map(|()| None),
            Command::ListRooms => sender.list_rooms().map(|()| None),
            Command::Topic { room, topic } => sender.set_topic(room, topic).map(|()| None),
            Command::Moderate(msg) => sender.send(&msg).map(|()| None),
            Command::Dm {
                to,
                text,
                reference,
            } => sender
                .send(&ClientMessage::Dm(DmSend {
                    to,
                    text,
                    reference: Some(reference),
                }))
                .map(|()| None),
            Command::DmHistory {
                with,
                before,
                limit,
            } => sender
                .request_dm_history(with, before, limit)
                .map(|()| None),
            Command::DmRead { with, id } => sender.mark_dm_read(with, id).map(|()| None),
        };
        let event = match outcome {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => Event::Failed {
                about,
                error: e.to_string(),
            },
        };
        if !emit(&mut tx, event) {
            return;
        }
    }
}

/// What a command is about, for its error.
fn about(command: &Command) -> About {
    match command {
        Command::Chat { reference, .. }
        | Command::ChatIn { reference, .. }
        | Command::Dm { reference, .. } => About::Chat(*reference),
        Command::SendFile { local, .. } | Command::SendVoice { local, .. } => About::Upload(*local),
        Command::Accept { transfer, .. }
        | Command::Decline(transfer)
        | Command::Cancel(transfer) => About::Transfer(*transfer),
        Command::Voice(_) | Command::VoiceJoinIn(_) => About::Voice,
        Command::History { .. } | Command::HistoryIn { .. } => About::History,
        Command::Join(_)
        | Command::CreatePrivate(_)
        | Command::Rejoin(_)
        | Command::Part(_)
        | Command::ListRooms
        | Command::Topic { .. }
        | Command::Moderate(_)
        | Command::DmHistory { .. }
        | Command::DmRead { .. } => About::Room,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_ten_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        b.reset();
        assert_eq!(b.next_delay(), Backoff::BASE);
    }

    #[test]
    fn refused_connections_and_bad_names_are_explained_in_words() {
        let refused = ClientError::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert!(describe(&refused, "127.0.0.1:1").contains("Connection refused"));
        let name = ClientError::Refused {
            code: ErrorCode::NameTooLong,
            message: "the name is longer than 32 characters".into(),
        };
        assert!(describe(&name, "x").contains("refused this name"));
        assert!(describe(&ClientError::Timeout, "x").starts_with("Timed out"));
    }

    #[test]
    fn tls_failures_are_explained_and_a_plain_client_is_told_about_tls() {
        let handshake = ClientError::Tls(TlsError::Handshake {
            server: "h:1".into(),
            reason: "received corrupt message".into(),
        });
        assert!(
            describe(&handshake, "h:1")
                .starts_with("The secure connection to h:1 failed: received corrupt message")
        );
        let refused = ClientError::Tls(TlsError::Connect {
            server: "h:1".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        });
        assert!(describe(&refused, "h:1").starts_with("Connection refused"));
        let params = |security| Params {
            addr: "h:1".into(),
            name: "a".into(),
            attempt: 1,
            security,
            accept: None,
            rejoin: false,
            login: Login::Guest,
        };
        let hint = "may speak TLS";
        assert!(explain(&ClientError::Closed, &params(Security::Plain)).contains(hint));
        assert!(!explain(&ClientError::Closed, &params(Security::default())).contains(hint));
    }

    #[test]
    fn account_refusals_are_explained_and_a_throttle_tells_the_wait() {
        let throttled = ClientError::Refused {
            code: ErrorCode::AuthThrottled,
            message: "too many failed logins, try again in 2000 ms".into(),
        };
        let words = describe(&throttled, "x");
        assert!(words.contains("wait 2 s"), "{words}");
        assert_eq!(
            throttle_wait("try again in 250 ms"),
            Some(Duration::from_millis(250))
        );
        for code in [
            ErrorCode::AuthFailed,
            ErrorCode::NameRegistered,
            ErrorCode::PasswordInvalid,
            ErrorCode::AccountRequired,
            ErrorCode::AccountsUnavailable,
        ] {
            let refused = ClientError::Refused {
                code,
                message: "m".into(),
            };
            assert!(!describe(&refused, "x").contains(&code.to_string()));
        }
        let expired = session_ended(ErrorCode::AuthFailed, "m", &Login::Token(Secret::new("t")));
        assert!(expired.contains("expired or was revoked"));
    }

    #[test]
    fn voice_requests_become_their_protocol_messages() {
        assert_eq!(VoiceRequest::Join.message(), ClientMessage::VoiceJoin);
        assert_eq!(VoiceRequest::Leave.message(), ClientMessage::VoiceLeave);
        assert_eq!(
            VoiceRequest::Mute(true).message(),
            ClientMessage::VoiceMute(VoiceMute { muted: true })
        );
    }
}

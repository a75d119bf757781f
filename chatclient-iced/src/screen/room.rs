//! The room: message list, composer, file cards, the user list and the
//! voice controls, with the connection's status line on top.
//!
//! `update` never touches the network: commands for the server go into an
//! outbox that the application hands to the network worker
//! ([`State::take_outbox`]), which keeps this logic testable without a
//! server and without a runtime.

pub mod files;
pub mod scroll;
pub mod voice;

use std::path::PathBuf;
use std::time::Duration;

use chatcore::Roster;
use chatcore::client::{Change, TransferEvent};
use chatcore::protocol::{Chat, ErrorCode, LeaveReason, ServerMessage, UserInfo, Welcome};
use iced::widget::{
    Column, button, column, container, operation, row, scrollable, text, text_input,
};
use iced::{Center, Element, Fill, Task};

use crate::audio;
use crate::background;
use crate::format;
use crate::net::{About, Command, Event};
use crate::theme;
use crate::widgets;
use files::{CardId, Files};
use scroll::ListWindow;
use voice::Voice;

/// The message list's scrollable.
pub const LIST: &str = "room-list";
/// The composer's text input.
pub const COMPOSER: &str = "room-composer";
/// The fallback file-path input.
pub const PATH_INPUT: &str = "room-path";

/// One chat message as drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// The server's message id.
    pub id: u64,
    /// Sender's name.
    pub from: String,
    /// Local time of day, formatted once on arrival (not every frame).
    pub time: String,
    /// Server time in ms, to merge history after a reconnection.
    pub ts: i64,
    /// The text.
    pub text: String,
    /// Sent by us (drawn in green).
    pub own: bool,
}

/// One line of the message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A chat message.
    Chat(ChatLine),
    /// A quiet line: joins, leaves, timeouts, connection news.
    System(String),
    /// A file offer (ours or theirs).
    File(CardId),
    /// An error shown in place (a message refused by the server...).
    Error(String),
}

/// The connection as the status line tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Logged in.
    Online,
    /// Trying again (attempt `n`).
    Connecting(u32),
    /// Lost; the next attempt comes after the delay.
    Lost {
        /// Why.
        reason: String,
        /// Time to the next attempt.
        retry_in: Duration,
    },
}

/// Everything the room screen holds.
#[derive(Debug, Clone)]
pub struct State {
    /// The server address (for the status line).
    server: String,
    /// Our name in the room (may be `alice(1)`).
    name: String,
    /// Our session (to tell our own messages and list entry).
    session: u64,
    /// Who is online.
    roster: Roster,
    /// The online users sorted by name, rebuilt on change, not per frame.
    users: Vec<UserInfo>,
    /// The message list, oldest first. Kept across reconnections.
    entries: Vec<Entry>,
    /// File cards the entries point at.
    files: Files,
    /// Which part of `entries` is drawn and whether it follows the end.
    window: ListWindow,
    /// The composer's text.
    input: String,
    /// A hint under the composer (e.g. not connected).
    composer_note: Option<String>,
    /// The fallback path field for "Send file" when no dialog is available
    /// (`None` = hidden).
    path_input: Option<String>,
    /// The next chat `ref`.
    next_ref: u64,
    /// Newest server timestamp of a chat we show, to merge history after a
    /// reconnection without duplicates.
    last_chat_ts: i64,
    /// The connection's state.
    link: Link,
    /// Where downloads go.
    downloads: PathBuf,
    /// Voice call state and controls.
    voice: Voice,
    /// Commands for the network worker, taken by the application.
    outbox: Vec<Command>,
}

/// What the user does in the room.
#[derive(Debug, Clone)]
pub enum Message {
    /// The composer changed.
    InputChanged(String),
    /// Send the composer's text (button or Enter).
    Send,
    /// Empty the composer.
    Clear,
    /// The message list was scrolled.
    Scrolled(scrollable::Viewport),
    /// Draw more entries above.
    ShowEarlier,
    /// Follow the newest entry again.
    JumpToLatest,
    /// Open the file dialog.
    PickFile,
    /// The dialog closed (`None`: cancelled or no dialog available).
    Picked(Option<PathBuf>),
    /// The fallback path field changed.
    PathChanged(String),
    /// Offer the file in the path field.
    SendPath,
    /// Hide the path field.
    ClosePath,
    /// Download an offer.
    Accept(u64),
    /// Decline an offer.
    Decline(u64),
    /// Stop an upload or download.
    Cancel(u64),
    /// Open the folder of a saved file.
    OpenFolder(CardId),
    /// Opening a folder ended (`Err` says why it failed).
    Opened(CardId, Result<(), String>),
    /// A voice control.
    Voice(voice::Message),
}

impl State {
    /// The room after the first login; `requested` is the name asked for
    /// (the server may have given `alice(1)` instead).
    pub fn new(welcome: &Welcome, requested: &str, server: &str, downloads: PathBuf) -> Self {
        let mut state = Self {
            server: server.to_owned(),
            name: welcome.name.clone(),
            session: welcome.session,
            roster: Roster::from_welcome(welcome),
            users: Vec::new(),
            entries: Vec::new(),
            files: Files::default(),
            window: ListWindow::default(),
            input: String::new(),
            composer_note: None,
            path_input: None,
            next_ref: 1,
            last_chat_ts: i64::MIN,
            link: Link::Online,
            downloads,
            voice: Voice::new(server),
            outbox: Vec::new(),
        };
        state.sort_users();
        let joined = if requested.trim() == welcome.name || requested.trim().is_empty() {
            format!("You joined as {}.", welcome.name)
        } else {
            format!(
                "You joined as {} ({} was taken).",
                welcome.name,
                requested.trim()
            )
        };
        state.push(Entry::System(joined));
        state.merge_history(&welcome.history);
        state
    }

    /// Our name in the room.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message list.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The file cards.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The online users, sorted.
    pub fn users(&self) -> &[UserInfo] {
        &self.users
    }

    /// The connection state.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The composer's text.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The drawn window of the list.
    pub fn window(&self) -> &ListWindow {
        &self.window
    }

    /// The voice state.
    pub fn voice(&self) -> &Voice {
        &self.voice
    }

    /// Focus the text field in use: the path field when open, else the
    /// composer.
    pub fn focus_task(&self) -> Task<Message> {
        if self.path_input.is_some() {
            operation::focus(PATH_INPUT)
        } else {
            operation::focus(COMPOSER)
        }
    }

    /// The commands queued for the network worker, emptied.
    pub fn take_outbox(&mut self) -> Vec<Command> {
        let voice = self.voice.take_net().into_iter().map(Command::Raw);
        self.outbox.extend(voice);
        std::mem::take(&mut self.outbox)
    }

    /// The commands queued for the audio worker, emptied.
    pub fn take_audio_outbox(&mut self) -> Vec<audio::Command> {
        self.voice.take_audio()
    }

    /// Applies an event of the audio worker.
    pub fn on_audio(&mut self, event: audio::Event) {
        self.voice.on_audio(event);
    }

    /// Appends an entry; returns whether the view should snap to the end.
    fn push(&mut self, entry: Entry) -> bool {
        self.entries.push(entry);
        self.window.pushed(self.entries.len())
    }

    fn sort_users(&mut self) {
        let mut users: Vec<UserInfo> = self.roster.users().collect();
        users.sort_by_cached_key(|u| (u.name.to_lowercase(), u.session));
        self.users = users;
    }

    fn chat_line(&self, c: &Chat) -> ChatLine {
        ChatLine {
            id: c.id,
            from: c.from.clone(),
            time: format::local_time(c.ts),
            ts: c.ts,
            text: c.text.clone(),
            own: c.session == self.session && c.session != 0,
        }
    }

    /// Appends the chats of `history` newer than what we show.
    fn merge_history(&mut self, history: &[Chat]) -> bool {
        let mut snap = false;
        for c in history {
            if c.ts > self.last_chat_ts {
                snap |= self.add_chat(c);
            }
        }
        snap
    }

    fn add_chat(&mut self, c: &Chat) -> bool {
        self.last_chat_ts = self.last_chat_ts.max(c.ts);
        let line = self.chat_line(c);
        self.push(Entry::Chat(line))
    }

    /// Logged in again after a reconnection: same history, fresh roster.
    pub fn relogged(&mut self, welcome: &Welcome) -> Task<Message> {
        self.name.clone_from(&welcome.name);
        self.session = welcome.session;
        self.roster = Roster::from_welcome(welcome);
        self.sort_users();
        self.voice.reset();
        self.link = Link::Online;
        self.composer_note = None;
        let mut snap = self.push(Entry::System(format!(
            "Reconnected to {} as {}.",
            self.server, welcome.name
        )));
        snap |= self.merge_history(&welcome.history);
        self.snap_if(snap)
    }

    fn snap_if(&self, snap: bool) -> Task<Message> {
        if snap {
            operation::snap_to_end(LIST)
        } else {
            Task::none()
        }
    }

    /// Applies an event from the network worker (other than `Ready`,
    /// `LoggedIn` and `LoginFailed`, which the application handles).
    pub fn on_net(&mut self, event: Event) -> Task<Message> {
        let snap = match event {
            Event::Server(msg) => self.on_server(msg),
            Event::Transfer(t) => {
                self.files.on_transfer(&t);
                match t {
                    TransferEvent::Saved { transfer, path } => {
                        self.voice.downloaded(transfer, path);
                    }
                    TransferEvent::Failed { transfer, .. }
                    | TransferEvent::Cancelled { transfer, .. } => {
                        self.voice.fetch_failed(transfer);
                    }
                    _ => {}
                }
                false
            }
            Event::OfferSent { local, reference } => {
                self.files.offer_sent(local, reference);
                false
            }
            Event::Downloading { transfer, .. } => {
                self.files.requested(transfer);
                false
            }
            Event::Failed { about, error } => match about {
                About::Upload(id) => {
                    self.files.failed_card(id, error);
                    false
                }
                About::Transfer(t) => {
                    self.files.failed_transfer(t, error);
                    self.voice.fetch_failed(t);
                    false
                }
                About::Chat(_) => self.push(Entry::Error(format!("Message not sent: {error}"))),
                About::Voice => {
                    self.voice.refused(&error);
                    false
                }
            },
            Event::Connecting { attempt } => {
                if attempt > 0 {
                    self.link = Link::Connecting(attempt);
                }
                false
            }
            Event::Disconnected { reason, retry_in } => {
                let first = self.link == Link::Online;
                self.link = Link::Lost {
                    reason: reason.clone(),
                    retry_in,
                };
                self.voice.reset();
                if first {
                    self.push(Entry::System(format!(
                        "Connection lost ({}). Reconnecting…",
                        reason.trim_end_matches('.')
                    )))
                } else {
                    false
                }
            }
            Event::Ready(_) | Event::LoggedIn(_) | Event::LoginFailed(_) => false,
        };
        self.snap_if(snap)
    }

    /// A server message; returns whether to snap to the end.
    fn on_server(&mut self, msg: ServerMessage) -> bool {
        match &msg {
            ServerMessage::Chat(c) => return self.add_chat(c),
            ServerMessage::Joined(_) | ServerMessage::Left(_) | ServerMessage::Presence(_) => {
                let changes = self.roster.apply(&msg);
                if changes.is_empty() {
                    return false;
                }
                self.sort_users();
                let mut snap = false;
                for change in changes {
                    let line = match change {
                        Change::Joined(u) => format!("{} joined", u.name),
                        Change::Left(u, LeaveReason::Shutdown) if u.session == self.session => {
                            "The server is shutting down.".to_owned()
                        }
                        Change::Left(u, reason) if u.session == self.session => {
                            format!("You were removed from the room ({reason}).")
                        }
                        Change::Left(u, LeaveReason::Timeout) => format!("{} timed out", u.name),
                        Change::Left(u, LeaveReason::Quit) => format!("{} left", u.name),
                        Change::Left(u, reason) => format!("{} left ({reason})", u.name),
                    };
                    snap |= self.push(Entry::System(line));
                }
                return snap;
            }
            ServerMessage::FileOffer(offer) => {
                let id = self.files.offered(offer);
                return self.push(Entry::File(id));
            }
            ServerMessage::FileCancelled(c) => {
                self.files.withdrawn(c.transfer, &c.reason);
            }
            ServerMessage::VoiceState(v) => self.voice.apply_state(v, self.session),
            ServerMessage::VoiceJoined(j) => self.voice.joined(j),
            ServerMessage::Error(e) => {
                if matches!(e.code, ErrorCode::VoiceUnavailable) {
                    self.voice.refused(&e.message);
                    return false;
                }
                let line = if e.reference.is_some() {
                    format!("Message not sent: {}", e.message)
                } else {
                    format!("The server says: {} ({})", e.message, e.code)
                };
                return self.push(Entry::Error(line));
            }
            _ => {}
        }
        false
    }

    /// Applies a user action.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::InputChanged(s) => {
                self.input = s;
                Task::none()
            }
            Message::Send => {
                if self.input.trim().is_empty() {
                    return Task::none();
                }
                if self.link != Link::Online {
                    self.composer_note = Some(
                        "Not connected: the message will be sendable once reconnected.".into(),
                    );
                    return Task::none();
                }
                let reference = self.next_ref;
                self.next_ref += 1;
                self.outbox.push(Command::Chat {
                    text: std::mem::take(&mut self.input),
                    reference,
                });
                self.composer_note = None;
                // Sending means reading the newest again.
                self.window.jump_to_latest(self.entries.len());
                operation::snap_to_end(LIST)
            }
            Message::Clear => {
                self.input.clear();
                self.composer_note = None;
                operation::focus(COMPOSER)
            }
            Message::Scrolled(viewport) => {
                let hidden = viewport.content_bounds().height
                    - viewport.bounds().height
                    - viewport.absolute_offset().y;
                self.window.scrolled(hidden.max(0.0), self.entries.len());
                Task::none()
            }
            Message::ShowEarlier => {
                self.window.show_earlier();
                Task::none()
            }
            Message::JumpToLatest => {
                self.window.jump_to_latest(self.entries.len());
                operation::snap_to_end(LIST)
            }
            Message::PickFile => {
                Task::perform(background::pick_file(), |p| Message::Picked(p.flatten()))
            }
            Message::Picked(Some(path)) => {
                self.path_input = None;
                self.offer(path)
            }
            Message::Picked(None) => {
                // Cancelled, or no dialog on this desktop: offer the field.
                self.path_input.get_or_insert_with(String::new);
                operation::focus(PATH_INPUT)
            }
            Message::PathChanged(p) => {
                self.path_input = Some(p);
                Task::none()
            }
            Message::SendPath => {
                let path = self.path_input.as_deref().unwrap_or("").trim().to_owned();
                if path.is_empty() {
                    return Task::none();
                }
                self.path_input = None;
                self.offer(PathBuf::from(path))
            }
            Message::ClosePath => {
                self.path_input = None;
                Task::none()
            }
            Message::Accept(transfer) => {
                self.files.requested(transfer);
                self.outbox.push(Command::Accept {
                    transfer,
                    dir: self.downloads.clone(),
                });
                Task::none()
            }
            Message::Decline(transfer) => {
                self.files.declined(transfer);
                self.outbox.push(Command::Decline(transfer));
                Task::none()
            }
            Message::Cancel(transfer) => {
                self.outbox.push(Command::Cancel(transfer));
                Task::none()
            }
            Message::OpenFolder(id) => {
                let Some(files::FileState::Saved(path)) = self.files.get(id).map(|c| &c.state)
                else {
                    return Task::none();
                };
                let dir = path
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."));
                Task::perform(background::open_folder(dir), move |r| {
                    Message::Opened(id, r)
                })
            }
            Message::Opened(id, result) => {
                self.files.note(id, result.err());
                Task::none()
            }
            Message::Voice(voice::Message::Send) => {
                let Some(path) = self.voice.take_recording() else {
                    return Task::none();
                };
                let local = self.files.new_voice_upload(&path);
                self.voice.own_file(local, path.clone());
                self.outbox.push(Command::SendVoice { local, path });
                let snap = self.push(Entry::File(local));
                self.snap_if(snap)
            }
            Message::Voice(voice::Message::Play(id)) => {
                self.play(id);
                Task::none()
            }
            Message::Voice(m) => {
                self.voice.update(m);
                Task::none()
            }
        }
    }

    /// Play the voice message of card `id`: our own file, the saved
    /// download, or accept (download) it first and play once saved.
    fn play(&mut self, id: CardId) {
        if !self.voice.ready() {
            return;
        }
        let Some(card) = self.files.get(id) else {
            return;
        };
        if let Some(path) = self.voice.own_path(id) {
            let path = path.clone();
            self.voice.play(id, path);
        } else if let files::FileState::Saved(path) = &card.state {
            let path = path.clone();
            self.voice.play(id, path);
        } else if let Some(t) = card.transfer {
            match card.state {
                files::FileState::Requested | files::FileState::Downloading { .. } => {
                    self.voice.play_after_download(id, t);
                }
                _ if card.can_accept() => {
                    self.files.requested(t);
                    self.outbox.push(Command::Accept {
                        transfer: t,
                        dir: self.downloads.clone(),
                    });
                    self.voice.play_after_download(id, t);
                }
                _ => {}
            }
        }
    }

    /// Offer `path` to the room: a card now, the command to the worker.
    fn offer(&mut self, path: PathBuf) -> Task<Message> {
        let local = self.files.new_upload(&path);
        self.outbox.push(Command::SendFile { local, path });
        let snap = self.push(Entry::File(local));
        self.snap_if(snap)
    }

    /// The whole room screen.
    pub fn view(&self) -> Element<'_, Message> {
        let main = column![self.list(), self.composer()]
            .spacing(10)
            .width(Fill);
        let body = row![main, self.sidebar()].spacing(12).height(Fill);
        container(column![self.status_line(), body].spacing(12).padding(12))
            .style(theme::page)
            .width(Fill)
            .height(Fill)
            .into()
    }

    fn status_line(&self) -> Element<'_, Message> {
        let (dot, color, words) = match &self.link {
            Link::Online => (
                "●",
                theme::OK,
                format!("Connected to {} as {}", self.server, self.name),
            ),
            Link::Connecting(n) => (
                "●",
                theme::WARN,
                format!("Reconnecting to {} (attempt {n})…", self.server),
            ),
            Link::Lost { reason, retry_in } => (
                "●",
                theme::ERROR,
                format!(
                    "Disconnected: {}. Retrying in {}…",
                    reason.trim_end_matches('.'),
                    format::seconds(*retry_in)
                ),
            ),
        };
        container(
            row![text(dot).size(14).color(color), text(words).size(14),]
                .spacing(8)
                .align_y(Center),
        )
        .padding([8, 14])
        .width(Fill)
        .style(theme::status_bar)
        .into()
    }

    fn list(&self) -> Element<'_, Message> {
        let len = self.entries.len();
        let range = self.window.range(len);
        let mut col = Column::new().spacing(8).padding([12, 16]).width(Fill);
        if range.start > 0 {
            col = col.push(
                container(
                    button(text(format!("Show earlier messages ({} more)", range.start)).size(13))
                        .style(theme::quiet_button)
                        .on_press(Message::ShowEarlier),
                )
                .center_x(Fill),
            );
        }
        for entry in &self.entries[range.clone()] {
            col = col.push(match entry {
                Entry::Chat(line) => widgets::message_line::chat(line),
                Entry::System(s) => widgets::message_line::system(s),
                Entry::Error(s) => widgets::message_line::error(s),
                Entry::File(id) => match self.files.get(*id) {
                    Some(card) => widgets::offer_card::view(card, &self.voice),
                    None => widgets::message_line::system("(file no longer known)"),
                },
            });
        }
        if len == 0 {
            col = col.push(widgets::message_line::system("No messages yet. Say hello!"));
        }
        let list = scrollable(col)
            .id(LIST)
            .on_scroll(Message::Scrolled)
            .height(Fill)
            .width(Fill);
        let mut stack = column![list].height(Fill);
        let unseen = self.window.unseen().max(len.saturating_sub(range.end));
        if !self.window.at_bottom() && unseen > 0 {
            stack = stack.push(
                container(
                    button(text(format!("{unseen} new — Jump to latest")).size(13))
                        .on_press(Message::JumpToLatest),
                )
                .center_x(Fill)
                .padding(6),
            );
        }
        container(stack)
            .style(theme::panel)
            .width(Fill)
            .height(Fill)
            .into()
    }

    fn composer(&self) -> Element<'_, Message> {
        let input = text_input("Type a message…", &self.input)
            .id(COMPOSER)
            .on_input(Message::InputChanged)
            .on_submit(Message::Send)
            .padding(10)
            .size(15);
        let has_text = !self.input.trim().is_empty();
        let send = button(text("Send").size(15))
            .padding([10, 18])
            .on_press_maybe(has_text.then_some(Message::Send));
        let clear = button(text("Clear").size(15))
            .padding([10, 14])
            .style(theme::quiet_button)
            .on_press_maybe((!self.input.is_empty()).then_some(Message::Clear));
        let send_file = button(text("Send file…").size(15))
            .padding([10, 14])
            .style(theme::quiet_button)
            .on_press(Message::PickFile);
        let mut col = column![
            row![send_file, input, send, clear]
                .spacing(8)
                .align_y(Center)
        ]
        .spacing(6);
        if let Some(path) = &self.path_input {
            let field = text_input("Path of the file to send, e.g. /home/me/report.pdf", path)
                .id(PATH_INPUT)
                .on_input(Message::PathChanged)
                .on_submit(Message::SendPath)
                .padding(8)
                .size(14);
            col = col.push(
                column![
                    text("No file picked (or no file dialog on this desktop): type a path.")
                        .size(12)
                        .color(theme::MUTED),
                    row![
                        field,
                        button(text("Offer").size(14)).on_press(Message::SendPath),
                        button(text("Close").size(14))
                            .style(theme::quiet_button)
                            .on_press(Message::ClosePath),
                    ]
                    .spacing(8)
                    .align_y(Center),
                ]
                .spacing(4),
            );
        }
        if let Some(note) = &self.composer_note {
            col = col.push(text(note.as_str()).size(12).color(theme::WARN));
        }
        container(col)
            .padding(10)
            .style(theme::panel)
            .width(Fill)
            .into()
    }

    fn sidebar(&self) -> Element<'_, Message> {
        let users = widgets::user_list::view(
            &self.users,
            self.session,
            &self.voice,
            self.link == Link::Online,
        );
        let voice = self.voice.view().map(Message::Voice);
        container(column![users, iced::widget::rule::horizontal(1), voice].spacing(14))
            .padding(14)
            .width(250)
            .height(Fill)
            .style(theme::panel)
            .into()
    }
}

#[cfg(test)]
mod tests;

//! The room: message list, composer, file cards, the user list and the
//! voice controls, with the connection's status line on top.
//!
//! Every step (`update`, `on_net`, `on_audio`, `relogged`) returns
//! `(Task<Message>, Option<Event>)`, as the login screen does: the task is
//! the room's own UI work (scroll, focus, a dialog), the [`Event`] is work
//! for the application to hand to the network or audio worker. Nothing
//! here touches the network or the devices, which keeps this logic
//! testable without a server and without a runtime.
//!
//! Files: this one holds the state and the user's steps; `incoming`
//! applies what the workers report (server messages, transfers, the
//! connection); `entry` holds the lines of the list; `view` draws it all;
//! [`files`] follows file transfers, [`offer_card`] draws one, [`scroll`]
//! decides the drawn window of the list, [`voice`] is the voice panel.

pub mod dms;
mod entry;
pub mod files;
mod history;
mod incoming;
pub mod offer_card;
pub mod rooms;
pub mod scroll;
mod view;
pub mod voice;

use std::path::PathBuf;
use std::time::Duration;

use chatcore::Roster;
use chatcore::client::OfferTo;
use chatcore::protocol::{Chat, UserInfo, Welcome};
use chatcore::tls::Trust;
use iced::Task;
use iced::widget::{operation, scrollable};

use crate::audio;
use crate::background;
use crate::format;
use crate::net::Command;
use dms::Dms;
pub use entry::{ChatLine, Entry};
use files::{CardId, Files};
use rooms::{Pane, Rooms};
use scroll::Viewed;
use voice::Voice;

/// The message list's scrollable.
pub const LIST: &str = "room-list";
/// The composer's text input.
pub const COMPOSER: &str = "room-composer";
/// The fallback file-path input.
pub const PATH_INPUT: &str = "room-path";

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
    /// Not connected and not retrying (the server's certificate changed
    /// and waits for the user's decision).
    Stopped(String),
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
    /// The room shown: its message list, members, scroll place, draft
    /// and history paging (the other rooms' are parked in `rooms`).
    pane: Pane,
    /// The named rooms we are in and where the shown one is, with the
    /// parked panes of the rooms not shown (see `rooms.rs`).
    rooms: Rooms,
    /// The direct conversations and the one shown instead of the room, if
    /// any (see `dms.rs`).
    dms: Dms,
    /// File cards the entries point at (each in the pane of its room).
    files: Files,
    /// A hint under the composer (e.g. not connected).
    composer_note: Option<String>,
    /// The fallback path field for "Send file" when no dialog is available
    /// (`None` = hidden).
    path_input: Option<String>,
    /// The next chat `ref`.
    next_ref: u64,
    /// The connection's state.
    link: Link,
    /// Where downloads go.
    downloads: PathBuf,
    /// Voice call state and controls.
    voice: Voice,
    /// How the connection is protected (the status line's badge); `None`
    /// until the worker said.
    protection: Option<Trust>,
    /// The room whose call the voice panel follows (`None`: the default
    /// room's): the one whose call we joined last. Every room has a call
    /// of its own, and `voice_state` of the others is not ours to show.
    call_room: Option<String>,
}

/// What the room reports upward after a step: work for the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command for the network worker (chat, files).
    Net(Command),
    /// What the voice panel needs: the server, the audio engine or both.
    Voice(voice::Event),
    /// Several of these, in order (a reconnection resets the call and
    /// joins the named rooms again).
    Many(Vec<Event>),
}

impl Event {
    /// The command for the network worker and the one for the audio worker
    /// (of the first event, for [`Event::Many`]: use [`Event::flatten`]).
    pub fn into_commands(self) -> (Option<Command>, Option<audio::Command>) {
        match self {
            Self::Net(c) => (Some(c), None),
            Self::Voice(v) => v.into_commands(),
            Self::Many(events) => events
                .into_iter()
                .next()
                .map_or((None, None), Self::into_commands),
        }
    }

    /// The single events, in order.
    pub fn flatten(self) -> Vec<Event> {
        match self {
            Self::Many(events) => events.into_iter().flat_map(Self::flatten).collect(),
            other => vec![other],
        }
    }
}

/// A step's result without UI work.
fn report(event: Option<Event>) -> (Task<Message>, Option<Event>) {
    (Task::none(), event)
}

/// A step's result that asks the network worker for `command`.
fn ask(command: Command) -> (Task<Message>, Option<Event>) {
    report(Some(Event::Net(command)))
}

/// A voice step's event, as the room's.
fn voiced(event: Option<voice::Event>) -> Option<Event> {
    event.map(Event::Voice)
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
    /// Every local entry is drawn: ask the server for older messages.
    LoadEarlier,
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
    /// Copy this text (a fingerprint) to the clipboard.
    Copy(String),
    /// Show this room (`None`: the default room).
    ShowRoom(Option<String>),
    /// The "join room" field changed.
    JoinInputChanged(String),
    /// Join the room typed in the field.
    JoinTyped,
    /// Join this room (from the browse list).
    Join(String),
    /// "Private" beside the join field was ticked or not.
    JoinPrivateToggled(bool),
    /// The shown room's "Invite…" field changed.
    InviteInputChanged(String),
    /// Invite the member typed in that field.
    InviteTyped,
    /// Make the shown room invite-only (`true`) or open.
    SetPrivate(bool),
    /// Leave this named room.
    Part(String),
    /// Open or refresh the list of the server's rooms.
    BrowseRooms,
    /// Close that list.
    CloseBrowse,
    /// Edit the shown room's topic.
    EditTopic,
    /// The topic field changed.
    TopicChanged(String),
    /// Set the edited topic.
    SaveTopic,
    /// Stop editing the topic.
    CancelTopic,
    /// A member was clicked: offer moderation actions.
    SelectMember(UserInfo),
    /// A chat was clicked: offer deleting it.
    SelectChat(u64),
    /// Close the action bar.
    Deselect,
    /// Do this to the selected member.
    Moderate(rooms::Action),
    /// Delete the selected chat.
    DeleteChat,
    /// Show the direct conversation with this member.
    ShowDm(String),
    /// "Message" on a member: open (or start) the conversation with it.
    MessageMember(String),
    /// The "Message someone…" field changed.
    DmStartChanged(String),
    /// Open the conversation with the name typed in that field.
    DmStartTyped,
    /// The shown conversation's composer changed.
    DmInputChanged(String),
    /// Send the shown conversation's draft.
    DmSend,
    /// Ask for the shown conversation's older messages.
    DmLoadEarlier,
}

impl State {
    /// The room after the first login; `requested` is the name asked for
    /// (the server may have given `alice(1)` instead).
    pub fn new(welcome: &Welcome, requested: &str, server: &str, downloads: PathBuf) -> Self {
        let mut state = Self {
            server: server.to_owned(),
            name: welcome.name.clone(),
            session: welcome.session,
            pane: Pane::new(Roster::from_welcome(welcome)),
            rooms: Rooms::default(),
            dms: Dms {
                registered: welcome.registered,
                ..Dms::default()
            },
            files: Files::default(),
            composer_note: None,
            path_input: None,
            next_ref: 1,
            link: Link::Online,
            downloads,
            voice: Voice::new(server),
            protection: None,
            call_room: None,
        };
        state.sort_users();
        let joined = if welcome.registered {
            format!("You joined as {}, your registered name.", welcome.name)
        } else if requested.trim() == welcome.name || requested.trim().is_empty() {
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

    /// The server address as typed at login.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Our name in the room.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message list.
    pub fn entries(&self) -> &[Entry] {
        &self.pane.entries
    }

    /// The file cards.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The online users, sorted.
    pub fn users(&self) -> &[UserInfo] {
        &self.pane.users
    }

    /// The connection state.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The composer's text.
    pub fn input(&self) -> &str {
        &self.pane.input
    }

    /// The drawn window of the list.
    pub fn window(&self) -> &scroll::ListWindow {
        &self.pane.window
    }

    /// How the connection is protected, once known.
    pub fn protection(&self) -> Option<Trust> {
        self.protection
    }

    /// The worker told how this connection is protected: keep it for the
    /// status line; a server seen for the first time gets a line with the
    /// fingerprint now remembered for it.
    pub fn secured(&mut self, protection: Trust) -> Task<Message> {
        self.protection = Some(protection);
        let snap = match protection {
            Trust::FirstUse(fp) => self.push(Entry::Fingerprint {
                text: format!(
                    "First connection to {}: its certificate is now remembered. From now \
                     on a different certificate is refused. SHA-256 fingerprint (compare \
                     it with the one the server logs):",
                    self.server
                ),
                fingerprint: fp.to_string(),
            }),
            _ => false,
        };
        self.snap_if(snap)
    }

    /// The connection stopped for good (the certificate changed and the
    /// user is asked): no retry is coming.
    pub fn stopped(&mut self, why: String) -> (Task<Message>, Option<Event>) {
        let event = voiced(self.voice.call.reset());
        let snap = self.push(Entry::Error(format!(
            "Not connected: {}.",
            why.trim_end_matches('.')
        )));
        self.link = Link::Stopped(why);
        (self.snap_if(snap), event)
    }

    /// The user trusted the new certificate of the server: say so in the
    /// list (the reconnection follows).
    pub fn trusted(&mut self, fingerprint: chatcore::tls::Fingerprint) -> Task<Message> {
        let snap = self.push(Entry::Fingerprint {
            text: format!(
                "You trusted the new certificate of {}; it is now remembered instead of the \
                 old one. Connecting again. New SHA-256 fingerprint:",
                self.server
            ),
            fingerprint: fingerprint.to_string(),
        });
        self.link = Link::Connecting(1);
        self.snap_if(snap)
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

    /// Applies an event of the audio worker.
    pub fn on_audio(&mut self, event: audio::Event) -> (Task<Message>, Option<Event>) {
        report(voiced(self.voice.on_audio(event)))
    }

    /// Takes the audio switches of the room a previous session showed.
    pub fn restore_voice_switches(&mut self, switches: voice::Switches) {
        self.voice.call.restore(switches);
    }

    /// The push-to-talk key and whether its global grab works, for the
    /// voice panel's note.
    pub fn set_ptt_key(&mut self, status: voice::PttKeyStatus) {
        self.voice.ptt_key = status;
    }

    /// Appends an entry; returns whether the view should snap to the end.
    fn push(&mut self, entry: Entry) -> bool {
        self.pane.entries.push(entry);
        self.pane.window.pushed(self.pane.entries.len())
    }

    fn sort_users(&mut self) {
        let mut users: Vec<UserInfo> = self.pane.roster.users().collect();
        users.sort_by_cached_key(|u| (u.name.to_lowercase(), u.session));
        self.pane.users = users;
    }

    fn chat_line(&self, c: &Chat) -> ChatLine {
        ChatLine {
            id: c.id,
            from: c.from.clone(),
            time: format::local_time(c.ts),
            ts: c.ts,
            text: c.text.clone(),
            // Session ids start again after a server restart: a stored
            // chat of an old session with our number is not ours.
            own: c.session == self.session && c.session != 0 && c.from == self.name,
        }
    }

    /// Appends the chats of `history` newer than what we show.
    fn merge_history(&mut self, history: &[Chat]) -> bool {
        let mut snap = false;
        // Compared with the newest time before this batch: two chats of
        // one batch may share a millisecond.
        let since = self.pane.last_chat_ts;
        for c in history {
            if c.ts > since {
                snap |= self.add_chat(c);
            }
        }
        snap
    }

    fn add_chat(&mut self, c: &Chat) -> bool {
        self.pane.last_chat_ts = self.pane.last_chat_ts.max(c.ts);
        self.pane.history.shown(c.id);
        let line = self.chat_line(c);
        self.push(Entry::Chat(line))
    }

    /// Logged in again after a reconnection: same history, fresh roster
    /// (the default room's pane; see `rooms.rs` for the named rooms).
    fn relogged_default(&mut self, welcome: &Welcome) -> (Task<Message>, Option<Event>) {
        self.name.clone_from(&welcome.name);
        self.session = welcome.session;
        self.dms.registered = welcome.registered;
        self.pane.roster = Roster::from_welcome(welcome);
        self.sort_users();
        let event = voiced(self.voice.call.reset());
        self.link = Link::Online;
        self.composer_note = None;
        let mut snap = self.push(Entry::System(format!(
            "Reconnected to {} as {}.",
            self.server, welcome.name
        )));
        snap |= self.relogged_history(welcome);
        (self.snap_if(snap), event)
    }

    fn snap_if(&self, snap: bool) -> Task<Message> {
        if snap {
            operation::snap_to_end(LIST)
        } else {
            Task::none()
        }
    }

    /// Applies a user action.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let message = match self.dms_update(message) {
            Ok(done) => return done,
            Err(message) => message,
        };
        match self.rooms_update(message) {
            Ok(done) => done,
            Err(message) => {
                let (task, event) = self.pane_update(message);
                (task, self.routed(event))
            }
        }
    }

    /// A user action in the shown room's pane, as the default room's.
    fn pane_update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::InputChanged(s) => {
                self.pane.input = s;
                report(None)
            }
            Message::Send => {
                if self.pane.input.trim().is_empty() {
                    return report(None);
                }
                if self.link != Link::Online {
                    self.composer_note = Some(
                        "Not connected: the message will be sendable once reconnected.".into(),
                    );
                    return report(None);
                }
                let reference = self.next_ref;
                self.next_ref += 1;
                let text = std::mem::take(&mut self.pane.input);
                self.composer_note = None;
                // Sending means reading the newest again.
                self.pane.window.jump_to_latest(self.pane.entries.len());
                (
                    operation::snap_to_end(LIST),
                    Some(Event::Net(Command::Chat { text, reference })),
                )
            }
            Message::Clear => {
                self.pane.input.clear();
                self.composer_note = None;
                (operation::focus(COMPOSER), None)
            }
            Message::Scrolled(viewport) => self.scrolled(
                viewport.content_bounds().height,
                viewport.bounds().height,
                viewport.absolute_offset().y,
            ),
            Message::ShowEarlier => {
                self.pane.keeper.prepending();
                self.pane.window.show_earlier();
                report(None)
            }
            Message::LoadEarlier => report(self.load_earlier()),
            Message::JumpToLatest => {
                self.pane.window.jump_to_latest(self.pane.entries.len());
                (operation::snap_to_end(LIST), None)
            }
            Message::PickFile => (
                Task::perform(background::pick_file(), |p| Message::Picked(p.flatten())),
                None,
            ),
            Message::Picked(Some(path)) => {
                self.path_input = None;
                self.offer(path)
            }
            Message::Picked(None) => {
                // Cancelled, or no dialog on this desktop: offer the field.
                self.path_input.get_or_insert_with(String::new);
                (operation::focus(PATH_INPUT), None)
            }
            Message::PathChanged(p) => {
                self.path_input = Some(p);
                report(None)
            }
            Message::SendPath => {
                let path = self.path_input.as_deref().unwrap_or("").trim().to_owned();
                if path.is_empty() {
                    return report(None);
                }
                self.path_input = None;
                self.offer(PathBuf::from(path))
            }
            Message::ClosePath => {
                self.path_input = None;
                report(None)
            }
            Message::Accept(transfer) => {
                self.files.requested(transfer);
                ask(Command::Accept {
                    transfer,
                    dir: self.downloads.clone(),
                })
            }
            Message::Decline(transfer) => {
                self.files.declined(transfer);
                ask(Command::Decline(transfer))
            }
            Message::Cancel(transfer) => ask(Command::Cancel(transfer)),
            Message::OpenFolder(id) => {
                let Some(files::FileState::Saved(path)) = self.files.get(id).map(|c| &c.state)
                else {
                    return report(None);
                };
                let dir = path
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."));
                let task = Task::perform(background::open_folder(dir), move |r| {
                    Message::Opened(id, r)
                });
                (task, None)
            }
            Message::Opened(id, result) => {
                self.files.note(id, result.err());
                report(None)
            }
            Message::Voice(voice::Message::Send) => {
                let Some(path) = self.voice.recorder.take() else {
                    return report(None);
                };
                let local = self.files.new_voice_upload(&path);
                self.voice.player.own_file(local, path.clone());
                let snap = self.push(Entry::File(local));
                let to = self.offer_target();
                (
                    self.snap_if(snap),
                    Some(Event::Net(Command::SendVoice { local, path, to })),
                )
            }
            Message::Copy(s) => (iced::clipboard::write(s), None),
            Message::Voice(voice::Message::Play(id)) => report(self.play(id)),
            Message::Voice(m) => {
                let (task, event) = self.voice.update(m);
                (task.map(Message::Voice), self.voice_routed(event))
            }
            // Taken by `rooms_update` before this.
            Message::ShowRoom(_)
            | Message::JoinInputChanged(_)
            | Message::JoinTyped
            | Message::Join(_)
            | Message::JoinPrivateToggled(_)
            | Message::InviteInputChanged(_)
            | Message::InviteTyped
            | Message::SetPrivate(_)
            | Message::Part(_)
            | Message::BrowseRooms
            | Message::CloseBrowse
            | Message::EditTopic
            | Message::TopicChanged(_)
            | Message::SaveTopic
            | Message::CancelTopic
            | Message::SelectMember(_)
            | Message::SelectChat(_)
            | Message::Deselect
            | Message::Moderate(_)
            | Message::DeleteChat
            | Message::ShowDm(_)
            | Message::MessageMember(_)
            | Message::DmStartChanged(_)
            | Message::DmStartTyped
            | Message::DmInputChanged(_)
            | Message::DmSend
            | Message::DmLoadEarlier => report(None),
        }
    }

    /// The list's viewport: `content` pixels of list, `visible` of them
    /// shown, scrolled `offset` pixels from the top. Follows the tail or
    /// not, loads more at the top, keeps the place after a prepend.
    fn scrolled(
        &mut self,
        content: f32,
        visible: f32,
        offset: f32,
    ) -> (Task<Message>, Option<Event>) {
        let viewed = self.pane.keeper.viewed(content, offset);
        if let Viewed::Restore(y) = viewed {
            let to = scrollable::AbsoluteOffset {
                x: None,
                y: Some(y),
            };
            return (operation::scroll_to(LIST, to), None);
        }
        let hidden = content - visible - offset;
        self.pane
            .window
            .scrolled(hidden.max(0.0), self.pane.entries.len());
        if viewed == Viewed::ReachedTop {
            return report(self.reached_top());
        }
        report(None)
    }

    /// The reader scrolled to the top of the list: draw the local entries
    /// above, or else ask the server for the previous page (one at a time,
    /// none once it said there is no more). Their place is kept.
    fn reached_top(&mut self) -> Option<Event> {
        if self.pane.window.hidden_above(self.pane.entries.len()) > 0 {
            self.pane.keeper.prepending();
            self.pane.window.show_earlier();
            None
        } else {
            self.load_earlier()
        }
    }

    /// Play the voice message of card `id`: our own file, the saved
    /// download, or accept (download) it first and play once saved.
    fn play(&mut self, id: CardId) -> Option<Event> {
        if !self.voice.ready() {
            return None;
        }
        let card = self.files.get(id)?;
        let player = &mut self.voice.player;
        if let Some(path) = player.own_path(id) {
            let path = path.clone();
            voiced(player.play(id, path))
        } else if let files::FileState::Saved(path) = &card.state {
            voiced(player.play(id, path.clone()))
        } else {
            let t = card.transfer?;
            match card.state {
                files::FileState::Requested | files::FileState::Downloading { .. } => {
                    player.play_after_download(id, t);
                    None
                }
                _ if card.can_accept() => {
                    self.files.requested(t);
                    player.play_after_download(id, t);
                    Some(Event::Net(Command::Accept {
                        transfer: t,
                        dir: self.downloads.clone(),
                    }))
                }
                _ => None,
            }
        }
    }

    /// Offer `path` to the room shown (or the member of the conversation
    /// shown): a card now, the command to the worker.
    fn offer(&mut self, path: PathBuf) -> (Task<Message>, Option<Event>) {
        let local = self.files.new_upload(&path);
        let snap = self.push(Entry::File(local));
        let to = self.offer_target();
        if let OfferTo::Member(name) = &to
            && let Some(conv) = self.dms.conversations.get_mut(name)
        {
            // The conversation shows lines only: the card (progress,
            // cancel) is in the room's list underneath.
            let file = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            conv.note = Some(format!(
                "{file} is offered to {name} alone; its card (progress, Cancel) is in the room's list."
            ));
        }
        (
            self.snap_if(snap),
            Some(Event::Net(Command::SendFile { local, path, to })),
        )
    }

    /// Who a file sent now goes to: the member of the conversation shown,
    /// else the room shown (docs/protocol.md 23.6, 25.4).
    fn offer_target(&self) -> OfferTo {
        if let Some(name) = &self.dms.shown {
            return OfferTo::Member(name.clone());
        }
        match &self.rooms.shown {
            Some(room) => OfferTo::Room(room.clone()),
            None => OfferTo::DefaultRoom,
        }
    }

    /// A voice control's work, with "join the call" addressed to the room
    /// shown (each room has its own call); the call the panel follows is
    /// then that room's.
    fn voice_routed(&mut self, event: Option<voice::Event>) -> Option<Event> {
        if event == Some(voice::Event::Server(crate::net::VoiceRequest::Join)) {
            self.call_room.clone_from(&self.rooms.shown);
            if let Some(room) = self.rooms.shown.clone() {
                return Some(Event::Net(Command::VoiceJoinIn(room)));
            }
        }
        voiced(event)
    }
}

#[cfg(test)]
mod tests;

//! The voice part of the room: the call and voice messages.
//!
//! The call as the server describes it (`voice_state`: who is in it, who
//! is muted) plus what the engine reports (who speaks, UDP or TCP, errors).
//! `update` never touches the network or the audio devices: messages for
//! the server and commands for the audio worker ([`crate::audio`]) are
//! queued and taken by the room, so this logic is tested without either.
//!
//! The call goes `Idle` → (Join) `Joining` → (`voice_joined`) `Starting`
//! (the worker opens the devices and binds the voice path) → (the worker
//! says so) `Live`. Leave, a refusal, a failed start and a lost chat
//! connection all end in `Idle`, the engine stopped.
//!
//! A voice message goes `Idle` → (Record) `Starting` → `Recording` →
//! (Stop, or the maximum length) `Stopping` → `Recorded` → Send (the room
//! offers the file with kind `voice`) or Discard → `Idle`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chatcore::protocol::ClientMessage;
use chatcore::protocol::voice::{CallMember, VoiceJoined, VoiceMute, VoiceState};
use chatvoice::{CallEvent, TransportKind};
use iced::widget::{button, column, container, mouse_area, row, text};
use iced::{Center, Element, Fill};

use crate::audio::{Command as AudioCommand, Event as AudioEvent};
use crate::screen::room::files::CardId;
use crate::theme;

/// Shown until the audio worker has checked the devices.
pub const PROBING: &str = "Checking the audio devices…";

/// Whether audio can be captured and played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// No audio (or not checked yet): the controls are disabled and this
    /// says why.
    Unavailable(String),
    /// Audio works: the input and output chosen open.
    Ready,
}

/// Where our side of the call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Not in the call.
    Idle,
    /// `voice_join` sent, waiting for `voice_joined`.
    Joining,
    /// The server let us in; the engine opens the devices and the voice path.
    Starting,
    /// Audio flows over this transport.
    Live(TransportKind),
}

/// Where the voice message being made stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recording {
    /// Nothing recorded.
    Idle,
    /// Asked the worker to start.
    Starting,
    /// Recording; this long so far.
    Recording(Duration),
    /// Asked the worker to finish the file.
    Stopping(Duration),
    /// A finished message waiting for Send or Discard.
    Recorded {
        /// The Ogg Opus file.
        path: PathBuf,
        /// Its length.
        duration: Duration,
        /// It stopped by itself at the maximum length.
        reached_limit: bool,
    },
}

/// Which voice message plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playback {
    /// None.
    Idle,
    /// Downloading this card's file first, then it plays.
    Fetching(CardId),
    /// Asked the worker to play this card.
    Starting(CardId),
    /// This card plays.
    Playing(CardId),
}

impl Playback {
    /// The card playing (or about to), if any.
    pub fn card(self) -> Option<CardId> {
        match self {
            Self::Idle => None,
            Self::Fetching(c) | Self::Starting(c) | Self::Playing(c) => Some(c),
        }
    }
}

/// What the call and the voice messages look like from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// The audio engine's state; decides whether the controls work.
    pub engine: Engine,
    /// The chat server's `host:port`: the voice port is on the same host.
    pub server: String,
    /// Everyone in the call (from the latest `voice_state`), joining order.
    pub members: Vec<CallMember>,
    /// Whether the server lists us in the call.
    pub joined: bool,
    /// Our side of the call, engine included.
    pub call: Call,
    /// A `voice_state` listed us during this call: a later one without us
    /// means the server ended our membership (the engine must stop too).
    listed: bool,
    /// Whether we muted ourselves.
    pub muted: bool,
    /// Push-to-talk instead of voice activation: the microphone is sent
    /// only while "Hold to talk" is held (for noisy rooms).
    pub push_to_talk: bool,
    /// "Hold to talk" is held down.
    pub talking: bool,
    /// The last refusal or problem of the call, shown under the controls.
    pub note: Option<String>,
    /// What the server answered our `voice_join` with (session, token,
    /// port): what the engine needs to open the voice path.
    pub path: Option<VoiceJoined>,
    /// Sessions heard speaking right now (ours from the VAD), from the
    /// engine's `Speaking` events; the user list marks them.
    pub speaking: HashSet<u64>,
    /// The voice message being made.
    pub recording: Recording,
    /// The last recording problem, shown under the record controls.
    pub record_note: Option<String>,
    /// The voice message playing.
    pub playback: Playback,
    /// The last playback problem and the card it is about.
    pub play_note: Option<(CardId, String)>,
    /// Offers being downloaded because Play was pressed: transfer -> card.
    fetching: HashMap<u64, CardId>,
    /// Our own sent voice messages' files, so they can be played too.
    own_files: HashMap<CardId, PathBuf>,
    /// Messages for the server, taken by the room.
    net_out: Vec<ClientMessage>,
    /// Commands for the audio worker, taken by the room.
    audio_out: Vec<AudioCommand>,
}

impl Default for Voice {
    fn default() -> Self {
        Self {
            engine: Engine::Unavailable(PROBING.to_owned()),
            server: String::new(),
            members: Vec::new(),
            joined: false,
            call: Call::Idle,
            listed: false,
            muted: false,
            push_to_talk: false,
            talking: false,
            note: None,
            path: None,
            speaking: HashSet::new(),
            recording: Recording::Idle,
            record_note: None,
            playback: Playback::Idle,
            play_note: None,
            fetching: HashMap::new(),
            own_files: HashMap::new(),
            net_out: Vec::new(),
            audio_out: Vec::new(),
        }
    }
}

/// The voice controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Join the call.
    Join,
    /// Leave the call.
    Leave,
    /// Mute or unmute ourselves.
    ToggleMute,
    /// Switch between voice activation and push-to-talk.
    TogglePushToTalk,
    /// The "Hold to talk" button was pressed (`true`) or let go.
    Talk(bool),
    /// Start recording a voice message.
    Record,
    /// Stop recording (the message is kept for Send or Discard).
    StopRecording,
    /// Offer the recorded message to the room (the room does it).
    Send,
    /// Throw the recording away.
    Discard,
    /// Play the voice message of this card (the room finds its file).
    Play(CardId),
    /// Stop the playback.
    StopPlaying,
}

/// `m:ss`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

impl Voice {
    /// No call yet, for the chat server at `server` (`host:port`).
    pub fn new(server: &str) -> Self {
        Self {
            server: server.to_owned(),
            ..Self::default()
        }
    }

    /// Whether the engine works.
    pub fn ready(&self) -> bool {
        self.engine == Engine::Ready
    }

    /// The messages queued for the server, emptied.
    pub fn take_net(&mut self) -> Vec<ClientMessage> {
        std::mem::take(&mut self.net_out)
    }

    /// The commands queued for the audio worker, emptied.
    pub fn take_audio(&mut self) -> Vec<AudioCommand> {
        std::mem::take(&mut self.audio_out)
    }

    /// The call changed.
    pub fn apply_state(&mut self, state: &VoiceState, me: u64) {
        self.members.clone_from(&state.members);
        let mine = self.members.iter().find(|m| m.session == me);
        self.joined = mine.is_some();
        if let Some(m) = mine {
            self.muted = m.muted;
        }
        let in_call = matches!(self.call, Call::Starting | Call::Live(_));
        if in_call && self.joined {
            self.listed = true;
        } else if in_call && self.listed {
            // The server ended our membership (e.g. the voice path went
            // silent): the engine has nothing to talk to any more.
            self.end_call(Some("You are no longer in the call (the server ended it)."));
        }
        self.speaking
            .retain(|s| state.members.iter().any(|m| m.session == *s));
    }

    /// The server let us into the call (`voice_joined`): start the engine.
    pub fn joined(&mut self, joined: &VoiceJoined) {
        self.joined = true;
        self.note = None;
        self.path = Some(joined.clone());
        if self.call == Call::Joining {
            self.call = Call::Starting;
            self.listed = false;
            self.audio_out.push(AudioCommand::StartCall {
                joined: joined.clone(),
                server: self.server.clone(),
            });
        }
    }

    /// The server refused a voice request (e.g. `voice_unavailable`).
    pub fn refused(&mut self, message: &str) {
        self.joined = false;
        if self.call != Call::Idle {
            self.end_call(None);
        }
        self.note = Some(message.to_owned());
    }

    /// Stops the engine and forgets the call on our side.
    fn end_call(&mut self, why: Option<&str>) {
        if matches!(self.call, Call::Starting | Call::Live(_)) {
            self.audio_out.push(AudioCommand::StopCall);
        }
        self.call = Call::Idle;
        self.listed = false;
        self.speaking.clear();
        self.path = None;
        self.note = why.map(str::to_owned);
    }

    /// The chat connection dropped: the call ends (after a reconnection the
    /// server sends the call state again; join again to talk).
    pub fn reset(&mut self) {
        if self.call != Call::Idle {
            self.end_call(Some(
                "The call ended: the connection to the server was lost.",
            ));
        }
        self.members.clear();
        self.joined = false;
        self.muted = false;
        self.path = None;
        self.speaking.clear();
    }

    /// The call member with this session, if in the call.
    pub fn member(&self, session: u64) -> Option<&CallMember> {
        self.members.iter().find(|m| m.session == session)
    }

    /// Remembers our own sent message's file, so its card can play it.
    pub fn own_file(&mut self, card: CardId, path: PathBuf) {
        self.own_files.insert(card, path);
    }

    /// Our own file for this card, if we sent it.
    pub fn own_path(&self, card: CardId) -> Option<&PathBuf> {
        self.own_files.get(&card)
    }

    /// The finished recording to send; the controls go back to Record.
    pub fn take_recording(&mut self) -> Option<PathBuf> {
        match std::mem::replace(&mut self.recording, Recording::Idle) {
            Recording::Recorded { path, .. } => Some(path),
            other => {
                self.recording = other;
                None
            }
        }
    }

    /// Play `path` for `card` now.
    pub fn play(&mut self, card: CardId, path: PathBuf) {
        self.play_note = None;
        self.playback = Playback::Starting(card);
        self.audio_out.push(AudioCommand::Play { card, path });
    }

    /// Play `card` once its offer `transfer` is downloaded.
    pub fn play_after_download(&mut self, card: CardId, transfer: u64) {
        self.play_note = None;
        self.fetching.insert(transfer, card);
        self.playback = Playback::Fetching(card);
    }

    /// A download finished: plays it if Play asked for it.
    pub fn downloaded(&mut self, transfer: u64, path: PathBuf) {
        if let Some(card) = self.fetching.remove(&transfer)
            && self.playback == Playback::Fetching(card)
        {
            self.play(card, path);
        }
    }

    /// A download that Play asked for failed or was cancelled.
    pub fn fetch_failed(&mut self, transfer: u64) {
        if let Some(card) = self.fetching.remove(&transfer)
            && self.playback == Playback::Fetching(card)
        {
            self.playback = Playback::Idle;
        }
    }

    /// Applies an event of the audio worker.
    pub fn on_audio(&mut self, event: AudioEvent) {
        match event {
            AudioEvent::Ready(_) => {}
            AudioEvent::Probed(Ok(())) => self.engine = Engine::Ready,
            AudioEvent::Probed(Err(why)) => self.engine = Engine::Unavailable(why),
            AudioEvent::CallStarted(kind) => {
                if self.call == Call::Starting {
                    self.call = Call::Live(kind);
                    if self.muted {
                        self.audio_out.push(AudioCommand::Mute(true));
                    }
                }
            }
            AudioEvent::CallFailed(why) => {
                if self.call != Call::Idle {
                    self.call = Call::Idle;
                    self.listed = false;
                    self.path = None;
                    self.speaking.clear();
                    self.net_out.push(ClientMessage::VoiceLeave);
                    self.note = Some(format!("Could not start the call: {why}"));
                }
            }
            AudioEvent::Call(ev) => {
                if !matches!(self.call, Call::Live(_)) {
                    return;
                }
                match ev {
                    CallEvent::Speaking { session, active } => {
                        if active {
                            self.speaking.insert(session);
                        } else {
                            self.speaking.remove(&session);
                        }
                    }
                    CallEvent::InputEnded => {
                        self.note = Some("The microphone stopped; still listening.".to_owned());
                    }
                    CallEvent::Error(e) => self.note = Some(format!("Call problem: {e}")),
                    CallEvent::Transport(kind) => self.call = Call::Live(kind),
                    CallEvent::Stats(_) => {}
                }
            }
            AudioEvent::Recording(elapsed) => {
                if matches!(
                    self.recording,
                    Recording::Starting | Recording::Recording(_)
                ) {
                    self.recording = Recording::Recording(elapsed);
                }
            }
            AudioEvent::Recorded {
                path,
                duration,
                reached_limit,
            } => {
                self.recording = Recording::Recorded {
                    path,
                    duration,
                    reached_limit,
                };
            }
            AudioEvent::RecordFailed(why) => {
                self.recording = Recording::Idle;
                self.record_note = Some(format!("Recording failed: {why}"));
            }
            AudioEvent::Playing(card) => {
                if self.playback == Playback::Starting(card) {
                    self.playback = Playback::Playing(card);
                }
            }
            AudioEvent::PlayEnded(card) => {
                if self.playback.card() == Some(card) {
                    self.playback = Playback::Idle;
                }
            }
            AudioEvent::PlayFailed(card, why) => {
                if self.playback.card() == Some(card) {
                    self.playback = Playback::Idle;
                }
                self.play_note = Some((card, format!("Cannot play: {why}")));
            }
        }
    }

    /// Applies a control. `Send` and `Play` need the file cards: the room
    /// handles them (see [`Voice::take_recording`], [`Voice::play`]).
    pub fn update(&mut self, message: Message) {
        if !self.ready() {
            return;
        }
        match message {
            Message::Join => {
                if self.call == Call::Idle {
                    self.call = Call::Joining;
                    self.note = None;
                    self.net_out.push(ClientMessage::VoiceJoin);
                }
            }
            Message::Leave => {
                if self.call != Call::Idle || self.joined {
                    self.end_call(None);
                    self.joined = false;
                    self.net_out.push(ClientMessage::VoiceLeave);
                }
            }
            Message::ToggleMute => {
                if self.call != Call::Idle || self.joined {
                    self.muted = !self.muted;
                    self.audio_out.push(AudioCommand::Mute(self.muted));
                    self.net_out
                        .push(ClientMessage::VoiceMute(VoiceMute { muted: self.muted }));
                }
            }
            Message::TogglePushToTalk => {
                self.push_to_talk = !self.push_to_talk;
                self.talking = false;
                self.audio_out
                    .push(AudioCommand::PushToTalk(self.push_to_talk));
            }
            Message::Talk(held) => {
                if self.push_to_talk && held != self.talking {
                    self.talking = held;
                    self.audio_out.push(AudioCommand::Talk(held));
                }
            }
            Message::Record => {
                if matches!(self.recording, Recording::Idle) {
                    self.record_note = None;
                    self.recording = Recording::Starting;
                    self.audio_out.push(AudioCommand::Record);
                }
            }
            Message::StopRecording => {
                if let Recording::Recording(d) = self.recording {
                    self.recording = Recording::Stopping(d);
                    self.audio_out.push(AudioCommand::StopRecording);
                }
            }
            Message::Discard => {
                if !matches!(self.recording, Recording::Idle) {
                    self.recording = Recording::Idle;
                    self.audio_out.push(AudioCommand::Discard);
                }
            }
            Message::StopPlaying => match self.playback {
                Playback::Idle => {}
                Playback::Fetching(_) => self.playback = Playback::Idle,
                Playback::Starting(_) | Playback::Playing(_) => {
                    self.audio_out.push(AudioCommand::StopPlaying);
                }
            },
            Message::Send | Message::Play(_) => {}
        }
    }

    /// The controls for the sidebar.
    pub fn view(&self) -> Element<'_, Message> {
        let ready = self.ready();
        let enabled = |m: Message| ready.then_some(m);
        let in_call = self.call != Call::Idle || self.joined;
        let join = if in_call {
            button(text("Leave call").size(14)).on_press_maybe(enabled(Message::Leave))
        } else {
            button(text("Join call").size(14)).on_press_maybe(enabled(Message::Join))
        };
        let mute_label = if self.muted { "Unmute" } else { "Mute" };
        let mute = button(text(mute_label).size(14))
            .style(theme::quiet_button)
            .on_press_maybe(enabled(Message::ToggleMute).filter(|_| in_call));
        let count = match self.members.len() {
            0 => "Nobody in the call".to_owned(),
            1 => "1 in the call".to_owned(),
            n => format!("{n} in the call"),
        };
        let status = match self.call {
            Call::Idle => None,
            Call::Joining => Some(("Joining the call…".to_owned(), theme::MUTED)),
            Call::Starting => Some(("Starting the audio…".to_owned(), theme::MUTED)),
            Call::Live(kind) => {
                let via = match kind {
                    TransportKind::Udp => "UDP",
                    TransportKind::Tcp => "TCP (UDP blocked)",
                };
                Some((format!("You are in the call, voice over {via}."), theme::OK))
            }
        };
        let mut col = column![
            text("Voice").size(16),
            text(count).size(13).color(theme::MUTED)
        ]
        .spacing(8)
        .width(Fill);
        if let Some((status, color)) = status {
            col = col.push(text(status).size(13).color(color));
        }
        let ptt_label = if self.push_to_talk {
            "Push to talk: on"
        } else {
            "Push to talk: off"
        };
        let ptt = button(text(ptt_label).size(14))
            .style(theme::quiet_button)
            .on_press_maybe(enabled(Message::TogglePushToTalk));
        col = col.push(row![join, mute].spacing(6));
        col = col.push(ptt);
        if self.push_to_talk && in_call {
            let label = if self.talking {
                "Talking…"
            } else {
                "Hold to talk"
            };
            // A mouse area, not a button: a button only reports the click,
            // push-to-talk needs the press and the release.
            let hold = mouse_area(
                container(text(label).size(14))
                    .padding([6, 12])
                    .style(theme::hold_to_talk(self.talking)),
            )
            .on_press(Message::Talk(true))
            .on_release(Message::Talk(false));
            col = col.push(hold);
        }
        if let Some(note) = &self.note {
            col = col.push(text(note.as_str()).size(12).color(theme::WARN));
        }
        col = col.push(self.recorder_view(ready));
        if let Engine::Unavailable(why) = &self.engine {
            col = col.push(text(why.as_str()).size(12).color(theme::MUTED));
        }
        col.into()
    }

    fn recorder_view(&self, ready: bool) -> Element<'_, Message> {
        let max = Duration::from_secs(u64::from(chatvoice::message::MAX_MESSAGE_SECS));
        let small = |s: String, c| text(s).size(13).color(c);
        let mut col = column![text("Voice message").size(14)].spacing(6);
        col = match &self.recording {
            Recording::Idle => col.push(
                button(text("● Record").size(14))
                    .style(theme::quiet_button)
                    .on_press_maybe(ready.then_some(Message::Record)),
            ),
            Recording::Starting => col.push(small("Starting…".into(), theme::MUTED)),
            Recording::Recording(d) => col.push(
                row![
                    small(
                        format!("● Recording {} / {}", clock(*d), clock(max)),
                        theme::ERROR
                    ),
                    button(text("Stop").size(14)).on_press(Message::StopRecording),
                ]
                .spacing(8)
                .align_y(Center),
            ),
            Recording::Stopping(d) => {
                col.push(small(format!("Finishing {}…", clock(*d)), theme::MUTED))
            }
            Recording::Recorded {
                duration,
                reached_limit,
                ..
            } => {
                let what = if *reached_limit {
                    format!("{} recorded (the maximum).", clock(*duration))
                } else {
                    format!("{} recorded.", clock(*duration))
                };
                col.push(small(what, theme::OK)).push(
                    row![
                        button(text("Send").size(14)).on_press(Message::Send),
                        button(text("Discard").size(14))
                            .style(theme::quiet_button)
                            .on_press(Message::Discard),
                    ]
                    .spacing(6),
                )
            }
        };
        if let Some(note) = &self.record_note {
            col = col.push(text(note.as_str()).size(12).color(theme::ERROR));
        }
        col.into()
    }
}

/// What the Play control of a voice card looks like.
pub fn play_state(voice: &Voice, card: CardId) -> (bool, Option<String>) {
    let playing = voice.playback.card() == Some(card);
    let note = match voice.playback {
        Playback::Fetching(c) if c == card => Some("Downloading to play…".to_owned()),
        _ => voice
            .play_note
            .as_ref()
            .filter(|(c, _)| *c == card)
            .map(|(_, n)| n.clone()),
    };
    (playing, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(session: u64, name: &str, muted: bool) -> CallMember {
        CallMember {
            session,
            name: name.into(),
            muted,
            connected: true,
        }
    }

    fn joined_msg(session: u64) -> VoiceJoined {
        VoiceJoined {
            session,
            token: vec![7; 16],
            port: 16791,
            keepalive_ms: 5000,
            timeout_ms: 15000,
        }
    }

    fn ready() -> Voice {
        let mut v = Voice::new("127.0.0.1:16790");
        v.on_audio(AudioEvent::Probed(Ok(())));
        v
    }

    fn live(me: u64) -> Voice {
        let mut v = ready();
        v.update(Message::Join);
        v.joined(&joined_msg(me));
        v.on_audio(AudioEvent::CallStarted(TransportKind::Udp));
        let _ = (v.take_net(), v.take_audio());
        v
    }

    #[test]
    fn voice_state_marks_members_and_our_own_mute() {
        let mut v = Voice::default();
        let state = VoiceState {
            ts: 0,
            members: vec![member(1, "alice", false), member(2, "bob", true)],
        };
        v.apply_state(&state, 2);
        assert!(v.joined);
        assert!(v.muted);
        assert_eq!(v.member(1).map(|m| m.name.as_str()), Some("alice"));
        assert!(v.member(3).is_none());
    }

    #[test]
    fn an_unavailable_engine_disables_everything_and_says_why() {
        let mut v = Voice::default();
        v.on_audio(AudioEvent::Probed(Err(
            "No microphone: no default device".into()
        )));
        assert_eq!(
            v.engine,
            Engine::Unavailable("No microphone: no default device".into())
        );
        for m in [Message::Join, Message::Record, Message::ToggleMute] {
            v.update(m);
        }
        assert!(v.take_net().is_empty());
        assert!(v.take_audio().is_empty());
        assert_eq!(v.call, Call::Idle);
        assert_eq!(v.recording, Recording::Idle);
    }

    #[test]
    fn join_then_joined_starts_the_engine_then_the_call_is_live() {
        let mut v = ready();
        v.update(Message::Join);
        assert_eq!(v.call, Call::Joining);
        assert_eq!(v.take_net(), vec![ClientMessage::VoiceJoin]);
        v.joined(&joined_msg(5));
        assert_eq!(v.call, Call::Starting);
        assert_eq!(
            v.take_audio(),
            vec![AudioCommand::StartCall {
                joined: joined_msg(5),
                server: "127.0.0.1:16790".into()
            }]
        );
        v.on_audio(AudioEvent::CallStarted(TransportKind::Udp));
        assert_eq!(v.call, Call::Live(TransportKind::Udp));
        v.on_audio(AudioEvent::Call(CallEvent::Speaking {
            session: 9,
            active: true,
        }));
        assert!(v.speaking.contains(&9));
        v.on_audio(AudioEvent::Call(CallEvent::Speaking {
            session: 9,
            active: false,
        }));
        assert!(v.speaking.is_empty());
    }

    #[test]
    fn mute_tells_the_engine_and_the_server() {
        let mut v = live(5);
        v.update(Message::ToggleMute);
        assert!(v.muted);
        assert_eq!(v.take_audio(), vec![AudioCommand::Mute(true)]);
        assert_eq!(
            v.take_net(),
            vec![ClientMessage::VoiceMute(VoiceMute { muted: true })]
        );
        v.update(Message::ToggleMute);
        assert_eq!(
            v.take_net(),
            vec![ClientMessage::VoiceMute(VoiceMute { muted: false })]
        );
    }

    #[test]
    fn push_to_talk_sends_only_while_held_and_tells_nobody_but_the_engine() {
        let mut v = live(5);
        // Holding before push-to-talk is on does nothing.
        v.update(Message::Talk(true));
        assert!(v.take_audio().is_empty());
        v.update(Message::TogglePushToTalk);
        assert!(v.push_to_talk);
        assert_eq!(v.take_audio(), vec![AudioCommand::PushToTalk(true)]);
        v.update(Message::Talk(true));
        v.update(Message::Talk(true)); // a repeat press is not sent twice
        v.update(Message::Talk(false));
        assert_eq!(
            v.take_audio(),
            vec![AudioCommand::Talk(true), AudioCommand::Talk(false)]
        );
        v.update(Message::Talk(true));
        v.update(Message::TogglePushToTalk);
        assert!(!v.push_to_talk && !v.talking, "switching back lets go");
        assert_eq!(
            v.take_audio(),
            vec![AudioCommand::Talk(true), AudioCommand::PushToTalk(false)]
        );
        assert!(v.take_net().is_empty(), "the server is not involved");
    }

    #[test]
    fn leave_stops_the_engine_and_tells_the_server() {
        let mut v = live(5);
        v.speaking.insert(5);
        v.update(Message::Leave);
        assert_eq!(v.call, Call::Idle);
        assert!(v.speaking.is_empty());
        assert_eq!(v.take_audio(), vec![AudioCommand::StopCall]);
        assert_eq!(v.take_net(), vec![ClientMessage::VoiceLeave]);
    }

    #[test]
    fn a_failed_start_leaves_the_call_and_says_why() {
        let mut v = ready();
        v.update(Message::Join);
        v.joined(&joined_msg(5));
        let _ = (v.take_net(), v.take_audio());
        v.on_audio(AudioEvent::CallFailed("voice socket: refused".into()));
        assert_eq!(v.call, Call::Idle);
        assert_eq!(v.take_net(), vec![ClientMessage::VoiceLeave]);
        assert!(v.note.as_deref().is_some_and(|n| n.contains("refused")));
    }

    #[test]
    fn losing_the_chat_connection_ends_the_call_and_shows_it() {
        let mut v = live(5);
        v.reset();
        assert_eq!(v.call, Call::Idle);
        assert_eq!(v.take_audio(), vec![AudioCommand::StopCall]);
        assert!(v.note.as_deref().is_some_and(|n| n.contains("connection")));
    }

    #[test]
    fn the_server_dropping_us_from_the_call_stops_the_engine() {
        let mut v = live(5);
        let with = VoiceState {
            ts: 0,
            members: vec![member(5, "me", false)],
        };
        v.apply_state(&with, 5);
        assert!(v.take_audio().is_empty());
        v.apply_state(
            &VoiceState {
                ts: 1,
                members: vec![],
            },
            5,
        );
        assert_eq!(v.call, Call::Idle);
        assert_eq!(v.take_audio(), vec![AudioCommand::StopCall]);
    }

    #[test]
    fn record_stop_then_send_or_discard() {
        let mut v = ready();
        v.update(Message::Record);
        assert_eq!(v.recording, Recording::Starting);
        assert_eq!(v.take_audio(), vec![AudioCommand::Record]);
        v.on_audio(AudioEvent::Recording(Duration::from_secs(3)));
        assert_eq!(v.recording, Recording::Recording(Duration::from_secs(3)));
        v.update(Message::StopRecording);
        assert_eq!(v.take_audio(), vec![AudioCommand::StopRecording]);
        v.on_audio(AudioEvent::Recorded {
            path: "/tmp/v.ogg".into(),
            duration: Duration::from_secs(3),
            reached_limit: false,
        });
        assert_eq!(v.take_recording(), Some(PathBuf::from("/tmp/v.ogg")));
        assert_eq!(v.recording, Recording::Idle);
        // Discard instead.
        v.update(Message::Record);
        v.on_audio(AudioEvent::Recording(Duration::from_secs(1)));
        let _ = v.take_audio();
        v.update(Message::Discard);
        assert_eq!(v.recording, Recording::Idle);
        assert_eq!(v.take_audio(), vec![AudioCommand::Discard]);
        assert_eq!(clock(Duration::from_secs(125)), "2:05");
    }

    #[test]
    fn play_downloads_first_then_plays_then_stops() {
        let mut v = ready();
        v.play_after_download(3, 40);
        assert_eq!(play_state(&v, 3).1.as_deref(), Some("Downloading to play…"));
        v.downloaded(40, "dl/v.ogg".into());
        assert_eq!(v.playback, Playback::Starting(3));
        assert_eq!(
            v.take_audio(),
            vec![AudioCommand::Play {
                card: 3,
                path: "dl/v.ogg".into()
            }]
        );
        v.on_audio(AudioEvent::Playing(3));
        assert!(play_state(&v, 3).0);
        v.update(Message::StopPlaying);
        assert_eq!(v.take_audio(), vec![AudioCommand::StopPlaying]);
        v.on_audio(AudioEvent::PlayEnded(3));
        assert_eq!(v.playback, Playback::Idle);
        v.play(4, "x.ogg".into());
        v.on_audio(AudioEvent::PlayFailed(
            4,
            "not a playable Ogg Opus file".into(),
        ));
        assert!(
            play_state(&v, 4)
                .1
                .is_some_and(|n| n.contains("Cannot play"))
        );
    }
}

//! The voice part of the room, kept apart so the audio engine can be wired
//! in later without touching the rest.
//!
//! Today it shows the call as the server describes it (`voice_state`: who
//! is in the call, who is muted) and puts the controls in place, disabled,
//! with the reason shown. The engine arrives with the `chatvoice` crate;
//! [`Engine::Ready`] is where it will plug in.

use chatcore::protocol::ClientMessage;
use std::collections::HashSet;

use chatcore::protocol::voice::{CallMember, VoiceJoined, VoiceMute, VoiceState};
use iced::widget::{button, column, row, text};
use iced::{Element, Fill};

use crate::theme;

/// Why voice controls are disabled while no engine is wired in.
pub const NO_ENGINE: &str = "Voice engine not connected yet.";

/// Whether audio can be captured and played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// No audio: the controls are disabled and this says why.
    Unavailable(String),
    /// Audio works (set by the voice phase once the engine starts).
    Ready,
}

/// What the call looks like from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// The audio engine's state; decides whether the controls work.
    pub engine: Engine,
    /// Everyone in the call (from the latest `voice_state`), joining order.
    pub members: Vec<CallMember>,
    /// Whether we asked to be in the call (and were not refused).
    pub joined: bool,
    /// Whether we muted ourselves.
    pub muted: bool,
    /// The last refusal or problem, shown under the controls.
    pub note: Option<String>,
    /// What the server answered our `voice_join` with (session, token,
    /// port): what the engine needs to open the voice path.
    pub path: Option<VoiceJoined>,
    /// Sessions heard speaking right now; the engine fills it, the user
    /// list marks them.
    pub speaking: HashSet<u64>,
}

impl Default for Voice {
    fn default() -> Self {
        Self {
            engine: Engine::Unavailable(NO_ENGINE.to_owned()),
            members: Vec::new(),
            joined: false,
            muted: false,
            note: None,
            path: None,
            speaking: HashSet::new(),
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
    /// Start recording a voice message.
    Record,
}

impl Voice {
    /// The call changed.
    pub fn apply_state(&mut self, state: &VoiceState, me: u64) {
        self.members.clone_from(&state.members);
        let mine = self.members.iter().find(|m| m.session == me);
        self.joined = mine.is_some();
        if let Some(m) = mine {
            self.muted = m.muted;
        }
    }

    /// The server let us into the call (`voice_joined`).
    pub fn joined(&mut self, joined: &VoiceJoined) {
        self.joined = true;
        self.note = None;
        self.path = Some(joined.clone());
    }

    /// The server refused a voice request (e.g. `voice_unavailable`).
    pub fn refused(&mut self, message: &str) {
        self.joined = false;
        self.note = Some(message.to_owned());
    }

    /// Forget the call (after a reconnection the server sends it again).
    pub fn reset(&mut self) {
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

    /// Applies a control; returns the message to send to the server, if any.
    /// Without an engine nothing is sent (the buttons are disabled anyway).
    pub fn update(&mut self, message: Message) -> Option<ClientMessage> {
        if self.engine != Engine::Ready {
            return None;
        }
        match message {
            Message::Join => Some(ClientMessage::VoiceJoin),
            Message::Leave => Some(ClientMessage::VoiceLeave),
            Message::ToggleMute => Some(ClientMessage::VoiceMute(VoiceMute { muted: !self.muted })),
            Message::Record => None,
        }
    }

    /// The controls for the sidebar.
    pub fn view(&self) -> Element<'_, Message> {
        let ready = self.engine == Engine::Ready;
        let enabled = |m: Message| ready.then_some(m);
        let join = if self.joined {
            button(text("Leave call").size(14)).on_press_maybe(enabled(Message::Leave))
        } else {
            button(text("Join call").size(14)).on_press_maybe(enabled(Message::Join))
        };
        let mute_label = if self.muted { "Unmute" } else { "Mute" };
        let mute = button(text(mute_label).size(14))
            .style(theme::quiet_button)
            .on_press_maybe(enabled(Message::ToggleMute).filter(|_| self.joined));
        let record = button(text("Record").size(14))
            .style(theme::quiet_button)
            .on_press_maybe(enabled(Message::Record));
        let in_call = match self.members.len() {
            0 => "Nobody in the call".to_owned(),
            1 => "1 in the call".to_owned(),
            n => format!("{n} in the call"),
        };
        let mut col = column![
            text("Voice").size(16),
            text(in_call).size(13).color(theme::MUTED),
            row![join, mute, record].spacing(6),
        ]
        .spacing(8)
        .width(Fill);
        if let Engine::Unavailable(why) = &self.engine {
            col = col.push(text(why.as_str()).size(12).color(theme::MUTED));
        }
        if let Some(note) = &self.note {
            col = col.push(text(note.as_str()).size(12).color(theme::WARN));
        }
        col.into()
    }
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
    fn without_an_engine_the_controls_send_nothing() {
        let mut v = Voice::default();
        assert_eq!(v.update(Message::Join), None);
        assert_eq!(v.update(Message::ToggleMute), None);
        v.engine = Engine::Ready;
        assert_eq!(v.update(Message::Join), Some(ClientMessage::VoiceJoin));
    }
}

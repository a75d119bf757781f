//! The voice panel of the room: the call and voice messages, each a state
//! machine of its own file, behind one set of controls.
//!
//! - [`call`]: the call (join, the engine's start, mute, push-to-talk,
//!   who speaks, the end of the call however it comes).
//! - [`recorder`]: the voice message being made.
//! - [`playback`]: the voice message playing.
//! - [`event`]: what they report upward: requests for the server and
//!   commands for the audio engine.
//! - `view`: the controls in the sidebar.
//!
//! Nothing here touches the network or the audio devices: every step
//! returns the [`Event`] it needs done, the room passes it on and the
//! application hands it to the workers, so this logic is tested without
//! either. Until the audio worker's device probe says audio works
//! ([`Engine::Ready`]), the controls are inert.

pub mod call;
pub mod event;
pub mod playback;
pub mod recorder;
mod view;

use chatcore::protocol::voice::CallMember;
use iced::Task;

pub use call::{Call, Stage, Switches};
pub use event::Event;
pub use playback::{Playback, Player};
pub use recorder::{Recorder, Recording, clock};

use crate::audio::Event as AudioEvent;
use crate::screen::room::files::CardId;

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

/// The push-to-talk key and whether it works outside the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PttKeyStatus {
    /// The key's name ("F8"); `None` when the user turned the key off.
    pub key: Option<String>,
    /// Whether the global grab worked: `None` until it says, `Err` with
    /// the sentence to show (the key then works in the window only).
    pub global: Option<Result<(), String>>,
}

/// What the call and the voice messages look like from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// The audio engine's state; decides whether the controls work.
    pub engine: Engine,
    /// The call.
    pub call: Call,
    /// The voice message being made.
    pub recorder: Recorder,
    /// The voice message playing.
    pub player: Player,
    /// The push-to-talk key, shown under the push-to-talk switch.
    pub ptt_key: PttKeyStatus,
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
    /// The "Hold to talk" button or the push-to-talk key was pressed
    /// (`true`) or let go.
    Talk(bool),
    /// Noise suppression on or off.
    ToggleNoiseSuppression,
    /// Echo cancellation on or off.
    ToggleEchoCancellation,
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

impl Voice {
    /// No call yet, for the chat server at `server` (`host:port`).
    pub fn new(server: &str) -> Self {
        Self {
            engine: Engine::Unavailable(PROBING.to_owned()),
            call: Call::new(server),
            recorder: Recorder::default(),
            player: Player::default(),
            ptt_key: PttKeyStatus::default(),
        }
    }

    /// Whether the engine works.
    pub fn ready(&self) -> bool {
        self.engine == Engine::Ready
    }

    /// The call member with this session, if in the call.
    pub fn member(&self, session: u64) -> Option<&CallMember> {
        self.call.member(session)
    }

    /// Applies a control. `Send` and `Play` need the file cards: the room
    /// handles them (see [`Recorder::take`], [`Player::play`]).
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        if !self.ready() {
            return (Task::none(), None);
        }
        let event = match message {
            Message::Join => self.call.join(),
            Message::Leave => self.call.leave(),
            Message::ToggleMute => self.call.toggle_mute(),
            Message::TogglePushToTalk => self.call.toggle_push_to_talk(),
            Message::Talk(held) => self.call.talk(held),
            Message::ToggleNoiseSuppression => self.call.toggle_noise_suppression(),
            Message::ToggleEchoCancellation => self.call.toggle_echo_cancellation(),
            Message::Record => self.recorder.record(),
            Message::StopRecording => self.recorder.stop(),
            Message::Discard => self.recorder.discard(),
            Message::StopPlaying => self.player.stop(),
            Message::Send | Message::Play(_) => None,
        };
        (Task::none(), event)
    }

    /// Applies an event of the audio worker.
    pub fn on_audio(&mut self, event: AudioEvent) -> Option<Event> {
        match event {
            AudioEvent::Ready(_) => None,
            AudioEvent::Probed(Ok(())) => {
                self.engine = Engine::Ready;
                None
            }
            AudioEvent::Probed(Err(why)) => {
                self.engine = Engine::Unavailable(why);
                None
            }
            AudioEvent::CallStarted(kind) => self.call.started(kind),
            AudioEvent::CallFailed(why) => self.call.failed(&why),
            AudioEvent::Call(ev) => {
                self.call.on_call_event(ev);
                None
            }
            AudioEvent::Recording(elapsed) => {
                self.recorder.progress(elapsed);
                None
            }
            AudioEvent::Recorded {
                path,
                duration,
                reached_limit,
            } => {
                self.recorder.finished(path, duration, reached_limit);
                None
            }
            AudioEvent::RecordFailed(why) => {
                self.recorder.failed(&why);
                None
            }
            AudioEvent::Playing(clip) => {
                self.player.playing(clip);
                None
            }
            AudioEvent::PlayEnded(clip) => {
                self.player.ended(clip);
                None
            }
            AudioEvent::PlayFailed(clip, why) => {
                self.player.failed(clip, &why);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{ClipId, Command as AudioCommand};
    use crate::net::VoiceRequest;
    use chatvoice::TransportKind;

    fn ready() -> Voice {
        let mut v = Voice::new("127.0.0.1:16790");
        let _ = v.on_audio(AudioEvent::Probed(Ok(())));
        v
    }

    #[test]
    fn an_unavailable_engine_disables_everything_and_says_why() {
        let mut v = Voice::new("x:1");
        let _ = v.on_audio(AudioEvent::Probed(Err(
            "No microphone: no default device".into()
        )));
        assert_eq!(
            v.engine,
            Engine::Unavailable("No microphone: no default device".into())
        );
        for m in [Message::Join, Message::Record, Message::ToggleMute] {
            assert_eq!(v.update(m).1, None);
        }
        assert_eq!(v.call.stage, Stage::Idle);
        assert_eq!(v.recorder.state, Recording::Idle);
    }

    fn shows(v: &Voice, text: &str) -> bool {
        iced_test::simulator(v.view()).find(text).is_ok()
    }

    #[test]
    fn the_panel_shows_the_voice_path_the_engine_switched_to_last() {
        let mut v = ready();
        let _ = v.update(Message::Join);
        let _ = v.call.joined(&chatcore::protocol::voice::VoiceJoined {
            room: None,
            session: 5,
            token: vec![7; 16],
            epoch: 1,
            key: vec![3; 32],
            port: 16791,
            keepalive_ms: 5000,
            timeout_ms: 15000,
            max_bitrate: Some(64_000),
        });
        let _ = v.on_audio(AudioEvent::CallStarted(TransportKind::Udp));
        let udp = "You are in the call, voice over UDP.";
        let tcp = "You are in the call, voice over TCP (UDP is not getting through).";
        assert!(shows(&v, udp));
        // UDP stops mid-call: the engine falls back to TCP, then UDP works
        // again and it switches back; the panel follows every switch.
        for (kind, text) in [
            (TransportKind::Tcp, tcp),
            (TransportKind::Udp, udp),
            (TransportKind::Tcp, tcp),
        ] {
            let _ = v.on_audio(AudioEvent::Call(chatvoice::CallEvent::Transport(kind)));
            assert!(shows(&v, text), "{text}");
        }
    }

    #[test]
    fn controls_and_engine_events_reach_the_right_state_machine() {
        let mut v = ready();
        assert_eq!(
            v.update(Message::Join).1,
            Some(Event::Server(VoiceRequest::Join))
        );
        assert_eq!(
            v.update(Message::Record).1,
            Some(Event::Engine(AudioCommand::Record))
        );
        let _ = v.on_audio(AudioEvent::Recording(std::time::Duration::from_secs(2)));
        assert!(matches!(v.recorder.state, Recording::Recording(_)));
        let _ = v.player.play(7, "v.ogg".into());
        let _ = v.on_audio(AudioEvent::Playing(ClipId(7)));
        assert_eq!(v.player.state, Playback::Playing(7));
        // A start the call did not ask for changes nothing.
        assert_eq!(
            v.on_audio(AudioEvent::CallStarted(TransportKind::Udp)),
            None
        );
        assert_eq!(v.call.stage, Stage::Joining);
    }
}

//! The call, as the server describes it (`voice_state`: who is in it, who
//! is muted) plus what the engine reports (who speaks, UDP or TCP, errors).
//!
//! Our side goes `Idle` → (join) `Joining` → (`voice_joined`) `Starting`
//! (the engine opens the devices and binds the voice path) → (the engine
//! says so) `Live`. Leave, a refusal, a failed start and a lost chat
//! connection all end in `Idle`, the engine stopped. Every step returns
//! the [`Event`] it needs done (a request for the server, a command for
//! the engine), so this is tested without either.

use std::collections::HashSet;

use chatcore::protocol::voice::{CallMember, VoiceJoined, VoiceKey, VoiceState};
use chatvoice::{CallEvent, TransportKind};

use super::event::Event;
use crate::audio::Command as AudioCommand;
use crate::net::VoiceRequest;

/// Where our side of the call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Not in the call.
    Idle,
    /// `voice_join` sent, waiting for `voice_joined`.
    Joining,
    /// The server let us in; the engine opens the devices and the voice path.
    Starting,
    /// Audio flows over this transport.
    Live(TransportKind),
}

/// The user's audio choices: what outlives the room screen when a session
/// ends and a new one starts (the audio worker keeps them too, so the new
/// room must show the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// Push-to-talk instead of voice activation.
    pub push_to_talk: bool,
    /// Noise suppression on.
    pub noise_suppression: bool,
    /// Echo cancellation on.
    pub echo_cancellation: bool,
}

/// The call and our part in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The chat server's `host:port`: the voice port is on the same host.
    pub server: String,
    /// Our side of the call, engine included.
    pub stage: Stage,
    /// Everyone in the call (from the latest `voice_state`), joining order.
    pub members: Vec<CallMember>,
    /// Whether the server lists us in the call.
    pub joined: bool,
    /// A `voice_state` listed us during this call: a later one without us
    /// means the server ended our membership (the engine must stop too).
    listed: bool,
    /// Whether we muted ourselves.
    pub muted: bool,
    /// Push-to-talk instead of voice activation: the microphone is sent
    /// only while "Hold to talk" is held (for noisy rooms).
    pub push_to_talk: bool,
    /// "Hold to talk" is held down (the button, or the push-to-talk key).
    pub talking: bool,
    /// Noise suppression on the microphone (fans, keyboards): on unless
    /// the user turned it off; kept for every call of the session.
    pub noise_suppression: bool,
    /// Echo cancellation (the speakers heard by the microphone, for users
    /// without a headset): on unless turned off; kept like the above.
    pub echo_cancellation: bool,
    /// The last refusal or problem of the call, shown under the controls.
    pub note: Option<String>,
    /// What the server answered our `voice_join` with (session, token,
    /// port): what the engine needs to open the voice path.
    pub path: Option<VoiceJoined>,
    /// Sessions heard speaking right now (ours from the VAD), from the
    /// engine's `Speaking` events; the user list marks them.
    pub speaking: HashSet<u64>,
}

impl Call {
    /// No call yet, for the chat server at `server` (`host:port`).
    pub fn new(server: &str) -> Self {
        Self {
            server: server.to_owned(),
            stage: Stage::Idle,
            members: Vec::new(),
            joined: false,
            listed: false,
            muted: false,
            push_to_talk: false,
            talking: false,
            noise_suppression: true,
            echo_cancellation: true,
            note: None,
            path: None,
            speaking: HashSet::new(),
        }
    }

    /// The user's audio choices.
    pub fn switches(&self) -> Switches {
        Switches {
            push_to_talk: self.push_to_talk,
            noise_suppression: self.noise_suppression,
            echo_cancellation: self.echo_cancellation,
        }
    }

    /// Takes the choices of an earlier room (the worker already has them).
    pub fn restore(&mut self, s: Switches) {
        self.push_to_talk = s.push_to_talk;
        self.talking = false;
        self.noise_suppression = s.noise_suppression;
        self.echo_cancellation = s.echo_cancellation;
    }

    /// Whether we are in the call or on our way in (Leave and Mute apply).
    pub fn in_call(&self) -> bool {
        self.stage != Stage::Idle || self.joined
    }

    /// The call member with this session, if in the call.
    pub fn member(&self, session: u64) -> Option<&CallMember> {
        self.members.iter().find(|m| m.session == session)
    }

    /// The user asked to join: ask the server.
    pub fn join(&mut self) -> Option<Event> {
        if self.stage != Stage::Idle {
            return None;
        }
        self.stage = Stage::Joining;
        self.note = None;
        Some(Event::Server(VoiceRequest::Join))
    }

    /// The user left: stop the engine and tell the server.
    pub fn leave(&mut self) -> Option<Event> {
        if !self.in_call() {
            return None;
        }
        let stop = self.end_call(None);
        self.joined = false;
        Some(match stop {
            Some(Event::Engine(c)) => Event::Both(c, VoiceRequest::Leave),
            _ => Event::Server(VoiceRequest::Leave),
        })
    }

    /// Mute or unmute ourselves: the engine and the server.
    pub fn toggle_mute(&mut self) -> Option<Event> {
        if !self.in_call() {
            return None;
        }
        self.muted = !self.muted;
        Some(Event::Both(
            AudioCommand::Mute(self.muted),
            VoiceRequest::Mute(self.muted),
        ))
    }

    /// Switch between voice activation and push-to-talk (the engine only).
    pub fn toggle_push_to_talk(&mut self) -> Option<Event> {
        self.push_to_talk = !self.push_to_talk;
        self.talking = false;
        Some(Event::Engine(AudioCommand::PushToTalk(self.push_to_talk)))
    }

    /// Noise suppression on or off: the running call switches at once, a
    /// later call starts with it (the engine keeps the choice).
    pub fn toggle_noise_suppression(&mut self) -> Option<Event> {
        self.noise_suppression = !self.noise_suppression;
        Some(Event::Engine(AudioCommand::NoiseSuppression(
            self.noise_suppression,
        )))
    }

    /// Echo cancellation on or off, like noise suppression.
    pub fn toggle_echo_cancellation(&mut self) -> Option<Event> {
        self.echo_cancellation = !self.echo_cancellation;
        Some(Event::Engine(AudioCommand::EchoCancellation(
            self.echo_cancellation,
        )))
    }

    /// "Hold to talk" pressed (`true`) or let go; repeats are not sent.
    pub fn talk(&mut self, held: bool) -> Option<Event> {
        if !self.push_to_talk || held == self.talking {
            return None;
        }
        self.talking = held;
        Some(Event::Engine(AudioCommand::Talk(held)))
    }

    /// The call changed (`voice_state`); `me` is our session.
    pub fn apply_state(&mut self, state: &VoiceState, me: u64) -> Option<Event> {
        self.members.clone_from(&state.members);
        let mine = self.members.iter().find(|m| m.session == me);
        self.joined = mine.is_some();
        if let Some(m) = mine {
            self.muted = m.muted;
        }
        let in_call = matches!(self.stage, Stage::Starting | Stage::Live(_));
        let mut event = None;
        if in_call && self.joined {
            self.listed = true;
        } else if in_call && self.listed {
            // The server ended our membership (e.g. the voice path went
            // silent): the engine has nothing to talk to any more.
            event = self.end_call(Some("You are no longer in the call (the server ended it)."));
        }
        self.speaking
            .retain(|s| state.members.iter().any(|m| m.session == *s));
        event
    }

    /// The server let us into the call (`voice_joined`): start the engine.
    pub fn joined(&mut self, joined: &VoiceJoined) -> Option<Event> {
        self.joined = true;
        self.note = None;
        self.path = Some(joined.clone());
        if self.stage != Stage::Joining {
            return None;
        }
        self.stage = Stage::Starting;
        self.listed = false;
        Some(Event::Engine(AudioCommand::StartCall {
            joined: joined.clone(),
            server: self.server.clone(),
        }))
    }

    /// The call's key changed (`voice_key`): keep it for a restart of the
    /// engine, and hand it to the running engine (sealing with an old key
    /// would soon be dropped by the relay and unreadable to the others).
    pub fn rekeyed(&mut self, k: &VoiceKey) -> Option<Event> {
        if let Some(path) = &mut self.path {
            path.epoch = k.epoch;
            path.key = k.key.clone();
        }
        matches!(self.stage, Stage::Starting | Stage::Live(_)).then(|| {
            Event::Engine(AudioCommand::CallKey {
                epoch: k.epoch,
                key: k.key.clone(),
            })
        })
    }

    /// The server refused a voice request (e.g. `voice_unavailable`).
    pub fn refused(&mut self, message: &str) -> Option<Event> {
        self.joined = false;
        let event = if self.stage != Stage::Idle {
            self.end_call(None)
        } else {
            None
        };
        self.note = Some(message.to_owned());
        event
    }

    /// Forgets the call on our side; stops the engine if it runs.
    fn end_call(&mut self, why: Option<&str>) -> Option<Event> {
        let running = matches!(self.stage, Stage::Starting | Stage::Live(_));
        self.stage = Stage::Idle;
        self.listed = false;
        self.speaking.clear();
        self.path = None;
        self.note = why.map(str::to_owned);
        running.then_some(Event::Engine(AudioCommand::StopCall))
    }

    /// The chat connection dropped: the call ends (after a reconnection the
    /// server sends the call state again; join again to talk).
    pub fn reset(&mut self) -> Option<Event> {
        let event = if self.stage != Stage::Idle {
            self.end_call(Some(
                "The call ended: the connection to the server was lost.",
            ))
        } else {
            None
        };
        self.members.clear();
        self.joined = false;
        self.muted = false;
        self.path = None;
        self.speaking.clear();
        event
    }

    /// The engine's voice path is up over `kind`.
    pub fn started(&mut self, kind: TransportKind) -> Option<Event> {
        if self.stage != Stage::Starting {
            return None;
        }
        self.stage = Stage::Live(kind);
        // Muted before the engine ran: it starts unmuted, tell it.
        self.muted
            .then_some(Event::Engine(AudioCommand::Mute(true)))
    }

    /// The engine could not start the call: leave it and say why.
    pub fn failed(&mut self, why: &str) -> Option<Event> {
        if self.stage == Stage::Idle {
            return None;
        }
        self.stage = Stage::Idle;
        self.listed = false;
        self.path = None;
        self.speaking.clear();
        self.note = Some(format!("Could not start the call: {why}"));
        Some(Event::Server(VoiceRequest::Leave))
    }

    /// Something the running call reported.
    pub fn on_call_event(&mut self, event: CallEvent) {
        if !matches!(self.stage, Stage::Live(_)) {
            return;
        }
        match event {
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
            CallEvent::Transport(kind) => self.stage = Stage::Live(kind),
            CallEvent::Stats(_) => {}
        }
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

    fn joined_msg(session: u64) -> VoiceJoined {
        VoiceJoined {
            room: None,
            max_bitrate: None,
            session,
            token: vec![7; 16],
            epoch: 1,
            key: vec![3; 32],
            port: 16791,
            keepalive_ms: 5000,
            timeout_ms: 15000,
        }
    }

    fn live(me: u64) -> Call {
        let mut c = Call::new("127.0.0.1:16790");
        let _ = c.join();
        let _ = c.joined(&joined_msg(me));
        let _ = c.started(TransportKind::Udp);
        c
    }

    #[test]
    fn voice_state_marks_members_and_our_own_mute() {
        let mut c = Call::new("x:1");
        let state = VoiceState {
            room: None,
            ts: 0,
            members: vec![member(1, "alice", false), member(2, "bob", true)],
        };
        assert_eq!(c.apply_state(&state, 2), None);
        assert!(c.joined);
        assert!(c.muted);
        assert_eq!(c.member(1).map(|m| m.name.as_str()), Some("alice"));
        assert!(c.member(3).is_none());
    }

    #[test]
    fn join_then_joined_starts_the_engine_then_the_call_is_live() {
        let mut c = Call::new("127.0.0.1:16790");
        assert_eq!(c.join(), Some(Event::Server(VoiceRequest::Join)));
        assert_eq!(c.stage, Stage::Joining);
        assert_eq!(c.join(), None, "one request while joining");
        assert_eq!(
            c.joined(&joined_msg(5)),
            Some(Event::Engine(AudioCommand::StartCall {
                joined: joined_msg(5),
                server: "127.0.0.1:16790".into()
            }))
        );
        assert_eq!(c.stage, Stage::Starting);
        assert_eq!(c.started(TransportKind::Udp), None);
        assert_eq!(c.stage, Stage::Live(TransportKind::Udp));
        c.on_call_event(CallEvent::Speaking {
            session: 9,
            active: true,
        });
        assert!(c.speaking.contains(&9));
        c.on_call_event(CallEvent::Speaking {
            session: 9,
            active: false,
        });
        assert!(c.speaking.is_empty());
    }

    #[test]
    fn mute_tells_the_engine_and_the_server() {
        let mut c = live(5);
        assert_eq!(
            c.toggle_mute(),
            Some(Event::Both(
                AudioCommand::Mute(true),
                VoiceRequest::Mute(true)
            ))
        );
        assert!(c.muted);
        assert_eq!(
            c.toggle_mute(),
            Some(Event::Both(
                AudioCommand::Mute(false),
                VoiceRequest::Mute(false)
            ))
        );
    }

    #[test]
    fn push_to_talk_sends_only_while_held_and_tells_nobody_but_the_engine() {
        let mut c = live(5);
        // Holding before push-to-talk is on does nothing.
        assert_eq!(c.talk(true), None);
        assert_eq!(
            c.toggle_push_to_talk(),
            Some(Event::Engine(AudioCommand::PushToTalk(true)))
        );
        assert!(c.push_to_talk);
        assert_eq!(c.talk(true), Some(Event::Engine(AudioCommand::Talk(true))));
        assert_eq!(c.talk(true), None, "a repeat press is not sent twice");
        assert_eq!(
            c.talk(false),
            Some(Event::Engine(AudioCommand::Talk(false)))
        );
        assert_eq!(c.talk(true), Some(Event::Engine(AudioCommand::Talk(true))));
        assert_eq!(
            c.toggle_push_to_talk(),
            Some(Event::Engine(AudioCommand::PushToTalk(false)))
        );
        assert!(!c.push_to_talk && !c.talking, "switching back lets go");
    }

    #[test]
    fn the_audio_switches_start_on_reach_the_engine_and_outlive_a_call() {
        let mut c = Call::new("127.0.0.1:16790");
        assert!(c.noise_suppression && c.echo_cancellation, "on by default");
        // Switchable before any call: the engine keeps it for the next one.
        assert_eq!(
            c.toggle_noise_suppression(),
            Some(Event::Engine(AudioCommand::NoiseSuppression(false)))
        );
        let _ = c.join();
        let _ = c.joined(&joined_msg(5));
        let _ = c.started(TransportKind::Udp);
        assert_eq!(
            c.toggle_echo_cancellation(),
            Some(Event::Engine(AudioCommand::EchoCancellation(false)))
        );
        let _ = c.leave();
        let _ = c.join();
        assert!(
            !c.noise_suppression && !c.echo_cancellation,
            "the choice survives leaving and joining again"
        );
        assert_eq!(
            c.toggle_noise_suppression(),
            Some(Event::Engine(AudioCommand::NoiseSuppression(true)))
        );
    }

    #[test]
    fn the_voice_path_shown_follows_every_transport_switch_of_the_engine() {
        let mut c = live(5);
        for kind in [
            TransportKind::Tcp,
            TransportKind::Udp,
            TransportKind::Tcp,
            TransportKind::Udp,
        ] {
            c.on_call_event(CallEvent::Transport(kind));
            assert_eq!(c.stage, Stage::Live(kind));
        }
        // A switch reported after leaving does not bring the call back.
        let _ = c.leave();
        c.on_call_event(CallEvent::Transport(TransportKind::Tcp));
        assert_eq!(c.stage, Stage::Idle);
    }

    #[test]
    fn leave_stops_the_engine_and_tells_the_server() {
        let mut c = live(5);
        c.speaking.insert(5);
        assert_eq!(
            c.leave(),
            Some(Event::Both(AudioCommand::StopCall, VoiceRequest::Leave))
        );
        assert_eq!(c.stage, Stage::Idle);
        assert!(c.speaking.is_empty());
    }

    #[test]
    fn a_failed_start_leaves_the_call_and_says_why() {
        let mut c = Call::new("x:1");
        let _ = c.join();
        let _ = c.joined(&joined_msg(5));
        assert_eq!(
            c.failed("voice socket: refused"),
            Some(Event::Server(VoiceRequest::Leave))
        );
        assert_eq!(c.stage, Stage::Idle);
        assert!(c.note.as_deref().is_some_and(|n| n.contains("refused")));
    }

    #[test]
    fn losing_the_chat_connection_ends_the_call_and_shows_it() {
        let mut c = live(5);
        assert_eq!(c.reset(), Some(Event::Engine(AudioCommand::StopCall)));
        assert_eq!(c.stage, Stage::Idle);
        assert!(c.note.as_deref().is_some_and(|n| n.contains("connection")));
    }

    #[test]
    fn the_server_dropping_us_from_the_call_stops_the_engine() {
        let mut c = live(5);
        let with = VoiceState {
            room: None,
            ts: 0,
            members: vec![member(5, "me", false)],
        };
        assert_eq!(c.apply_state(&with, 5), None);
        let without = VoiceState {
            room: None,
            ts: 1,
            members: vec![],
        };
        assert_eq!(
            c.apply_state(&without, 5),
            Some(Event::Engine(AudioCommand::StopCall))
        );
        assert_eq!(c.stage, Stage::Idle);
    }
}

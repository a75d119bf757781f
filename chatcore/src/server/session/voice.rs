//! What the voice messages of the chat connection do: `voice_join`,
//! `voice_leave`, `voice_mute`, and the `voice_state` everyone is sent when
//! the call changes. The packets themselves are in [`crate::server::voice::relay`].

use crate::protocol::voice::{TOKEN_LEN, VoiceJoined, VoiceState};
use crate::protocol::{ErrorCode, ServerMessage, encode_server};
use crate::server::reactor::Reactor;
use crate::server::voice::VoicePath;
use crate::time::now_ms;

impl Reactor {
    /// `voice_join`: into the call (or a fresh token for a member already
    /// in it), answered with `voice_joined`.
    pub(crate) fn voice_join(&mut self, key: usize) {
        let Some(port) = self.voice_port_number() else {
            let why = "this server has no voice port";
            self.protocol_error(key, ErrorCode::VoiceUnavailable, why, None);
            return;
        };
        let Some(user) = self.room.member(key).cloned() else {
            return;
        };
        let already = self.call.by_key_mut(key).is_some();
        if !already && self.call.len() >= self.config.max_call_members {
            let why = format!(
                "the call is full ({} members)",
                self.config.max_call_members
            );
            self.protocol_error(key, ErrorCode::CallFull, &why, None);
            return;
        }
        let token: [u8; TOKEN_LEN] = rand::random();
        let old = self
            .call
            .join(key, user.session, &user.name, token, self.now);
        if let Some(VoicePath::Tcp(k)) = old {
            self.close_voice_conn(k);
        }
        tracing::info!(name = %user.name, session = user.session, "joined the call");
        let joined = ServerMessage::VoiceJoined(VoiceJoined {
            session: user.session,
            token: token.to_vec(),
            port,
            keepalive_ms: self.config.voice_keepalive_ms,
            timeout_ms: self.config.voice_timeout_ms,
        });
        self.push_private(key, encode_server(&joined));
        if !already || old.is_some() {
            self.broadcast_voice_state();
        }
    }

    /// `voice_leave`: out of the call.
    pub(crate) fn voice_leave(&mut self, key: usize) {
        if !self.call_left(key) {
            self.protocol_error(key, ErrorCode::NotInCall, "you are not in the call", None);
        }
    }

    /// `voice_mute`: sets the member's flag for everyone to see.
    pub(crate) fn voice_mute(&mut self, key: usize, muted: bool) {
        let Some(member) = self.call.by_key_mut(key) else {
            self.protocol_error(key, ErrorCode::NotInCall, "you are not in the call", None);
            return;
        };
        if member.muted != muted {
            member.muted = muted;
            self.broadcast_voice_state();
        }
    }

    /// Takes the member on connection `key` out of the call, if it is in
    /// it, and tells the room. Also called when it leaves the room.
    pub(crate) fn call_left(&mut self, key: usize) -> bool {
        let Some(member) = self.call.leave(key) else {
            return false;
        };
        tracing::info!(name = %member.name, session = member.session, "left the call");
        if let Some(VoicePath::Tcp(k)) = member.path {
            self.close_voice_conn(k);
        }
        self.broadcast_voice_state();
        true
    }

    /// Sends the call's member list to every member of the room. Pending
    /// joins and leaves go first, so nobody hears of a call member it has
    /// not been told about.
    pub(crate) fn broadcast_voice_state(&mut self) {
        if self.shutdown_began() {
            return;
        }
        self.flush_presence();
        let frame = self.voice_state_frame();
        let (room, mut out) = self.outbox();
        room.broadcast(&frame, &mut out);
    }

    /// After a login: the call as it is, if anyone is in it (queued after
    /// the new member's `welcome`).
    pub(crate) fn send_voice_state_to(&mut self, key: usize) {
        if !self.call.is_empty() {
            let frame = self.voice_state_frame();
            self.push_private(key, frame);
        }
    }

    fn voice_state_frame(&self) -> bytes::Bytes {
        encode_server(&ServerMessage::VoiceState(VoiceState {
            ts: now_ms(),
            members: self.call.state(),
        }))
    }
}

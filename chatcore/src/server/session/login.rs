//! What a decoded client message does: login, chat, ping, bye; file and
//! voice messages are dispatched to `session_transfer` and `session_voice`.
//!
//! These are the protocol rules of docs/protocol.md applied to one connection;
//! the reactor calls [`Reactor::handle_frame`] for each complete frame.

use crate::protocol::transfer::FileOffer;
use crate::protocol::{
    ChatSend, ClientMessage, ErrorCode, Hello, LeaveReason, Left, PROTOCOL_VERSION, ServerMessage,
    encode_server,
};
use crate::server::conn::Phase;
use crate::server::hooks::{ChatDecision, JoinDecision};
use crate::server::reactor::{RATE_LIMITED_MSG, Reactor, fit_text};
use crate::server::room::Outbox;
use crate::server::room::names;
use crate::time::now_ms;

impl Reactor {
    /// Decodes and acts on one frame body from connection `key`.
    pub(crate) fn handle_frame(&mut self, key: usize, body: &[u8]) {
        match ClientMessage::from_body(body) {
            Ok(msg) => self.on_message(key, msg),
            Err(e) => self.protocol_error(key, e.code(), &e.to_string(), None),
        }
    }

    fn on_message(&mut self, key: usize, msg: ClientMessage) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let member = conn.phase == Phase::Member;
        match msg {
            ClientMessage::Pong(_) => {}
            ClientMessage::Bye => self.doom(key, LeaveReason::Quit),
            ClientMessage::Ping(seq) => {
                if self.allow_frame(key, None) {
                    self.send(key, &ServerMessage::Pong(seq));
                }
            }
            ClientMessage::Hello(_) if member => {
                self.protocol_error(
                    key,
                    ErrorCode::AlreadyLoggedIn,
                    "this connection is already in the room",
                    None,
                );
            }
            ClientMessage::Hello(hello) => {
                if self.allow_frame(key, None) {
                    self.hello(key, hello);
                }
            }
            ClientMessage::Chat(chat) if member => self.chat(key, chat),
            // File chunks are not charged: an upload is many of them.
            ClientMessage::FileChunk(chunk) if member => self.file_chunk(key, chunk),
            ClientMessage::FileOffer(offer) if member => {
                if self.allow_frame(key, offer.reference) {
                    self.file_offer(key, offer);
                }
            }
            ClientMessage::FileAccept(accept) if member => {
                if self.allow_frame(key, None) {
                    self.file_accept(key, accept);
                }
            }
            ClientMessage::FileDecline(decline) if member => {
                if self.allow_frame(key, None) {
                    self.file_decline(key, decline.transfer);
                }
            }
            ClientMessage::FileCancel(cancel) if member => {
                if self.allow_frame(key, None) {
                    self.file_cancel(key, cancel.transfer);
                }
            }
            ClientMessage::VoiceJoin if member => {
                if self.allow_frame(key, None) {
                    self.voice_join(key);
                }
            }
            ClientMessage::VoiceLeave if member => {
                if self.allow_frame(key, None) {
                    self.voice_leave(key);
                }
            }
            ClientMessage::VoiceMute(m) if member => {
                if self.allow_frame(key, None) {
                    self.voice_mute(key, m.muted);
                }
            }
            ClientMessage::Chat(ChatSend { reference, .. })
            | ClientMessage::FileOffer(FileOffer { reference, .. }) => {
                self.protocol_error(key, ErrorCode::NotLoggedIn, "send hello first", reference);
            }
            ClientMessage::FileChunk(_)
            | ClientMessage::FileAccept(_)
            | ClientMessage::FileDecline(_)
            | ClientMessage::FileCancel(_)
            | ClientMessage::VoiceJoin
            | ClientMessage::VoiceLeave
            | ClientMessage::VoiceMute(_) => {
                self.protocol_error(key, ErrorCode::NotLoggedIn, "send hello first", None);
            }
        }
    }

    /// Takes a token from `key`'s bucket, or answers `rate_limited`.
    pub(crate) fn allow_frame(&mut self, key: usize, reference: Option<u64>) -> bool {
        let (rate, burst, now) = (self.config.rate_per_sec, self.config.rate_burst, self.now);
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let took = conn.bucket.take(rate, burst, now);
        if let Some((k, charged)) = self.frame_charge.as_mut()
            && *k == key
        {
            *charged = true;
        }
        if took {
            return true;
        }
        self.protocol_error(key, ErrorCode::RateLimited, RATE_LIMITED_MSG, reference);
        false
    }

    fn hello(&mut self, key: usize, hello: Hello) {
        if hello.version != PROTOCOL_VERSION {
            let msg = format!(
                "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
                hello.version
            );
            self.protocol_error(key, ErrorCode::Version, &msg, None);
            return;
        }
        let name = match names::validate(&hello.name, self.config.max_name_chars) {
            Ok(name) => name,
            Err(e) => {
                self.protocol_error(key, e.code(), &e.to_string(), None);
                return;
            }
        };
        let name = name.as_str();
        let Some(peer) = self.conns.get(key).map(|c| c.peer) else {
            return;
        };
        if let JoinDecision::Deny(why) = self.hooks.on_join(name, peer) {
            self.protocol_error(key, ErrorCode::JoinDenied, &why, None);
            return;
        }
        let user = self.room.join(key, name);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.phase = Phase::Member;
            if conn.counted_handshake {
                conn.counted_handshake = false;
                self.addr_counts.logged_in(conn.addr);
            }
            if self.log_gate.allow(conn.addr, self.now) {
                tracing::info!(name = %user.name, session = user.session, %peer, "joined");
            }
        }
        self.hooks.on_joined(&user);
        self.send_offers_to(key);
        self.send_voice_state_to(key);
    }

    fn chat(&mut self, key: usize, chat: ChatSend) {
        let ChatSend { text, reference } = chat;
        if !self.allow_frame(key, reference) {
            return;
        }
        if text.trim().is_empty() {
            self.protocol_error(key, ErrorCode::TextEmpty, "the text is empty", reference);
            return;
        }
        if text.len() > self.config.max_text_bytes {
            let msg = format!(
                "the text is longer than {} bytes",
                self.config.max_text_bytes
            );
            self.protocol_error(key, ErrorCode::TextTooLong, &msg, reference);
            return;
        }
        let Some(from) = self.room.member(key).cloned() else {
            return;
        };
        let text = match self.hooks.on_chat(&from, &text) {
            ChatDecision::Deliver => text,
            ChatDecision::Rewrite(new) => match fit_text(new, self.config.max_text_bytes) {
                Some(new) => new,
                None => {
                    let why = "the message was removed by the server";
                    self.protocol_error(key, ErrorCode::Rejected, why, reference);
                    return;
                }
            },
            ChatDecision::Reject(why) => {
                self.protocol_error(key, ErrorCode::Rejected, &why, reference);
                return;
            }
        };
        let ts = now_ms();
        let (room, mut out) = self.outbox();
        if room.chat(key, text, reference, ts, &mut out).is_some() {
            self.stats.messages += 1;
        }
    }

    /// Queues one message for `key` alone.
    fn send(&mut self, key: usize, msg: &ServerMessage) {
        self.push_private(key, encode_server(msg));
    }

    /// Queues a frame for `key` alone, after its `welcome` if that is still
    /// waiting for the end-of-turn batch: the welcome is always first.
    pub(crate) fn push_private(&mut self, key: usize, frame: bytes::Bytes) {
        let (room, mut out) = self.outbox();
        if room.welcome_pending(key) {
            room.flush_welcomes(&mut out);
        }
        out.push(key, frame);
    }

    /// Removes a member on the operator's word: it gets a `left` about itself
    /// (reason `kicked`), flushed before the socket closes.
    pub(crate) fn kick(&mut self, key: usize) {
        let Some(user) = self.room.member(key).cloned() else {
            return;
        };
        self.send(
            key,
            &ServerMessage::Left(Left {
                name: user.name,
                session: user.session,
                ts: now_ms(),
                reason: LeaveReason::Kicked,
            }),
        );
        if let Some(conn) = self.conns.get_mut(key) {
            conn.close_reason = Some(LeaveReason::Kicked);
        }
        self.doom(key, LeaveReason::Kicked);
    }
}

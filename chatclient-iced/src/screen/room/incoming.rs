//! What the network worker reports, applied to the room: server messages
//! (chat, joins and leaves, offers, the call, errors), transfer progress,
//! and the connection's ups and downs.

use chatcore::client::TransferEvent;
use chatcore::protocol::{ErrorCode, ServerMessage};
use iced::Task;

use super::entry::{self, Entry};
use super::{Event, Link, Message, State, voiced};
use crate::net::{self, About};

impl State {
    /// Applies an event from the network worker (other than `Ready`,
    /// `Secured`, `LoggedIn`, `LoginFailed`, `Token`, `SessionEnded` and
    /// `CertificateChanged`, which the application handles).
    pub fn on_net(&mut self, event: net::Event) -> (Task<Message>, Option<Event>) {
        use net::Event as E;
        let mut reported = None;
        let snap = match event {
            E::Server(ServerMessage::RoomJoined(j)) => return self.room_joined(&j),
            E::Server(ServerMessage::RoomParted(r)) => return self.room_parted(&r.room),
            E::Server(msg) if let Some(done) = self.on_dm_frame(&msg) => return done,
            E::Server(msg) => {
                let (snap, event) = self.on_server_routed(msg);
                reported = event;
                snap
            }
            E::Transfer(t) => {
                self.files.on_transfer(&t);
                match t {
                    TransferEvent::Saved { transfer, path } => {
                        reported = voiced(self.voice.player.downloaded(transfer, path));
                    }
                    TransferEvent::Failed { transfer, .. }
                    | TransferEvent::Cancelled { transfer, .. } => {
                        self.voice.player.fetch_failed(transfer);
                    }
                    _ => {}
                }
                false
            }
            E::OfferSent { local, reference } => {
                self.files.offer_sent(local, reference);
                false
            }
            E::Downloading { transfer, .. } => {
                self.files.requested(transfer);
                false
            }
            E::Failed { about, error } => match about {
                About::Upload(id) => {
                    self.files.failed_card(id, error);
                    false
                }
                About::Transfer(t) => {
                    self.files.failed_transfer(t, error);
                    self.voice.player.fetch_failed(t);
                    false
                }
                About::Chat(_) => self.push(Entry::Error(format!("Message not sent: {error}"))),
                About::History => {
                    self.history_failed();
                    self.push(Entry::Error(format!(
                        "Cannot load earlier messages: {error}"
                    )))
                }
                About::Account => self.push(Entry::Error(format!(
                    "Your name was not registered: {error}"
                ))),
                About::Room => self.push(Entry::Error(format!("Not sent: {error}"))),
                About::Voice => {
                    reported = voiced(self.voice.call.refused(&error));
                    false
                }
            },
            E::Connecting { attempt } => {
                if attempt > 0 {
                    self.link = Link::Connecting(attempt);
                }
                false
            }
            E::Disconnected { reason, retry_in } => {
                let first = self.link == Link::Online;
                self.link = Link::Lost {
                    reason: reason.clone(),
                    retry_in,
                };
                reported = voiced(self.voice.call.reset());
                if first {
                    self.push(Entry::System(format!(
                        "Connection lost ({}). Reconnecting…",
                        reason.trim_end_matches('.')
                    )))
                } else {
                    false
                }
            }
            E::Ready(_)
            | E::Secured(_)
            | E::LoggedIn(_)
            | E::LoginFailed(_)
            | E::Token { .. }
            | E::SessionEnded(_)
            | E::CertificateChanged(_) => false,
        };
        (self.snap_if(snap), reported)
    }

    /// A server message; returns whether to snap to the end, and what the
    /// voice panel needs done.
    pub(super) fn on_server(&mut self, msg: ServerMessage) -> (bool, Option<Event>) {
        if let Some(snap) = self.on_room_frame(&msg) {
            return (snap, None);
        }
        let snap = match &msg {
            ServerMessage::Chat(c) => self.add_chat(c),
            ServerMessage::Joined(_) | ServerMessage::Left(_) | ServerMessage::Presence(_) => {
                let changes = self.pane.roster.apply(&msg);
                if changes.is_empty() {
                    return (false, None);
                }
                self.sort_users();
                let mut snap = false;
                for change in changes {
                    let line = entry::change_line(change, self.session);
                    snap |= self.push(Entry::System(line));
                }
                snap
            }
            ServerMessage::FileOffer(offer) => {
                let id = self.files.offered(offer);
                let mut snap = false;
                if offer.to.is_some() {
                    snap |= self.push(Entry::System(format!(
                        "{} offers you a file privately:",
                        offer.from
                    )));
                }
                snap | self.push(Entry::File(id))
            }
            ServerMessage::FileCancelled(c) => {
                self.files.withdrawn(c.transfer, &c.reason);
                false
            }
            // Each room has its own call: the panel follows one.
            ServerMessage::VoiceState(v) if v.room != self.call_room => return (false, None),
            ServerMessage::VoiceState(v) => {
                return (false, voiced(self.voice.call.apply_state(v, self.session)));
            }
            ServerMessage::VoiceJoined(j) => return (false, voiced(self.voice.call.joined(j))),
            ServerMessage::VoiceKey(k) => return (false, voiced(self.voice.call.rekeyed(k))),
            ServerMessage::History(h) => return self.on_history(h),
            // The token it carries stays with the network worker.
            ServerMessage::Registered(r) => self.push(Entry::System(format!(
                "Registered: the name {} is now yours. Log in with it and your password \
                 next time; until then this connection reconnects by itself.",
                r.name
            ))),
            ServerMessage::PasswordChanged(_) => {
                self.push(Entry::System("Your password was changed.".into()))
            }
            // An operator's announcement (no room): shown in the default
            // room's pane, where the server's other words go.
            ServerMessage::Notice(n) => {
                self.push(Entry::System(format!("Notice from the server: {}", n.text)))
            }
            ServerMessage::Error(e) if net::account_refusal(e.code, &e.message).is_some() => {
                let words = net::account_refusal(e.code, &e.message).unwrap_or_default();
                self.push(Entry::Error(format!("Not registered: {words}")))
            }
            ServerMessage::Error(e)
                if e.code == ErrorCode::UnknownMessage && self.on_unknown_message() =>
            {
                false
            }
            ServerMessage::Error(e) if e.reference.is_none() && refusal(e.code).is_some() => {
                let what = refusal(e.code).unwrap_or_default();
                self.push(Entry::Error(format!("{what}: {} ({})", e.message, e.code)))
            }
            ServerMessage::Error(e) => {
                if e.reference.is_none() {
                    self.history_failed();
                }
                if matches!(e.code, ErrorCode::VoiceUnavailable) {
                    return (false, voiced(self.voice.call.refused(&e.message)));
                }
                let line = if e.reference.is_some() {
                    format!("Message not sent: {}", e.message)
                } else {
                    format!("The server says: {} ({})", e.message, e.code)
                };
                self.push(Entry::Error(line))
            }
            _ => false,
        };
        (snap, None)
    }
}

/// The words before a room or moderation refusal: the server's message
/// follows, with the code (`forbidden`...), so the reason is plain.
fn refusal(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::Forbidden => "Not allowed",
        ErrorCode::NoSuchMember => "No such member",
        ErrorCode::Banned => "Banned",
        ErrorCode::Muted => "Muted",
        ErrorCode::NotInRoom => "Not in that room",
        ErrorCode::RoomInvalid => "Not a valid room name",
        ErrorCode::RoomUnknown => "No such room",
        ErrorCode::TooManyRooms => "Too many rooms",
        _ => return None,
    })
}

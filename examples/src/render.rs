//! A room as a transcript: one line per event, stable enough to parse.
//!
//! | event | line |
//! |---|---|
//! | chat | `[12:34:56Z] alice: hello` |
//! | server message (session 0) | `[12:34:56Z] *** server: maintenance at noon` |
//! | join | `* bob joined (3 online)` |
//! | leave | `* bob left (quit) (2 online)` |
//! | removed ourselves | `* you were removed (kicked)` |
//! | refusal | `! error rate_limited: too many messages; slow down` |
//! | history page | `* 20 earlier messages:` then one chat line each |
//! | who | `* 3 online: alice, bob, "carol, dave"` |
//! | file offer | `* alice offers report.pdf (1.2 MB) — /accept 7 or /decline 7` |
//! | offer ended | `* report.pdf (7) is no longer offered (expired)` |
//! | chat in a named room | `[12:34:56Z] #dev alice: hello` |
//! | room entered | `* you are in #dev (2 here: alice, bob)` |
//! | join / leave of a named room | `* bob joined #dev`, `* bob left #dev (quit)` |
//! | topic | `* bob set the topic of #dev: ship it` |
//! | room list | `* 2 rooms:` then `*   #lobby (default): 3 here` and one line per room |
//!
//! Untrusted text goes through [`one_line`], so a line is always one line
//! and nothing in it acts on the terminal (control, format, zero-width, tag
//! and bidi control characters show as `<U+XXXX>`). Names go through
//! [`show_name`]: quoted when they could be misread (`"bob, carol, dave"`,
//! `"* server"`), so a name is never taken for several, for the end of a
//! chat line's `name:`, or for the server: a plain name starts with a
//! letter or digit, while a server message (`session == 0`, protocol.md
//! 7.2) is marked `*** server`, whatever its `from`.
//! Colour is only added by a [`Style`] made for a terminal.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use chatcore::Roster;
use chatcore::client::{Change, FileKind, FileOffered};
use chatcore::protocol::{Chat, ErrorMsg, LeaveReason, ServerMessage, Welcome};

use crate::clock;
use crate::progress::human_size;
use crate::text::{one_line, show_name};

/// Whether to colour the output (only ever for a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    color: bool,
}

impl Style {
    /// No escape codes at all.
    pub fn plain() -> Self {
        Self { color: false }
    }

    /// Colour if stdout is a terminal, `NO_COLOR` is unset and `TERM` is not
    /// `dumb`; plain otherwise (pipes, files, scripts).
    pub fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self {
            color: std::io::stdout().is_terminal() && !no_color && !dumb,
        }
    }

    fn paint(self, sgr: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// For `*` notices.
    pub fn notice(self, text: &str) -> String {
        self.paint("36", text)
    }

    /// For `!` errors.
    pub fn error(self, text: &str) -> String {
        self.paint("31", text)
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// For server messages: bold yellow.
    fn server(self, text: &str) -> String {
        self.paint("1;33", text)
    }
}

/// Writes one line to stdout and flushes it. If stdout is gone (a closed
/// pipe), there is nobody left to talk to: exit with status 1.
pub fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}

/// What one client knows about the room: who it is and who is online.
#[derive(Debug, Clone)]
pub struct RoomView {
    roster: Roster,
    me: u64,
    my_name: String,
    removed: Option<LeaveReason>,
    /// Files offered to us and not ended, by transfer.
    offers: BTreeMap<u64, FileOffered>,
    /// Who was in each room's voice call (`None`: the default room's) at
    /// its last `voice_state`: a new state that only flips someone's
    /// connection or mute flag is not printed.
    in_call: std::collections::HashMap<Option<String>, Vec<String>>,
    /// Id of the oldest chat shown (welcome history, chats, history pages):
    /// `/history` pages back from it. `None` before any chat was shown.
    oldest: Option<u64>,
    style: Style,
}

impl RoomView {
    /// The room as the `welcome` describes it.
    pub fn new(welcome: &Welcome, style: Style) -> Self {
        Self {
            roster: Roster::from_welcome(welcome),
            me: welcome.session,
            my_name: welcome.name.clone(),
            removed: None,
            offers: BTreeMap::new(),
            in_call: std::collections::HashMap::new(),
            oldest: welcome.history.first().map(|c| c.id),
            style,
        }
    }

    /// The `before` of the next `/history` request: the oldest chat shown
    /// (`None`: nothing shown yet, ask for the newest).
    pub fn oldest_shown(&self) -> Option<u64> {
        self.oldest
    }

    /// Our session.
    pub fn me(&self) -> u64 {
        self.me
    }

    /// Our name in the room.
    pub fn my_name(&self) -> &str {
        &self.my_name
    }

    /// Who is online.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Why the server removed us, once it said so (a `left` about ourselves,
    /// e.g. `kicked` or `shutdown`).
    pub fn removed(&self) -> Option<LeaveReason> {
        self.removed
    }

    /// The files on offer, by transfer id.
    pub fn offers(&self) -> &BTreeMap<u64, FileOffered> {
        &self.offers
    }

    /// Forgets an offer (after declining it).
    pub fn forget_offer(&mut self, transfer: u64) -> Option<FileOffered> {
        self.offers.remove(&transfer)
    }

    /// The name of offered file `transfer`, made printable, if known.
    pub fn offer_name(&self, transfer: u64) -> Option<String> {
        self.offers
            .get(&transfer)
            .map(|o| one_line(&o.name).into_owned())
    }

    /// The `/files` listing: one line per offer, or a line saying there is none.
    pub fn files_lines(&self) -> Vec<String> {
        if self.offers.is_empty() {
            return vec![self.style.notice("* no files on offer")];
        }
        self.offers
            .values()
            .map(|o| {
                self.style.notice(&format!(
                    "* {}: {} ({}) from {}",
                    o.transfer,
                    one_line(&o.name),
                    human_size(o.size),
                    show_name(&o.from)
                ))
            })
            .collect()
    }

    /// The lines printed after login: who we are (noting a renaming when
    /// `requested` was taken), who is online, and the recent history.
    pub fn welcome_lines(&self, welcome: &Welcome, requested: &str) -> Vec<String> {
        let s = self.style;
        let mut lines = Vec::new();
        let mut me = format!("* you are {}", show_name(&welcome.name));
        if welcome.name != requested.trim() {
            me.push_str(&format!(" ({} was taken)", show_name(requested.trim())));
        }
        lines.push(s.notice(&me));
        lines.push(self.who_line());
        if welcome.history.is_empty() {
            lines.push(s.notice("* no recent messages"));
        } else {
            let n = welcome.history.len();
            let plural = if n == 1 { "" } else { "s" };
            lines.push(s.notice(&format!("* last {n} message{plural}:")));
            lines.extend(welcome.history.iter().map(|c| chat_line(c, s)));
        }
        lines
    }

    /// After a reconnect: the room as the new `welcome` describes it (who
    /// is online, our new session and name). Offers of the old connection
    /// are gone with it; what `/history` pages back from is kept, since the
    /// ids go on (unless [`RoomView::history_restarted`] says otherwise).
    pub fn rejoin(&mut self, welcome: &Welcome) {
        self.roster = Roster::from_welcome(welcome);
        self.me = welcome.session;
        self.my_name = welcome.name.clone();
        self.removed = None;
        self.offers.clear();
    }

    /// The server forgot the chats we saw (it restarted without a store, so
    /// its ids began again): `/history` pages back from `oldest`, the oldest
    /// chat of the new welcome.
    pub fn history_restarted(&mut self, oldest: Option<u64>) {
        self.oldest = oldest;
    }

    /// The lines printed after a reconnect: who we are now (noting a
    /// renaming when `requested` was taken) and who is online. The
    /// welcome's history is not repeated: the missed chats follow.
    pub fn rejoin_lines(&self, welcome: &Welcome, requested: &str) -> Vec<String> {
        let mut me = format!("* reconnected; you are {}", show_name(&welcome.name));
        if welcome.name != requested.trim() {
            me.push_str(&format!(" ({} was taken)", show_name(requested.trim())));
        }
        vec![self.style.notice(&me), self.who_line()]
    }

    /// `* 2 online: alice, bob` (names sorted; each one shown by
    /// [`show_name`], so `"bob, carol"` is one name).
    pub fn who_line(&self) -> String {
        let names: Vec<String> = self
            .roster
            .names()
            .iter()
            .map(|n| show_name(n).into_owned())
            .collect();
        self.style.notice(&format!(
            "* {} online: {}",
            self.roster.len(),
            names.join(", ")
        ))
    }

    /// Takes in a server message; returns the lines to print for it (none
    /// for pongs, repeats and other bookkeeping).
    pub fn apply(&mut self, msg: &ServerMessage) -> Vec<String> {
        let s = self.style;
        match msg {
            ServerMessage::Chat(chat) => {
                if chat.room.is_none() {
                    // Named rooms page back on their own (`crate::rooms`).
                    self.oldest.get_or_insert(chat.id);
                }
                vec![chat_line(chat, s)]
            }
            ServerMessage::History(h) => {
                let n = h.messages.len();
                let plural = if n == 1 { "" } else { "s" };
                let within = h
                    .room
                    .as_deref()
                    .map(|r| format!(" in #{}", show_name(r)))
                    .unwrap_or_default();
                let mut lines = vec![s.notice(&if h.after.is_some() && n == 0 {
                    "* no messages missed".to_owned()
                } else if h.after.is_some() && h.gap {
                    format!("* {n}+ messages missed while away; the newest {n}:")
                } else if h.after.is_some() {
                    format!("* {n} message{plural} missed while away:")
                } else if n == 0 {
                    format!("* no earlier messages{within}")
                } else {
                    format!("* {n} earlier message{plural}{within}:")
                })];
                if let Some(first) = h.messages.first().filter(|_| h.room.is_none()) {
                    if h.after.is_none() {
                        self.oldest = Some(self.oldest.map_or(first.id, |o| o.min(first.id)));
                    } else if h.gap {
                        // The missed chats before these are not shown:
                        // `/history` pages back from here through them.
                        self.oldest = Some(first.id);
                    }
                }
                lines.extend(h.messages.iter().map(|c| chat_line(c, s)));
                if h.gap {
                    lines.push(s.notice("* (more were missed: /history pages back through them)"));
                } else if h.after.is_none() && h.more {
                    lines.push(s.notice("* (more: /history)"));
                }
                lines
            }
            ServerMessage::Error(e) => vec![error_line(e, s)],
            ServerMessage::Presence(p) if p.room.is_some() => {
                let room = show_name(p.room.as_deref().unwrap_or_default()).into_owned();
                let mut lines = Vec::new();
                // Our own entry: `room_joined` said so already.
                for u in p.joined.iter().filter(|u| u.session != self.me) {
                    lines.push(s.notice(&format!("* {} joined #{room}", show_name(&u.name))));
                }
                for d in &p.left {
                    lines.push(s.notice(&format!(
                        "* {} left #{room} ({})",
                        show_name(&d.name),
                        d.reason
                    )));
                }
                lines
            }
            ServerMessage::Joined(_) | ServerMessage::Left(_) | ServerMessage::Presence(_) => {
                // Count as the batch is applied, so each line shows the
                // number online right after that change.
                let mut online = self.roster.len();
                let changes = self.roster.apply(msg);
                let mut lines = Vec::new();
                for change in changes {
                    let line = match change {
                        Change::Joined(u) => {
                            online += 1;
                            format!("* {} joined ({online} online)", show_name(&u.name))
                        }
                        Change::Left(u, reason) if u.session == self.me => {
                            online -= 1;
                            self.removed = Some(reason);
                            format!("* you were removed ({reason})")
                        }
                        Change::Left(u, reason) => {
                            online -= 1;
                            format!("* {} left ({reason}) ({online} online)", show_name(&u.name))
                        }
                    };
                    lines.push(s.notice(&line));
                }
                lines
            }
            ServerMessage::FileOffer(offer) => {
                self.offers.insert(offer.transfer, offer.clone());
                if offer.session == self.me {
                    // Our own upload: its `UploadReady` says so already.
                    return Vec::new();
                }
                vec![offer_line(offer, s)]
            }
            ServerMessage::FileCancelled(c) => match self.offers.remove(&c.transfer) {
                Some(offer) => vec![s.notice(&format!(
                    "* {} ({}) is no longer offered ({})",
                    one_line(&offer.name),
                    c.transfer,
                    one_line(&c.reason)
                ))],
                None => Vec::new(),
            },
            ServerMessage::VoiceState(state) => {
                let names: Vec<String> = state
                    .members
                    .iter()
                    .map(|m| show_name(&m.name).into_owned())
                    .collect();
                let before = self.in_call.get(&state.room).cloned().unwrap_or_default();
                if names == before {
                    return Vec::new();
                }
                let within = state
                    .room
                    .as_deref()
                    .map(|r| format!(" of #{}", show_name(r)))
                    .unwrap_or_default();
                self.in_call.insert(state.room.clone(), names.clone());
                vec![s.notice(&if names.is_empty() {
                    format!("* the voice call{within} is empty")
                } else {
                    format!("* in the voice call{within}: {}", names.join(", "))
                })]
            }
            ServerMessage::Registered(r) => vec![s.notice(&format!(
                "* registered {}: log in with its password from now on",
                show_name(&r.name)
            ))],
            ServerMessage::PasswordChanged(_) => vec![s.notice("* password changed")],
            ServerMessage::LoggedOut => {
                vec![s.notice("* logged out: the session token is revoked")]
            }
            ServerMessage::RoomList(list) => {
                let mut lines = vec![s.notice(&format!("* {} rooms:", list.rooms.len()))];
                for r in &list.rooms {
                    let mark = if r.default { " (default)" } else { "" };
                    let topic = if r.topic.is_empty() {
                        String::new()
                    } else {
                        format!(" \u{2014} {}", one_line(&r.topic))
                    };
                    lines.push(s.notice(&format!(
                        "*   #{}{mark}: {} here{topic}",
                        show_name(&r.room),
                        r.members
                    )));
                }
                lines
            }
            ServerMessage::RoomJoined(j) => {
                let names: Vec<String> = j
                    .users
                    .iter()
                    .map(|u| show_name(&u.name).into_owned())
                    .collect();
                let mut lines = vec![s.notice(&format!(
                    "* you are in #{} ({} here: {})",
                    show_name(&j.room),
                    names.len(),
                    names.join(", ")
                ))];
                if !j.topic.is_empty() {
                    lines.push(s.notice(&format!("* topic: {}", one_line(&j.topic))));
                }
                lines.extend(j.history.iter().map(|c| chat_line(c, s)));
                lines
            }
            ServerMessage::RoomMode(m) => vec![s.notice(&format!(
                "* {} made #{} {}",
                show_name(m.by.as_deref().unwrap_or("someone")),
                show_name(&m.room),
                if m.invite_only {
                    "invite-only"
                } else {
                    "open to everyone"
                }
            ))],
            ServerMessage::Invited(i) => vec![s.notice(&format!(
                "* {} invited you to #{} \u{2014} /join {}",
                show_name(i.by.as_deref().unwrap_or("someone")),
                show_name(&i.room),
                one_line(&i.room)
            ))],
            ServerMessage::RoomParted(p) => {
                vec![s.notice(&format!("* you left #{}", show_name(&p.room)))]
            }
            ServerMessage::Topic(t) => vec![s.notice(&format!(
                "* {} set the topic of #{}: {}",
                show_name(&t.by),
                show_name(&t.room),
                one_line(&t.topic)
            ))],
            ServerMessage::Notice(n) => {
                vec![s.notice(&format!("* notice from the server: {}", one_line(&n.text)))]
            }
            ServerMessage::Dm(d) => vec![dm_line(d, s)],
            ServerMessage::DmHistory(h) => {
                let n = h.messages.len();
                let mut lines = vec![s.notice(&if n == 0 {
                    format!("* no direct messages with {}", show_name(&h.with))
                } else {
                    format!("* {n} direct messages with {}:", show_name(&h.with))
                })];
                lines.extend(h.messages.iter().map(|d| dm_line(d, s)));
                if h.more {
                    lines.push(s.notice("* (more: /dms NAME again)"));
                }
                lines
            }
            ServerMessage::DmUnread(u) => {
                let list: Vec<String> = u
                    .conversations
                    .iter()
                    .map(|c| format!("{} ({})", show_name(&c.with), c.count))
                    .collect();
                vec![s.notice(&format!(
                    "* unread direct messages from {}: /dms NAME to read them",
                    list.join(", ")
                ))]
            }
            ServerMessage::Moderated(m) => {
                // Kicked or banned from the default room: off the server.
                if m.room.is_none() && m.name == self.my_name {
                    match m.action.as_str() {
                        "kick" => self.removed = Some(LeaveReason::Kicked),
                        "ban" => self.removed = Some(LeaveReason::Banned),
                        _ => {}
                    }
                }
                let room = m
                    .room
                    .as_deref()
                    .map(|r| format!(" in #{}", show_name(r)))
                    .unwrap_or_default();
                let what = match m.action.as_str() {
                    "kick" => "was kicked",
                    "ban" => "was banned",
                    "unban" => "is no longer banned",
                    "mute" => "was muted",
                    "unmute" => "is no longer muted",
                    "role" => "got a new role",
                    "invite" => "was invited",
                    _ => "was moderated",
                };
                let mut line = format!(
                    "* {} {what}{room} by {}",
                    show_name(&m.name),
                    show_name(&m.by)
                );
                if let Some(role) = &m.role {
                    line.push_str(&format!(": {}", one_line(role)));
                }
                if let Some(until) = m.until {
                    line.push_str(&format!(" until {}", clock::hms(until)));
                }
                if let Some(reason) = &m.reason {
                    line.push_str(&format!(" ({})", one_line(reason)));
                }
                vec![s.notice(&line)]
            }
            ServerMessage::Deleted(d) => vec![s.notice(&format!(
                "* message {} was deleted by {}",
                d.id,
                show_name(&d.by)
            ))],
            ServerMessage::Welcome(_)
            | ServerMessage::VoiceJoined(_)
            | ServerMessage::VoiceKey(_)
            | ServerMessage::Ping(_)
            | ServerMessage::Pong(_)
            | ServerMessage::FileUpload(_)
            | ServerMessage::FileProgress(_)
            | ServerMessage::FileReady(_)
            | ServerMessage::FileData(_)
            | ServerMessage::FileDone(_) => Vec::new(),
        }
    }
}

/// `[12:34:56Z] alice: hello`, or `[12:34:56Z] *** server: hello` for a
/// message from the server itself (`session == 0`; its `from` is not
/// shown). No member's name, as [`show_name`] prints it, starts with `*`.
pub fn chat_line(chat: &Chat, style: Style) -> String {
    let from = if chat.session == SERVER_SESSION {
        style.server(SERVER_MARK)
    } else {
        style.bold(&show_name(&chat.from))
    };
    let room = chat
        .room
        .as_deref()
        .map(|r| format!("#{} ", show_name(r)))
        .unwrap_or_default();
    format!(
        "{} {room}{from}: {}",
        style.dim(&format!("[{}]", clock::hms(chat.ts))),
        one_line(&chat.text)
    )
}

/// `[12:34:56Z] alice → bob: hi` (a direct message).
pub fn dm_line(dm: &chatcore::protocol::Dm, style: Style) -> String {
    format!(
        "{} {} \u{2192} {}: {}",
        style.dim(&format!("[{}]", clock::hms(dm.ts))),
        style.bold(&show_name(&dm.from)),
        style.bold(&show_name(&dm.to)),
        one_line(&dm.text)
    )
}

/// The session id of messages from the server itself (protocol.md 7.2).
pub const SERVER_SESSION: u64 = 0;

/// How the sender of a server message is shown: a form no member's name
/// takes (see [`show_name`]).
pub const SERVER_MARK: &str = "*** server";

/// `* alice offers report.pdf (1.2 MB) — /accept 7 or /decline 7`
/// (`a voice message` instead of the name for a voice message).
pub fn offer_line(offer: &FileOffered, style: Style) -> String {
    let what = match offer.kind {
        FileKind::Voice => format!("a voice message {}", one_line(&offer.name)),
        _ => one_line(&offer.name).into_owned(),
    };
    let place = match (&offer.room, &offer.to) {
        (Some(room), _) => format!(" in #{}", show_name(room)),
        (None, Some(_)) => " to you privately".to_owned(),
        (None, None) => String::new(),
    };
    style.notice(&format!(
        "* {} offers {what} ({}){place} \u{2014} /accept {id} or /decline {id}",
        show_name(&offer.from),
        human_size(offer.size),
        id = offer.transfer
    ))
}

/// `! error rate_limited: too many messages; slow down`.
pub fn error_line(e: &ErrorMsg, style: Style) -> String {
    let within = e
        .room
        .as_deref()
        .map(|r| format!(" in #{}", show_name(r)))
        .unwrap_or_default();
    style.error(&format!(
        "! error {}{within}: {}",
        e.code,
        one_line(&e.message)
    ))
}

#[cfg(test)]
mod tests {
    use chatcore::protocol::{Departure, ErrorCode, History, Joined, Left, Presence, UserInfo};

    use super::*;

    fn user(name: &str, session: u64) -> UserInfo {
        UserInfo {
            name: name.into(),
            session,
        }
    }

    fn welcome() -> Welcome {
        Welcome {
            registered: false,
            token: None,
            version: 1,
            name: "alice(1)".into(),
            session: 7,
            users: vec![user("alice", 3), user("alice(1)", 7)],
            history: vec![Chat {
                room: None,
                id: 1,
                from: "alice".into(),
                session: 3,
                text: "hi\nthere".into(),
                ts: 1_700_000_000_000,
                reference: None,
            }],
            heartbeat_ms: 10_000,
            max_frame: 1 << 20,
            max_text: 4096,
        }
    }

    #[test]
    fn welcome_lines_say_who_we_are_who_is_here_and_the_history() {
        let w = welcome();
        let view = RoomView::new(&w, Style::plain());
        assert_eq!(
            view.welcome_lines(&w, " alice "),
            vec![
                "* you are alice(1) (alice was taken)",
                "* 2 online: alice, alice(1)",
                "* last 1 message:",
                "[22:13:20Z] alice: hi\\nthere",
            ]
        );
    }

    fn bob_said(id: u64, text: &str) -> Chat {
        Chat {
            room: None,
            id,
            from: "bob".into(),
            session: 8,
            text: text.into(),
            ts: 1_700_000_000_000,
            reference: None,
        }
    }

    #[test]
    fn a_server_notice_is_one_line_apart_from_the_chat() {
        let mut view = RoomView::new(&welcome(), Style::plain());
        let notice = ServerMessage::Notice(chatcore::protocol::Notice {
            text: "restart at 22:00".into(),
            ts: 1_700_000_000_000,
        });
        assert_eq!(
            view.apply(&notice),
            vec!["* notice from the server: restart at 22:00"]
        );
    }

    #[test]
    fn a_reconnect_says_who_we_are_now_without_repeating_the_history() {
        let w = welcome();
        let mut view = RoomView::new(&w, Style::plain());
        let mut back = welcome();
        back.name = "alice".into();
        back.session = 9;
        back.users = vec![user("alice", 9)];
        view.rejoin(&back);
        assert_eq!(view.me(), 9);
        assert_eq!(
            view.rejoin_lines(&back, "alice"),
            vec!["* reconnected; you are alice", "* 1 online: alice"]
        );
    }

    #[test]
    fn the_missed_chats_say_how_many_and_a_gap_moves_history_to_it() {
        let mut view = RoomView::new(&welcome(), Style::plain());
        let none = ServerMessage::History(History {
            room: None,
            messages: vec![],
            more: false,
            before: None,
            after: Some(1),
            gap: false,
        });
        assert_eq!(view.apply(&none), vec!["* no messages missed"]);
        let some = ServerMessage::History(History {
            room: None,
            messages: vec![bob_said(2, "a"), bob_said(3, "b")],
            more: false,
            before: None,
            after: Some(1),
            gap: false,
        });
        assert_eq!(
            view.apply(&some),
            vec![
                "* 2 messages missed while away:",
                "[22:13:20Z] bob: a",
                "[22:13:20Z] bob: b",
            ]
        );
        assert_eq!(view.oldest_shown(), Some(1), "no gap: paging stays put");
        let gap = ServerMessage::History(History {
            room: None,
            messages: vec![bob_said(900, "c")],
            more: true,
            before: None,
            after: Some(3),
            gap: true,
        });
        assert_eq!(
            view.apply(&gap),
            vec![
                "* 1+ messages missed while away; the newest 1:",
                "[22:13:20Z] bob: c",
                "* (more were missed: /history pages back through them)",
            ]
        );
        assert_eq!(view.oldest_shown(), Some(900), "/history fills the gap");
    }

    #[test]
    fn presence_lines_count_as_they_go_and_repeats_are_silent() {
        let w = welcome();
        let mut view = RoomView::new(&w, Style::plain());
        // Our own join, as the server also broadcasts it: nothing to say.
        let own = ServerMessage::Joined(Joined {
            name: "alice(1)".into(),
            session: 7,
            ts: 0,
        });
        assert!(view.apply(&own).is_empty());
        let batch = ServerMessage::Presence(Presence {
            room: None,
            ts: 0,
            joined: vec![user("bob", 8), user("carol", 9)],
            left: vec![Departure {
                name: "alice".into(),
                session: 3,
                reason: LeaveReason::Timeout,
            }],
        });
        assert_eq!(
            view.apply(&batch),
            vec![
                "* bob joined (3 online)",
                "* carol joined (4 online)",
                "* alice left (timeout) (3 online)",
            ]
        );
        let kicked = ServerMessage::Left(Left {
            name: "alice(1)".into(),
            session: 7,
            ts: 0,
            reason: LeaveReason::Kicked,
        });
        assert_eq!(view.apply(&kicked), vec!["* you were removed (kicked)"]);
        assert_eq!(view.removed(), Some(LeaveReason::Kicked));
        assert_eq!(view.who_line(), "* 2 online: bob, carol");
    }

    fn offer(transfer: u64, from: &str, session: u64, name: &str, size: u64) -> FileOffered {
        FileOffered {
            room: None,
            to: None,
            transfer,
            from: from.into(),
            session,
            name: name.into(),
            size,
            sha256: vec![0; 32],
            kind: FileKind::File,
            ts: 0,
        }
    }

    #[test]
    fn offers_are_shown_listed_and_forgotten() {
        let w = welcome();
        let mut view = RoomView::new(&w, Style::plain());
        assert_eq!(view.files_lines(), vec!["* no files on offer"]);
        let msg = ServerMessage::FileOffer(offer(7, "bob", 8, "report.pdf", 1_234_567));
        assert_eq!(
            view.apply(&msg),
            vec!["* bob offers report.pdf (1.2 MB) \u{2014} /accept 7 or /decline 7"]
        );
        // A hostile name stays on one line.
        let msg = ServerMessage::FileOffer(offer(8, "eve\n", 9, "a\nb", 10));
        assert_eq!(
            view.apply(&msg),
            vec!["* \"eve\\n\" offers a\\nb (10 B) \u{2014} /accept 8 or /decline 8"]
        );
        // Our own offer is listed but not announced.
        let msg = ServerMessage::FileOffer(offer(9, "alice(1)", 7, "mine.txt", 1));
        assert!(view.apply(&msg).is_empty());
        assert_eq!(
            view.files_lines(),
            vec![
                "* 7: report.pdf (1.2 MB) from bob",
                "* 8: a\\nb (10 B) from \"eve\\n\"",
                "* 9: mine.txt (1 B) from alice(1)",
            ]
        );
        let ended = ServerMessage::FileCancelled(chatcore::protocol::transfer::FileCancelled {
            transfer: 7,
            reason: "expired".into(),
        });
        assert_eq!(
            view.apply(&ended),
            vec!["* report.pdf (7) is no longer offered (expired)"]
        );
        assert!(view.apply(&ended).is_empty(), "a repeat says nothing");
        assert_eq!(view.offer_name(8).as_deref(), Some("a\\nb"));
        assert!(view.forget_offer(8).is_some());
        assert_eq!(
            view.files_lines(),
            vec!["* 9: mine.txt (1 B) from alice(1)"]
        );
    }

    fn chat(from: &str, session: u64, text: &str) -> ServerMessage {
        ServerMessage::Chat(Chat {
            room: None,
            id: 2,
            from: from.into(),
            session,
            text: text.into(),
            ts: 1_700_000_000_000,
            reference: None,
        })
    }

    #[test]
    fn a_member_named_server_never_prints_like_a_server_message() {
        let w = welcome();
        let mut view = RoomView::new(&w, Style::plain());
        let real = view.apply(&chat("server", 0, "restart at noon"));
        assert_eq!(real, vec!["[22:13:20Z] *** server: restart at noon"]);
        // The server's mark does not depend on `from`.
        assert_eq!(
            view.apply(&chat("alice", 0, "restart at noon")),
            real,
            "session 0 is the server whatever the from"
        );
        for (fake, shown) in [
            ("server", "[22:13:20Z] server: restart at noon"),
            ("*** server", "[22:13:20Z] \"*** server\": restart at noon"),
            ("* server", "[22:13:20Z] \"* server\": restart at noon"),
            (
                "\u{200B}*** server",
                "[22:13:20Z] \"<U+200B>*** server\": restart at noon",
            ),
        ] {
            let line = view.apply(&chat(fake, 9, "restart at noon"));
            assert_eq!(line, vec![shown], "{fake:?}");
            assert!(!line[0].starts_with("[22:13:20Z] ***"), "{fake:?}");
        }
    }

    #[test]
    fn a_name_with_commas_is_one_name_in_who_and_joins() {
        let w = welcome();
        let mut view = RoomView::new(&w, Style::plain());
        let batch = ServerMessage::Presence(Presence {
            room: None,
            ts: 0,
            joined: vec![user("bob, carol, dave", 8)],
            left: vec![],
        });
        assert_eq!(
            view.apply(&batch),
            vec!["* \"bob, carol, dave\" joined (3 online)"]
        );
        assert_eq!(
            view.who_line(),
            "* 3 online: alice, alice(1), \"bob, carol, dave\""
        );
    }

    #[test]
    fn a_sender_name_cannot_fake_where_the_text_starts() {
        let w = welcome();
        let mut view = RoomView::new(&w, Style::plain());
        assert_eq!(
            view.apply(&chat("alice: I owe bob 100. bob", 9, "ok")),
            vec!["[22:13:20Z] \"alice: I owe bob 100. bob\": ok"]
        );
    }

    #[test]
    fn bidi_zero_width_and_tag_characters_are_shown_in_names_texts_and_file_names() {
        let w = welcome();
        let mut view = RoomView::new(&w, Style::plain());
        assert_eq!(
            view.apply(&chat(
                "ali\u{200B}ce",
                9,
                "evil \u{202E}RTL override\u{E0041}"
            )),
            vec!["[22:13:20Z] \"ali<U+200B>ce\": evil <U+202E>RTL override<U+E0041>"]
        );
        let msg = ServerMessage::FileOffer(offer(5, "\u{3164}", 9, "invoice\u{202E}fdp.exe", 1));
        assert_eq!(
            view.apply(&msg),
            vec![
                "* \"<U+3164>\" offers invoice<U+202E>fdp.exe (1 B) \u{2014} /accept 5 or /decline 5"
            ]
        );
        for line in view.files_lines() {
            assert!(
                !line.chars().any(|c| c == '\u{202E}' || c == '\u{3164}'),
                "{line:?}"
            );
        }
    }

    #[test]
    fn server_messages_have_their_own_colour() {
        let line = chat_line(
            &Chat {
                room: None,
                id: 1,
                from: "server".into(),
                session: 0,
                text: "hi".into(),
                ts: 1_700_000_000_000,
                reference: None,
            },
            Style { color: true },
        );
        assert_eq!(
            line,
            "\x1b[2m[22:13:20Z]\x1b[0m \x1b[1;33m*** server\x1b[0m: hi"
        );
    }

    #[test]
    fn errors_and_colour() {
        let e = ErrorMsg {
            room: None,
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            reference: None,
            transfer: None,
        };
        assert_eq!(
            error_line(&e, Style::plain()),
            "! error rate_limited: slow down"
        );
        assert_eq!(
            error_line(&e, Style { color: true }),
            "\x1b[31m! error rate_limited: slow down\x1b[0m"
        );
    }
}

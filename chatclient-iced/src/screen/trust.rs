//! The prompt shown when a server presents a certificate other than the
//! one remembered for it (trust on first use): the server, both
//! fingerprints, a warning that someone may be intercepting the
//! connection, and the choice: trust the new certificate and connect, or
//! cancel. Drawn over the screen it interrupted (the login form, or the
//! room when an automatic reconnection met the new certificate).
//!
//! `update` returns `(Task<Message>, Option<Event>)` like every screen;
//! the application acts on the [`Event`] (a new connection that first
//! remembers the new fingerprint, or back to the login form).

use chatcore::tls::Fingerprint;
use iced::font::Weight;
use iced::widget::{button, column, container, row, text};
use iced::{Center, Element, Fill, Font, Task};

use crate::net::Changed;
use crate::theme;

/// The button that accepts the new certificate.
pub const TRUST_BUTTON: &str = "Trust the new certificate and connect";
/// The button that leaves the server alone.
pub const CANCEL_BUTTON: &str = "Cancel";
/// The prompt's title.
pub const TITLE: &str = "The server's certificate has changed";

/// What the prompt shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The server, its remembered and its presented fingerprint.
    pub changed: Changed,
}

/// What the user does in the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Trust the presented certificate and connect.
    Trust,
    /// Do not connect.
    Cancel,
    /// Copy this fingerprint to the clipboard (to compare it elsewhere).
    Copy(String),
}

/// What the prompt reports upward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Remember `presented` for `server` and connect again.
    Trust {
        /// The server as typed.
        server: String,
        /// The fingerprint to remember.
        presented: Fingerprint,
    },
    /// Give up on this server for now.
    Cancel {
        /// The server as typed.
        server: String,
    },
}

impl State {
    /// The prompt for this change.
    pub fn new(changed: Changed) -> Self {
        Self { changed }
    }

    /// Applies a message.
    pub fn update(&self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Trust => (
                Task::none(),
                Some(Event::Trust {
                    server: self.changed.server.clone(),
                    presented: self.changed.presented,
                }),
            ),
            Message::Cancel => (
                Task::none(),
                Some(Event::Cancel {
                    server: self.changed.server.clone(),
                }),
            ),
            Message::Copy(s) => (iced::clipboard::write(s), None),
        }
    }

    /// The prompt: a panel centred over a dimmed page.
    pub fn view(&self) -> Element<'_, Message> {
        let bold = Font {
            weight: Weight::Bold,
            ..Font::DEFAULT
        };
        let c = &self.changed;
        let body = |s: String| text(s).size(14);
        let warning = container(
            text(
                "Someone may be intercepting your connection (a machine in between \
                 pretending to be the server), or the server's operator replaced its \
                 certificate. Do not trust it unless the operator confirms the new \
                 fingerprint (the server logs it when it starts).",
            )
            .size(14)
            .color(theme::ERROR),
        )
        .padding(12)
        .width(Fill)
        .style(theme::danger_box);
        let panel = column![
            text(TITLE).size(24).font(bold).color(theme::ERROR),
            body(format!(
                "{} presented a certificate other than the one you trusted before. \
                 Nothing has been sent to it.",
                c.server
            )),
            warning,
            fingerprint_block(
                format!("Remembered fingerprint (in {})", home_relative(&c.file)),
                c.remembered
            ),
            fingerprint_block("Presented fingerprint (new)".to_owned(), c.presented),
            row![
                button(text(CANCEL_BUTTON).size(15))
                    .padding([10, 18])
                    .style(theme::quiet_button)
                    .on_press(Message::Cancel),
                button(text(TRUST_BUTTON).size(15))
                    .padding([10, 18])
                    .style(button::danger)
                    .on_press(Message::Trust),
            ]
            .spacing(12),
        ]
        .spacing(16);
        let card = container(panel).padding(28).width(680).style(theme::panel);
        container(card).center(Fill).style(theme::scrim).into()
    }
}

/// A fingerprint under its label, in a fixed-width font on two lines of 16
/// bytes (easy to compare pair by pair), with a Copy button.
fn fingerprint_block(label: String, fp: Fingerprint) -> Element<'static, Message> {
    let full = fp.to_string();
    column![
        text(label).size(13).color(theme::MUTED),
        row![
            container(fingerprint_lines(&full)).width(Fill),
            button(text("Copy").size(13))
                .padding([4, 10])
                .style(theme::quiet_button)
                .on_press(Message::Copy(full.clone())),
        ]
        .spacing(8)
        .align_y(Center),
    ]
    .spacing(4)
    .into()
}

/// `path` with the home directory written `~` (shorter, and the same on
/// every account).
fn home_relative(path: &std::path::Path) -> String {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

/// The `AB:CD:...` form in a fixed-width font, split after 16 bytes.
pub fn fingerprint_lines<'a, M: 'a>(full: &str) -> Element<'a, M> {
    // 16 bytes are 47 characters; the 48th is the colon between halves.
    let (first, second) = match (full.get(..47), full.get(48..)) {
        (Some(a), Some(b)) => (a.to_owned(), b.to_owned()),
        _ => (full.to_owned(), String::new()),
    };
    let mono = |s: String| text(s).size(14).font(Font::MONOSPACE);
    column![mono(first), mono(second)].spacing(2).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed() -> Changed {
        Changed {
            server: "chat.example:6789".into(),
            remembered: Fingerprint([1; 32]),
            presented: Fingerprint([2; 32]),
            file: "known_servers".into(),
        }
    }

    #[test]
    fn trust_asks_to_remember_the_presented_fingerprint_for_the_typed_server() {
        let s = State::new(changed());
        assert_eq!(
            s.update(Message::Trust).1,
            Some(Event::Trust {
                server: "chat.example:6789".into(),
                presented: Fingerprint([2; 32]),
            })
        );
        assert_eq!(
            s.update(Message::Cancel).1,
            Some(Event::Cancel {
                server: "chat.example:6789".into()
            })
        );
    }
}

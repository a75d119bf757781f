//! The login screen: server address (prefilled), name, password, Log in or
//! Register.
//!
//! An empty name shows an inline prompt and does not connect; Enter in
//! any field logs in; errors from the connection attempt are shown in
//! words under the form. The password is optional: empty is a guest login
//! exactly as before accounts; with a password, "Log in" proves a
//! registered name and "Register" logs in as a guest and registers the
//! name with it. The password field is a secure input and the password is
//! never logged or shown (see [`Secret`]).
//!
//! `update` returns `(Task<Message>, Option<Event>)`, the pattern of every
//! screen: the [`Event`] tells the application to connect.

use iced::widget::{button, center, column, container, row, text, text_input};
use iced::{Center, Element, Fill, Task};

use crate::net::{Login, Secret, Security};
use crate::theme;

/// The server address a new login screen shows.
pub const DEFAULT_SERVER: &str = "127.0.0.1:6789";
/// The name field, focused when the screen opens.
pub const NAME_INPUT: &str = "login-name";
/// The server field.
pub const SERVER_INPUT: &str = "login-server";
/// The password field.
pub const PASSWORD_INPUT: &str = "login-password";
/// The inline prompt for an empty name.
pub const EMPTY_NAME_PROMPT: &str = "Please enter a name.";
/// The inline prompt for "Register" with a password the server would refuse.
pub const REGISTER_PASSWORD_PROMPT: &str =
    "To register, choose a password of 8 to 1024 bytes (at least 8 characters).";
/// Shortest password the server accepts (docs/protocol.md, accounts).
const PASSWORD_MIN: usize = 8;
/// Longest password the server accepts.
const PASSWORD_MAX: usize = 1024;

/// What the login form holds.
#[derive(Debug, Clone)]
pub struct State {
    /// `host:port` as typed.
    pub server: String,
    /// The name as typed.
    pub name: String,
    /// The password as typed (empty: a guest login). Hidden from `Debug`.
    pub password: Secret,
    /// Why the last attempt failed (or the empty-name prompt).
    pub error: Option<String>,
    /// A login is under way: the button shows it and does nothing.
    pub connecting: bool,
    /// How the connection will be protected (command line), told under
    /// the form so that `--no-tls` and `--insecure` are not forgotten.
    pub security: Security,
}

impl Default for State {
    fn default() -> Self {
        Self {
            server: DEFAULT_SERVER.to_owned(),
            name: String::new(),
            password: Secret::default(),
            error: None,
            connecting: false,
            security: Security::default(),
        }
    }
}

/// What the user does on this screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The server field changed.
    ServerChanged(String),
    /// The name field changed.
    NameChanged(String),
    /// The password field changed.
    PasswordChanged(Secret),
    /// Log in (button or Enter).
    Submit,
    /// Log in as a guest and register the name with the password.
    Register,
}

/// What the login screen reports upward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Connect to `addr` as `name`.
    Connect {
        /// `host:port`.
        addr: String,
        /// The requested name (trimmed).
        name: String,
        /// Guest, password or register.
        login: Login,
    },
}

impl State {
    /// Applies a message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        (Task::none(), self.apply(message))
    }

    fn apply(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::ServerChanged(s) => {
                self.server = s;
                None
            }
            Message::NameChanged(n) => {
                self.name = n;
                if self.error.as_deref() == Some(EMPTY_NAME_PROMPT) && !self.name.trim().is_empty()
                {
                    self.error = None;
                }
                None
            }
            Message::PasswordChanged(p) => {
                self.password = p;
                if self.error.as_deref() == Some(REGISTER_PASSWORD_PROMPT) {
                    self.error = None;
                }
                None
            }
            Message::Submit => self.submit(false),
            Message::Register => self.submit(true),
        }
    }

    /// Log in (`register` false) or register: checks the form and asks to
    /// connect.
    fn submit(&mut self, register: bool) -> Option<Event> {
        if self.connecting {
            return None;
        }
        let name = self.name.trim();
        if name.is_empty() {
            self.error = Some(EMPTY_NAME_PROMPT.to_owned());
            return None;
        }
        let addr = self.server.trim();
        if addr.is_empty() {
            self.error = Some("Please enter the server address (host:port).".to_owned());
            return None;
        }
        let password = &self.password;
        let login = if register {
            let len = password.expose().len();
            if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
                self.error = Some(REGISTER_PASSWORD_PROMPT.to_owned());
                return None;
            }
            Login::Register(password.clone())
        } else if password.is_empty() {
            Login::Guest
        } else {
            Login::Password(password.clone())
        };
        self.error = None;
        self.connecting = true;
        Some(Event::Connect {
            addr: addr.to_owned(),
            name: name.to_owned(),
            login,
        })
    }

    /// The attempt failed: show why and let the user try again.
    pub fn failed(&mut self, why: String) {
        self.connecting = false;
        self.error = Some(why);
    }

    /// The form, centred in the window.
    pub fn view(&self) -> Element<'_, Message> {
        let label = |s| text(s).size(14).color(theme::MUTED);
        let server = text_input("host:port", &self.server)
            .id(SERVER_INPUT)
            .on_input(Message::ServerChanged)
            .on_submit(Message::Submit)
            .padding(10)
            .size(16);
        let name = text_input("Your name", &self.name)
            .id(NAME_INPUT)
            .on_input(Message::NameChanged)
            .on_submit(Message::Submit)
            .padding(10)
            .size(16);
        let password = text_input("Password (optional)", self.password.expose())
            .id(PASSWORD_INPUT)
            .secure(true)
            .on_input(|p| Message::PasswordChanged(Secret::new(p)))
            .on_submit(Message::Submit)
            .padding(10)
            .size(16);
        let button_label = if self.connecting {
            "Connecting…"
        } else {
            "Log in"
        };
        let submit = button(text(button_label).size(16).width(Fill).align_x(Center))
            .padding([10, 16])
            .width(Fill)
            .on_press_maybe((!self.connecting).then_some(Message::Submit));
        let register = button(text("Register").size(16).width(Fill).align_x(Center))
            .padding([10, 16])
            .width(Fill)
            .style(theme::quiet_button)
            .on_press_maybe((!self.connecting).then_some(Message::Register));
        let mut form = column![
            text("Chat room").size(28),
            text("Join a room on a chat server")
                .size(14)
                .color(theme::MUTED),
            column![label("Server"), server].spacing(6),
            column![label("Name"), name].spacing(6),
            column![
                label("Password"),
                password,
                text(
                    "Empty: join as a guest. With a password: Log in to a registered name, \
                     or Register this name."
                )
                .size(12)
                .color(theme::MUTED),
            ]
            .spacing(6),
        ]
        .spacing(18);
        if let Some(error) = &self.error {
            form = form.push(text(error.as_str()).size(14).color(theme::ERROR));
        }
        form = form.push(row![submit, register].spacing(10));
        let (words, color) = security_note(&self.security);
        form = form.push(text(words).size(13).color(color));
        let card = container(form).padding(32).width(420).style(theme::panel);
        container(center(card)).style(theme::page).into()
    }
}

/// One line about how the connection will be protected; a warning colour
/// for the flags that weaken it.
pub fn security_note(security: &Security) -> (String, iced::Color) {
    match security {
        Security::FirstUse { .. } => (
            "Encrypted (TLS). A server's certificate is remembered the first time and \
             checked every time after."
                .to_owned(),
            theme::MUTED,
        ),
        Security::CaFile(path) => (
            format!(
                "Encrypted (TLS), the certificate verified against {}.",
                path.display()
            ),
            theme::MUTED,
        ),
        Security::SystemRoots => (
            "Encrypted (TLS), the certificate verified against the system's certificate \
             authorities."
                .to_owned(),
            theme::MUTED,
        ),
        Security::Insecure => (
            "Warning (--insecure): encrypted, but the server's certificate is NOT verified. \
             Anyone on the path can pose as the server and read everything."
                .to_owned(),
            theme::ERROR,
        ),
        Security::Plain => (
            "Warning (--no-tls): NOT encrypted. Anyone on the network can read your \
             messages and files."
                .to_owned(),
            theme::ERROR,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_name_shows_a_prompt_and_does_not_connect() {
        let mut s = State::default();
        let _ = s.update(Message::NameChanged("   ".into()));
        assert_eq!(s.update(Message::Submit).1, None);
        assert_eq!(s.error.as_deref(), Some(EMPTY_NAME_PROMPT));
        assert!(!s.connecting);
        // Typing a name clears the prompt.
        let _ = s.update(Message::NameChanged("a".into()));
        assert_eq!(s.error, None);
    }

    #[test]
    fn submitting_connects_to_the_prefilled_server_with_the_trimmed_name() {
        let mut s = State::default();
        let _ = s.update(Message::NameChanged("  alice ".into()));
        assert_eq!(
            s.update(Message::Submit).1,
            Some(Event::Connect {
                addr: DEFAULT_SERVER.into(),
                name: "alice".into(),
                login: Login::Guest,
            })
        );
        assert!(s.connecting);
        // A second Enter while connecting does not start another login.
        assert_eq!(s.update(Message::Submit).1, None);
    }

    #[test]
    fn a_password_logs_in_with_it_and_register_checks_its_length_first() {
        let mut s = State::default();
        let _ = s.update(Message::NameChanged("alice".into()));
        let _ = s.update(Message::PasswordChanged(Secret::new("short")));
        assert_eq!(s.update(Message::Register).1, None, "too short to register");
        assert_eq!(s.error.as_deref(), Some(REGISTER_PASSWORD_PROMPT));
        assert!(!s.connecting);
        let _ = s.update(Message::PasswordChanged(Secret::new("correct horse")));
        assert_eq!(s.error, None, "typing clears the prompt");
        assert_eq!(
            s.update(Message::Register).1,
            Some(Event::Connect {
                addr: DEFAULT_SERVER.into(),
                name: "alice".into(),
                login: Login::Register(Secret::new("correct horse")),
            })
        );
        s.failed("no".into());
        assert!(matches!(
            s.update(Message::Submit).1,
            Some(Event::Connect {
                login: Login::Password(_),
                ..
            })
        ));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let mut s = State::default();
        let _ = s.update(Message::NameChanged("alice".into()));
        let _ = s.update(Message::PasswordChanged(Secret::new("hunter2-secret")));
        let event = s.update(Message::Submit).1;
        assert!(event.is_some());
        let printed = format!("{s:?} {event:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn a_failed_login_shows_why_and_allows_another_try() {
        let mut s = State::default();
        let _ = s.update(Message::NameChanged("alice".into()));
        let _ = s.update(Message::Submit);
        s.failed("Connection refused".into());
        assert!(!s.connecting);
        assert_eq!(s.error.as_deref(), Some("Connection refused"));
        assert!(matches!(
            s.update(Message::Submit).1,
            Some(Event::Connect { .. })
        ));
    }
}

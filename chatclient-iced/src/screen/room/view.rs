//! The room drawn: status line, message list, composer, sidebar (user
//! list and voice panel).

use iced::widget::{Column, button, column, container, row, scrollable, text, text_input};
use iced::{Center, Element, Fill};

use super::{COMPOSER, Entry, LIST, Link, Message, PATH_INPUT, State, offer_card};
use crate::format;
use crate::peer_text::shown;
use crate::theme;
use crate::widgets::{message_line, user_list};

impl State {
    /// The whole room screen.
    pub fn view(&self) -> Element<'_, Message> {
        let main = column![self.list(), self.composer()]
            .spacing(10)
            .width(Fill);
        let body = row![main, self.sidebar()].spacing(12).height(Fill);
        container(column![self.status_line(), body].spacing(12).padding(12))
            .style(theme::page)
            .width(Fill)
            .height(Fill)
            .into()
    }

    fn status_line(&self) -> Element<'_, Message> {
        let (dot, color, words) = match &self.link {
            Link::Online => (
                "●",
                theme::OK,
                format!("Connected to {} as {}", self.server, self.name),
            ),
            Link::Connecting(n) => (
                "●",
                theme::WARN,
                format!("Reconnecting to {} (attempt {n})…", self.server),
            ),
            Link::Stopped(why) => (
                "●",
                theme::ERROR,
                format!("Not connected: {}", why.trim_end_matches('.')),
            ),
            Link::Lost { reason, retry_in } => (
                "●",
                theme::ERROR,
                format!(
                    "Disconnected: {}. Retrying in {}…",
                    reason.trim_end_matches('.'),
                    format::seconds(*retry_in)
                ),
            ),
        };
        container(
            row![
                text(dot).size(14).color(color),
                text(shown(&words).into_owned()).size(14).width(Fill),
                self.security_badge(),
            ]
            .spacing(8)
            .align_y(Center),
        )
        .padding([8, 14])
        .width(Fill)
        .style(theme::status_bar)
        .into()
    }

    /// The connection's protection, as a small outlined badge: green when
    /// encrypted and verified, red when not encrypted or not verified.
    fn security_badge(&self) -> Element<'_, Message> {
        use chatcore::tls::Trust as P;
        if self.link != Link::Online {
            // Says nothing about a connection that is not there.
            return row![].into();
        }
        let (words, tint) = match self.protection {
            Some(P::FirstUse(_) | P::Known(_)) => {
                ("TLS · encrypted · certificate remembered", theme::OK)
            }
            Some(P::CaVerified) => ("TLS · encrypted · certificate verified", theme::OK),
            Some(P::Insecure) => ("TLS · NOT VERIFIED (--insecure)", theme::ERROR),
            Some(P::Plain) => ("NOT ENCRYPTED (--no-tls)", theme::ERROR),
            None => ("", theme::MUTED),
        };
        if words.is_empty() {
            return row![].into();
        }
        container(text(words).size(12))
            .padding([3, 8])
            .style(theme::badge(tint))
            .into()
    }

    fn list(&self) -> Element<'_, Message> {
        let len = self.pane.entries.len();
        let range = self.pane.window.range(len);
        let mut col = Column::new().spacing(8).padding([12, 16]).width(Fill);
        if range.start > 0 {
            col = col.push(
                container(
                    button(text(format!("Show earlier messages ({} more)", range.start)).size(13))
                        .style(theme::quiet_button)
                        .on_press(Message::ShowEarlier),
                )
                .center_x(Fill),
            );
        }
        if range.start == 0 && (self.can_load_earlier() || self.loading_earlier()) {
            let label = if self.loading_earlier() {
                "Loading earlier messages…"
            } else {
                "Load earlier messages"
            };
            col = col.push(
                container(
                    button(text(label).size(13))
                        .style(theme::quiet_button)
                        .on_press_maybe(self.can_load_earlier().then_some(Message::LoadEarlier)),
                )
                .center_x(Fill),
            );
        }
        for entry in &self.pane.entries[range.clone()] {
            col = col.push(match entry {
                Entry::Chat(line) => {
                    message_line::chat(&line.from, &line.time, &line.text, line.own)
                }
                Entry::System(s) => message_line::system(s),
                Entry::Error(s) => message_line::error(s),
                Entry::Fingerprint {
                    text: line,
                    fingerprint,
                } => column![
                    message_line::system(line),
                    row![
                        crate::screen::trust::fingerprint_lines(fingerprint),
                        button(text("Copy").size(12))
                            .padding([2, 8])
                            .style(theme::quiet_button)
                            .on_press(Message::Copy(fingerprint.clone())),
                    ]
                    .spacing(10)
                    .align_y(Center),
                ]
                .spacing(4)
                .into(),
                Entry::File(id) => match self.files.get(*id) {
                    Some(card) => offer_card::view(card, &self.voice),
                    None => message_line::system("(file no longer known)"),
                },
            });
        }
        if len == 0 {
            col = col.push(message_line::system("No messages yet. Say hello!"));
        }
        let list = scrollable(col)
            .id(LIST)
            .on_scroll(Message::Scrolled)
            .height(Fill)
            .width(Fill);
        let mut stack = column![list].height(Fill);
        let unseen = self.pane.window.unseen().max(len.saturating_sub(range.end));
        if !self.pane.window.at_bottom() && unseen > 0 {
            stack = stack.push(
                container(
                    button(text(format!("{unseen} new — Jump to latest")).size(13))
                        .on_press(Message::JumpToLatest),
                )
                .center_x(Fill)
                .padding(6),
            );
        }
        container(stack)
            .style(theme::panel)
            .width(Fill)
            .height(Fill)
            .into()
    }

    fn composer(&self) -> Element<'_, Message> {
        let input = text_input("Type a message…", &self.pane.input)
            .id(COMPOSER)
            .on_input(Message::InputChanged)
            .on_submit(Message::Send)
            .padding(10)
            .size(15);
        let has_text = !self.pane.input.trim().is_empty();
        let send = button(text("Send").size(15))
            .padding([10, 18])
            .on_press_maybe(has_text.then_some(Message::Send));
        let clear = button(text("Clear").size(15))
            .padding([10, 14])
            .style(theme::quiet_button)
            .on_press_maybe((!self.pane.input.is_empty()).then_some(Message::Clear));
        let send_file = button(text("Send file…").size(15))
            .padding([10, 14])
            .style(theme::quiet_button)
            .on_press(Message::PickFile);
        let mut col = column![
            row![send_file, input, send, clear]
                .spacing(8)
                .align_y(Center)
        ]
        .spacing(6);
        if let Some(path) = &self.path_input {
            let field = text_input("Path of the file to send, e.g. /home/me/report.pdf", path)
                .id(PATH_INPUT)
                .on_input(Message::PathChanged)
                .on_submit(Message::SendPath)
                .padding(8)
                .size(14);
            col = col.push(
                column![
                    text("No file picked (or no file dialog on this desktop): type a path.")
                        .size(12)
                        .color(theme::MUTED),
                    row![
                        field,
                        button(text("Offer").size(14)).on_press(Message::SendPath),
                        button(text("Close").size(14))
                            .style(theme::quiet_button)
                            .on_press(Message::ClosePath),
                    ]
                    .spacing(8)
                    .align_y(Center),
                ]
                .spacing(4),
            );
        }
        if let Some(note) = &self.composer_note {
            col = col.push(text(note.as_str()).size(12).color(theme::WARN));
        }
        container(col)
            .padding(10)
            .style(theme::panel)
            .width(Fill)
            .into()
    }

    fn sidebar(&self) -> Element<'_, Message> {
        let voice = &self.voice;
        let mark = |session| {
            let m = voice.member(session)?;
            Some(if m.muted {
                ("♪ muted", theme::MUTED)
            } else if voice.call.speaking.contains(&session) {
                ("♪ speaking", theme::ERROR)
            } else if !m.connected {
                ("♪ connecting", theme::MUTED)
            } else {
                ("♪ in call", theme::OK)
            })
        };
        let users = user_list::view(&self.pane.users, self.session, mark, self.link == Link::Online);
        let voice = self.voice.view().map(Message::Voice);
        container(column![users, iced::widget::rule::horizontal(1), voice].spacing(14))
            .padding(14)
            .width(250)
            .height(Fill)
            .style(theme::panel)
            .into()
    }
}

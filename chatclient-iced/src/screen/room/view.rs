//! The room drawn: status line, message list, composer, sidebar (user
//! list and voice panel).

use iced::font::Weight;
use iced::widget::{
    Column, button, checkbox, column, container, mouse_area, row, scrollable, text, text_input,
};
use iced::{Center, Element, Fill, Font};

use super::dms::{DM_COMPOSER, DM_LIST, DM_START_INPUT};
use super::rooms::{Action, INVITE_INPUT, JOIN_INPUT, Selection, TOPIC_INPUT};
use super::{COMPOSER, Entry, LIST, Link, Message, PATH_INPUT, State, offer_card};
use crate::format;
use crate::peer_text::shown;
use crate::theme;
use crate::widgets::{message_line, user_list};

impl State {
    /// The whole room screen.
    pub fn view(&self) -> Element<'_, Message> {
        let mut main = Column::new().spacing(10).width(Fill);
        if let Some(name) = self.dms.shown.as_deref() {
            main = main.push(self.dm_pane(name));
        } else {
            main = self.room_main(main);
        }
        let body = row![self.room_sidebar(), main, self.sidebar()]
            .spacing(12)
            .height(Fill);
        container(column![self.status_line(), body].spacing(12).padding(12))
            .style(theme::page)
            .width(Fill)
            .height(Fill)
            .into()
    }

    /// The shown room's topic, list, action bar and composer.
    fn room_main<'a>(&'a self, mut main: Column<'a, Message>) -> Column<'a, Message> {
        if self.rooms.shown.is_some() {
            main = main.push(self.topic_line());
        }
        main = main.push(self.list());
        if let Some(bar) = self.action_bar() {
            main = main.push(bar);
        }
        main.push(self.composer())
    }

    /// The direct conversation with `name`: its title, its messages
    /// (oldest first) and its composer.
    fn dm_pane(&self, name: &str) -> Element<'_, Message> {
        let bold = Font {
            weight: Weight::Bold,
            ..Font::DEFAULT
        };
        let conv = self.dms.conversations.get(name);
        let title = container(
            row![
                text(format!("@ {}", shown(name))).size(16).font(bold),
                text("Direct message").size(13).color(theme::MUTED),
            ]
            .spacing(10)
            .align_y(Center),
        )
        .padding([8, 14])
        .width(Fill)
        .style(theme::panel);
        let mut col = Column::new().spacing(8).padding([12, 16]).width(Fill);
        if conv.is_some_and(|c| c.more) {
            col = col.push(
                button(text("Load earlier").size(13))
                    .style(theme::quiet_button)
                    .on_press(Message::DmLoadEarlier),
            );
        }
        let lines = self.dm_lines(name);
        for line in lines {
            col = col.push(message_line::chat(
                &line.from, &line.time, &line.text, line.own,
            ));
        }
        if lines.is_empty() {
            col = col.push(message_line::system(
                "No messages yet. Only the two of you see this conversation.",
            ));
        }
        let list = container(
            scrollable(col)
                .id(DM_LIST)
                .anchor_bottom()
                .height(Fill)
                .width(Fill),
        )
        .style(theme::panel)
        .width(Fill)
        .height(Fill);
        let draft = conv.map_or("", |c| c.input.as_str());
        let input = text_input(&format!("Message {}…", shown(name)), draft)
            .id(DM_COMPOSER)
            .on_input(Message::DmInputChanged)
            .on_submit(Message::DmSend)
            .padding(10)
            .size(15);
        let send = button(text("Send").size(15))
            .padding([10, 18])
            .on_press_maybe((!draft.trim().is_empty()).then_some(Message::DmSend));
        let send_file = button(text("Send file…").size(15))
            .padding([10, 14])
            .style(theme::quiet_button)
            .on_press(Message::PickFile);
        let mut composer =
            column![row![send_file, input, send].spacing(8).align_y(Center)].spacing(6);
        if let Some(field) = self.path_field() {
            composer = composer.push(field);
        }
        if let Some(note) = conv.and_then(|c| c.note.as_deref()) {
            composer = composer.push(text(note).size(12).color(theme::WARN));
        }
        column![
            title,
            list,
            container(composer)
                .padding(10)
                .style(theme::panel)
                .width(Fill),
        ]
        .spacing(10)
        .height(Fill)
        .into()
    }

    /// The sidebar's direct conversations (unread counts for those not
    /// shown) and the field to start one.
    fn dm_list(&self) -> Element<'_, Message> {
        let mut tabs = Column::new().spacing(4).width(Fill);
        for tab in self.dm_tabs() {
            let label = format!("@ {}", shown(&tab.name));
            let pick = sidebar_tab(
                label,
                tab.unread,
                tab.shown,
                Message::ShowDm(tab.name.clone()),
            );
            tabs = tabs.push(pick);
        }
        let start = text_input("Message someone…", &self.dms.start_input)
            .id(DM_START_INPUT)
            .on_input(Message::DmStartChanged)
            .on_submit(Message::DmStartTyped)
            .padding(6)
            .size(13);
        column![tabs, start].spacing(8).into()
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
                    let chat = message_line::chat(&line.from, &line.time, &line.text, line.own);
                    let picked = matches!(
                        self.rooms.selected,
                        Some(Selection::Chat { id, .. }) if id == line.id
                    );
                    let chat = if picked {
                        container(chat).padding(4).style(theme::card).into()
                    } else {
                        chat
                    };
                    mouse_area(chat)
                        .on_press(Message::SelectChat(line.id))
                        .into()
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
        // A file goes to the room shown (docs/protocol.md 23.6).
        let line = row![send_file, input, send, clear];
        let mut col = column![line.spacing(8).align_y(Center)].spacing(6);
        if let Some(field) = self.path_field() {
            col = col.push(field);
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
        let in_default = self.rooms.shown.is_none();
        let mark = |session| if in_default { mark(session) } else { None };
        let select = |u: &chatcore::protocol::UserInfo| Message::SelectMember(u.clone());
        let users = user_list::view(
            &self.pane.users,
            self.session,
            mark,
            self.link == Link::Online,
            self.rooms.shown.as_deref(),
            Some(&select),
        );
        let voice = self.voice.view().map(Message::Voice);
        container(column![users, iced::widget::rule::horizontal(1), voice].spacing(14))
            .padding(14)
            .width(250)
            .height(Fill)
            .style(theme::panel)
            .into()
    }

    /// The left-hand list: the rooms we are in (unread counts for those
    /// not shown), the join field, the server's rooms to browse, and the
    /// place of direct messages.
    fn room_sidebar(&self) -> Element<'_, Message> {
        let bold = Font {
            weight: Weight::Bold,
            ..Font::DEFAULT
        };
        let mut tabs = Column::new().spacing(4).width(Fill);
        for tab in self.room_tabs() {
            let pick = sidebar_tab(
                format!("# {}", shown(&tab.name)),
                tab.unread as u64,
                tab.shown && self.dms.shown.is_none(),
                Message::ShowRoom(tab.key.clone()),
            );
            let line = match &tab.key {
                Some(name) => row![
                    pick,
                    button(text("×").size(13))
                        .padding([4, 6])
                        .style(theme::quiet_button)
                        .on_press(Message::Part(name.clone())),
                ]
                .spacing(2)
                .align_y(Center),
                None => row![pick],
            };
            tabs = tabs.push(line);
        }
        let join = row![
            text_input("Join or create…", &self.rooms.join_input)
                .id(JOIN_INPUT)
                .on_input(Message::JoinInputChanged)
                .on_submit(Message::JoinTyped)
                .padding(6)
                .size(13),
            button(text("Join").size(13))
                .padding([6, 8])
                .on_press(Message::JoinTyped),
        ]
        .spacing(4)
        .align_y(Center);
        let private = checkbox(self.rooms.join_private)
            .label("Private (invite-only) when created")
            .text_size(12)
            .size(14)
            .on_toggle(Message::JoinPrivateToggled);
        let mut col = column![text("Rooms").size(16).font(bold), tabs, join, private].spacing(10);
        match self.browse() {
            None => {
                col = col.push(
                    button(text("Browse rooms").size(13))
                        .style(theme::quiet_button)
                        .on_press(Message::BrowseRooms),
                );
            }
            Some(list) => {
                let mut rooms = Column::new().spacing(6);
                for r in list {
                    let mut info = column![
                        text(format!("# {} ({})", shown(&r.room), r.members))
                            .size(13)
                            .font(bold)
                    ];
                    if !r.topic.is_empty() {
                        info = info.push(text(shown(&r.topic)).size(12).color(theme::MUTED));
                    }
                    rooms = rooms.push(
                        row![
                            info.width(Fill),
                            button(text("Join").size(12))
                                .padding([2, 6])
                                .on_press(Message::Join(r.room.clone())),
                        ]
                        .spacing(4)
                        .align_y(Center),
                    );
                }
                if list.is_empty() {
                    rooms = rooms.push(text("Asking the server…").size(12).color(theme::MUTED));
                }
                col = col.push(
                    column![
                        row![
                            text("All rooms").size(14).width(Fill),
                            button(text("Refresh").size(12))
                                .padding([2, 6])
                                .style(theme::quiet_button)
                                .on_press(Message::BrowseRooms),
                            button(text("Close").size(12))
                                .padding([2, 6])
                                .style(theme::quiet_button)
                                .on_press(Message::CloseBrowse),
                        ]
                        .spacing(4)
                        .align_y(Center),
                        scrollable(rooms).height(iced::Length::Shrink),
                    ]
                    .spacing(6),
                );
            }
        }
        col = col.push(iced::widget::rule::horizontal(1));
        col = col.push(text("Direct messages").size(16).font(bold));
        col = col.push(self.dm_list());
        container(scrollable(col).height(Fill))
            .padding(12)
            .width(200)
            .height(Fill)
            .style(theme::panel)
            .into()
    }

    /// The named room's name and topic, with "Edit" (or the field while
    /// editing).
    fn topic_line(&self) -> Element<'_, Message> {
        let name = self.rooms.shown.as_deref().unwrap_or_default();
        let bold = Font {
            weight: Weight::Bold,
            ..Font::DEFAULT
        };
        let title = text(format!("# {}", shown(name))).size(16).font(bold);
        let line = match &self.rooms.topic_edit {
            Some(edit) => row![
                title,
                text_input("Topic (empty clears it)", edit)
                    .id(TOPIC_INPUT)
                    .on_input(Message::TopicChanged)
                    .on_submit(Message::SaveTopic)
                    .padding(6)
                    .size(14),
                button(text("Set").size(13)).on_press(Message::SaveTopic),
                button(text("Cancel").size(13))
                    .style(theme::quiet_button)
                    .on_press(Message::CancelTopic),
            ],
            None => {
                let topic = if self.pane.topic.is_empty() {
                    text("No topic").size(14).color(theme::MUTED)
                } else {
                    text(shown(&self.pane.topic).into_owned()).size(14)
                };
                row![
                    title,
                    topic.width(Fill),
                    button(text("Edit topic").size(13))
                        .style(theme::quiet_button)
                        .on_press(Message::EditTopic),
                ]
            }
        };
        // Who may enter, and letting someone in.
        let private = self.pane.invite_only;
        let access = row![
            text(if private {
                "Invite-only: members invite others"
            } else {
                "Open: anyone may join"
            })
            .size(13)
            .color(theme::MUTED)
            .width(Fill),
            text_input("Invite a name…", &self.rooms.invite_input)
                .id(INVITE_INPUT)
                .on_input(Message::InviteInputChanged)
                .on_submit(Message::InviteTyped)
                .padding(5)
                .size(13)
                .width(180),
            button(text("Invite").size(13))
                .padding([5, 8])
                .on_press(Message::InviteTyped),
            button(
                text(if private {
                    "Make public"
                } else {
                    "Make private"
                })
                .size(13)
            )
            .padding([5, 8])
            .style(theme::quiet_button)
            .on_press(Message::SetPrivate(!private)),
        ]
        .spacing(8)
        .align_y(Center);
        container(column![line.spacing(10).align_y(Center), access].spacing(6))
            .padding([8, 14])
            .width(Fill)
            .style(theme::panel)
            .into()
    }

    /// The path field of "Send file…" when no dialog is available, if open
    /// (in the room's composer and the conversation's alike).
    fn path_field(&self) -> Option<Element<'_, Message>> {
        let path = self.path_input.as_ref()?;
        let field = text_input("Path of the file to send, e.g. /home/me/report.pdf", path)
            .id(PATH_INPUT)
            .on_input(Message::PathChanged)
            .on_submit(Message::SendPath)
            .padding(8)
            .size(14);
        Some(
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
            .spacing(4)
            .into(),
        )
    }

    /// What can be done to the member or message picked, if any.
    fn action_bar(&self) -> Option<Element<'_, Message>> {
        let small = |label: &'static str, m: Message| {
            button(text(label).size(13)).padding([4, 10]).on_press(m)
        };
        let close = button(text("Close").size(13))
            .padding([4, 10])
            .style(theme::quiet_button)
            .on_press(Message::Deselect);
        let (line, hint) = match self.selected()? {
            Selection::Member(u) => (
                row![
                    text(format!("{}:", shown(&u.name))).size(14),
                    small("Message", Message::MessageMember(u.name.clone())),
                    small("Kick", Message::Moderate(Action::Kick)),
                    small("Ban", Message::Moderate(Action::Ban)),
                    small("Mute", Message::Moderate(Action::Mute)),
                    small("Unmute", Message::Moderate(Action::Unmute)),
                    small("Make moderator", Message::Moderate(Action::Promote)),
                    small("Make member", Message::Moderate(Action::Demote)),
                    close,
                ],
                "Message: a direct conversation. Kick, ban, mute: the room's moderators and \
                 owners. Roles: its owners. The server says if you are not one.",
            ),
            Selection::Chat { from, .. } => (
                row![
                    text(format!("Message from {}:", shown(from))).size(14),
                    small("Delete", Message::DeleteChat),
                    close,
                ],
                "Your own messages: always. Others': moderators only (the server says if not).",
            ),
        };
        let hint = text(hint).size(12).color(theme::MUTED);
        Some(
            container(column![line.spacing(8).align_y(Center), hint].spacing(4))
                .padding([8, 14])
                .width(Fill)
                .style(theme::panel)
                .into(),
        )
    }
}

/// A room's or a conversation's button in the sidebar: its label, its
/// unread badge, highlighted when it is the one shown.
fn sidebar_tab<'a>(
    label: String,
    unread: u64,
    current: bool,
    on_press: Message,
) -> iced::widget::Button<'a, Message> {
    let mut line = row![text(label).size(14).width(Fill)]
        .spacing(6)
        .align_y(Center);
    if unread > 0 {
        line = line.push(
            container(text(unread.to_string()).size(12))
                .padding([1, 7])
                .style(theme::badge(theme::META)),
        );
    }
    let pick = button(line).width(Fill).padding([4, 8]).on_press(on_press);
    if current {
        pick
    } else {
        pick.style(theme::quiet_button)
    }
}

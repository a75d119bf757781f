//! The right-hand list: "N online", then every name, ours marked "(you)",
//! call members marked with their call state.

use chatcore::protocol::UserInfo;
use iced::widget::{Column, column, row, scrollable, text};
use iced::{Center, Element, Fill};

use crate::screen::room::Message;
use crate::screen::room::voice::Voice;
use crate::theme;

/// The list for `users` (sorted), with `me` marked. While `online` is
/// false the list is the last one known, and the header says so.
pub fn view<'a>(
    users: &'a [UserInfo],
    me: u64,
    voice: &Voice,
    online: bool,
) -> Element<'a, Message> {
    let mut list = Column::new().spacing(6).width(Fill);
    for u in users {
        let mut line = row![text(u.name.as_str()).size(14)]
            .spacing(6)
            .align_y(Center);
        if u.session == me {
            line = line.push(text("(you)").size(12).color(theme::MUTED));
        }
        if let Some(m) = voice.member(u.session) {
            let (mark, color) = if m.muted {
                ("♪ muted", theme::MUTED)
            } else if voice.speaking.contains(&u.session) {
                ("♪ speaking", theme::ERROR)
            } else if !m.connected {
                ("♪ connecting", theme::MUTED)
            } else {
                ("♪ in call", theme::OK)
            };
            line = line.push(text(mark).size(12).color(color));
        }
        list = list.push(line);
    }
    let header = if online {
        text(format!("{} online", users.len())).size(16)
    } else {
        text("Offline: last known list")
            .size(16)
            .color(theme::MUTED)
    };
    column![header, scrollable(list).height(Fill),]
        .spacing(10)
        .height(Fill)
        .into()
}

//! The right-hand list: "N online", then every name, ours marked "(you)",
//! each with an optional mark (the room marks call members with their call
//! state). Generic over the screen's message type: the list only draws.

use chatcore::protocol::UserInfo;
use iced::widget::{Column, button, column, row, scrollable, text};
use iced::{Center, Color, Element, Fill};

use crate::peer_text::shown;
use crate::theme;

/// A mark after a name: its words and colour (e.g. `♪ speaking`, red).
pub type Mark = (&'static str, Color);

/// The list for `users` (sorted), with `me` marked and `mark` asked for
/// each session. While `online` is false the list is the last one known,
/// and the header says so. `room`, when given, is the named room the list
/// is of (the header says "N in #room"). `select`, when given, makes each name a button
/// (the room offers moderation actions on the member clicked).
pub fn view<'a, M: Clone + 'a>(
    users: &'a [UserInfo],
    me: u64,
    mark: impl Fn(u64) -> Option<Mark>,
    online: bool,
    room: Option<&str>,
    select: Option<&dyn Fn(&UserInfo) -> M>,
) -> Element<'a, M> {
    let mut list = Column::new().spacing(6).width(Fill);
    for u in users {
        let mut line = row![text(shown(&u.name)).size(14)]
            .spacing(6)
            .align_y(Center);
        if u.session == me {
            line = line.push(text("(you)").size(12).color(theme::MUTED));
        }
        if let Some((words, color)) = mark(u.session) {
            line = line.push(text(words).size(12).color(color));
        }
        list = list.push(match select {
            Some(select) => Element::from(
                button(line)
                    .padding([1, 4])
                    .style(theme::quiet_button)
                    .on_press(select(u)),
            ),
            None => line.into(),
        });
    }
    let header = if online {
        match room {
            Some(room) => text(format!("{} in #{}", users.len(), shown(room))).size(16),
            None => text(format!("{} online", users.len())).size(16),
        }
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

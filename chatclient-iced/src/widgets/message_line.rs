//! One line of the message list: a chat message (sender and time in blue,
//! text in green for ours and black for others'), a quiet system line, or
//! an error shown in place. Generic over the screen's message type: a line
//! only draws, it sends nothing.

use iced::font::Weight;
use iced::widget::text::Wrapping;
use iced::widget::{column, row, text};
use iced::{Element, Font, Shrink};

use crate::peer_text::shown;
use crate::theme;

/// A chat message: a header line (sender, time) over the text. `own`
/// draws the text in our colour.
pub fn chat<'a, M: 'a>(from: &'a str, time: &'a str, body: &'a str, own: bool) -> Element<'a, M> {
    let bold = Font {
        weight: Weight::Bold,
        ..Font::DEFAULT
    };
    let header = row![
        text(shown(from)).size(14).font(bold).color(theme::META),
        text(time).size(12).color(theme::META),
    ]
    .spacing(8)
    .align_y(iced::Bottom);
    let body_color = if own {
        theme::OWN_TEXT
    } else {
        theme::OTHER_TEXT
    };
    // A long word (a URL, a hash) breaks at the edge instead of being cut off.
    let body = text(shown(body))
        .size(15)
        .color(body_color)
        .wrapping(Wrapping::WordOrGlyph);
    column![header, body].spacing(2).height(Shrink).into()
}

/// A quiet line: joins, leaves, timeouts, connection news (names inside
/// are a peer's: the whole line goes through [`shown`]).
pub fn system<'a, M: 'a>(s: &'a str) -> Element<'a, M> {
    text(shown(s))
        .size(13)
        .color(theme::SYSTEM)
        .wrapping(Wrapping::WordOrGlyph)
        .into()
}

/// An error, in place (the server's words may quote a peer's).
pub fn error<'a, M: 'a>(s: &'a str) -> Element<'a, M> {
    text(shown(s))
        .size(13)
        .color(theme::ERROR)
        .wrapping(Wrapping::WordOrGlyph)
        .into()
}

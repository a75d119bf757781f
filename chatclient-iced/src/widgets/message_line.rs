//! One line of the message list: a chat message (sender and time in blue,
//! text in green for ours and black for others'), a quiet system line, or
//! an error shown in place.

use iced::font::Weight;
use iced::widget::text::Wrapping;
use iced::widget::{column, row, text};
use iced::{Element, Font, Shrink};

use crate::screen::room::{ChatLine, Message};
use crate::theme;

/// A chat message: a header line (sender, time) over the text.
pub fn chat(line: &ChatLine) -> Element<'_, Message> {
    let bold = Font {
        weight: Weight::Bold,
        ..Font::DEFAULT
    };
    let header = row![
        text(line.from.as_str())
            .size(14)
            .font(bold)
            .color(theme::META),
        text(line.time.as_str()).size(12).color(theme::META),
    ]
    .spacing(8)
    .align_y(iced::Bottom);
    let body_color = if line.own {
        theme::OWN_TEXT
    } else {
        theme::OTHER_TEXT
    };
    // A long word (a URL, a hash) breaks at the edge instead of being cut off.
    let body = text(line.text.as_str())
        .size(15)
        .color(body_color)
        .wrapping(Wrapping::WordOrGlyph);
    column![header, body].spacing(2).height(Shrink).into()
}

/// A quiet line: joins, leaves, timeouts, connection news.
pub fn system(s: &str) -> Element<'_, Message> {
    text(s)
        .size(13)
        .color(theme::SYSTEM)
        .wrapping(Wrapping::WordOrGlyph)
        .into()
}

/// An error, in place.
pub fn error(s: &str) -> Element<'_, Message> {
    text(s)
        .size(13)
        .color(theme::ERROR)
        .wrapping(Wrapping::WordOrGlyph)
        .into()
}

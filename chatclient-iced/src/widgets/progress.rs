//! A progress bar with its figures beside it: `1.2 MB of 4.0 MB (30%)`.

use iced::widget::{progress_bar, row, text};
use iced::{Center, Element, Fill};

use crate::format;
use crate::theme;

/// A bar for `done` of `total` bytes and the figures.
pub fn bytes<'a, M: 'a>(done: u64, total: u64) -> Element<'a, M> {
    let f = format::fraction(done, total);
    row![
        progress_bar(0.0..=1.0, f).girth(8).length(Fill),
        text(format!(
            "{} of {} ({:.0}%)",
            format::human_size(done),
            format::human_size(total),
            f * 100.0
        ))
        .size(12)
        .color(theme::MUTED),
    ]
    .spacing(10)
    .align_y(Center)
    .into()
}

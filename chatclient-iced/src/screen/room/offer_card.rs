//! A file card in the message list: name, size, who offers it, and what
//! can be done now (Accept / Decline, a progress bar with Cancel, Open
//! folder), with errors in place. It lives in the room because it draws
//! the room's own types (its `Message`, a file card, the voice panel's
//! playback); the file name and the sender are a peer's words and go
//! through [`shown`].

use chatcore::client::FileKind;
use iced::widget::{button, column, container, row, text};
use iced::{Center, Element, Fill};

use super::Message;
use super::files::{Card, Direction, FileState};
use super::voice;
use crate::format;
use crate::peer_text::shown;
use crate::theme;
use crate::widgets::progress;

/// The card; `voice` decides the Play control of voice messages.
pub fn view<'a>(card: &'a Card, voice_state: &voice::Voice) -> Element<'a, Message> {
    let size = card
        .size
        .map(format::human_size)
        .unwrap_or_else(|| "size pending".to_owned());
    let voice = card.kind == FileKind::Voice;
    let what = if voice { "a voice message" } else { "a file" };
    let who = match &card.direction {
        Direction::Incoming { from } => format!("{} sends {what}", shown(from)),
        Direction::Outgoing => format!("You send {what}"),
    };
    let title = row![
        text(shown(&card.name)).size(15),
        text(size).size(13).color(theme::MUTED),
    ]
    .spacing(10)
    .align_y(Center);
    let mut col = column![text(who).size(12).color(theme::META), title].spacing(6);
    // Our words around a peer's (a path, a reason): all shown safely.
    let small = |s: String, c| text(shown(&s).into_owned()).size(13).color(c);
    let transfer = card.transfer;
    match &card.state {
        FileState::Preparing => {
            col = col.push(small("Preparing (checking the file)…".into(), theme::MUTED))
        }
        FileState::Uploading { done, total } => {
            col = col.push(small("Uploading".into(), theme::MUTED));
            col = col.push(progress::bytes(*done, *total));
        }
        FileState::Offered => {
            col = col.push(small("Uploaded: on offer to the room.".into(), theme::OK));
        }
        FileState::Available => {}
        FileState::Requested => {
            col = col.push(small("Waiting for the first bytes…".into(), theme::MUTED))
        }
        FileState::Downloading { done, total } => {
            col = col.push(small("Downloading".into(), theme::MUTED));
            col = col.push(progress::bytes(*done, *total));
        }
        FileState::Saved(path) => {
            col = col.push(small(format!("Saved to {}", path.display()), theme::OK));
        }
        FileState::Declined => col = col.push(small("Declined.".into(), theme::MUTED)),
        FileState::Cancelled => col = col.push(small("Cancelled.".into(), theme::MUTED)),
        FileState::Withdrawn(why) => {
            col = col.push(small(format!("No longer offered ({why})."), theme::MUTED));
        }
        FileState::Failed(why) => col = col.push(small(format!("Failed: {why}"), theme::ERROR)),
    }
    let mut actions = row![].spacing(8);
    if card.can_accept()
        && let Some(t) = transfer
    {
        let accept_label = if card.state == FileState::Available {
            "Accept"
        } else {
            "Accept again"
        };
        actions = actions.push(button(text(accept_label).size(14)).on_press(Message::Accept(t)));
        if card.state == FileState::Available {
            actions = actions.push(
                button(text("Decline").size(14))
                    .style(theme::quiet_button)
                    .on_press(Message::Decline(t)),
            );
        }
    }
    if card.can_cancel()
        && let Some(t) = transfer
    {
        actions = actions.push(
            button(text("Cancel").size(14))
                .style(theme::quiet_button)
                .on_press(Message::Cancel(t)),
        );
    }
    if matches!(card.state, FileState::Saved(_)) {
        actions = actions
            .push(button(text("Open folder").size(14)).on_press(Message::OpenFolder(card.id)));
    }
    let (playing, play_note) = voice_state.player.play_state(card.id);
    if voice {
        let playable = match &card.direction {
            Direction::Outgoing => voice_state.player.own_path(card.id).is_some(),
            Direction::Incoming { .. } => {
                card.transfer.is_some()
                    && matches!(
                        card.state,
                        FileState::Available
                            | FileState::Requested
                            | FileState::Downloading { .. }
                            | FileState::Saved(_)
                            | FileState::Cancelled
                            | FileState::Failed(_)
                    )
            }
        };
        let control = if playing {
            button(text("■ Stop").size(14)).on_press(Message::Voice(voice::Message::StopPlaying))
        } else {
            button(text("▶ Play").size(14)).on_press_maybe(
                (playable && voice_state.ready())
                    .then_some(Message::Voice(voice::Message::Play(card.id))),
            )
        };
        actions = actions.push(control);
    }
    col = col.push(actions);
    if voice {
        if let voice::Engine::Unavailable(why) = &voice_state.engine {
            col = col.push(small(why.clone(), theme::MUTED));
        }
        if playing && play_note.is_none() {
            col = col.push(small("Playing…".to_owned(), theme::OK));
        }
        if let Some(note) = play_note {
            col = col.push(small(note, theme::MUTED));
        }
    }
    if let Some(note) = &card.note {
        col = col.push(small(note.clone(), theme::ERROR));
    }
    container(col.width(Fill))
        .padding([10, 14])
        .max_width(560)
        .style(theme::card)
        .into()
}

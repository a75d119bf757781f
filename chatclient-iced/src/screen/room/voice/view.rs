//! The voice controls in the room's sidebar: join or leave, mute,
//! push-to-talk with its "Hold to talk" area, the call's status, and the
//! voice message recorder. Drawn from [`Voice`]; every control is disabled
//! while the engine is not ready.

use std::time::Duration;

use chatvoice::TransportKind;
use iced::widget::{button, column, container, mouse_area, row, text, toggler};
use iced::{Center, Element, Fill};

use super::recorder::{Recording, clock};
use super::{Engine, Message, Stage, Voice};
use crate::theme;

impl Voice {
    /// The controls for the sidebar.
    pub fn view(&self) -> Element<'_, Message> {
        let ready = self.ready();
        let enabled = |m: Message| ready.then_some(m);
        let call = &self.call;
        let in_call = call.in_call();
        let join = if in_call {
            button(text("Leave call").size(14)).on_press_maybe(enabled(Message::Leave))
        } else {
            button(text("Join call").size(14)).on_press_maybe(enabled(Message::Join))
        };
        let mute_label = if call.muted { "Unmute" } else { "Mute" };
        let mute = button(text(mute_label).size(14))
            .style(theme::quiet_button)
            .on_press_maybe(enabled(Message::ToggleMute).filter(|_| in_call));
        let count = match call.members.len() {
            0 => "Nobody in the call".to_owned(),
            1 => "1 in the call".to_owned(),
            n => format!("{n} in the call"),
        };
        let status = match call.stage {
            Stage::Idle => None,
            Stage::Joining => Some(("Joining the call…".to_owned(), theme::MUTED)),
            Stage::Starting => Some(("Starting the audio…".to_owned(), theme::MUTED)),
            Stage::Live(kind) => {
                let via = match kind {
                    TransportKind::Udp => "UDP",
                    // The engine keeps trying UDP and says when it is back.
                    TransportKind::Tcp => "TCP (UDP is not getting through)",
                };
                Some((format!("You are in the call, voice over {via}."), theme::OK))
            }
        };
        let mut col = column![
            text("Voice").size(16),
            text(count).size(13).color(theme::MUTED)
        ]
        .spacing(8)
        .width(Fill);
        if let Some((status, color)) = status {
            col = col.push(text(status).size(13).color(color));
        }
        let ptt_label = if call.push_to_talk {
            "Push to talk: on"
        } else {
            "Push to talk: off"
        };
        let ptt = button(text(ptt_label).size(14))
            .style(theme::quiet_button)
            .on_press_maybe(enabled(Message::TogglePushToTalk));
        col = col.push(row![join, mute].spacing(6));
        col = col.push(ptt);
        if let Some((note, color)) = self.ptt_key_note() {
            col = col.push(text(note).size(12).color(color));
        }
        if call.push_to_talk && in_call {
            let label = if call.talking {
                "Talking…"
            } else {
                "Hold to talk"
            };
            // A mouse area, not a button: a button only reports the click,
            // push-to-talk needs the press and the release.
            let hold = mouse_area(
                container(text(label).size(14))
                    .padding([6, 12])
                    .style(theme::hold_to_talk(call.talking)),
            )
            .on_press(Message::Talk(true))
            .on_release(Message::Talk(false));
            col = col.push(hold);
        }
        if let Some(note) = &call.note {
            col = col.push(text(note.as_str()).size(12).color(theme::WARN));
        }
        // Switches, not buttons: their state shows at a glance. They work
        // outside a call too (the next call starts with them).
        // The label is a text of its own (clickable like the switch) so
        // that tests and screen readers find it.
        let switch = |label: &'static str, on: bool, m: Message| {
            let flip = ready.then_some(m);
            let knob = toggler(on)
                .size(16)
                .on_toggle_maybe(flip.clone().map(|m| move |_| m.clone()));
            let mut name = mouse_area(text(label).size(13));
            if let Some(m) = flip {
                name = name.on_press(m);
            }
            row![knob, name].spacing(8).align_y(Center)
        };
        col = col.push(switch(
            "Noise suppression",
            call.noise_suppression,
            Message::ToggleNoiseSuppression,
        ));
        col = col.push(switch(
            "Echo cancellation",
            call.echo_cancellation,
            Message::ToggleEchoCancellation,
        ));
        col = col.push(self.recorder_view(ready));
        if let Engine::Unavailable(why) = &self.engine {
            col = col.push(text(why.as_str()).size(12).color(theme::MUTED));
        }
        col.into()
    }

    /// The line under the push-to-talk switch: which key holds it and
    /// whether it works in other windows too.
    fn ptt_key_note(&self) -> Option<(String, iced::Color)> {
        let key = self.ptt_key.key.as_deref()?;
        // With push-to-talk off the key does nothing yet: say when it will.
        let when = if self.call.push_to_talk {
            ""
        } else {
            " when push to talk is on"
        };
        Some(match &self.ptt_key.global {
            Some(Ok(())) => (
                format!("Hold {key} to talk{when}, in any window."),
                theme::MUTED,
            ),
            Some(Err(why)) => (why.clone(), theme::WARN),
            // Not tried yet (it is grabbed once push-to-talk is on).
            None => (format!("Hold {key} to talk{when}."), theme::MUTED),
        })
    }

    fn recorder_view(&self, ready: bool) -> Element<'_, Message> {
        let max = Duration::from_secs(u64::from(chatvoice::message::MAX_MESSAGE_SECS));
        let small = |s: String, c| text(s).size(13).color(c);
        let mut col = column![text("Voice message").size(14)].spacing(6);
        col = match &self.recorder.state {
            Recording::Idle => col.push(
                button(text("● Record").size(14))
                    .style(theme::quiet_button)
                    .on_press_maybe(ready.then_some(Message::Record)),
            ),
            Recording::Starting => col.push(small("Starting…".into(), theme::MUTED)),
            Recording::Recording(d) => col.push(
                row![
                    small(
                        format!("● Recording {} / {}", clock(*d), clock(max)),
                        theme::ERROR
                    ),
                    button(text("Stop").size(14)).on_press(Message::StopRecording),
                ]
                .spacing(8)
                .align_y(Center),
            ),
            Recording::Stopping(d) => {
                col.push(small(format!("Finishing {}…", clock(*d)), theme::MUTED))
            }
            Recording::Recorded {
                duration,
                reached_limit,
                ..
            } => {
                let what = if *reached_limit {
                    format!("{} recorded (the maximum).", clock(*duration))
                } else {
                    format!("{} recorded.", clock(*duration))
                };
                col.push(small(what, theme::OK)).push(
                    row![
                        button(text("Send").size(14)).on_press(Message::Send),
                        button(text("Discard").size(14))
                            .style(theme::quiet_button)
                            .on_press(Message::Discard),
                    ]
                    .spacing(6),
                )
            }
        };
        if let Some(note) = &self.recorder.note {
            col = col.push(text(note.as_str()).size(12).color(theme::ERROR));
        }
        col.into()
    }
}

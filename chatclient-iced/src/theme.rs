//! Colours and the few shared styles of the client: a light theme, blue
//! sender and time, green for our own text, black for others', grey for
//! quiet system lines.

use iced::widget::{button, container};
use iced::{Background, Border, Color, Shadow, Theme, border, color};

/// Sender name and time of a message.
pub const META: Color = color!(0x1f5fbf);
/// Text of our own messages.
pub const OWN_TEXT: Color = color!(0x1a7f37);
/// Text of other people's messages.
pub const OTHER_TEXT: Color = color!(0x000000);
/// Joins, leaves and other quiet lines.
pub const SYSTEM: Color = color!(0x8a8f98);
/// Errors shown in place.
pub const ERROR: Color = color!(0xc62828);
/// Warnings (reconnecting).
pub const WARN: Color = color!(0xb26a00);
/// A healthy connection.
pub const OK: Color = color!(0x1a7f37);
/// Secondary text (hints, labels).
pub const MUTED: Color = color!(0x5f6670);
/// Page background.
pub const PAGE: Color = color!(0xf4f5f7);
/// Card and panel background.
pub const PANEL: Color = color!(0xffffff);
/// Hairlines between areas.
pub const LINE: Color = color!(0xdde1e6);

/// The application theme: iced's light theme.
pub fn theme() -> Theme {
    Theme::Light
}

/// A white panel with a hairline border and rounded corners.
pub fn panel(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(PANEL)),
        border: Border {
            color: LINE,
            width: 1.0,
            radius: 8.0.into(),
        },
        shadow: Shadow::default(),
        text_color: None,
        snap: true,
    }
}

/// The page behind the panels.
pub fn page(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(PAGE)),
        ..container::Style::default()
    }
}

/// A file card inside the message list: a tinted box.
pub fn card(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(color!(0xf0f4fb))),
        border: Border {
            color: color!(0xc9d6ea),
            width: 1.0,
            radius: 8.0.into(),
        },
        ..container::Style::default()
    }
}

/// The status bar at the top of the room.
pub fn status_bar(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(PANEL)),
        border: border::rounded(8).color(LINE).width(1.0),
        ..container::Style::default()
    }
}

/// A plain, quiet button (secondary actions such as Clear).
pub fn quiet_button(theme: &Theme, status: button::Status) -> button::Style {
    button::secondary(theme, status)
}

/// The push-to-talk "Hold to talk" area: outlined while idle, filled green
/// while held, so it is plain whether the microphone is being sent.
pub fn hold_to_talk(held: bool) -> impl Fn(&Theme) -> container::Style {
    move |_theme| container::Style {
        background: Some(Background::Color(if held { OK } else { color!(0xe8f3ea) })),
        text_color: Some(if held { PANEL } else { OK }),
        border: border::rounded(6).color(OK).width(1.0),
        ..container::Style::default()
    }
}

/// A warning box (the changed-certificate prompt): light red with a red
/// hairline, so the warning is not read past.
pub fn danger_box(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(color!(0xfdecea))),
        border: border::rounded(6).color(color!(0xf2b8b5)).width(1.0),
        ..container::Style::default()
    }
}

/// The dimmed page behind a prompt that must be answered first.
pub fn scrim(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(Color {
            a: 0.55,
            ..color!(0x1b1f24)
        })),
        ..container::Style::default()
    }
}

/// The connection-security badge of the status line, outlined in `tint`
/// (green: encrypted; amber or red: not encrypted or not verified).
pub fn badge(tint: Color) -> impl Fn(&Theme) -> container::Style {
    move |_theme| container::Style {
        background: Some(Background::Color(Color { a: 0.08, ..tint })),
        text_color: Some(tint),
        border: border::rounded(6).color(tint).width(1.0),
        ..container::Style::default()
    }
}

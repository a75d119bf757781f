//! The push-to-talk key: one key (F8 unless `--ptt-key` says otherwise)
//! that holds "Hold to talk" down while it is held, in two ways.
//!
//! - Global: grabbed from the X server with the `global-hotkey` crate, so
//!   it works while another window has the focus (a game, a browser).
//!   Grabbed only while push-to-talk is on: a grab takes the key away from
//!   every other program, which should not lose F8 to an idle chat window.
//!   [`run`] is the body of an iced subscription
//!   (`Subscription::run_with(key, hotkey::run)`): a thread of its own
//!   registers the key and forwards its presses and releases as
//!   [`Event`]s; the UI thread never waits on the X server. It first says
//!   whether the grab worked ([`Event::Registered`]): without X11 (Wayland
//!   without XWayland, no display) or with the key taken by another
//!   program, the window says so.
//! - In the window: the same key pressed while the client's window has the
//!   focus ([`PttKey::matches`], fed from iced's keyboard events), which
//!   works everywhere and is what is left when the grab failed. While the
//!   grab holds, the X server gives the key to the grab only, so the two
//!   never both fire; the call ignores a repeated press anyway.

use std::fmt;

use iced::keyboard::{Modifiers, key::Physical};

/// The default key: a function key that types nothing and that few
/// programs use.
pub const DEFAULT_KEY: &str = "F8";

/// The push-to-talk key as the user wrote it (`F8`, `ScrollLock`,
/// `Ctrl+Alt+KeyT`: the `global-hotkey` crate's syntax, W3C key codes),
/// checked; or none at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PttKey {
    /// The key's code as W3C names it (`F8`, `KeyT`): what iced's physical
    /// keys print as too, so one name serves the grab and the window.
    code: String,
    /// Modifiers that must be held with it.
    ctrl: bool,
    /// Shift held with it.
    shift: bool,
    /// Alt held with it.
    alt: bool,
    /// The logo (Super) key held with it.
    logo: bool,
    /// The text as given, shown in the window ("F8").
    text: String,
}

/// Why a push-to-talk key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey(pub String);

impl fmt::Display for BadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a key: {:?} (examples: F8, ScrollLock, Ctrl+Alt+KeyT)",
            self.0
        )
    }
}

impl std::error::Error for BadKey {}

impl PttKey {
    /// Parses `F8`, `scrolllock`, `ctrl+alt+KeyT` (modifiers first, then
    /// one key; case does not matter).
    pub fn parse(text: &str) -> Result<Self, BadKey> {
        let bad = || BadKey(text.to_owned());
        let parts: Vec<&str> = text.split('+').map(str::trim).collect();
        let (key, mods) = parts.split_last().ok_or_else(bad)?;
        let mut k = Self {
            code: canonical_code(key).ok_or_else(bad)?,
            ctrl: false,
            shift: false,
            alt: false,
            logo: false,
            text: text.trim().to_owned(),
        };
        for m in mods {
            match m.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => k.ctrl = true,
                "shift" => k.shift = true,
                "alt" | "option" => k.alt = true,
                "super" | "logo" | "meta" | "cmd" | "command" => k.logo = true,
                _ => return Err(bad()),
            }
        }
        Ok(k)
    }

    /// The key as shown to the user.
    pub fn label(&self) -> &str {
        &self.text
    }

    /// The key in `global-hotkey`'s syntax: modifiers, then the code.
    fn grab_spec(&self) -> String {
        let mut spec = String::new();
        for (held, name) in [
            (self.ctrl, "ctrl+"),
            (self.shift, "shift+"),
            (self.alt, "alt+"),
            (self.logo, "super+"),
        ] {
            if held {
                spec.push_str(name);
            }
        }
        spec.push_str(&self.code);
        spec
    }

    /// Whether this iced key event (physical key and modifiers held) is
    /// this key. Modifiers are compared only on presses: a release counts
    /// whatever is held by then, so letting go of Ctrl first cannot leave
    /// the microphone open.
    pub fn matches(&self, physical: &Physical, modifiers: Modifiers, pressed: bool) -> bool {
        let Physical::Code(code) = physical else {
            return false;
        };
        if !format!("{code:?}").eq_ignore_ascii_case(&self.code) {
            return false;
        }
        !pressed
            || (modifiers.control() == self.ctrl
                && modifiers.shift() == self.shift
                && modifiers.alt() == self.alt
                && modifiers.logo() == self.logo)
    }
}

/// The W3C code name for a key as typed (`f8` → `F8`, `t` → `KeyT`,
/// `5` → `Digit5`), if it names one.
fn canonical_code(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut chars = key.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_ascii_alphabetic() {
            return Some(format!("Key{}", c.to_ascii_uppercase()));
        }
        if c.is_ascii_digit() {
            return Some(format!("Digit{c}"));
        }
    }
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(key))
        .map(|k| (*k).to_owned())
        .or_else(|| {
            let named = key.strip_prefix("Key").or_else(|| key.strip_prefix("key"));
            named
                .filter(|n| n.len() == 1 && n.chars().all(|c| c.is_ascii_alphabetic()))
                .map(|n| format!("Key{}", n.to_ascii_uppercase()))
        })
}

/// Keys that type nothing, good for holding down: the function keys and
/// the few others people bind push-to-talk to.
const KNOWN: &[&str] = &[
    "F1",
    "F2",
    "F3",
    "F4",
    "F5",
    "F6",
    "F7",
    "F8",
    "F9",
    "F10",
    "F11",
    "F12",
    "F13",
    "F14",
    "F15",
    "F16",
    "F17",
    "F18",
    "F19",
    "F20",
    "F21",
    "F22",
    "F23",
    "F24",
    "ScrollLock",
    "Pause",
    "Insert",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "Backquote",
    "Space",
    "ContextMenu",
    "PrintScreen",
    "NumpadAdd",
    "NumpadSubtract",
    "Numpad0",
];

/// What the global key reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The grab worked (`Ok`) or why not, in a sentence for the window.
    Registered(Result<(), String>),
    /// The key went down (`true`) or up, whichever window had the focus.
    Held(bool),
}

/// Events buffered towards the UI (a key goes down and up a few times a
/// second at most).
const EVENT_QUEUE: usize = 64;

/// How long the forwarding thread waits for a key event before it looks
/// whether the UI is still there.
const POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Grabs tried before the key is reported taken (see [`grab`]).
#[cfg(target_os = "linux")]
const GRAB_ATTEMPTS: u32 = 5;

/// The global key's subscription body: grabs `key` on a thread of its own
/// and forwards what happens to it. Ends (releasing the grab) when the UI
/// drops the stream.
pub fn run(key: &PttKey) -> iced::futures::channel::mpsc::Receiver<Event> {
    let (tx, rx) = iced::futures::channel::mpsc::channel(EVENT_QUEUE);
    let key = key.clone();
    let spawned = std::thread::Builder::new()
        .name("ptt-hotkey".into())
        .spawn(move || grab(&key, tx));
    if let Err(e) = spawned {
        tracing::warn!("the push-to-talk key thread did not start: {e}");
    }
    rx
}

/// Sends one event, waiting for room; `false` once the UI is gone.
fn send(tx: &mut iced::futures::channel::mpsc::Sender<Event>, event: Event) -> bool {
    iced::futures::executor::block_on(iced::futures::SinkExt::send(tx, event)).is_ok()
}

#[cfg(target_os = "linux")]
fn grab(key: &PttKey, mut tx: iced::futures::channel::mpsc::Sender<Event>) {
    use global_hotkey::{GlobalHotKeyEvent, GlobalHotKeyManager, HotKeyState, hotkey::HotKey};

    // `global-hotkey` reports success when its X connection failed (its
    // thread just ends), so ask the X server ourselves first.
    if let Err(e) = x11rb::connect(None) {
        let why = format!(
            "The global push-to-talk key needs X11 (here: {e}); {} works while this window \
             has the focus.",
            key.label()
        );
        let _ = send(&mut tx, Event::Registered(Err(why)));
        return;
    }
    let registered = key
        .grab_spec()
        .parse::<HotKey>()
        .map_err(|e| e.to_string())
        .and_then(|hotkey| {
            let manager = GlobalHotKeyManager::new().map_err(|e| e.to_string())?;
            let mut attempt = 1;
            loop {
                match manager.register(hotkey) {
                    Ok(()) => break,
                    // Our own previous grab (push-to-talk switched off and
                    // on again quickly) lets go within a few tenths of a
                    // second: try again before blaming another program.
                    Err(global_hotkey::Error::AlreadyRegistered(_)) if attempt < GRAB_ATTEMPTS => {
                        attempt += 1;
                        std::thread::sleep(POLL);
                    }
                    Err(global_hotkey::Error::AlreadyRegistered(_)) => {
                        return Err("another program holds it".to_owned());
                    }
                    Err(other) => return Err(other.to_string()),
                }
            }
            Ok((manager, hotkey.id()))
        });
    let (manager, id) = match registered {
        Ok(r) => r,
        Err(e) => {
            let why = format!(
                "{} could not be made a global key ({e}); it works while this window has the \
                 focus.",
                key.label()
            );
            let _ = send(&mut tx, Event::Registered(Err(why)));
            return;
        }
    };
    if !send(&mut tx, Event::Registered(Ok(()))) {
        return;
    }
    let events = GlobalHotKeyEvent::receiver();
    loop {
        match events.recv_timeout(POLL) {
            Ok(e) if e.id() == id => {
                let held = e.state() == HotKeyState::Pressed;
                if !send(&mut tx, Event::Held(held)) {
                    break;
                }
            }
            Ok(_) => {}
            Err(crossbeam_timeout) => {
                if crossbeam_timeout.is_disconnected() || tx.is_closed() {
                    break;
                }
            }
        }
    }
    // Dropping the manager ends its thread; the X connection closing
    // releases the grab.
    drop(manager);
}

#[cfg(not(target_os = "linux"))]
fn grab(key: &PttKey, mut tx: iced::futures::channel::mpsc::Sender<Event>) {
    let why = format!(
        "A global push-to-talk key is not supported on this system; {} works while this \
         window has the focus.",
        key.label()
    );
    let _ = send(&mut tx, Event::Registered(Err(why)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced::keyboard::key::{Code, NativeCode};

    #[test]
    fn keys_parse_in_any_case_with_modifiers_first() {
        let f8 = PttKey::parse("f8").expect("f8");
        assert_eq!(f8.code, "F8");
        assert_eq!(
            PttKey::parse(DEFAULT_KEY).map(|k| k.code).ok(),
            Some("F8".into())
        );
        assert_eq!(
            PttKey::parse("ScrollLock").map(|k| k.code).ok(),
            Some("ScrollLock".into())
        );
        let chord = PttKey::parse("Ctrl+Alt+t").expect("chord");
        assert_eq!(chord.code, "KeyT");
        assert!(chord.ctrl && chord.alt && !chord.shift && !chord.logo);
        for bad in ["", "F99", "Hyper+F8", "F8+Ctrl", "banana"] {
            assert!(PttKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_window_key_matches_the_physical_key_and_modifiers_on_press_only() {
        let f8 = PttKey::parse("F8").expect("f8");
        let none = Modifiers::empty();
        assert!(f8.matches(&Physical::Code(Code::F8), none, true));
        assert!(f8.matches(&Physical::Code(Code::F8), none, false));
        assert!(!f8.matches(&Physical::Code(Code::F9), none, true));
        assert!(!f8.matches(&Physical::Code(Code::F8), Modifiers::CTRL, true));
        // Let go with Ctrl still held: still a release.
        assert!(f8.matches(&Physical::Code(Code::F8), Modifiers::CTRL, false));
        assert!(!f8.matches(
            &Physical::Unidentified(NativeCode::Unidentified),
            none,
            true
        ));
        let chord = PttKey::parse("ctrl+KeyT").expect("chord");
        assert!(chord.matches(&Physical::Code(Code::KeyT), Modifiers::CTRL, true));
        assert!(!chord.matches(&Physical::Code(Code::KeyT), none, true));
    }

    #[test]
    fn every_accepted_key_is_one_the_global_grab_understands() {
        for name in KNOWN
            .iter()
            .chain(&["Ctrl+Alt+t", "shift+super+KeyP", "alt+5"])
        {
            let k = PttKey::parse(name).expect("known key parses");
            #[cfg(target_os = "linux")]
            assert!(
                k.grab_spec()
                    .parse::<global_hotkey::hotkey::HotKey>()
                    .is_ok(),
                "{name} is not a global-hotkey key"
            );
            #[cfg(not(target_os = "linux"))]
            let _ = k;
        }
    }
}

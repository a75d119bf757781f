//! The desktop chat client (iced), as a library so its logic is tested
//! headless and the binary stays thin.
//!
//! Layout:
//! - [`app`]: the top-level state, `Message`, `update`, `view` and the
//!   network subscription (Elm architecture as in iced's examples).
//! - [`screen`]: the screens, each with its own state and `Message`:
//!   [`screen::login`] and [`screen::room`] (with `incoming` for worker
//!   events, `files` and `offer_card` for file cards, `scroll` for the
//!   drawn window of the list, `view`, and the `voice` panel over its
//!   `call`, `recorder` and `playback` state machines). Each step returns
//!   `(Task<Message>, Option<Event>)`; see docs/architecture.md.
//! - [`audio`]: the audio worker: the voice engine (the `chatvoice` crate,
//!   re-exported as [`voice_engine`]) on a thread of its own: device probe,
//!   the call, recording and playing voice messages.
//! - [`hotkey`]: the push-to-talk key, global (X11 grab) and in the window.
//! - [`net`]: the network worker: the blocking `chatcore::Client` on
//!   threads of its own, reconnection with backoff, commands over a channel.
//! - [`widgets`]: view pieces generic over the message type: message
//!   line, user list, progress.
//! - [`peer_text`]: text other people chose, made safe to draw (bidi
//!   controls and invisible characters shown as `<U+XXXX>`).
//! - [`background`]: dialogs and file-manager launches off the UI thread.
//! - [`format`](mod@format): local clock times and human sizes.
//! - [`lag_log`]: optional responsiveness log of the running window.
//! - [`theme`]: colours and shared styles.

#![warn(missing_docs)]

pub mod app;
pub mod audio;
pub mod background;
pub mod format;
pub mod hotkey;
pub mod lag_log;
pub mod net;
pub mod peer_text;
pub mod screen;
pub mod theme;
pub mod widgets;

pub use app::{App, Config, Message};
/// The voice engine the client uses (calls, voice messages, audio devices).
pub use chatvoice as voice_engine;

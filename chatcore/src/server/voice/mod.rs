//! The voice side of the server: a call's bookkeeping (`call`), every
//! room's call (`calls`), the bind
//! defences (`guard`), the packet rules (`relay`, no sockets) and the TCP
//! fallback connections (`conn`, each with its own poll interest); the
//! voice sockets are marked DSCP EF by `crate::dscp`. The voice
//! port's UDP socket is read and written by the reactor (`reactor/voice_io.rs`).

mod call;
mod calls;
pub(crate) mod conn;
pub(crate) mod guard;
pub(crate) mod relay;

pub(crate) use call::VoicePath;
pub(crate) use calls::{CallRoom, Calls};

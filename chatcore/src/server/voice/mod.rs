//! The voice side of the server: a call's bookkeeping (`call`), every
//! room's call (`calls`), the bind
//! defences (`guard`), the packet rules (`relay`, no sockets) and the TCP
//! fallback connections (`conn`, each with its own poll interest), DSCP EF
//! marking of the voice sockets (`dscp`). The voice
//! port's UDP socket is read and written by the reactor (`reactor/voice_io.rs`).

mod call;
mod calls;
pub(crate) mod conn;
pub(crate) mod dscp;
pub(crate) mod guard;
pub(crate) mod relay;

pub(crate) use call::VoicePath;
pub(crate) use calls::{CallRoom, Calls};

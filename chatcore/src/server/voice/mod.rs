//! The voice side of the server: the call's bookkeeping (`call`), the bind
//! defences (`guard`) and the voice port's packet handling (`relay`).

mod call;
pub(crate) mod guard;
pub(crate) mod relay;

pub(crate) use call::{Call, VoicePath};

//! A chat connection and what it carries: its socket and buffers
//! (`connection`), its output queue (`outqueue`), its flood control
//! (`ratelimit`), and the per-address counts taken at accept (`peers`).

mod connection;
pub(crate) mod outqueue;
pub(crate) mod peers;
pub(crate) mod ratelimit;

pub(crate) use connection::{Connection, Phase};

/// Tells the poll the interest a connection derived from its state
/// ([`Connection::interest`], `VoiceConn::interest`): the one place that
/// registers or drops WRITABLE, for chat and voice connections alike.
/// `registered` is what the poll has, so only a change costs a syscall.
pub(crate) fn apply_interest(
    registry: &mio::Registry,
    stream: &mut mio::net::TcpStream,
    token: mio::Token,
    want: mio::Interest,
    registered: &mut mio::Interest,
) {
    if want == *registered {
        return;
    }
    if registry.reregister(stream, token, want).is_ok() {
        *registered = want;
    }
}

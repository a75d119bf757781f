//! The voice path to the server's voice port (docs/protocol.md §16.3).
//!
//! [`VoiceLink::connect`] sends `bind` over UDP every 250 ms; the server
//! answers a `bind_challenge` whose cookie the next binds echo, from the same
//! socket, until `bound` comes back (the cookie proves the address receives,
//! §16.2). If no `bound` comes within 1 s it connects to the same port over
//! TCP (each packet preceded by a 2-byte big-endian length) and binds there,
//! where the TCP handshake is the proof and no cookie is needed (a challenge
//! there is answered all the same). Once bound, a
//! receive thread reads packets and hands audio to the caller through a
//! channel, and sends a `probe` whenever nothing was sent for the keepalive
//! interval (so a silent or muted member stays in the call). Any thread may
//! send audio through a cloneable [`LinkSender`].
//!
//! For tests, [`LinkOptions`] can force TCP and inject random loss of audio
//! packets on receive and/or send (seeded, so runs are repeatable).
//!
//! Files, one idea each:
//! - `options.rs`: [`LinkOptions`] and [`TransportKind`], how the link is set up;
//! - `link.rs`: [`VoiceLink`], connecting (UDP first, then TCP) and closing;
//! - `bind.rs`: the `bind` / `bind_challenge` / `bound` packets both paths share;
//! - `udp.rs`: binding over UDP (retries, the cookie echo) and its receive loop;
//! - `tcp.rs`: the TCP fallback's bind and its length-prefixed receive loop;
//! - `sender.rs`: the socket shared by all senders, [`LinkSender`], [`LinkCounters`];
//! - `receive.rs`: the receive thread and the [`Incoming`] it hands on;
//! - `probe.rs`: keepalive probes sent when the path has been quiet;
//! - `fake.rs` (tests only): a tiny fake voice port the unit tests bind to.

mod bind;
#[cfg(test)]
mod fake;
mod link;
mod options;
mod probe;
mod receive;
mod sender;
mod tcp;
mod udp;

pub use link::VoiceLink;
pub use options::{LinkOptions, TransportKind};
pub use receive::Incoming;
pub use sender::{LinkCounters, LinkSender};

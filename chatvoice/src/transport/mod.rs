//! The voice path to the server's voice port (docs/protocol.md §16.3).
//!
//! [`VoiceLink::connect`] sends `bind` over UDP every 250 ms; the server
//! answers a `bind_challenge` whose cookie the next binds echo, from the same
//! socket, until `bound` comes back (the cookie proves the address receives,
//! §16.2). If no `bound` comes within 1 s it connects to the same port over
//! TCP (each packet preceded by a 2-byte big-endian length) and binds there
//! the same way (bind, challenge, bind with the cookie). A `bind` proves the
//! token with an HMAC (the token never crosses the voice port), and every
//! audio packet is sealed with the call key ([`CallKeys`], shared by every
//! link of a call, §16.5). Once bound, a receive thread reads packets, opens
//! audio (refusing and counting forged, replayed and unknown-epoch packets)
//! and hands it to the caller through a channel, and sends probes: on UDP
//! every 250 ms whatever else is sent (the acks prove UDP still works; the
//! share missing is the loss estimate, [`LinkSender::probe_loss`]), on TCP
//! whenever nothing was sent for the keepalive interval (so a silent or
//! muted member stays in the call). [`VoiceLink::silent_for`] tells how long
//! the server has not been heard: the call fails over to TCP when UDP goes
//! quiet, and tries UDP again in the background (`call/rebind.rs`). Every
//! socket is marked DSCP EF. Any thread may send audio through a cloneable
//! [`LinkSender`].
//!
//! For tests, [`LinkOptions`] can force TCP, inject random loss of audio
//! packets on receive and/or send and of probe acks (seeded, so runs are
//! repeatable), and black-hole UDP mid-call ([`Blackhole`]).
//!
//! Files, one idea each:
//! - `options.rs`: [`LinkOptions`] and [`TransportKind`], how the link is set up;
//! - `link.rs`: [`VoiceLink`], connecting (UDP first, then TCP) and closing;
//! - `bind.rs`: the `bind` / `bind_challenge` / `bound` packets both paths share;
//! - `keys.rs`: [`CallKeys`], sealing and opening under the call's keys;
//! - `udp.rs`: binding over UDP (retries, the cookie echo) and its receive loop;
//! - `tcp.rs`: the TCP fallback's bind and its length-prefixed receive loop;
//! - `sender.rs`: the socket shared by all senders, [`LinkSender`], [`LinkCounters`];
//! - `receive.rs`: the receive thread and the [`Incoming`] it hands on;
//! - `probe.rs`: probes (every 250 ms on UDP, keepalives on TCP), the
//!   liveness of the path and the loss estimate from missing acks;
//! - DSCP EF and `SO_PRIORITY` on every voice socket come from [`chatcore::dscp`], shared with the server;
//! - `fake.rs` (tests only): a tiny fake voice port the unit tests bind to.

mod bind;
#[cfg(test)]
mod fake;
mod keys;
mod link;
mod options;
mod probe;
mod receive;
mod sender;
mod tcp;
mod udp;

pub use chatcore::dscp::{DSCP_EF_TOS, VOICE_SO_PRIORITY};
pub use keys::CallKeys;
pub use link::VoiceLink;
pub use options::{Blackhole, LinkOptions, TransportKind};
pub use receive::Incoming;
pub use sender::{LinkCounters, LinkSender};

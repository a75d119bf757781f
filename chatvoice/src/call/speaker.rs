//! One remote speaker on the playback side: its jitter buffer, its Opus
//! decoder (Opus state is per stream), and what the speaking indicator and
//! the forgetting of old speakers need. `play` turns the buffer's decision
//! (packet, FEC, conceal, silence) into a decoded frame.

use crate::codec::Decoder;
use crate::jitter::{JitterBuffer, Playout};

/// One remote speaker on the playback side.
pub(super) struct Speaker {
    /// Its packets.
    pub(super) jb: JitterBuffer,
    /// Its decoder (Opus state is per stream).
    pub(super) dec: Decoder,
    /// Frames decoded from their own packets.
    pub(super) decoded: u64,
    /// Whether we told the GUI it is speaking.
    pub(super) active: bool,
    /// Quiet frames in a row (for the speaking indicator's hangover, and
    /// to forget a speaker gone for a minute: members who leave and come
    /// back get new sessions, so old entries would pile up).
    pub(super) quiet: u32,
}

impl Speaker {
    /// Takes one frame from the jitter buffer and decodes it; `true` when it
    /// came from a packet (its own or the next one's FEC).
    pub(super) fn play(&mut self) -> (Option<Vec<i16>>, bool) {
        match self.jb.pop() {
            Playout::Packet(p) => {
                self.decoded += 1;
                (Some(self.dec.decode(&p).0), true)
            }
            Playout::Fec(p) => (Some(self.dec.decode_fec(&p).0), true),
            Playout::Conceal => (Some(self.dec.conceal().0), false),
            Playout::Silence => (None, false),
        }
    }
}

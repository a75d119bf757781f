//! CPU cost of the voice engine's per-frame work, one 20 ms frame at a time:
//! Opus encode and decode (call settings), FEC decode, concealment, and the
//! three-speaker mix. Uses the committed speech fixture.
//!
//! ```text
//! cargo run --release -p chatvoice --example voice_codec_cost
//! ```

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use chatvoice::audio::FRAME;
use chatvoice::audio::wav::read_wav;
use chatvoice::codec::{Decoder, Encoder, EncoderConfig};
use chatvoice::mixer::mix;

fn per_frame(label: &str, frames: usize, t: Instant) {
    let us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;
    println!(
        "  {label:<34} {us:>7.1} µs/frame  ({:.2} % of one core in real time)",
        us / 200.0
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let speech =
        read_wav(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/speech48k.wav"))?;
    // Ten passes over the fixture: about 1000 frames.
    let pcm: Vec<i16> = speech.repeat(10);
    let frames: Vec<&[i16]> = pcm.chunks_exact(FRAME).collect();
    let n = frames.len();
    println!("voice codec cost, {n} frames of speech:");

    let mut enc = Encoder::new(EncoderConfig::default())?;
    let t = Instant::now();
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| enc.encode(f))
        .collect::<Result<_, _>>()?;
    per_frame("encode (VOIP, 32 kbit/s, FEC)", n, t);
    let bytes: usize = packets.iter().map(Vec::len).sum();
    println!(
        "  packet size: mean {:.0} bytes ({:.1} kbit/s with the 15-byte header)",
        bytes as f64 / n as f64,
        (bytes + 15 * n) as f64 * 8.0 / (n as f64 * 0.02) / 1000.0
    );

    let mut dec = Decoder::new()?;
    let t = Instant::now();
    for p in &packets {
        dec.decode(p);
    }
    per_frame("decode", n, t);
    let t = Instant::now();
    for p in &packets {
        dec.decode_fec(p);
    }
    per_frame("decode from FEC", n, t);
    let t = Instant::now();
    for _ in 0..n {
        dec.conceal();
    }
    per_frame("conceal (PLC)", n, t);

    let t = Instant::now();
    for f in &frames {
        std::hint::black_box(mix(&[f, f, f]));
    }
    per_frame("mix three speakers (soft limit)", n, t);
    Ok(())
}

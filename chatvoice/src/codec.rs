//! Opus encoder and decoder with the call's settings.
//!
//! Encoder: VOIP application, 48 kHz mono, 20 ms frames (960 samples),
//! 32 kbit/s VBR, in-band FEC on with an expected packet loss (so that each
//! packet carries a low-bitrate copy of the previous frame), DTX optional.
//! Decoder: a packet decodes normally; a lost packet is rebuilt from the
//! *next* packet's FEC data when that packet is at hand, else concealed
//! (PLC). Both always produce exactly one frame.

use opus::{Application, Bitrate, Channels};

use crate::audio::{FRAME, SAMPLE_RATE};
use crate::error::CodecError;

/// Largest Opus packet we produce; RFC 6716 allows 1275 bytes per frame.
pub const MAX_PACKET: usize = 1275;

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderConfig {
    /// Target bitrate in bit/s. 32 kbit/s gives wideband speech with room
    /// for the FEC copy.
    pub bitrate: i32,
    /// Packet loss the encoder plans for, in percent (0..=100). Opus only
    /// adds in-band FEC when this is above zero; the higher, the stronger.
    pub expected_loss_pct: i32,
    /// Discontinuous transmission: Opus sends tiny packets during silence.
    /// Off by default because the VAD already stops sending on silence.
    pub dtx: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            bitrate: 32_000,
            expected_loss_pct: 10,
            dtx: false,
        }
    }
}

/// Opus encoder for 20 ms mono frames.
pub struct Encoder {
    /// The libopus encoder.
    inner: opus::Encoder,
    /// Reused output buffer.
    buf: Vec<u8>,
}

impl Encoder {
    /// An encoder with the call's settings.
    pub fn new(cfg: EncoderConfig) -> Result<Self, CodecError> {
        let mut inner = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
        inner.set_bitrate(Bitrate::Bits(cfg.bitrate))?;
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(cfg.expected_loss_pct.clamp(0, 100))?;
        inner.set_dtx(cfg.dtx)?;
        Ok(Self {
            inner,
            buf: vec![0; MAX_PACKET],
        })
    }

    /// Encodes one frame of [`FRAME`] samples into one Opus packet.
    pub fn encode(&mut self, frame: &[i16]) -> Result<Vec<u8>, CodecError> {
        debug_assert_eq!(frame.len(), FRAME);
        let n = self.inner.encode(frame, &mut self.buf)?;
        Ok(self.buf[..n].to_vec())
    }

    /// Changes the target bitrate (bit/s) from the next frame on: the call
    /// steps it down when its path loses packets (`call/adapt.rs`). Opus
    /// accepts 500..=512000; an out-of-range value is an error.
    pub fn set_bitrate(&mut self, bitrate: i32) -> Result<(), CodecError> {
        self.inner.set_bitrate(Bitrate::Bits(bitrate))?;
        Ok(())
    }

    /// The current target bitrate in bit/s.
    pub fn bitrate(&mut self) -> Result<i32, CodecError> {
        match self.inner.get_bitrate()? {
            Bitrate::Bits(b) => Ok(b),
            // Never set here: the encoder is always given a number.
            Bitrate::Max | Bitrate::Auto => Ok(0),
        }
    }

    /// Changes the packet loss the encoder plans for (percent, clamped to
    /// 0..=100): the higher, the stronger the in-band FEC copy of the
    /// previous frame. The call sets it from the loss it measures.
    pub fn set_packet_loss_perc(&mut self, pct: i32) -> Result<(), CodecError> {
        self.inner.set_packet_loss_perc(pct.clamp(0, 100))?;
        Ok(())
    }

    /// The packet loss the encoder plans for, in percent.
    pub fn packet_loss_perc(&mut self) -> Result<i32, CodecError> {
        Ok(self.inner.get_packet_loss_perc()?)
    }

    /// The encoder's algorithmic delay in 48 kHz samples (the Ogg Opus
    /// pre-skip).
    pub fn lookahead(&mut self) -> Result<u32, CodecError> {
        Ok(self.inner.get_lookahead()?.max(0) as u32)
    }
}

/// How a frame was produced, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// From its own packet.
    Packet,
    /// Rebuilt from the next packet's in-band FEC.
    Fec,
    /// Concealed (no packet).
    Plc,
}

/// Opus decoder producing 20 ms mono frames.
pub struct Decoder {
    /// The libopus decoder.
    inner: opus::Decoder,
}

impl Decoder {
    /// A 48 kHz mono decoder.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            inner: opus::Decoder::new(SAMPLE_RATE, Channels::Mono)?,
        })
    }

    /// Decodes a packet into one frame. A corrupt packet is concealed
    /// instead (a bad peer must not stop the call).
    pub fn decode(&mut self, packet: &[u8]) -> (Vec<i16>, Decoded) {
        let mut out = vec![0i16; FRAME];
        match self.inner.decode(packet, &mut out, false) {
            Ok(n) if n == FRAME => (out, Decoded::Packet),
            Ok(n) => {
                // A packet of another duration (not ours): keep the frame grid.
                out.resize(FRAME, 0);
                out[n.min(FRAME)..].fill(0);
                (out, Decoded::Packet)
            }
            Err(_) => self.conceal(),
        }
    }

    /// Rebuilds the frame *before* `next_packet` from its in-band FEC data
    /// (falls back to concealment when the packet carries none).
    pub fn decode_fec(&mut self, next_packet: &[u8]) -> (Vec<i16>, Decoded) {
        let mut out = vec![0i16; FRAME];
        match self.inner.decode(next_packet, &mut out, true) {
            Ok(_) => (out, Decoded::Fec),
            Err(_) => self.conceal(),
        }
    }

    /// Conceals one lost frame (packet loss concealment).
    pub fn conceal(&mut self) -> (Vec<i16>, Decoded) {
        let mut out = vec![0i16; FRAME];
        if self.inner.decode(&[], &mut out, false).is_err() {
            out.fill(0);
        }
        (out, Decoded::Plc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize) -> Vec<i16> {
        (0..frames * FRAME)
            .map(|i| {
                ((i as f32 * 2.0 * std::f32::consts::PI * 300.0 / 48_000.0).sin() * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn a_frame_encodes_to_a_small_packet_and_decodes_to_960_samples() {
        let mut enc = Encoder::new(EncoderConfig::default()).expect("encoder");
        let mut dec = Decoder::new().expect("decoder");
        let pcm = tone(10);
        let mut energy = 0f64;
        for f in pcm.chunks(FRAME) {
            let p = enc.encode(f).expect("encode");
            assert!(!p.is_empty() && p.len() < 400, "{}", p.len());
            let (out, how) = dec.decode(&p);
            assert_eq!(out.len(), FRAME);
            assert_eq!(how, Decoded::Packet);
            energy += out.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
        }
        assert!(energy > 0.0);
    }

    #[test]
    fn lost_frames_are_rebuilt_by_fec_or_concealed() {
        let mut enc = Encoder::new(EncoderConfig::default()).expect("encoder");
        let mut dec = Decoder::new().expect("decoder");
        let pcm = tone(6);
        let packets: Vec<_> = pcm
            .chunks(FRAME)
            .map(|f| enc.encode(f).expect("encode"))
            .collect();
        dec.decode(&packets[0]);
        let (fec, how) = dec.decode_fec(&packets[2]);
        assert_eq!((fec.len(), how), (FRAME, Decoded::Fec));
        dec.decode(&packets[2]);
        let (plc, how) = dec.conceal();
        assert_eq!((plc.len(), how), (FRAME, Decoded::Plc));
        assert_eq!(dec.decode(&[0xff, 0xff, 0xff]).0.len(), FRAME);
    }
}

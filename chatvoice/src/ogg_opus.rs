//! Ogg Opus files (RFC 7845), the format of voice messages.
//!
//! Layout written: page 1 holds only the `OpusHead` packet (beginning of
//! stream), page 2 only `OpusTags`, then audio pages of up to 50 packets
//! (one second). Each page's granule position is the number of 48 kHz
//! samples a decoder has produced by the end of its last packet, the
//! `pre_skip` samples at the start included (RFC 7845 §4); the last page
//! (end of stream) has `pre_skip` + the recording's exact length, so a
//! player trims the padding of the final frame. `pre_skip` is the encoder's
//! lookahead, and the writer's user flushes it with one extra frame.

use std::io::{Read, Seek, Write};

use ogg::writing::PacketWriteEndInfo;
use ogg::{PacketReader, PacketWriter};

/// Packets per page (one second of 20 ms frames), so seeking and
/// progress have a granule position at least every second.
const PACKETS_PER_PAGE: u32 = 50;
/// Vendor string in `OpusTags`.
const VENDOR: &str = concat!("chatvoice ", env!("CARGO_PKG_VERSION"));

/// The `OpusHead` packet of a mono 48 kHz stream (RFC 7845 §5.1).
pub fn opus_head(pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1); // version
    h.push(1); // channels
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // channel mapping family 0: mono/stereo
    h
}

/// The `OpusTags` packet (RFC 7845 §5.2) with our vendor string and
/// `comments` (`KEY=value`).
pub fn opus_tags(comments: &[&str]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    t.extend_from_slice(VENDOR.as_bytes());
    t.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        t.extend_from_slice(&(c.len() as u32).to_le_bytes());
        t.extend_from_slice(c.as_bytes());
    }
    t
}

/// Writes Opus packets (20 ms mono frames) into an Ogg Opus stream.
pub struct OggOpusWriter<W: Write> {
    /// The Ogg page writer.
    pw: PacketWriter<'static, W>,
    /// Logical stream serial number.
    serial: u32,
    /// Samples to skip at the start (encoder lookahead).
    pre_skip: u64,
    /// Samples in the packets written or pending so far (what a decoder
    /// produces from them, pre-skip included).
    samples: u64,
    /// The last packet, held back so that `finish` can end the stream
    /// with it (the EOS flag and exact final granule go on its page).
    pending: Option<(Vec<u8>, u64)>,
    /// Packets on the current page.
    on_page: u32,
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream: writes the two header pages.
    pub fn new(out: W, pre_skip: u16, serial: u32) -> std::io::Result<Self> {
        let mut pw = PacketWriter::new(out);
        pw.write_packet(
            opus_head(pre_skip, 48_000),
            serial,
            PacketWriteEndInfo::EndPage,
            0,
        )?;
        pw.write_packet(
            opus_tags(&["ENCODER=chatvoice"]),
            serial,
            PacketWriteEndInfo::EndPage,
            0,
        )?;
        Ok(Self {
            pw,
            serial,
            pre_skip: u64::from(pre_skip),
            samples: 0,
            pending: None,
            on_page: 0,
        })
    }

    /// Adds one Opus packet holding `samples` samples (960 for 20 ms).
    pub fn write_packet(&mut self, packet: Vec<u8>, samples: u64) -> std::io::Result<()> {
        self.flush_pending(false)?;
        self.samples += samples;
        self.pending = Some((packet, self.samples));
        Ok(())
    }

    fn flush_pending(&mut self, last: bool) -> std::io::Result<()> {
        let Some((p, granule)) = self.pending.take() else {
            return Ok(());
        };
        self.on_page += 1;
        let info = if last {
            PacketWriteEndInfo::EndStream
        } else if self.on_page >= PACKETS_PER_PAGE {
            self.on_page = 0;
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        self.pw.write_packet(p, self.serial, info, granule)
    }

    /// Ends the stream. `length` is the recording's length in samples: the
    /// final granule position is `pre_skip + length` (at most the samples
    /// written), which trims the last frame's padding. At least one packet
    /// must have been written, and the packets should cover `pre_skip`
    /// samples more than `length` (one more frame flushes the encoder).
    pub fn finish(mut self, length: u64) -> std::io::Result<W> {
        if let Some((_, g)) = &mut self.pending {
            *g = (self.pre_skip + length).min(self.samples);
        }
        self.flush_pending(true)?;
        let mut w = self.pw.into_inner();
        w.flush()?;
        Ok(w)
    }
}

/// What an Ogg Opus file's headers and pages said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggOpusInfo {
    /// Channels (1 or 2).
    pub channels: u8,
    /// Samples to discard at the start.
    pub pre_skip: u16,
    /// The original input's sample rate (informational).
    pub input_rate: u32,
    /// The `OpusTags` vendor string.
    pub vendor: String,
    /// The `OpusTags` comments.
    pub comments: Vec<String>,
    /// Audio packets.
    pub packets: usize,
    /// Granule position of each audio packet's page, in order.
    pub granules: Vec<u64>,
    /// Whether the first packet began the stream and the last ended it.
    pub bos_eos: (bool, bool),
}

impl OggOpusInfo {
    /// The playable length in 48 kHz samples.
    pub fn length(&self) -> u64 {
        self.granules
            .last()
            .map_or(0, |g| g.saturating_sub(u64::from(self.pre_skip)))
    }
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses an `OpusTags` packet into (vendor, comments).
fn parse_tags(t: &[u8]) -> Option<(String, Vec<String>)> {
    if !t.starts_with(b"OpusTags") {
        return None;
    }
    let vlen = u32_le(t, 8)? as usize;
    let vendor = String::from_utf8_lossy(t.get(12..12 + vlen)?).into_owned();
    let mut at = 12 + vlen;
    let n = u32_le(t, at)?;
    at += 4;
    let mut comments = Vec::new();
    for _ in 0..n.min(1000) {
        let len = u32_le(t, at)? as usize;
        at += 4;
        comments.push(String::from_utf8_lossy(t.get(at..at + len)?).into_owned());
        at += len;
    }
    Some((vendor, comments))
}

/// Reads an Ogg Opus stream: its headers and its audio packets.
pub fn read_packets<R: Read + Seek>(input: R) -> Result<(OggOpusInfo, Vec<Vec<u8>>), String> {
    let mut pr = PacketReader::new(input);
    let next = |pr: &mut PacketReader<R>| pr.read_packet().map_err(|e| e.to_string());
    let head = next(&mut pr)?.ok_or("empty file")?;
    let bos = head.first_in_stream();
    let h = &head.data;
    if h.len() < 19 || !h.starts_with(b"OpusHead") {
        return Err("no OpusHead".into());
    }
    if h[8] != 1 || h[18] != 0 || !(1..=2).contains(&h[9]) {
        return Err(format!(
            "unsupported OpusHead (version {}, {} channels, mapping {})",
            h[8], h[9], h[18]
        ));
    }
    let tags = next(&mut pr)?.ok_or("no OpusTags")?;
    let (vendor, comments) = parse_tags(&tags.data).ok_or("bad OpusTags")?;
    let mut info = OggOpusInfo {
        channels: h[9],
        pre_skip: u16::from_le_bytes([h[10], h[11]]),
        input_rate: u32_le(h, 12).unwrap_or(48_000),
        vendor,
        comments,
        packets: 0,
        granules: Vec::new(),
        bos_eos: (bos, false),
    };
    let mut packets = Vec::new();
    while let Some(p) = next(&mut pr)? {
        info.granules.push(p.absgp_page());
        info.bos_eos.1 = p.last_in_stream();
        packets.push(p.data);
    }
    info.packets = packets.len();
    Ok((info, packets))
}

/// Decodes an Ogg Opus stream to 48 kHz mono samples (stereo is averaged),
/// with the pre-skip removed and the end trimmed to the final granule.
pub fn decode<R: Read + Seek>(input: R) -> Result<(Vec<i16>, OggOpusInfo), String> {
    let (info, packets) = read_packets(input)?;
    let channels = if info.channels == 2 {
        opus::Channels::Stereo
    } else {
        opus::Channels::Mono
    };
    let ch = usize::from(info.channels);
    let mut dec = opus::Decoder::new(48_000, channels).map_err(|e| e.to_string())?;
    // 120 ms is the longest Opus packet.
    let mut buf = vec![0i16; 5760 * ch];
    let mut pcm = Vec::with_capacity(packets.len() * 960);
    for p in &packets {
        let n = match dec.decode(p, &mut buf, false) {
            Ok(n) => n,
            // A damaged packet: conceal 20 ms rather than give up.
            Err(_) => dec.decode(&[], &mut buf[..960 * ch], false).unwrap_or(0),
        };
        if ch == 2 {
            pcm.extend(
                buf[..n * 2]
                    .chunks_exact(2)
                    .map(|s| ((i32::from(s[0]) + i32::from(s[1])) / 2) as i16),
            );
        } else {
            pcm.extend_from_slice(&buf[..n]);
        }
    }
    let skip = usize::from(info.pre_skip).min(pcm.len());
    pcm.drain(..skip);
    let len = info.length() as usize;
    if len > 0 && len < pcm.len() {
        pcm.truncate(len);
    }
    Ok((pcm, info))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::codec::{Encoder, EncoderConfig};

    #[test]
    fn write_then_read_round_trips_with_rfc7845_structure() {
        let mut enc = Encoder::new(EncoderConfig::default()).expect("encoder");
        let pre_skip = enc.lookahead().expect("lookahead") as u16;
        // 2.5 s of a 400 Hz tone, not a whole number of frames.
        let len = 120_000 + 123;
        let pcm: Vec<i16> = (0..len)
            .map(|i| {
                ((i as f32 * 2.0 * std::f32::consts::PI * 400.0 / 48_000.0).sin() * 10_000.0) as i16
            })
            .collect();
        let mut w = OggOpusWriter::new(Cursor::new(Vec::new()), pre_skip, 42).expect("writer");
        let mut frames = 0u64;
        for chunk in pcm.chunks(960) {
            let mut f = chunk.to_vec();
            f.resize(960, 0);
            w.write_packet(enc.encode(&f).expect("encode"), 960)
                .expect("write");
            frames += 1;
        }
        // One frame more flushes the encoder's lookahead.
        w.write_packet(enc.encode(&[0; 960]).expect("encode"), 960)
            .expect("write");
        frames += 1;
        let bytes = w.finish(len as u64).expect("finish").into_inner();
        // Page 1: capture pattern, version 0, BOS flag, granule 0.
        assert_eq!(&bytes[..4], b"OggS");
        assert_eq!(bytes[5] & 0x02, 0x02);
        assert_eq!(&bytes[28..36], b"OpusHead");

        let (info, packets) = read_packets(Cursor::new(bytes.clone())).expect("read");
        assert_eq!(info.channels, 1);
        assert_eq!(info.pre_skip, pre_skip);
        assert!(pre_skip > 0);
        assert!(info.vendor.starts_with("chatvoice"));
        assert_eq!(info.comments, vec!["ENCODER=chatvoice".to_owned()]);
        assert_eq!(packets.len() as u64, frames);
        assert_eq!(info.bos_eos, (true, true));
        // Granules never decrease, count decoded samples (50 packets per
        // page), and the last one is pre_skip + the exact length.
        assert!(info.granules.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(info.granules[0], 50 * 960);
        assert_eq!(
            *info.granules.last().expect("pages"),
            u64::from(pre_skip) + len as u64
        );
        assert_eq!(info.length(), len as u64);

        let (out, _) = decode(Cursor::new(bytes)).expect("decode");
        assert_eq!(out.len(), len);
        // Same tone: compare energy in the middle (a perceptual codec does
        // not preserve samples).
        let e = |x: &[i16]| x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64;
        let ratio = e(&out[10_000..100_000]) / e(&pcm[10_000..100_000]);
        assert!((0.7..1.3).contains(&ratio), "energy ratio {ratio}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_packets(Cursor::new(b"not an ogg file at all".to_vec())).is_err());
        assert!(decode(Cursor::new(Vec::new())).is_err());
    }
}

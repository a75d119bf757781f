//! Per-speaker adaptive jitter buffer.
//!
//! Packets arrive with uneven spacing, out of order, or not at all; the
//! speaker must be played one frame every 20 ms. The buffer holds a speaker's
//! packets keyed by sequence number (extended past the 16-bit wrap) and hands
//! the playback thread one [`Playout`] per frame.
//!
//! **Target delay.** Playback of a talk spurt starts once `target` frames
//! are buffered. The target starts at **40 ms** (2 frames: a guess that
//! survives a late second packet) and follows the measured inter-arrival
//! jitter `J` (RFC 3550 §6.4.1 estimator, in ms) from the second packet on:
//! `target = round((20 + 3·J) / 20)` frames, kept between **20 ms and
//! 120 ms**. So that the first second is not played on the guess
//! ([`JitterConfig::fast_start`]), the estimator's gain is 1/n for its n-th
//! measurement, between 1/4 (one late packet at the start moves it by a
//! quarter) and the RFC's 1/16 (so after a few packets `J` is near the mean
//! of the differences, not 1/16 of the first ones), and in the first second an
//! excess over the target is won back after 0.1 s instead of 0.5 s. (The
//! slow start, before: 40 ms for 8 packets, `J` growing from 0 by 1/16
//! steps, the excess won back after 0.5 s; the first second's latency was
//! the call's p95.)
//! It grows by one frame for a while after each underrun caused by
//! a late packet (one that continues the stream without a timestamp jump;
//! after a VAD pause the timestamps jump), decaying after 5 s without one,
//! and stays at least
//! **40 ms while packets are being lost** (so the next packet, which carries
//! the lost one's FEC copy, is usually at hand). When more than `target`
//! frames stay buffered for half a second, the playback thread skips the
//! next quiet frame to win the latency back ([`JitterBuffer::wants_shrink`]).
//!
//! **Loss.** When the packet due is missing but later ones are buffered, the
//! frame is counted lost and rebuilt from the next packet's FEC data
//! ([`Playout::Fec`]) or concealed ([`Playout::Conceal`]). When the buffer is
//! empty (the speaker paused, or the network is late) up to three frames are
//! concealed without consuming a sequence number, then the speaker goes
//! quiet ([`Playout::Silence`]) and rebuffers to the target when packets
//! come again.

use std::collections::BTreeMap;

use crate::audio::{FRAME, FRAME_MS};

/// Jitter buffer settings, in milliseconds (multiples of 20).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Target before the jitter has been measured.
    pub initial_ms: u32,
    /// Whether the start is fast: the jitter estimate converges over the
    /// first packets (gain 1/n, between 1/4 and 1/16) and sets the target from the
    /// second packet on, and an excess over the target is won back after
    /// 0.1 s in the first second; `false`: the RFC 3550 gain of 1/16 from
    /// the first packet, `initial_ms` for the first 8, 0.5 s (the
    /// behaviour before, kept for measurements).
    pub fast_start: bool,
    /// Smallest target.
    pub min_ms: u32,
    /// Largest target.
    pub max_ms: u32,
    /// Smallest target while packets are being lost (FEC needs the next packet).
    pub lossy_min_ms: u32,
    /// Packets held at most per speaker; older ones are dropped (a speaker
    /// far ahead of playback must not grow memory).
    pub max_packets: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            initial_ms: 40,
            fast_start: true,
            min_ms: 20,
            max_ms: 120,
            lossy_min_ms: 40,
            max_packets: 64,
        }
    }
}

/// What to play for one frame of one speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Decode this packet.
    Packet(Vec<u8>),
    /// The frame's packet is lost; decode the FEC data of this packet (the
    /// next one), which stays buffered and is decoded normally next frame.
    Fec(Vec<u8>),
    /// Conceal one frame (PLC).
    Conceal,
    /// Nothing to play for this speaker (quiet, or still buffering).
    Silence,
}

/// Counters of one speaker's buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Distinct packets accepted.
    pub received: u64,
    /// Packets that came twice.
    pub duplicates: u64,
    /// Packets that came after their frame was played (or skipped).
    pub late: u64,
    /// Frames whose packet was missing when due.
    pub lost: u64,
    /// Frames rebuilt from FEC.
    pub fec: u64,
    /// Frames concealed (lost packets without FEC, and underruns).
    pub plc: u64,
    /// Times the buffer ran dry during playback.
    pub underruns: u64,
    /// Frames skipped to reduce delay, and packets dropped because the
    /// buffer was full.
    pub dropped: u64,
    /// Estimated inter-arrival jitter in ms.
    pub jitter_ms: f64,
    /// Current target delay in ms.
    pub target_ms: u32,
}

/// The buffer for one speaker.
#[derive(Debug)]
pub struct JitterBuffer {
    /// Settings.
    cfg: JitterConfig,
    /// Waiting packets by extended sequence number.
    packets: BTreeMap<u64, (u32, Vec<u8>)>,
    /// Highest extended sequence number seen (for unwrapping).
    highest: Option<u64>,
    /// The next sequence number to play; `None` before the first spurt.
    next: Option<u64>,
    /// Whether a talk spurt is being played (vs. buffering up to target).
    playing: bool,
    /// Frames concealed in a row because the buffer was empty.
    dry_run: u32,
    /// Arrival time (ms) and timestamp of the previous packet, for jitter.
    last_arrival: Option<(f64, u32)>,
    /// Whether the buffer ran dry and the packet it waits for has not come.
    dry: bool,
    /// Extended seq and timestamp of the last packet played: a packet that
    /// continues it without a timestamp jump after the buffer ran dry was
    /// late (grow the target); one with a jump follows a pause (the
    /// speaker's VAD stopped sending), which says nothing about the network.
    last_played: Option<(u64, u32)>,
    /// Extra target frames after late-packet underruns.
    penalty: u32,
    /// Frames played since the penalty last changed (for its decay).
    since_penalty: u32,
    /// Consecutive frames with more than target + 1 frames waiting.
    over_target: u32,
    /// Recent loss rate (exponential average over played frames).
    loss_rate: f64,
    /// Inter-arrival differences measured so far (the jitter estimator's
    /// gain is 1/this, from 1/4 to 1/16, at the start with `fast_start`).
    measured: u32,
    /// Frames played or lost since the start (the fast start's first second).
    frames: u32,
    /// Counters.
    stats: JitterStats,
}

/// The RFC 3550 jitter estimator's gain is 1/this (and with `fast_start`,
/// 1/n for the n-th measurement until n reaches this).
const JITTER_GAIN_FRAMES: u32 = 16;
/// With `fast_start`, the first measurements count 1/this each (then 1/n):
/// one late packet at the start moves the estimate by a quarter of its
/// delay, not all of it (measured: with 1/n from the first, a call on a
/// path with 40 ms of jitter started 27 ms later than needed, and no
/// trimming won it back; docs/benchmarks.md, "Loss, jitter and latency").
const JITTER_FIRST_GAIN_FRAMES: u32 = 4;
/// Frames after which a penalty frame decays (5 s).
const PENALTY_DECAY_FRAMES: u32 = 250;
/// Frames in a row with more than the target buffered before one is dropped (0.5 s).
const OVER_TARGET_FRAMES: u32 = 25;
/// Frames at the start of a speaker's stream (1 s) during which, with
/// `fast_start`, [`START_OVER_TARGET_FRAMES`] replaces [`OVER_TARGET_FRAMES`].
const START_FRAMES: u32 = 50;
/// Frames in a row with more than the target buffered before one is
/// dropped, in the first second with `fast_start` (0.1 s): the jitter is
/// measured by then, and the excess of the initial target is won back at
/// the first quiet frame instead of half a second in.
const START_OVER_TARGET_FRAMES: u32 = 5;
/// Frames concealed on an empty buffer before the speaker goes quiet.
const MAX_DRY_CONCEAL: u32 = 3;

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> Self {
        Self {
            cfg,
            packets: BTreeMap::new(),
            highest: None,
            next: None,
            playing: false,
            dry_run: 0,
            last_arrival: None,
            dry: false,
            last_played: None,
            penalty: 0,
            since_penalty: 0,
            over_target: 0,
            loss_rate: 0.0,
            measured: 0,
            frames: 0,
            stats: JitterStats {
                target_ms: cfg.initial_ms,
                ..JitterStats::default()
            },
        }
    }

    /// The counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The current target delay in frames.
    pub fn target_frames(&self) -> u32 {
        self.stats.target_ms / FRAME_MS
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether no packet waits.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            // Leave room below the first packet for reordered ones.
            return u64::from(seq) + (1 << 16);
        };
        let base = (h & !0xffff) | u64::from(seq);
        [base.saturating_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .min_by_key(|c| c.abs_diff(h))
            .unwrap_or(base)
    }

    /// Adds a packet that arrived at `now_ms` (any monotonic clock in ms).
    pub fn push(&mut self, seq: u16, ts: u32, payload: Vec<u8>, now_ms: f64) {
        let mut ext = self.extend(seq);
        if let Some(n) = self.next
            && (ext + 1000 < n || ext > n + 10_000)
        {
            // The speaker restarted (new sequence numbers): start over.
            let stats = self.stats;
            *self = Self::new(self.cfg);
            self.stats = stats;
            ext = self.extend(seq);
        }
        if let Some(n) = self.next
            && ext < n
        {
            self.stats.late += 1;
            return;
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        if self.dry
            && self.next == Some(ext)
            && let Some((pseq, pts)) = self.last_played
        {
            self.dry = false;
            let frames = (ext - pseq) as u32;
            if ts.wrapping_sub(pts) == frames.wrapping_mul(FRAME as u32) {
                // The buffer ran dry and the packet it needed continues the
                // stream without a pause: it was late. Buffer one more frame
                // for a while.
                self.penalty += 1;
                self.since_penalty = 0;
            }
        }
        if let Some((t0, ts0)) = self.last_arrival {
            let d = (now_ms - t0) - f64::from(ts.wrapping_sub(ts0) as i32) / 48.0;
            self.measured = self.measured.saturating_add(1);
            let gain = if self.cfg.fast_start {
                1.0 / f64::from(
                    self.measured
                        .clamp(JITTER_FIRST_GAIN_FRAMES, JITTER_GAIN_FRAMES),
                )
            } else {
                1.0 / f64::from(JITTER_GAIN_FRAMES)
            };
            self.stats.jitter_ms += (d.abs() - self.stats.jitter_ms) * gain;
        }
        self.last_arrival = Some((now_ms, ts));
        self.packets.insert(ext, (ts, payload));
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.stats.received += 1;
        while self.packets.len() > self.cfg.max_packets {
            if let Some((k, _)) = self.packets.pop_first() {
                self.stats.dropped += 1;
                if self.next.is_some_and(|n| k >= n) {
                    self.next = Some(k + 1);
                }
            }
        }
    }

    fn update_target(&mut self) {
        let measuring = if self.cfg.fast_start {
            self.measured == 0
        } else {
            self.stats.received < 8
        };
        let ms = if measuring {
            self.cfg.initial_ms
        } else {
            let frames = ((20.0 + 3.0 * self.stats.jitter_ms) / 20.0).round() as u32;
            frames * FRAME_MS
        };
        let mut ms = ms + self.penalty * FRAME_MS;
        if self.loss_rate > 0.02 {
            ms = ms.max(self.cfg.lossy_min_ms);
        }
        self.stats.target_ms = ms.clamp(self.cfg.min_ms, self.cfg.max_ms);
    }

    fn note_played(&mut self, lost: bool) {
        self.frames = self.frames.saturating_add(1);
        self.loss_rate = self.loss_rate * 0.98 + if lost { 0.02 } else { 0.0 };
        self.since_penalty += 1;
        if self.since_penalty >= PENALTY_DECAY_FRAMES && self.penalty > 0 {
            self.penalty -= 1;
            self.since_penalty = 0;
        }
    }

    /// The frame to play now; call once per 20 ms playback frame.
    pub fn pop(&mut self) -> Playout {
        self.update_target();
        if !self.playing {
            if let Some(n) = self.next {
                // Anything older than the next frame is stale.
                while self.packets.first_key_value().is_some_and(|(k, _)| *k < n) {
                    self.packets.pop_first();
                    self.stats.late += 1;
                }
            }
            let (Some((&first, _)), Some(h)) = (self.packets.first_key_value(), self.highest)
            else {
                return Playout::Silence;
            };
            if h + 1 - first < u64::from(self.target_frames()) {
                return Playout::Silence;
            }
            if let Some(n) = self.next {
                self.stats.lost += first - n;
            }
            self.playing = true;
            self.dry_run = 0;
            self.next = Some(first);
        }
        let Some(n) = self.next else {
            return Playout::Silence;
        };
        if let Some((ts, p)) = self.packets.remove(&n) {
            self.next = Some(n + 1);
            self.dry_run = 0;
            self.dry = false;
            self.last_played = Some((n, ts));
            self.note_played(false);
            self.trim(n + 1);
            return Playout::Packet(p);
        }
        if self.packets.is_empty() {
            // Ran dry: conceal a little without consuming a number (the
            // packet may still come, or the speaker paused), then go quiet.
            if self.dry_run == 0 {
                self.stats.underruns += 1;
                self.dry = true;
            }
            self.dry_run += 1;
            if self.dry_run > MAX_DRY_CONCEAL {
                self.playing = false;
                return Playout::Silence;
            }
            self.stats.plc += 1;
            return Playout::Conceal;
        }
        // A gap: this frame's packet is missing but later ones are here.
        self.next = Some(n + 1);
        self.stats.lost += 1;
        self.note_played(true);
        if let Some((_, p)) = self.packets.get(&(n + 1)) {
            self.stats.fec += 1;
            Playout::Fec(p.clone())
        } else {
            self.stats.plc += 1;
            Playout::Conceal
        }
    }

    /// Notes whether, for a whole half second, even the shallowest moment
    /// had more than `target` frames buffered: then the delay is larger than
    /// needed (a start at the initial 40 ms target, a burst) and the caller
    /// may skip one frame ([`wants_shrink`](Self::wants_shrink)).
    fn trim(&mut self, next: u64) {
        // Frames buffered when this one was taken, itself included.
        let depth = self.highest.map_or(0, |h| (h + 1).saturating_sub(next)) + 1;
        if depth > u64::from(self.target_frames()) {
            self.over_target = self.over_target.saturating_add(1);
        } else {
            self.over_target = 0;
        }
    }

    /// Whether the buffer holds more delay than its target and has for at
    /// least half a second. The playback thread then skips a frame, choosing
    /// a quiet one (a pause between words) so that nothing audible is lost:
    /// it decodes the frame, and if it is quiet, calls [`pop`](Self::pop)
    /// again and plays that frame instead, then [`shrunk`](Self::shrunk).
    pub fn wants_shrink(&self) -> bool {
        let window = if self.cfg.fast_start && self.frames < START_FRAMES {
            START_OVER_TARGET_FRAMES
        } else {
            OVER_TARGET_FRAMES
        };
        self.over_target >= window && self.playing && !self.packets.is_empty()
    }

    /// One frame was skipped to reduce the delay.
    pub fn shrunk(&mut self) {
        self.over_target = 0;
        self.stats.dropped += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_frame() -> JitterConfig {
        JitterConfig {
            initial_ms: 20,
            ..JitterConfig::default()
        }
    }

    fn pkt(seq: u16) -> Vec<u8> {
        vec![seq as u8, (seq >> 8) as u8]
    }

    #[test]
    fn reordered_packets_play_in_sequence_order() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Each on time by its timestamp, but in another order (no jitter
        // measured, so the target stays at 20 ms).
        for s in [3u16, 1, 2] {
            jb.push(s, u32::from(s) * 960, pkt(s), f64::from(s) * 20.0);
        }
        let got: Vec<_> = (0..3).map(|_| jb.pop()).collect();
        assert_eq!(
            got,
            vec![
                Playout::Packet(pkt(1)),
                Playout::Packet(pkt(2)),
                Playout::Packet(pkt(3))
            ]
        );
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn a_lost_packet_is_rebuilt_from_the_next_ones_fec_and_two_losses_conceal_first() {
        let mut jb = JitterBuffer::new(one_frame());
        for s in [1u16, 2, 4, 5] {
            jb.push(s, u32::from(s) * 960, pkt(s), f64::from(s) * 20.0);
        }
        let got: Vec<_> = (0..5).map(|_| jb.pop()).collect();
        assert_eq!(
            got,
            vec![
                Playout::Packet(pkt(1)),
                Playout::Packet(pkt(2)),
                Playout::Fec(pkt(4)),
                Playout::Packet(pkt(4)),
                Playout::Packet(pkt(5)),
            ]
        );
        let mut jb = JitterBuffer::new(one_frame());
        for s in [1u16, 4] {
            jb.push(s, u32::from(s) * 960, pkt(s), f64::from(s) * 20.0);
        }
        let got: Vec<_> = (0..4).map(|_| jb.pop()).collect();
        assert_eq!(
            got,
            vec![
                Playout::Packet(pkt(1)),
                Playout::Conceal,
                Playout::Fec(pkt(4)),
                Playout::Packet(pkt(4)),
            ]
        );
        let st = jb.stats();
        assert_eq!((st.lost, st.fec, st.plc), (2, 1, 1));
        // The lost packet turning up afterwards is late, not played.
        jb.push(2, 2 * 960, pkt(2), 0.0);
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut jb = JitterBuffer::new(one_frame());
        for s in [65534u16, 65535, 0, 1] {
            jb.push(s, u32::from(s.wrapping_sub(65534)) * 960, pkt(s), 0.0);
        }
        for s in [65534u16, 65535, 0, 1] {
            assert_eq!(jb.pop(), Playout::Packet(pkt(s)));
        }
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn a_pause_conceals_briefly_then_goes_quiet_and_resumes_without_loss() {
        let mut jb = JitterBuffer::new(one_frame());
        jb.push(1, 960, pkt(1), 20.0);
        assert_eq!(jb.pop(), Playout::Packet(pkt(1)));
        for _ in 0..MAX_DRY_CONCEAL {
            assert_eq!(jb.pop(), Playout::Conceal);
        }
        assert_eq!(jb.pop(), Playout::Silence);
        assert_eq!(jb.pop(), Playout::Silence);
        jb.push(2, 50 * 960, pkt(2), 1000.0);
        assert_eq!(jb.pop(), Playout::Packet(pkt(2)));
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().late, 0);
    }

    /// The start before `fast_start`: 40 ms for the first 8 packets, the
    /// jitter estimate growing from 0 by 1/16 steps.
    fn slow_start() -> JitterConfig {
        JitterConfig {
            initial_ms: 40,
            fast_start: false,
            ..JitterConfig::default()
        }
    }

    #[test]
    fn the_jitter_estimate_converges_in_a_few_packets_but_one_late_packet_moves_it_a_quarter() {
        // Packets alternately on time and 30 ms late: every difference is
        // 30 ms. Returns the estimate after each of `n` packets.
        let feed = |cfg: JitterConfig, n: u16| -> Vec<f64> {
            let mut jb = JitterBuffer::new(cfg);
            (0..n)
                .map(|i| {
                    let late = if i % 2 == 1 { 30.0 } else { 0.0 };
                    jb.push(i, u32::from(i) * 960, pkt(i), f64::from(i) * 20.0 + late);
                    jb.stats().jitter_ms
                })
                .collect()
        };
        let fast = feed(JitterConfig::default(), 9);
        let slow = feed(slow_start(), 9);
        // One late packet: a quarter of it (the slow start: a sixteenth).
        assert!((fast[1] - 7.5).abs() < 1e-9, "{fast:?}");
        assert!((slow[1] - 30.0 / 16.0).abs() < 1e-9, "{slow:?}");
        // After 8 differences the fast start is near the 30 ms they
        // measure; the slow start has not reached half of it.
        assert!(fast[8] > 25.0 && slow[8] < 15.0, "{fast:?} {slow:?}");
        let mut jb = JitterBuffer::new(JitterConfig::default());
        assert_eq!(jb.target_frames(), 2);
        for i in 0..9u16 {
            let late = if i % 2 == 1 { 30.0 } else { 0.0 };
            jb.push(i, u32::from(i) * 960, pkt(i), f64::from(i) * 20.0 + late);
        }
        jb.pop();
        // round((20 + 3 × J) / 20) frames for J near 26..30 ms.
        assert!((5..=6).contains(&jb.target_frames()), "{:?}", jb.stats());
    }

    /// Plays 10 s of one speaker whose packets (sent every 20 ms) arrive
    /// with a random delay of 0..`jitter_ms` ms, popping every 20 ms
    /// (arrivals just after a tick wait for the next). Returns the delay
    /// of each frame played from its own packet (ms from when it was sent
    /// to when it played) in the first second and after, and the
    /// underruns in the first second and after.
    fn simulate(cfg: JitterConfig, jitter_ms: f64, seed: u64) -> (Vec<f64>, Vec<f64>, u64, u64) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n = 500u16;
        let mut arrivals: Vec<(f64, u16)> = (0..n)
            .map(|i| {
                (
                    f64::from(i) * 20.0 + 0.5 + rng.random_range(0.0..jitter_ms.max(1e-9)),
                    i,
                )
            })
            .collect();
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut jb = JitterBuffer::new(cfg);
        let (mut first, mut rest) = (Vec::new(), Vec::new());
        let (mut under_first, mut under_rest) = (0, 0);
        let mut next = 0;
        for tick in 1..(usize::from(n) + 20) {
            let now = tick as f64 * 20.0;
            while next < arrivals.len() && arrivals[next].0 <= now {
                let (t, s) = arrivals[next];
                jb.push(s, u32::from(s) * 960, pkt(s), t);
                next += 1;
            }
            let mut got = jb.pop();
            if jb.wants_shrink() {
                got = jb.pop();
                jb.shrunk();
            }
            if tick == 50 {
                under_first = jb.stats().underruns;
            }
            if tick == usize::from(n) - 5 {
                // The stream ends soon: the buffer running dry then is not
                // an underrun of the steady state.
                under_rest = jb.stats().underruns - under_first;
            }
            if let Playout::Packet(p) = got {
                let seq = u16::from(p[0]) | (u16::from(p[1]) << 8);
                let delay = now - f64::from(seq) * 20.0;
                if tick <= 50 {
                    first.push(delay)
                } else {
                    rest.push(delay)
                }
            }
        }
        (first, rest, under_first, under_rest)
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }

    #[test]
    fn the_fast_start_cuts_the_first_seconds_delay_without_more_underruns_later() {
        // A steady path (0..1 ms) and 40 ms of jitter, ten seeds each;
        // figures printed with --nocapture, compared in total.
        for jitter in [1.0, 40.0] {
            let (mut first_new, mut first_old) = (Vec::new(), Vec::new());
            let (mut under_new, mut under_old) = ((0, 0), (0, 0));
            for seed in 1..=10 {
                let (f_new, r_new, uf_new, ur_new) =
                    simulate(JitterConfig::default(), jitter, seed);
                let (f_old, r_old, uf_old, ur_old) = simulate(slow_start(), jitter, seed);
                eprintln!(
                    "jitter {jitter} seed {seed}: first second mean {:.1} vs {:.1} ms; \
                     underruns first {uf_new} vs {uf_old}, later {ur_new} vs {ur_old}; \
                     later mean {:.1} vs {:.1} ms (fast vs slow start)",
                    mean(&f_new),
                    mean(&f_old),
                    mean(&r_new),
                    mean(&r_old)
                );
                first_new.extend(f_new);
                first_old.extend(f_old);
                under_new = (under_new.0 + uf_new, under_new.1 + ur_new);
                under_old = (under_old.0 + uf_old, under_old.1 + ur_old);
            }
            assert!(
                under_new.0 <= under_old.0 && under_new.1 <= under_old.1,
                "jitter {jitter}: underruns {under_new:?} vs {under_old:?}"
            );
            if jitter < 2.0 {
                // A steady path: no underrun at all, and the first second
                // near the 20 ms floor (40 ms for the first 0.1 s).
                assert_eq!(under_new, (0, 0));
                assert!(mean(&first_new) < 25.0, "{first_new:?}");
                assert!(mean(&first_old) > 30.0, "{first_old:?}");
            }
        }
    }

    #[test]
    fn playback_waits_for_the_initial_40_ms_target() {
        let mut jb = JitterBuffer::new(slow_start());
        assert_eq!(jb.target_frames(), 2);
        jb.push(10, 0, pkt(10), 0.0);
        assert_eq!(jb.pop(), Playout::Silence);
        jb.push(11, 960, pkt(11), 20.0);
        assert_eq!(jb.pop(), Playout::Packet(pkt(10)));
    }

    /// Feeds `n` packets at 20 ms spacing plus `jitter(i)` ms and pops one
    /// frame every 20 ms; returns the final target.
    fn run(jb: &mut JitterBuffer, start: u16, n: u16, jitter: impl Fn(u16) -> f64) -> u32 {
        let mut arrivals: Vec<(f64, u16)> = (0..n)
            .map(|i| (f64::from(i) * 20.0 + jitter(i), start.wrapping_add(i)))
            .collect();
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let t0 = f64::from(start) * 20.0;
        let mut next = 0;
        for tick in 0..(n as usize + 20) {
            let now = tick as f64 * 20.0;
            while next < arrivals.len() && arrivals[next].0 <= now {
                let (t, s) = arrivals[next];
                jb.push(s, u32::from(s) * 960, pkt(s), t0 + t);
                next += 1;
            }
            jb.pop();
        }
        jb.target_frames()
    }

    #[test]
    fn the_target_adapts_to_measured_jitter_within_20_to_120_ms() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Steady arrivals: the target falls from 40 ms to the 20 ms floor.
        assert_eq!(run(&mut jb, 0, 200, |_| 0.5), 1);
        // Heavy jitter (0..=60 ms): the target rises, but never above 120 ms.
        let noisy = |i: u16| f64::from((u32::from(i) * 7919 % 61) as u16);
        let t = run(&mut jb, 200, 400, noisy);
        assert!((3..=6).contains(&t), "target {t} frames");
        assert!(jb.stats().jitter_ms > 10.0);
        // Calm again for a while: back down.
        let t2 = run(&mut jb, 600, 600, |_| 0.5);
        assert!(t2 < t, "{t2} vs {t}");
    }

    #[test]
    fn excess_delay_from_the_initial_target_is_won_back_on_a_steady_stream() {
        let mut jb = JitterBuffer::new(slow_start());
        // One packet per 20 ms, arriving 1 ms before each pop.
        let mut last = Playout::Silence;
        for i in 0..200u16 {
            let now = f64::from(i) * 20.0;
            jb.push(i, u32::from(i) * 960, pkt(i), now - 1.0);
            last = jb.pop();
            if jb.wants_shrink() {
                // The caller found this frame quiet: skip it.
                last = jb.pop();
                jb.shrunk();
            }
        }
        // It started 40 ms behind, now plays the packet that just came.
        assert_eq!(jb.target_frames(), 1);
        assert_eq!(last, Playout::Packet(pkt(199)));
        assert_eq!(jb.stats().dropped, 1);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn a_late_packet_grows_the_target_but_a_vad_pause_does_not() {
        // Packets `from..to`, each 1 ms before its pop, `shift` frames later
        // (in time and timestamp) than packet numbers say.
        let steady = |jb: &mut JitterBuffer, from: u16, to: u16, shift: u32| {
            for i in from..to {
                let frame = u32::from(i) + shift;
                let now = f64::from(frame) * 20.0;
                jb.push(i, frame * 960, pkt(i), now - 1.0);
                jb.pop();
                if jb.wants_shrink() {
                    jb.pop();
                    jb.shrunk();
                }
            }
        };
        let mut jb = JitterBuffer::new(JitterConfig::default());
        steady(&mut jb, 0, 100, 0);
        assert_eq!(jb.target_frames(), 1);
        // Packet 100 is 30 ms late: the buffer runs dry, then it continues
        // the stream without a timestamp jump.
        assert_eq!(jb.pop(), Playout::Conceal);
        jb.push(100, 100 * 960, pkt(100), 2010.0);
        assert_eq!(jb.pop(), Playout::Packet(pkt(100)));
        assert_eq!(jb.target_frames(), 2, "{:?}", jb.stats());

        let mut jb = JitterBuffer::new(JitterConfig::default());
        steady(&mut jb, 0, 100, 0);
        // The speaker pauses for 100 ms (five frames not sent: ts jumps).
        for _ in 0..5 {
            jb.pop();
        }
        steady(&mut jb, 100, 102, 5);
        assert_eq!(jb.target_frames(), 1, "{:?}", jb.stats());
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn a_full_buffer_drops_its_oldest_packets() {
        let mut jb = JitterBuffer::new(JitterConfig {
            max_packets: 4,
            ..JitterConfig::default()
        });
        for s in 0..10u16 {
            jb.push(s, u32::from(s) * 960, pkt(s), 0.0);
        }
        assert_eq!(jb.len(), 4);
        assert_eq!(jb.stats().dropped, 6);
        assert_eq!(jb.pop(), Playout::Packet(pkt(6)));
    }
}

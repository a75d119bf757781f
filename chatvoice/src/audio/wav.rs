//! WAV files as audio input and output.
//!
//! [`WavInput`] plays a file into the engine as if it were a microphone,
//! paced like a device (optionally faster than real time) or as fast as the
//! consumer takes it. [`WavOutput`] is a speaker that records what it plays,
//! paced by its own clock, and writes a 48 kHz mono 16-bit WAV file when it
//! stops. Both note when their clock started, so a test can compute when a
//! given sample entered capture and when it left playback.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::silence::{StopOnDrop, sleep_until};
use super::{AudioInput, AudioOutput, Capture, FRAME, Pacing, Playback, SAMPLE_RATE};
use crate::error::AudioError;
use crate::resample::{Resampler, downmix, to_i16};

/// Reads a WAV file of any rate, channel count and sample format as 48 kHz
/// mono i16.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, AudioError> {
    let err = |source| AudioError::Wav {
        path: path.to_owned(),
        source,
    };
    let mut r = hound::WavReader::open(path).map_err(err)?;
    let spec = r.spec();
    let raw: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>().map_err(err)?,
        hound::SampleFormat::Int => {
            let scale = 2f32.powi(i32::from(spec.bits_per_sample) - 1);
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let mono = downmix(&raw, usize::from(spec.channels));
    let mut out = Vec::with_capacity(mono.len());
    let mut rs = Resampler::new(spec.sample_rate, SAMPLE_RATE);
    rs.process(&mono, &mut out);
    rs.flush(&mut out);
    Ok(out.into_iter().map(to_i16).collect())
}

/// Writes 48 kHz mono 16-bit samples to a WAV file.
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), AudioError> {
    let err = |source| AudioError::Wav {
        path: path.to_owned(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in samples {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// A WAV file (or samples) played into the engine as a microphone.
#[derive(Debug, Clone)]
pub struct WavInput {
    /// The whole signal, 48 kHz mono (files are small: seconds of speech).
    samples: Arc<Vec<i16>>,
    /// The clock.
    pacing: Pacing,
    /// When sample 0 "entered the microphone": frame k is delivered at
    /// `start + (k + 1) × period`, when its last sample has been captured.
    start: Arc<OnceLock<Instant>>,
    /// Play the signal over and over with this much silence in between,
    /// like a microphone that never ends (demos); `None` plays it once.
    repeat_after: Option<Duration>,
}

impl WavInput {
    /// Reads the file now (so a bad file fails here, not in a thread).
    pub fn open(path: &Path, pacing: Pacing) -> Result<Self, AudioError> {
        Ok(Self::from_samples(read_wav(path)?, pacing))
    }

    /// Plays these 48 kHz mono samples (a `Vec`, or an `Arc` shared with
    /// other inputs of the same file).
    pub fn from_samples(samples: impl Into<Arc<Vec<i16>>>, pacing: Pacing) -> Self {
        Self {
            samples: samples.into(),
            pacing,
            start: Arc::new(OnceLock::new()),
            repeat_after: None,
        }
    }

    /// Plays the signal again and again, with `gap` of silence in between,
    /// instead of ending after it once.
    pub fn repeating(mut self, gap: Duration) -> Self {
        self.repeat_after = Some(gap);
        self
    }

    /// When the input's clock started (set once it runs).
    pub fn start_time(&self) -> Arc<OnceLock<Instant>> {
        self.start.clone()
    }
}

impl AudioInput for WavInput {
    fn start(self: Box<Self>) -> Result<Capture, AudioError> {
        let (tx, rx) = mpsc::sync_channel(4);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let period = self.pacing.frame_period();
        let t = thread::Builder::new()
            .name("wav-in".into())
            .spawn(move || {
                let t0 = Instant::now();
                let _ = self.start.set(t0);
                let gap_len = self.repeat_after.map_or(0, |g| {
                    (g.as_millis() as usize) * (SAMPLE_RATE as usize / 1000)
                });
                let gap = vec![0i16; gap_len];
                let mut k = 0u32;
                loop {
                    for chunk in self.samples.chunks(FRAME).chain(gap.chunks(FRAME)) {
                        if let Some(p) = period
                            && !sleep_until(t0 + p * (k + 1), &flag)
                        {
                            return;
                        }
                        let mut frame = chunk.to_vec();
                        frame.resize(FRAME, 0);
                        if flag.load(Ordering::Relaxed) || tx.send(frame).is_err() {
                            return;
                        }
                        k = k.wrapping_add(1);
                    }
                    if self.repeat_after.is_none() {
                        break;
                    }
                }
                // Dropping `tx` ends the capture: the engine sees the input end.
            })?;
        Ok(Capture {
            frames: rx,
            guard: Box::new(StopOnDrop(stop, Some(t))),
        })
    }
}

/// What a [`WavOutput`] played, shared with whoever wants to inspect it.
#[derive(Debug, Default)]
pub struct Played {
    /// When frame 0 started playing: frame j plays from `start + j × period`.
    pub start: OnceLock<Instant>,
    /// Every sample played, silence included.
    pub samples: Mutex<Vec<i16>>,
    /// Frames the engine did not deliver in time (silence was played).
    pub underruns: AtomicU64,
}

impl Played {
    /// A copy of the samples played so far.
    pub fn samples(&self) -> Vec<i16> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// A speaker that records what it plays to memory and, when it stops, to a
/// WAV file.
#[derive(Debug, Clone)]
pub struct WavOutput {
    /// Where to write the file when the playback stops (`None`: memory only).
    path: Option<PathBuf>,
    /// The clock. Unpaced, it asks for the next frame as soon as the last
    /// one came (for rendering a voice message to a file).
    pacing: Pacing,
    /// The record of what was played.
    played: Arc<Played>,
    /// How long to wait for a frame after asking; `None`: three quarters of
    /// a frame period, like a device.
    patience: Option<Duration>,
}

impl WavOutput {
    /// An output that writes `path` when stopped.
    pub fn new(path: Option<PathBuf>, pacing: Pacing) -> Self {
        Self {
            path,
            pacing,
            played: Arc::new(Played::default()),
            patience: None,
        }
    }

    /// Waits up to `patience` for each frame instead of playing silence
    /// after three quarters of a frame period. For tests of what a call
    /// delivers (not of its timing) on a loaded machine: a late frame then
    /// delays the clock (which catches up at once) instead of being lost.
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = Some(patience);
        self
    }

    /// What was played.
    pub fn played(&self) -> Arc<Played> {
        self.played.clone()
    }
}

impl AudioOutput for WavOutput {
    fn start(self: Box<Self>) -> Result<Playback, AudioError> {
        let (demand_tx, demand_rx) = mpsc::channel();
        let (frames_tx, frames_rx) = mpsc::channel::<Vec<i16>>();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let period = self.pacing.frame_period();
        let t = thread::Builder::new()
            .name("wav-out".into())
            .spawn(move || {
                let played = self.played.clone();
                let t0 = Instant::now();
                let _ = played.start.set(t0);
                // Frames owed by the engine after an underrun; the late ones
                // are discarded when they arrive so playback stays in step.
                let mut owed = 0u32;
                for k in 0u32.. {
                    if let Some(p) = period
                        && !sleep_until(t0 + p * k, &flag)
                    {
                        break;
                    }
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    while owed > 0 && frames_rx.try_recv().is_ok() {
                        owed -= 1;
                    }
                    if demand_tx.send(()).is_err() {
                        break;
                    }
                    let wait = self
                        .patience
                        .or(period.map(|p| p * 3 / 4))
                        .unwrap_or(Duration::from_secs(1));
                    let frame = match frames_rx.recv_timeout(wait) {
                        Ok(f) => f,
                        Err(RecvTimeoutError::Timeout) => {
                            owed += 1;
                            played.underruns.fetch_add(1, Ordering::Relaxed);
                            vec![0; FRAME]
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    if let Ok(mut s) = played.samples.lock() {
                        s.extend_from_slice(&frame);
                    }
                }
                if let Some(path) = &self.path {
                    let samples = played.samples();
                    if let Err(e) = write_wav(path, &samples) {
                        tracing::warn!("{e}");
                    }
                }
            })?;
        Ok(Playback {
            demand: demand_rx,
            frames: frames_tx,
            guard: Box::new(StopOnDrop(stop, Some(t))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_input_delivers_whole_frames_and_starts_again_after_the_gap() {
        let input = Box::new(
            WavInput::from_samples(vec![1000; FRAME + 10], Pacing::AsFastAsPossible)
                .repeating(Duration::from_millis(40)),
        );
        let capture = input.start().expect("start");
        let first = capture.frames.recv().expect("frame");
        assert_eq!(first.len(), FRAME);
        let second = capture.frames.recv().expect("frame");
        assert_eq!(second[9], 1000);
        assert_eq!(second[10], 0);
        // 40 ms of silence (two frames), then the signal again.
        for _ in 0..2 {
            let gap = capture.frames.recv().expect("gap frame");
            assert!(gap.iter().all(|&s| s == 0));
        }
        let again = capture.frames.recv().expect("frame");
        assert_eq!(again[0], 1000);
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("chatvoice-wav-{}-{name}", std::process::id()))
    }

    #[test]
    fn wav_input_delivers_whole_frames_and_ends() {
        let input = Box::new(WavInput::from_samples(
            (0..2000).map(|i| i as i16).collect::<Vec<i16>>(),
            Pacing::AsFastAsPossible,
        ));
        let cap = input.start().expect("start");
        let frames: Vec<_> = cap.frames.iter().collect();
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.len() == FRAME));
        assert_eq!(frames[2][2000 - 2 * FRAME - 1], 1999);
        assert_eq!(frames[2][FRAME - 1], 0);
    }

    #[test]
    fn wav_output_writes_what_it_played_and_a_44k_stereo_file_reads_back_as_48k_mono() {
        let path = tmp("out.wav");
        let out = WavOutput::new(Some(path.clone()), Pacing::Realtime(4.0));
        let played = out.played();
        let pb = Box::new(out).start().expect("start");
        for i in 0..3 {
            pb.demand.recv().expect("demand");
            pb.frames.send(vec![i as i16 + 1; FRAME]).expect("send");
        }
        pb.demand.recv().expect("demand");
        drop(pb);
        let back = read_wav(&path).expect("read");
        assert_eq!(played.samples(), back);
        // The three frames in order (a frame late for its tick is replaced
        // by silence and counted, never played out of order).
        let frames: Vec<i16> = back
            .chunks(FRAME)
            .map(|f| f[0])
            .filter(|&x| x != 0)
            .collect();
        assert!(frames.windows(2).all(|w| w[0] < w[1]), "{frames:?}");
        if played.underruns.load(Ordering::Relaxed) == 0 {
            assert_eq!(frames, vec![1, 2, 3]);
        }
        let _ = std::fs::remove_file(&path);

        let stereo = tmp("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&stereo, spec).expect("create");
        for _ in 0..44_100 {
            w.write_sample(1000i16).expect("w");
            w.write_sample(3000i16).expect("w");
        }
        w.finalize().expect("finalize");
        let mono = read_wav(&stereo).expect("read");
        assert!((mono.len() as i64 - 48_000).abs() <= 2);
        assert!((mono[24_000] - 2000).abs() <= 2, "{}", mono[24_000]);
        let _ = std::fs::remove_file(&stereo);
    }
}

//! Voice messages: record from an [`AudioInput`] into an Ogg Opus file (at
//! most [`MAX_MESSAGE_SECS`] seconds), send it through the chat file
//! transfer with kind `voice`, and play a received one to an [`AudioOutput`].
//!
//! Recording uses the call's encoder settings (VOIP, 32 kbit/s, 20 ms): a
//! two-minute message is about 480 KB. Like a call's capture, it suppresses
//! noise ([`Denoiser`], on unless [`Recorder::start_with`] says otherwise);
//! the suppressor's 10 ms lag is added to the file's pre-skip, so the
//! message still starts with its first recorded sample.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::Duration;

use chatcore::Client;
use chatcore::protocol::transfer::FileKind;

use crate::audio::{AudioInput, AudioOutput, FRAME, SAMPLE_RATE};
use crate::codec::{Encoder, EncoderConfig};
use crate::denoise::{DENOISE_FRAME, Denoiser};
use crate::error::MessageError;
use crate::ogg_opus::{self, OggOpusWriter};

/// The longest voice message, in seconds. Recording stops by itself there.
pub const MAX_MESSAGE_SECS: u32 = 120;

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The Ogg Opus file.
    pub path: PathBuf,
    /// Its length in 48 kHz samples.
    pub samples: u64,
    /// Whether it stopped because it reached the maximum length.
    pub reached_limit: bool,
}

impl Recording {
    /// Its length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples as f64 / f64::from(SAMPLE_RATE))
    }
}

/// A recording in progress, on its own thread.
pub struct Recorder {
    /// Tells the thread to finish the file.
    stop: Arc<AtomicBool>,
    /// Samples recorded so far (for a progress display).
    samples: Arc<AtomicU64>,
    /// The recording thread; it returns the result.
    thread: Option<thread::JoinHandle<Result<Recording, MessageError>>>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> MessageError + '_ {
    move |source| MessageError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Recorder {
    /// Starts recording `input` into `path`, for at most `max` (clamped to
    /// [`MAX_MESSAGE_SECS`]), with noise suppression. The recording also
    /// ends when the input ends.
    pub fn start(
        input: Box<dyn AudioInput>,
        path: &Path,
        max: Duration,
    ) -> Result<Self, MessageError> {
        Self::start_with(input, path, max, true)
    }

    /// [`start`](Self::start), with noise suppression on or off.
    pub fn start_with(
        input: Box<dyn AudioInput>,
        path: &Path,
        max: Duration,
        noise_suppression: bool,
    ) -> Result<Self, MessageError> {
        let max_samples = (max
            .min(Duration::from_secs(u64::from(MAX_MESSAGE_SECS)))
            .as_secs_f64()
            * f64::from(SAMPLE_RATE)) as u64;
        let mut enc = Encoder::new(EncoderConfig {
            // A file has no packet loss: spend every bit on the speech.
            expected_loss_pct: 0,
            ..EncoderConfig::default()
        })?;
        // The suppressor's output lags by one of its frames: skipped like
        // the encoder's lookahead.
        let lag = if noise_suppression { DENOISE_FRAME } else { 0 };
        let pre_skip = (enc.lookahead()? as usize + lag) as u16;
        let file = File::create(path).map_err(io_err(path))?;
        let serial: u32 = rand::random();
        let mut w =
            OggOpusWriter::new(BufWriter::new(file), pre_skip, serial).map_err(io_err(path))?;
        let capture = input.start()?;
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(AtomicU64::new(0));
        let (flag, count, path) = (stop.clone(), samples.clone(), path.to_owned());
        let thread = thread::Builder::new()
            .name("voice-record".into())
            .spawn(move || {
                let mut denoiser = Denoiser::new();
                let mut n = 0u64;
                let mut reached_limit = false;
                while !flag.load(Ordering::Relaxed) {
                    let frame = match capture.frames.recv_timeout(Duration::from_millis(50)) {
                        Ok(f) => f,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    let take = (max_samples - n).min(FRAME as u64);
                    let mut frame = frame;
                    frame[take as usize..].fill(0);
                    if noise_suppression {
                        denoiser.process(&mut frame);
                    }
                    w.write_packet(enc.encode(&frame)?, FRAME as u64)
                        .map_err(io_err(&path))?;
                    n += take;
                    count.store(n, Ordering::Relaxed);
                    if n >= max_samples {
                        reached_limit = true;
                        break;
                    }
                }
                drop(capture);
                // One frame of silence flushes the suppressor's lag and the
                // encoder's lookahead (the pre-skip, under 20 ms together),
                // so the last real samples are in the file; the final
                // granule position then trims it away again.
                let mut tail = [0; FRAME];
                if noise_suppression {
                    denoiser.process(&mut tail);
                }
                w.write_packet(enc.encode(&tail)?, FRAME as u64)
                    .map_err(io_err(&path))?;
                w.finish(n).map_err(io_err(&path))?;
                Ok(Recording {
                    path,
                    samples: n,
                    reached_limit,
                })
            })
            .map_err(|e| MessageError::Audio(e.into()))?;
        Ok(Self {
            stop,
            samples,
            thread: Some(thread),
        })
    }

    /// Seconds recorded so far.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(
            self.samples.load(Ordering::Relaxed) as f64 / f64::from(SAMPLE_RATE),
        )
    }

    /// Whether the recording ended by itself (limit reached, input ended).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops (if still running) and finishes the file.
    pub fn stop(mut self) -> Result<Recording, MessageError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            _ => Err(MessageError::Audio(crate::error::AudioError::Thread(
                std::io::Error::other("the recording thread panicked"),
            ))),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Decodes a voice message file to 48 kHz mono samples.
pub fn read(path: &Path) -> Result<Vec<i16>, MessageError> {
    let f = File::open(path).map_err(io_err(path))?;
    ogg_opus::decode(BufReader::new(f))
        .map(|(pcm, _)| pcm)
        .map_err(|reason| MessageError::Format {
            path: path.to_owned(),
            reason,
        })
}

/// Offers a recorded message to the room as a file of kind `voice`;
/// returns the transfer's reference as `Client::send_file` does.
pub fn send(client: &Client, path: &Path) -> Result<u64, chatcore::ClientError> {
    client.send_file(path, FileKind::Voice)
}

/// A message being played.
pub struct Player {
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// The playing thread.
    thread: Option<thread::JoinHandle<()>>,
}

impl Player {
    /// Whether the whole message has been handed to the output.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until the message has played.
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops playing now.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Plays a voice message file to `output` on a thread.
pub fn play(path: &Path, output: Box<dyn AudioOutput>) -> Result<Player, MessageError> {
    let pcm = read(path)?;
    let playback = output.start()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = thread::Builder::new()
        .name("voice-play".into())
        .spawn(move || {
            // Own the whole playback (not just the fields used): its guard
            // must live as long as this thread, or the output stops at once.
            let playback = playback;
            let mut frames = pcm.chunks(FRAME);
            while !flag.load(Ordering::Relaxed) {
                match playback.demand.recv_timeout(Duration::from_millis(100)) {
                    Ok(()) => {}
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                let Some(chunk) = frames.next() else { return };
                let mut f = chunk.to_vec();
                f.resize(FRAME, 0);
                if playback.frames.send(f).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| MessageError::Audio(e.into()))?;
    Ok(Player {
        stop,
        thread: Some(thread),
    })
}

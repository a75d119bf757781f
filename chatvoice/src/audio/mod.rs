//! Audio input and output behind two small traits.
//!
//! Everything inside the engine is **48 kHz mono i16, in frames of 960
//! samples (20 ms)**: backends convert to that at their edge. A backend only
//! moves samples through channels; the engine's threads do the work.
//!
//! - An [`AudioInput`] starts into a [`Capture`]: a channel of frames.
//! - An [`AudioOutput`] starts into a [`Playback`]: the backend sends a
//!   *demand* token each time it is about to need a frame, and the engine
//!   answers with one frame. Demand-driven playback keeps the engine's
//!   playout clock on the device's clock and the output queue one frame deep.

pub mod acoustic;
pub mod cpal_backend;
pub mod devices;
pub mod silence;
pub mod wav;

use std::sync::mpsc::{Receiver, Sender};

use crate::error::AudioError;

/// The engine's sample rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at 48 kHz mono: the unit of capture, Opus
/// encoding, packets, jitter buffering and playback.
pub const FRAME: usize = 960;
/// One frame in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Something that must stay alive while a stream runs (a cpal stream, a
/// thread's stop flag); dropping it stops the stream.
pub type Guard = Box<dyn Send>;

/// A running capture: frames of [`FRAME`] samples, in order. The channel
/// closes when the input ends (end of a WAV file, device lost).
pub struct Capture {
    /// The frames.
    pub frames: Receiver<Vec<i16>>,
    /// Keeps the backend running; dropping the `Capture` stops it.
    pub guard: Guard,
}

/// A running playback. The backend sends `()` on `demand` when it will need
/// the next frame; the engine answers on `frames` with [`FRAME`] samples.
/// A frame that does not come in time is replaced by silence (an underrun).
pub struct Playback {
    /// One token per frame the device is about to play.
    pub demand: Receiver<()>,
    /// Where the engine puts the frames.
    pub frames: Sender<Vec<i16>>,
    /// Keeps the backend running; dropping it stops (and, for a WAV
    /// output, finishes the file).
    pub guard: Guard,
}

/// A source of 48 kHz mono audio (microphone, WAV file, silence).
pub trait AudioInput: Send {
    /// Opens the source and starts delivering frames.
    fn start(self: Box<Self>) -> Result<Capture, AudioError>;
}

/// A sink for 48 kHz mono audio (speakers, WAV file, nothing).
pub trait AudioOutput: Send {
    /// Opens the sink and starts asking for frames.
    fn start(self: Box<Self>) -> Result<Playback, AudioError>;
}

/// How a file or silence backend keeps time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// One frame every 20 ms divided by the factor: 1.0 behaves like a
    /// device; tests use a larger factor to run a call faster than real
    /// time (and pass the same factor in `CallOptions::time_scale`).
    Realtime(f64),
    /// As fast as the consumer takes frames (inputs only: a voice message
    /// recorded from a file).
    AsFastAsPossible,
}

impl Pacing {
    /// The wall-clock time of one frame, `None` when unpaced.
    pub fn frame_period(&self) -> Option<std::time::Duration> {
        match *self {
            Self::Realtime(scale) => Some(std::time::Duration::from_secs_f64(
                f64::from(FRAME_MS) / 1000.0 / scale.max(1e-3),
            )),
            Self::AsFastAsPossible => None,
        }
    }
}

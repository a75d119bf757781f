//! Real audio devices through cpal (ALSA on Linux, CoreAudio, WASAPI).
//!
//! The device runs at its own rate, channel count and sample format; the
//! callbacks only convert samples to f32 and move them through channels.
//! A converter thread per direction downmixes and resamples to the engine's
//! 48 kHz mono frames (capture) or back to the device format (playback).
//! Playback keeps about one frame queued ahead of the device and asks the
//! engine for a frame (a demand token) whenever the queue gets shorter.
//!
//! With no device (a headless machine, no sound server) opening fails with
//! [`AudioError::NoDevice`], whose message says what is missing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::silence::StopOnDrop;
use super::{AudioInput, AudioOutput, Capture, FRAME, Playback, SAMPLE_RATE};
use crate::error::{AudioError, Direction};
use crate::resample::{Resampler, downmix, to_f32, to_i16};

/// Keeps a cpal stream and its converter thread alive.
struct CpalGuard {
    /// The device stream; dropping it stops the callbacks.
    _stream: cpal::Stream,
    /// The converter thread.
    _thread: StopOnDrop,
}

/// The device named `name` (a substring of its description), or the
/// default one.
pub(crate) fn pick_device(
    direction: Direction,
    name: Option<&str>,
) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let no = |reason: String| AudioError::NoDevice { direction, reason };
    match name {
        None => match direction {
            Direction::Capture => host.default_input_device(),
            Direction::Playback => host.default_output_device(),
        }
        .ok_or_else(|| {
            no(format!(
                "the {} audio host has no default device",
                host.id().name()
            ))
        }),
        Some(want) => {
            let devices = host.devices().map_err(|e| no(e.to_string()))?;
            for d in devices {
                let fits = match direction {
                    Direction::Capture => d.supports_input(),
                    Direction::Playback => d.supports_output(),
                };
                if fits && d.description().is_ok_and(|desc| desc.name().contains(want)) {
                    return Ok(d);
                }
            }
            Err(no(format!("no device named like {want:?}")))
        }
    }
}

/// The device's preferred configuration.
pub(crate) fn default_config(
    device: &cpal::Device,
    direction: Direction,
) -> Result<cpal::SupportedStreamConfig, AudioError> {
    match direction {
        Direction::Capture => device.default_input_config(),
        Direction::Playback => device.default_output_config(),
    }
    .map_err(|e| AudioError::NoDevice {
        direction,
        reason: format!("the device could not be opened: {e}"),
    })
}

fn stream_error(direction: Direction) -> impl FnMut(cpal::Error) + Send + 'static {
    move |e| tracing::warn!("{direction} stream: {e}")
}

fn build_input<T>(
    device: &cpal::Device,
    config: StreamConfig,
    tx: SyncSender<Vec<f32>>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    device.build_input_stream(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            let v: Vec<f32> = data.iter().map(|s| s.to_sample::<f32>()).collect();
            // Full means the engine is stuck: dropping is better than blocking
            // the audio thread.
            let _ = tx.try_send(v);
        },
        stream_error(Direction::Capture),
        Some(Duration::from_secs(2)),
    )
}

fn build_output<T>(
    device: &cpal::Device,
    config: StreamConfig,
    rx: Receiver<Vec<f32>>,
    consumed: Arc<AtomicU64>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let channels = u64::from(config.channels.max(1));
    let mut pending: VecDeque<f32> = VecDeque::new();
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            while pending.len() < data.len() {
                match rx.try_recv() {
                    Ok(chunk) => pending.extend(chunk),
                    Err(_) => break,
                }
            }
            for out in data.iter_mut() {
                *out = T::from_sample(pending.pop_front().unwrap_or(0.0));
            }
            consumed.fetch_add(data.len() as u64 / channels, Ordering::Relaxed);
        },
        stream_error(Direction::Playback),
        Some(Duration::from_secs(2)),
    )
}

/// The device's default configuration with a 10 ms buffer when the device
/// allows one: some hosts (PulseAudio) otherwise default to buffers of a
/// second or more, which would be the call's latency.
fn low_latency(supported: &cpal::SupportedStreamConfig) -> StreamConfig {
    let mut config = supported.config();
    let want = supported.sample_rate() / 100;
    if let cpal::SupportedBufferSize::Range { min, max } = *supported.buffer_size()
        && min <= want
        && want <= max
    {
        config.buffer_size = cpal::BufferSize::Fixed(want);
    }
    config
}

fn unsupported(direction: Direction, e: impl std::fmt::Display) -> AudioError {
    AudioError::Unsupported {
        direction,
        reason: e.to_string(),
    }
}

/// The microphone.
#[derive(Debug, Clone, Default)]
pub struct CpalInput {
    /// A substring of the device's name; `None` for the system default.
    pub device: Option<String>,
}

impl AudioInput for CpalInput {
    fn start(self: Box<Self>) -> Result<Capture, AudioError> {
        let dir = Direction::Capture;
        let device = pick_device(dir, self.device.as_deref())?;
        let supported = default_config(&device, dir)?;
        let rate = supported.sample_rate();
        let channels = usize::from(supported.channels().max(1));
        let (raw_tx, raw_rx) = mpsc::sync_channel::<Vec<f32>>(256);
        let build = |config: StreamConfig| match supported.sample_format() {
            SampleFormat::F32 => build_input::<f32>(&device, config, raw_tx.clone()),
            SampleFormat::I16 => build_input::<i16>(&device, config, raw_tx.clone()),
            SampleFormat::I32 => build_input::<i32>(&device, config, raw_tx.clone()),
            SampleFormat::U16 => build_input::<u16>(&device, config, raw_tx.clone()),
            SampleFormat::U8 => build_input::<u8>(&device, config, raw_tx.clone()),
            other => Err(cpal::Error::with_message(
                cpal::ErrorKind::UnsupportedConfig,
                format!("sample format {other}"),
            )),
        };
        // A 10 ms buffer first; the device's default if it refuses that.
        let stream = build(low_latency(&supported))
            .or_else(|_| build(supported.config()))
            .map_err(|e| AudioError::NoDevice {
                direction: dir,
                reason: format!("the capture stream could not be opened: {e}"),
            })?;
        stream.play().map_err(|e| unsupported(dir, e))?;
        let (tx, rx) = mpsc::sync_channel::<Vec<i16>>(50);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t = thread::Builder::new()
            .name("cpal-in".into())
            .spawn(move || {
                let mut rs = Resampler::new(rate, SAMPLE_RATE);
                let mut acc: Vec<f32> = Vec::with_capacity(2 * FRAME);
                while !flag.load(Ordering::Relaxed) {
                    let Ok(raw) = raw_rx.recv_timeout(Duration::from_millis(100)) else {
                        continue;
                    };
                    rs.process(&downmix(&raw, channels), &mut acc);
                    while acc.len() >= FRAME {
                        let frame: Vec<i16> = acc.drain(..FRAME).map(to_i16).collect();
                        if let Err(mpsc::TrySendError::Disconnected(_)) = tx.try_send(frame) {
                            return;
                        }
                    }
                }
            })?;
        Ok(Capture {
            frames: rx,
            guard: Box::new(CpalGuard {
                _stream: stream,
                _thread: StopOnDrop(stop, Some(t)),
            }),
        })
    }
}

/// The speakers.
#[derive(Debug, Clone, Default)]
pub struct CpalOutput {
    /// A substring of the device's name; `None` for the system default.
    pub device: Option<String>,
}

impl AudioOutput for CpalOutput {
    fn start(self: Box<Self>) -> Result<Playback, AudioError> {
        let dir = Direction::Playback;
        let device = pick_device(dir, self.device.as_deref())?;
        let supported = default_config(&device, dir)?;
        let rate = supported.sample_rate();
        let channels = usize::from(supported.channels().max(1));
        let consumed = Arc::new(AtomicU64::new(0));
        let build = |config: StreamConfig| {
            // The receiver moves into the callback, so each attempt gets its
            // own channel.
            let (tx, rx) = mpsc::sync_channel::<Vec<f32>>(16);
            let c = consumed.clone();
            match supported.sample_format() {
                SampleFormat::F32 => build_output::<f32>(&device, config, rx, c),
                SampleFormat::I16 => build_output::<i16>(&device, config, rx, c),
                SampleFormat::I32 => build_output::<i32>(&device, config, rx, c),
                SampleFormat::U16 => build_output::<u16>(&device, config, rx, c),
                SampleFormat::U8 => build_output::<u8>(&device, config, rx, c),
                other => Err(cpal::Error::with_message(
                    cpal::ErrorKind::UnsupportedConfig,
                    format!("sample format {other}"),
                )),
            }
            .map(|stream| (stream, tx))
        };
        // A 10 ms buffer first; the device's default if it refuses that.
        let (stream, dev_tx) = build(low_latency(&supported))
            .or_else(|_| build(supported.config()))
            .map_err(|e| AudioError::NoDevice {
                direction: dir,
                reason: format!("the playback stream could not be opened: {e}"),
            })?;
        stream.play().map_err(|e| unsupported(dir, e))?;
        let (demand_tx, demand_rx) = mpsc::channel();
        let (frames_tx, frames_rx) = mpsc::channel::<Vec<i16>>();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t = thread::Builder::new()
            .name("cpal-out".into())
            .spawn(move || {
                let mut rs = Resampler::new(SAMPLE_RATE, rate);
                // Device frames handed to the callback so far.
                let mut produced = 0u64;
                // Ask for the next frame when less than 15 ms is queued
                // ahead of the device: 15–35 ms queued, enough for the 10 ms
                // device period and a late engine wake-up, little latency.
                let low_water = u64::from(rate) * 15 / 1000;
                while !flag.load(Ordering::Relaxed) {
                    let queued = produced.saturating_sub(consumed.load(Ordering::Relaxed));
                    if queued >= low_water {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    if demand_tx.send(()).is_err() {
                        return;
                    }
                    let Ok(frame) = frames_rx.recv_timeout(Duration::from_millis(30)) else {
                        // The engine is late: the callback plays silence meanwhile.
                        produced = consumed.load(Ordering::Relaxed);
                        continue;
                    };
                    let mono: Vec<f32> = frame.into_iter().map(to_f32).collect();
                    let mut resampled = Vec::with_capacity(mono.len() * 2);
                    rs.process(&mono, &mut resampled);
                    let n = resampled.len() as u64;
                    let interleaved: Vec<f32> = resampled
                        .into_iter()
                        .flat_map(|x| std::iter::repeat_n(x, channels))
                        .collect();
                    if dev_tx.send(interleaved).is_err() {
                        return;
                    }
                    produced += n;
                }
            })?;
        Ok(Playback {
            demand: demand_rx,
            frames: frames_tx,
            guard: Box::new(CpalGuard {
                _stream: stream,
                _thread: StopOnDrop(stop, Some(t)),
            }),
        })
    }
}

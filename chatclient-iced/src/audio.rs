//! The audio worker: the voice engine ([`chatvoice`]) on a thread of its
//! own, talking to the UI through channels only, like [`crate::net`].
//!
//! [`run`] is the body of an iced subscription
//! (`Subscription::run_with(devices, audio::run)`). Its first event is
//! [`Event::Ready`] with a [`Handle`] for [`Command`]s, then
//! [`Event::Probed`]: whether the chosen input and output work (the device
//! probe opens and closes a stream on each, which takes a moment, so it
//! runs here and never on the UI thread).
//!
//! The `audio-worker` thread owns everything that is not `Clone` and may
//! block: the running call ([`chatvoice::CallHandle`]; starting it opens
//! the devices and binds the voice path, up to a second or so), the voice
//! message being recorded ([`chatvoice::message::Recorder`]) and the one
//! being played ([`chatvoice::message::Player`]). Between commands it polls
//! them (every [`TICK`]) and forwards what the UI shows: who speaks, the
//! transport, errors, the recording's length, the end of a playback.
//!
//! When the UI drops the stream (the window closes), the worker stops the
//! call, the recording and the playback and ends.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, mpsc::RecvTimeoutError};
use std::thread;
use std::time::Duration;

use chatcore::protocol::voice::VoiceJoined;
use chatvoice::audio::cpal_backend::{CpalInput, CpalOutput};
use chatvoice::audio::silence::SilenceOutput;
use chatvoice::audio::wav::{WavInput, WavOutput, read_wav};
use chatvoice::audio::{AudioInput, AudioOutput, Pacing};
use chatvoice::audio::{devices, devices::Availability};
use chatvoice::message::{Player, Recorder};
use chatvoice::{CallEvent, CallHandle, CallOptions, TransportKind, VoiceMode};
use iced::futures::SinkExt;
use iced::futures::channel::mpsc;
use iced::futures::executor::block_on;

/// How often the worker looks at the call, the recording and the playback
/// when no command comes.
pub const TICK: Duration = Duration::from_millis(50);
/// Events buffered towards the UI (speaking changes are few per second).
const EVENT_QUEUE: usize = 256;
/// Silence between two plays of a looping `--audio-input` file, so the
/// speaking indicator visibly goes off and on again.
const LOOP_GAP: Duration = Duration::from_secs(1);

/// The UI's number for a voice message it asks the worker to play,
/// echoed in [`Event::Playing`], [`Event::PlayEnded`] and
/// [`Event::PlayFailed`] so the UI knows which Play button they concern.
/// The worker's own id type: the worker knows nothing of the UI's cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClipId(pub u64);

/// Where the microphone's sound comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum AudioIn {
    /// The system's default capture device (cpal).
    #[default]
    Device,
    /// A WAV file played in real time, over and over, as the microphone
    /// (`--audio-input FILE.wav`: demos and tests without a microphone).
    Wav(PathBuf),
}

/// Where call audio and voice messages are played.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum AudioOut {
    /// The system's default playback device (cpal).
    #[default]
    Device,
    /// A WAV file written when the call or playback stops (each one
    /// overwrites it), paced in real time like a device.
    Wav(PathBuf),
    /// Paced in real time and thrown away (`--audio-output null`).
    Null,
}

impl AudioOut {
    /// `null` or a file name, as `--audio-output` takes it.
    pub fn parse(s: &str) -> Self {
        if s == "null" {
            Self::Null
        } else {
            Self::Wav(PathBuf::from(s))
        }
    }
}

/// The audio the command line chose. Hashed by iced to identify the
/// worker's subscription (it runs for the whole life of the window).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Devices {
    /// The microphone (or a file standing in for it).
    pub input: AudioIn,
    /// The speakers (or a file, or nothing).
    pub output: AudioOut,
}

/// Something the UI asks the audio worker to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start the call the server let us into (`voice_joined`); `server` is
    /// the chat server's `host:port` (the voice port is on the same host).
    StartCall {
        /// What the voice path needs (session, token, port).
        joined: VoiceJoined,
        /// The chat server's address as typed at login.
        server: String,
    },
    /// The call has a new key (`voice_key`: a member joined or left): seal
    /// with it from now on.
    CallKey {
        /// The new epoch.
        epoch: u32,
        /// Its 32-byte key.
        key: Vec<u8>,
    },
    /// End the call (devices close, threads end).
    StopCall,
    /// Mute or unmute the microphone in the call.
    Mute(bool),
    /// Push-to-talk on (send only while [`Command::Talk`] holds) or off
    /// (send while the voice activity detector hears speech).
    PushToTalk(bool),
    /// The push-to-talk button is held (`true`) or let go.
    Talk(bool),
    /// Noise suppression on or off, for the running call and the next ones.
    NoiseSuppression(bool),
    /// Echo cancellation on or off, for the running call and the next ones.
    EchoCancellation(bool),
    /// Start recording a voice message.
    Record,
    /// Stop recording and finish the file ([`Event::Recorded`] follows).
    StopRecording,
    /// Throw the recording away (running or finished), deleting its file.
    Discard,
    /// Play a voice message file; `clip` names it in the events that follow.
    Play {
        /// The UI's number for this playback.
        clip: ClipId,
        /// The Ogg Opus file.
        path: PathBuf,
    },
    /// Stop the playback.
    StopPlaying,
}

/// What the audio worker tells the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The worker runs; send commands through this handle.
    Ready(Handle),
    /// Whether audio works: `Err` says why not, in words.
    Probed(Result<(), String>),
    /// The call's voice path is up over this transport.
    CallStarted(TransportKind),
    /// The call could not start (no device, voice port unreachable...).
    CallFailed(String),
    /// Something the running call reported (speaking, input ended, error).
    Call(CallEvent),
    /// Recording: this much so far.
    Recording(Duration),
    /// The recording is finished: the Ogg Opus file and its length.
    Recorded {
        /// The file, ready to send.
        path: PathBuf,
        /// Its length.
        duration: Duration,
        /// Whether it stopped by itself at the maximum length.
        reached_limit: bool,
    },
    /// Recording failed (no microphone, disk full...).
    RecordFailed(String),
    /// This clip is playing.
    Playing(ClipId),
    /// It played to the end or was stopped.
    PlayEnded(ClipId),
    /// It could not be played.
    PlayFailed(ClipId, String),
}

/// The UI's end of the command channel. Sending never blocks.
#[derive(Debug, Clone)]
pub struct Handle(std_mpsc::Sender<Command>);

impl PartialEq for Handle {
    fn eq(&self, _: &Self) -> bool {
        // Handles carry no data worth comparing; events compare by kind.
        true
    }
}

impl Handle {
    /// Queues a command; `false` if the worker is gone.
    pub fn send(&self, command: Command) -> bool {
        self.0.send(command).is_ok()
    }

    /// A handle whose commands go to `tx`, for tests of the UI logic.
    pub fn from_sender(tx: std_mpsc::Sender<Command>) -> Self {
        Self(tx)
    }
}

/// Starts the audio worker for `devices` and returns its events. The body
/// of the audio subscription.
pub fn run(devices: &Devices) -> mpsc::Receiver<Event> {
    let (mut tx, rx) = mpsc::channel(EVENT_QUEUE);
    let (cmd_tx, cmd_rx) = std_mpsc::channel();
    // The channel is new and empty: this cannot fail for lack of room.
    let _ = tx.try_send(Event::Ready(Handle(cmd_tx)));
    let devices = devices.clone();
    let worker = {
        let tx = tx.clone();
        thread::Builder::new()
            .name("audio-worker".into())
            .spawn(move || Worker::new(devices, tx).run(cmd_rx))
    };
    if let Err(e) = worker {
        let _ = tx.try_send(Event::Probed(Err(format!(
            "Cannot start the audio thread: {e}"
        ))));
    }
    rx
}

/// Whether the chosen input and output work; `Err` in words. Reads an
/// `--audio-input` file (returned for reuse) and probes the devices only
/// where devices are used. Blocking: call it off the UI thread.
pub fn probe(devices: &Devices) -> Result<Option<Arc<Vec<i16>>>, String> {
    let samples = match &devices.input {
        AudioIn::Wav(path) => {
            Some(Arc::new(read_wav(path).map_err(|e| {
                format!("Cannot read the --audio-input file: {e}")
            })?))
        }
        AudioIn::Device => None,
    };
    let wants_devices = devices.input == AudioIn::Device || devices.output == AudioOut::Device;
    if wants_devices {
        let p = devices::probe();
        let why = |a: &Availability| match a {
            Availability::Available { .. } => None,
            Availability::Unavailable { reason } => Some(reason.clone()),
        };
        if devices.input == AudioIn::Device
            && let Some(reason) = why(&p.capture)
        {
            return Err(sentence(&reason));
        }
        if devices.output == AudioOut::Device
            && let Some(reason) = why(&p.playback)
        {
            return Err(sentence(&reason));
        }
    }
    Ok(samples)
}

/// `reason` as a sentence: capital first letter, final full stop.
fn sentence(reason: &str) -> String {
    let mut chars = reason.trim().chars();
    let mut s: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// What of a call's event the window shows: everything but the figures
/// (for logs and benches). `Transport` goes through: the engine switches
/// to TCP when UDP stops getting through mid-call and back when it works
/// again, and the panel names the path in use.
fn for_the_window(event: CallEvent) -> Option<Event> {
    match event {
        CallEvent::Stats(_) => None,
        ev => Some(Event::Call(ev)),
    }
}

/// The worker's state: what runs now.
struct Worker {
    /// The audio the command line chose.
    devices: Devices,
    /// The `--audio-input` file's samples, read once by the probe.
    samples: Option<Arc<Vec<i16>>>,
    /// Events to the UI.
    tx: mpsc::Sender<Event>,
    /// The running call (not `Clone`, blocks when stopped: it lives here).
    call: Option<CallHandle>,
    /// The recording in progress and its file.
    recorder: Option<(Recorder, PathBuf)>,
    /// The last length sent to the UI, to send only changes.
    reported: Duration,
    /// The last finished recording, deleted on Discard.
    recorded: Option<PathBuf>,
    /// The playback in progress and its clip.
    player: Option<(ClipId, Player)>,
    /// Push-to-talk chosen; kept here so a call started later uses it.
    push_to_talk: bool,
    /// The push-to-talk button is held.
    talking: bool,
    /// Noise suppression chosen; a call started later starts with it.
    noise_suppression: bool,
    /// Echo cancellation chosen; a call started later starts with it.
    echo_cancellation: bool,
}

impl Worker {
    fn new(devices: Devices, tx: mpsc::Sender<Event>) -> Self {
        Self {
            devices,
            samples: None,
            tx,
            call: None,
            recorder: None,
            reported: Duration::ZERO,
            recorded: None,
            player: None,
            push_to_talk: false,
            talking: false,
            noise_suppression: CallOptions::default().noise_suppression,
            echo_cancellation: CallOptions::default().echo_cancellation,
        }
    }

    /// Applies the chosen way to transmit to the running call, if any.
    fn apply_mode(&self) {
        if let Some(call) = &self.call {
            call.set_mode(if self.push_to_talk {
                VoiceMode::PushToTalk
            } else {
                VoiceMode::Vad
            });
            call.set_ptt(self.talking);
        }
    }

    /// The options a call starts with: the engine's defaults with the
    /// user's switches.
    fn options(&self) -> CallOptions {
        CallOptions {
            noise_suppression: self.noise_suppression,
            echo_cancellation: self.echo_cancellation,
            ..CallOptions::default()
        }
    }

    /// Sends an event, waiting for room; `false` once the UI is gone.
    fn emit(&mut self, event: Event) -> bool {
        block_on(self.tx.send(event)).is_ok()
    }

    fn run(mut self, commands: std_mpsc::Receiver<Command>) {
        let probed = probe(&self.devices).map(|samples| self.samples = samples);
        if !self.emit(Event::Probed(probed)) {
            return;
        }
        loop {
            match commands.recv_timeout(TICK) {
                Ok(c) => {
                    if !self.command(c) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.tx.is_closed() || !self.poll() {
                break;
            }
        }
        // Stop in order: the call (its WAV output writes its file), then
        // the recording and the playback.
        drop(self.call.take());
        drop(self.recorder.take());
        drop(self.player.take());
    }

    fn input(&self) -> Box<dyn AudioInput> {
        match &self.samples {
            // `--audio-input FILE.wav`: the file as a microphone, in real
            // time, over and over (a real microphone does not end either).
            Some(samples) => Box::new(
                WavInput::from_samples(samples.clone(), Pacing::Realtime(1.0)).repeating(LOOP_GAP),
            ),
            None => Box::new(CpalInput::default()),
        }
    }

    fn output(&self) -> Box<dyn AudioOutput> {
        match &self.devices.output {
            AudioOut::Device => Box::new(CpalOutput::default()),
            AudioOut::Wav(path) => {
                Box::new(WavOutput::new(Some(path.clone()), Pacing::Realtime(1.0)))
            }
            AudioOut::Null => Box::new(SilenceOutput::realtime()),
        }
    }

    /// Carries out one command; `false` once the UI is gone.
    fn command(&mut self, command: Command) -> bool {
        match command {
            Command::StartCall { joined, server } => {
                drop(self.call.take());
                let started = server_ip(&server).and_then(|ip| {
                    chatvoice::Call::start(&joined, ip, self.input(), self.output(), self.options())
                        .map_err(|e| e.to_string())
                });
                match started {
                    Ok(call) => {
                        let kind = call.stats().transport;
                        self.call = Some(call);
                        self.apply_mode();
                        self.emit(Event::CallStarted(kind))
                    }
                    Err(e) => self.emit(Event::CallFailed(e)),
                }
            }
            Command::CallKey { epoch, key } => {
                if let Some(call) = &self.call
                    && let Err(e) = call.set_key(epoch, &key)
                {
                    return self.emit(Event::CallFailed(e.to_string()));
                }
                true
            }
            Command::StopCall => {
                if let Some(call) = self.call.take() {
                    let _ = call.stop();
                }
                true
            }
            Command::Mute(muted) => {
                if let Some(call) = &self.call {
                    call.set_muted(muted);
                }
                true
            }
            Command::PushToTalk(on) => {
                self.push_to_talk = on;
                self.talking = false;
                self.apply_mode();
                true
            }
            Command::Talk(held) => {
                self.talking = held;
                self.apply_mode();
                true
            }
            Command::NoiseSuppression(on) => {
                self.noise_suppression = on;
                if let Some(call) = &self.call {
                    call.set_noise_suppression(on);
                }
                true
            }
            Command::EchoCancellation(on) => {
                self.echo_cancellation = on;
                if let Some(call) = &self.call {
                    call.set_echo_cancellation(on);
                }
                true
            }
            Command::Record => {
                drop(self.recorder.take());
                // The previous recording was sent (its upload may still be
                // reading it) or discarded: never delete it from here on.
                self.recorded = None;
                let path = match recording_path() {
                    Ok(p) => p,
                    Err(e) => return self.emit(Event::RecordFailed(e)),
                };
                let max = Duration::from_secs(u64::from(chatvoice::message::MAX_MESSAGE_SECS));
                match Recorder::start(self.input(), &path, max) {
                    Ok(r) => {
                        self.recorder = Some((r, path));
                        self.reported = Duration::ZERO;
                        self.emit(Event::Recording(Duration::ZERO))
                    }
                    Err(e) => self.emit(Event::RecordFailed(e.to_string())),
                }
            }
            Command::StopRecording => self.finish_recording(),
            Command::Discard => {
                if let Some((r, path)) = self.recorder.take() {
                    drop(r);
                    let _ = std::fs::remove_file(path);
                }
                if let Some(path) = self.recorded.take() {
                    let _ = std::fs::remove_file(path);
                }
                true
            }
            Command::Play { clip, path } => {
                if let Some((old, p)) = self.player.take() {
                    p.stop();
                    if !self.emit(Event::PlayEnded(old)) {
                        return false;
                    }
                }
                match chatvoice::message::play(&path, self.output()) {
                    Ok(p) => {
                        self.player = Some((clip, p));
                        self.emit(Event::Playing(clip))
                    }
                    Err(e) => self.emit(Event::PlayFailed(clip, e.to_string())),
                }
            }
            Command::StopPlaying => match self.player.take() {
                Some((clip, p)) => {
                    p.stop();
                    self.emit(Event::PlayEnded(clip))
                }
                None => true,
            },
        }
    }

    fn finish_recording(&mut self) -> bool {
        let Some((r, _)) = self.recorder.take() else {
            return true;
        };
        match r.stop() {
            Ok(rec) => {
                let duration = rec.duration();
                self.recorded = Some(rec.path.clone());
                self.emit(Event::Recorded {
                    path: rec.path,
                    duration,
                    reached_limit: rec.reached_limit,
                })
            }
            Err(e) => self.emit(Event::RecordFailed(e.to_string())),
        }
    }

    /// Forwards what changed; `false` once the UI is gone.
    fn poll(&mut self) -> bool {
        let mut events = Vec::new();
        if let Some(call) = &self.call {
            while let Ok(ev) = call.events().try_recv() {
                events.extend(for_the_window(ev));
            }
        }
        let mut finished = false;
        if let Some((r, _)) = &self.recorder {
            let elapsed = r.elapsed();
            if elapsed >= self.reported + Duration::from_millis(200) {
                self.reported = elapsed;
                events.push(Event::Recording(elapsed));
            }
            finished = r.is_finished();
        }
        if let Some((clip, p)) = &self.player
            && p.is_finished()
        {
            events.push(Event::PlayEnded(*clip));
            self.player = None;
        }
        for ev in events {
            if !self.emit(ev) {
                return false;
            }
        }
        // The maximum length reached, or the input ended: finish the file.
        if finished {
            return self.finish_recording();
        }
        true
    }
}

/// The chat server's IP from `host:port` (resolved here, off the UI thread).
fn server_ip(server: &str) -> Result<IpAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("Cannot resolve {server}: {e}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("Cannot resolve {server}"))
}

/// Where this process keeps its voice recordings: a directory of its own in
/// the system's temporary directory, removed when the client exits.
pub fn recordings_dir() -> PathBuf {
    std::env::temp_dir().join(format!("chatclient-voice-{}", std::process::id()))
}

/// A fresh file for a recording: `voice-YYYYMMDD-HHMMSS.ogg` in
/// [`recordings_dir`].
fn recording_path() -> Result<PathBuf, String> {
    let dir = recordings_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("Cannot create {}: {e}", dir.display()))?;
    let stamp = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S").to_string();
    let mut path = dir.join(format!("voice-{stamp}.ogg"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("voice-{stamp}-{n}.ogg"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_reason_reads_as_a_sentence() {
        assert_eq!(
            sentence("no capture (microphone) device available: gone"),
            "No capture (microphone) device available: gone."
        );
    }

    #[test]
    fn transport_switches_reach_the_window() {
        for kind in [TransportKind::Tcp, TransportKind::Udp] {
            assert_eq!(
                for_the_window(CallEvent::Transport(kind)),
                Some(Event::Call(CallEvent::Transport(kind)))
            );
        }
        assert_eq!(
            for_the_window(CallEvent::InputEnded),
            Some(Event::Call(CallEvent::InputEnded))
        );
    }

    #[test]
    fn audio_output_flag_takes_null_or_a_file() {
        assert_eq!(AudioOut::parse("null"), AudioOut::Null);
        assert_eq!(
            AudioOut::parse("out.wav"),
            AudioOut::Wav(PathBuf::from("out.wav"))
        );
    }

    #[test]
    fn a_missing_input_file_is_explained_in_words() {
        let devices = Devices {
            input: AudioIn::Wav(PathBuf::from("/nonexistent/speech.wav")),
            output: AudioOut::Null,
        };
        let err = probe(&devices).expect_err("a missing file fails");
        assert!(
            err.starts_with("Cannot read the --audio-input file"),
            "{err}"
        );
    }
}

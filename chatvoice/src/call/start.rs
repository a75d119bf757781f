//! [`Call`], the entry point: [`Call::start`] opens the input and output,
//! binds the voice path, and wires the capture and playback threads to
//! shared controls, figures and an event channel, returning the
//! [`CallHandle`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use chatcore::protocol::voice::VoiceJoined;

use super::adapt::{AdaptFigures, Adapter};
use super::capture::Capturing;
use super::controls::{Controls, mode_to_u8};
use super::events::CallEvent;
use super::handle::CallHandle;
use super::options::CallOptions;
use super::playback::Playing;
use super::rebind::{LinkTotals, Rebind};
use super::stats::CallStats;
use crate::audio::{AudioInput, AudioOutput};
use crate::codec::{Encoder, EncoderConfig};
use crate::error::CallError;
use crate::transport::{CallKeys, VoiceLink};
use crate::vad::Gate;

/// `config` with its bitrate capped at the call's maximum
/// (`joined.max_bitrate`, docs/protocol.md §16.4) when the server announces
/// one: above it the server would drop the excess. A server without the
/// field leaves the configured bitrate as it is.
pub(crate) fn capped_encoder(mut config: EncoderConfig, joined: &VoiceJoined) -> EncoderConfig {
    if let Some(max) = joined.max_bitrate {
        config.bitrate = config.bitrate.min(i32::try_from(max).unwrap_or(i32::MAX));
    }
    config
}

/// The entry point.
pub struct Call;

impl Call {
    /// Starts a call with what `voice_joined` said. `server_ip` is the chat
    /// server's address (the voice port is on the same IP). Opens the input
    /// and output first (so a missing device is [`CallError::Audio`] at
    /// once; a machine without a microphone can still listen with a
    /// [`SilenceInput`](crate::audio::silence::SilenceInput)), then binds
    /// the voice path, which blocks up to ~1 s more when UDP is blocked and
    /// TCP is tried: call it off the UI thread.
    pub fn start(
        joined: &VoiceJoined,
        server_ip: IpAddr,
        input: Box<dyn AudioInput>,
        output: Box<dyn AudioOutput>,
        options: CallOptions,
    ) -> Result<CallHandle, CallError> {
        // Devices first: a missing microphone is reported at once, before
        // any time is spent binding the voice path.
        let capture = input.start()?;
        let playback = output.start()?;
        // The server's maximum caps the encoder, and so the adaptation's ceiling.
        let encoder_config = capped_encoder(options.encoder, joined);
        let encoder = Encoder::new(encoder_config)?;
        let server = SocketAddr::new(server_ip, joined.port);
        let keys = Arc::new(CallKeys::from_joined(joined)?);
        let link = VoiceLink::connect(
            server,
            joined.session,
            &joined.token,
            joined.keepalive_ms,
            keys.clone(),
            &options.link,
        )?;
        let controls = Arc::new(Controls::default());
        controls.muted.store(options.muted, Ordering::Relaxed);
        controls
            .noise_suppression
            .store(options.noise_suppression, Ordering::Relaxed);
        controls
            .echo_cancellation
            .store(options.echo_cancellation, Ordering::Relaxed);
        controls
            .mode
            .store(mode_to_u8(options.mode), Ordering::Relaxed);
        let (events_tx, events) = mpsc::channel();
        let kind = link.kind();
        let _ = events_tx.send(CallEvent::Transport(kind));
        let stats = Arc::new(Mutex::new(CallStats {
            transport: kind,
            frames_captured: 0,
            packets_sent: 0,
            frames_suppressed: 0,
            packets_received: 0,
            injected_losses: 0,
            probes_sent: 0,
            packets_forged: 0,
            packets_replayed: 0,
            packets_unknown_epoch: 0,
            rtt_us: None,
            path_loss: None,
            encoder_bitrate: encoder_config.bitrate,
            encoder_loss_pct: encoder_config.expected_loss_pct,
            path_switches: 0,
            frames_played: 0,
            speakers: Vec::new(),
        }));
        // The capture thread sends through whichever link is current: the
        // playback thread replaces it when the voice path has to be bound
        // again.
        let sender = Arc::new(Mutex::new(link.sender()));
        let rebind = Rebind {
            server,
            session: joined.session,
            token: joined.token.clone(),
            keepalive_ms: joined.keepalive_ms,
            keys: keys.clone(),
            give_up_after: Duration::from_millis(u64::from(joined.timeout_ms.max(1000))),
            options: options.link.clone(),
        };
        // Played frames go to the echo canceller on the capture thread.
        let (render_tap, render) = crate::echo::reference();
        let adapt = AdaptFigures::new(encoder_config);
        let cap = Capturing {
            adapt: Adapter::new(encoder_config, adapt.clone()),
            session: joined.session,
            capture,
            encoder,
            gate: Gate::new(options.vad),
            sender: sender.clone(),
            controls: controls.clone(),
            events: events_tx.clone(),
            echo: crate::echo::EchoCanceller::new(),
            render,
        };
        let capture_thread = thread::Builder::new()
            .name("call-capture".into())
            .spawn(move || cap.run())
            .map_err(CallError::Thread)?;
        let play = Playing {
            session: joined.session,
            playback,
            link,
            sender,
            rebind,
            rebinding: None,
            last_udp_try: std::time::Instant::now(),
            last_failover_try: std::time::Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or_else(std::time::Instant::now),
            base: LinkTotals::default(),
            speakers: BTreeMap::new(),
            controls: controls.clone(),
            events: events_tx,
            stats: stats.clone(),
            jitter: options.jitter,
            time_scale: options.time_scale,
            stats_every: options.stats_every,
            rtt_us: None,
            frames_played: 0,
            render_tap,
            adapt,
            path_switches: 0,
        };
        let playback_thread = thread::Builder::new()
            .name("call-playback".into())
            .spawn(move || play.run());
        let playback_thread = match playback_thread {
            Ok(t) => t,
            Err(e) => {
                controls.stop.store(true, Ordering::Relaxed);
                let _ = capture_thread.join();
                return Err(CallError::Thread(e));
            }
        };
        Ok(CallHandle {
            session: joined.session,
            keys,
            controls,
            events,
            stats,
            threads: vec![capture_thread, playback_thread],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(max_bitrate: Option<u32>) -> VoiceJoined {
        VoiceJoined {
            session: 1,
            token: vec![0; 16],
            epoch: 1,
            key: vec![0; 32],
            port: 9,
            keepalive_ms: 2000,
            timeout_ms: 10_000,
            room: None,
            max_bitrate,
        }
    }

    #[test]
    fn the_encoder_bitrate_is_capped_at_the_calls_maximum_only_when_announced() {
        let cfg = EncoderConfig {
            bitrate: 32_000,
            ..EncoderConfig::default()
        };
        assert_eq!(capped_encoder(cfg, &joined(Some(24_000))).bitrate, 24_000);
        assert_eq!(capped_encoder(cfg, &joined(Some(64_000))).bitrate, 32_000);
        assert_eq!(capped_encoder(cfg, &joined(None)).bitrate, 32_000);
        assert_eq!(capped_encoder(cfg, &joined(Some(u32::MAX))).bitrate, 32_000);
    }
}

//! UDP that stops working mid-call, with the real server: the speaker's
//! link black-holes UDP in both directions from a chosen moment (the
//! `LinkOptions::udp_blackhole` test hook). The call notices the missing
//! probe acks, binds the same session over TCP by itself and goes on; while
//! on TCP it keeps trying UDP and switches back once UDP works again. The
//! listener is a bare `VoiceLink` that notes when each audio packet
//! arrives: the longest gap around each switch is printed (the figures in
//! docs/benchmarks.md, "UDP fail-over and back").
//!
//! Also: under injected loss of probe acks, the speaker's encoder steps its
//! bitrate down and raises its FEC planning loss.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatvoice::audio::Pacing;
use chatvoice::audio::silence::SilenceInput;
use chatvoice::audio::wav::WavOutput;
use chatvoice::transport::{Blackhole, CallKeys, Incoming, TransportKind, VoiceLink};
use chatvoice::{Call, CallEvent, CallHandle, CallOptions, LinkOptions, VoiceMode};
use common::{PATIENCE, catch_up, join, serial, server, wait_until};

/// A speaker that sends every frame (always on), silence encoded by Opus:
/// only the packets' arrival matters here.
fn speaker(j: &chatcore::protocol::voice::VoiceJoined, link: LinkOptions) -> CallHandle {
    Call::start(
        j,
        "127.0.0.1".parse().expect("ip"),
        Box::new(SilenceInput {
            pacing: Pacing::Realtime(1.0),
        }),
        Box::new(WavOutput::new(None, Pacing::Realtime(1.0))),
        CallOptions {
            mode: VoiceMode::AlwaysOn,
            link,
            ..CallOptions::default()
        },
    )
    .expect("speaker starts")
}

/// Waits for the speaker's `Transport(kind)` event; when it came.
fn switched_to(call: &CallHandle, kind: TransportKind, arrivals: &mut Arrivals) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        arrivals.collect(Duration::from_millis(5));
        if let Ok(CallEvent::Transport(k)) = call.events().try_recv()
            && k == kind
        {
            return Instant::now();
        }
    }
    panic!("never switched to {kind:?}");
}

/// The listener's audio arrivals.
struct Arrivals {
    link: VoiceLink,
    at: Vec<Instant>,
}

impl Arrivals {
    /// Notes the audio that arrives within `d`.
    fn collect(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while let Ok(m) = self
            .link
            .incoming()
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if matches!(m, Incoming::Audio { .. }) {
                self.at.push(Instant::now());
            }
        }
    }

    /// The longest interval between two arrivals from `from` on (or from
    /// `from` to the first arrival), ms.
    fn longest_gap_ms(&self, from: Instant, to: Instant) -> f64 {
        let mut prev = from;
        let mut worst = Duration::ZERO;
        for &t in self.at.iter().filter(|&&t| t > from && t <= to) {
            worst = worst.max(t - prev);
            prev = t;
        }
        worst.as_secs_f64() * 1000.0
    }

    fn count_between(&self, from: Instant, to: Instant) -> usize {
        self.at.iter().filter(|&&t| t > from && t <= to).count()
    }
}

#[test]
fn udp_dropped_mid_call_fails_over_to_tcp_and_comes_back_when_udp_works_again() {
    let _g = serial();
    let s = server();
    let (ca, mut ja) = join(&s, "speaker");
    let (_cb, jb) = join(&s, "listener");
    catch_up(&ca, &mut ja, 1);
    let voice = SocketAddr::from((s.local_addr().ip(), jb.port));
    let keys = Arc::new(CallKeys::from_joined(&jb).expect("key"));
    let listener = VoiceLink::connect(
        voice,
        jb.session,
        &jb.token,
        jb.keepalive_ms,
        keys,
        &LinkOptions::default(),
    )
    .expect("listener binds");
    let mut arrivals = Arrivals {
        link: listener,
        at: Vec::new(),
    };
    let hole = Blackhole::default();
    let call = speaker(
        &ja,
        LinkOptions {
            udp_blackhole: Some(hole.clone()),
            ..LinkOptions::default()
        },
    );
    switched_to(&call, TransportKind::Udp, &mut arrivals);
    // A steady stream first.
    wait_until("audio flows", || {
        arrivals.collect(Duration::from_millis(20));
        arrivals.at.len() >= 50
    });

    // UDP stops working, both ways.
    let dropped = Instant::now();
    hole.set(true);
    let on_tcp = switched_to(&call, TransportKind::Tcp, &mut arrivals);
    // 1.1 s on TCP: the first UDP attempt (at once, 1 s long) has just
    // failed, so UDP heals at about the worst moment: the next attempt is
    // about 0.9 s away.
    arrivals.collect(Duration::from_millis(1100));
    assert!(
        arrivals.count_between(on_tcp, Instant::now()) >= 25,
        "audio flows over TCP"
    );
    assert_eq!(call.stats().transport, TransportKind::Tcp);

    // UDP works again: the background attempts bind it and switch back.
    let healed = Instant::now();
    hole.set(false);
    let on_udp = switched_to(&call, TransportKind::Udp, &mut arrivals);
    arrivals.collect(Duration::from_secs(2));
    let end = Instant::now();
    assert!(
        arrivals.count_between(on_udp, end) >= 50,
        "audio flows over UDP again"
    );
    let st = call.stop();
    assert_eq!(st.transport, TransportKind::Udp);
    // Two switches (a stall of the machine could add a fail-over more).
    assert!(st.path_switches >= 2, "{st:?}");

    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
    println!(
        "fail-over: UDP dropped -> on TCP after {:.0} ms; longest gap in received audio {:.0} ms",
        ms(dropped, on_tcp),
        arrivals.longest_gap_ms(dropped, healed)
    );
    println!(
        "back: UDP healed -> on UDP after {:.0} ms; longest gap in received audio {:.0} ms",
        ms(healed, on_udp),
        arrivals.longest_gap_ms(healed, end)
    );
    println!(
        "speaker: {} probes sent, {} packets sent; listener received {} audio packets",
        st.probes_sent,
        st.packets_sent,
        arrivals.at.len()
    );
}

#[test]
fn lost_probe_acks_step_the_encoder_bitrate_down_and_raise_its_fec() {
    let _g = serial();
    let s = server();
    let (_ca, ja) = join(&s, "lossy");
    let call = speaker(
        &ja,
        LinkOptions {
            probe_ack_loss: 0.3,
            loss_seed: 11,
            ..LinkOptions::default()
        },
    );
    let configured = CallOptions::default().encoder;
    wait_until("the encoder adapts to the loss", || {
        let st = call.stats();
        st.encoder_bitrate < configured.bitrate
            && st.encoder_loss_pct > configured.expected_loss_pct
    });
    let st = call.stop();
    println!(
        "probe loss {:?}: encoder {} bit/s (configured {}), FEC planned for {} % (configured {})",
        st.path_loss,
        st.encoder_bitrate,
        configured.bitrate,
        st.encoder_loss_pct,
        configured.expected_loss_pct
    );
    // The estimate that drove it (a 20-probe window: it wanders around
    // the injected 30 %).
    let loss = st.path_loss.expect("a loss estimate");
    assert!(loss > 0.0 && loss < 1.0, "{loss}");
    assert!(st.encoder_bitrate >= chatvoice::call::adapt::MIN_BITRATE);
}

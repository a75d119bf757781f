//! Real audio devices: on a machine without sound hardware or sound server
//! (CI), opening them must fail with a clear message, never crash.

use std::net::Ipv4Addr;

use chatcore::protocol::voice::VoiceJoined;
use chatvoice::audio::cpal_backend::{CpalInput, CpalOutput};
use chatvoice::audio::devices::{Availability, probe};
use chatvoice::audio::{AudioInput, AudioOutput};
use chatvoice::error::{AudioError, CallError};

fn explain(r: Result<(), AudioError>) -> String {
    match r {
        Ok(()) => "opened".to_owned(),
        Err(e @ (AudioError::NoDevice { .. } | AudioError::Unsupported { .. })) => {
            let msg = e.to_string();
            assert!(msg.len() > 20, "a sentence, not a code: {msg}");
            msg
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

#[test]
fn real_devices_open_or_fail_with_a_clear_reason() {
    let p = probe();
    eprintln!("probe: {p:?}");
    for a in [&p.capture, &p.playback] {
        if let Availability::Unavailable { reason } = a {
            assert!(!reason.is_empty());
        }
    }
    let input = explain(Box::new(CpalInput::default()).start().map(drop));
    let output = explain(Box::new(CpalOutput::default()).start().map(drop));
    eprintln!("capture: {input}\nplayback: {output}");
    assert!(
        explain(
            Box::new(CpalInput {
                device: Some("no such device name".into())
            })
            .start()
            .map(drop)
        )
        .contains("no device named like")
    );
}

#[test]
fn a_call_without_devices_is_a_device_error_not_a_crash() {
    let joined = VoiceJoined {
        room: None,
        max_bitrate: None,
        session: 1,
        token: vec![0; 16],
        epoch: 1,
        key: vec![0; 32],
        port: 9,
        keepalive_ms: 2000,
        timeout_ms: 10_000,
    };
    let opts = chatvoice::CallOptions {
        link: chatvoice::LinkOptions {
            udp_bind_timeout: std::time::Duration::from_millis(100),
            ..Default::default()
        },
        ..Default::default()
    };
    let no_mic = !probe().capture.is_available();
    let r = chatvoice::Call::start(
        &joined,
        Ipv4Addr::LOCALHOST.into(),
        Box::new(CpalInput::default()),
        Box::new(CpalOutput::default()),
        opts,
    );
    // Nothing listens on port 9, so this fails either way; without a
    // microphone it must fail on the device, with the device's reason.
    let err = r.err().expect("no call without a server");
    eprintln!("{err}");
    if no_mic {
        assert!(
            matches!(err, CallError::Audio(AudioError::NoDevice { .. })),
            "{err}"
        );
    }
}

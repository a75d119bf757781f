//! The attacks of `chatattack`, numbered as the items of the hardening
//! issue. Each is bounded in count and time, stays on loopback, and returns
//! its own figures as JSON; the runner adds the probe's and the server's.
//!
//! This file holds what every scenario shares: the [`SCENARIOS`] table,
//! [`run`] and [`after_stop`], the [`Scale`] knobs and the frame builders.
//! The scenarios themselves live by area: `files` (items 1-4: offers,
//! quota, spool, uploads), `connections` (items 5-7 and 10: sockets,
//! frames, slow readers, log volume) and `voice` (items 8-9).

mod connections;
mod files;
mod voice;

use std::time::Duration;

use anyhow::{Result, bail};
use chatcore::protocol::transfer::{FileChunk, FileKind, FileOffer};
use chatcore::protocol::{ClientMessage, Hello, encode_client};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Sampler, Target, spool_files};
use connections::{error_flood, log_volume, partial_frames, silent_sockets};
use files::{idle_uploads, offer_flood, quota_squat, spool_leak};
use voice::{voice_spoof, voice_tcp_squat};

/// Every scenario by name, with the issue item it replays.
pub const SCENARIOS: [(&str, &str); 10] = [
    (
        "offer-flood",
        "1: offers that outlive their sender lock out logins",
    ),
    (
        "quota-squat",
        "2: declared-but-empty offers reserve the spool quota",
    ),
    (
        "spool-leak",
        "3: hello+offer+chunks+bye in one write leaks spool files",
    ),
    (
        "idle-uploads",
        "4: idle uploads hold open spool files (descriptors)",
    ),
    (
        "silent-sockets",
        "5: never-logged-in sockets fill the server",
    ),
    (
        "partial-frames",
        "6: partial 1 MiB frames before login cost memory",
    ),
    (
        "error-flood-slow-reader",
        "7: error-earning frames to a reader that never reads",
    ),
    ("voice-spoof", "8: voice bind from a forged source address"),
    (
        "voice-tcp-squat",
        "9: TCP voice connections that never bind",
    ),
    ("log-volume", "10: log bytes per connection churn"),
];

/// Size knobs common to all scenarios: `None` takes the scenario's default
/// (the size that reproduces the issue); tests pass tiny values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scale {
    /// Attacking connections (or offers, packets: the scenario says which).
    pub count: Option<usize>,
    /// Seconds the attack is held.
    pub seconds: Option<f64>,
}

impl Scale {
    fn count(&self, default: usize) -> usize {
        self.count.unwrap_or(default).max(1)
    }
    fn hold(&self, default: f64) -> Duration {
        Duration::from_secs_f64(self.seconds.unwrap_or(default).max(0.05))
    }
}

/// The soft open-file limit a spawned server gets for scenario `name`,
/// when it is not the machine's: `idle-uploads` starts the server with 4096
/// descriptors so that exhausting them takes ~500 members and seconds, not
/// the 2,300 members against 20,000 (the same arithmetic, scaled).
pub fn server_nofile(name: &str) -> Option<u64> {
    (name == "idle-uploads").then_some(4096)
}

/// Runs the scenario called `name`.
pub fn run(name: &str, target: &mut Target, sampler: &Sampler, scale: Scale) -> Result<Value> {
    match name {
        "offer-flood" => offer_flood(target, scale),
        "quota-squat" => quota_squat(target, scale),
        "spool-leak" => spool_leak(target, scale),
        "idle-uploads" => idle_uploads(target, sampler, scale),
        "silent-sockets" => silent_sockets(target, sampler, scale),
        "partial-frames" => partial_frames(target, scale),
        "error-flood-slow-reader" => error_flood(target, scale),
        "voice-spoof" => voice_spoof(target, scale),
        "voice-tcp-squat" => voice_tcp_squat(target, scale),
        "log-volume" => log_volume(target, scale),
        other => bail!("unknown scenario {other:?} (try --list)"),
    }
}

/// What a scenario measures after the server was stopped with SIGTERM (the
/// runner stops it once the probe and the sampler are done): for
/// `spool-leak`, the spool files the shutdown left on disk.
pub fn after_stop(name: &str, target: &Target) -> Option<Value> {
    match (name, &target.spool) {
        ("spool-leak", Some(spool)) => {
            let (files, bytes) = spool_files(spool);
            Some(json!({ "spool_files_after_sigterm": files, "spool_bytes_after_sigterm": bytes }))
        }
        _ => None,
    }
}

fn hello(name: &str) -> Vec<u8> {
    encode_client(&ClientMessage::Hello(Hello {
        password: None,
        token: None,
        version: 1,
        name: name.to_owned(),
        last_seen: None,
    }))
    .to_vec()
}

fn offer(name: String, content: &[u8], declared: u64) -> ClientMessage {
    ClientMessage::FileOffer(FileOffer {
        room: None,
        to: None,
        name,
        size: declared,
        sha256: Sha256::digest(content).to_vec(),
        kind: FileKind::File,
        reference: None,
    })
}

fn chunk(transfer: u64, data: &[u8]) -> Vec<u8> {
    encode_client(&ClientMessage::FileChunk(FileChunk {
        transfer,
        offset: 0,
        data: data.to_vec(),
    }))
    .to_vec()
}

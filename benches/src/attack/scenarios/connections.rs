//! The connection-level attacks (items 5-7 and 10 of the hardening issue):
//! sockets that never say `hello`, partial frames before login, an error
//! flood to a reader that never reads, and the log volume of churn and
//! handshake timeouts.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chatcore::protocol::ClientMessage;
use serde_json::{Value, json};

use super::{Scale, chunk};
use crate::attack::{
    Login, Sampler, Target, attacker_login, attacker_stream, login_round, round2, rss_kib,
};

/// Item 5. Thousands of sockets that connect and never say `hello`; real
/// logins are tried meanwhile, and the attack is held past the handshake
/// timeout (10 s by default) so the mass timeout's loop turn is seen too.
pub(super) fn silent_sockets(
    target: &mut Target,
    sampler: &Sampler,
    scale: Scale,
) -> Result<Value> {
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
pub(super) fn partial_frames(target: &mut Target, scale: Scale) -> Result<Value> {
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
pub(super) fn error_flood(target: &mut Target, scale: Scale) -> Result<Value> {
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

/// Item 10, log volume: log bytes per login+leave cycle and per handshake
/// timeout, and what that comes to per day at the rate reached here.
pub(super) fn log_volume(target: &mut Target, scale: Scale) -> Result<Value> {
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

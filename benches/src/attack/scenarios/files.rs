//! The file-transfer attacks (items 1-4 of the hardening issue): offers
//! that outlive their sender, declared-but-empty offers squatting the spool
//! quota, uploads packed into one write with `bye`, and idle uploads holding
//! spool descriptors.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chatcore::protocol::transfer::{FileChunk, MAX_CHUNK};
use chatcore::protocol::{ClientMessage, ServerMessage, encode_client};
use serde_json::{Value, json};

use super::{Scale, chunk, hello, offer};
use crate::attack::{
    Login, Raw, Sampler, Target, attacker_login, login, login_round, round2, spool_files,
};

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
pub(super) fn offer_flood(target: &mut Target, scale: Scale) -> Result<Value> {
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
    let cpu0 = target.pid.and_then(crate::attack::cpu_secs);
    let t1 = Instant::now();
    let logins = login_round(target.chat, 20, "late", Duration::from_secs(5));
    let cpu = match (cpu0, target.pid.and_then(crate::attack::cpu_secs)) {
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
pub(super) fn quota_squat(target: &mut Target, scale: Scale) -> Result<Value> {
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
pub(super) fn spool_leak(target: &mut Target, scale: Scale) -> Result<Value> {
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

/// Item 4. Many members each open 8 uploads, send one chunk, then idle.
/// Counts the server's descriptors, then checks that an honest upload and a
/// fresh login still work.
pub(super) fn idle_uploads(target: &mut Target, sampler: &Sampler, scale: Scale) -> Result<Value> {
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

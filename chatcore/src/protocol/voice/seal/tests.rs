//! Sealing and opening in memory: round trip, tampering anywhere, replays,
//! the grace period of the previous epoch, the bind proof.

use super::*;

fn key(epoch: u32, byte: u8) -> CallKey {
    CallKey::new(epoch, &[byte; KEY_LEN]).expect("32-byte key")
}

#[test]
fn a_sealed_packet_opens_with_its_key_and_hides_the_opus_bytes() {
    let opus = [0x5a; 200];
    let mut s = Sealer::new(7, key(1, 9));
    let mut pkt = Vec::new();
    assert_eq!(s.seal(960, &opus, &mut pkt), Ok(0));
    assert_eq!(pkt.len(), AUDIO_HEADER_LEN + opus.len() + TAG_LEN);
    assert!(
        !pkt.windows(16).any(|w| w == [0x5a; 16]),
        "the Opus bytes are visible"
    );
    let mut o = Opener::new(key(1, 9));
    let mut out = Vec::new();
    let got = o.open(&pkt, Instant::now(), &mut out).expect("opens");
    assert_eq!(
        got,
        Opened {
            session: 7,
            epoch: 1,
            counter: 0,
            ts: 960
        }
    );
    assert_eq!(out, opus);
    assert_eq!(o.stats.opened, 1);
}

#[test]
fn a_wrong_key_and_every_flipped_bit_fail_authentication_and_are_counted_forged() {
    let mut s = Sealer::new(7, key(1, 9));
    let mut pkt = Vec::new();
    s.seal(0, &[1, 2, 3], &mut pkt).expect("seal");
    let now = Instant::now();
    let mut out = Vec::new();
    let mut wrong = Opener::new(key(1, 8));
    assert_eq!(wrong.open(&pkt, now, &mut out), Err(SealError::Forged));
    assert!(out.is_empty());
    // Every bit of the header (but the type byte and epoch, which route
    // it elsewhere) and of the ciphertext and tag.
    let mut o = Opener::new(key(1, 9));
    let mut forged = 0;
    for byte in (1..pkt.len()).filter(|b| !(9..13).contains(b)) {
        for bit in 0..8 {
            let mut bad = pkt.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                o.open(&bad, now, &mut out).is_err(),
                "byte {byte} bit {bit}"
            );
            forged += 1;
        }
    }
    assert_eq!(o.stats.forged, forged);
    // The real one still opens: forgeries moved no window.
    assert!(o.open(&pkt, now, &mut out).is_ok());
}

#[test]
fn a_replayed_counter_and_one_behind_the_window_are_refused_and_counted() {
    let mut s = Sealer::new(7, key(1, 9));
    let now = Instant::now();
    let mut o = Opener::new(key(1, 9));
    let mut out = Vec::new();
    let mut pkts = Vec::new();
    for i in 0..200u32 {
        let mut p = Vec::new();
        s.seal(i * 960, &[1], &mut p).expect("seal");
        pkts.push(p);
    }
    // Out of order inside the window is fine.
    assert!(o.open(&pkts[5], now, &mut out).is_ok());
    assert!(o.open(&pkts[3], now, &mut out).is_ok());
    assert_eq!(o.open(&pkts[3], now, &mut out), Err(SealError::Replayed));
    assert_eq!(o.open(&pkts[5], now, &mut out), Err(SealError::Replayed));
    assert!(o.open(&pkts[199], now, &mut out).is_ok());
    // 199 - 5 >= 128: too old even though never seen.
    assert_eq!(o.open(&pkts[4], now, &mut out), Err(SealError::Replayed));
    assert!(o.open(&pkts[199 - 127], now, &mut out).is_ok());
    assert_eq!(o.stats.replayed, 3);
    assert_eq!(o.stats.opened, 4);
}

#[test]
fn the_previous_epoch_opens_during_the_grace_period_only_and_older_ones_never() {
    let t0 = Instant::now();
    let mut old = Sealer::new(7, key(1, 1));
    let mut new = Sealer::new(7, key(2, 2));
    let (mut p1, mut p2) = (Vec::new(), Vec::new());
    old.seal(0, &[1], &mut p1).expect("seal");
    new.seal(0, &[1], &mut p2).expect("seal");
    let mut o = Opener::new(key(1, 1));
    let mut out = Vec::new();
    // Epoch 2 before its key arrived: unknown.
    assert_eq!(o.open(&p2, t0, &mut out), Err(SealError::UnknownEpoch(2)));
    assert!(o.set_key(key(2, 2), t0));
    assert!(!o.set_key(key(1, 1), t0), "an older epoch is ignored");
    assert!(o.open(&p2, t0, &mut out).is_ok());
    assert!(o.open(&p1, t0 + GRACE / 2, &mut out).is_ok());
    let mut p1b = Vec::new();
    old.seal(0, &[1], &mut p1b).expect("seal");
    assert_eq!(
        o.open(&p1b, t0 + GRACE, &mut out),
        Err(SealError::UnknownEpoch(1))
    );
    assert_eq!(o.stats.unknown_epoch, 2);
}

#[test]
fn the_sealer_switches_only_to_newer_epochs_and_its_counter_never_goes_back() {
    let mut s = Sealer::new(1, key(u32::MAX, 1));
    let mut out = Vec::new();
    assert_eq!(s.seal(0, &[1], &mut out), Ok(0));
    assert!(s.set_key(key(0, 2)), "epochs wrap");
    assert!(!s.set_key(key(u32::MAX, 1)));
    assert_eq!(s.epoch(), 0);
    assert_eq!(s.seal(0, &[1], &mut out), Ok(1));
    s.next = Some(u32::MAX);
    assert_eq!(s.seal(0, &[1], &mut out), Ok(u32::MAX));
    assert_eq!(s.seal(0, &[1], &mut out), Err(SealError::CounterExhausted));
    assert_eq!(s.seal(0, &[], &mut out), Err(SealError::CounterExhausted));
    let mut fresh = Sealer::new(1, key(0, 2));
    assert_eq!(
        fresh.seal(0, &[0; MAX_OPUS_PAYLOAD + 1], &mut out),
        Err(SealError::PayloadLength(MAX_OPUS_PAYLOAD + 1))
    );
    assert!(matches!(
        CallKey::new(0, &[0; 16]),
        Err(SealError::KeyLength(16))
    ));
}

#[test]
fn the_bind_proof_depends_on_token_session_and_cookie_and_matches_the_spec() {
    let token = [0x11; 16];
    let cookie = [0xc0; COOKIE_LEN];
    let mac = bind_mac(&token, 7, None);
    assert!(bind_mac_ok(&token, 7, None, &mac));
    assert!(!bind_mac_ok(&token, 8, None, &mac));
    assert!(!bind_mac_ok(&[0x12; 16], 7, None, &mac));
    assert!(!bind_mac_ok(&token, 7, Some(&cookie), &mac));
    let with = bind_mac(&token, 7, Some(&cookie));
    assert!(bind_mac_ok(&token, 7, Some(&cookie), &with));
    assert_ne!(mac, with);
    // The message is exactly label ‖ session ‖ cookie (docs/protocol.md).
    let mut h = HmacSha256::new_from_slice(&token).expect("key");
    h.update(b"chat voice bind v2");
    h.update(&[0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(&h.finalize().into_bytes()[..MAC_LEN], &mac);
}

#[test]
fn the_spec_examples_of_docs_protocol_md_are_what_this_code_produces() {
    // §16.5: session 7, epoch 3, counter 5, ts 960, Opus `aa bb`, key 00..1f
    // (checked against an independent AES-GCM implementation).
    let key: Vec<u8> = (0..32).collect();
    let mut pkt = Vec::new();
    seal(
        &CallKey::new(3, &key).expect("key"),
        7,
        5,
        960,
        &[0xaa, 0xbb],
        &mut pkt,
    )
    .expect("seal");
    let spec = [
        0x01, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 3, 0xc0, 0x9a, 0x22, 0x8a,
        0x0f, 0x09, 0x8b, 0xc1, 0x83, 0xcd, 0x06, 0x29, 0x4e, 0x75, 0x3e, 0x59, 0x19, 0xec, 0xf5,
    ];
    assert_eq!(pkt, spec);
    // §16.2: the bind proof of token 11 × 16 for session 7, without and
    // with the cookie c0 c1 … cf.
    let cookie: [u8; COOKIE_LEN] = std::array::from_fn(|i| 0xc0 + i as u8);
    assert_eq!(
        bind_mac(&[0x11; 16], 7, None),
        [
            0x5c, 0x5d, 0x7d, 0x76, 0x3b, 0x68, 0x1e, 0xc7, 0xa9, 0xc2, 0x06, 0xb6, 0xe9, 0xd5,
            0x5a, 0xe6
        ]
    );
    assert_eq!(
        bind_mac(&[0x11; 16], 7, Some(&cookie)),
        [
            0xae, 0x4a, 0x61, 0x02, 0x2f, 0x9b, 0x6b, 0x70, 0xe4, 0x41, 0xf0, 0x4c, 0xb4, 0x7d,
            0xe0, 0x99
        ]
    );
}

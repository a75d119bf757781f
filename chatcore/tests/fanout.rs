//! Large fan-outs are written after everything else, in slices (see
//! `server/reactor/output.rs`): this proves, over real sockets, that
//! nothing is lost, duplicated or reordered by that, for a member of a big
//! room only and for one that is also in a small room (whose own frames
//! promote it to the ordinary flush).

mod common;

use chatcore::ServerConfig;
use chatcore::protocol::{ChatSend, ClientMessage, JoinRoom, ServerMessage};
use common::{Raw, start, test_config};

/// More than `BULK_FANOUT` (512): every chat of the default room is a
/// large fan-out.
const MEMBERS: usize = 540;
const CHATS: usize = 20;

#[test]
fn a_large_fan_out_reaches_every_member_once_and_in_order_beside_a_small_rooms_chats() {
    let server = start(ServerConfig {
        rate_burst: 1000.0,
        rate_per_sec: 1000.0,
        max_clients: 2 * MEMBERS,
        max_connections_per_address: 2 * MEMBERS,
        ..test_config()
    });
    let addr = server.local_addr();
    let mut members: Vec<Raw> = (0..MEMBERS)
        .map(|i| Raw::login(addr, &format!("m{i}")).0)
        .collect();
    // Two of them also share a small room.
    for c in &mut members[..2] {
        c.send(&ClientMessage::Join(JoinRoom {
            room: "small".into(),
            invite_only: false,
        }));
        c.until(|m| matches!(m, ServerMessage::RoomJoined(_)));
    }
    // The speaker talks to everyone while the pair talks in the small room.
    for i in 0..CHATS {
        let text = format!("big {i}");
        members[MEMBERS - 1].send(&ClientMessage::Chat(ChatSend {
            text,
            reference: None,
            room: None,
        }));
        members[1].send(&ClientMessage::Chat(ChatSend {
            text: format!("small {i}"),
            reference: None,
            room: Some("small".into()),
        }));
    }
    for (n, c) in members.iter_mut().enumerate() {
        let mut big = Vec::new();
        let mut small = Vec::new();
        let want_small = if n < 2 { CHATS } else { 0 };
        while big.len() < CHATS || small.len() < want_small {
            match c.next() {
                Some(ServerMessage::Chat(m)) if m.room.is_none() => big.push(m.text),
                Some(ServerMessage::Chat(m)) => small.push(m.text),
                Some(_) => {}
                None => panic!("member {n} closed after {} big chats", big.len()),
            }
        }
        let expected: Vec<String> = (0..CHATS).map(|i| format!("big {i}")).collect();
        assert_eq!(
            big, expected,
            "member {n}: the big room's chats, once, in order"
        );
        let expected: Vec<String> = (0..want_small).map(|i| format!("small {i}")).collect();
        assert_eq!(small, expected, "member {n}: the small room's chats");
        // And nothing more: a ping's answer comes after whatever was queued.
        c.ping(7);
        loop {
            match c.next() {
                Some(ServerMessage::Chat(m)) => panic!("member {n}: one chat too many: {m:?}"),
                Some(ServerMessage::Pong(p)) if p.seq == 7 => break,
                Some(_) => {}
                None => panic!("closed"),
            }
        }
    }
    server.stop().expect("stop");
}

//! The operator's side of the embedding API: members and rooms listed,
//! notices to everyone (and their exact bytes, docs/protocol.md section
//! 26), run-time reconfiguration, the loop's heartbeat.

mod common;

use chatcore::protocol::{Notice, ServerMessage, encode_server};
use chatcore::{Server, ServerConfig};
use common::{Raw, test_config};

#[test]
fn the_notice_frame_is_the_one_documented() {
    let frame = encode_server(&ServerMessage::Notice(Notice {
        text: "restart at 22:00".into(),
        ts: 1_767_225_600_000,
    }));
    let documented = "0000002f83a474797065a66e6f74696365a474657874b0726573746172742061\
                      742032323a3030a27473cf0000019b76daa800";
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, documented);
    let mut buf = bytes::BytesMut::from(&frame[..]);
    let decoded = chatcore::protocol::decode_server(&mut buf, u32::MAX)
        .expect("valid")
        .expect("whole");
    assert!(matches!(decoded, ServerMessage::Notice(n) if n.text == "restart at 22:00"));
}

#[test]
fn the_handle_lists_members_and_rooms_and_notices_reach_everyone() {
    let server = Server::bind(test_config())
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = server.local_addr();
    let (mut a, wa) = Raw::login(addr, "alice");
    let (mut b, wb) = Raw::login(addr, "bob");

    let members = server.handle().members().expect("members");
    let sessions: Vec<u64> = members.iter().map(|m| m.session).collect();
    assert_eq!(sessions, vec![wa.session, wb.session]);
    let rooms = server.handle().rooms().expect("rooms");
    assert_eq!(rooms.len(), 1);
    assert!(rooms[0].default && rooms[0].members == 2);

    server
        .handle()
        .notice("maintenance at noon")
        .expect("notice");
    for m in [&mut a, &mut b] {
        match m.until(|msg| matches!(msg, ServerMessage::Notice(_))) {
            ServerMessage::Notice(n) => assert_eq!(n.text, "maintenance at noon"),
            other => panic!("{other:?}"),
        }
    }
    // A notice is not a chat: nothing was added to the history.
    assert_eq!(server.handle().stats().expect("stats").messages, 0);
    assert_eq!(server.handle().stats().expect("stats").logins, 2);
    assert!(server.handle().idle_for() < std::time::Duration::from_secs(60));
    server.stop().expect("stop");
}

#[test]
fn reconfigure_applies_run_time_keys_and_lists_the_rest() {
    let server = Server::bind(test_config())
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = server.local_addr();
    let (_a, _) = Raw::login(addr, "alice");
    let mut new: ServerConfig = test_config();
    new.max_clients = 1;
    new.history_len += 1;
    let restart = server.handle().reconfigure(new).expect("reconfigure");
    assert_eq!(restart, vec!["history_len"]);
    // max_clients = 1 is in force at once.
    let mut second = Raw::connect(addr);
    second.hello("bob");
    assert_eq!(
        second.expect_error(),
        chatcore::protocol::ErrorCode::ServerFull
    );
    let mut bad = test_config();
    bad.max_clients = 0;
    assert!(server.handle().reconfigure(bad).is_err());
    server.stop().expect("stop");
}

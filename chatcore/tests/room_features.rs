//! What each named room has of its own beyond chat (docs/protocol.md 23.5,
//! 23.6, 25.4), over real sockets: invite-only rooms (kept across a restart
//! by a real store), file offers per room and in a direct conversation, and
//! one voice call per room.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chatcore::protocol::transfer::{FileAccept, FileKind, FileOffer, FileOffered};
use chatcore::protocol::voice::seal::{CallKey, seal};
use chatcore::protocol::voice::{COOKIE_LEN, VoiceJoined, VoicePacket, seal::bind_mac};
use chatcore::protocol::{
    ClientMessage, ErrorCode, Hello, Invite, JoinRoom, PROTOCOL_VERSION, Register, RoomMode,
    ServerMessage, VoiceJoinRoom,
};
use chatcore::{RunningServer, ServerConfig};
use common::{Raw, WAIT, send_chunks, spool, start, test_config};
use sha2::{Digest, Sha256};

/// How long a test waits to be sure something did NOT arrive.
const QUIET: Duration = Duration::from_millis(300);

fn db_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatcore-test-room-features-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("chat.db")
}

/// Enters `room` (creating it, invite-only if asked); the answer's code on
/// refusal, with the room the error names.
fn join(c: &mut Raw, room: &str, invite_only: bool) -> Result<(), (ErrorCode, Option<String>)> {
    c.send(&ClientMessage::Join(JoinRoom {
        room: room.into(),
        invite_only,
    }));
    match c.until(|m| matches!(m, ServerMessage::RoomJoined(_) | ServerMessage::Error(_))) {
        ServerMessage::RoomJoined(_) => Ok(()),
        ServerMessage::Error(e) => Err((e.code, e.room)),
        _ => unreachable!(),
    }
}

/// Registers `name` (logged in as a guest first) with a password.
fn registered(addr: SocketAddr, name: &str) -> Raw {
    let (mut c, _) = Raw::login(addr, name);
    c.send(&ClientMessage::Register(Register {
        password: "a long password".into(),
    }));
    c.until(|m| matches!(m, ServerMessage::Registered(_)));
    c
}

/// Logs `name` in with its password.
fn log_in(addr: SocketAddr, name: &str) -> Raw {
    let mut c = Raw::connect(addr);
    c.send(&ClientMessage::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
        last_seen: None,
        password: Some("a long password".into()),
        token: None,
    }));
    c.until(|m| matches!(m, ServerMessage::Welcome(_)));
    c
}

#[test]
fn an_invite_only_room_is_hidden_and_closed_to_the_uninvited_until_a_moderator_invites_them() {
    let db = db_path("invite");
    let config = || ServerConfig {
        store_path: Some(db.clone()),
        rate_burst: 1000.0,
        ..test_config()
    };
    let server = start(config());
    let addr = server.local_addr();
    let mut owner = registered(addr, "olga");
    let mut guest = Raw::login(addr, "gus").0;
    let mut bob = registered(addr, "bob");
    join(&mut owner, "secret", true).expect("the creator enters");

    // Not listed to outsiders, and closed to them.
    guest.send(&ClientMessage::Rooms);
    match guest.until(|m| matches!(m, ServerMessage::RoomList(_))) {
        ServerMessage::RoomList(l) => assert!(l.rooms.iter().all(|r| r.room != "secret")),
        _ => unreachable!(),
    }
    assert_eq!(
        join(&mut guest, "secret", false),
        Err((ErrorCode::InviteOnly, Some("secret".into()))),
        "the error names the room it answers"
    );

    owner.send(&ClientMessage::Invite(Invite {
        room: "secret".into(),
        name: Some("gus".into()),
        by: None,
    }));
    match guest.until(|m| matches!(m, ServerMessage::Invited(_))) {
        ServerMessage::Invited(i) => {
            assert_eq!(i.room, "secret");
            assert_eq!(i.by.as_deref(), Some("olga"));
        }
        _ => unreachable!(),
    }
    // Only those inside may invite.
    bob.send(&ClientMessage::Invite(Invite {
        room: "secret".into(),
        name: Some("gus".into()),
        by: None,
    }));
    match bob.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::NotInRoom);
            assert_eq!(e.room.as_deref(), Some("secret"));
        }
        _ => unreachable!(),
    }
    join(&mut guest, "secret", false).expect("an invited guest enters");
    // Bob (registered) is invited while he is online, for good.
    owner.send(&ClientMessage::Invite(Invite {
        room: "secret".into(),
        name: Some("bob".into()),
        by: None,
    }));
    bob.until(|m| matches!(m, ServerMessage::Invited(_)));
    server.stop().expect("stop");

    // After a restart the room is still invite-only, bob's invitation
    // holds, and the owner may open the room to everyone.
    let server = start(config());
    let addr = server.local_addr();
    let mut stranger = Raw::login(addr, "sam").0;
    assert_eq!(
        join(&mut stranger, "secret", false).map_err(|e| e.0),
        Err(ErrorCode::InviteOnly)
    );
    let mut bob = log_in(addr, "bob");
    join(&mut bob, "secret", false).expect("bob's invitation survived the restart");
    let mut owner = log_in(addr, "olga");
    join(&mut owner, "secret", false).expect("the owner always enters");
    owner.send(&ClientMessage::RoomMode(RoomMode {
        room: "secret".into(),
        invite_only: false,
        by: None,
    }));
    match bob.until(|m| matches!(m, ServerMessage::RoomMode(_))) {
        ServerMessage::RoomMode(m) => {
            assert!(!m.invite_only);
            assert_eq!(m.by.as_deref(), Some("olga"));
        }
        _ => unreachable!(),
    }
    join(&mut stranger, "secret", false).expect("open to everyone now");
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

/// Offers `data` as `name` in `room` or `to` a member, uploads it and waits
/// for `file_ready`; returns the transfer id.
fn share(c: &mut Raw, name: &str, data: &[u8], room: Option<&str>, to: Option<&str>) -> u64 {
    c.send(&ClientMessage::FileOffer(FileOffer {
        name: name.into(),
        size: data.len() as u64,
        sha256: Sha256::digest(data).to_vec(),
        kind: FileKind::File,
        reference: Some(1),
        room: room.map(str::to_owned),
        to: to.map(str::to_owned),
    }));
    let id = match c.until(|m| matches!(m, ServerMessage::FileUpload(_) | ServerMessage::Error(_)))
    {
        ServerMessage::FileUpload(u) => u.transfer,
        other => panic!("expected file_upload, got {other:?}"),
    };
    send_chunks(c, id, data);
    c.until(|m| matches!(m, ServerMessage::FileReady(t) if t.transfer == id));
    id
}

/// The next `file_offer` `c` gets within the quiet time, if any.
fn offer_seen(c: &mut Raw) -> Option<FileOffered> {
    loop {
        match c.try_next(QUIET)? {
            Some(ServerMessage::FileOffer(o)) => return Some(o),
            Some(_) => {}
            None => return None,
        }
    }
}

/// Asks for transfer `id` and reads it back whole; or the refusal's code.
fn download(c: &mut Raw, id: u64) -> Result<Vec<u8>, ErrorCode> {
    c.send(&ClientMessage::FileAccept(FileAccept {
        transfer: id,
        offset: 0,
    }));
    let mut got = Vec::new();
    loop {
        match c.until(|m| {
            matches!(
                m,
                ServerMessage::FileData(_) | ServerMessage::FileDone(_) | ServerMessage::Error(_)
            )
        }) {
            ServerMessage::FileData(d) => got.extend_from_slice(&d.data),
            ServerMessage::FileDone(_) => return Ok(got),
            ServerMessage::Error(e) => return Err(e.code),
            _ => unreachable!(),
        }
    }
}

fn files_server(dir: &Path) -> RunningServer {
    start(ServerConfig {
        spool_dir: Some(dir.to_path_buf()),
        rate_per_sec: 1000.0,
        rate_burst: 1000.0,
        ..test_config()
    })
}

#[test]
fn a_file_offered_in_a_room_reaches_only_its_members_and_only_they_may_download_it() {
    let dir = spool("room-offer");
    let server = files_server(&dir);
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    let (mut outsider, _) = Raw::login(addr, "c");
    join(&mut a, "dev", false).expect("join");
    join(&mut b, "dev", false).expect("join");
    let data = b"the release notes".repeat(100);
    let id = share(&mut a, "notes.txt", &data, Some("dev"), None);

    let got = offer_seen(&mut b).expect("a member of the room is offered the file");
    assert_eq!((got.transfer, got.room.as_deref()), (id, Some("dev")));
    assert_eq!(
        offer_seen(&mut outsider),
        None,
        "not offered outside the room"
    );
    assert_eq!(download(&mut outsider, id), Err(ErrorCode::UnknownTransfer));
    assert_eq!(download(&mut b, id).expect("download"), data);

    // Someone entering later gets the room's offer right after room_joined.
    outsider.send(&ClientMessage::Join(JoinRoom {
        room: "dev".into(),
        invite_only: false,
    }));
    outsider.until(|m| matches!(m, ServerMessage::RoomJoined(_)));
    let late = offer_seen(&mut outsider).expect("offered after entering");
    assert_eq!(late.transfer, id);
    assert_eq!(download(&mut outsider, id).expect("download"), data);
    // The statistics (and so the metrics) count the upload and both
    // downloads, with at least their data.
    let stats = server.handle().stats().expect("stats");
    assert_eq!(stats.files_uploaded, 1);
    assert_eq!(stats.file_bytes_uploaded, data.len() as u64);
    assert_eq!(stats.files_downloaded, 2);
    assert!(stats.file_bytes_downloaded >= 2 * data.len() as u64);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_offered_in_a_direct_conversation_reaches_only_the_recipient() {
    let dir = spool("dm-offer");
    let server = files_server(&dir);
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    let (mut c, _) = Raw::login(addr, "c");
    let data = b"for your eyes only".to_vec();
    let id = share(&mut a, "private.txt", &data, None, Some("b"));
    let got = offer_seen(&mut b).expect("the recipient is offered the file");
    assert_eq!(got.transfer, id);
    assert_eq!(got.to.as_deref(), Some("b"));
    assert_eq!(got.room, None);
    assert_eq!(offer_seen(&mut c), None, "nobody else is offered it");
    assert_eq!(download(&mut c, id), Err(ErrorCode::UnknownTransfer));
    assert_eq!(download(&mut b, id).expect("download"), data);

    // Offering in a room and to a member at once is refused.
    a.send(&ClientMessage::FileOffer(FileOffer {
        name: "x".into(),
        size: 1,
        sha256: Sha256::digest(b"x").to_vec(),
        kind: FileKind::File,
        reference: Some(9),
        room: Some("dev".into()),
        to: Some("b".into()),
    }));
    assert_eq!(a.expect_error(), ErrorCode::BadMessage);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Joins the call of `room` (`None`: the default room's); its `voice_joined`.
fn join_call(c: &mut Raw, room: Option<&str>) -> VoiceJoined {
    match room {
        Some(r) => c.send(&ClientMessage::VoiceJoinRoom(VoiceJoinRoom {
            room: Some(r.into()),
        })),
        None => c.send(&ClientMessage::VoiceJoin),
    }
    match c.until(|m| matches!(m, ServerMessage::VoiceJoined(_) | ServerMessage::Error(_))) {
        ServerMessage::VoiceJoined(j) => j,
        other => panic!("expected voice_joined, got {other:?}"),
    }
}

/// The next `voice_state` of `room` whose members pass `pred`: their names.
fn call_of(c: &mut Raw, room: Option<&str>, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    loop {
        if let ServerMessage::VoiceState(s) = c.until(|m| matches!(m, ServerMessage::VoiceState(_)))
            && s.room.as_deref() == room
        {
            let names: Vec<String> = s.members.into_iter().map(|m| m.name).collect();
            if pred(&names) {
                return names;
            }
        }
    }
}

/// A UDP socket bound to `j`'s call (bind, challenge, bind with cookie).
fn udp_bound(server: &RunningServer, j: &VoiceJoined) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    sock.connect((server.local_addr().ip(), j.port))
        .expect("connect");
    let bind = |cookie: Option<[u8; COOKIE_LEN]>| {
        VoicePacket::Bind {
            session: j.session,
            mac: bind_mac(&j.token, j.session, cookie.as_ref()),
            cookie,
        }
        .to_vec()
    };
    let mut buf = [0u8; 2048];
    sock.send(&bind(None)).expect("bind");
    let n = sock.recv(&mut buf).expect("challenge");
    let Ok(VoicePacket::BindChallenge { cookie, .. }) = VoicePacket::parse(&buf[..n]) else {
        panic!("expected a bind_challenge");
    };
    sock.send(&bind(Some(cookie))).expect("bind");
    let n = sock.recv(&mut buf).expect("bound");
    assert!(matches!(
        VoicePacket::parse(&buf[..n]),
        Ok(VoicePacket::Bound { .. })
    ));
    sock
}

fn hears(sock: &UdpSocket) -> bool {
    sock.set_read_timeout(Some(QUIET)).expect("timeout");
    let mut buf = [0u8; 2048];
    sock.recv(&mut buf).is_ok()
}

#[test]
fn each_room_has_its_own_call_and_joining_another_call_leaves_the_first() {
    let server = start(ServerConfig {
        voice_listen: Some("127.0.0.1:0".parse().expect("addr")),
        rate_burst: 1000.0,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let (mut b, _) = Raw::login(addr, "b");
    let (mut c, _) = Raw::login(addr, "c");
    join(&mut a, "dev", false).expect("join");
    join(&mut b, "dev", false).expect("join");

    let ja = join_call(&mut a, Some("dev"));
    assert_eq!(ja.room.as_deref(), Some("dev"));
    let jb = join_call(&mut b, Some("dev"));
    let jc = join_call(&mut c, None);
    assert_eq!(jc.room, None);
    assert_eq!(
        call_of(&mut b, Some("dev"), |n| n.len() == 2),
        ["a", "b"],
        "the room's members see its call"
    );
    // A voice call in a room one is not in is refused with not_in_room.
    c.send(&ClientMessage::VoiceJoinRoom(VoiceJoinRoom {
        room: Some("dev".into()),
    }));
    assert_eq!(c.expect_error(), ErrorCode::NotInRoom);

    // Audio goes to the speaker's call only.
    let (sa, sb, sc) = (
        udp_bound(&server, &ja),
        udp_bound(&server, &jb),
        udp_bound(&server, &jc),
    );
    // Each join rekeyed the call; b's join gave the newest key of dev.
    let key = CallKey::new(jb.epoch, &jb.key).expect("key");
    let mut packet = Vec::new();
    seal(&key, ja.session, 1, 960, b"opus", &mut packet).expect("seal");
    sa.send(&packet).expect("send");
    assert!(hears(&sb), "a member of the same call hears it");
    assert!(!hears(&sc), "the default room's call does not");

    // Moving to the default room's call leaves dev's.
    let moved = join_call(&mut a, None);
    assert_eq!(moved.room, None);
    assert_eq!(call_of(&mut b, Some("dev"), |n| n.len() == 1), ["b"]);
    assert_eq!(call_of(&mut c, None, |n| n.len() == 2), ["c", "a"]);
    // Parting dev leaves its call.
    b.send(&ClientMessage::Part(chatcore::protocol::RoomName {
        room: "dev".into(),
    }));
    b.until(|m| matches!(m, ServerMessage::RoomParted(_)));
    b.send(&ClientMessage::VoiceLeave);
    assert_eq!(b.expect_error(), ErrorCode::NotInCall);
    server.stop().expect("stop");
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

#[test]
fn the_frames_of_sections_23_7_are_what_the_encoder_produces() {
    use chatcore::protocol::{ErrorMsg, encode_client, encode_server};
    assert_eq!(
        encode_client(&ClientMessage::Join(JoinRoom {
            room: "dev".into(),
            invite_only: true,
        }))
        .to_vec(),
        hex("00 00 00 21 83 a4 74 79 70 65 a4 6a 6f 69 6e a4
             72 6f 6f 6d a3 64 65 76 ab 69 6e 76 69 74 65 5f
             6f 6e 6c 79 c3")
    );
    assert_eq!(
        encode_client(&ClientMessage::RoomMode(RoomMode {
            room: "dev".into(),
            invite_only: true,
            by: None,
        }))
        .to_vec(),
        hex("00 00 00 26 83 a4 74 79 70 65 a9 72 6f 6f 6d 5f
             6d 6f 64 65 a4 72 6f 6f 6d a3 64 65 76 ab 69 6e
             76 69 74 65 5f 6f 6e 6c 79 c3")
    );
    assert_eq!(
        encode_client(&ClientMessage::Invite(Invite {
            room: "dev".into(),
            name: Some("bob".into()),
            by: None,
        }))
        .to_vec(),
        hex("00 00 00 1f 83 a4 74 79 70 65 a6 69 6e 76 69 74
             65 a4 72 6f 6f 6d a3 64 65 76 a4 6e 61 6d 65 a3
             62 6f 62")
    );
    assert_eq!(
        encode_server(&ServerMessage::Invited(Invite {
            room: "dev".into(),
            name: None,
            by: Some("ann".into()),
        }))
        .to_vec(),
        hex("00 00 00 1e 83 a4 74 79 70 65 a7 69 6e 76 69 74
             65 64 a4 72 6f 6f 6d a3 64 65 76 a2 62 79 a3 61
             6e 6e")
    );
    assert_eq!(
        encode_server(&ServerMessage::Error(ErrorMsg {
            code: ErrorCode::InviteOnly,
            message: "no".into(),
            reference: None,
            transfer: None,
            room: Some("dev".into()),
        }))
        .to_vec(),
        hex("00 00 00 31 84 a4 74 79 70 65 a5 65 72 72 6f 72
             a4 63 6f 64 65 ab 69 6e 76 69 74 65 5f 6f 6e 6c
             79 a7 6d 65 73 73 61 67 65 a2 6e 6f a4 72 6f 6f
             6d a3 64 65 76")
    );
    let voice_join = hex("00 00 00 1a 82 a4 74 79 70 65 aa 76 6f 69 63 65
         5f 6a 6f 69 6e a4 72 6f 6f 6d a3 64 65 76");
    assert_eq!(
        encode_client(&ClientMessage::VoiceJoinRoom(VoiceJoinRoom {
            room: Some("dev".into()),
        }))
        .to_vec(),
        voice_join
    );
    // And it decodes as the named room's join, while a bare `voice_join`
    // stays the default room's.
    assert_eq!(
        ClientMessage::from_body(&voice_join[4..]),
        Ok(ClientMessage::VoiceJoinRoom(VoiceJoinRoom {
            room: Some("dev".into())
        }))
    );
    let bare = encode_client(&ClientMessage::VoiceJoin);
    assert_eq!(
        ClientMessage::from_body(&bare[4..]),
        Ok(ClientMessage::VoiceJoin)
    );
}

#[test]
fn the_default_room_cannot_be_parted_and_the_error_names_it() {
    let server = start(test_config());
    let (mut a, _) = Raw::login(server.local_addr(), "a");
    a.send(&ClientMessage::Part(chatcore::protocol::RoomName {
        room: "lobby".into(),
    }));
    match a.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => {
            assert_eq!(e.code, ErrorCode::RoomInvalid);
            assert_eq!(e.room.as_deref(), Some("lobby"));
        }
        _ => unreachable!(),
    }
    assert!(a.is_alive(1), "still in the default room");
    server.stop().expect("stop");
}

#[test]
fn a_moderator_deletes_a_chat_older_than_the_rooms_memory_from_the_store() {
    use chatcore::protocol::{ChatSend, Delete, HistoryRequest};
    let db = db_path("delete-old");
    let server = start(ServerConfig {
        store_path: Some(db.clone()),
        history_len: 2,
        operators: vec!["root".into()],
        rate_burst: 1000.0,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut author, _) = Raw::login(addr, "ann");
    let mut root = registered(addr, "root");
    join(&mut author, "dev", false).expect("join");
    join(&mut root, "dev", false).expect("join");
    let mut ids = Vec::new();
    for text in ["old secret", "two", "three", "four"] {
        author.send(&ClientMessage::Chat(ChatSend {
            text: text.into(),
            reference: None,
            room: Some("dev".into()),
        }));
        ids.push(author.next_chat().id);
    }
    // Its author may not delete it any more (it is beyond the room's memory).
    author.send(&ClientMessage::Delete(Delete {
        id: ids[0],
        room: Some("dev".into()),
    }));
    assert_eq!(author.expect_error(), ErrorCode::NoSuchMember);
    // A moderator (here an operator) may, naming the room.
    root.send(&ClientMessage::Delete(Delete {
        id: ids[0],
        room: Some("dev".into()),
    }));
    match author.until(|m| matches!(m, ServerMessage::Deleted(_))) {
        ServerMessage::Deleted(d) => {
            assert_eq!(d.id, ids[0]);
            assert_eq!(d.room.as_deref(), Some("dev"));
            assert_eq!(d.by, "root");
        }
        _ => unreachable!(),
    }
    // Gone from the history; the others stay.
    author.send(&ClientMessage::History(HistoryRequest {
        before: None,
        limit: 10,
        room: Some("dev".into()),
    }));
    match author.until(|m| matches!(m, ServerMessage::History(_))) {
        ServerMessage::History(h) => {
            let texts: Vec<&str> = h.messages.iter().map(|c| c.text.as_str()).collect();
            assert_eq!(texts, ["two", "three", "four"]);
        }
        _ => unreachable!(),
    }
    // An id that is not in that room (here: the default room's) is refused.
    root.send(&ClientMessage::Delete(Delete {
        id: ids[1],
        room: None,
    }));
    assert_eq!(root.expect_error(), ErrorCode::NoSuchMember);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

#[test]
fn a_file_offered_to_a_registered_member_who_is_away_is_offered_at_their_next_login() {
    let dir = spool("dm-offer-away");
    let db = db_path("dm-offer-away");
    let server = start(ServerConfig {
        spool_dir: Some(dir.clone()),
        store_path: Some(db.clone()),
        rate_per_sec: 1000.0,
        rate_burst: 1000.0,
        ..test_config()
    });
    let addr = server.local_addr();
    let (mut a, _) = Raw::login(addr, "a");
    let bob = registered(addr, "bob");
    let bob_session = loop {
        match a.next() {
            Some(ServerMessage::Joined(j)) if j.name == "bob" => break j.session,
            Some(ServerMessage::Presence(p)) => {
                if let Some(u) = p.joined.iter().find(|u| u.name == "bob") {
                    break u.session;
                }
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    };
    drop(bob);
    a.until_left(bob_session);
    let data = b"while you were out".to_vec();
    let id = share(&mut a, "note.txt", &data, None, Some("bob"));
    let (mut eve, _) = Raw::login(addr, "eve");
    assert_eq!(offer_seen(&mut eve), None, "nobody else is offered it");
    let mut bob = log_in(addr, "bob");
    let got = offer_seen(&mut bob).expect("offered after the welcome");
    assert_eq!((got.transfer, got.to.as_deref()), (id, Some("bob")));
    assert_eq!(download(&mut bob, id).expect("download"), data);
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

//! Named rooms in the desktop client against a real server: joining a
//! room from the sidebar, a chat in that room shown there only (the lobby
//! counts it as unread when it is the lobby's), and each room keeping its
//! own draft when switching.
//!
//! The network worker is the real one; its stream is pumped here and fed
//! to `App::update`, as the iced subscription would. The other member is a
//! plain `chatcore::Client`.

use chatclient_iced::screen::room::rooms::JOIN_INPUT;
use chatclient_iced::screen::{login, room};
use chatcore::protocol::ServerMessage;
use iced_test::selector;

mod live;

use live::{answer, interact, pump_until, room_of, server, shows_chat, start_worker};

#[test]
fn a_room_joined_from_the_sidebar_shows_its_chats_only_there_and_keeps_its_draft() {
    let server = server();
    let mut app = live::app(&server, "rooms");
    interact(&mut app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite("alice");
        ui.click("Log in").expect("the button");
    });
    let events = start_worker(&app);
    pump_until(&mut app, &events, |_| true);

    // Join "dev" from the sidebar's field.
    interact(&mut app, |ui| {
        ui.click(selector::id(JOIN_INPUT)).expect("join field");
        let _ = ui.typewrite("dev");
        ui.click("Join").expect("the join button");
    });
    pump_until(&mut app, &events, |r| r.shown_room() == Some("dev"));

    let bob = chatcore::Client::connect_plain(server.local_addr(), "bob").expect("bob logs in");
    bob.sender().join_room("dev").expect("join");
    answer(&bob, |m| matches!(m, ServerMessage::RoomJoined(_)));
    bob.sender()
        .send_chat_in("dev", "hello dev")
        .expect("chat in dev");
    bob.send_chat("hello lobby").expect("chat in the lobby");
    pump_until(&mut app, &events, |r| {
        r.room_tabs().first().is_some_and(|t| t.unread == 1)
    });
    pump_until(&mut app, &events, |r| shows_chat(r, "hello dev"));
    let r = room_of(&app).expect("in the room");
    assert!(
        !shows_chat(r, "hello lobby"),
        "the lobby's chat is not in dev"
    );
    assert!(r.users().iter().any(|u| u.name == "bob"), "bob is in dev");

    // A draft in dev survives a visit to the lobby.
    interact(&mut app, |ui| {
        ui.click(selector::id(room::COMPOSER)).expect("composer");
        let _ = ui.typewrite("half a thought");
        ui.click("# lobby").expect("the lobby's tab");
    });
    let r = room_of(&app).expect("in the room");
    assert_eq!(r.shown_room(), None);
    assert_eq!(r.input(), "");
    assert!(shows_chat(r, "hello lobby") && !shows_chat(r, "hello dev"));
    interact(&mut app, |ui| {
        ui.click("# dev").expect("dev's tab");
    });
    let r = room_of(&app).expect("in the room");
    assert_eq!(r.shown_room(), Some("dev"));
    assert_eq!(r.input(), "half a thought");
    server.stop().expect("server stops");
}

//! Direct messages in the desktop client against a real server: a `dm`
//! shows in its conversation only (not in the room) and counts as unread
//! in the sidebar until the conversation is opened; a reply typed there
//! reaches the other member as a `dm`.
//!
//! The network worker is the real one; its stream is pumped here and fed
//! to `App::update`, as the iced subscription would. The other member is a
//! plain `chatcore::Client`.

use chatclient_iced::screen::login;
use chatclient_iced::screen::room::dms::DM_COMPOSER;
use chatcore::protocol::ServerMessage;
use iced_test::selector;

mod live;

use live::{answer, interact, pump_until, room_of, server, shows_chat, start_worker};

#[test]
fn a_dm_shows_in_its_conversation_only_and_counts_unread_until_opened() {
    let server = server();
    let mut app = live::app(&server, "dms");
    interact(&mut app, |ui| {
        ui.click(selector::id(login::NAME_INPUT))
            .expect("name field");
        let _ = ui.typewrite("alice");
        ui.click("Log in").expect("the button");
    });
    let events = start_worker(&app);
    pump_until(&mut app, &events, |_| true);

    let bob = chatcore::Client::connect_plain(server.local_addr(), "bob").expect("bob logs in");
    bob.sender().send_dm("alice", "psst").expect("dm");
    bob.send_chat("hello lobby").expect("chat in the lobby");
    pump_until(&mut app, &events, |r| shows_chat(r, "hello lobby"));
    pump_until(&mut app, &events, |r| {
        r.dm_tabs().iter().any(|t| t.name == "bob" && t.unread == 1)
    });
    let r = room_of(&app).expect("in the room");
    assert!(!shows_chat(r, "psst"), "the dm is not in the room");
    assert_eq!(r.shown_dm(), None);
    assert_eq!(r.dm_lines("bob").len(), 1);

    // Opened from the sidebar: shown, no longer counted.
    interact(&mut app, |ui| {
        ui.click("@ bob").expect("bob's conversation");
    });
    let r = room_of(&app).expect("in the room");
    assert_eq!(r.shown_dm(), Some("bob"));
    assert!(r.dm_tabs().iter().all(|t| t.unread == 0));

    // A reply typed in its pane is a dm to bob, shown once.
    interact(&mut app, |ui| {
        ui.click(selector::id(DM_COMPOSER)).expect("dm composer");
        let _ = ui.typewrite("hi bob");
    });
    // Send is enabled in the view drawn with the draft.
    interact(&mut app, |ui| {
        ui.click("Send").expect("send");
    });
    // Bob's own copy of "psst" comes first.
    let got = answer(
        &bob,
        |m| matches!(m, ServerMessage::Dm(d) if d.from == "alice"),
    );
    let ServerMessage::Dm(d) = got else {
        unreachable!("only a dm is answered")
    };
    assert_eq!((d.from.as_str(), d.text.as_str()), ("alice", "hi bob"));
    pump_until(&mut app, &events, |r| r.dm_lines("bob").len() == 2);
    let r = room_of(&app).expect("in the room");
    assert!(
        r.dm_lines("bob")
            .iter()
            .any(|l| l.text == "hi bob" && l.own)
    );
    assert!(!shows_chat(r, "hi bob"));
    server.stop().expect("server stops");
}

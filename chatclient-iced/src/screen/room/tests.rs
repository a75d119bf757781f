//! The room's update logic, without a server: events in, state and
//! queued commands out.

use std::time::Duration;

use chatcore::client::{FileKind, FileOffered, TransferEvent};
use chatcore::protocol::voice::{CallMember, VoiceState};
use chatcore::protocol::{
    Chat, ErrorCode, ErrorMsg, Joined, LeaveReason, Left, ServerMessage, UserInfo, Welcome,
};

use super::files::FileState;
use super::*;
use crate::net::Event as NetEvent;

const ME: u64 = 10;

fn welcome(name: &str, history: Vec<Chat>) -> Welcome {
    Welcome {
        registered: false,
        token: None,
        version: 1,
        name: name.into(),
        session: ME,
        users: vec![
            UserInfo {
                name: name.into(),
                session: ME,
            },
            UserInfo {
                name: "bob".into(),
                session: 20,
            },
        ],
        history,
        heartbeat_ms: 10_000,
        max_frame: 1 << 20,
        max_text: 4096,
    }
}

fn chat(id: u64, from: &str, session: u64, text: &str) -> Chat {
    Chat {
        room: None,
        id,
        from: from.into(),
        session,
        text: text.into(),
        ts: 1_700_000_000_000 + id as i64,
        reference: None,
    }
}

fn room() -> State {
    State::new(
        &welcome("alice", vec![]),
        "alice",
        "127.0.0.1:6789",
        "dl".into(),
    )
}

fn chats(s: &State) -> Vec<(String, bool)> {
    s.entries()
        .iter()
        .filter_map(|e| match e {
            Entry::Chat(c) => Some((c.text.clone(), c.own)),
            _ => None,
        })
        .collect()
}

fn server(s: &mut State, msg: ServerMessage) {
    let _ = s.on_net(NetEvent::Server(msg));
}

/// One step's result: its UI task and what it reported.
type Step = (Task<Message>, Option<super::Event>);

/// The commands a step asked of the network worker.
fn net(step: Step) -> Vec<Command> {
    step.1
        .and_then(|e| e.into_commands().0)
        .into_iter()
        .collect()
}

/// The commands a step asked of the audio worker.
fn audio(step: Step) -> Vec<crate::audio::Command> {
    step.1
        .and_then(|e| e.into_commands().1)
        .into_iter()
        .collect()
}

#[test]
fn enter_sends_the_typed_message_and_clears_the_composer() {
    let mut s = room();
    let _ = s.update(Message::InputChanged("hello".into()));
    assert_eq!(
        net(s.update(Message::Send)),
        vec![Command::Chat {
            text: "hello".into(),
            reference: 1
        }]
    );
    assert_eq!(s.input(), "");
    // The next message gets the next reference.
    let _ = s.update(Message::InputChanged("again".into()));
    assert!(matches!(
        net(s.update(Message::Send)).as_slice(),
        [Command::Chat { reference: 2, .. }]
    ));
}

#[test]
fn empty_and_blank_messages_are_not_sent() {
    let mut s = room();
    assert!(net(s.update(Message::Send)).is_empty());
    let _ = s.update(Message::InputChanged("   \t".into()));
    assert!(net(s.update(Message::Send)).is_empty());
    assert_eq!(s.input(), "   \t", "the composer is left as it was");
}

#[test]
fn clear_empties_the_composer_without_sending() {
    let mut s = room();
    let _ = s.update(Message::InputChanged("draft".into()));
    assert!(net(s.update(Message::Clear)).is_empty());
    assert_eq!(s.input(), "");
}

#[test]
fn our_own_messages_are_marked_and_others_are_not() {
    let mut s = room();
    server(&mut s, ServerMessage::Chat(chat(1, "alice", ME, "mine")));
    server(&mut s, ServerMessage::Chat(chat(2, "bob", 20, "theirs")));
    assert_eq!(
        chats(&s),
        vec![("mine".into(), true), ("theirs".into(), false)]
    );
}

#[test]
fn history_and_the_assigned_name_are_shown_after_login() {
    let s = State::new(
        &welcome("alice(1)", vec![chat(1, "bob", 20, "earlier")]),
        "alice",
        "x",
        "dl".into(),
    );
    assert_eq!(chats(&s), vec![("earlier".into(), false)]);
    assert_eq!(
        s.entries().first(),
        Some(&Entry::System(
            "You joined as alice(1) (alice was taken).".into()
        )),
        "the assigned name is shown"
    );
}

#[test]
fn a_server_notice_is_shown_as_a_line_of_its_own() {
    let mut s = room();
    server(
        &mut s,
        ServerMessage::Notice(chatcore::protocol::Notice {
            text: "restart at 22:00".into(),
            ts: 0,
        }),
    );
    assert!(
        s.entries().iter().any(
            |e| matches!(e, Entry::System(t) if t == "Notice from the server: restart at 22:00")
        ),
        "no notice line"
    );
    assert!(chats(&s).is_empty(), "a notice is not a chat");
}

#[test]
fn joins_leaves_and_timeouts_are_quiet_lines_and_update_the_user_list() {
    let mut s = room();
    server(
        &mut s,
        ServerMessage::Joined(Joined {
            name: "carol".into(),
            session: 30,
            ts: 0,
        }),
    );
    assert_eq!(s.users().len(), 3);
    // Sorted by name.
    let names: Vec<&str> = s.users().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    server(
        &mut s,
        ServerMessage::Left(Left {
            name: "carol".into(),
            session: 30,
            ts: 0,
            reason: LeaveReason::Timeout,
        }),
    );
    server(
        &mut s,
        ServerMessage::Left(Left {
            name: "bob".into(),
            session: 20,
            ts: 0,
            reason: LeaveReason::Quit,
        }),
    );
    assert_eq!(s.users().len(), 1);
    let system: Vec<&str> = s
        .entries()
        .iter()
        .filter_map(|e| match e {
            Entry::System(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        system,
        [
            "You joined as alice.",
            "carol joined",
            "carol timed out",
            "bob left"
        ]
    );
    // A repeated leave changes nothing and adds no line.
    let before = s.entries().len();
    server(
        &mut s,
        ServerMessage::Left(Left {
            name: "bob".into(),
            session: 20,
            ts: 0,
            reason: LeaveReason::Quit,
        }),
    );
    assert_eq!(s.entries().len(), before);
}

#[test]
fn a_refused_message_is_shown_in_place() {
    let mut s = room();
    server(
        &mut s,
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::RateLimited,
            message: "too many messages; slow down".into(),
            reference: Some(3),
            transfer: None,
        }),
    );
    assert!(matches!(
        s.entries().last(),
        Some(Entry::Error(e)) if e.contains("slow down")
    ));
}

#[test]
fn an_offer_becomes_a_card_and_accept_downloads_into_the_downloads_dir() {
    let mut s = room();
    server(
        &mut s,
        ServerMessage::FileOffer(FileOffered {
            room: None,
            to: None,
            transfer: 7,
            from: "bob".into(),
            session: 20,
            name: "report.pdf".into(),
            size: 3_000_000,
            sha256: vec![0; 32],
            kind: FileKind::File,
            ts: 0,
        }),
    );
    let Some(Entry::File(id)) = s.entries().last().cloned() else {
        panic!("the offer is not in the list");
    };
    assert_eq!(
        net(s.update(Message::Accept(7))),
        vec![Command::Accept {
            transfer: 7,
            dir: "dl".into()
        }]
    );
    let _ = s.on_net(NetEvent::Transfer(TransferEvent::DownloadProgress {
        transfer: 7,
        done: 1_000_000,
        total: 3_000_000,
    }));
    assert_eq!(
        s.files().get(id).map(|c| c.state.clone()),
        Some(FileState::Downloading {
            done: 1_000_000,
            total: 3_000_000
        })
    );
}

#[test]
fn decline_tells_the_server_and_marks_the_card() {
    let mut s = room();
    server(
        &mut s,
        ServerMessage::FileOffer(FileOffered {
            room: None,
            to: None,
            transfer: 8,
            from: "bob".into(),
            session: 20,
            name: "x".into(),
            size: 1,
            sha256: vec![0; 32],
            kind: FileKind::File,
            ts: 0,
        }),
    );
    assert_eq!(
        net(s.update(Message::Decline(8))),
        vec![Command::Decline(8)]
    );
    assert_eq!(
        s.files().by_transfer(8).map(|c| c.state.clone()),
        Some(FileState::Declined)
    );
}

#[test]
fn a_typed_path_offers_that_file_when_no_dialog_is_available() {
    let mut s = room();
    let _ = s.update(Message::Picked(None));
    let _ = s.update(Message::PathChanged(" /tmp/a.txt ".into()));
    let out = net(s.update(Message::SendPath));
    assert!(matches!(
        out.as_slice(),
        [Command::SendFile { path, .. }] if path.as_os_str() == "/tmp/a.txt"
    ));
    assert!(matches!(s.entries().last(), Some(Entry::File(_))));
}

#[test]
fn a_lost_connection_keeps_the_history_and_the_relogin_adds_only_new_messages() {
    let mut s = room();
    server(&mut s, ServerMessage::Chat(chat(1, "bob", 20, "before")));
    let _ = s.on_net(NetEvent::Disconnected {
        reason: "the server closed the connection".into(),
        retry_in: Duration::from_millis(500),
    });
    assert!(matches!(s.link(), Link::Lost { .. }));
    // Sending while disconnected keeps the text and says why.
    let _ = s.update(Message::InputChanged("queued?".into()));
    assert!(net(s.update(Message::Send)).is_empty());
    assert_eq!(s.input(), "queued?");
    let _ = s.on_net(NetEvent::Connecting { attempt: 1 });
    assert_eq!(s.link(), &Link::Connecting(1));
    // The server's history repeats "before" and adds one newer message.
    let _ = s.relogged(&welcome(
        "alice",
        vec![chat(1, "bob", 20, "before"), chat(2, "bob", 20, "after")],
    ));
    assert_eq!(s.link(), &Link::Online);
    assert_eq!(
        chats(&s),
        vec![("before".into(), false), ("after".into(), false)]
    );
    assert!(s.entries().iter().any(
        |e| matches!(e, Entry::System(t) if t.starts_with("Reconnected to 127.0.0.1:6789 as alice"))
    ));
}

#[test]
fn the_call_state_marks_members_in_the_user_list_state() {
    let mut s = room();
    server(
        &mut s,
        ServerMessage::VoiceState(VoiceState {
            room: None,
            ts: 0,
            members: vec![CallMember {
                session: 20,
                name: "bob".into(),
                muted: true,
                connected: true,
            }],
        }),
    );
    assert!(s.voice().member(20).is_some_and(|m| m.muted));
    assert!(s.voice().member(ME).is_none());
    // Controls stay inert until the device probe says audio works.
    assert!(net(s.update(Message::Voice(voice::Message::Join))).is_empty());
}

fn ready_room() -> State {
    let mut s = room();
    let _ = s.on_audio(crate::audio::Event::Probed(Ok(())));
    s
}

#[test]
fn a_recorded_voice_message_is_offered_with_kind_voice_and_a_card() {
    let mut s = ready_room();
    assert_eq!(
        audio(s.update(Message::Voice(voice::Message::Record))),
        vec![crate::audio::Command::Record]
    );
    let _ = s.on_audio(crate::audio::Event::Recorded {
        path: "/tmp/voice-1.ogg".into(),
        duration: Duration::from_secs(4),
        reached_limit: false,
    });
    let out = net(s.update(Message::Voice(voice::Message::Send)));
    let Some(Command::SendVoice { local, path, .. }) = out.first() else {
        panic!("a voice offer, got {out:?}");
    };
    assert_eq!(path, &std::path::PathBuf::from("/tmp/voice-1.ogg"));
    assert_eq!(s.files().get(*local).map(|c| c.kind), Some(FileKind::Voice));
    assert_eq!(s.voice().recorder.state, voice::Recording::Idle);
    // Our own message plays from its file.
    assert_eq!(
        audio(s.update(Message::Voice(voice::Message::Play(*local)))),
        vec![crate::audio::Command::Play {
            clip: crate::audio::ClipId(*local),
            path: "/tmp/voice-1.ogg".into()
        }]
    );
}

#[test]
fn play_on_a_received_voice_message_downloads_it_then_plays_it() {
    let mut s = ready_room();
    server(
        &mut s,
        ServerMessage::FileOffer(FileOffered {
            room: None,
            to: None,
            transfer: 77,
            from: "bob".into(),
            session: 20,
            name: "voice-x.ogg".into(),
            size: 20_000,
            sha256: vec![0; 32],
            kind: FileKind::Voice,
            ts: 0,
        }),
    );
    let card = s.files().by_transfer(77).map(|c| c.id).expect("card");
    let step = s.update(Message::Voice(voice::Message::Play(card)));
    assert_eq!(
        step.1.clone().and_then(|e| e.into_commands().0),
        Some(Command::Accept {
            transfer: 77,
            dir: "dl".into()
        })
    );
    assert!(audio(step).is_empty(), "not before it is saved");
    let saved = s.on_net(NetEvent::Transfer(TransferEvent::Saved {
        transfer: 77,
        path: "dl/voice-x.ogg".into(),
    }));
    assert_eq!(
        audio(saved),
        vec![crate::audio::Command::Play {
            clip: crate::audio::ClipId(card),
            path: "dl/voice-x.ogg".into()
        }]
    );
}

#[test]
fn a_new_call_key_reaches_the_running_engine_and_a_lost_connection_stops_it() {
    let mut s = ready_room();
    let _ = s.update(Message::Voice(voice::Message::Join));
    let joined = s.on_net(NetEvent::Server(ServerMessage::VoiceJoined(
        chatcore::protocol::voice::VoiceJoined {
            room: None,
            max_bitrate: None,
            session: ME,
            token: vec![1; 16],
            epoch: 4,
            key: vec![2; 32],
            port: 6790,
            keepalive_ms: 5000,
            timeout_ms: 15_000,
        },
    )));
    assert!(matches!(
        audio(joined).as_slice(),
        [crate::audio::Command::StartCall { server, .. }] if server == "127.0.0.1:6789"
    ));
    let _ = s.on_audio(crate::audio::Event::CallStarted(
        chatvoice::TransportKind::Tcp,
    ));
    // A member joined: the new key goes to the running engine.
    let rekeyed = s.on_net(NetEvent::Server(ServerMessage::VoiceKey(
        chatcore::protocol::voice::VoiceKey {
            epoch: 5,
            key: vec![9; 32],
        },
    )));
    assert_eq!(
        audio(rekeyed),
        vec![crate::audio::Command::CallKey {
            epoch: 5,
            key: vec![9; 32]
        }]
    );
    let lost = s.on_net(NetEvent::Disconnected {
        reason: "connection reset".into(),
        retry_in: Duration::from_millis(500),
    });
    assert_eq!(audio(lost), vec![crate::audio::Command::StopCall]);
    assert_eq!(s.voice().call.stage, voice::Stage::Idle);
}

#[test]
fn ten_thousand_messages_draw_only_a_bounded_window() {
    let mut s = room();
    for i in 0..10_000 {
        server(&mut s, ServerMessage::Chat(chat(i, "bob", 20, "x")));
    }
    let range = s.window().range(s.entries().len());
    assert!(range.len() <= scroll::WINDOW);
    assert_eq!(range.end, s.entries().len());
}

fn ids(s: &State) -> Vec<u64> {
    s.entries()
        .iter()
        .filter_map(|e| match e {
            Entry::Chat(c) => Some(c.id),
            _ => None,
        })
        .collect()
}

fn history(messages: Vec<Chat>, more: bool, before: Option<u64>) -> chatcore::protocol::History {
    chatcore::protocol::History {
        room: None,
        messages,
        more,
        before,
        after: None,
        gap: false,
    }
}

fn resume(after: u64, messages: Vec<Chat>, gap: bool) -> chatcore::protocol::History {
    chatcore::protocol::History {
        room: None,
        messages,
        more: gap,
        before: None,
        after: Some(after),
        gap,
    }
}

fn lose_connection(s: &mut State) {
    let _ = s.on_net(NetEvent::Disconnected {
        reason: "the server closed the connection".into(),
        retry_in: Duration::from_millis(500),
    });
}

fn bobs(range: std::ops::RangeInclusive<u64>) -> Vec<Chat> {
    range
        .map(|i| chat(i, "bob", 20, &format!("m{i}")))
        .collect()
}

#[test]
fn a_resume_puts_the_missed_messages_before_live_ones_without_duplicates_or_holes() {
    let mut s = room();
    for c in bobs(1..=2) {
        server(&mut s, ServerMessage::Chat(c));
    }
    lose_connection(&mut s);
    // The welcome's recent history does not reach back to 2: wait for the
    // resume frame; a live message comes first (a resume from the store).
    let _ = s.relogged(&welcome("alice", bobs(50..=52)));
    assert_eq!(ids(&s), vec![1, 2]);
    server(&mut s, ServerMessage::Chat(chat(53, "bob", 20, "live")));
    let step = s.on_net(NetEvent::Server(ServerMessage::History(resume(
        2,
        bobs(3..=52),
        false,
    ))));
    assert!(net(step).is_empty(), "no gap: nothing more to ask");
    assert_eq!(ids(&s), (1..=53).collect::<Vec<_>>());
}

#[test]
fn a_resume_gap_is_filled_by_paging_back_to_the_last_message_seen() {
    let mut s = room();
    server(&mut s, ServerMessage::Chat(chat(1, "bob", 20, "seen")));
    lose_connection(&mut s);
    let _ = s.relogged(&welcome("alice", bobs(48..=52)));
    let step = s.on_net(NetEvent::Server(ServerMessage::History(resume(
        1,
        bobs(43..=52),
        true,
    ))));
    assert_eq!(
        net(step),
        vec![Command::History {
            before: Some(43),
            limit: super::history::PAGE
        }]
    );
    let step = s.on_net(NetEvent::Server(ServerMessage::History(history(
        bobs(20..=42),
        true,
        Some(43),
    ))));
    assert_eq!(
        net(step),
        vec![Command::History {
            before: Some(20),
            limit: super::history::PAGE
        }]
    );
    let step = s.on_net(NetEvent::Server(ServerMessage::History(history(
        bobs(1..=19),
        false,
        Some(20),
    ))));
    assert!(net(step).is_empty());
    assert_eq!(
        ids(&s),
        (1..=52).collect::<Vec<_>>(),
        "every id once, in order"
    );
}

#[test]
fn a_welcome_that_reaches_back_is_merged_and_the_resume_adds_nothing() {
    let mut s = room();
    server(&mut s, ServerMessage::Chat(chat(1, "bob", 20, "before")));
    lose_connection(&mut s);
    let _ = s.relogged(&welcome("alice", bobs(1..=3)));
    assert_eq!(ids(&s), vec![1, 2, 3]);
    let _ = s.on_net(NetEvent::Server(ServerMessage::History(resume(
        1,
        bobs(2..=3),
        false,
    ))));
    assert_eq!(ids(&s), vec![1, 2, 3]);
}

#[test]
fn a_server_that_forgot_our_id_falls_back_to_its_welcome_history() {
    let mut s = room();
    server(&mut s, ServerMessage::Chat(chat(90, "bob", 20, "old")));
    lose_connection(&mut s);
    // Restarted without a store: ids start again at 1, newer times.
    let mut fresh = bobs(1..=2);
    for c in &mut fresh {
        c.ts += 1000;
    }
    let _ = s.relogged(&welcome("alice", fresh));
    server(
        &mut s,
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::UnknownMessage,
            message: "no message 90".into(),
            reference: None,
            transfer: None,
        }),
    );
    assert_eq!(ids(&s), vec![90, 1, 2]);
}

#[test]
fn load_earlier_asks_a_page_before_the_oldest_message_and_prepends_it_until_none_is_left() {
    let mut s = State::new(
        &welcome("alice", bobs(10..=11)),
        "alice",
        "127.0.0.1:6789",
        "dl".into(),
    );
    assert!(s.can_load_earlier());
    assert_eq!(
        net(s.update(Message::LoadEarlier)),
        vec![Command::History {
            before: Some(10),
            limit: super::history::PAGE
        }]
    );
    assert!(s.loading_earlier());
    assert!(
        net(s.update(Message::LoadEarlier)).is_empty(),
        "one page at a time"
    );
    server(
        &mut s,
        ServerMessage::History(history(bobs(5..=9), true, Some(10))),
    );
    assert_eq!(ids(&s), (5..=11).collect::<Vec<_>>());
    assert!(s.can_load_earlier());
    let _ = s.update(Message::LoadEarlier);
    server(
        &mut s,
        ServerMessage::History(history(bobs(1..=4), false, Some(5))),
    );
    assert_eq!(ids(&s), (1..=11).collect::<Vec<_>>());
    assert!(!s.can_load_earlier(), "the server has nothing older");
}

#[test]
fn welcome_history_of_chats_sharing_a_millisecond_is_shown_whole() {
    let mut same = bobs(1..=3);
    for c in &mut same {
        c.ts = 1_700_000_000_000;
    }
    let s = State::new(
        &welcome("alice", same),
        "alice",
        "127.0.0.1:6789",
        "dl".into(),
    );
    assert_eq!(ids(&s), vec![1, 2, 3]);
}

#[test]
fn scrolling_to_the_top_loads_the_previous_page_once_and_stops_when_the_server_has_no_more() {
    let mut s = State::new(
        &welcome("alice", bobs(10..=40)),
        "alice",
        "127.0.0.1:6789",
        "dl".into(),
    );
    // At the end (after the snap), then the reader scrolls up to the top.
    assert!(net(s.scrolled(3_000.0, 500.0, 2_500.0)).is_empty());
    assert!(net(s.scrolled(3_000.0, 500.0, 900.0)).is_empty());
    assert_eq!(
        net(s.scrolled(3_000.0, 500.0, 0.0)),
        vec![Command::History {
            before: Some(10),
            limit: super::history::PAGE
        }]
    );
    // Jiggling at the top while the page is on its way asks nothing more.
    assert!(net(s.scrolled(3_000.0, 500.0, 30.0)).is_empty());
    assert!(net(s.scrolled(3_000.0, 500.0, 0.0)).is_empty());
    server(
        &mut s,
        ServerMessage::History(history(bobs(1..=9), false, Some(10))),
    );
    assert_eq!(ids(&s), (1..=40).collect::<Vec<_>>());
    // The page went above: the next viewport (content grown by 900 px)
    // is scrolled back onto the message that was at the top.
    let _ = s.scrolled(3_900.0, 500.0, 0.0);
    assert!(!s.pane.keeper.keeping(), "the place was restored");
    // Up through the page to the very top: the server said there is no more.
    assert!(net(s.scrolled(3_900.0, 500.0, 400.0)).is_empty());
    assert!(net(s.scrolled(3_900.0, 500.0, 0.0)).is_empty());
    assert!(!s.can_load_earlier());
}

#[test]
fn scrolling_to_the_top_first_draws_the_local_entries_above_the_window() {
    let mut s = room();
    for i in 1..=400 {
        server(&mut s, ServerMessage::Chat(chat(i, "bob", 20, "x")));
    }
    let hidden = s.window().hidden_above(s.entries().len());
    assert!(hidden > 0);
    let _ = s.scrolled(8_000.0, 500.0, 7_500.0);
    let _ = s.scrolled(8_000.0, 500.0, 2_000.0);
    assert!(
        net(s.scrolled(8_000.0, 500.0, 0.0)).is_empty(),
        "no page: local ones first"
    );
    assert!(s.window().hidden_above(s.entries().len()) < hidden);
    assert!(s.pane.keeper.keeping(), "their place is kept once drawn");
}

// Named rooms and moderation (docs/protocol.md sections 23 and 24).

fn in_room(id: u64, room: &str, from: &str, session: u64, text: &str) -> Chat {
    Chat {
        room: Some(room.into()),
        ..chat(id, from, session, text)
    }
}

fn joined_room(room: &str, topic: &str, history: Vec<Chat>) -> ServerMessage {
    ServerMessage::RoomJoined(chatcore::protocol::RoomJoined {
        invite_only: false,
        room: room.into(),
        topic: topic.into(),
        users: vec![
            UserInfo {
                name: "alice".into(),
                session: ME,
            },
            UserInfo {
                name: "carol".into(),
                session: 30,
            },
        ],
        history,
    })
}

fn tabs(s: &State) -> Vec<(String, usize, bool)> {
    s.room_tabs()
        .into_iter()
        .map(|t| (t.name, t.unread, t.shown))
        .collect()
}

#[test]
fn a_joined_room_is_shown_with_its_members_topic_and_history_and_chats_elsewhere_count_unread() {
    let mut s = room();
    server(
        &mut s,
        ServerMessage::Chat(chat(1, "bob", 20, "in the lobby")),
    );
    let _ = s.update(Message::JoinInputChanged(" #dev ".into()));
    assert_eq!(
        net(s.update(Message::JoinTyped)),
        vec![Command::Join("dev".into())]
    );
    server(
        &mut s,
        joined_room(
            "dev",
            "ship it",
            vec![in_room(2, "dev", "carol", 30, "old")],
        ),
    );
    assert_eq!(s.shown_room(), Some("dev"));
    assert_eq!(s.topic(), "ship it");
    assert_eq!(chats(&s), vec![("old".to_owned(), false)]);
    let names: Vec<&str> = s.users().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        ["alice", "carol"],
        "the room's members, not the lobby's"
    );
    // A lobby chat while dev is shown: not in dev, counted on the lobby.
    server(
        &mut s,
        ServerMessage::Chat(chat(3, "bob", 20, "lobby again")),
    );
    server(
        &mut s,
        ServerMessage::Chat(in_room(4, "dev", "carol", 30, "dev news")),
    );
    assert_eq!(chats(&s).len(), 2);
    assert_eq!(
        tabs(&s),
        vec![("lobby".into(), 1, false), ("dev".into(), 0, true)]
    );
    let _ = s.update(Message::ShowRoom(None));
    assert_eq!(
        chats(&s),
        vec![
            ("in the lobby".to_owned(), false),
            ("lobby again".to_owned(), false)
        ]
    );
    assert_eq!(tabs(&s)[0].1, 0, "shown: read");
}

#[test]
fn switching_rooms_keeps_each_rooms_draft_and_sends_to_the_shown_room() {
    let mut s = room();
    server(&mut s, joined_room("dev", "", vec![]));
    let _ = s.update(Message::InputChanged("half a thought".into()));
    let _ = s.update(Message::ShowRoom(None));
    assert_eq!(s.input(), "", "the lobby has its own draft");
    let _ = s.update(Message::InputChanged("lobby draft".into()));
    let _ = s.update(Message::ShowRoom(Some("dev".into())));
    assert_eq!(s.input(), "half a thought");
    assert_eq!(
        net(s.update(Message::Send)),
        vec![Command::ChatIn {
            room: "dev".into(),
            text: "half a thought".into(),
            reference: 1
        }]
    );
    let _ = s.update(Message::ShowRoom(None));
    assert_eq!(s.input(), "lobby draft");
    assert!(matches!(
        net(s.update(Message::Send)).as_slice(),
        [Command::Chat { .. }]
    ));
}

#[test]
fn a_named_rooms_presence_changes_only_its_member_list() {
    let mut s = room();
    server(&mut s, joined_room("dev", "", vec![]));
    server(
        &mut s,
        ServerMessage::Presence(chatcore::protocol::Presence {
            ts: 1,
            joined: vec![UserInfo {
                name: "dave".into(),
                session: 40,
            }],
            left: vec![],
            room: Some("dev".into()),
        }),
    );
    assert_eq!(s.users().len(), 3);
    assert!(matches!(s.entries().last(), Some(Entry::System(l)) if l == "dave joined"));
    let _ = s.update(Message::ShowRoom(None));
    let names: Vec<&str> = s.users().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
}

#[test]
fn load_earlier_in_a_named_room_asks_that_rooms_history() {
    let mut s = room();
    server(
        &mut s,
        joined_room("dev", "", vec![in_room(50, "dev", "carol", 30, "x")]),
    );
    assert_eq!(
        net(s.update(Message::LoadEarlier)),
        vec![Command::HistoryIn {
            room: "dev".into(),
            before: Some(50),
            limit: history::PAGE
        }]
    );
    let mut page = history(
        vec![in_room(7, "dev", "carol", 30, "older")],
        false,
        Some(50),
    );
    page.room = Some("dev".into());
    let _ = s.update(Message::ShowRoom(None));
    server(&mut s, ServerMessage::History(page));
    assert!(chats(&s).is_empty(), "the page went to dev, not the lobby");
    let _ = s.update(Message::ShowRoom(Some("dev".into())));
    assert_eq!(chats(&s)[0].0, "older");
}

#[test]
fn a_reconnect_joins_the_named_rooms_again_without_duplicating_their_history() {
    let mut s = room();
    server(
        &mut s,
        joined_room("dev", "", vec![in_room(5, "dev", "carol", 30, "a")]),
    );
    lose_connection(&mut s);
    let step = s.relogged(&welcome("alice", vec![]));
    let commands: Vec<Command> = step
        .1
        .map(|e| e.flatten())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.into_commands().0)
        .collect();
    assert!(commands.contains(&Command::Rejoin(vec!["dev".into()])));
    server(
        &mut s,
        joined_room(
            "dev",
            "",
            vec![
                in_room(5, "dev", "carol", 30, "a"),
                in_room(9, "dev", "carol", 30, "b"),
            ],
        ),
    );
    assert_eq!(s.shown_room(), Some("dev"));
    let texts: Vec<String> = chats(&s).into_iter().map(|c| c.0).collect();
    assert_eq!(texts, ["a", "b"]);
}

#[test]
fn leaving_the_shown_room_shows_the_lobby_and_drops_the_room() {
    let mut s = room();
    server(&mut s, joined_room("dev", "", vec![]));
    assert_eq!(
        net(s.update(Message::Part("dev".into()))),
        vec![Command::Part("dev".into())]
    );
    server(
        &mut s,
        ServerMessage::RoomParted(chatcore::protocol::RoomName { room: "dev".into() }),
    );
    assert_eq!(s.shown_room(), None);
    assert_eq!(tabs(&s), vec![("lobby".into(), 0, true)]);
    // Chats of a room we left are not shown anywhere.
    server(
        &mut s,
        ServerMessage::Chat(in_room(9, "dev", "carol", 30, "late")),
    );
    assert!(chats(&s).is_empty());
}

#[test]
fn browsing_lists_the_servers_rooms_and_names_the_default_room() {
    let mut s = room();
    assert_eq!(
        net(s.update(Message::BrowseRooms)),
        vec![Command::ListRooms]
    );
    assert_eq!(s.browse().map(<[_]>::len), Some(0), "open, waiting");
    let info = |room: &str, members, default| chatcore::protocol::RoomInfo {
        invite_only: false,
        room: room.into(),
        topic: String::new(),
        members,
        default,
    };
    server(
        &mut s,
        ServerMessage::RoomList(chatcore::protocol::RoomList {
            rooms: vec![info("hall", 3, true), info("dev", 2, false)],
        }),
    );
    assert_eq!(s.browse().map(<[_]>::len), Some(2));
    assert_eq!(tabs(&s)[0].0, "hall");
    assert_eq!(
        net(s.update(Message::Join("dev".into()))),
        vec![Command::Join("dev".into())]
    );
    assert!(
        net(s.update(Message::Join("hall".into()))).is_empty(),
        "already there"
    );
}

#[test]
fn the_topic_is_edited_with_set_topic_and_its_change_is_shown() {
    let mut s = room();
    server(&mut s, joined_room("dev", "", vec![]));
    let _ = s.update(Message::EditTopic);
    let _ = s.update(Message::TopicChanged(" release friday ".into()));
    assert_eq!(
        net(s.update(Message::SaveTopic)),
        vec![Command::Topic {
            room: "dev".into(),
            topic: "release friday".into()
        }]
    );
    server(
        &mut s,
        ServerMessage::Topic(chatcore::protocol::Topic {
            room: "dev".into(),
            topic: "release friday".into(),
            by: "alice".into(),
            ts: 1,
        }),
    );
    assert_eq!(s.topic(), "release friday");
    assert!(matches!(s.entries().last(), Some(Entry::System(l)) if l.contains("set the topic")));
}

#[test]
fn member_and_message_actions_send_moderation_requests_for_the_shown_room() {
    let mut s = room();
    server(
        &mut s,
        joined_room("dev", "", vec![in_room(5, "dev", "carol", 30, "spam")]),
    );
    let carol = UserInfo {
        name: "carol".into(),
        session: 30,
    };
    let _ = s.update(Message::SelectMember(carol));
    let sent = net(s.update(Message::Moderate(rooms::Action::Kick)));
    assert_eq!(
        sent,
        vec![Command::Moderate(chatcore::protocol::ClientMessage::Kick(
            chatcore::protocol::Moderate {
                name: "carol".into(),
                room: Some("dev".into()),
                minutes: None,
                reason: None,
            }
        ))]
    );
    assert!(s.selected().is_none());
    let _ = s.update(Message::SelectChat(5));
    assert_eq!(
        net(s.update(Message::DeleteChat)),
        vec![Command::Moderate(
            chatcore::protocol::ClientMessage::Delete(chatcore::protocol::Delete {
                id: 5,
                room: Some("dev".into())
            })
        )]
    );
}

#[test]
fn moderated_notices_go_to_their_room_deleted_chats_vanish_and_refusals_are_plain() {
    let mut s = room();
    server(&mut s, ServerMessage::Chat(chat(1, "bob", 20, "keep")));
    server(
        &mut s,
        joined_room("dev", "", vec![in_room(5, "dev", "carol", 30, "spam")]),
    );
    server(
        &mut s,
        ServerMessage::Moderated(chatcore::protocol::Moderated {
            action: "mute".into(),
            name: "carol".into(),
            by: "alice".into(),
            room: Some("dev".into()),
            reason: Some("spam".into()),
            until: None,
            role: None,
            ts: 1,
        }),
    );
    assert!(matches!(
        s.entries().last(),
        Some(Entry::System(l)) if l == "carol was muted by alice: spam."
    ));
    server(
        &mut s,
        ServerMessage::Deleted(chatcore::protocol::Deleted {
            id: 5,
            room: Some("dev".into()),
            by: "alice".into(),
        }),
    );
    assert!(chats(&s).is_empty());
    server(
        &mut s,
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::Forbidden,
            message: "only a moderator may do this".into(),
            reference: None,
            transfer: None,
        }),
    );
    assert!(matches!(
        s.entries().last(),
        Some(Entry::Error(l)) if l.starts_with("Not allowed: only a moderator") && l.ends_with("(forbidden)")
    ));
    let _ = s.update(Message::ShowRoom(None));
    assert_eq!(chats(&s), vec![("keep".to_owned(), false)]);
    assert!(
        !s.entries()
            .iter()
            .any(|e| matches!(e, Entry::System(l) if l.contains("muted")))
    );
}

#[test]
fn a_room_joined_without_history_offers_no_earlier_messages() {
    let mut s = room();
    server(&mut s, joined_room("new", "", vec![]));
    server(
        &mut s,
        ServerMessage::Chat(in_room(90, "new", "carol", 30, "first")),
    );
    assert!(!s.can_load_earlier(), "nothing was said before we came");
    assert!(net(s.update(Message::LoadEarlier)).is_empty());
}

#[test]
fn a_server_that_forgot_our_id_falls_back_even_while_a_named_room_is_shown() {
    let mut s = room();
    server(&mut s, ServerMessage::Chat(chat(5, "bob", 20, "before")));
    server(&mut s, joined_room("dev", "", vec![]));
    lose_connection(&mut s);
    // Restarted without a store: ids start again at 1, newer times.
    let mut fresh = chat(1, "bob", 20, "after restart");
    fresh.ts += 1000;
    let _ = s.relogged(&welcome("alice", vec![fresh]));
    server(
        &mut s,
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::UnknownMessage,
            message: "unknown last_seen".into(),
            reference: None,
            transfer: None,
        }),
    );
    assert!(
        !s.entries().iter().any(|e| matches!(e, Entry::Error(_))),
        "not an error in dev"
    );
    let _ = s.update(Message::ShowRoom(None));
    assert!(chats(&s).iter().any(|c| c.0 == "after restart"));
}

fn dm(id: u64, from: &str, to: &str, text: &str, reference: Option<u64>) -> chatcore::protocol::Dm {
    chatcore::protocol::Dm {
        id,
        from: from.into(),
        session: if from == "alice" { ME } else { 20 },
        to: to.into(),
        text: text.into(),
        ts: 1_700_000_000_000 + id as i64,
        reference,
    }
}

fn dm_texts(s: &State, with: &str) -> Vec<(String, bool)> {
    s.dm_lines(with)
        .iter()
        .map(|l| (l.text.clone(), l.own))
        .collect()
}

fn dm_unread(s: &State, with: &str) -> u64 {
    s.dm_tabs()
        .iter()
        .find(|t| t.name == with)
        .map_or(0, |t| t.unread)
}

fn registered_room() -> State {
    let mut w = welcome("alice", vec![]);
    w.registered = true;
    State::new(&w, "alice", "127.0.0.1:6789", "dl".into())
}

#[test]
fn a_received_dm_goes_to_its_conversation_only_and_counts_unread_until_shown() {
    let mut s = registered_room();
    server(
        &mut s,
        ServerMessage::Dm(dm(7, "bob", "alice", "psst", None)),
    );
    assert_eq!(dm_texts(&s, "bob"), [("psst".to_owned(), false)]);
    assert!(chats(&s).is_empty(), "not in the room");
    assert_eq!(dm_unread(&s, "bob"), 1);
    let asked = s.update(Message::ShowDm("bob".into()));
    let commands: Vec<Command> = asked
        .1
        .map(super::Event::flatten)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.into_commands().0)
        .collect();
    assert_eq!(
        commands,
        [
            Command::DmHistory {
                with: "bob".into(),
                before: None,
                limit: 50
            },
            Command::DmRead {
                with: "bob".into(),
                id: 7
            },
        ]
    );
    assert_eq!(s.shown_dm(), Some("bob"));
    assert_eq!(dm_unread(&s, "bob"), 0);
    // Shown: a new one is marked read at once and counts nothing.
    let step = s.on_net(NetEvent::Server(ServerMessage::Dm(dm(
        9, "bob", "alice", "again", None,
    ))));
    assert_eq!(
        net(step),
        [Command::DmRead {
            with: "bob".into(),
            id: 9
        }]
    );
    assert_eq!(dm_unread(&s, "bob"), 0);
}

#[test]
fn typed_text_in_a_dm_pane_is_sent_as_a_dm_and_our_copy_is_shown_once() {
    let mut s = room();
    let _ = s.update(Message::MessageMember("bob".into()));
    let _ = s.update(Message::DmInputChanged("hello bob".into()));
    let sent = net(s.update(Message::DmSend));
    let [
        Command::Dm {
            to,
            text,
            reference,
        },
    ] = sent.as_slice()
    else {
        panic!("one dm: {sent:?}");
    };
    assert_eq!((to.as_str(), text.as_str()), ("bob", "hello bob"));
    let copy = dm(11, "alice", "bob", "hello bob", Some(*reference));
    server(&mut s, ServerMessage::Dm(copy.clone()));
    server(&mut s, ServerMessage::Dm(copy));
    assert_eq!(dm_texts(&s, "bob"), [("hello bob".to_owned(), true)]);
    assert!(chats(&s).is_empty(), "the room saw nothing");
}

#[test]
fn a_guest_fetches_no_dm_history_and_an_account_required_answer_stays_quiet() {
    let mut s = room();
    let commands = net(s.update(Message::ShowDm("bob".into())));
    assert!(commands.is_empty(), "a guest has no stored conversations");
    // A login the server does not count as registered after all.
    let mut s = registered_room();
    let commands = net(s.update(Message::ShowDm("bob".into())));
    assert!(matches!(commands.as_slice(), [Command::DmHistory { .. }]));
    server(
        &mut s,
        ServerMessage::Error(ErrorMsg {
            room: None,
            code: ErrorCode::AccountRequired,
            message: "log in with a registered name".into(),
            reference: None,
            transfer: None,
        }),
    );
    assert!(!s.entries().iter().any(|e| matches!(e, Entry::Error(_))));
}

#[test]
fn dm_unread_after_login_lists_conversations_with_their_counts() {
    let mut s = registered_room();
    server(
        &mut s,
        ServerMessage::DmUnread(chatcore::protocol::DmUnread {
            conversations: vec![chatcore::protocol::DmUnreadEntry {
                with: "carol".into(),
                count: 3,
                last_id: 42,
            }],
        }),
    );
    assert_eq!(dm_unread(&s, "carol"), 3);
    let history = chatcore::protocol::DmHistory {
        with: "carol".into(),
        messages: vec![
            dm(40, "carol", "alice", "one", None),
            dm(42, "carol", "alice", "two", None),
        ],
        more: false,
        before: None,
    };
    let _ = s.update(Message::ShowDm("carol".into()));
    server(&mut s, ServerMessage::DmHistory(history));
    assert_eq!(
        dm_texts(&s, "carol"),
        [("one".to_owned(), false), ("two".to_owned(), false)]
    );
    // Back to the room: the conversation keeps no count.
    let _ = s.update(Message::ShowRoom(None));
    assert_eq!(s.shown_dm(), None);
    assert_eq!(dm_unread(&s, "carol"), 0);
}

#[test]
fn room_chats_under_a_shown_dm_count_as_unread_until_the_room_is_shown() {
    let mut s = room();
    let _ = s.update(Message::ShowDm("bob".into()));
    server(
        &mut s,
        ServerMessage::Chat(chat(3, "bob", 20, "in the lobby")),
    );
    assert_eq!(s.room_tabs()[0].unread, 1);
    let _ = s.update(Message::ShowRoom(None));
    assert_eq!(s.shown_dm(), None);
    assert_eq!(s.room_tabs()[0].unread, 0);
    assert!(chats(&s).iter().any(|c| c.0 == "in the lobby"));
}

#[test]
fn a_file_sent_from_a_room_is_offered_in_it_and_from_a_conversation_to_its_member() {
    use chatcore::client::OfferTo;
    let mut s = room();
    let send = |s: &mut State| {
        let _ = s.update(Message::Picked(None));
        let _ = s.update(Message::PathChanged("/tmp/a.txt".into()));
        net(s.update(Message::SendPath))
    };
    assert!(matches!(
        send(&mut s).as_slice(),
        [Command::SendFile {
            to: OfferTo::DefaultRoom,
            ..
        }]
    ));
    server(&mut s, joined_room("dev", "", vec![]));
    assert!(matches!(
        send(&mut s).as_slice(),
        [Command::SendFile { to: OfferTo::Room(r), .. }] if r == "dev"
    ));
    let _ = s.update(Message::ShowDm("bob".into()));
    assert!(matches!(
        send(&mut s).as_slice(),
        [Command::SendFile { to: OfferTo::Member(m), .. }] if m == "bob"
    ));
}

#[test]
fn a_rooms_offer_is_a_card_in_that_rooms_pane_and_a_direct_one_says_so() {
    let mut s = room();
    server(&mut s, joined_room("dev", "", vec![]));
    let _ = s.update(Message::ShowRoom(None));
    let offer = |transfer, room: Option<&str>, to: Option<&str>| {
        ServerMessage::FileOffer(FileOffered {
            transfer,
            from: "carol".into(),
            session: 30,
            name: "plan.txt".into(),
            size: 8,
            sha256: vec![0; 32],
            kind: FileKind::File,
            ts: 1_700_000_000_000,
            room: room.map(str::to_owned),
            to: to.map(str::to_owned),
        })
    };
    let cards = |s: &State| {
        s.entries()
            .iter()
            .filter(|e| matches!(e, Entry::File(_)))
            .count()
    };
    server(&mut s, offer(1, Some("dev"), None));
    assert_eq!(cards(&s), 0, "not in the default room's pane");
    let _ = s.update(Message::ShowRoom(Some("dev".into())));
    assert_eq!(cards(&s), 1, "in dev's");
    let _ = s.update(Message::ShowRoom(None));
    server(&mut s, offer(2, None, Some("alice")));
    assert_eq!(cards(&s), 1);
    assert!(
        s.entries()
            .iter()
            .any(|e| matches!(e, Entry::System(l) if l == "carol offers you a file privately:"))
    );
}

#[test]
fn joining_the_call_in_a_named_room_joins_that_rooms_call_and_other_calls_are_not_shown() {
    let mut s = ready_room();
    server(&mut s, joined_room("dev", "", vec![]));
    assert_eq!(
        net(s.update(Message::Voice(voice::Message::Join))),
        vec![Command::VoiceJoinIn("dev".into())]
    );
    let state = |room: Option<&str>, session| {
        ServerMessage::VoiceState(VoiceState {
            ts: 1,
            members: vec![CallMember {
                session,
                name: "x".into(),
                muted: false,
                connected: true,
            }],
            room: room.map(str::to_owned),
        })
    };
    server(&mut s, state(None, 20));
    assert!(
        s.voice().member(20).is_none(),
        "the default room's call is not ours"
    );
    server(&mut s, state(Some("dev"), 30));
    assert!(s.voice().member(30).is_some(), "dev's call is");
}

#[test]
fn owners_set_roles_and_a_private_room_is_created_toggled_and_invited_to() {
    use chatcore::protocol::{ClientMessage, Invite, RoomMode, SetRole};
    let mut s = room();
    let _ = s.update(Message::JoinPrivateToggled(true));
    let _ = s.update(Message::JoinInputChanged("#secret".into()));
    assert_eq!(
        net(s.update(Message::JoinTyped)),
        vec![Command::CreatePrivate("secret".into())]
    );
    server(&mut s, joined_room("secret", "", vec![]));
    let carol = UserInfo {
        name: "carol".into(),
        session: 30,
    };
    let _ = s.update(Message::SelectMember(carol));
    assert_eq!(
        net(s.update(Message::Moderate(rooms::Action::Promote))),
        vec![Command::Moderate(ClientMessage::SetRole(SetRole {
            name: "carol".into(),
            room: Some("secret".into()),
            role: "moderator".into(),
        }))]
    );
    let _ = s.update(Message::InviteInputChanged(" dave ".into()));
    assert_eq!(
        net(s.update(Message::InviteTyped)),
        vec![Command::Moderate(ClientMessage::Invite(Invite {
            room: "secret".into(),
            name: Some("dave".into()),
            by: None,
        }))]
    );
    assert_eq!(
        net(s.update(Message::SetPrivate(true))),
        vec![Command::Moderate(ClientMessage::RoomMode(RoomMode {
            room: "secret".into(),
            invite_only: true,
            by: None,
        }))]
    );
    server(
        &mut s,
        ServerMessage::RoomMode(RoomMode {
            room: "secret".into(),
            invite_only: true,
            by: Some("alice".into()),
        }),
    );
    assert!(s.pane.invite_only);
    assert!(matches!(s.entries().last(), Some(Entry::System(l)) if l.contains("invite-only")));
}

#[test]
fn load_earlier_in_a_conversation_asks_the_page_before_its_oldest_message() {
    let mut s = registered_room();
    let _ = s.update(Message::ShowDm("carol".into()));
    server(
        &mut s,
        ServerMessage::DmHistory(chatcore::protocol::DmHistory {
            with: "carol".into(),
            messages: vec![dm(40, "carol", "alice", "newer", None)],
            more: true,
            before: None,
        }),
    );
    assert_eq!(
        net(s.update(Message::DmLoadEarlier)),
        vec![Command::DmHistory {
            with: "carol".into(),
            before: Some(40),
            limit: 50,
        }]
    );
    server(
        &mut s,
        ServerMessage::DmHistory(chatcore::protocol::DmHistory {
            with: "carol".into(),
            messages: vec![dm(12, "carol", "alice", "older", None)],
            more: false,
            before: Some(40),
        }),
    );
    assert_eq!(
        dm_texts(&s, "carol"),
        [("older".to_owned(), false), ("newer".to_owned(), false)]
    );
    assert!(
        net(s.update(Message::DmLoadEarlier)).is_empty(),
        "nothing older"
    );
}

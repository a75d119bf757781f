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
    let Some(Command::SendVoice { local, path }) = out.first() else {
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
    assert!(!s.keeper.keeping(), "the place was restored");
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
    assert!(s.keeper.keeping(), "their place is kept once drawn");
}

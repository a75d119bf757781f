//! Name rules over a real server (docs/protocol.md section 10): look-alike
//! names are refused or, when they merely look like a name in use, get a
//! suffix like a duplicate does.

mod common;

use chatcore::protocol::{ErrorCode, ServerMessage};
use common::{Raw, start, test_config};

/// Sends `hello(name)` and returns the error frame's code and message.
fn refusal(c: &mut Raw, name: &str) -> (ErrorCode, String) {
    c.hello(name);
    match c.until(|m| matches!(m, ServerMessage::Error(_))) {
        ServerMessage::Error(e) => (e.code, e.message),
        _ => unreachable!(),
    }
}

#[test]
fn invisible_tag_bidi_and_blank_names_are_refused_as_name_invalid() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (_alice, w) = Raw::login(addr, "alice");
    assert_eq!(w.name, "alice");
    let cases: [(&str, &str); 12] = [
        ("zero-width space", "al\u{200B}ice"),
        ("zero-width joiner", "alice\u{200D}"),
        ("zero-width non-joiner", "\u{200C}alice"),
        ("word joiner", "ali\u{2060}ce"),
        ("tag characters", "alice\u{E0061}\u{E0062}\u{E007F}"),
        ("arabic letter mark", "alice\u{061C}"),
        ("right-to-left override", "\u{202E}ecila"),
        ("first strong isolate", "alice\u{2068}"),
        ("only hangul filler", "\u{3164}"),
        ("only braille blank", "\u{2800}\u{2800}"),
        ("hangul filler after a name", "alice\u{3164}"),
        ("byte order mark", "\u{FEFF}alice"),
    ];
    let mut c = Raw::connect(addr);
    for (what, name) in cases {
        let (code, message) = refusal(&mut c, name);
        assert_eq!(code, ErrorCode::NameInvalid, "{what}");
        assert!(message.contains("U+"), "{what}: {message}");
        assert!(
            !message.chars().any(|m| name.contains(m) && !m.is_ascii()),
            "{what}: the message repeats the refused character: {message:?}"
        );
    }
    // The connection is still usable: a clean name gets in.
    c.hello("carol");
    match c.until(|m| matches!(m, ServerMessage::Welcome(_))) {
        ServerMessage::Welcome(w) => assert_eq!(w.name, "carol"),
        _ => unreachable!(),
    }
}

#[test]
fn cyrillic_and_greek_homoglyphs_mixed_into_a_latin_name_are_refused() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (_alice, _) = Raw::login(addr, "alice");
    let mut c = Raw::connect(addr);
    for name in [
        "\u{430}lice",    // Cyrillic а
        "alic\u{435}",    // Cyrillic е
        "\u{3B1}lice",    // Greek α
        "b\u{3BF}b",      // Greek ο
        "\u{430}\u{3BF}", // Cyrillic with Greek
    ] {
        let (code, message) = refusal(&mut c, name);
        assert_eq!(code, ErrorCode::NameInvalid, "{name:?}");
        assert!(message.contains("scripts"), "{name:?}: {message}");
    }
}

#[test]
fn a_single_script_look_alike_of_an_online_name_gets_a_suffix() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (_alice, w) = Raw::login(addr, "alice");
    assert_eq!(w.name, "alice");
    // All Cyrillic: а ӏ і с е. Same skeleton as "alice".
    let cyrillic = "\u{430}\u{4CF}\u{456}\u{441}\u{435}";
    let (_fake, w) = Raw::login(addr, cyrillic);
    assert_eq!(w.name, format!("{cyrillic}(1)"));
    // Capital I for small l, and the plain duplicate: the next free suffixes.
    let (_fake2, w) = Raw::login(addr, "aIice");
    assert_eq!(w.name, "aIice(2)");
    let (_dup, w) = Raw::login(addr, "alice");
    assert_eq!(w.name, "alice(3)");
    // Different skeletons are different names.
    let (_bob, w) = Raw::login(addr, "Alice");
    assert_eq!(w.name, "Alice");
}

#[test]
fn a_look_alike_name_is_free_again_once_its_holder_left() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (alice, _) = Raw::login(addr, "alice");
    let (mut watcher, _) = Raw::login(addr, "watcher");
    let session = server
        .handle()
        .users()
        .expect("users")
        .iter()
        .find(|u| u.name == "alice")
        .map(|u| u.session)
        .expect("alice is in");
    drop(alice);
    watcher.until_left(session);
    let cyrillic = "\u{430}\u{4CF}\u{456}\u{441}\u{435}";
    let (_fake, w) = Raw::login(addr, cyrillic);
    assert_eq!(w.name, cyrillic);
    let (_real, w) = Raw::login(addr, "alice");
    assert_eq!(w.name, "alice(1)");
}

#[test]
fn names_are_stored_in_nfc_form() {
    let server = start(test_config());
    let addr = server.local_addr();
    let (_a, w) = Raw::login(addr, "Zoe\u{308}");
    assert_eq!(w.name, "Zo\u{EB}");
    // The precomposed spelling is the same name: it gets a suffix.
    let (_b, w) = Raw::login(addr, "Zo\u{EB}");
    assert_eq!(w.name, "Zo\u{EB}(1)");
}

#[test]
fn names_in_other_scripts_and_with_punctuation_still_get_in() {
    let server = start(test_config());
    let addr = server.local_addr();
    let mut held = Vec::new();
    for name in [
        "Иван",
        "Αλέξης",
        "山田 太郎",
        "Tanaka 田中 たなか",
        "bob, carol, dave",
        "🙂",
    ] {
        let (c, w) = Raw::login(addr, name);
        assert_eq!(w.name, name);
        held.push(c);
    }
}

use std::path::Path;

use super::*;

/// The receiver's scheme at the full length limit.
fn sanitize_file_name(name: &str) -> String {
    sanitize(name, MAX_FILE_NAME)
}

// The server's check.

#[test]
fn path_tricks_device_names_and_oversize_names_are_refused() {
    assert!(check("report.pdf").is_ok());
    assert!(check("..hidden but fine").is_ok());
    for bad in [
        "",
        "  ",
        ".",
        "..",
        "../../etc/passwd",
        "a\\b",
        "x\ny",
        "con",
        "CON.txt",
        "nul",
    ] {
        assert_eq!(
            check(bad).map_err(FileNameError::code),
            Err(ErrorCode::FileNameInvalid),
            "{bad:?}"
        );
    }
    assert_eq!(
        check(&"x".repeat(4096)).map_err(FileNameError::code),
        Err(ErrorCode::FileNameTooLong)
    );
}

#[test]
fn the_checks_run_in_the_documented_order() {
    // 17.9: length, blank, dots, separators, control characters, devices.
    let long_and_bad = format!("con/{}\n", "x".repeat(300));
    assert_eq!(check(&long_and_bad), Err(FileNameError::TooLong));
    assert_eq!(check(" \t "), Err(FileNameError::Empty));
    assert_eq!(check(".."), Err(FileNameError::Dots));
    assert_eq!(check("con/\n"), Err(FileNameError::PathSeparator));
    assert_eq!(check("con\n"), Err(FileNameError::ControlCharacter));
    assert_eq!(check("con"), Err(FileNameError::ReservedDevice));
    assert_eq!(check(&"x".repeat(MAX_FILE_NAME)), Ok(()));
}

#[test]
fn console_and_superscript_device_names_are_refused_too() {
    for bad in [
        "CONIN$",
        "conout$.txt",
        "ConOut$ .log",
        "com\u{b9}",
        "COM\u{b2}.txt",
        "lpt\u{b3}.tar.gz",
        "LPT9",
        "Com1 .log",
    ] {
        assert_eq!(check(bad), Err(FileNameError::ReservedDevice), "{bad:?}");
    }
    for fine in [
        "console.txt",
        ".con",
        "con1",
        "com0",
        "com10",
        "com\u{b9}0",
        "lpt\u{2074}",
        "conin",
        "conin$x",
        "x.con",
    ] {
        assert_eq!(check(fine), Ok(()), "{fine:?}");
    }
}

#[test]
fn error_messages_are_the_ones_displayed() {
    for e in [
        FileNameError::TooLong,
        FileNameError::Empty,
        FileNameError::Dots,
        FileNameError::PathSeparator,
        FileNameError::ControlCharacter,
        FileNameError::ReservedDevice,
    ] {
        assert_eq!(e.to_string(), e.message());
    }
}

// The receiver's scheme.

#[test]
fn path_tricks_become_plain_names() {
    assert_eq!(sanitize_file_name("../../etc/passwd"), "_.._etc_passwd");
    assert_eq!(sanitize_file_name("..\\..\\boot.ini"), "_.._boot.ini");
    assert_eq!(sanitize_file_name("/etc/passwd"), "_etc_passwd");
    assert_eq!(sanitize_file_name("."), "file");
    assert_eq!(sanitize_file_name(".."), "file");
    assert_eq!(sanitize_file_name("..."), "file");
    assert_eq!(sanitize_file_name(".bashrc"), "bashrc");
    assert_eq!(sanitize_file_name("C:evil"), "C_evil");
    assert_eq!(sanitize_file_name("report. . "), "report");
    assert_eq!(sanitize_file_name("  spaced name.txt  "), "spaced name.txt");
    for hostile in ["../../etc/passwd", "a/../../b", "..", "/", "\\\\srv\\share"] {
        let s = sanitize_file_name(hostile);
        assert!(!s.contains(['/', '\\']), "{hostile:?} -> {s:?}");
        assert!(s != "." && s != ".." && !s.starts_with('.'), "{s:?}");
        assert_eq!(Path::new(&s).components().count(), 1, "{s:?}");
    }
}

#[test]
fn empty_and_blank_names_become_file() {
    assert_eq!(sanitize_file_name(""), "file");
    assert_eq!(sanitize_file_name("   "), "file");
    assert_eq!(sanitize_file_name(". ."), "file");
}

#[test]
fn control_and_invisible_characters_are_replaced() {
    assert_eq!(sanitize_file_name("a\nb\tc\u{7}.txt"), "a_b_c_.txt");
    assert_eq!(sanitize_file_name("\u{1b}[31mred"), "_[31mred");
    assert_eq!(sanitize_file_name("x\u{7f}y"), "x_y");
    // "exe.txt" that displays as "txt.exe" with a right-to-left override.
    assert_eq!(sanitize_file_name("a\u{202e}txt.exe"), "a_txt.exe");
    assert_eq!(sanitize_file_name("what?*<>|\"."), "what______");
    for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
        let s = sanitize_file_name(&format!("x{c}y"));
        assert!(!s.chars().any(char::is_control), "{c:?} -> {s:?}");
    }
}

#[test]
fn windows_device_names_get_a_suffix() {
    assert_eq!(sanitize_file_name("con"), "con_");
    assert_eq!(sanitize_file_name("CON"), "CON_");
    assert_eq!(sanitize_file_name("nul.txt"), "nul_.txt");
    assert_eq!(sanitize_file_name("com1"), "com1_");
    assert_eq!(sanitize_file_name("LPT9.log"), "LPT9_.log");
    assert_eq!(sanitize_file_name("aux.tar.gz"), "aux_.tar.gz");
    assert_eq!(sanitize_file_name("com\u{b9}"), "com\u{b9}_");
    assert_eq!(sanitize_file_name("CONIN$.txt"), "CONIN$_.txt");
    assert_eq!(sanitize_file_name("com0"), "com0");
    assert_eq!(sanitize_file_name("console"), "console");
    assert_eq!(sanitize_file_name("com10"), "com10");
    assert_eq!(sanitize_file_name("prn "), "prn_");
}

#[test]
fn a_sanitised_name_always_passes_the_servers_check() {
    for name in [
        "con",
        "CONOUT$",
        "lpt\u{b3}.x",
        "../../etc/passwd",
        "",
        "..",
        "x\u{0}y\n",
        "a\u{202e}txt.exe",
        &"é".repeat(3000),
        &format!("x.{}", "y".repeat(4000)),
    ] {
        let s = sanitize_file_name(name);
        assert_eq!(check(&s), Ok(()), "{name:?} -> {s:?}");
    }
}

#[test]
fn long_names_are_cut_at_a_char_boundary_keeping_the_extension() {
    let long = "a".repeat(4096) + ".pdf";
    let s = sanitize_file_name(&long);
    assert_eq!(s.len(), MAX_FILE_NAME);
    assert!(s.ends_with(".pdf"), "{s}");
    // Multi-byte characters are never split.
    let long = "é".repeat(2048) + ".txt";
    let s = sanitize_file_name(&long);
    assert!(s.len() <= MAX_FILE_NAME && s.len() >= MAX_FILE_NAME - 1);
    assert!(s.ends_with(".txt"));
    assert!(s.trim_end_matches(".txt").chars().all(|c| c == 'é'));
    // No usable extension: the whole name is cut.
    let s = sanitize_file_name(&"€".repeat(1400));
    assert!(s.len() <= MAX_FILE_NAME && s.chars().all(|c| c == '€'));
    let s = sanitize_file_name(&format!("x.{}", "y".repeat(4000)));
    assert!(s.len() <= MAX_FILE_NAME && s.starts_with("x.yyy"));
    // 255 bytes exactly is left alone.
    let exact = "b".repeat(MAX_FILE_NAME);
    assert_eq!(sanitize_file_name(&exact), exact);
    // A shorter budget (the `.part` name leaves room for its suffix).
    let part = sanitize(&long, MAX_FILE_NAME - 5) + ".part";
    assert!(part.len() <= MAX_FILE_NAME);
}

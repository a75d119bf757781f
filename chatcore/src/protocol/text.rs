//! Rules about user-supplied text that server and clients share (no I/O):
//! cutting to a byte budget without splitting a character, and which
//! characters are invisible or blank-looking (refused in names and file
//! names, shown visibly by the clients).
//!
//! Several limits of the protocol are in bytes of UTF-8 (`max_text_bytes`,
//! the 255-byte file name), and both sides sometimes shorten a string to
//! meet one: the server a hook's rewrite or a broadcast (`fit_text` in the
//! reactor), the client a file name it saves. This is the one place that
//! knows how to do it.

/// The longest prefix of `s` that is at most `max` bytes long and ends at a
/// character boundary (so it is still valid UTF-8 and no character is cut
/// in half). `s` itself if it already fits.
#[cfg(any(feature = "server", feature = "client", test))]
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Format characters (category Cf), Default_Ignorable_Code_Point and
/// Bidi_Control characters, Unicode 15.1: they show as nothing or change how
/// the text around them shows. The blank-looking ones among them are
/// reported as blank first by the name rules (docs/protocol.md section 10).
pub fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Characters that are not white space but show as an empty cell (the
/// Hangul fillers, BRAILLE PATTERN BLANK, MUSICAL SYMBOL NULL NOTEHEAD), and
/// the line and paragraph separators, which are white space (trimmed at the
/// ends) but break the line when inside a name.
pub fn is_blank_looking(c: char) -> bool {
    matches!(
        u32::from(c),
        0x115F | 0x1160 | 0x3164 | 0xFFA0 | 0x2800 | 0x1D159 | 0x2028 | 0x2029
    )
}

/// Whether `c` is invisible ([`is_invisible`]) and not one of the emoji
/// variation selectors U+FE0E/U+FE0F (`❤️`), which only pick how the
/// character before them is drawn. The one rule for text that may be shown
/// as it is (file names, chat texts): the clients reveal these characters,
/// the server refuses them in offered file names.
pub fn is_hidden_in_text(c: char) -> bool {
    is_invisible(c) && !matches!(c, '\u{FE0E}' | '\u{FE0F}')
}

/// Whether `c` may not stand in an offered file name: a control character
/// or [`is_hidden_in_text`]. A bidi override would let
/// `invoice<U+202E>fdp.exe` show as `invoiceexe.pdf`.
pub fn is_hidden_in_file_name(c: char) -> bool {
    c.is_control() || is_hidden_in_text(c)
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn text_that_fits_is_left_alone() {
        assert_eq!(cut("hello", 5), "hello");
        assert_eq!(cut("hello", 100), "hello");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn text_is_cut_at_the_last_character_boundary_within_the_budget() {
        assert_eq!(cut("hello", 3), "hel");
        // "é" is two bytes: a budget ending inside it drops it whole.
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("aé", 3), "aé");
        // "€" is three bytes, "😀" four.
        assert_eq!(cut("€€", 5), "€");
        assert_eq!(cut("😀x", 3), "");
        assert_eq!(cut("x😀", 0), "");
        for max in 0..=12 {
            let s = "é€😀ab";
            let c = cut(s, max);
            assert!(c.len() <= max && s.starts_with(c), "{max}: {c:?}");
            // Nothing longer would have fitted.
            let next = s[c.len()..].chars().next().map_or(0, char::len_utf8);
            assert!(c.len() == s.len() || c.len() + next > max, "{max}: {c:?}");
        }
    }
}

//! Text that other people chose (names, chat texts, file names, reasons),
//! made safe to draw: nothing a peer types can change the reading order of
//! what the window shows, or hide itself.
//!
//! [`shown`] replaces every bidi control (overrides, embeddings, isolates,
//! marks), every invisible format character (zero-width spaces and joiners,
//! word joiner, soft hyphen, tag characters, fillers...) and every control
//! character except newline and tab with a visible `<U+XXXX>`. A chat text
//! `evil \u{202E}RTL override` is drawn `evil <U+202E>RTL override` in its
//! own order, and the file name `invoice\u{202E}fdp.exe` as
//! `invoice<U+202E>fdp.exe`, not as `invoiceexe.pdf`.
//!
//! Two joiners are kept where real text needs them and they can neither
//! reorder nor hide anything: a zero-width joiner between two pictographs
//! (emoji sequences such as 👩‍💻) and a zero-width non-joiner between two
//! non-ASCII letters (Persian and Indic spelling). Right-to-left letters
//! stay as they are: a Hebrew name is drawn right to left, as it should.
//! Every view that draws a peer's text calls [`shown`]; the pieces that
//! matter most (sender, file name, user list entry) are each a text widget
//! of their own, so their direction cannot spill into the words around them.

use std::borrow::Cow;
use std::fmt::Write as _;

use chatcore::protocol::text::{is_blank_looking, is_hidden_in_text};

/// `s` as it may be drawn: unchanged (borrowed, no allocation) when it
/// holds nothing to reveal, else with every hidden character written as
/// `<U+XXXX>`.
pub fn shown(s: &str) -> Cow<'_, str> {
    let reveal_at = |i: usize, c: char| {
        hidden(c)
            && !kept_joiner(
                s[..i].chars().next_back(),
                c,
                s[i + c.len_utf8()..].chars().next(),
            )
    };
    let Some(first) = s.char_indices().position(|(i, c)| reveal_at(i, c)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n >= first && reveal_at(i, c) {
            let _ = write!(out, "<U+{:04X}>", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` changes the reading order, is invisible, or is a control
/// character (newline and tab excepted: chat texts may hold them).
pub fn hidden(c: char) -> bool {
    if c.is_control() {
        return c != '\n' && c != '\t';
    }
    // One list for the whole project: the characters the server refuses in
    // names are the ones a peer could use to hide or reorder text here.
    // The emoji variation selectors only pick how the character before them
    // is drawn (❤️): kept, as the terminal client keeps them.
    is_hidden_in_text(c) || is_blank_looking(c)
}

/// Whether the joiner `c` between `before` and `after` is ordinary text
/// (see the module doc) and is kept.
fn kept_joiner(before: Option<char>, c: char, after: Option<char>) -> bool {
    let (Some(b), Some(a)) = (before, after) else {
        return false;
    };
    match c {
        '\u{200D}' => (pictograph(b) || b == '\u{FE0F}') && pictograph(a),
        '\u{200C}' => letter(b) && letter(a),
        _ => false,
    }
}

/// Emoji and other pictographs (the blocks emoji sequences are made of).
fn pictograph(c: char) -> bool {
    matches!(c, '\u{2600}'..='\u{27BF}' | '\u{2B00}'..='\u{2BFF}' | '\u{1F000}'..='\u{1FAFF}')
}

/// A letter of a script that uses the zero-width non-joiner.
fn letter(c: char) -> bool {
    !c.is_ascii() && c.is_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "hello",
            "",
            "héllo wörld ✓",
            "two\nlines\tand a tab",
            "שלום",
            "مرحبا",
        ] {
            assert!(matches!(shown(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn a_right_to_left_override_is_shown_and_cannot_reverse_the_text() {
        assert_eq!(
            shown("evil \u{202E}RTL override"),
            "evil <U+202E>RTL override"
        );
        assert_eq!(shown("invoice\u{202E}fdp.exe"), "invoice<U+202E>fdp.exe");
    }

    #[test]
    fn every_bidi_control_is_shown() {
        let controls = [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        for c in controls {
            let s = format!("a{c}b");
            assert_eq!(shown(&s), format!("a<U+{:04X}>b", u32::from(c)));
        }
    }

    #[test]
    fn zero_width_and_invisible_characters_are_shown() {
        assert_eq!(shown("ali\u{200B}ce"), "ali<U+200B>ce");
        assert_eq!(shown("alice\u{FEFF}"), "alice<U+FEFF>");
        assert_eq!(shown("\u{3164}\u{3164}"), "<U+3164><U+3164>");
        assert_eq!(shown("bob\u{E0041}\u{E007F}"), "bob<U+E0041><U+E007F>");
        assert_eq!(shown("soft\u{00AD}hyphen"), "soft<U+00AD>hyphen");
        assert_eq!(shown("a\u{2060}b"), "a<U+2060>b");
    }

    #[test]
    fn control_characters_are_shown_but_newline_and_tab_kept() {
        assert_eq!(shown("bell\u{7}"), "bell<U+0007>");
        assert_eq!(shown("cr\r\nlf"), "cr<U+000D>\nlf");
        assert_eq!(shown("c1\u{85}"), "c1<U+0085>");
        assert_eq!(shown("a\tb"), "a\tb");
    }

    #[test]
    fn joiners_in_emoji_and_persian_words_are_kept_elsewhere_shown() {
        let coder = "\u{1F469}\u{200D}\u{1F4BB}";
        assert_eq!(shown(coder), coder);
        let heart = "\u{2764}\u{FE0F}\u{200D}\u{1F525}";
        assert_eq!(shown(heart), heart);
        let persian = "می\u{200C}خواهم";
        assert_eq!(shown(persian), persian);
        assert_eq!(shown("al\u{200D}ice"), "al<U+200D>ice");
        assert_eq!(shown("al\u{200C}ice"), "al<U+200C>ice");
        assert_eq!(shown("\u{200D}\u{1F4BB}"), "<U+200D>\u{1F4BB}");
    }

    #[test]
    fn many_hidden_characters_each_become_one_visible_mark() {
        let s = "\u{202E}".repeat(3);
        assert_eq!(shown(&s), "<U+202E><U+202E><U+202E>");
    }
}

//! Text from the network made safe to print, and a bad-word filter.
//!
//! Nothing a peer sends reaches the terminal raw if it could act on the
//! terminal or hide itself: control characters (ESC, so no escape
//! sequences), format characters, zero-width and other default-ignorable
//! characters, tag characters, bidi controls (U+202E...) and line
//! separators are shown as `<U+XXXX>` (newline, carriage return and tab as
//! `\n`, `\r`, `\t`). Names get more (see [`show_name`]): blank-looking
//! characters are shown too, and a name that could be misread is quoted.

use std::borrow::Cow;

use chatcore::protocol::text::{is_blank_looking, is_hidden_in_text, is_invisible};

/// `text` as one printable line: control, format, invisible and bidi
/// control characters are shown as `\n`, `\r`, `\t` or `<U+XXXX>`, so a
/// message can neither break the one-event-per-line output, send escape
/// sequences to the terminal, reorder what follows it (U+202E) nor hide
/// characters. Variation selectors 15 and 16 (U+FE0E, U+FE0F: text or emoji
/// look of the character before) stay, as in `❤️`.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, needs_escape)
}

/// How a member's name is printed: escaped like [`one_line`], plus variation
/// selectors and blank-looking characters (U+3164 HANGUL FILLER, U+2800
/// BRAILLE PATTERN BLANK...); and put in double quotes (with `"` and `\`
/// inside written `\"` and `\\`) unless the name is *plain*: it starts with
/// a letter or digit, has no white space but single spaces between other
/// characters, and has no `"`, `\`, `,`, `:` and nothing escaped.
///
/// So `bob, carol, dave` in a list prints as one quoted name, a name can
/// never end where a chat line's `name: ` ends, and no name, however
/// chosen, starts with `*`, the mark of a server message (see
/// [`crate::render::chat_line`]).
pub fn show_name(name: &str) -> Cow<'_, str> {
    if is_plain_name(name) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_escaped(&mut out, c, name_needs_escape),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// Whether [`show_name`] prints `name` as it is.
fn is_plain_name(name: &str) -> bool {
    let Some(first) = name.chars().next() else {
        return false;
    };
    first.is_alphanumeric()
        && !name.ends_with(' ')
        && !name.contains("  ")
        && !name.chars().any(|c| {
            matches!(c, '"' | '\\' | ',' | ':')
                || (c.is_whitespace() && c != ' ')
                || name_needs_escape(c)
        })
}

fn escape(text: &str, needs: fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c, needs);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char, needs: fn(char) -> bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs(c) => out.push_str(&format!("<U+{:04X}>", u32::from(c))),
        c => out.push(c),
    }
}

/// Characters [`one_line`] shows as escapes.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_hidden_in_text(c)
}

/// Characters [`show_name`] shows as escapes.
fn name_needs_escape(c: char) -> bool {
    c.is_control() || is_invisible(c) || is_blank_looking(c)
}

/// Replaces each whole-word, ASCII-case-insensitive occurrence of a word of
/// `words` in `text` by as many `*` as it has characters. `None` if nothing
/// matched. "heck" is caught in "Heck, no" but not in "check".
///
/// The words must be ASCII; `text` may be any UTF-8.
pub fn censor(text: &str, words: &[&str]) -> Option<String> {
    let bytes = text.as_bytes();
    // Byte ranges to mask; words are ASCII so every match is on char boundaries.
    let mut hits: Vec<(usize, usize)> = Vec::new();
    for word in words.iter().filter(|w| !w.is_empty() && w.is_ascii()) {
        let w = word.as_bytes();
        let mut start = 0;
        while start + w.len() <= bytes.len() {
            let end = start + w.len();
            if bytes[start..end].eq_ignore_ascii_case(w)
                && !is_word_char(text[..start].chars().next_back())
                && !is_word_char(text[end..].chars().next())
            {
                hits.push((start, end));
                start = end;
            } else {
                start += 1;
                // Only ever stop on a char boundary (the slices above need it).
                while start < bytes.len() && !text.is_char_boundary(start) {
                    start += 1;
                }
            }
        }
    }
    if hits.is_empty() {
        return None;
    }
    let mut masked = bytes.to_vec();
    for (start, end) in hits {
        masked[start..end].fill(b'*');
    }
    // Only ASCII bytes were replaced by ASCII bytes: still UTF-8.
    String::from_utf8(masked).ok()
}

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_shows_controls_and_escape_sequences_visibly() {
        assert!(matches!(one_line("héllo wörld ❤️"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(one_line("\u{1b}[31mred"), "<U+001B>[31mred");
        assert_eq!(one_line("x\u{7f}y\u{9b}"), "x<U+007F>y<U+009B>");
    }

    #[test]
    fn one_line_shows_bidi_overrides_zero_width_and_tag_characters() {
        assert_eq!(
            one_line("evil \u{202E}RTL override"),
            "evil <U+202E>RTL override"
        );
        assert_eq!(one_line("invoice\u{202E}fdp.exe"), "invoice<U+202E>fdp.exe");
        assert_eq!(
            one_line("a\u{200B}b\u{200D}c\u{2060}d"),
            "a<U+200B>b<U+200D>c<U+2060>d"
        );
        assert_eq!(
            one_line("\u{2066}x\u{2069}\u{061C}"),
            "<U+2066>x<U+2069><U+061C>"
        );
        assert_eq!(one_line("hi\u{E0041}\u{E007F}"), "hi<U+E0041><U+E007F>");
        assert_eq!(one_line("a\u{2028}b"), "a<U+2028>b");
        assert_eq!(one_line("\u{FEFF}x\u{AD}"), "<U+FEFF>x<U+00AD>");
    }

    #[test]
    fn plain_names_print_as_they_are() {
        for name in [
            "alice",
            "alice(1)",
            "Bob Smith",
            "o'brien_2",
            "Иван",
            "山田 太郎",
            "x.y-z",
        ] {
            assert!(
                matches!(show_name(name), Cow::Borrowed(n) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn names_that_could_be_misread_are_quoted() {
        assert_eq!(show_name("bob, carol, dave"), "\"bob, carol, dave\"");
        assert_eq!(show_name("* server"), "\"* server\"");
        assert_eq!(show_name("alice: I agree. bob"), "\"alice: I agree. bob\"");
        assert_eq!(show_name("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(show_name(""), "\"\"");
        assert_eq!(show_name("bob  x"), "\"bob  x\"");
        assert_eq!(show_name("bob\u{A0}x"), "\"bob\u{A0}x\"");
        assert_eq!(show_name("🙂"), "\"🙂\"");
    }

    #[test]
    fn invisible_and_blank_characters_in_names_are_shown() {
        assert_eq!(show_name("alice\u{200B}"), "\"alice<U+200B>\"");
        assert_eq!(show_name("\u{3164}"), "\"<U+3164>\"");
        assert_eq!(show_name("\u{2800}\u{2800}"), "\"<U+2800><U+2800>\"");
        assert_eq!(show_name("alice\u{E0001}"), "\"alice<U+E0001>\"");
        assert_eq!(show_name("a\u{FE0F}"), "\"a<U+FE0F>\"");
        assert_eq!(show_name("\u{202E}ecila"), "\"<U+202E>ecila\"");
        assert_eq!(show_name("a\nb\u{1b}"), "\"a\\nb<U+001B>\"");
    }

    #[test]
    fn censor_masks_whole_words_case_insensitively() {
        let words = ["darn", "heck"];
        assert_eq!(censor("darn it", &words).as_deref(), Some("**** it"));
        assert_eq!(
            censor("Heck, DARN! heck", &words).as_deref(),
            Some("****, ****! ****")
        );
        assert_eq!(censor("check the darnedest", &words), None);
        assert_eq!(censor("é-darn-é", &words).as_deref(), Some("é-****-é"));
        assert_eq!(censor("édarn", &words), None);
        assert_eq!(censor("", &words), None);
    }
}

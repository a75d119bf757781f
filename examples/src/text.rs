//! Text from the network made safe to print, and a bad-word filter.

use std::borrow::Cow;

/// `text` as one printable line: control characters (newlines, tabs, ESC
/// and the rest) and the invisible bidirectional-override characters are
/// shown as escapes such as `\n` or `\u{1b}`, so a message can neither
/// break the one-event-per-line output nor send escape sequences to the
/// terminal.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
    fn one_line_escapes_controls_only() {
        assert!(matches!(one_line("héllo wörld"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(one_line("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(one_line("x\u{202e}y\u{7f}"), "x\\u{202e}y\\u{7f}");
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

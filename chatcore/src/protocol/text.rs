//! Cutting text to a byte budget without splitting a character (no I/O).
//!
//! Several limits of the protocol are in bytes of UTF-8 (`max_text_bytes`,
//! the 255-byte file name), and both sides sometimes shorten a string to
//! meet one: the server a hook's rewrite or a broadcast (`fit_text` in the
//! reactor), the client a file name it saves. This is the one place that
//! knows how to do it.

/// The longest prefix of `s` that is at most `max` bytes long and ends at a
/// character boundary (so it is still valid UTF-8 and no character is cut
/// in half). `s` itself if it already fits.
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

//! Checks that a frame body is exactly one well-formed MessagePack map.
//!
//! This runs before serde sees the bytes, for three reasons: it separates a
//! peer that does not speak MessagePack at all (`bad_frame`, fatal) from one
//! that sent a wrong field (`bad_message`, recoverable); it finds invalid UTF-8
//! in any string (`invalid_utf8`); and it is iterative, so hostile nesting
//! cannot overflow the stack. It allocates nothing.

use thiserror::Error;

/// Why a frame body is not one well-formed MessagePack map.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformed {
    /// The first value is not a map (it is an array, a string, an integer...).
    #[error("frame body is not a MessagePack map")]
    NotAMap,
    /// A value announces more bytes than the frame holds.
    #[error("frame body ends inside a MessagePack value")]
    Truncated,
    /// Bytes follow the end of the map.
    #[error("{0} bytes after the end of the MessagePack map")]
    Trailing(usize),
    /// The reserved marker 0xc1 appeared.
    #[error("reserved MessagePack marker 0xc1")]
    ReservedMarker,
    /// A MessagePack string holds invalid UTF-8 (not fatal: the frame is intact).
    #[error("a MessagePack string is not valid UTF-8")]
    InvalidUtf8,
}

/// Deepest nesting of arrays and maps (the top-level map counts as 1) that
/// serde is shown by [`flatten_deep`]. Every v1 message nests at most 3 deep
/// (a record inside a list inside the message), so this leaves room for later
/// revisions while bounding serde's recursion far below a stack overflow.
pub const MAX_DEPTH: usize = 32;

/// Checks `body` holds exactly one MessagePack map and nothing else.
///
/// String payloads are checked for UTF-8; the map's content may be any values.
pub fn check(body: &[u8]) -> Result<(), Malformed> {
    match body.first() {
        Some(0x80..=0x8f | 0xde | 0xdf) => {}
        _ => return Err(Malformed::NotAMap),
    }
    let mut pos = 0usize;
    let mut bad_utf8 = false;
    skip_value(body, &mut pos, &mut bad_utf8)?;
    if pos != body.len() {
        return Err(Malformed::Trailing(body.len() - pos));
    }
    if bad_utf8 {
        return Err(Malformed::InvalidUtf8);
    }
    Ok(())
}

/// A copy of a well-formed `body` (one that passed [`check`]) in which every
/// array or map nested deeper than [`MAX_DEPTH`] is replaced by `nil`, or
/// `None` when nothing is that deep (the usual case: no copy is made).
///
/// Why: serde skips an unknown key's value by recursing into it, and
/// rmp-serde stops at 1,024 levels with an error, which turned a deeply
/// nested *unknown* field into `bad_message` although docs/protocol.md
/// section 3 says unknown keys are ignored whatever their value. Cutting the
/// nesting here, with a fixed-size stack and a flat skip, makes the outcome
/// independent of depth: a deep value under an unknown key is ignored, and a
/// deep value under a known key is still refused, because no v1 field nests
/// anywhere near `MAX_DEPTH` and the mismatch shows at a shallower level.
pub fn flatten_deep(body: &[u8]) -> Option<Vec<u8>> {
    // remaining[d]: values still to read inside the d-th open container
    // (remaining[0]: the one top-level value).
    let mut remaining = [0usize; MAX_DEPTH + 1];
    remaining[0] = 1;
    let mut depth = 0usize;
    let mut pos = 0usize;
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0usize;
    loop {
        while remaining[depth] == 0 {
            if depth == 0 {
                let mut out = out?;
                out.extend_from_slice(body.get(copied..)?);
                return Some(out);
            }
            depth -= 1;
        }
        remaining[depth] -= 1;
        let start = pos;
        let header = read_header(body, &mut pos).ok()?;
        if header.children == 0 {
            pos = pos.checked_add(header.skip)?;
        } else if depth == MAX_DEPTH {
            pos = start;
            skip_value(body, &mut pos, &mut false).ok()?;
            let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
            out.extend_from_slice(body.get(copied..start)?);
            out.push(0xc0);
            copied = pos;
        } else {
            depth += 1;
            remaining[depth] = header.children;
        }
    }
}

/// Whether every key of the message's own map (the top level of a body that
/// passed [`check`]) is a MessagePack str.
///
/// Why: serde's derived field matching also accepts an integer key as the
/// index of a field, so `{0: "hi", "type": "chat"}` would decode as a chat
/// whose `type` came from key `0`. docs/protocol.md section 3 says fields are
/// named by str keys; a message with any other key is a `bad_message`.
/// Values are skipped whole (iteratively), so nested maps under unknown keys
/// are not looked into: unknown values stay ignored whatever they hold.
pub fn top_level_keys_are_str(body: &[u8]) -> bool {
    let mut pos = 0usize;
    let Ok(header) = read_header(body, &mut pos) else {
        return false;
    };
    for _ in 0..header.children / 2 {
        let key_is_str = matches!(body.get(pos), Some(0xa0..=0xbf | 0xd9 | 0xda | 0xdb));
        if !key_is_str {
            return false;
        }
        // The key, then its value.
        for _ in 0..2 {
            if skip_value(body, &mut pos, &mut false).is_err() {
                return false;
            }
        }
    }
    true
}

/// What a value's marker (and length bytes) say about it.
struct Header {
    /// Payload bytes after the marker and length bytes.
    skip: usize,
    /// Values contained (elements of an array, keys plus values of a map).
    children: usize,
    /// The payload is a str, to be checked for UTF-8.
    is_str: bool,
}

/// Reads the marker and length bytes of the value at `pos` and advances past
/// them (not past the payload or the children).
fn read_header(body: &[u8], pos: &mut usize) -> Result<Header, Malformed> {
    let marker = *body.get(*pos).ok_or(Malformed::Truncated)?;
    *pos += 1;
    let (skip, children, is_str) = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, false),
        0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f), false),
        0x90..=0x9f => (0, usize::from(marker & 0x0f), false),
        0xa0..=0xbf => (usize::from(marker & 0x1f), 0, true),
        0xc1 => return Err(Malformed::ReservedMarker),
        0xc4 => (read_len(body, pos, 1)?, 0, false),
        0xc5 => (read_len(body, pos, 2)?, 0, false),
        0xc6 => (read_len(body, pos, 4)?, 0, false),
        0xc7 => (read_len(body, pos, 1)? + 1, 0, false),
        0xc8 => (read_len(body, pos, 2)? + 1, 0, false),
        0xc9 => (read_len(body, pos, 4)? + 1, 0, false),
        0xca => (4, 0, false),
        0xcb => (8, 0, false),
        0xcc | 0xd0 => (1, 0, false),
        0xcd | 0xd1 => (2, 0, false),
        0xce | 0xd2 => (4, 0, false),
        0xcf | 0xd3 => (8, 0, false),
        0xd4 => (2, 0, false),
        0xd5 => (3, 0, false),
        0xd6 => (5, 0, false),
        0xd7 => (9, 0, false),
        0xd8 => (17, 0, false),
        0xd9 => (read_len(body, pos, 1)?, 0, true),
        0xda => (read_len(body, pos, 2)?, 0, true),
        0xdb => (read_len(body, pos, 4)?, 0, true),
        0xdc => (0, read_len(body, pos, 2)?, false),
        0xdd => (0, read_len(body, pos, 4)?, false),
        0xde => (0, 2 * read_len(body, pos, 2)?, false),
        0xdf => (0, 2 * read_len(body, pos, 4)?, false),
    };
    Ok(Header {
        skip,
        children,
        is_str,
    })
}

/// Advances `pos` past one whole value, however deeply nested, without
/// recursion: a single count of values still to read replaces the stack.
/// Sets `bad_utf8` if a str inside is not UTF-8.
fn skip_value(body: &[u8], pos: &mut usize, bad_utf8: &mut bool) -> Result<(), Malformed> {
    // Each value is at least one byte, so a count larger than the bytes left
    // is rejected at once and this never grows unbounded.
    let mut pending: usize = 1;
    while pending > 0 {
        pending -= 1;
        let Header {
            skip,
            children,
            is_str,
        } = read_header(body, pos)?;
        let rest = body.len() - *pos;
        if skip > rest || children > rest {
            return Err(Malformed::Truncated);
        }
        if is_str && std::str::from_utf8(&body[*pos..*pos + skip]).is_err() {
            *bad_utf8 = true;
        }
        *pos += skip;
        pending += children;
        if pending > body.len() - *pos {
            return Err(Malformed::Truncated);
        }
    }
    Ok(())
}

/// Reads a big-endian length of `width` bytes at `pos` and advances past it.
fn read_len(body: &[u8], pos: &mut usize, width: usize) -> Result<usize, Malformed> {
    let bytes = body.get(*pos..*pos + width).ok_or(Malformed::Truncated)?;
    *pos += width;
    Ok(bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integer_key_in_the_message_map_is_found_and_nested_values_are_not_looked_into() {
        // {"type": "chat", "text": "hi"}
        let good = b"\x82\xa4type\xa4chat\xa4text\xa2hi";
        assert!(top_level_keys_are_str(good));
        // {0: "chat", "text": "hi"}
        let int_key = b"\x82\x00\xa4chat\xa4text\xa2hi";
        assert!(!top_level_keys_are_str(int_key));
        // {"type": "chat", "x": {1: 2}}: an unknown value may hold anything.
        let nested = b"\x82\xa4type\xa4chat\xa1x\x81\x01\x02";
        assert!(top_level_keys_are_str(nested));
        // A bin key is not a str either.
        let bin_key = b"\x81\xc4\x04type\xa4chat";
        assert!(!top_level_keys_are_str(bin_key));
    }

    #[test]
    fn accepts_an_empty_map_and_nested_values() {
        assert_eq!(check(&[0x80]), Ok(()));
        // {"a": [1, "x", {"b": nil}]}
        let body = [
            0x81, 0xa1, b'a', 0x93, 0x01, 0xa1, b'x', 0x81, 0xa1, b'b', 0xc0,
        ];
        assert_eq!(check(&body), Ok(()));
    }

    #[test]
    fn rejects_non_maps_truncation_and_trailing_bytes() {
        assert_eq!(check(&[]), Err(Malformed::NotAMap));
        assert_eq!(check(&[0x91, 0x01]), Err(Malformed::NotAMap));
        assert_eq!(check(&[0x81, 0xa1]), Err(Malformed::Truncated));
        assert_eq!(check(&[0x80, 0x00]), Err(Malformed::Trailing(1)));
        assert_eq!(check(&[0x81, 0xc1, 0xc0]), Err(Malformed::ReservedMarker));
    }

    #[test]
    fn huge_announced_counts_are_rejected_without_allocating() {
        // map32 announcing 4 billion entries in a 5-byte body.
        assert_eq!(
            check(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(Malformed::Truncated)
        );
        // str32 announcing 4 GiB.
        assert_eq!(
            check(&[0x81, 0xdb, 0xff, 0xff, 0xff, 0xff]),
            Err(Malformed::Truncated)
        );
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let mut body = vec![0x81, 0xa1, b'a'];
        body.extend(std::iter::repeat_n(0x91u8, 100_000));
        body.push(0xc0);
        assert_eq!(check(&body), Ok(()));
    }

    #[test]
    fn invalid_utf8_is_reported_after_the_structure_is_known_good() {
        assert_eq!(
            check(&[0x81, 0xa1, b'a', 0xa2, 0xff, 0xfe]),
            Err(Malformed::InvalidUtf8)
        );
    }

    #[test]
    fn shallow_bodies_are_not_copied() {
        let body = [
            0x81, 0xa1, b'a', 0x93, 0x01, 0xa1, b'x', 0x81, 0xa1, b'b', 0xc0,
        ];
        assert_eq!(flatten_deep(&body), None);
    }

    #[test]
    fn containers_nested_deeper_than_max_depth_become_nil_and_siblings_stay() {
        // {"a": [[[...[nil]...]]], "b": 1} with 100 arrays.
        let mut body = vec![0x82, 0xa1, b'a'];
        body.extend(std::iter::repeat_n(0x91u8, 100));
        body.push(0xc0);
        body.extend_from_slice(&[0xa1, b'b', 0x01]);
        let flat = flatten_deep(&body).expect("deep body is rewritten");
        let mut want = vec![0x82, 0xa1, b'a'];
        // The map is level 1, so 31 arrays survive and the 32nd becomes nil.
        want.extend(std::iter::repeat_n(0x91u8, MAX_DEPTH - 1));
        want.push(0xc0);
        want.extend_from_slice(&[0xa1, b'b', 0x01]);
        assert_eq!(flat, want);
        assert_eq!(check(&flat), Ok(()));
    }

    #[test]
    fn exactly_max_depth_is_kept_as_is() {
        let mut body = vec![0x81, 0xa1, b'a'];
        body.extend(std::iter::repeat_n(0x91u8, MAX_DEPTH - 1));
        body.push(0xc0);
        assert_eq!(flatten_deep(&body), None);
    }
}

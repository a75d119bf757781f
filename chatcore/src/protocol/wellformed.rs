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

/// Checks `body` holds exactly one MessagePack map and nothing else.
///
/// String payloads are checked for UTF-8; the map's content may be any values.
pub fn check(body: &[u8]) -> Result<(), Malformed> {
    match body.first() {
        Some(0x80..=0x8f | 0xde | 0xdf) => {}
        _ => return Err(Malformed::NotAMap),
    }
    let mut pos = 0usize;
    // Values still to read. Each value is at least one byte, so a count larger
    // than the bytes left is rejected at once and this never grows unbounded.
    let mut pending: usize = 1;
    let mut bad_utf8 = false;
    while pending > 0 {
        pending -= 1;
        let marker = *body.get(pos).ok_or(Malformed::Truncated)?;
        pos += 1;
        let (skip, children, is_str) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, false),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f), false),
            0x90..=0x9f => (0, usize::from(marker & 0x0f), false),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0, true),
            0xc1 => return Err(Malformed::ReservedMarker),
            0xc4 => (read_len(body, &mut pos, 1)?, 0, false),
            0xc5 => (read_len(body, &mut pos, 2)?, 0, false),
            0xc6 => (read_len(body, &mut pos, 4)?, 0, false),
            0xc7 => (read_len(body, &mut pos, 1)? + 1, 0, false),
            0xc8 => (read_len(body, &mut pos, 2)? + 1, 0, false),
            0xc9 => (read_len(body, &mut pos, 4)? + 1, 0, false),
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
            0xd9 => (read_len(body, &mut pos, 1)?, 0, true),
            0xda => (read_len(body, &mut pos, 2)?, 0, true),
            0xdb => (read_len(body, &mut pos, 4)?, 0, true),
            0xdc => (0, read_len(body, &mut pos, 2)?, false),
            0xdd => (0, read_len(body, &mut pos, 4)?, false),
            0xde => (0, 2 * read_len(body, &mut pos, 2)?, false),
            0xdf => (0, 2 * read_len(body, &mut pos, 4)?, false),
        };
        let rest = body.len() - pos;
        if skip > rest || children > rest {
            return Err(Malformed::Truncated);
        }
        if is_str && std::str::from_utf8(&body[pos..pos + skip]).is_err() {
            bad_utf8 = true;
        }
        pos += skip;
        pending += children;
        if pending > body.len() - pos {
            return Err(Malformed::Truncated);
        }
    }
    if pos != body.len() {
        return Err(Malformed::Trailing(body.len() - pos));
    }
    if bad_utf8 {
        return Err(Malformed::InvalidUtf8);
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
}

//! The frame decoder on an arbitrary byte stream, fed in pieces whose sizes
//! come from the input itself: only documented outcomes, a frame consumed
//! whole or not at all, and the same outcomes whatever the split.
#![no_main]

use bytes::BytesMut;
use chatcore::protocol::{DecodeError, decode_client, decode_server, frame_len};
use libfuzzer_sys::fuzz_target;

/// The limit the decoder runs with: small, so lengths often cross it.
const MAX: u32 = 4096;

/// Decodes everything complete; the outcome list, or None once fatal.
fn drain<M: PartialEq + std::fmt::Debug>(
    buf: &mut BytesMut,
    decode: fn(&mut BytesMut, u32) -> Result<Option<M>, DecodeError>,
    out: &mut Vec<String>,
) -> bool {
    loop {
        let before = buf.len();
        let want = frame_len(buf, MAX);
        match decode(buf, MAX) {
            Ok(None) => {
                assert_eq!(want, Ok(None));
                assert_eq!(buf.len(), before);
                return false;
            }
            Ok(Some(m)) => {
                assert_eq!(want, Ok(Some(before - buf.len())));
                out.push(format!("{m:?}"));
            }
            Err(DecodeError::Message(e)) => {
                assert_eq!(want, Ok(Some(before - buf.len())));
                out.push(format!("{:?}", e.code()));
                if e.code().is_fatal() {
                    return true;
                }
            }
            Err(DecodeError::Frame(e)) => {
                assert_eq!(want, Err(e.clone()));
                assert!(e.code().is_fatal());
                out.push(format!("{e:?}"));
                return true;
            }
        }
    }
}

fn split_invariant<M: PartialEq + std::fmt::Debug>(
    data: &[u8],
    decode: fn(&mut BytesMut, u32) -> Result<Option<M>, DecodeError>,
) {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let mut whole = Vec::new();
    drain(&mut BytesMut::from(stream), decode, &mut whole);
    let step = usize::from(step % 32) + 1;
    let mut pieces = Vec::new();
    let mut buf = BytesMut::new();
    for chunk in stream.chunks(step) {
        buf.extend_from_slice(chunk);
        if drain(&mut buf, decode, &mut pieces) {
            break;
        }
    }
    assert_eq!(whole, pieces);
}

fuzz_target!(|data: &[u8]| {
    split_invariant(data, decode_client);
    split_invariant(data, decode_server);
});

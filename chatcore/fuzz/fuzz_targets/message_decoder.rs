//! The message decoder on an arbitrary frame body: no panic, only the
//! documented error codes, and whatever decodes re-encodes to a frame that
//! decodes to the same message.
#![no_main]

use bytes::BytesMut;
use chatcore::protocol::{
    ClientMessage, ErrorCode, ServerMessage, decode_client, decode_server, encode_client,
    encode_server,
};
use libfuzzer_sys::fuzz_target;

/// The codes a body can be refused with (docs/protocol.md section 4).
fn documented(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BadFrame
            | ErrorCode::InvalidUtf8
            | ErrorCode::BadMessage
            | ErrorCode::UnknownType
    )
}

fuzz_target!(|body: &[u8]| {
    match ClientMessage::from_body(body) {
        Ok(m) => {
            let mut again = BytesMut::from(&encode_client(&m)[..]);
            assert_eq!(decode_client(&mut again, u32::MAX), Ok(Some(m)));
        }
        Err(e) => assert!(documented(e.code()), "{e:?}"),
    }
    match ServerMessage::from_body(body) {
        Ok(m) => {
            let mut again = BytesMut::from(&encode_server(&m)[..]);
            assert_eq!(decode_server(&mut again, u32::MAX), Ok(Some(m)));
        }
        Err(e) => assert!(documented(e.code()), "{e:?}"),
    }
});

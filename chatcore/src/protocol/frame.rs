//! Framing: a 4-byte big-endian length N, then N bytes of MessagePack.
//!
//! The decoder never allocates on the peer's word: the length is checked
//! against `max_frame` as soon as the 4 header bytes are there, before any
//! body byte is awaited. Fewer bytes than a whole frame is `Ok(None)`, the
//! split ("half packet") case; several frames in one buffer ("sticky packets")
//! come out one call at a time.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use thiserror::Error;

use super::codes::ErrorCode;
use super::message::{ClientMessage, MessageError, ServerMessage};

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// A framing error: the byte stream can no longer be followed. Fatal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The length prefix is over the limit (`frame_too_large`).
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced body length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The length prefix is zero (`bad_frame`): a frame holds at least a map.
    #[error("zero-length frame")]
    Empty,
}

impl FrameError {
    /// The error code the server answers this with (both are fatal).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::FrameTooLarge,
            Self::Empty => ErrorCode::BadFrame,
        }
    }
}

/// Any reason [`decode_client`] / [`decode_server`] did not yield a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The stream cannot be followed any more.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// One frame was consumed but its content was refused; the stream is still in sync.
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl DecodeError {
    /// The error code the server answers this with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Frame(e) => e.code(),
            Self::Message(e) => e.code(),
        }
    }
}

/// Length of the first complete frame in `buf`, header included.
///
/// `Ok(None)` means more bytes are needed. Errors as soon as the header
/// shows an empty or oversized frame.
pub fn frame_len(buf: &[u8], max_frame: u32) -> Result<Option<usize>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max_frame {
        return Err(FrameError::TooLarge {
            len,
            max: max_frame,
        });
    }
    let total = HEADER_LEN + len as usize;
    Ok((buf.len() >= total).then_some(total))
}

/// Takes the next complete frame's body out of `buf`, if there is one.
fn next_body(buf: &mut BytesMut, max_frame: u32) -> Result<Option<Bytes>, FrameError> {
    let Some(total) = frame_len(buf, max_frame)? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(total);
    frame.advance(HEADER_LEN);
    Ok(Some(frame.freeze()))
}

/// Decodes the next client message from `buf`, consuming its frame.
///
/// `Ok(None)`: need more bytes. `Err(DecodeError::Message)`: that frame was
/// consumed and refused; call again for the next one.
pub fn decode_client(
    buf: &mut BytesMut,
    max_frame: u32,
) -> Result<Option<ClientMessage>, DecodeError> {
    match next_body(buf, max_frame)? {
        None => Ok(None),
        Some(body) => Ok(Some(ClientMessage::from_body(&body)?)),
    }
}

/// Decodes the next server message from `buf`, consuming its frame.
pub fn decode_server(
    buf: &mut BytesMut,
    max_frame: u32,
) -> Result<Option<ServerMessage>, DecodeError> {
    match next_body(buf, max_frame)? {
        None => Ok(None),
        Some(body) => Ok(Some(ServerMessage::from_body(&body)?)),
    }
}

/// Encodes any serialisable message as one frame (prefix included).
fn encode<T: Serialize>(msg: &T) -> Bytes {
    let mut out = BytesMut::with_capacity(64).writer();
    out.get_mut().put_u32(0);
    // Writing named fields into memory fails only for types serde cannot
    // express as MessagePack, which ours never are.
    if let Err(e) = rmp_serde::encode::write_named(&mut out, msg) {
        unreachable!("protocol message failed to serialise: {e}");
    }
    let mut buf = out.into_inner();
    let body_len = (buf.len() - HEADER_LEN) as u32;
    buf[..HEADER_LEN].copy_from_slice(&body_len.to_be_bytes());
    buf.freeze()
}

/// Encodes a server message as one frame, ready to share between recipients.
pub fn encode_server(msg: &ServerMessage) -> Bytes {
    encode(msg)
}

/// Encodes a client message as one frame.
pub fn encode_client(msg: &ClientMessage) -> Bytes {
    encode(msg)
}

//! Wire protocol v1: message types, the frame codec and the MessagePack checks.
//!
//! Nothing in this module does I/O: bytes go in, messages come out (and the
//! reverse), so every rule of `docs/protocol.md` is testable without sockets.
//!
//! - [`frame`]: the 4-byte length prefix, `max_frame`, "need more bytes" as `Ok(None)`.
//! - [`wellformed`]: is a frame body exactly one well-formed MessagePack map?
//! - [`message`]: the typed messages of both directions and their (de)serialisation.
//! - [`welcome`]: the `welcome` frame built from a shared, once-encoded body.
//! - [`transfer`]: the file-transfer messages.
//! - [`voice`]: the voice-call messages and the voice port's binary packets.
//! - [`codes`]: error codes and leave reasons, the vocabulary both sides share.
//! - [`file_name`]: the file-name rules: the server's check of offered names
//!   and the receiver's sanitiser.
//! - `text`: cutting text to a byte budget at a character boundary; which
//!   characters of user text are invisible or blank-looking.

pub mod codes;
pub mod file_name;
pub mod frame;
pub mod message;
pub(crate) mod mpack;
mod strict;
pub mod text;
pub mod transfer;
pub mod voice;
pub mod welcome;
pub mod wellformed;

pub use codes::{ErrorCode, LeaveReason};
pub use frame::{
    DecodeError, FrameError, HEADER_LEN, decode_client, decode_server, encode_client,
    encode_server, frame_len,
};
pub use message::{ChangePassword, PasswordChanged, Register, Registered};
pub use message::{
    Chat, ChatSend, ClientMessage, Departure, ErrorMsg, Hello, History, HistoryRequest, Joined,
    Left, MessageError, Presence, Seq, ServerMessage, UserInfo, Welcome,
};
pub use message::{Delete, Deleted, Moderate, Moderated, SetRole};
pub use message::{Dm, DmHistory, DmHistoryRequest, DmRead, DmSend, DmUnread, DmUnreadEntry};
pub use message::{
    Invite, JoinRoom, Notice, RoomInfo, RoomJoined, RoomList, RoomMode, RoomName, SetTopic, Topic,
    VoiceJoinRoom,
};

/// The protocol version this crate speaks; sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 2;

/// Default largest frame body in bytes (1 MiB). A peer announcing more is cut off.
pub const DEFAULT_MAX_FRAME: u32 = 1024 * 1024;

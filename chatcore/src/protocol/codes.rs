//! Error codes and leave reasons: short stable strings on the wire.

use serde::{Deserialize, Serialize};

/// Machine-readable reason carried by an `error` frame (`code` field).
///
/// Serialised as the snake_case string shown on each variant. Codes this
/// version does not know decode as [`ErrorCode::Unknown`], so an older client
/// keeps working against a newer server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `name_empty`: the name in `hello` is empty (after trimming whitespace).
    NameEmpty,
    /// `name_too_long`: the name is longer than the server's name limit.
    NameTooLong,
    /// `name_invalid`: the name contains a control, invisible, format,
    /// bidi control, blank-looking or unassigned character, starts with a
    /// combining mark, or mixes scripts (docs/protocol.md section 10).
    NameInvalid,
    /// `version`: the `hello` asked for a protocol version the server does not speak.
    Version,
    /// `already_logged_in`: a second `hello` on a connection that is already in the room.
    AlreadyLoggedIn,
    /// `join_denied`: the server's embedding program refused this login.
    JoinDenied,
    /// `not_logged_in`: a message other than `hello`/`ping`/`pong`/`bye` before a successful `hello`.
    NotLoggedIn,
    /// `text_empty`: a chat text that is empty or only whitespace.
    TextEmpty,
    /// `text_too_long`: a chat text longer than the server's text limit.
    TextTooLong,
    /// `rate_limited`: the connection sent faster than its rate limit; the frame was dropped.
    RateLimited,
    /// `unknown_type`: a well-formed message whose `type` this server does not know.
    UnknownType,
    /// `bad_message`: a map without a string `type`, or with a field of the wrong type.
    BadMessage,
    /// `invalid_utf8`: a MessagePack string in the frame is not valid UTF-8.
    InvalidUtf8,
    /// `bad_frame`: the frame body is not exactly one well-formed MessagePack map. Fatal.
    BadFrame,
    /// `frame_too_large`: the length prefix is over `max_frame`. Fatal.
    FrameTooLarge,
    /// `server_full`: the server is at its connection limit. Fatal.
    ServerFull,
    /// `handshake_timeout`: no successful `hello` within the handshake timeout. Fatal.
    HandshakeTimeout,
    /// `rejected`: the embedding program's message filter refused this chat message.
    Rejected,
    /// `file_name_invalid`: an offered file name that is empty, `.`/`..`,
    /// holds a path separator or control character, or is a reserved device
    /// name (`con`, `nul`, `com1`...).
    FileNameInvalid,
    /// `file_name_too_long`: an offered file name over 255 bytes.
    FileNameTooLong,
    /// `file_too_large`: an offer bigger than the server's file size limit.
    FileTooLarge,
    /// `quota_exceeded`: the spool has no room for the offer, even after
    /// expiring older files.
    QuotaExceeded,
    /// `bad_hash`: an offer whose `sha256` is not 32 bytes.
    BadHash,
    /// `unknown_transfer`: a transfer id that does not exist or is not yours
    /// to act on in this way.
    UnknownTransfer,
    /// `bad_offset`: a chunk that does not continue the upload where it
    /// stands, goes past the declared size, or is larger than `max_chunk`;
    /// or an accept offset past the end of the file.
    BadOffset,
    /// `size_mismatch`: the upload ended with another size than offered.
    SizeMismatch,
    /// `hash_mismatch`: the uploaded content does not match the offered SHA-256.
    HashMismatch,
    /// `too_many_transfers`: too many uploads or downloads at once on this connection.
    TooManyTransfers,
    /// `storage_error`: the server could not store or read the file.
    StorageError,
    /// `voice_unavailable`: the server has no voice port.
    VoiceUnavailable,
    /// `call_full`: the voice call has its maximum number of members.
    CallFull,
    /// `not_in_call`: `voice_leave` or `voice_mute` from a member not in the call.
    NotInCall,
    /// `too_many_offers`: a `file_offer` refused because the room, the
    /// sender's name or the sender's IP address already has as many live
    /// transfers (uploads and offers, whatever session made them) as allowed.
    TooManyOffers,
    /// `upload_timeout`: an upload received no chunk for `upload_stall_secs`
    /// and was aborted.
    UploadTimeout,
    /// `too_many_connections`: the connection's address (an IPv6 address by
    /// its /64) already holds `max_connections_per_address` connections, or
    /// `max_handshakes_per_address` connections not yet logged in. Fatal.
    TooManyConnections,
    /// `store_unavailable`: the server could not store this chat message in
    /// its history (database unwritable, disk full, locked); the message was
    /// not delivered to anyone. Not fatal: presence and pings go on, and a
    /// later message may succeed.
    StoreUnavailable,
    /// `room_invalid`: a room name refused like a user name (empty, too
    /// long, invisible or mixed-script characters; docs/protocol.md 23.1),
    /// or a topic too long or with control characters.
    RoomInvalid,
    /// `room_unknown`: no room of that name, and this member may not create
    /// it (`room_creation`).
    RoomUnknown,
    /// `not_in_room`: a chat, page, `part` or `topic` for a room this
    /// member is not in.
    NotInRoom,
    /// `too_many_rooms`: the server has `max_rooms` rooms, or this member
    /// is in `max_rooms_per_member`.
    TooManyRooms,
    /// `forbidden`: a moderation action (`kick`, `ban`, `unban`, `mute`,
    /// `unmute`, `set_role`, `delete`) this member's role in that room does
    /// not allow, or aimed at a member of an equal or higher role.
    Forbidden,
    /// `no_such_member`: a moderation action naming nobody in that room
    /// (or, for `unban`/`unmute`/`set_role`, nobody banned, muted or
    /// registered under that name); `delete` of an id no room shows.
    NoSuchMember,
    /// `banned`: `hello` or `join` by a member banned from that room (the
    /// message says until when). Not fatal.
    Banned,
    /// `muted`: a `chat` in a room where this member is muted (with the
    /// chat's `ref`).
    Muted,
    /// `invite_only`: a `join` of an invite-only room by a member nobody
    /// invited (docs/protocol.md 23.5).
    InviteOnly,
    /// `history_limit`: a `history` request whose `limit` is 0 or above the
    /// server's `history_page_max`.
    HistoryLimit,
    /// `unknown_message`: a `history` request's `before`, or a `hello`'s
    /// `last_seen`, names a chat id this server never assigned (0, or
    /// beyond the newest).
    UnknownMessage,
    /// `auth_failed`: a wrong password or token, credentials for a name
    /// that is not registered, or a registered name without credentials
    /// on a `hello` (docs/protocol.md, accounts). The connection stays in
    /// the handshake and may try again.
    AuthFailed,
    /// `auth_throttled`: too many failed logins from this address or for
    /// this account, or too many logins being checked at once; the message
    /// says how long to wait: "... try again in N ms".
    AuthThrottled,
    /// `name_registered`: a guest asked for a registered name (with
    /// `guest_shadow = false`), or `register` of a name already registered.
    NameRegistered,
    /// `account_required`: the server takes only registered names
    /// (`require_account = true`) and the `hello` carried no credentials.
    AccountRequired,
    /// `password_invalid`: a new password shorter than 8 or longer than
    /// 1024 bytes.
    PasswordInvalid,
    /// `accounts_unavailable`: the server has no account database (no
    /// store), or it failed.
    AccountsUnavailable,
    /// Any code this version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code's wire string, e.g. `"name_empty"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NameEmpty => "name_empty",
            Self::NameTooLong => "name_too_long",
            Self::NameInvalid => "name_invalid",
            Self::Version => "version",
            Self::AlreadyLoggedIn => "already_logged_in",
            Self::JoinDenied => "join_denied",
            Self::NotLoggedIn => "not_logged_in",
            Self::TextEmpty => "text_empty",
            Self::TextTooLong => "text_too_long",
            Self::RateLimited => "rate_limited",
            Self::UnknownType => "unknown_type",
            Self::BadMessage => "bad_message",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::BadFrame => "bad_frame",
            Self::FrameTooLarge => "frame_too_large",
            Self::ServerFull => "server_full",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::Rejected => "rejected",
            Self::FileNameInvalid => "file_name_invalid",
            Self::FileNameTooLong => "file_name_too_long",
            Self::FileTooLarge => "file_too_large",
            Self::QuotaExceeded => "quota_exceeded",
            Self::BadHash => "bad_hash",
            Self::UnknownTransfer => "unknown_transfer",
            Self::BadOffset => "bad_offset",
            Self::SizeMismatch => "size_mismatch",
            Self::HashMismatch => "hash_mismatch",
            Self::TooManyTransfers => "too_many_transfers",
            Self::StorageError => "storage_error",
            Self::VoiceUnavailable => "voice_unavailable",
            Self::CallFull => "call_full",
            Self::NotInCall => "not_in_call",
            Self::TooManyOffers => "too_many_offers",
            Self::UploadTimeout => "upload_timeout",
            Self::TooManyConnections => "too_many_connections",
            Self::StoreUnavailable => "store_unavailable",
            Self::RoomInvalid => "room_invalid",
            Self::RoomUnknown => "room_unknown",
            Self::NotInRoom => "not_in_room",
            Self::TooManyRooms => "too_many_rooms",
            Self::Forbidden => "forbidden",
            Self::NoSuchMember => "no_such_member",
            Self::Banned => "banned",
            Self::Muted => "muted",
            Self::InviteOnly => "invite_only",
            Self::HistoryLimit => "history_limit",
            Self::UnknownMessage => "unknown_message",
            Self::AuthFailed => "auth_failed",
            Self::AuthThrottled => "auth_throttled",
            Self::NameRegistered => "name_registered",
            Self::AccountRequired => "account_required",
            Self::PasswordInvalid => "password_invalid",
            Self::AccountsUnavailable => "accounts_unavailable",
            Self::Unknown => "unknown",
        }
    }

    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::BadFrame
                | Self::FrameTooLarge
                | Self::ServerFull
                | Self::HandshakeTimeout
                | Self::TooManyConnections
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a member left the room (`reason` field of `left`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// `quit`: the client said `bye` or closed its connection.
    Quit,
    /// `timeout`: nothing heard from the client for longer than the idle timeout.
    Timeout,
    /// `error`: a socket error, or a fatal protocol error by the client.
    Error,
    /// `slow`: the client did not read, and its queued output passed the hard cap.
    Slow,
    /// `kicked`: removed by the server's operator or embedding program.
    Kicked,
    /// `shutdown`: the server is shutting down.
    Shutdown,
    /// `banned`: removed by a room's moderator with a ban.
    Banned,
    /// Any reason this version does not know.
    #[serde(other)]
    Unknown,
}

impl LeaveReason {
    /// The reason's wire string, e.g. `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quit => "quit",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::Slow => "slow",
            Self::Kicked => "kicked",
            Self::Shutdown => "shutdown",
            Self::Banned => "banned",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

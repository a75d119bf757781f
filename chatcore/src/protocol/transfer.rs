//! File-transfer messages: offer, upload in chunks, accept or decline,
//! download in chunks, cancel. See docs/protocol.md, "File transfer".

use serde::{Deserialize, Serialize};

/// Largest `data` in one `file_chunk` or `file_data` (256 KiB).
pub const MAX_CHUNK: u32 = 256 * 1024;

/// What a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// An ordinary file.
    File,
    /// A recorded voice message (Ogg Opus).
    Voice,
    /// A kind this version does not know.
    #[serde(other)]
    Unknown,
}

/// `file_offer` from a client: "I want to share this file".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// File name as the sender has it (no directories).
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// Exact size in bytes.
    pub size: u64,
    /// SHA-256 of the whole content, 32 bytes (MessagePack bin).
    #[serde(with = "serde_bytes")]
    pub sha256: Vec<u8>,
    /// `file` or `voice`.
    #[serde(deserialize_with = "super::strict::unit_enum")]
    pub kind: FileKind,
    /// Echoed in the `file_upload` answer or the error.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
    /// Offer it in this named room (section 23.6); absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
    /// Offer it to this member only, as a direct message (section 25.4);
    /// not together with `room`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub to: Option<String>,
}

/// `file_chunk`: the next piece of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    /// The id from `file_upload`.
    pub transfer: u64,
    /// Where `data` starts; must equal the bytes sent so far.
    pub offset: u64,
    /// At most [`MAX_CHUNK`] bytes (MessagePack bin).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// `file_accept`: send me this file, from `offset` (to resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAccept {
    /// The offered transfer.
    pub transfer: u64,
    /// First byte wanted; 0 for the whole file.
    #[serde(default)]
    pub offset: u64,
}

/// A message that names only a transfer: `file_decline`, `file_cancel`,
/// `file_ready`, `file_done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferId {
    /// The transfer.
    pub transfer: u64,
}

/// `file_upload`: the server accepts an offer; upload under this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUpload {
    /// The new transfer's id, unique for the server's lifetime.
    pub transfer: u64,
    /// Largest chunk the server accepts.
    pub max_chunk: u32,
    /// The offer's `ref`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
}

/// `file_progress`: bytes of an upload the server has stored so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The transfer.
    pub transfer: u64,
    /// Bytes stored.
    pub done: u64,
    /// The declared size.
    pub total: u64,
}

/// `file_offer` from the server: a file is available to accept or decline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffered {
    /// The transfer to name in `file_accept` / `file_decline`.
    pub transfer: u64,
    /// Sender's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub from: String,
    /// Sender's session.
    pub session: u64,
    /// File name (already checked by the server; receivers still sanitise).
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content (32 bytes).
    #[serde(with = "serde_bytes")]
    pub sha256: Vec<u8>,
    /// `file` or `voice`.
    #[serde(deserialize_with = "super::strict::unit_enum")]
    pub kind: FileKind,
    /// When the upload completed, ms since the Unix epoch.
    pub ts: i64,
    /// The named room it is offered in; absent: the default room (or a
    /// direct offer, see `to`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
    /// For a file offered in a direct conversation: the recipient's name
    /// (`from` is the sender's).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub to: Option<String>,
}

/// `file_data`: a piece of a download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    /// The transfer.
    pub transfer: u64,
    /// Where `data` starts in the file.
    pub offset: u64,
    /// The bytes (MessagePack bin).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// `file_cancelled`: an upload, offer or download ended early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCancelled {
    /// The transfer.
    pub transfer: u64,
    /// `cancelled` (by its sender or by you), `expired` (time to live),
    /// `error` (storage or verification failure, quota, upload timeout).
    #[serde(deserialize_with = "super::strict::string")]
    pub reason: String,
}

//! The typed messages of both directions.
//!
//! Every message is a MessagePack map with a string key `"type"`; the other
//! keys are the named fields below. Serialisation goes through serde's
//! internally tagged enums with `rmp_serde`'s named-field encoding. Decoding
//! reads the `type` first and then deserialises the one struct it names: that
//! gives `unknown_type` and `bad_message` their own errors and avoids serde's
//! buffering of internally tagged enums.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::codes::{ErrorCode, LeaveReason};
use super::transfer::{
    FileAccept, FileCancelled, FileChunk, FileData, FileOffer, FileOffered, FileProgress,
    FileUpload, TransferId,
};
use super::voice::{VoiceJoined, VoiceKey, VoiceMute, VoiceState};
use super::wellformed::{self, Malformed};

/// `hello`: the first message of a connection, asking to join under `name`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the client speaks; must be 2.
    pub version: u32,
    /// Requested display name; the server may add a `(n)` suffix.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// The password of the registered name `name` (docs/protocol.md,
    /// accounts); absent for a guest or a token login.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub password: Option<String>,
    /// A session token from an earlier `welcome`/`registered`, instead of
    /// the password (64 hex digits): what automatic reconnects send.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub token: Option<String>,
    /// Resuming: the id of the last chat this client saw before its
    /// connection was lost. The server answers the `welcome` with one
    /// `history` frame holding the chats after it, so nothing said while
    /// the client was away is missed (docs/protocol.md 21.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
}

/// `history` from a client: one page of older chats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// Only chats with an id below this one; absent asks for the newest.
    /// Paging back passes the id of the oldest chat the client has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Most chats in the page: 1 to the server's `history_page_max`.
    pub limit: u32,
    /// The room (docs/protocol.md section 23); absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// `history` from the server: a page of chats, or the chats a resuming
/// client missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The chats, oldest first, each as in a `chat` frame without `ref`.
    pub messages: Vec<Chat>,
    /// Older chats than the first of `messages` exist: page on with
    /// `before` = that id.
    pub more: bool,
    /// In a page: the request's `before`, echoed so the client can match
    /// the page to its request; absent when the request had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// In the answer to a resuming `hello`: its `last_seen`; absent in pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// In the answer to a resuming `hello`: chats after `after` were missed
    /// that are not in `messages` (more than `resume_max`, or no longer
    /// kept); the client pages back from the first of `messages` to fill
    /// the gap. Always false in pages.
    #[serde(default)]
    pub gap: bool,
    /// The room (docs/protocol.md section 23); absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// `register`: a logged-in guest registers its current name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// The password, 8 to 1024 bytes of UTF-8.
    #[serde(deserialize_with = "super::strict::string")]
    pub password: String,
}

/// `change_password`: an authenticated member replaces its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePassword {
    /// The current password.
    #[serde(deserialize_with = "super::strict::string")]
    pub old: String,
    /// The new password, 8 to 1024 bytes.
    #[serde(deserialize_with = "super::strict::string")]
    pub new: String,
}

/// `registered`: the answer to `register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The name now registered (the member's current name).
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// A session token for reconnecting without the password.
    #[serde(deserialize_with = "super::strict::string")]
    pub token: String,
}

/// `password_changed`: the answer to `change_password`. Every older token
/// of the account is revoked; this one replaces them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    /// The new session token.
    #[serde(deserialize_with = "super::strict::string")]
    pub token: String,
}

/// `chat` from a client: a text for the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSend {
    /// The text; UTF-8, not empty, at most the server's text limit.
    #[serde(deserialize_with = "super::strict::string")]
    pub text: String,
    /// Client-chosen number echoed in the sender's own copy and in errors
    /// about this message, so the client can match them to what it sent.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
    /// The room (docs/protocol.md section 23); absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// `ping` / `pong` body: a sequence number the answer echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seq {
    /// Any number chosen by the pinging side.
    pub seq: u64,
}

/// `part` from a client, `room_parted` from the server: the room left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomName {
    /// The room's name (section 23.1).
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
}

/// `join` from a client: the room to enter (created when it does not exist
/// and the member may create rooms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRoom {
    /// The room's name (section 23.1).
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
    /// Create the room invite-only (section 23.5); ignored when the room
    /// exists already.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invite_only: bool,
}

/// `voice_join` from a client: the call to enter (section 16.1, 23.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceJoinRoom {
    /// The room whose call to join; absent: the default room's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// `room_mode` from a client: make a room invite-only or open (section
/// 23.5); the same from the server tells the room's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMode {
    /// The room.
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
    /// Whether only invited members (and moderators) may join.
    pub invite_only: bool,
    /// Who changed it (server to client only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub by: Option<String>,
}

/// `invite` from a client: let `name` join invite-only `room`; `invited`
/// from the server (with `by`): you may join `room` now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The room.
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
    /// Who is invited (client to server).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub name: Option<String>,
    /// Who invited (server to client).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub by: Option<String>,
}

/// `topic` from a client: set a room's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTopic {
    /// The room.
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
    /// The new topic; empty clears it.
    #[serde(deserialize_with = "super::strict::string")]
    pub topic: String,
}

/// One room in a `room_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
    /// Its topic ("" when none).
    #[serde(deserialize_with = "super::strict::string")]
    pub topic: String,
    /// Members in it now.
    pub members: u64,
    /// Whether it is the default room (where logins land).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// Whether only invited members may join it (section 23.5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invite_only: bool,
}

/// `room_list`: the answer to `rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    /// Every room, by name.
    pub rooms: Vec<RoomInfo>,
}

/// `room_joined`: you are in `room` now; who is there and what was said
/// lately (like a `welcome` for that room).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomJoined {
    /// The room.
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
    /// Its topic ("" when none).
    #[serde(deserialize_with = "super::strict::string")]
    pub topic: String,
    /// Everyone in it, including you.
    pub users: Vec<UserInfo>,
    /// Its most recent chats, oldest first.
    pub history: Vec<Chat>,
    /// Whether only invited members may join it (section 23.5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invite_only: bool,
}

/// `topic` from the server: a room's topic changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// The room.
    #[serde(deserialize_with = "super::strict::string")]
    pub room: String,
    /// The new topic ("" when cleared).
    #[serde(deserialize_with = "super::strict::string")]
    pub topic: String,
    /// Who set it.
    #[serde(deserialize_with = "super::strict::string")]
    pub by: String,
    /// Server time, ms since the Unix epoch.
    pub ts: i64,
}

/// `kick`, `ban`, `unban`, `mute`, `unmute` from a moderator
/// (docs/protocol.md section 24): what to do to whom, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderate {
    /// The member's name (as shown; a look-alike finds it too).
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// The room; absent: the default room (where a kick or ban removes the
    /// member from the server).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
    /// For `ban` and `mute`: how long, in minutes; absent: the default
    /// (forever for a registered name, 60 for a guest's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// Why, shown to the room (at most 200 bytes).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub reason: Option<String>,
}

/// `set_role` from a room's owner: `name` becomes `role` in `room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRole {
    /// A registered name.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// The room; absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
    /// `owner`, `moderator` or `member`.
    #[serde(deserialize_with = "super::strict::string")]
    pub role: String,
}

/// `delete` from a client: remove chat `id` for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    /// The chat's id.
    pub id: u64,
    /// The named room the chat is in (absent: the default room). Needed
    /// only for a chat older than the room's newest `history_len`, which
    /// the server finds in its store (section 24.2).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// `moderated`: a moderation action, told to the room it happened in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderated {
    /// `kick`, `ban`, `unban`, `mute`, `unmute` or `role`.
    #[serde(deserialize_with = "super::strict::string")]
    pub action: String,
    /// The member it was done to.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// Who did it (a member's name, or `server` for the embedding
    /// program).
    #[serde(deserialize_with = "super::strict::string")]
    pub by: String,
    /// The room; absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
    /// Why, as given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub reason: Option<String>,
    /// For `ban` and `mute` with an end: when it ends, ms since the Unix
    /// epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// For `role`: the new role.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub role: Option<String>,
    /// Server time, ms since the Unix epoch.
    pub ts: i64,
}

/// `deleted`: chat `id` was deleted; clients remove it from view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The chat's id.
    pub id: u64,
    /// Its room; absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
    /// Who deleted it.
    #[serde(deserialize_with = "super::strict::string")]
    pub by: String,
}

/// `dm` from a client: a direct message to one member (docs/protocol.md
/// section 25).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmSend {
    /// The recipient's name (online, or a registered name).
    #[serde(deserialize_with = "super::strict::string")]
    pub to: String,
    /// The text, checked like a chat's.
    #[serde(deserialize_with = "super::strict::string")]
    pub text: String,
    /// Echoed in the sender's own copy and in errors about it.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
}

/// `dm` from the server: a direct message, to its recipient and (with the
/// `ref`) back to its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dm {
    /// Its id, from the same server-wide counter as chats.
    pub id: u64,
    /// The sender's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub from: String,
    /// The sender's session (of the login that sent it).
    pub session: u64,
    /// The recipient's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub to: String,
    /// The text.
    #[serde(deserialize_with = "super::strict::string")]
    pub text: String,
    /// Server time of acceptance, ms since the Unix epoch.
    pub ts: i64,
    /// The sender's `ref`, only in the sender's own copy.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
}

/// `dm_history` from a client: a page of the conversation with `with`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmHistoryRequest {
    /// The other member's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub with: String,
    /// Only messages with a smaller id; absent: the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Most messages: 1 to `history_page_max`.
    pub limit: u32,
}

/// `dm_history` from the server: a page of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmHistory {
    /// The other member's name, as asked.
    #[serde(deserialize_with = "super::strict::string")]
    pub with: String,
    /// The messages, oldest first.
    pub messages: Vec<Dm>,
    /// Older messages exist: page on with `before` = the first id.
    pub more: bool,
    /// The request's `before`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

/// One conversation with unread messages, in `dm_unread`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmUnreadEntry {
    /// The other member's name (as it sent its newest message).
    #[serde(deserialize_with = "super::strict::string")]
    pub with: String,
    /// Messages not marked read.
    pub count: u64,
    /// The newest one's id.
    pub last_id: u64,
}

/// `dm_unread`: after the `welcome` of a registered login, the
/// conversations with messages it has not marked read (sent while it was
/// away, or not read on another device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmUnread {
    /// By conversation.
    pub conversations: Vec<DmUnreadEntry>,
}

/// `dm_read` from a client: everything of the conversation with `with` up
/// to `id` is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmRead {
    /// The other member's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub with: String,
    /// The newest id read.
    pub id: u64,
}

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Log in.
    Hello(Hello),
    /// Say something to the room.
    Chat(ChatSend),
    /// Ask for a `pong`.
    Ping(Seq),
    /// Answer the server's `ping`.
    Pong(Seq),
    /// Leave cleanly.
    Bye,
    /// Offer a file to the room.
    FileOffer(FileOffer),
    /// The next piece of an upload.
    FileChunk(FileChunk),
    /// Download an offered file.
    FileAccept(FileAccept),
    /// Not interested in an offered file.
    FileDecline(TransferId),
    /// Stop an upload (sender) or a download (receiver), or withdraw an offer.
    FileCancel(TransferId),
    /// Join the default room's voice call.
    VoiceJoin,
    /// Join a named room's voice call (the same `voice_join` type, with
    /// its `room`).
    #[serde(rename = "voice_join")]
    VoiceJoinRoom(VoiceJoinRoom),
    /// Leave the voice call.
    VoiceLeave,
    /// Mute or unmute yourself in the call.
    VoiceMute(VoiceMute),
    /// Ask for a page of older chats.
    History(HistoryRequest),
    /// Register the current name with a password.
    Register(Register),
    /// Replace the password.
    ChangePassword(ChangePassword),
    /// Revoke this connection's session token.
    Logout,
    /// List the rooms.
    Rooms,
    /// Enter a room (creating it if it does not exist and you may).
    Join(JoinRoom),
    /// Leave a room.
    Part(RoomName),
    /// Set a room's topic.
    Topic(SetTopic),
    /// Remove a member from a room (the default room: from the server).
    Kick(Moderate),
    /// Remove a member and keep it (its account, or a guest's address) out.
    Ban(Moderate),
    /// Lift a ban.
    Unban(Moderate),
    /// Refuse a member's chats in a room for a while.
    Mute(Moderate),
    /// Lift a mute.
    Unmute(Moderate),
    /// Give a registered member a role in a room.
    SetRole(SetRole),
    /// Delete a chat for everyone.
    Delete(Delete),
    /// A direct message.
    Dm(DmSend),
    /// A page of a direct conversation.
    DmHistory(DmHistoryRequest),
    /// Mark a direct conversation read.
    DmRead(DmRead),
    /// Make a room invite-only or open.
    RoomMode(RoomMode),
    /// Invite a member to an invite-only room.
    Invite(Invite),
}

/// One member of the room as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserInfo {
    /// Display name, unique in the room.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// Server-assigned id of this login, unique for the server's lifetime.
    pub session: u64,
}

/// `welcome`: the answer to a successful `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Protocol version the server speaks (1).
    pub version: u32,
    /// The name assigned, e.g. `alice(1)` if `alice` was taken.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// This login's session id.
    pub session: u64,
    /// Everyone in the room, including this client, in no particular order.
    pub users: Vec<UserInfo>,
    /// The most recent chat messages, oldest first.
    pub history: Vec<Chat>,
    /// The server pings a client silent this long; a client silent for the
    /// idle timeout (three times this by default) is removed.
    pub heartbeat_ms: u32,
    /// The largest frame body the server accepts.
    pub max_frame: u32,
    /// The longest chat text in bytes the server accepts.
    #[serde(default)]
    pub max_text: u32,
    /// The login was authenticated (password or token): the name is
    /// registered and belongs to this client. Absent (false) for guests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub registered: bool,
    /// A new session token (password logins only): send it as `hello.token`
    /// to reconnect without the password.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub token: Option<String>,
}

/// `chat` from the server: a message delivered to the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// Room-wide id, increasing by one per accepted message.
    pub id: u64,
    /// Sender's name at the time of sending.
    #[serde(deserialize_with = "super::strict::string")]
    pub from: String,
    /// Sender's session; 0 for a message from the server itself.
    pub session: u64,
    /// The text.
    #[serde(deserialize_with = "super::strict::string")]
    pub text: String,
    /// Server time of acceptance, milliseconds since the Unix epoch (UTC).
    pub ts: i64,
    /// The sender's `ref`, present only in the sender's own copy.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
    /// The room (docs/protocol.md section 23); absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// `joined`: one member joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The new member's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// The new member's session.
    pub session: u64,
    /// Server time, ms since the Unix epoch.
    pub ts: i64,
}

/// `left`: one member left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The member's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// The member's session.
    pub session: u64,
    /// Server time, ms since the Unix epoch.
    pub ts: i64,
    /// Why.
    #[serde(deserialize_with = "super::strict::unit_enum")]
    pub reason: LeaveReason,
}

/// One departure inside a `presence` batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// The member's name.
    #[serde(deserialize_with = "super::strict::string")]
    pub name: String,
    /// The member's session.
    pub session: u64,
    /// Why.
    #[serde(deserialize_with = "super::strict::unit_enum")]
    pub reason: LeaveReason,
}

/// `presence`: several joins and leaves of one server loop turn in one frame.
///
/// Apply all of `joined`, then all of `left`. Joins of sessions already known
/// and leaves of unknown sessions are no-ops (see docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Server time, ms since the Unix epoch.
    pub ts: i64,
    /// Members who joined.
    pub joined: Vec<UserInfo>,
    /// Members who left.
    pub left: Vec<Departure>,
    /// The room (docs/protocol.md section 23); absent: the default room.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// `error`: something the client sent was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMsg {
    /// Machine-readable code.
    #[serde(deserialize_with = "super::strict::unit_enum")]
    pub code: ErrorCode,
    /// Human-readable explanation (English).
    #[serde(deserialize_with = "super::strict::string")]
    pub message: String,
    /// The `ref` of the chat message (or file offer) this error is about, if any.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u64>,
    /// The transfer this error is about, for errors answering `file_chunk`,
    /// `file_accept`, `file_decline`, `file_cancel`, and upload failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<u64>,
    /// The room this error is about, for errors answering a message that
    /// names one (`join`, `part`, `topic`, `room_mode`, `invite`, ...), so
    /// that a client with several requests out can tell them apart.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::strict::opt_string"
    )]
    pub room: Option<String>,
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Login accepted.
    Welcome(Welcome),
    /// A room message.
    Chat(Chat),
    /// One member joined.
    Joined(Joined),
    /// One member left.
    Left(Left),
    /// Several joins/leaves at once.
    Presence(Presence),
    /// The server checks the client is alive; answer with `pong`.
    Ping(Seq),
    /// Answer to the client's `ping`.
    Pong(Seq),
    /// A refusal.
    Error(ErrorMsg),
    /// An offer was accepted: upload it under this id.
    FileUpload(FileUpload),
    /// Upload progress (to the uploader).
    FileProgress(FileProgress),
    /// The upload is complete, verified and offered to the room.
    FileReady(TransferId),
    /// A file is offered to you.
    FileOffer(FileOffered),
    /// A piece of a download.
    FileData(FileData),
    /// The download is complete (every byte was sent).
    FileDone(TransferId),
    /// An upload, offer or download ended early.
    FileCancelled(FileCancelled),
    /// You are in the voice call: how to use the voice port.
    VoiceJoined(VoiceJoined),
    /// Who is in the voice call now.
    VoiceState(VoiceState),
    /// The call's key changed (a member joined or left): seal with it now.
    VoiceKey(VoiceKey),
    /// A page of older chats, or what a resuming client missed.
    History(History),
    /// `register` succeeded.
    Registered(Registered),
    /// `change_password` succeeded.
    PasswordChanged(PasswordChanged),
    /// `logout` done: the connection's token is revoked.
    LoggedOut,
    /// The answer to `rooms`.
    RoomList(RoomList),
    /// You entered a room.
    RoomJoined(RoomJoined),
    /// You left a room.
    RoomParted(RoomName),
    /// A room's topic changed.
    Topic(Topic),
    /// A moderation action in a room.
    Moderated(Moderated),
    /// A chat was deleted.
    Deleted(Deleted),
    /// A direct message.
    Dm(Dm),
    /// A page of a direct conversation.
    DmHistory(DmHistory),
    /// Conversations with unread direct messages.
    DmUnread(DmUnread),
    /// A room became invite-only or open.
    RoomMode(RoomMode),
    /// You were invited to a room.
    Invited(Invite),
    /// An announcement from the server's operator (docs/protocol.md,
    /// "Server notices").
    Notice(Notice),
}

/// `notice` from the server: an operator's announcement to everyone
/// logged in (e.g. "restarting at 22:00"), in no room and no history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The announcement (at most `max_text_bytes`).
    #[serde(deserialize_with = "super::strict::string")]
    pub text: String,
    /// Server time, ms since the Unix epoch.
    pub ts: i64,
}

/// Why a complete frame body could not be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// Not exactly one well-formed MessagePack map (`bad_frame`, fatal).
    #[error("bad frame: {0}")]
    BadFrame(Malformed),
    /// A string is not UTF-8 (`invalid_utf8`).
    #[error("a string in the message is not valid UTF-8")]
    InvalidUtf8,
    /// The map has no string `type` key (`bad_message`).
    #[error("message has no string \"type\" field")]
    MissingType,
    /// A key of the message's map is not a str (`bad_message`): fields are
    /// named, never numbered (docs/protocol.md section 3).
    #[error("a key of the message map is not a string")]
    NonStrKey,
    /// The `type` is not one this side knows (`unknown_type`).
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A field is missing or has the wrong type (`bad_message`).
    #[error("bad {kind} message: {detail}")]
    BadField {
        /// The message type.
        kind: &'static str,
        /// What serde said.
        detail: String,
    },
}

impl MessageError {
    /// The error code the server answers this with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadFrame(_) => ErrorCode::BadFrame,
            Self::InvalidUtf8 => ErrorCode::InvalidUtf8,
            Self::MissingType | Self::NonStrKey | Self::BadField { .. } => ErrorCode::BadMessage,
            Self::UnknownType(_) => ErrorCode::UnknownType,
        }
    }
}

/// Only the `type` key of a message; every other key is skipped.
#[derive(Deserialize)]
struct TypeTag<'a> {
    #[serde(
        rename = "type",
        borrow,
        deserialize_with = "super::strict::borrowed_str"
    )]
    ty: &'a str,
}

/// Checks the body (section 4, steps 1 and 2) and returns what serde should
/// read: the body itself, or a copy with absurdly deep nesting cut to `nil`
/// (see [`wellformed::flatten_deep`]) so that skipping an unknown field never
/// depends on how deep it is.
fn checked(body: &[u8]) -> Result<Cow<'_, [u8]>, MessageError> {
    match wellformed::check(body) {
        Ok(()) => {}
        Err(Malformed::InvalidUtf8) => return Err(MessageError::InvalidUtf8),
        Err(other) => return Err(MessageError::BadFrame(other)),
    }
    if !wellformed::top_level_keys_are_str(body) {
        return Err(MessageError::NonStrKey);
    }
    Ok(match wellformed::flatten_deep(body) {
        Some(flat) => Cow::Owned(flat),
        None => Cow::Borrowed(body),
    })
}

/// The body's `type` (section 4, step 3): one key `"type"` whose value is a str.
fn type_of(body: &[u8]) -> Result<&str, MessageError> {
    let tag: TypeTag<'_> = rmp_serde::from_slice(body).map_err(|_| MessageError::MissingType)?;
    Ok(tag.ty)
}

/// Deserialises the body as the struct of message type `kind`.
fn body_as<'de, T: Deserialize<'de>>(
    kind: &'static str,
    body: &'de [u8],
) -> Result<T, MessageError> {
    rmp_serde::from_slice(body).map_err(|e| MessageError::BadField {
        kind,
        detail: e.to_string(),
    })
}

impl ClientMessage {
    /// Decodes one frame body (without the length prefix).
    pub fn from_body(body: &[u8]) -> Result<Self, MessageError> {
        let body = checked(body)?;
        let body = &*body;
        Ok(match type_of(body)? {
            "hello" => Self::Hello(body_as("hello", body)?),
            "chat" => Self::Chat(body_as("chat", body)?),
            "ping" => Self::Ping(body_as("ping", body)?),
            "pong" => Self::Pong(body_as("pong", body)?),
            "bye" => Self::Bye,
            "file_offer" => Self::FileOffer(body_as("file_offer", body)?),
            "file_chunk" => Self::FileChunk(body_as("file_chunk", body)?),
            "file_accept" => Self::FileAccept(body_as("file_accept", body)?),
            "file_decline" => Self::FileDecline(body_as("file_decline", body)?),
            "file_cancel" => Self::FileCancel(body_as("file_cancel", body)?),
            "voice_join" => {
                let join: VoiceJoinRoom = body_as("voice_join", body)?;
                match join.room {
                    Some(_) => Self::VoiceJoinRoom(join),
                    None => Self::VoiceJoin,
                }
            }
            "voice_leave" => Self::VoiceLeave,
            "voice_mute" => Self::VoiceMute(body_as("voice_mute", body)?),
            "history" => Self::History(body_as("history", body)?),
            "register" => Self::Register(body_as("register", body)?),
            "change_password" => Self::ChangePassword(body_as("change_password", body)?),
            "logout" => Self::Logout,
            "rooms" => Self::Rooms,
            "join" => Self::Join(body_as("join", body)?),
            "part" => Self::Part(body_as("part", body)?),
            "topic" => Self::Topic(body_as("topic", body)?),
            "kick" => Self::Kick(body_as("kick", body)?),
            "ban" => Self::Ban(body_as("ban", body)?),
            "unban" => Self::Unban(body_as("unban", body)?),
            "mute" => Self::Mute(body_as("mute", body)?),
            "unmute" => Self::Unmute(body_as("unmute", body)?),
            "set_role" => Self::SetRole(body_as("set_role", body)?),
            "delete" => Self::Delete(body_as("delete", body)?),
            "dm" => Self::Dm(body_as("dm", body)?),
            "dm_history" => Self::DmHistory(body_as("dm_history", body)?),
            "dm_read" => Self::DmRead(body_as("dm_read", body)?),
            "room_mode" => Self::RoomMode(body_as("room_mode", body)?),
            "invite" => Self::Invite(body_as("invite", body)?),
            other => return Err(MessageError::UnknownType(other.to_owned())),
        })
    }
}

impl ServerMessage {
    /// Decodes one frame body (without the length prefix).
    pub fn from_body(body: &[u8]) -> Result<Self, MessageError> {
        let body = checked(body)?;
        let body = &*body;
        Ok(match type_of(body)? {
            "welcome" => Self::Welcome(body_as("welcome", body)?),
            "chat" => Self::Chat(body_as("chat", body)?),
            "joined" => Self::Joined(body_as("joined", body)?),
            "left" => Self::Left(body_as("left", body)?),
            "presence" => Self::Presence(body_as("presence", body)?),
            "ping" => Self::Ping(body_as("ping", body)?),
            "pong" => Self::Pong(body_as("pong", body)?),
            "error" => Self::Error(body_as("error", body)?),
            "file_upload" => Self::FileUpload(body_as("file_upload", body)?),
            "file_progress" => Self::FileProgress(body_as("file_progress", body)?),
            "file_ready" => Self::FileReady(body_as("file_ready", body)?),
            "file_offer" => Self::FileOffer(body_as("file_offer", body)?),
            "file_data" => Self::FileData(body_as("file_data", body)?),
            "file_done" => Self::FileDone(body_as("file_done", body)?),
            "file_cancelled" => Self::FileCancelled(body_as("file_cancelled", body)?),
            "voice_joined" => Self::VoiceJoined(body_as("voice_joined", body)?),
            "voice_state" => Self::VoiceState(body_as("voice_state", body)?),
            "voice_key" => Self::VoiceKey(body_as("voice_key", body)?),
            "history" => Self::History(body_as("history", body)?),
            "registered" => Self::Registered(body_as("registered", body)?),
            "password_changed" => Self::PasswordChanged(body_as("password_changed", body)?),
            "logged_out" => Self::LoggedOut,
            "room_list" => Self::RoomList(body_as("room_list", body)?),
            "room_joined" => Self::RoomJoined(body_as("room_joined", body)?),
            "room_parted" => Self::RoomParted(body_as("room_parted", body)?),
            "topic" => Self::Topic(body_as("topic", body)?),
            "moderated" => Self::Moderated(body_as("moderated", body)?),
            "deleted" => Self::Deleted(body_as("deleted", body)?),
            "dm" => Self::Dm(body_as("dm", body)?),
            "dm_history" => Self::DmHistory(body_as("dm_history", body)?),
            "dm_unread" => Self::DmUnread(body_as("dm_unread", body)?),
            "room_mode" => Self::RoomMode(body_as("room_mode", body)?),
            "invited" => Self::Invited(body_as("invited", body)?),
            "notice" => Self::Notice(body_as("notice", body)?),
            other => return Err(MessageError::UnknownType(other.to_owned())),
        })
    }
}

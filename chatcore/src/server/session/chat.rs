//! `chat`: a member's text to the room, checked, offered to the hooks,
//! given an id and a timestamp by the room, and broadcast.

use super::Ctx;
use crate::protocol::{ChatSend, ErrorCode};
use crate::server::hooks::ChatDecision;
use crate::time::now_ms;

/// `chat` from member `key`.
pub(crate) fn chat(ctx: &mut Ctx<'_>, key: usize, chat: ChatSend) {
    let ChatSend { text, reference } = chat;
    if !ctx.allow_frame(key, reference) {
        return;
    }
    if text.trim().is_empty() {
        ctx.protocol_error(key, ErrorCode::TextEmpty, "the text is empty", reference);
        return;
    }
    if text.len() > ctx.config.max_text_bytes {
        let msg = format!(
            "the text is longer than {} bytes",
            ctx.config.max_text_bytes
        );
        ctx.protocol_error(key, ErrorCode::TextTooLong, &msg, reference);
        return;
    }
    let Some(from) = ctx.room.member(key).cloned() else {
        return;
    };
    let text = match ctx.hooks.on_chat(&from, &text) {
        ChatDecision::Deliver => text,
        ChatDecision::Rewrite(new) => match fit_text(new, ctx.config.max_text_bytes) {
            Some(new) => new,
            None => {
                let why = "the message was removed by the server";
                ctx.protocol_error(key, ErrorCode::Rejected, why, reference);
                return;
            }
        },
        ChatDecision::Reject(why) => {
            ctx.protocol_error(key, ErrorCode::Rejected, &why, reference);
            return;
        }
    };
    let ts = now_ms();
    if ctx
        .room
        .chat(key, text, reference, ts, &mut ctx.out)
        .is_some()
    {
        ctx.stats.messages += 1;
    }
}

/// A text from the server side (a hook's rewrite, a broadcast) held to the
/// limits clients rely on: `None` if blank, else cut to `max` bytes at a
/// character boundary.
pub(crate) fn fit_text(mut text: String, max: usize) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    let keep = crate::protocol::text::cut(&text, max).len();
    text.truncate(keep);
    Some(text)
}

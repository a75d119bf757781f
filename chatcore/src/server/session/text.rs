//! The text of a chat or a direct message: checked against the limits
//! (and charged to the rate limit), then put to the embedding program's
//! hooks, whose rewrite must fit the same limits.

use super::Ctx;
use crate::protocol::ErrorCode;
use crate::server::hooks::ChatDecision;

/// Charges the rate limit and checks a member's text (a chat's or a direct
/// message's): not blank, at most `max_text_bytes`; answers the error with
/// `reference` if not.
pub(crate) fn accept_text(
    ctx: &mut Ctx<'_>,
    key: usize,
    text: &str,
    reference: Option<u64>,
) -> bool {
    if !ctx.allow_frame(key, reference) {
        return false;
    }
    if text.trim().is_empty() {
        ctx.protocol_error(key, ErrorCode::TextEmpty, "the text is empty", reference);
        return false;
    }
    if text.len() > ctx.config.max_text_bytes {
        let msg = format!(
            "the text is longer than {} bytes",
            ctx.config.max_text_bytes
        );
        ctx.protocol_error(key, ErrorCode::TextTooLong, &msg, reference);
        return false;
    }
    true
}

/// What the hooks decided about `text` from `key`: the text to deliver, or
/// `None` after answering `rejected` (a refusal, or a rewrite left empty).
pub(crate) fn decided(
    ctx: &mut Ctx<'_>,
    key: usize,
    decision: ChatDecision,
    text: String,
    reference: Option<u64>,
) -> Option<String> {
    let refused = match decision {
        ChatDecision::Deliver => return Some(text),
        ChatDecision::Rewrite(new) => match fit_text(new, ctx.config.max_text_bytes) {
            Some(new) => return Some(new),
            None => "the message was removed by the server".to_owned(),
        },
        ChatDecision::Reject(why) => why,
    };
    ctx.protocol_error(key, ErrorCode::Rejected, &refused, reference);
    None
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

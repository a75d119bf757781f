//! Small view functions of the room: a message line, a file card, the user
//! list, a labelled progress bar.

pub mod message_line;
pub mod offer_card;
pub mod progress;
pub mod user_list;

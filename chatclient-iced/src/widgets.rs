//! Small view functions, generic over the message type of the screen that
//! uses them and knowing nothing of its state: a message line, the user
//! list, a labelled progress bar. Views tied to a screen's own types (the
//! room's file card) live in that screen.

pub mod message_line;
pub mod progress;
pub mod user_list;

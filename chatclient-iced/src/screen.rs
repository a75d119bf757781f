//! The two screens of the client, each with its own state, `Message` and
//! `update`/`view`.

pub mod login;
pub mod room;

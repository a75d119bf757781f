//! The two screens of the client, each with its own state, `Message` and
//! `update`/`view`, and the certificate prompt drawn over either.

pub mod login;
pub mod room;
pub mod trust;

//! What client messages do: login, chat, files and voice.

mod login;
mod transfer;
mod voice;

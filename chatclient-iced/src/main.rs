//! The desktop client. Its GUI (iced), audio and voice arrive with their own
//! issue; until then this binary says so and points to the terminal client,
//! which speaks the same protocol.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "chatclient-iced: the desktop client is not available yet.\n\
         Join a room from a terminal instead:\n  \
         cargo run -p chat-examples --example chat -- --server 127.0.0.1:6789 --name YOURNAME"
    );
    ExitCode::from(2)
}

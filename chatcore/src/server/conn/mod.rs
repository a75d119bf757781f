//! A chat connection and what it carries: its socket and buffers
//! (`connection`), its output queue (`outqueue`), its flood control
//! (`ratelimit`), and the per-address counts taken at accept (`peers`).

mod connection;
pub(crate) mod outqueue;
pub(crate) mod peers;
pub(crate) mod ratelimit;

pub(crate) use connection::{Connection, Phase};

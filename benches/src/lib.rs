//! The parts of the load generator shared by its binaries: `chatbench`
//! (chat load), `filebench` (file transfer) and `plot`.

pub mod fastparse;
pub mod histogram;
pub mod loadgen;
pub mod report;
pub mod spawn;

//! The parts of the load generator shared by its binaries: `chatbench`
//! (chat load), `filebench` (file transfer), `chatattack` (hostile users)
//! and `plot`.

pub mod attack;
pub mod fastparse;
pub mod histogram;
pub mod loadgen;
pub mod report;
pub mod spawn;

/// How every binary of this crate ends: the error and its causes on one line
/// of stderr, exit code 1; exit code 0 on success.
pub fn exit(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! The rules for offered file names (the server's side). The rules
//! themselves live in [`crate::protocol::file_name`], shared with the
//! client's sanitiser (receivers sanitise again before saving, see
//! `client::transfer`), so both sides use one list of device names.

use crate::protocol::ErrorCode;
use crate::protocol::file_name;

/// Checks an offered file name; returns the error code to answer with
/// (docs/protocol.md 17.9; the rules and their tests are in
/// [`file_name::check`]).
pub fn check(name: &str) -> Result<(), (ErrorCode, &'static str)> {
    file_name::check(name).map_err(|e| (e.code(), e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::file_name::MAX_FILE_NAME;

    #[test]
    fn refusals_carry_the_code_and_message_of_the_shared_rules() {
        assert_eq!(check("report.pdf"), Ok(()));
        assert_eq!(
            check("CONIN$"),
            Err((
                ErrorCode::FileNameInvalid,
                "the file name is a reserved device name"
            ))
        );
        assert_eq!(
            check(&"x".repeat(MAX_FILE_NAME + 1)).map_err(|e| e.0),
            Err(ErrorCode::FileNameTooLong)
        );
    }
}

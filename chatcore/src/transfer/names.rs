//! The rules for offered file names (the server's side; receivers sanitise
//! again before saving, see `client::transfer`).

use crate::protocol::ErrorCode;

/// Longest offered name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Device names Windows reserves in any directory, with or without extension.
const RESERVED: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Checks an offered file name; returns the error code to answer with.
pub fn check(name: &str) -> Result<(), (ErrorCode, &'static str)> {
    let invalid = ErrorCode::FileNameInvalid;
    if name.len() > MAX_NAME_BYTES {
        return Err((
            ErrorCode::FileNameTooLong,
            "the file name is longer than 255 bytes",
        ));
    }
    if name.trim().is_empty() {
        return Err((invalid, "the file name is empty"));
    }
    if name == "." || name == ".." {
        return Err((invalid, "the file name is . or .."));
    }
    if name.contains(['/', '\\']) {
        return Err((invalid, "the file name contains a path separator"));
    }
    if name.chars().any(char::is_control) {
        return Err((invalid, "the file name contains control characters"));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Err((invalid, "the file name is a reserved device name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tricks_device_names_and_oversize_names_are_refused() {
        assert!(check("report.pdf").is_ok());
        assert!(check("..hidden but fine").is_ok());
        for bad in [
            "",
            "  ",
            ".",
            "..",
            "../../etc/passwd",
            "a\\b",
            "x\ny",
            "con",
            "CON.txt",
            "nul",
        ] {
            assert_eq!(
                check(bad).map_err(|e| e.0),
                Err(ErrorCode::FileNameInvalid),
                "{bad:?}"
            );
        }
        assert_eq!(
            check(&"x".repeat(4096)).map_err(|e| e.0),
            Err(ErrorCode::FileNameTooLong)
        );
    }
}

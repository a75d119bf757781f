//! File names: the one rule set both sides use (no I/O).
//!
//! - [`check`]: what the server refuses in a `file_offer` (docs/protocol.md
//!   section 17.9), answered with `file_name_too_long` or
//!   `file_name_invalid`.
//! - `sanitize`: how a receiver turns any offered name into one safe file
//!   name in a directory of its choosing (the recommended scheme of section
//!   17.9, behind `client::sanitize_file_name`).
//!
//! Both use the same list of Windows device names ([`is_reserved_device`]),
//! so a name the server lets through is never one the client must rename
//! for being a device, and the two cannot drift apart.

use thiserror::Error;

use super::ErrorCode;
#[cfg(any(feature = "client", test))]
use super::text::cut;
use super::text::is_hidden_in_file_name;

/// Longest file name, in bytes of UTF-8: the limit of common file systems,
/// and so both the longest name offered and the longest name saved.
pub const MAX_FILE_NAME: usize = 255;

/// Device names Windows reserves in every directory, whatever the extension,
/// in lower case. `COM¹`..`LPT³` (superscript digits) count as `COM1`..
/// `LPT3`, and `CONIN$` / `CONOUT$` are the console's input and output.
const RESERVED: [&str; 30] = [
    "con",
    "prn",
    "aux",
    "nul",
    "conin$",
    "conout$",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "com\u{b9}",
    "com\u{b2}",
    "com\u{b3}",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
    "lpt\u{b9}",
    "lpt\u{b2}",
    "lpt\u{b3}",
];

/// Why the server refuses an offered file name (docs/protocol.md 17.9, in
/// the order checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FileNameError {
    /// More than [`MAX_FILE_NAME`] bytes: no common file system could hold it.
    #[error("{}", self.message())]
    TooLong,
    /// Empty or only white space: nothing to name a file with.
    #[error("{}", self.message())]
    Empty,
    /// `.` or `..`: the directory itself or its parent.
    #[error("{}", self.message())]
    Dots,
    /// `/` or `\`: the name would reach into another directory.
    #[error("{}", self.message())]
    PathSeparator,
    /// A control character (`Cc`): invisible, and refused by some systems.
    #[error("{}", self.message())]
    ControlCharacter,
    /// An invisible, format or bidi control character (`U+202E`, zero-width
    /// space, tag characters...): it hides part of the name or changes the
    /// order it is shown in, so `invoice<U+202E>fdp.exe` would read as
    /// `invoiceexe.pdf`.
    #[error("{}", self.message())]
    InvisibleCharacter,
    /// A Windows device name by its stem ([`is_reserved_device`]): saving it
    /// would open the device.
    #[error("{}", self.message())]
    ReservedDevice,
}

impl FileNameError {
    /// The error code the server answers with.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::TooLong => ErrorCode::FileNameTooLong,
            _ => ErrorCode::FileNameInvalid,
        }
    }

    /// The explanation sent in the `error` frame (also the `Display` text).
    pub fn message(self) -> &'static str {
        match self {
            Self::TooLong => "the file name is longer than 255 bytes",
            Self::Empty => "the file name is empty",
            Self::Dots => "the file name is . or ..",
            Self::PathSeparator => "the file name contains a path separator",
            Self::ControlCharacter => "the file name contains control characters",
            Self::InvisibleCharacter => {
                "the file name contains an invisible, format or bidi control character"
            }
            Self::ReservedDevice => "the file name is a reserved device name",
        }
    }
}

/// Checks an offered file name as the server does (docs/protocol.md 17.9).
///
/// ```
/// use chatcore::protocol::file_name::{FileNameError, check};
/// assert_eq!(check("report.pdf"), Ok(()));
/// assert_eq!(check("../x"), Err(FileNameError::PathSeparator));
/// assert_eq!(check("CONOUT$.txt"), Err(FileNameError::ReservedDevice));
/// ```
pub fn check(name: &str) -> Result<(), FileNameError> {
    if name.len() > MAX_FILE_NAME {
        return Err(FileNameError::TooLong);
    }
    if name.trim().is_empty() {
        return Err(FileNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(FileNameError::Dots);
    }
    if name.contains(is_path_separator) {
        return Err(FileNameError::PathSeparator);
    }
    if name.chars().any(char::is_control) {
        return Err(FileNameError::ControlCharacter);
    }
    if name.chars().any(is_hidden_in_file_name) {
        return Err(FileNameError::InvisibleCharacter);
    }
    if is_reserved_device(name) {
        return Err(FileNameError::ReservedDevice);
    }
    Ok(())
}

/// Whether `name` is a Windows device name by its stem: the part before the
/// first `.`, without trailing white space, equal (ignoring ASCII case) to
/// `con`, `prn`, `aux`, `nul`, `conin$`, `conout$`, `com1`..`com9`,
/// `lpt1`..`lpt9`, or `com`/`lpt` with a superscript `¹`, `²` or `³`.
/// Windows opens the device for such a name in any directory, with any
/// extension: `con`, `CON.txt`, `nul.tar.gz`, `Com1 .log`.
pub fn is_reserved_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem))
}

/// `/` and `\`, the separators of Unix and Windows paths.
fn is_path_separator(c: char) -> bool {
    matches!(c, '/' | '\\')
}

/// Whether a receiver replaces `c` by `_` in a name it saves: path
/// separators, the characters Windows forbids (`<>:"|?*`), and what an
/// offered name may not hold ([`is_hidden_in_file_name`]: control
/// characters, invisible ones and bidi overrides, which can make `exe.txt`
/// display as `txt.exe`).
#[cfg(any(feature = "client", test))]
fn is_unsafe_char(c: char) -> bool {
    is_path_separator(c)
        || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
        || is_hidden_in_file_name(c)
}

/// `name` made safe to use as one file name, at most `max` bytes (at least 8):
/// unsafe characters become `_`; surrounding white space, leading dots and
/// trailing dots and spaces go; nothing left is `file`; a device stem gets a
/// `_` (`con.txt` → `con_.txt`); the result is cut at a character boundary,
/// keeping a short extension.
#[cfg(any(feature = "client", test))]
pub(crate) fn sanitize(name: &str, max: usize) -> String {
    let max = max.max(8);
    let replaced: String = name
        .chars()
        .map(|c| if is_unsafe_char(c) { '_' } else { c })
        .collect();
    let mut name = replaced
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim()
        .to_owned();
    if name.is_empty() {
        name = "file".to_owned();
    }
    let (stem, ext) = split_ext(&name);
    let (mut stem, ext) = (stem.to_owned(), ext.to_owned());
    if is_reserved_device(&stem) {
        // `con_`, `aux_.tar.gz`: the part Windows looks at changes.
        let at = stem.find('.').unwrap_or(stem.len());
        stem.insert(at, '_');
    }
    fit(&stem, &ext, max)
}

/// Splits `name` at its last dot into stem and extension (with the dot).
/// A name without a dot, or whose only dot is the first character, has no
/// extension. Extensions longer than 16 bytes are not treated as such.
#[cfg(any(feature = "client", test))]
pub(crate) fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 && name.len() - i > 1 => name.split_at(i),
        _ => (name, ""),
    }
}

/// `stem + ext`, cut to at most `max` bytes at a character boundary; the
/// stem is shortened first so the extension survives.
#[cfg(any(feature = "client", test))]
pub(crate) fn fit(stem: &str, ext: &str, max: usize) -> String {
    if stem.len() + ext.len() <= max {
        return format!("{stem}{ext}");
    }
    if ext.len() < max {
        let stem = cut(stem, max - ext.len()).trim_end_matches(['.', ' ']);
        let stem = if stem.is_empty() { "file" } else { stem };
        return format!("{stem}{ext}");
    }
    cut(&format!("{stem}{ext}"), max).to_owned()
}

#[cfg(test)]
mod tests;

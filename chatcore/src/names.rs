//! Unique display names: `a`, then `a(1)`, `a(2)`… (lowest free suffix).
//!
//! Checking suffixes one by one is quadratic when thousands log in under the
//! same name, so each base keeps a hint: every suffix below it is taken.
//! Releasing any name lowers the hint of the base it could belong to, so the
//! hint stays a true lower bound and the lowest free suffix is still found.

use std::collections::{HashMap, HashSet};

use crate::protocol::ErrorCode;

/// Why a requested name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after trimming whitespace.
    #[error("the name is empty")]
    Empty,
    /// More characters than allowed.
    #[error("the name is longer than {0} characters")]
    TooLong(usize),
    /// Contains control characters.
    #[error("the name contains control characters")]
    Invalid,
}

impl NameError {
    /// The wire error code for this refusal.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Empty => ErrorCode::NameEmpty,
            Self::TooLong(_) => ErrorCode::NameTooLong,
            Self::Invalid => ErrorCode::NameInvalid,
        }
    }
}

/// Trims `raw` and checks it against the name rules of docs/protocol.md.
pub fn validate(raw: &str, max_chars: usize) -> Result<&str, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Invalid);
    }
    if name.chars().count() > max_chars {
        return Err(NameError::TooLong(max_chars));
    }
    Ok(name)
}

/// The names in use and, per base name, the lowest suffix that may be free.
#[derive(Debug, Default)]
pub struct NameTable {
    /// Every name currently held by a member.
    taken: HashSet<String>,
    /// Base name -> all suffixes below this one are taken (0 = the bare name).
    hints: HashMap<String, u32>,
}

impl NameTable {
    /// Reserves and returns the name to give someone who asked for `base`.
    pub fn allocate(&mut self, base: &str) -> String {
        let start = self.hints.get(base).copied().unwrap_or(0);
        let mut suffix = start;
        loop {
            let candidate = with_suffix(base, suffix);
            if self.taken.insert(candidate.clone()) {
                self.hints.insert(base.to_owned(), suffix + 1);
                return candidate;
            }
            suffix += 1;
        }
    }

    /// Frees `name` for reuse.
    pub fn release(&mut self, name: &str) {
        if !self.taken.remove(name) {
            return;
        }
        self.lower_hint(name, 0);
        if let Some((base, suffix)) = split_suffix(name) {
            self.lower_hint(base, suffix);
        }
    }

    /// Whether `name` is held by someone.
    pub fn is_taken(&self, name: &str) -> bool {
        self.taken.contains(name)
    }

    fn lower_hint(&mut self, base: &str, freed: u32) {
        if let Some(hint) = self.hints.get_mut(base) {
            if freed == 0 {
                self.hints.remove(base);
            } else if freed < *hint {
                *hint = freed;
            }
        }
    }
}

/// `base` for suffix 0, else `base(n)`.
fn with_suffix(base: &str, suffix: u32) -> String {
    if suffix == 0 {
        base.to_owned()
    } else {
        format!("{base}({suffix})")
    }
}

/// Splits `a(3)` into (`a`, 3); `None` for names without a numeric suffix.
fn split_suffix(name: &str) -> Option<(&str, u32)> {
    let inner = name.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&inner[..open], digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_get_the_lowest_free_suffix() {
        let mut t = NameTable::default();
        assert_eq!(t.allocate("a"), "a");
        assert_eq!(t.allocate("a"), "a(1)");
        assert_eq!(t.allocate("a"), "a(2)");
        t.release("a(1)");
        assert_eq!(t.allocate("a"), "a(1)");
        t.release("a");
        assert_eq!(t.allocate("a"), "a");
        assert_eq!(t.allocate("a"), "a(3)");
    }

    #[test]
    fn a_literal_suffixed_name_is_respected() {
        let mut t = NameTable::default();
        assert_eq!(t.allocate("a(1)"), "a(1)");
        assert_eq!(t.allocate("a"), "a");
        assert_eq!(t.allocate("a"), "a(2)");
        t.release("a(1)");
        assert_eq!(t.allocate("a"), "a(1)");
        assert_eq!(t.allocate("a(1)"), "a(1)(1)");
    }

    #[test]
    fn thousands_of_equal_names_stay_fast_and_unique() {
        let mut t = NameTable::default();
        let names: HashSet<String> = (0..20_000).map(|_| t.allocate("bot")).collect();
        assert_eq!(names.len(), 20_000);
        assert!(t.is_taken("bot(19999)"));
    }

    #[test]
    fn validation_trims_and_refuses_bad_names() {
        assert_eq!(validate("  bob ", 32), Ok("bob"));
        assert_eq!(validate("   ", 32), Err(NameError::Empty));
        assert_eq!(validate("a\u{7}b", 32), Err(NameError::Invalid));
        assert_eq!(validate(&"é".repeat(33), 32), Err(NameError::TooLong(32)));
        assert_eq!(validate(&"é".repeat(32), 32), Ok("é".repeat(32).as_str()));
    }
}

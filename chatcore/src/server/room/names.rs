//! Member names: what a name may contain, and who holds which name.
//!
//! [`validate`] turns the name a client asked for into the name the server
//! may use (trimmed, NFC) or refuses it: control, format, invisible, blank
//! looking and private-use characters, a leading combining mark, and letters
//! of scripts that are not normally mixed (Latin with Cyrillic or Greek...),
//! because each of these lets one member pass for another. The rules are
//! docs/protocol.md section 10.
//!
//! [`NameTable`] hands out unique names: `a`, then `a(1)`, `a(2)`… (lowest
//! free suffix). Names are compared by their UTS #39 confusable *skeleton*,
//! so a look-alike of a name in use (`аlice` with Cyrillic letters, `rn` for
//! `m`, `I` for `l`) counts as taken and gets a suffix like a duplicate does.
//!
//! Checking suffixes one by one is quadratic when thousands log in under the
//! same name, so each base skeleton keeps a hint: every suffix below it is
//! taken. Releasing any name lowers the hint of the base it could belong to,
//! so the hint stays a true lower bound and the lowest free suffix is still
//! found.

use std::collections::{HashMap, HashSet};

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::mixed_script::AugmentedScriptSet;

use crate::protocol::ErrorCode;
use crate::protocol::text::{is_blank_looking, is_invisible};

/// Why a requested name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after trimming white space: nothing to show.
    #[error("the name is empty")]
    Empty,
    /// More characters (after NFC) than allowed.
    #[error("the name is longer than {0} characters")]
    TooLong(usize),
    /// A control character (Unicode category Cc): it would move the cursor,
    /// ring bells or start escape sequences in terminals.
    #[error("the name contains the control character {}", Cp(*.0))]
    Control(char),
    /// A format, bidi-control or otherwise invisible character (zero-width
    /// space and joiners, U+2060.., tags, U+061C, U+202E...): it changes
    /// how the name or the text around it shows, or shows as nothing.
    #[error("the name contains {}, an invisible, format or bidi control character", Cp(*.0))]
    Invisible(char),
    /// A character that shows as a blank (U+3164 HANGUL FILLER, U+2800
    /// BRAILLE PATTERN BLANK...) without being white space, or a line or
    /// paragraph separator: it makes a name look empty or like another.
    #[error("the name contains {}, which shows as blank space", Cp(*.0))]
    Blank(char),
    /// An unassigned, private-use or noncharacter code point: no agreed
    /// look at all, so no one can tell what others see.
    #[error("the name contains {}, an unassigned, private-use or noncharacter code point", Cp(*.0))]
    Unassigned(char),
    /// The name starts with a combining mark, which would draw itself onto
    /// whatever a client prints before the name.
    #[error("the name starts with the combining mark {}", Cp(*.0))]
    LeadingMark(char),
    /// Letters of scripts that are not normally written together (beyond
    /// UTS #39 "Highly Restrictive"), e.g. Latin with Cyrillic or Greek: the
    /// classic way to fake a name with look-alike letters.
    #[error(
        "the name mixes letters of different scripts (such as Latin with Cyrillic or Greek); use one script"
    )]
    MixedScript,
}

impl NameError {
    /// The wire error code for this refusal: `name_empty`, `name_too_long`,
    /// or `name_invalid` for every character rule (the message says which).
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Empty => ErrorCode::NameEmpty,
            Self::TooLong(_) => ErrorCode::NameTooLong,
            Self::Control(_)
            | Self::Invisible(_)
            | Self::Blank(_)
            | Self::Unassigned(_)
            | Self::LeadingMark(_)
            | Self::MixedScript => ErrorCode::NameInvalid,
        }
    }
}

/// Shows a code point as `U+XXXX`, never the character itself (an error
/// message must not carry what it refuses).
struct Cp(char);

impl std::fmt::Display for Cp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "U+{:04X}", u32::from(self.0))
    }
}

/// Trims `raw`, normalises it to NFC and checks it against the name rules of
/// docs/protocol.md section 10, in this order: empty, too long, refused
/// characters (first offending one wins), leading combining mark, mixed
/// scripts. Returns the name to use.
pub fn validate(raw: &str, max_chars: usize) -> Result<String, NameError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    // Streaming NFC with an early stop: a huge name costs no more than
    // `max_chars + 1` characters of work and memory.
    let mut name = String::with_capacity(trimmed.len().min(max_chars.saturating_mul(4)));
    for (count, c) in trimmed.nfc().enumerate() {
        if count >= max_chars {
            return Err(NameError::TooLong(max_chars));
        }
        name.push(c);
    }
    if let Some(e) = name.chars().find_map(refused_char) {
        return Err(e);
    }
    if let Some(first) = name.chars().next().filter(|&c| is_combining_mark(c)) {
        return Err(NameError::LeadingMark(first));
    }
    if !is_highly_restrictive(&name) {
        return Err(NameError::MixedScript);
    }
    Ok(name)
}

/// The refusal `c` earns on its own, if any.
fn refused_char(c: char) -> Option<NameError> {
    if c.is_ascii() {
        // The common case, without table lookups.
        return c.is_ascii_control().then_some(NameError::Control(c));
    }
    if c.is_control() {
        Some(NameError::Control(c))
    } else if is_blank_looking(c) {
        Some(NameError::Blank(c))
    } else if is_invisible(c) {
        Some(NameError::Invisible(c))
    } else if is_unassigned(c) {
        Some(NameError::Unassigned(c))
    } else {
        None
    }
}

/// Private-use code points (U+E000–U+F8FF, planes 15 and 16),
/// noncharacters (U+FDD0–U+FDEF, and U+xFFFE/U+xFFFF in every plane), and
/// every other code point whose script is Unknown (`Zzzz`: unassigned in the
/// Unicode version of the server's tables).
fn is_unassigned(c: char) -> bool {
    let u = u32::from(c);
    matches!(u, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFDD0..=0xFDEF)
        || u & 0xFFFE == 0xFFFE
        || AugmentedScriptSet::for_char(c).base.is_empty()
}

/// UTS #39 restriction level "Highly Restrictive" or better, computed over
/// all of `name` with Common and Inherited characters (digits, punctuation,
/// spaces, symbols, combining marks) counting for every script: the name is
/// single-script, or its only letters outside Latin are Han with Hiragana
/// and Katakana, Han with Bopomofo, or Han with Hangul.
fn is_highly_restrictive(name: &str) -> bool {
    if name.is_ascii() {
        // ASCII is Latin and Common only.
        return true;
    }
    let latin = AugmentedScriptSet::for_char('a').base;
    let mut all = AugmentedScriptSet::default();
    let mut beside_latin = AugmentedScriptSet::default();
    for c in name.chars() {
        let set = AugmentedScriptSet::for_char(c);
        all.intersect_with(set);
        if set.base.intersection(latin).is_empty() {
            beside_latin.intersect_with(set);
        }
    }
    !all.is_empty() || beside_latin.hanb || beside_latin.jpan || beside_latin.kore
}

/// The UTS #39 confusable skeleton of `name`: two names with the same
/// skeleton look alike (`alice`, `аlice` with a Cyrillic а, `aIice`).
pub fn skeleton(name: &str) -> String {
    unicode_security::skeleton(name).collect()
}

/// The names in use and, per base skeleton, the lowest suffix that may be free.
#[derive(Debug, Default)]
pub struct NameTable {
    /// The skeleton of every name currently held by a member: a name is free
    /// only if no held name looks like it.
    taken: HashSet<String>,
    /// Skeleton of a base name -> all suffixes below this one are taken
    /// (0 = the bare name).
    hints: HashMap<String, u32>,
}

impl NameTable {
    /// Reserves and returns the name to give someone who asked for `base`
    /// (already validated): `base` itself if neither it nor a look-alike is
    /// held, else `base(n)` for the lowest such free n ≥ 1.
    pub fn allocate(&mut self, base: &str) -> String {
        self.allocate_from(base, 0)
    }

    /// Like [`NameTable::allocate`], never giving a suffix below `min`: a
    /// guest shadowing a registered name gets `base(1)` or higher, never
    /// the bare name (docs/protocol.md, accounts).
    pub fn allocate_from(&mut self, base: &str, min: u32) -> String {
        let base_skeleton = skeleton(base);
        let hint = self.hints.get(&base_skeleton).copied().unwrap_or(0);
        let start = hint.max(min);
        let mut suffix = start;
        loop {
            let candidate = with_suffix(base, suffix);
            let candidate_skeleton = if suffix == 0 {
                base_skeleton.clone()
            } else {
                // Equal to `skeleton(&candidate)`: `(` starts a new
                // character cluster, so skeletons concatenate here.
                let mut sk = base_skeleton.clone();
                push_suffix_skeleton(&mut sk, suffix);
                sk
            };
            if self.taken.insert(candidate_skeleton) {
                if min <= hint {
                    // Every suffix from the hint up to this one is taken.
                    self.hints.insert(base_skeleton, suffix + 1);
                }
                return candidate;
            }
            suffix += 1;
        }
    }

    /// Frees `name` (as returned by [`NameTable::allocate`]) for reuse.
    pub fn release(&mut self, name: &str) {
        let freed = skeleton(name);
        if !self.taken.remove(&freed) {
            return;
        }
        self.hints.remove(&freed);
        if let Some((base, suffix)) = split_skeleton_suffix(&freed)
            && let Some(hint) = self.hints.get_mut(base)
        {
            *hint = (*hint).min(suffix);
        }
    }

    /// Whether `name` or a look-alike of it (same skeleton) is held.
    #[cfg(test)]
    pub fn is_taken(&self, name: &str) -> bool {
        self.taken.contains(&skeleton(name))
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

/// Appends the skeleton of `(suffix)`: `(` and `)` and the digits are their
/// own prototypes except 0 (`O`) and 1 (`l`).
fn push_suffix_skeleton(out: &mut String, suffix: u32) {
    out.push('(');
    for c in suffix.to_string().chars() {
        out.push(match c {
            '0' => 'O',
            '1' => 'l',
            c => c,
        });
    }
    out.push(')');
}

/// Splits the skeleton of `a(3)` into (skeleton of `a`, 3); `None` for
/// skeletons without a numeric suffix. In skeletons the digit 0 is `O` and
/// 1 is `l` (their prototypes), so those are read as digits too: the
/// skeleton of `x(10)` is `x(lO)`. Reading a look-alike such as `x(lO)` as
/// suffix 10 only lowers a hint further, which is always safe.
fn split_skeleton_suffix(skeleton: &str) -> Option<(&str, u32)> {
    let inner = skeleton.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let mut n: u32 = 0;
    for c in digits.chars() {
        let d = match c {
            'O' => 0,
            'l' => 1,
            c => c.to_digit(10)?,
        };
        n = n * 10 + d;
    }
    Some((&inner[..open], n))
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
        assert_eq!(validate("  bob ", 32).as_deref(), Ok("bob"));
        assert_eq!(validate("   ", 32), Err(NameError::Empty));
        assert_eq!(validate("a\u{7}b", 32), Err(NameError::Control('\u{7}')));
        assert_eq!(validate(&"é".repeat(33), 32), Err(NameError::TooLong(32)));
        assert_eq!(validate(&"é".repeat(32), 32), Ok("é".repeat(32)));
    }

    #[test]
    fn names_are_normalised_to_nfc_before_the_length_check() {
        // e + COMBINING ACUTE ACCENT composes to é: 32 characters after NFC.
        let decomposed = "e\u{301}".repeat(32);
        assert_eq!(validate(&decomposed, 32), Ok("é".repeat(32)));
        assert_eq!(validate("Zoe\u{308}", 32).as_deref(), Ok("Zoë"));
    }

    #[test]
    fn invisible_format_and_bidi_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2060}',
            '\u{2066}',
            '\u{2069}',
            '\u{202A}',
            '\u{202E}',
            '\u{061C}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{034F}',
            '\u{180E}',
            '\u{FE0F}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{E0100}',
        ] {
            let name = format!("al{c}ice");
            assert_eq!(validate(&name, 32), Err(NameError::Invisible(c)), "{c:?}");
            assert_eq!(NameError::Invisible(c).code(), ErrorCode::NameInvalid);
        }
    }

    #[test]
    fn blank_looking_names_are_refused() {
        for c in [
            '\u{3164}',
            '\u{2800}',
            '\u{115F}',
            '\u{1160}',
            '\u{FFA0}',
            '\u{1D159}',
        ] {
            assert_eq!(validate(&c.to_string(), 32), Err(NameError::Blank(c)));
            assert_eq!(
                validate(&format!("{c}{c}{c}"), 32),
                Err(NameError::Blank(c))
            );
            assert_eq!(validate(&format!("alice{c}"), 32), Err(NameError::Blank(c)));
        }
        assert_eq!(
            validate("a\u{2028}b", 32),
            Err(NameError::Blank('\u{2028}'))
        );
    }

    #[test]
    fn private_use_noncharacters_and_unassigned_are_refused() {
        for c in [
            '\u{E000}',
            '\u{F8FF}',
            '\u{FDD0}',
            '\u{FFFF}',
            '\u{10FFFD}',
            '\u{0378}',
        ] {
            assert_eq!(
                validate(&format!("x{c}"), 32),
                Err(NameError::Unassigned(c))
            );
        }
    }

    #[test]
    fn a_leading_combining_mark_is_refused() {
        assert_eq!(
            validate("\u{301}bob", 32),
            Err(NameError::LeadingMark('\u{301}'))
        );
        assert_eq!(validate("bo\u{301}b", 32).as_deref(), Ok("bób"));
    }

    #[test]
    fn mixed_script_look_alikes_are_refused() {
        // Cyrillic а (U+0430) and Greek ο (U+03BF) inside Latin names.
        assert_eq!(validate("\u{430}lice", 32), Err(NameError::MixedScript));
        assert_eq!(validate("b\u{3BF}b", 32), Err(NameError::MixedScript));
        // Cyrillic with Greek.
        assert_eq!(validate("\u{430}\u{3B2}", 32), Err(NameError::MixedScript));
        assert_eq!(NameError::MixedScript.code(), ErrorCode::NameInvalid);
    }

    #[test]
    fn single_script_and_highly_restrictive_names_pass() {
        for name in [
            "alice",
            "Bob Smith-Jones",
            "o'brien_2",
            "Иван",
            "Αλέξης",
            "山田 太郎",
            "Tanaka たなか タナカ 田中",
            "김민수 Kim",
            "Li 李 ㄌㄧ",
            "user 🙂",
            "bob, carol, dave",
            "x(1)",
        ] {
            assert_eq!(validate(name, 32).as_deref(), Ok(name), "{name}");
        }
    }

    #[test]
    fn look_alikes_of_a_held_name_get_a_suffix() {
        let mut t = NameTable::default();
        assert_eq!(t.allocate("alice"), "alice");
        // Capital I for l, and an all-Cyrillic look-alike (а ӏ і с е).
        assert_eq!(t.allocate("aIice"), "aIice(1)");
        let cyrillic = "\u{430}\u{4CF}\u{456}\u{441}\u{435}";
        assert!(t.is_taken(cyrillic));
        assert_eq!(t.allocate(cyrillic), format!("{cyrillic}(2)"));
        // rn for m.
        assert_eq!(t.allocate("mallory"), "mallory");
        assert_eq!(t.allocate("rnallory"), "rnallory(1)");
        t.release("alice");
        assert_eq!(t.allocate(cyrillic), cyrillic);
        assert!(t.is_taken("alice"));
        t.release("aIice(1)");
        assert_eq!(t.allocate("alice"), "alice(1)");
    }

    #[test]
    fn suffix_skeletons_split_back_into_base_and_number() {
        for n in [1u32, 2, 9, 10, 11, 100, 1234] {
            let name = format!("bob({n})");
            let sk = skeleton(&name);
            assert_eq!(
                split_skeleton_suffix(&sk),
                Some((skeleton("bob").as_str(), n))
            );
        }
        assert_eq!(split_skeleton_suffix(&skeleton("bob")), None);
    }

    #[test]
    fn suffix_skeletons_concatenate_with_any_base() {
        for base in [
            "bot",
            "a\u{301}",
            "\u{430}\u{4CF}\u{456}",
            "m1l0",
            "山田",
            "x(1)",
            "e\u{308}",
        ] {
            let base_skeleton = skeleton(base);
            for n in 1..2_000u32 {
                let mut fast = base_skeleton.clone();
                push_suffix_skeleton(&mut fast, n);
                assert_eq!(fast, skeleton(&with_suffix(base, n)), "{base:?} {n}");
            }
        }
    }

    #[test]
    fn a_freed_look_alike_suffix_is_reused_first() {
        let mut t = NameTable::default();
        assert_eq!(t.allocate("a"), "a");
        assert_eq!(t.allocate("a(l)"), "a(l)");
        assert_eq!(t.allocate("a"), "a(2)");
        t.release("a(l)");
        assert_eq!(t.allocate("a"), "a(1)");
    }
}

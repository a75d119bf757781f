//! Field deserialisers that hold rmp-serde to the MessagePack types of
//! docs/protocol.md section 3, where it is lenient on its own.
//!
//! rmp-serde hands a *bin* to serde's string visitors as bytes, and serde
//! accepts UTF-8 bytes as a `String`; it also reads an enum from an integer
//! (the variant's index) or from a *bin*. A field the spec calls *str* must be
//! a MessagePack str: a bin there, or an integer `kind`, is `bad_message`.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};

/// Accepts only a MessagePack *str* and owns it.
struct StrOnly;

impl<'de> Visitor<'de> for StrOnly {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack str")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

/// Accepts only a MessagePack *str* borrowed from the input.
struct BorrowedStrOnly;

impl<'de> Visitor<'de> for BorrowedStrOnly {
    type Value = &'de str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack str")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<&'de str, E> {
        Ok(v)
    }
}

/// A `String` field: a MessagePack *str*, never a *bin*.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_string(StrOnly)
}

/// The `type` tag, borrowed from the frame body: a *str*, never a *bin*.
pub(crate) fn borrowed_str<'de, D: Deserializer<'de>>(d: D) -> Result<&'de str, D::Error> {
    d.deserialize_str(BorrowedStrOnly)
}

/// A field of a unit-only enum sent as its name (`kind`, `code`, `reason`):
/// a *str*, then matched by name, so unknown names still reach the enum's
/// `#[serde(other)]` variant; an integer or a *bin* is refused.
pub(crate) fn unit_enum<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let name = d.deserialize_string(StrOnly)?;
    T::deserialize(name.as_str().into_deserializer())
}

/// An optional `String` field (with `#[serde(default)]`): absent is `None`,
/// present must be a *str* (`nil` and *bin* are refused).
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    string(d).map(Some)
}

//! The names of the configuration keys: chatcore's, read from its own
//! `Deserialize` (so the list never falls out of step), and the
//! environment variable of each. Both the command line (`cli`, which makes
//! a flag per key) and the config file (`config`) use them.

use chatcore::ServerConfig;
use serde::Deserialize;

/// chatcore's configuration keys, as its `Deserialize` names them (the
/// field list serde hands to a deserializer; read once).
pub fn chatcore_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut grab = FieldGrabber(&[]);
        let _ = ServerConfig::deserialize(&mut grab);
        grab.0
    })
}

/// A deserializer that only records the field names of the struct asked
/// of it (then fails): how [`chatcore_keys`] learns chatcore's keys
/// without a list to keep in step by hand.
struct FieldGrabber(&'static [&'static str]);

impl<'de> serde::Deserializer<'de> for &mut FieldGrabber {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(serde::de::Error::custom("fields taken"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The environment variable of a configuration key.
pub fn env_name(key: &str) -> String {
    format!("CHATSERVER_{}", key.to_ascii_uppercase())
}

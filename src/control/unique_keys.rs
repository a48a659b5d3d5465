//! Refuses a JSON request that names a key twice, at any depth.
//!
//! serde_json keeps the last of duplicated keys, so `{"cmd": "status",
//! "cmd": "stop-all"}` would stop everything while looking like a status
//! request to anyone reading the first half of the line. RFC 8259 leaves
//! duplicates undefined; a control socket should say no. serde_json has no
//! switch for it, so this walks the text once with a visitor that keeps
//! each object's keys, before the request is decoded.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Err` names the first key found twice (or why the text is not JSON).
pub fn check(text: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(text);
    UniqueKeys.deserialize(&mut de).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix(DUPLICATE) {
            Some(rest) => format!(
                "duplicate key {}",
                rest.split(" at line").next().unwrap_or(rest)
            ),
            None => format!("request is not JSON: {msg}"),
        }
    })
}

const DUPLICATE: &str = "duplicate key ";

/// Visits any JSON value, failing on a duplicated key in any object.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("{DUPLICATE}{key:?}")));
            }
            map.next_value_seed(UniqueKeys)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_keys_are_named_at_any_depth() {
        assert_eq!(
            check(r#"{"cmd": "status", "cmd": "stop-all"}"#),
            Err(r#"duplicate key "cmd""#.to_owned())
        );
        assert_eq!(
            check(r#"{"cmd": "send", "line": {"a": 1, "a": 2}}"#),
            Err(r#"duplicate key "a""#.to_owned())
        );
        assert_eq!(
            check(r#"{"cmd": "start", "id": "x", "args": [{"a": 1}, {"a": 2}]}"#),
            Ok(())
        );
        assert!(check("{").unwrap_err().starts_with("request is not JSON"));
    }
}

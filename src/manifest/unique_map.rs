//! A YAML mapping whose keys must be unique: serde_yaml silently keeps the
//! last of two equal keys when it fills a map, and a manifest's `env`, a
//! probe's `stdout_json` or a check's `headers` must not lose one that way.
//! A leaf the manifest's section modules (`raw`, `health`) share.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::scalar::EnvName;

/// A mapping whose keys must be unique (serde_yaml silently keeps the last of
/// two equal keys when it fills a map).
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueMap<K, V>(pub BTreeMap<K, V>);

impl<K, V> Default for UniqueMap<K, V> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

/// How a map key is named in a duplicate-key message.
pub trait KeyName {
    fn key_name(&self) -> &str;
}

impl KeyName for EnvName {
    fn key_name(&self) -> &str {
        &self.0
    }
}

impl KeyName for String {
    fn key_name(&self) -> &str {
        self
    }
}

impl<'de, K, V> Deserialize<'de> for UniqueMap<K, V>
where
    K: Deserialize<'de> + Ord + KeyName,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<K, V>(PhantomData<(K, V)>);
        impl<'de, K, V> Visitor<'de> for Vis<K, V>
        where
            K: Deserialize<'de> + Ord + KeyName,
            V: Deserialize<'de>,
        {
            type Value = UniqueMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<K, V>()? {
                    if out.contains_key(&k) {
                        return Err(de::Error::custom(format_args!(
                            "duplicate key `{}`",
                            k.key_name()
                        )));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

impl<K: JsonSchema, V: JsonSchema> JsonSchema for UniqueMap<K, V> {
    fn schema_name() -> Cow<'static, str> {
        Cow::Owned(format!("Map_of_{}", V::schema_name()))
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "propertyNames": generator.subschema_for::<K>(),
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

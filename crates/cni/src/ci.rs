//! Case-insensitive JSON objects, decoded the way Go's `encoding/json` decodes a struct.
//!
//! The reference decodes the network configuration with Go's `encoding/json`, which matches
//! object keys to struct fields case-insensitively (an exact match wins, else the first field
//! whose name folds equal), ignores unknown keys, lets a later duplicate key override an
//! earlier one, and leaves a field untouched when its value is `null`. The Windows examples
//! rely on it (`"AdditionalArgs"`, `"Name"`/`"Value"`, `"Nameservers"`, `"GW"`), so a serde
//! derive, which is case-sensitive, would reject real configurations.
//!
//! [`ci_struct!`] declares a struct with the reference's field names and a `Deserialize`
//! implementation with those rules. Each member is first captured as raw JSON text
//! ([`Members`]), so a value kept raw (a policy's `Settings`) keeps its exact bytes.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of a JSON object in document order, each value kept as its raw text. JSON
/// `null` decodes as no members (Go leaves a struct untouched on `null`).
#[derive(Debug, Default)]
pub struct Members(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Members, E> {
                Ok(Members::default())
            }

            fn visit_none<E: de::Error>(self) -> Result<Members, E> {
                Ok(Members::default())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }

        deserializer.deserialize_any(MembersVisitor)
    }
}

/// The index of the field that JSON key `key` fills, by Go's rule: the field named exactly
/// `key`, else the first whose name equals it ignoring ASCII case.
pub fn field_index(key: &str, fields: &[&str]) -> Option<usize> {
    fields
        .iter()
        .position(|f| *f == key)
        .or_else(|| fields.iter().position(|f| f.eq_ignore_ascii_case(key)))
}

/// Decodes one member's raw value as `T`; `None` for JSON `null` (the field keeps its value).
pub fn decode_member<T, E>(key: &str, raw: &RawValue) -> Result<Option<T>, E>
where
    T: serde::de::DeserializeOwned,
    E: de::Error,
{
    if raw.get().trim() == "null" {
        return Ok(None);
    }
    serde_json::from_str(raw.get())
        .map(Some)
        .map_err(|e| E::custom(format_args!("{key}: {e}")))
}

/// Declares a struct decoded with Go's case-insensitive key matching (see the module docs).
/// Field syntax: `"jsonKey" name: Type`; every type must be `Default + DeserializeOwned`.
macro_rules! ci_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $(
                $(#[$fm:meta])*
                $key:literal $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[doc = concat!("\n\nJSON key `", $key, "` (any case).")]
                pub $field: $ty,
            )*
        }

        impl $name {
            /// The JSON keys of the fields, in declaration order.
            pub const KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let members = $crate::ci::Members::deserialize(d)?;
                let mut out = Self::default();
                for (key, raw) in members.0 {
                    let Some(index) = $crate::ci::field_index(&key, Self::KEYS) else {
                        continue; // unknown keys are ignored, as Go does
                    };
                    // The field's own key (keys are unique within a struct).
                    let field_key = Self::KEYS[index];
                    $(
                        if field_key == $key {
                            if let Some(v) = $crate::ci::decode_member::<$ty, D::Error>($key, &raw)? {
                                out.$field = v;
                            }
                        }
                    )*
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use ci_struct;

#[cfg(test)]
mod tests {
    use super::*;

    ci_struct! {
        /// A test struct.
        pub struct Inner {
            "gw" gw: String,
        }
    }

    ci_struct! {
        /// A test struct.
        pub struct Outer {
            "name" name: String,
            "Name2" name2: String,
            "list" list: Vec<Inner>,
            "raw" raw: Option<hcn::RawJson>,
            "flag" flag: bool,
        }
    }

    fn outer(text: &str) -> serde_json::Result<Outer> {
        serde_json::from_str(text)
    }

    #[test]
    fn keys_match_in_any_case_and_nested() {
        let o = outer(r#"{"NAME":"a","LIST":[{"GW":"1.2.3.4"}],"Flag":true}"#).unwrap();
        assert_eq!(o.name, "a");
        assert_eq!(o.list[0].gw, "1.2.3.4");
        assert!(o.flag);
    }

    #[test]
    fn exact_match_wins_over_folded_match() {
        // "Name2" exactly names the second field; "name2" folds to it as well.
        let o = outer(r#"{"name2":"x"}"#).unwrap();
        assert_eq!(o.name2, "x");
        assert_eq!(field_index("Name2", Outer::KEYS), Some(1));
        assert_eq!(field_index("NAME", Outer::KEYS), Some(0));
        assert_eq!(field_index("nope", Outer::KEYS), None);
    }

    #[test]
    fn later_duplicates_override_and_null_keeps_the_value() {
        let o = outer(r#"{"name":"a","Name":"b","flag":true,"flag":null}"#).unwrap();
        assert_eq!(o.name, "b");
        assert!(o.flag);
    }

    #[test]
    fn unknown_keys_are_ignored_and_null_object_is_empty() {
        let o = outer(r#"{"capabilities":{"portMappings":true},"x":[1,2]}"#).unwrap();
        assert_eq!(o, Outer::default());
        assert_eq!(outer("null").unwrap(), Outer::default());
    }

    #[test]
    fn raw_values_keep_their_bytes() {
        let o = outer(r#"{"raw": {"b" : 2,  "a":1.50}}"#).unwrap();
        assert_eq!(o.raw.unwrap().get(), r#"{"b" : 2,  "a":1.50}"#);
        let o = outer(r#"{"raw": null}"#).unwrap();
        assert!(o.raw.is_none());
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key() {
        let e = outer(r#"{"name": 5}"#).unwrap_err().to_string();
        assert!(e.contains("name"), "{e}");
        assert!(outer("[1]").is_err());
        assert!(outer(r#""text""#).is_err());
    }
}

//! [`RawJson`]: a Go `json.RawMessage`, kept byte for byte.
//!
//! HCN policy `Settings`, subnet policies and namespace resource `Data` are raw JSON in the
//! reference. Callers compare them byte for byte (the Windows CNI tests compare policy
//! settings that way), so they are kept as the exact text received, never re-ordered through
//! a map.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A raw JSON value, kept as the exact text it was decoded from or built with.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Serializes `value` into raw JSON.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// JSON `null`.
    pub fn null() -> Self {
        Self(RawValue::NULL.to_owned())
    }

    /// Wraps JSON text, checking that it is one valid JSON value.
    pub fn from_text(text: impl Into<String>) -> serde_json::Result<Self> {
        RawValue::from_string(text.into()).map(Self)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Decodes the value into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }

    /// True for JSON `null`, which Go treats as an absent raw message.
    pub fn is_null(&self) -> bool {
        self.0.get().trim() == "null"
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self)
    }
}

/// A raw message is omitted under `omitempty` when absent (`None`); Go also drops an empty
/// `RawMessage`, which this type cannot hold.
impl hcs_schema::go::GoEmpty for RawJson {
    fn is_go_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_and_order() {
        let raw: RawJson = serde_json::from_str(r#"{"b": 1,"a":[2, 3]}"#).unwrap();
        assert_eq!(raw.get(), r#"{"b": 1,"a":[2, 3]}"#);
        assert_eq!(
            serde_json::to_string(&raw).unwrap(),
            r#"{"b": 1,"a":[2, 3]}"#
        );
        assert_ne!(raw, RawJson::from_text(r#"{"a":[2, 3],"b": 1}"#).unwrap());
        assert!(RawJson::from_text("{").is_err());
        assert!(RawJson::from_text("null").unwrap().is_null());
    }
}

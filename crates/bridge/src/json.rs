//! JSON helpers that reproduce Go's `encoding/json` output byte for byte.
//!
//! * [`go_escape`] applies the escapes Go adds on top of what `serde_json` emits: `<`, `>`,
//!   `&` (only with HTML escaping, i.e. `json.Marshal`) and U+2028 / U+2029 (always, even with
//!   `SetEscapeHTML(false)`). Both libraries otherwise agree: `\"`, `\\`, `\b`, `\f`, `\n`,
//!   `\r`, `\t`, other control characters as lowercase `\u00xx`, everything else verbatim.
//! * [`AnyInString`] is a value carried as "JSON inside a JSON string" (the host's
//!   `AnyInString`; `ContainerConfig`, `ProcessParameters`, `Query`, `Properties`).
//! * [`RawJson`] keeps an embedded document (an OCI spec or process) exactly as received.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Applies Go's extra string escapes to JSON text produced by `serde_json`.
///
/// This is sound on whole documents: `<`, `>`, `&`, U+2028 and U+2029 cannot appear in JSON
/// outside string literals, and inside them the `\uXXXX` form is equivalent.
pub fn go_escape(json: &str, escape_html: bool) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' if escape_html => out.push_str("\\u003c"),
            '>' if escape_html => out.push_str("\\u003e"),
            '&' if escape_html => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Serializes like Go's `json.Marshal`: compact, HTML-escaped, no trailing newline.
pub fn go_marshal<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    Ok(go_escape(&serde_json::to_string(value)?, true))
}

/// A value encoded as a JSON string whose content is the value's own JSON (produced with
/// Go's `json.Marshal`, hence HTML-escaped), and parsed back from such a string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnyInString<T>(pub T);

impl<T> AnyInString<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for AnyInString<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for AnyInString<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Serialize> Serialize for AnyInString<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let inner = go_marshal(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&inner)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for AnyInString<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        hcs_schema::json::from_str(&text)
            .map(AnyInString)
            .map_err(|e| D::Error::custom(format_args!("invalid JSON inside string: {e}")))
    }
}

/// `deserialize_with` for an [`AnyInString`] the reference decodes only when non-empty (the
/// GetProperties `Query`: `if len(request.Query) != 0 { json.Unmarshal(…) }`): `""` (and
/// `null`, which leaves a Go string empty) is the zero value; anything else must hold JSON.
pub(crate) fn any_in_string_or_empty<'de, D, T>(deserializer: D) -> Result<AnyInString<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(AnyInString::default()),
        Some(text) if text.is_empty() => Ok(AnyInString::default()),
        Some(text) => hcs_schema::json::from_str(&text)
            .map(AnyInString)
            .map_err(|e| D::Error::custom(format_args!("invalid JSON inside string: {e}"))),
    }
}

/// Decodes `T` from a parsed JSON value with Go's rules ([`hcs_schema::json`]), for payload
/// documents that arrive as values (e.g. through the `hcs::cow` traits).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, serde_json::Error> {
    hcs_schema::json::from_value(value)
}

/// Decodes a body that embeds base `B` (Go's embedded struct) and has its own fields `O`:
/// both are read from the same document with Go's rules ([`hcs_schema::json`]).
pub(crate) fn embedded<'de, D, B, O>(deserializer: D) -> Result<(B, O), D::Error>
where
    D: Deserializer<'de>,
    B: DeserializeOwned,
    O: DeserializeOwned,
{
    let doc = hcs_schema::json::Document::deserialize(deserializer)?;
    let base = hcs_schema::json::from_document(doc.clone()).map_err(D::Error::custom)?;
    let own = hcs_schema::json::from_document(doc).map_err(D::Error::custom)?;
    Ok((base, own))
}

/// An embedded JSON document kept verbatim (for example an OCI spec), so that what was
/// received is what is forwarded, in the sender's key order. Parse it with
/// [`RawJson::parse`] into whatever type the consumer uses.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Serializes a value into a raw document.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(RawJson)
    }

    /// Validates and wraps JSON text.
    pub fn from_string(json: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json).map(RawJson)
    }

    /// Parses the document into `T` with Go's rules ([`hcs_schema::json`]).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        hcs_schema::json::from_str(self.0.get())
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
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

/// `skip_serializing_if` helper: Go's `omitempty` for numbers, bools and strings.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let s = serde_json::to_string("a<b>&c\u{2028}\u{2029}\n\"\\\u{1}").unwrap();
        assert_eq!(
            go_escape(&s, true),
            r#""a\u003cb\u003e\u0026c\u2028\u2029\n\"\\\u0001""#
        );
        assert_eq!(
            go_escape(&s, false),
            "\"a<b>&c\\u2028\\u2029\\n\\\"\\\\\\u0001\""
        );
    }

    #[test]
    fn any_in_string_round_trip() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Q {
            #[serde(rename = "PropertyTypes")]
            t: Vec<String>,
        }
        let v = AnyInString(Q {
            t: vec!["<x>".into()],
        });
        let s = serde_json::to_string(&v).unwrap();
        assert_eq!(s, r#""{\"PropertyTypes\":[\"\\u003cx\\u003e\"]}""#);
        let back: AnyInString<Q> = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        let err = serde_json::from_str::<AnyInString<Q>>(r#""{not json""#).unwrap_err();
        assert!(err.to_string().contains("invalid JSON inside string"));
    }

    #[test]
    fn raw_json_is_verbatim() {
        let r = RawJson::from_string(r#"{"b":1,"a":2}"#.to_owned()).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"b":1,"a":2}"#);
        let v: serde_json::Value = r.parse().unwrap();
        assert_eq!(v["a"], 2);
        assert!(RawJson::from_string("{".to_owned()).is_err());
    }
}

//! Decoding and encoding with Go `encoding/json` semantics.
//!
//! serde matches keys exactly and rejects `null` for non-optional fields; Go does neither. The
//! peers of this crate (HCS, the Go shim, the Go GCS) rely on Go's behaviour, so decoding untrusted
//! documents should go through [`from_str`] / [`from_slice`] / [`from_value`], which:
//!
//! * match struct keys **case-insensitively**, preferring an exact match (Go's rule: for each
//!   JSON key, the field whose name is equal, else the first whose name is equal under case
//!   folding). Map keys (`map[string]T`) are data and keep their case;
//! * let a later duplicate key win over an earlier one instead of failing;
//! * treat `null` for a struct field as "absent" (Go leaves the field at its zero value);
//! * ignore unknown keys (no schema type denies them).
//!
//! This works for any `Deserialize` type whose struct impls come from serde's derive, because
//! the derive hands the list of field names to `deserialize_struct`; the adapter renames
//! incoming keys to those names before the derived visitor sees them.
//!
//! Encoding is plain serde_json (the types already carry Go's key names and `omitempty`).
//! For callers that must be byte-identical with the reference, [`to_string_html_escaped`]
//! reproduces `json.Marshal` (escapes `<`, `>`, `&`, U+2028, U+2029) and
//! [`to_string_go_no_html`] a `json.Encoder` with `SetEscapeHTML(false)` (escapes only
//! U+2028 and U+2029).

use std::collections::HashMap;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{forward_to_deserialize_any, Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Error of every function of this module (serde_json's, which names line and column on parse
/// errors and the field on type errors).
pub type Error = serde_json::Error;

/// Decodes `T` from JSON text with Go's rules (see the module docs).
///
/// # Errors
/// Malformed JSON, or a value of the wrong type for a known field.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    T::deserialize(GoValue(serde_json::from_str::<Node>(text)?))
}

/// Decodes `T` from JSON bytes with Go's rules (see the module docs).
///
/// # Errors
/// Malformed JSON (including invalid UTF-8), or a value of the wrong type for a known field.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    T::deserialize(GoValue(serde_json::from_slice::<Node>(bytes)?))
}

/// A JSON document parsed once, in document order with duplicate keys kept, to be decoded
/// with Go's rules into one or more types ([`from_document`]). This is how a Go struct that
/// embeds another (a message body embedding its base) is decoded: each part reads the keys
/// it knows from the same document.
#[derive(Clone)]
pub struct Document(Node);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Node::deserialize(deserializer).map(Document)
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(&self.0) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("<unprintable document>"),
        }
    }
}

/// Decodes `T` from a [`Document`] with Go's rules (see the module docs).
///
/// # Errors
/// A value of the wrong type for a known field.
pub fn from_document<T: DeserializeOwned>(document: Document) -> Result<T, Error> {
    T::deserialize(GoValue(document.0))
}

/// Decodes `T` from an already parsed JSON value with Go's rules (see the module docs).
///
/// A `Value` has already merged duplicate keys and (without serde_json's `preserve_order`)
/// sorted them, so "the later spelling wins" follows that order here; prefer [`from_str`].
///
/// # Errors
/// A value of the wrong type for a known field.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(GoValue(Node::from(value)))
}

/// Encodes `value` as compact JSON (keys in declaration order, maps sorted as Go sorts them
/// when they are `BTreeMap`s).
///
/// # Errors
/// Only for values serde_json cannot encode (non-string map keys of a custom type).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
}

/// Encodes `value` exactly as Go's `json.Marshal` would: compact, with `<`, `>`, `&`, U+2028
/// and U+2029 escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`.
///
/// # Errors
/// As [`to_string`].
pub fn to_string_html_escaped<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    Ok(go_escape(serde_json::to_string(value)?, true))
}

/// Encodes `value` as Go's `json.Encoder` with `SetEscapeHTML(false)` does (the bridge host's
/// encoding), without the trailing newline the encoder appends: `<`, `>` and `&` stay as
/// they are, but U+2028 and U+2029 are still escaped, which Go does unconditionally.
///
/// # Errors
/// As [`to_string`].
pub fn to_string_go_no_html<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    Ok(go_escape(serde_json::to_string(value)?, false))
}

/// Applies Go's extra string escapes to serde_json output. The replaced characters can only
/// occur inside JSON strings (never in structural tokens), so replacing them anywhere in the
/// output is the same as escaping them in every string. serde_json already escapes control
/// characters as Go 1.22+ does (`\b`, `\f`, `\n`, `\r`, `\t`, else `\u00XX`).
fn go_escape(plain: String, html: bool) -> String {
    let needs =
        |c: char| matches!(c, '\u{2028}' | '\u{2029}') || (html && matches!(c, '<' | '>' | '&'));
    if !plain.chars().any(needs) {
        return plain;
    }
    let mut out = String::with_capacity(plain.len() + 16);
    for c in plain.chars() {
        match c {
            '<' if html => out.push_str("\\u003c"),
            '>' if html => out.push_str("\\u003e"),
            '&' if html => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Case folding as Go's `encoding/json` applies it to keys (ASCII fast path, then Unicode
/// simple lowercase, which covers the keys this project meets).
fn equal_fold(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

/// A parsed JSON document that keeps object members in document order, duplicates included,
/// so that Go's "the later key wins" can be applied after case folding.
#[derive(Clone)]
enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }
}

impl From<Value> for Node {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Number(n),
            Value::String(s) => Node::String(s),
            Value::Array(items) => Node::Array(items.into_iter().map(Node::from).collect()),
            Value::Object(map) => {
                Node::Object(map.into_iter().map(|(k, v)| (k, Node::from(v))).collect())
            }
        }
    }
}

/// Writes the document back in its own order (duplicates included): the text of a raw
/// embedded document ([`serde_json::value::RawValue`]).
impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Number(n) => n.serialize(s),
            Node::String(t) => s.serialize_str(t),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// The name under which `serde_json::value::RawValue` asks a deserializer for the raw text
/// of a value (serde_json's private protocol, stable since 1.0.30: a map with this one key
/// whose value is the JSON text).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Hands a `RawValue` its text.
struct RawValueAccess(Option<String>);

impl<'de> MapAccess<'de> for RawValueAccess {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.0.is_none() {
            return Ok(None);
        }
        seed.deserialize(MapKey(RAW_VALUE_TOKEN.to_owned()))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let text = self
            .0
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("raw value requested twice"))?;
        seed.deserialize(text.into_deserializer())
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(n)
            .map(Node::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(member) = map.next_entry::<String, Node>()? {
            members.push(member);
        }
        Ok(Node::Object(members))
    }
}

/// A JSON value being decoded with Go's rules.
struct GoValue(Node);

/// Go reads `null` into a non-pointer scalar as "leave it at its zero value" (this matters for
/// elements such as `[null]` into `[]int`; struct members that are null are dropped earlier).
macro_rules! null_is_zero {
    ($($method:ident => $visit:ident($zero:expr)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Node::Null => visitor.$visit($zero),
                other => GoValue(other).deserialize_any(visitor),
            }
        })*
    };
}

impl<'de> Deserializer<'de> for GoValue {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Number(n) => n.deserialize_any(visitor),
            Node::String(s) => visitor.visit_string(s),
            Node::Array(items) => visitor.visit_seq(GoSeq(items.into_iter())),
            Node::Object(members) => visitor.visit_map(GoMap::new(members, None)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Null => visitor.visit_none(),
            other => visitor.visit_some(GoValue(other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Node::Object(members) => visitor.visit_map(GoMap::new(members, Some(fields))),
            // Go leaves a struct at its zero value when it reads null (e.g. `[null]` into a
            // slice of structs).
            Node::Null => visitor.visit_map(GoMap::new(Vec::new(), Some(fields))),
            // serde would fill a struct from an array positionally; Go refuses.
            Node::Array(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor)),
            other => GoValue(other).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        // An embedded document kept verbatim (`Box<RawValue>`): its text, in document order.
        if name == RAW_VALUE_TOKEN {
            let text = serde_json::to_string(&self.0)?;
            return visitor.visit_map(RawValueAccess(Some(text)));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Schema enums are string types with their own impls; a derived unit-variant enum is
        // read from its string form.
        match self.0 {
            Node::String(s) => s
                .into_deserializer()
                .deserialize_enum(name, variants, visitor),
            _ => Err(de::Error::custom(format!(
                "expected a string for enum {name}"
            ))),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    null_is_zero! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0), deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0), deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0), deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0), deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0), deserialize_f64 => visit_f64(0.0),
        deserialize_str => visit_str(""), deserialize_string => visit_str("")
    }

    forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct GoSeq(std::vec::IntoIter<Node>);

impl<'de> SeqAccess<'de> for GoSeq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(GoValue(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The members of a JSON object, keys already resolved to field names for a struct.
struct GoMap {
    entries: std::vec::IntoIter<(String, Node)>,
    pending: Option<Node>,
}

impl GoMap {
    fn new(members: Vec<(String, Node)>, fields: Option<&'static [&'static str]>) -> Self {
        let Some(fields) = fields else {
            return Self {
                entries: members.into_iter(),
                pending: None,
            };
        };
        let mut entries: Vec<(String, Node)> = Vec::with_capacity(members.len());
        let mut index: HashMap<String, usize> = HashMap::with_capacity(members.len());
        for (key, value) in members {
            // Go leaves a field untouched when it reads null: same as absent.
            if value.is_null() {
                continue;
            }
            let name = if fields.contains(&key.as_str()) {
                key
            } else {
                match fields.iter().find(|f| equal_fold(f, &key)) {
                    Some(f) => (*f).to_owned(),
                    None => key,
                }
            };
            // Two spellings of one field: the later one wins, as in Go.
            match index.get(&name) {
                Some(&at) => entries[at].1 = value,
                None => {
                    index.insert(name.clone(), entries.len());
                    entries.push((name, value));
                }
            }
        }
        Self {
            entries: entries.into_iter(),
            pending: None,
        }
    }
}

impl<'de> MapAccess<'de> for GoMap {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.pending = Some(value);
                seed.deserialize(MapKey(key)).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .pending
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("map value requested before its key"))?;
        seed.deserialize(GoValue(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An object key. Besides strings it decodes integers, as Go does for `map[int]T`.
struct MapKey(String);

macro_rules! parse_key {
    ($($method:ident => $visit:ident : $t:ty),*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.parse::<$t>() {
                Ok(n) => visitor.$visit(n),
                Err(_) => Err(de::Error::invalid_value(de::Unexpected::Str(&self.0), &visitor)),
            }
        })*
    };
}

impl<'de> Deserializer<'de> for MapKey {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.0.into_deserializer().deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    parse_key! {
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64
    }

    forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct seq
        tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Inner {
        #[serde(rename = "ProcessId")]
        process_id: u32,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Outer {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "ReadOnly")]
        read_only: bool,
        #[serde(rename = "Inner")]
        inner: Option<Inner>,
        #[serde(rename = "List")]
        list: Vec<Inner>,
        #[serde(rename = "Env")]
        env: BTreeMap<String, String>,
        #[serde(rename = "ByIndex")]
        by_index: BTreeMap<u32, Inner>,
    }

    #[test]
    fn keys_match_case_insensitively_at_every_depth() {
        let doc = r#"{"id":"a","READONLY":true,"inner":{"processid":7},
            "list":[{"PROCESSID":1}],"byindex":{"3":{"processId":9}}}"#;
        let got: Outer = from_str(doc).unwrap();
        assert_eq!(got.id, "a");
        assert!(got.read_only);
        assert_eq!(got.inner, Some(Inner { process_id: 7 }));
        assert_eq!(got.list, vec![Inner { process_id: 1 }]);
        assert_eq!(got.by_index[&3], Inner { process_id: 9 });
        // serde alone would ignore all of these keys.
        let strict: Outer = serde_json::from_str(doc).unwrap();
        assert_eq!(strict, Outer::default());
    }

    #[test]
    fn map_keys_keep_their_case() {
        let got: Outer = from_str(r#"{"Env":{"path":"x","PATH":"y"}}"#).unwrap();
        assert_eq!(got.env.len(), 2);
        assert_eq!(got.env["path"], "x");
        assert_eq!(got.env["PATH"], "y");
    }

    #[test]
    fn exact_match_is_preferred_and_last_duplicate_wins() {
        let got: Outer = from_str(r#"{"id":"first","Id":"second"}"#).unwrap();
        assert_eq!(got.id, "second");
        let got: Outer = from_str(r#"{"Id":"first","ID":"second"}"#).unwrap();
        assert_eq!(got.id, "second", "Go: the later key overwrites the field");
    }

    #[test]
    fn null_means_absent_and_unknown_keys_are_ignored() {
        let got: Outer =
            from_str(r#"{"Id":null,"ReadOnly":null,"List":null,"Inner":null,"Nope":[1,2]}"#)
                .unwrap();
        assert_eq!(got, Outer::default());
    }

    #[test]
    fn scalars_read_null_as_zero() {
        assert_eq!(from_str::<Vec<u32>>("[1,null,3]").unwrap(), vec![1, 0, 3]);
        assert_eq!(
            from_str::<Vec<String>>(r#"["a",null]"#).unwrap(),
            vec!["a".to_owned(), String::new()]
        );
        assert_eq!(
            from_str::<Vec<bool>>("[null,true]").unwrap(),
            vec![false, true]
        );
        assert_eq!(from_str::<Vec<i8>>("[null,-1]").unwrap(), vec![0, -1]);
        assert_eq!(from_str::<Vec<f64>>("[null,1.5]").unwrap(), vec![0.0, 1.5]);
        assert_eq!(
            from_str::<Vec<Option<u8>>>("[null,2]").unwrap(),
            vec![None, Some(2)]
        );
        assert_eq!(
            from_str::<serde_json::Value>("[null]").unwrap(),
            serde_json::json!([null])
        );
        // Type errors stay errors.
        assert!(from_str::<Vec<u8>>(r#"["1"]"#).is_err());
        assert!(from_str::<Vec<String>>("[1]").is_err());
    }

    #[test]
    fn structs_read_null_as_zero_and_refuse_arrays() {
        let got: Outer = from_str(r#"{"List":[null,{"ProcessId":2}]}"#).unwrap();
        assert_eq!(got.list, vec![Inner::default(), Inner { process_id: 2 }]);
        assert_eq!(from_str::<Inner>("null").unwrap(), Inner::default());
        assert!(
            from_str::<Outer>(r#"{"Inner":[5]}"#).is_err(),
            "serde alone accepts this"
        );
        assert!(serde_json::from_str::<Outer>(r#"{"Inner":[5]}"#).is_ok());
    }

    #[test]
    fn type_errors_are_reported_not_panicked() {
        assert!(from_str::<Outer>(r#"{"ReadOnly":"yes"}"#).is_err());
        assert!(from_str::<Outer>(r#"{"ByIndex":{"x":{}}}"#).is_err());
        assert!(from_str::<Outer>(r#"{"Inner":{"ProcessId":-1}}"#).is_err());
        assert!(from_str::<Outer>("{").is_err());
        assert!(from_slice::<Outer>(b"\xff").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "{{\"Inner\":{}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(from_str::<Outer>(&deep).is_err());
        let deep_any = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
        assert!(from_str::<serde_json::Value>(&deep_any).is_err());
    }

    #[test]
    fn any_values_keep_nulls_and_nested_keys() {
        let v: serde_json::Value =
            from_str(r#"{"b":null,"a":[1,-2,3.5,"x",true,{"K":null}]}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":[1,-2,3.5,"x",true,{"K":null}],"b":null})
        );
    }

    #[derive(Debug, Deserialize)]
    struct WithRaw {
        #[serde(rename = "Spec")]
        spec: Box<serde_json::value::RawValue>,
        #[serde(rename = "Maybe", default)]
        maybe: Option<Box<serde_json::value::RawValue>>,
    }

    #[test]
    fn raw_values_keep_document_order() {
        let got: WithRaw =
            from_str(r#"{"spec":{"z":1,"a":[true,null,"x"],"m":{}},"Maybe":null}"#).unwrap();
        assert_eq!(got.spec.get(), r#"{"z":1,"a":[true,null,"x"],"m":{}}"#);
        assert!(got.maybe.is_none());
    }

    #[test]
    fn one_document_decodes_into_several_parts() {
        let doc: Document = serde_json::from_str(r#"{"id":"a","processid":3}"#).unwrap();
        let outer: Outer = from_document(doc.clone()).unwrap();
        let inner: Inner = from_document(doc).unwrap();
        assert_eq!((outer.id.as_str(), inner.process_id), ("a", 3));
    }

    #[test]
    fn html_escaping_matches_json_marshal() {
        let v = serde_json::json!({"a": "<x> & \u{2028}"});
        assert_eq!(
            to_string_html_escaped(&v).unwrap(),
            r#"{"a":"\u003cx\u003e \u0026 \u2028"}"#
        );
        assert_eq!(to_string(&v).unwrap(), "{\"a\":\"<x> & \u{2028}\"}");
        assert_eq!(to_string_go_no_html(&v).unwrap(), r#"{"a":"<x> & \u2028"}"#);
        let controls = serde_json::json!("\u{8}\u{c}\n\r\t\u{1}\u{7f}");
        // Go 1.22+ writes \b and \f short, other controls as \u00XX, and DEL as is.
        assert_eq!(
            to_string_html_escaped(&controls).unwrap(),
            "\"\\b\\f\\n\\r\\t\\u0001\u{7f}\""
        );
    }
}

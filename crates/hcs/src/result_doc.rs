//! The HCS result document and its error records (hcs-hcn-api.md §2.3).
//!
//! Every HCS call can hand back a JSON "result" document,
//! `{"Error": i32, "ErrorMessage": str, "ErrorEvents": [ErrorEvent]}`. It comes from another
//! process (vmcompute) and is untrusted: parsing is bounded in size, in the number of events
//! kept and in the length of each string, and never panics. hcsshim drops the `Data` member of
//! an event on purpose (HCS does not encode it well); so does this port.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Largest result document accepted, in bytes. HCS documents are a few KiB at most.
pub const MAX_RESULT_DOCUMENT_BYTES: usize = 1 << 20;
/// Most error events kept from one document; further events are dropped.
pub const MAX_ERROR_EVENTS: usize = 64;
/// Longest string kept in an error event field, in bytes; longer ones are cut at a char
/// boundary.
pub const MAX_EVENT_FIELD_BYTES: usize = 16 * 1024;

/// One error record of a result document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// The fully formatted message.
    #[serde(
        rename = "Message",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
    /// A stack trace in string form.
    #[serde(
        rename = "StackTrace",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub stack_trace: String,
    /// The event provider (a GUID or name).
    #[serde(
        rename = "Provider",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub provider: String,
    /// The event id.
    #[serde(
        rename = "EventId",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero_u16"
    )]
    pub event_id: u16,
    /// Event flags.
    #[serde(
        rename = "Flags",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero_u32"
    )]
    pub flags: u32,
    /// Where the event comes from.
    #[serde(
        rename = "Source",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub source: String,
}

/// `[Event Detail: <Message> Stack Trace: … Provider: … EventID: n flags: n Source: …]`, each
/// part after the message present only when set (as hcsshim renders it).
impl fmt::Display for ErrorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[Event Detail: {}", self.message)?;
        if !self.stack_trace.is_empty() {
            write!(f, " Stack Trace: {}", self.stack_trace)?;
        }
        if !self.provider.is_empty() {
            write!(f, " Provider: {}", self.provider)?;
        }
        if self.event_id != 0 {
            write!(f, " EventID: {}", self.event_id)?;
        }
        if self.flags != 0 {
            write!(f, " flags: {}", self.flags)?;
        }
        if !self.source.is_empty() {
            write!(f, " Source: {}", self.source)?;
        }
        f.write_str("]")
    }
}

/// The result document of an HCS call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultDocument {
    /// The HRESULT of the failure, as a signed 32-bit value (0 when absent).
    #[serde(rename = "Error", default, deserialize_with = "null_as_default")]
    pub error: i32,
    /// A message describing the failure.
    #[serde(rename = "ErrorMessage", default, deserialize_with = "null_as_default")]
    pub error_message: String,
    /// The error records.
    #[serde(
        rename = "ErrorEvents",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub error_events: Vec<ErrorEvent>,
}

/// Why a result document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultParseError {
    /// The document is larger than [`MAX_RESULT_DOCUMENT_BYTES`].
    #[error("HCS result document is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The document is not a JSON object.
    #[error("HCS result document is not a JSON object")]
    NotAnObject,
    /// The document is not valid UTF-8.
    #[error("HCS result document is not UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    /// The document is not the expected JSON shape.
    #[error("HCS result document is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

impl ResultDocument {
    /// Parses a result document, enforcing the bounds of this module. An empty (or all
    /// whitespace) document is the empty result, as HCS returns no document on success.
    pub fn parse(doc: &str) -> Result<Self, ResultParseError> {
        if doc.len() > MAX_RESULT_DOCUMENT_BYTES {
            return Err(ResultParseError::TooLarge {
                len: doc.len(),
                max: MAX_RESULT_DOCUMENT_BYTES,
            });
        }
        let trimmed = doc.trim_start();
        if trimmed.is_empty() {
            return Ok(Self::default());
        }
        // serde would also accept a JSON array for a struct; HCS only sends objects.
        if !trimmed.starts_with('{') {
            return Err(ResultParseError::NotAnObject);
        }
        let mut parsed: ResultDocument = serde_json::from_str(doc)?;
        parsed.bound();
        Ok(parsed)
    }

    /// [`ResultDocument::parse`] for raw bytes.
    pub fn parse_bytes(doc: &[u8]) -> Result<Self, ResultParseError> {
        if doc.len() > MAX_RESULT_DOCUMENT_BYTES {
            return Err(ResultParseError::TooLarge {
                len: doc.len(),
                max: MAX_RESULT_DOCUMENT_BYTES,
            });
        }
        Self::parse(std::str::from_utf8(doc)?)
    }

    /// The error records of `doc`, or none when it is empty or cannot be parsed (logged), as
    /// hcsshim's `processHcsResult` does: a bad result document must not hide the HRESULT of
    /// the call it came with.
    pub fn events_lossy(doc: &str) -> Vec<ErrorEvent> {
        match Self::parse(doc) {
            Ok(d) => d.error_events,
            Err(err) => {
                tracing::warn!(error = %err, "could not parse HCS result document");
                Vec::new()
            }
        }
    }

    fn bound(&mut self) {
        self.error_events.truncate(MAX_ERROR_EVENTS);
        truncate_str(&mut self.error_message);
        for ev in &mut self.error_events {
            truncate_str(&mut ev.message);
            truncate_str(&mut ev.stack_trace);
            truncate_str(&mut ev.provider);
            truncate_str(&mut ev.source);
        }
    }
}

fn truncate_str(s: &mut String) {
    if s.len() > MAX_EVENT_FIELD_BYTES {
        let mut cut = MAX_EVENT_FIELD_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Go's decoder leaves a field at its zero value for JSON `null`; do the same.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as HCS returns it for a create with a bad layer path.
    const SAMPLE: &str = r#"{
        "Error": -2143878898,
        "ErrorMessage": "A virtual machine or container with the specified identifier does not exist.",
        "ErrorEvents": [
            {
                "Message": "The system cannot find the path specified.",
                "StackTrace": "at Foo()",
                "Provider": "17103e3f-3c6e-4677-bb17-3b267eb5be57",
                "EventId": 11187,
                "Flags": 2,
                "Source": "onecore\\vm\\compute\\management\\orchestration\\vmhostedcontainer\\processutilities.cpp",
                "Data": [{"Type": 2, "Value": "ignored"}]
            },
            {"Message": "second"}
        ]
    }"#;

    #[test]
    fn parses_the_documented_shape() {
        let doc = ResultDocument::parse(SAMPLE).unwrap();
        assert_eq!(doc.error, 0x8037_010E_u32 as i32);
        assert_eq!(doc.error_events.len(), 2);
        let ev = &doc.error_events[0];
        assert_eq!(ev.event_id, 11187);
        assert_eq!(ev.flags, 2);
        assert_eq!(
            ev.to_string(),
            "[Event Detail: The system cannot find the path specified. Stack Trace: at Foo() \
             Provider: 17103e3f-3c6e-4677-bb17-3b267eb5be57 EventID: 11187 flags: 2 Source: \
             onecore\\vm\\compute\\management\\orchestration\\vmhostedcontainer\\processutilities.cpp]"
        );
        assert_eq!(doc.error_events[1].to_string(), "[Event Detail: second]");
    }

    #[test]
    fn empty_and_null_fields_are_zero() {
        assert_eq!(
            ResultDocument::parse("").unwrap(),
            ResultDocument::default()
        );
        assert_eq!(
            ResultDocument::parse("  \n").unwrap(),
            ResultDocument::default()
        );
        let doc = ResultDocument::parse(
            r#"{"Error":null,"ErrorMessage":null,"ErrorEvents":[{"Message":null,"EventId":null}]}"#,
        )
        .unwrap();
        assert_eq!(doc.error, 0);
        assert_eq!(doc.error_events, vec![ErrorEvent::default()]);
        let doc = ResultDocument::parse(r#"{"ErrorEvents":null}"#).unwrap();
        assert!(doc.error_events.is_empty());
    }

    #[test]
    fn bad_documents_are_errors_not_panics() {
        for bad in [
            "{",
            "[]",
            "null",
            r#"{"Error":"x"}"#,
            r#"{"Error":4294967296}"#,
            r#"{"ErrorEvents":[{"EventId":70000}]}"#,
            r#"{"ErrorEvents":{}}"#,
        ] {
            assert!(ResultDocument::parse(bad).is_err(), "{bad}");
            assert!(ResultDocument::events_lossy(bad).is_empty());
        }
        assert!(matches!(
            ResultDocument::parse_bytes(&[b'{', 0xFF, b'}']),
            Err(ResultParseError::Utf8(_))
        ));
        // Deep nesting neither overflows the stack in an ignored member nor in a known one.
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep = format!("{{\"X\":{}}}", nest(10_000));
        assert!(ResultDocument::parse(&deep).is_ok());
        let deep = format!("{{\"ErrorEvents\":{}}}", nest(10_000));
        assert!(ResultDocument::parse(&deep).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let big = " ".repeat(MAX_RESULT_DOCUMENT_BYTES + 1);
        assert!(matches!(
            ResultDocument::parse(&big),
            Err(ResultParseError::TooLarge { .. })
        ));
        let events: Vec<String> = (0..MAX_ERROR_EVENTS + 10)
            .map(|i| format!(r#"{{"Message":"e{i}"}}"#))
            .collect();
        let long = "é".repeat(MAX_EVENT_FIELD_BYTES); // 2 bytes each
        let doc = format!(
            r#"{{"ErrorMessage":"{long}","ErrorEvents":[{}]}}"#,
            events.join(",")
        );
        let doc = ResultDocument::parse(&doc).unwrap();
        assert_eq!(doc.error_events.len(), MAX_ERROR_EVENTS);
        assert_eq!(doc.error_message.len(), MAX_EVENT_FIELD_BYTES);
    }

    #[test]
    fn serialises_with_go_field_names() {
        let doc = ResultDocument {
            error: -1,
            error_message: "m".into(),
            error_events: vec![ErrorEvent {
                message: "x".into(),
                event_id: 3,
                ..Default::default()
            }],
        };
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"Error":-1,"ErrorMessage":"m","ErrorEvents":[{"Message":"x","EventId":3}]}"#
        );
    }
}

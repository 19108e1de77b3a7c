//! The bases every message embeds: the request base (host → guest, also used by the
//! notification) and the response base (guest → host), with the error records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hresult::Hresult;
use crate::json::is_default;

/// The null container id (`UVMContainerID`): targets the utility VM itself.
pub const NULL_CONTAINER_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The zero GUID the host always sends as `ActivityId` (`makeRequest` never sets it).
pub const ZERO_ACTIVITY_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The only protocol version spoken (`protocolVersion` / `PvV4`).
pub const PROTOCOL_VERSION: u32 = 4;

/// `TimeoutInMs` value meaning "wait forever".
pub const INFINITE_TIMEOUT_MS: u32 = u32::MAX;

/// `ModuleName` of the GCS's error records.
pub const GCS_MODULE_NAME: &str = "gcs";

/// `Line` of an error record when the line is unknown.
pub const UNKNOWN_LINE: u32 = u32::MAX;

/// The common base of every host → guest body (and of the container notification).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBase {
    /// Target container, or [`NULL_CONTAINER_ID`] for the utility VM.
    #[serde(rename = "ContainerId", default)]
    pub container_id: String,
    /// Activity GUID; the host always sends it (the zero GUID).
    #[serde(rename = "ActivityId", default)]
    pub activity_id: String,
    /// W3C trace context (`traceparent`, `tracestate`), present only with a valid span.
    #[serde(rename = "otsc", default, skip_serializing_if = "Option::is_none")]
    pub otsc: Option<BTreeMap<String, String>>,
    /// Deprecated OpenCensus span context; ignored by the Linux GCS.
    #[serde(rename = "ocsc", default, skip_serializing_if = "Option::is_none")]
    pub ocsc: Option<serde_json::Value>,
}

impl RequestBase {
    /// A base for `container_id` with the zero activity id, as the host builds it.
    pub fn new(container_id: impl Into<String>) -> Self {
        Self {
            container_id: container_id.into(),
            activity_id: ZERO_ACTIVITY_ID.to_owned(),
            otsc: None,
            ocsc: None,
        }
    }

    /// A base targeting the utility VM ([`NULL_CONTAINER_ID`]).
    pub fn null() -> Self {
        Self::new(NULL_CONTAINER_ID)
    }

    /// True if this targets the utility VM rather than a container.
    pub fn is_null_container(&self) -> bool {
        self.container_id == NULL_CONTAINER_ID
    }
}

impl Default for RequestBase {
    fn default() -> Self {
        Self::null()
    }
}

/// One error record of a failed response (`internal/bridgeutils/commonutils`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The HRESULT of the error.
    #[serde(rename = "Result", default)]
    pub result: Hresult,
    /// `err.Error()`.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// Stack trace, when the error carried one.
    #[serde(
        rename = "StackTrace",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stack_trace: String,
    /// Always `"gcs"` from the Linux GCS.
    #[serde(rename = "ModuleName", default)]
    pub module_name: String,
    /// Source file, or empty.
    #[serde(rename = "FileName", default)]
    pub file_name: String,
    /// Source line, [`UNKNOWN_LINE`] when unknown.
    #[serde(rename = "Line", default)]
    pub line: u32,
    /// Function name, when known.
    #[serde(
        rename = "FunctionName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub function_name: String,
}

/// The common base of every guest → host response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseBase {
    /// HRESULT; 0 on success. Always present.
    #[serde(rename = "Result", default)]
    pub result: Hresult,
    /// Copied from the request; omitted when empty.
    #[serde(
        rename = "ActivityId",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub activity_id: String,
    /// Error text; omitted on success.
    #[serde(
        rename = "ErrorMessage",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub error_message: String,
    /// Error records; omitted on success. The GCS emits exactly one on failure.
    #[serde(
        rename = "ErrorRecords",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub error_records: Vec<ErrorRecord>,
}

impl ResponseBase {
    /// A success base echoing the request's activity id.
    pub fn success(activity_id: impl Into<String>) -> Self {
        Self {
            activity_id: activity_id.into(),
            ..Self::default()
        }
    }

    /// A failure base the way the GCS builds it: `ErrorMessage` plus one record with module
    /// `gcs`, no file and an unknown line.
    pub fn failure(
        activity_id: impl Into<String>,
        result: Hresult,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        Self {
            result,
            activity_id: activity_id.into(),
            error_message: message.clone(),
            error_records: vec![ErrorRecord {
                result,
                message,
                module_name: GCS_MODULE_NAME.to_owned(),
                line: UNKNOWN_LINE,
                ..ErrorRecord::default()
            }],
        }
    }

    /// True if `Result` is 0 or another success code.
    pub fn is_success(&self) -> bool {
        self.result.is_success()
    }
}

/// A response that carries only the base (Start, Shutdown*, SignalProcess, ResizeConsole,
/// ModifySettings, DeleteContainerState, and every failure).
pub type EmptyResponse = ResponseBase;

/// Serde helper for `u32` fields with Go `omitempty`.
pub(crate) fn is_zero_u32(v: &u32) -> bool {
    is_default(v)
}

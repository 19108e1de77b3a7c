//! GetProperties (`0x10100901`): query and result, each carried as JSON inside a string.

use serde::{Deserialize, Serialize};

use super::base::{RequestBase, ResponseBase};
use crate::json::AnyInString;

super::string_enum! {
    /// A property type of a GetProperties query.
    PropertyType {
        /// Processes of the container (`runc ps`).
        ProcessList = "ProcessList",
        /// cgroup statistics.
        Statistics = "Statistics",
        /// Memory (not handled by the Linux GCS).
        Memory = "Memory",
    }
}

/// The query object (`{"PropertyTypes":[…]}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyQuery {
    /// Requested property types; unknown ones are ignored by the GCS.
    #[serde(
        rename = "PropertyTypes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub property_types: Vec<PropertyType>,
}

super::message! {
    /// GetProperties request.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct GetPropertiesRequest {
        /// Request base.
        pub base: RequestBase,
        /// The query, as JSON inside a string; `""` is no query, as for the reference.
        #[serde(
            rename = "Query",
            deserialize_with = "crate::json::any_in_string_or_empty"
        )]
        pub query: AnyInString<PropertyQuery>,
    }
}

/// One process of a process list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessDetails {
    /// Pid in the UVM's root pid namespace.
    #[serde(rename = "ProcessId", default)]
    pub process_id: u32,
}

/// The properties object; `{}` when nothing applies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Properties {
    /// Processes, if requested.
    #[serde(rename = "ProcessList", default, skip_serializing_if = "Vec::is_empty")]
    pub process_list: Vec<ProcessDetails>,
    /// containerd cgroup-v1 `Metrics`, if requested (free-form: "any" in the spec).
    #[serde(
        rename = "LCOWMetrics",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lcow_metrics: Option<serde_json::Value>,
}

super::message! {
    /// GetProperties response.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct GetPropertiesResponse {
        /// Response base.
        pub base: ResponseBase,
        /// The properties, as JSON inside a string.
        #[serde(rename = "Properties")]
        pub properties: AnyInString<Properties>,
    }
}

//! `HostComputeQuery` (hcs-hcn-api.md §5.2): the document of every enumerate and
//! query-properties call.

use serde::{Deserialize, Serialize};

use super::{SchemaVersion, V2_SCHEMA_VERSION};

/// `HostComputeQueryFlags`: None.
pub const QUERY_FLAG_NONE: u32 = 0;
/// `HostComputeQueryFlags`: Detailed.
pub const QUERY_FLAG_DETAILED: u32 = 1;

/// `HostComputeQuery`: `SchemaVersion` is always sent; `Filter` is JSON text inside a
/// string (`{"ID":"<guid>"}`, `{"Name":"<name>"}`, `{"VirtualNetwork":"<id>"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostComputeQuery {
    /// Schema version (2.0).
    #[serde(rename = "SchemaVersion")]
    pub schema_version: SchemaVersion,
    /// `HostComputeQueryFlags`.
    #[serde(rename = "Flags", skip_serializing_if = "hcs_schema::go::is_empty")]
    pub flags: u32,
    /// The filter, JSON text.
    #[serde(rename = "Filter", skip_serializing_if = "String::is_empty")]
    pub filter: String,
}

/// `defaultQuery()`: schema 2.0, no flags, no filter.
impl Default for HostComputeQuery {
    fn default() -> Self {
        Self {
            schema_version: V2_SCHEMA_VERSION,
            flags: QUERY_FLAG_NONE,
            filter: String::new(),
        }
    }
}

impl HostComputeQuery {
    /// A query whose filter is the JSON object `{key: value}`.
    pub fn filter_by(key: &str, value: &str) -> Self {
        let mut filter = serde_json::Map::new();
        filter.insert(
            key.to_string(),
            serde_json::Value::String(value.to_string()),
        );
        Self {
            filter: serde_json::Value::Object(filter).to_string(),
            ..Self::default()
        }
    }

    /// `{"ID": id}`.
    pub fn by_id(id: &str) -> Self {
        Self::filter_by("ID", id)
    }

    /// `{"Name": name}`.
    pub fn by_name(name: &str) -> Self {
        Self::filter_by("Name", name)
    }

    /// The JSON text of the query.
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

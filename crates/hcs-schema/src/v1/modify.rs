//! v1 `HcsModifyComputeSystem` document (hot-adding HNS endpoints, spec §4.4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::go::{is_empty, null_default};
use crate::macros::string_enum;

string_enum! {
    /// Request type of a v1 modification.
    pub enum RequestType {
        /// Add the resource.
        Add = "Add",
        /// Remove the resource.
        Remove = "Remove",
    }
}

string_enum! {
    /// Resource type of a v1 modification.
    pub enum ResourceType {
        /// A network endpoint.
        Network = "Network",
    }
}

/// `{"ResourceType": "Network", "Settings": any, "RequestType": "Add"|"Remove"}`.
/// `ResourceType` and `Settings` are always present (`Settings` is `null` when unset);
/// `RequestType` is `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceModificationRequestResponse {
    /// The kind of resource.
    #[serde(rename = "ResourceType", deserialize_with = "null_default")]
    pub resource_type: ResourceType,
    /// Resource settings (for `Network`: the endpoint id string).
    #[serde(rename = "Settings")]
    pub settings: Value,
    /// Add or remove.
    #[serde(
        rename = "RequestType",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub request_type: RequestType,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn endpoint_hot_add_document() {
        let req = ResourceModificationRequestResponse {
            resource_type: ResourceType::Network,
            settings: Value::String("9ab7f1c2-0000-0000-0000-000000000001".into()),
            request_type: RequestType::Add,
        };
        let text = json::to_string(&req).unwrap();
        assert_eq!(
            text,
            r#"{"ResourceType":"Network","Settings":"9ab7f1c2-0000-0000-0000-000000000001","RequestType":"Add"}"#
        );
        assert_eq!(
            json::from_str::<ResourceModificationRequestResponse>(&text).unwrap(),
            req
        );
    }

    #[test]
    fn default_keeps_the_non_omitempty_keys() {
        assert_eq!(
            json::to_string(&ResourceModificationRequestResponse::default()).unwrap(),
            r#"{"ResourceType":"","Settings":null}"#
        );
    }
}

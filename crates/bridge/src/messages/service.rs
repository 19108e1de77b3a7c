//! ModifyServiceSettings (`0x10200101`, category compute service): WCOW log forwarding. The
//! Linux GCS answers it with `HrNotImpl`; the shape is here so both sides can name it.
//! UpdateContainer and LifecycleNotification have no LCOW payload in the spec: they are
//! answered from the request base alone.

use super::base::RequestBase;

super::message! {
    /// ModifyServiceSettings request.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct ModifyServiceSettingsRequest {
        /// Request base.
        pub base: RequestBase,
        /// `"LogForwardService"`.
        #[serde(rename = "PropertyType", default)]
        pub property_type: String,
        /// `{"RPCType":…,"Settings":"<base64>"}`, free-form here.
        #[serde(rename = "Settings", default)]
        pub settings: serde_json::Value,
    }
}

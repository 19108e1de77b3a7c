//! The top-level create document (`hcsschema.ComputeSystem`) and the hosted-system wrapper.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::container::Container;
use super::virtual_machine::VirtualMachine;
use crate::go::{is_empty, null_default};
use crate::macros::omitempty_struct;
use crate::version::SchemaVersion;

/// The document of `HcsCreateComputeSystem` in schema 2.x. `Container`, `VirtualMachine`
/// and `HostedSystem` are mutually exclusive: a process-isolated container sets
/// `Container`, a utility VM sets `VirtualMachine`, and a container HCS routes into a UVM
/// sets `HostingSystemId` + `HostedSystem`. Every key is `omitempty`.
///
/// `H` is the type of `HostedSystem` (Go `interface{}`): raw JSON by default, usually
/// [`HostedSystem`] when encoding so that its keys keep declaration order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound(deserialize = "H: Deserialize<'de>"))]
pub struct ComputeSystem<H = Value> {
    /// Management platform (e.g. the shim's owner name).
    #[serde(
        rename = "Owner",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub owner: String,
    /// Schema version of the document.
    #[serde(rename = "SchemaVersion", skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<SchemaVersion>,
    /// Id of the utility VM hosting this system.
    #[serde(
        rename = "HostingSystemId",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub hosting_system_id: String,
    /// Hosted system settings.
    #[serde(rename = "HostedSystem", skip_serializing_if = "Option::is_none")]
    pub hosted_system: Option<H>,
    /// Process-isolated container settings.
    #[serde(rename = "Container", skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Virtual machine settings.
    #[serde(rename = "VirtualMachine", skip_serializing_if = "Option::is_none")]
    pub virtual_machine: Option<VirtualMachine>,
    /// Terminate when the last handle closes.
    #[serde(
        rename = "ShouldTerminateOnLastHandleClosed",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub should_terminate_on_last_handle_closed: bool,
}

impl<H> Default for ComputeSystem<H> {
    fn default() -> Self {
        Self {
            owner: String::new(),
            schema_version: None,
            hosting_system_id: String::new(),
            hosted_system: None,
            container: None,
            virtual_machine: None,
            should_terminate_on_last_handle_closed: false,
        }
    }
}

omitempty_struct! {
    /// `HostedSystem{SchemaVersion, Container}`: a container created inside a utility VM.
    pub struct HostedSystem {
        /// Schema version of the hosted document.
        "SchemaVersion" schema_version: Option<SchemaVersion>,
        /// The container.
        "Container" container: Option<Container>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    use crate::v2::{GuestOs, Layer, Storage};

    #[test]
    fn empty_document_is_empty_object() {
        assert_eq!(
            json::to_string(&ComputeSystem::<Value>::default()).unwrap(),
            "{}"
        );
        assert_eq!(json::to_string(&HostedSystem::default()).unwrap(), "{}");
    }

    #[test]
    fn argon_container_document() {
        let cs: ComputeSystem = ComputeSystem {
            owner: "containerd-shim-runhcs-v1.exe".into(),
            schema_version: Some(SchemaVersion::V2_1),
            container: Some(Container {
                guest_os: Some(GuestOs {
                    host_name: "web".into(),
                }),
                storage: Some(Storage {
                    layers: vec![Layer {
                        id: "8a8f6c4e-1b2c-5d3e-9f40-112233445566".into(),
                        path: r"C:\wf\l1".into(),
                        ..Default::default()
                    }],
                    path: r"\\?\Volume{1}\".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            should_terminate_on_last_handle_closed: true,
            ..Default::default()
        };
        let text = json::to_string(&cs).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"Owner":"containerd-shim-runhcs-v1.exe","SchemaVersion":{"Major":2,"Minor":1},"#,
                r#""Container":{"GuestOs":{"HostName":"web"},"Storage":{"Layers":[{"Id":"8a8f6c4e-1b2c-5d3e-9f40-112233445566","Path":"C:\\wf\\l1"}],"#,
                r#""Path":"\\\\?\\Volume{1}\\"}},"ShouldTerminateOnLastHandleClosed":true}"#
            )
        );
        assert_eq!(json::from_str::<ComputeSystem>(&text).unwrap(), cs);
    }

    #[test]
    fn hosted_document_carries_any_settings() {
        let hosted = HostedSystem {
            schema_version: Some(SchemaVersion::V2_1),
            container: Some(Container::default()),
        };
        let cs = ComputeSystem {
            hosting_system_id: "uvm1".into(),
            hosted_system: Some(hosted.clone()),
            schema_version: Some(SchemaVersion::V2_1),
            ..Default::default()
        };
        let text = json::to_string(&cs).unwrap();
        assert_eq!(
            text,
            r#"{"SchemaVersion":{"Major":2,"Minor":1},"HostingSystemId":"uvm1","HostedSystem":{"SchemaVersion":{"Major":2,"Minor":1},"Container":{}}}"#
        );
        let back: ComputeSystem = json::from_str(&text).unwrap();
        let inner: HostedSystem = json::from_value(back.hosted_system.unwrap()).unwrap();
        assert_eq!(inner, hosted);
        let typed: ComputeSystem<HostedSystem> = json::from_str(&text).unwrap();
        assert_eq!(typed, cs);
    }
}

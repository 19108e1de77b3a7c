//! Container-level requests: Create, Start, Shutdown*, DeleteContainerState, DumpStacks.

use serde::{Deserialize, Serialize};

use super::base::{RequestBase, ResponseBase};
use super::negotiate::SchemaVersion;
use crate::json::{AnyInString, RawJson};

/// Start (`0x10100201`): the base only; a no-op on Linux.
pub type StartRequest = RequestBase;
/// ShutdownGraceful (`0x10100301`) and ShutdownForced (`0x10100401`): the base only.
pub type ShutdownRequest = RequestBase;
/// DeleteContainerState (`0x10100d01`): the base only.
pub type DeleteContainerStateRequest = RequestBase;
/// DumpStacks (`0x10100c01`): the base only, normally with the null id.
pub type DumpStacksRequest = RequestBase;

/// The container-create document (host `linuxHostedSystem`, guest
/// `VMHostedContainerSettingsV2`), carried as a JSON string in [`CreateRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// Must be at least 2.1.
    #[serde(rename = "SchemaVersion", default)]
    pub schema_version: SchemaVersion,
    /// Bundle dir, `/run/gcs/c/<id>` for shim v1.
    #[serde(
        rename = "OciBundlePath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub oci_bundle_path: String,
    /// The OCI runtime spec, kept verbatim (parse it with [`RawJson::parse`]).
    #[serde(
        rename = "OciSpecification",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oci_specification: Option<RawJson>,
    /// Scratch dir, normally `/run/gcs/c/<id>/scratch/<id>`.
    #[serde(
        rename = "ScratchDirPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub scratch_dir_path: String,
}

super::message! {
    /// Create (`0x10100101`).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct CreateRequest {
        /// Request base: the new container's id.
        pub base: RequestBase,
        /// The create document, as JSON inside a string.
        #[serde(rename = "ContainerConfig")]
        pub container_config: AnyInString<ContainerConfig>,
    }
}

super::message! {
    /// Create response; the host reads only the base.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct CreateResponse {
        /// Response base.
        pub base: ResponseBase,
        /// Legacy, omitted.
        #[serde(
            rename = "SelectedVersion",
            default,
            skip_serializing_if = "String::is_empty"
        )]
        pub selected_version: String,
        /// Always 0, never omitted.
        #[serde(rename = "SelectedProtocolVersion", default)]
        pub selected_protocol_version: u32,
    }
}

super::message! {
    /// DumpStacks response.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct DumpStacksResponse {
        /// Response base.
        pub base: ResponseBase,
        /// A dump of the guest's stacks. Mind the host's 64 KiB message limit.
        #[serde(rename = "GuestStacks", default)]
        pub guest_stacks: String,
    }
}

//! Container Credential Guard (gMSA) state and the host requests that manage its instances.

use serde_json::Value;

use super::hvsocket::HvSocketServiceConfig;
use crate::macros::{omitempty_struct, string_enum};

string_enum! {
    /// Transport of a Container Credential Guard instance.
    pub enum ContainerCredentialGuardTransport {
        /// Local RPC.
        Lrpc = "LRPC",
        /// Hyper-V sockets.
        HvSocket = "HvSocket",
        /// Number of transports (a Swagger artefact, listed for completeness).
        Count = "Count",
    }
}

omitempty_struct! {
    /// Credential guard state of a container (key `ContainerCredentialGuard`).
    pub struct ContainerCredentialGuardState {
        /// Authentication cookie for calls to the instance.
        "Cookie" cookie: String,
        /// RPC endpoint name of the instance.
        "RpcEndpoint" rpc_endpoint: String,
        /// Transport.
        "Transport" transport: Option<ContainerCredentialGuardTransport>,
        /// Credential spec (JSON text).
        "CredentialSpec" credential_spec: String,
    }
}

string_enum! {
    /// Operation of a [`ContainerCredentialGuardOperationRequest`].
    pub enum ContainerCredentialGuardModifyOperation {
        /// Add an instance ([`ContainerCredentialGuardAddInstanceRequest`]).
        AddInstance = "AddInstance",
        /// Remove an instance ([`ContainerCredentialGuardRemoveInstanceRequest`]).
        RemoveInstance = "RemoveInstance",
    }
}

omitempty_struct! {
    /// A host-level credential guard request (`HcsModifyServiceSettings`).
    pub struct ContainerCredentialGuardOperationRequest {
        /// Operation.
        "Operation" operation: Option<ContainerCredentialGuardModifyOperation>,
        /// Operation input (raw JSON of the add/remove request).
        "OperationDetails" operation_details: Option<Value>,
    }
}

omitempty_struct! {
    /// Input of `AddInstance`.
    pub struct ContainerCredentialGuardAddInstanceRequest {
        /// Instance GUID.
        "Id" id: String,
        /// Credential spec (JSON text).
        "CredentialSpec" credential_spec: String,
        /// Transport.
        "Transport" transport: Option<ContainerCredentialGuardTransport>,
    }
}

omitempty_struct! {
    /// Input of `RemoveInstance`.
    #[derive(Eq)]
    pub struct ContainerCredentialGuardRemoveInstanceRequest {
        /// Instance GUID.
        "Id" id: String,
    }
}

omitempty_struct! {
    /// hvsocket service of an instance using the `HvSocket` transport.
    pub struct ContainerCredentialGuardHvSocketServiceConfig {
        /// Service GUID.
        "ServiceId" service_id: String,
        /// Service settings.
        "ServiceConfig" service_config: Option<HvSocketServiceConfig>,
    }
}

omitempty_struct! {
    /// A running instance.
    pub struct ContainerCredentialGuardInstance {
        /// Instance GUID.
        "Id" id: String,
        /// Its state.
        "CredentialGuard" credential_guard: Option<ContainerCredentialGuardState>,
        /// Its hvsocket service.
        "HvSocketConfig" hv_socket_config: Option<ContainerCredentialGuardHvSocketServiceConfig>,
    }
}

omitempty_struct! {
    /// The running instances (the `ContainerCredentialGuard` service property).
    pub struct ContainerCredentialGuardSystemInfo {
        /// Instances.
        "Instances" instances: Vec<ContainerCredentialGuardInstance>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn add_instance_request_nests_raw_details() {
        let add = ContainerCredentialGuardAddInstanceRequest {
            id: "c1".into(),
            credential_spec: "{}".into(),
            transport: Some(ContainerCredentialGuardTransport::Lrpc),
        };
        let req = ContainerCredentialGuardOperationRequest {
            operation: Some(ContainerCredentialGuardModifyOperation::AddInstance),
            operation_details: Some(serde_json::to_value(&add).unwrap()),
        };
        assert_eq!(
            json::to_string(&req).unwrap(),
            r#"{"Operation":"AddInstance","OperationDetails":{"CredentialSpec":"{}","Id":"c1","Transport":"LRPC"}}"#,
            "a serde_json::Value object is key-sorted; callers wanting struct order nest the struct itself"
        );
    }
}

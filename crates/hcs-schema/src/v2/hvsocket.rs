//! Hyper-V socket settings of containers and VMs.

use std::collections::BTreeMap;

use crate::macros::omitempty_struct;

omitempty_struct! {
    /// Hyper-V socket settings of a container (`HvSocket`).
    pub struct HvSocket {
        /// System-wide configuration.
        "Config" config: Option<HvSocketSystemConfig>,
        /// Enable PowerShell Direct.
        "EnablePowerShellDirect" enable_power_shell_direct: bool,
    }
}

omitempty_struct! {
    /// Security descriptors and per-service settings of a system's hvsockets.
    pub struct HvSocketSystemConfig {
        /// SDDL checked before a host process binds an unlisted service.
        "DefaultBindSecurityDescriptor" default_bind_security_descriptor: String,
        /// SDDL checked before a host process connects to an unlisted service.
        "DefaultConnectSecurityDescriptor" default_connect_security_descriptor: String,
        /// Services by service GUID (the `Settings` of
        /// `VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/<guid>`).
        "ServiceTable" service_table: BTreeMap<String, HvSocketServiceConfig>,
    }
}

omitempty_struct! {
    /// Settings of one hvsocket service.
    #[derive(Eq)]
    pub struct HvSocketServiceConfig {
        /// SDDL checked before binding this service.
        "BindSecurityDescriptor" bind_security_descriptor: String,
        /// SDDL checked before connecting to this service.
        "ConnectSecurityDescriptor" connect_security_descriptor: String,
        /// Process wildcard binds for this service.
        "AllowWildcardBinds" allow_wildcard_binds: bool,
        /// The service is disabled.
        "Disabled" disabled: bool,
    }
}

omitempty_struct! {
    /// hvsocket addresses of a container inside a UVM (WCOW redirect).
    #[derive(Eq)]
    pub struct HvSocketAddress {
        /// Local address (the container's system GUID).
        "LocalAddress" local_address: String,
        /// Parent address (the UVM's runtime id).
        "ParentAddress" parent_address: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn service_table_is_sorted_and_round_trips() {
        let doc = concat!(
            r#"{"DefaultBindSecurityDescriptor":"D:P(A;;FA;;;SY)","ServiceTable":{"#,
            r#""0000006d-facb-11e6-bd58-64006a7986d3":{"BindSecurityDescriptor":"D:P(A;;FA;;;WD)","AllowWildcardBinds":true},"#,
            r#""e0e16197-dd56-4a10-9195-5ee7a155a838":{"Disabled":true}}}"#
        );
        let c: HvSocketSystemConfig = json::from_str(doc).unwrap();
        assert!(c.service_table["e0e16197-dd56-4a10-9195-5ee7a155a838"].disabled);
        assert_eq!(json::to_string(&c).unwrap(), doc);
    }

    #[test]
    fn container_hvsocket() {
        let h = HvSocket {
            config: None,
            enable_power_shell_direct: true,
        };
        assert_eq!(
            json::to_string(&h).unwrap(),
            r#"{"EnablePowerShellDirect":true}"#
        );
    }
}

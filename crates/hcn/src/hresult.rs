//! The HCN HRESULTs (`HCN_E_*`, `0x803B0001`–`0x803B0037`, facility 0x3B) with their
//! Windows symbols and messages, next to the HCS/Win32 table of [`hcs::hresult`].
//!
//! hnsd answers with these values, so a client sees the same codes from hnsd as from
//! Windows. Messages follow winerror.h's wording where this port knows it; hnsd puts them in
//! its error records, where Windows puts `FormatMessage`'s text.

use hcs::HResult;

/// One HCN HRESULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HcnHResult {
    /// The Windows symbol.
    pub name: &'static str,
    /// The value.
    pub value: HResult,
    /// What it means.
    pub message: &'static str,
}

macro_rules! hcn_hresults {
    ($( $konst:ident = $value:literal, $message:literal; )*) => {
        $(
            #[doc = concat!("`", stringify!($konst), "`: ", $message)]
            pub const $konst: HResult = HResult::new($value);
        )*

        /// Every HCN HRESULT this crate names.
        pub static HCN_HRESULTS: &[HcnHResult] = &[
            $( HcnHResult { name: stringify!($konst), value: HResult::new($value), message: $message }, )*
        ];
    };
}

hcn_hresults! {
    HCN_E_NETWORK_NOT_FOUND = 0x803B_0001, "The network was not found.";
    HCN_E_ENDPOINT_NOT_FOUND = 0x803B_0002, "The endpoint was not found.";
    HCN_E_LAYER_NOT_FOUND = 0x803B_0003, "The network's underlying layer was not found.";
    HCN_E_SWITCH_NOT_FOUND = 0x803B_0004, "The virtual switch was not found.";
    HCN_E_SUBNET_NOT_FOUND = 0x803B_0005, "The network does not have a subnet for this endpoint.";
    HCN_E_ADAPTER_NOT_FOUND = 0x803B_0006, "An adapter was not found.";
    HCN_E_PORT_NOT_FOUND = 0x803B_0007, "The switch-port was not found.";
    HCN_E_POLICY_NOT_FOUND = 0x803B_0008, "An expected policy was not found.";
    HCN_E_VFP_PORTSETTING_NOT_FOUND = 0x803B_0009, "A required VFP port setting was not found.";
    HCN_E_INVALID_NETWORK = 0x803B_000A, "The provided network configuration is invalid or missing parameters.";
    HCN_E_INVALID_NETWORK_TYPE = 0x803B_000B, "Invalid network type.";
    HCN_E_INVALID_ENDPOINT = 0x803B_000C, "The provided endpoint configuration is invalid or missing parameters.";
    HCN_E_INVALID_POLICY = 0x803B_000D, "The provided policy configuration is invalid or missing parameters.";
    HCN_E_INVALID_POLICY_TYPE = 0x803B_000E, "Invalid policy type.";
    HCN_E_INVALID_REMOTE_ENDPOINT_OPERATION = 0x803B_000F, "This requested operation is invalid for a remote endpoint.";
    HCN_E_NETWORK_ALREADY_EXISTS = 0x803B_0010, "A network with this name already exists.";
    HCN_E_LAYER_ALREADY_EXISTS = 0x803B_0011, "A network layer with this name already exists.";
    HCN_E_POLICY_ALREADY_EXISTS = 0x803B_0012, "Policy information already exists on this object.";
    HCN_E_PORT_ALREADY_EXISTS = 0x803B_0013, "The specified port already exists.";
    HCN_E_ENDPOINT_ALREADY_ATTACHED = 0x803B_0014, "This endpoint is already attached to the switch.";
    HCN_E_REQUEST_UNSUPPORTED = 0x803B_0015, "The specified request is unsupported.";
    HCN_E_MAPPING_NOT_SUPPORTED = 0x803B_0016, "Port mapping is not supported on the given network.";
    HCN_E_DEGRADED_OPERATION = 0x803B_0017, "There was an operation attempted on a degraded object.";
    HCN_E_SHARED_SWITCH_MODIFICATION = 0x803B_0018, "Cannot modify a switch shared by multiple networks.";
    HCN_E_GUID_CONVERSION_FAILURE = 0x803B_0019, "Failed to interpret a parameter as a GUID.";
    HCN_E_REGKEY_FAILURE = 0x803B_001A, "Failed to process registry key.";
    HCN_E_INVALID_JSON = 0x803B_001B, "Invalid JSON document string.";
    HCN_E_INVALID_JSON_REFERENCE = 0x803B_001C, "The reference is invalid in the JSON document.";
    HCN_E_ENDPOINT_SHARING_DISABLED = 0x803B_001D, "Endpoint sharing is disabled.";
    HCN_E_INVALID_IP = 0x803B_001E, "IP address is either invalid or not part of any configured subnet(s).";
    HCN_E_SWITCH_EXTENSION_NOT_FOUND = 0x803B_001F, "The specified switch extension does not exist on this switch.";
    HCN_E_MANAGER_STOPPED = 0x803B_0020, "Operation cannot be performed while service is stopping.";
    GCN_E_MODULE_NOT_FOUND = 0x803B_0021, "The specified module was not found.";
    GCN_E_NO_REQUEST_HANDLERS = 0x803B_0022, "No request handlers are registered for this request.";
    GCN_E_REQUEST_UNSUPPORTED = 0x803B_0023, "The specified request is unsupported.";
    GCN_E_RUNTIMEKEYS_FAILED = 0x803B_0024, "Failed to add the runtime keys.";
    GCN_E_NETADAPTER_TIMEOUT = 0x803B_0025, "Timed out waiting for the network adapter.";
    GCN_E_NETADAPTER_NOT_FOUND = 0x803B_0026, "The network adapter was not found.";
    GCN_E_NETCOMPARTMENT_NOT_FOUND = 0x803B_0027, "The network compartment was not found.";
    GCN_E_NETINTERFACE_NOT_FOUND = 0x803B_0028, "The network interface was not found.";
    GCN_E_DEFAULTNAMESPACE_EXISTS = 0x803B_0029, "A default namespace already exists.";
    HCN_E_ICS_DISABLED = 0x803B_002A, "Internet connection sharing is disabled.";
    HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS = 0x803B_002B, "This requested operation is invalid as endpoint is already part of a network namespace.";
    HCN_E_ENTITY_HAS_REFERENCES = 0x803B_002C, "The specified entity cannot be removed while it still has references.";
    HCN_E_INVALID_INTERNAL_PORT = 0x803B_002D, "The internal port must exist and cannot be zero.";
    HCN_E_NAMESPACE_ATTACH_FAILED = 0x803B_002E, "The requested operation for attach namespace failed.";
    HCN_E_ADDR_INVALID_OR_RESERVED = 0x803B_002F, "An address provided is invalid or reserved.";
    HCN_E_INVALID_PREFIX = 0x803B_0030, "The prefix is invalid.";
    HCN_E_OBJECT_USED_AFTER_UNLOAD = 0x803B_0031, "The object was used after it was unloaded.";
    HCN_E_INVALID_SUBNET = 0x803B_0032, "The specified subnet is invalid.";
    HCN_E_INVALID_IP_SUBNET = 0x803B_0033, "The IP subnet is invalid.";
    HCN_E_ENDPOINT_NOT_ATTACHED = 0x803B_0034, "The endpoint is not attached.";
    HCN_E_ENDPOINT_NOT_LOCAL = 0x803B_0035, "The endpoint is not local.";
    HCN_INTERFACEPARAMETERS_ALREADY_APPLIED = 0x803B_0036, "The interface parameters are already applied.";
    HCN_E_VFP_NOT_ALLOWED = 0x803B_0037, "VFP is not allowed.";
}

/// `E_INVALIDARG` (`0x80070057`), normalised: "The parameter is incorrect."
pub const ERROR_INVALID_PARAMETER: HResult = HResult::new(0x57);
/// `ERROR_ALREADY_EXISTS` (183), normalised: "Cannot create a file when that file already
/// exists."; HNS's answer to a duplicate id.
pub const ERROR_ALREADY_EXISTS: HResult = HResult::new(0xB7);
/// `ERROR_OBJECT_ALREADY_EXISTS` (5010): "The object already exists."
pub const ERROR_OBJECT_ALREADY_EXISTS: HResult = HResult::new(0x1392);

/// The symbol of `hr`: the HCN table, then the HCS/Win32 table, then the three Win32 codes
/// above.
pub fn name(hr: HResult) -> Option<&'static str> {
    info(hr).map(|(n, _)| n)
}

/// The message of `hr` (see [`name`]).
pub fn message(hr: HResult) -> Option<&'static str> {
    info(hr).map(|(_, m)| m)
}

fn info(hr: HResult) -> Option<(&'static str, &'static str)> {
    let n = hr.normalized();
    if let Some(h) = HCN_HRESULTS.iter().find(|h| h.value == hr || h.value == n) {
        return Some((h.name, h.message));
    }
    if let Some(i) = hr.info() {
        return Some((i.name, i.message));
    }
    match n {
        ERROR_INVALID_PARAMETER => Some(("ERROR_INVALID_PARAMETER", "The parameter is incorrect.")),
        ERROR_ALREADY_EXISTS => Some((
            "ERROR_ALREADY_EXISTS",
            "Cannot create a file when that file already exists.",
        )),
        ERROR_OBJECT_ALREADY_EXISTS => {
            Some(("ERROR_OBJECT_ALREADY_EXISTS", "The object already exists."))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_contiguous_and_matches_the_spec_examples() {
        for (i, h) in HCN_HRESULTS.iter().enumerate() {
            assert_eq!(h.value.value(), 0x803B_0001 + i as u32, "{}", h.name);
        }
        assert_eq!(HCN_E_NETWORK_NOT_FOUND.value(), 0x803B_0001);
        assert_eq!(HCN_E_ENDPOINT_NOT_FOUND.value(), 0x803B_0002);
        assert_eq!(HCN_E_INVALID_JSON.value(), 0x803B_001B);
        assert_eq!(HCN_E_MANAGER_STOPPED.value(), 0x803B_0020);
        assert_eq!(
            HCN_E_PORT_ALREADY_EXISTS,
            HResult::HCN_E_PORT_ALREADY_EXISTS
        );
        assert_eq!(
            name(HCN_E_PORT_ALREADY_EXISTS),
            Some("HCN_E_PORT_ALREADY_EXISTS")
        );
        assert_eq!(
            name(HResult::new(0x8007_0490)),
            Some("HRESULT_ERROR_NOT_FOUND")
        );
        assert_eq!(
            message(HResult::new(0x8007_0057)),
            Some("The parameter is incorrect.")
        );
        assert_eq!(name(HResult::new(0x8000_FFFF)), None);
    }
}

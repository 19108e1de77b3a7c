//! Container networking and VM network adapters.

use crate::macros::{omitempty_struct, string_enum};

omitempty_struct! {
    /// Networking of a container.
    pub struct Networking {
        /// Allow unqualified DNS names.
        "AllowUnqualifiedDnsQuery" allow_unqualified_dns_query: bool,
        /// Comma-separated DNS search suffixes.
        "DnsSearchList" dns_search_list: String,
        /// Container whose network stack is shared.
        "NetworkSharedContainerName" network_shared_container_name: String,
        /// HCN namespace GUID (a string in Linux guests).
        "Namespace" namespace: String,
        /// Endpoint ids (legacy).
        "NetworkAdapters" network_adapters: Vec<String>,
    }
}

omitempty_struct! {
    /// A VM network adapter (the `Settings` of `VirtualMachine/Devices/NetworkAdapters/<id>`).
    pub struct NetworkAdapter {
        /// HCN endpoint GUID.
        "EndpointId" endpoint_id: String,
        /// MAC address (`00-15-5D-…`).
        "MacAddress" mac_address: String,
        /// I/O virtualisation settings.
        "IovSettings" iov_settings: Option<IovSettings>,
    }
}

string_enum! {
    /// Interrupt moderation of an IoV port.
    pub enum InterruptModerationMode {
        /// Default.
        Default = "Default",
        /// Adaptive.
        Adaptive = "Adaptive",
        /// Off.
        Off = "Off",
        /// Low.
        Low = "Low",
        /// Medium.
        Medium = "Medium",
        /// High.
        High = "High",
    }
}

omitempty_struct! {
    /// IoV offload settings. The reference made the numbers pointers so that an explicit 0
    /// (disable offload) is sent.
    pub struct IovSettings {
        /// Offload weight; 0 disables IoV offload.
        "OffloadWeight" offload_weight: Option<u32>,
        /// Queue pairs requested.
        "QueuePairsRequested" queue_pairs_requested: Option<u32>,
        /// Interrupt moderation.
        "InterruptModeration" interrupt_moderation: Option<InterruptModerationMode>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn adapter_with_explicit_zero_offload() {
        let a = NetworkAdapter {
            endpoint_id: "6d2a8c39-0000-0000-0000-000000000001".into(),
            mac_address: "00-15-5D-52-C0-00".into(),
            iov_settings: Some(IovSettings {
                offload_weight: Some(0),
                queue_pairs_requested: None,
                interrupt_moderation: Some(InterruptModerationMode::Adaptive),
            }),
        };
        let text = json::to_string(&a).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"EndpointId":"6d2a8c39-0000-0000-0000-000000000001","MacAddress":"00-15-5D-52-C0-00","#,
                r#""IovSettings":{"OffloadWeight":0,"InterruptModeration":"Adaptive"}}"#
            )
        );
        assert_eq!(json::from_str::<NetworkAdapter>(&text).unwrap(), a);
    }

    #[test]
    fn networking_keys() {
        let n = Networking {
            allow_unqualified_dns_query: true,
            dns_search_list: "a.com".into(),
            namespace: "ns".into(),
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&n).unwrap(),
            r#"{"AllowUnqualifiedDnsQuery":true,"DnsSearchList":"a.com","Namespace":"ns"}"#
        );
    }
}

//! Fuzzes the HCN/HNS document decoders: every v2 document and v1 object (what decodes
//! re-encodes and decodes to the same value), the HNS envelope, the hnsd wire request, and
//! the engine's handling of untrusted documents (create/modify/query of every kind and the
//! v1 paths), which must answer with an HRESULT, never panic.
#![no_main]

use std::sync::OnceLock;

use hcn::api::{HcnApi, ObjectKind};
use hcn::schema::*;
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_string(&value).expect("a decoded document re-encodes");
        let again: T = serde_json::from_str(&text).expect("a re-encoded document decodes");
        assert_eq!(again, value);
    }
}

fn engine() -> &'static std::sync::Arc<hcn::engine::Engine> {
    static E: OnceLock<std::sync::Arc<hcn::engine::Engine>> = OnceLock::new();
    E.get_or_init(|| {
        let e = hcn::engine::Engine::in_memory();
        let net = e
            .client()
            .create_network(&HostComputeNetwork {
                name: "fuzz".into(),
                ipams: vec![Ipam {
                    ipam_type: IpamType::Static,
                    subnets: vec![Subnet {
                        ip_address_prefix: "10.0.0.0/16".into(),
                        routes: vec![Route {
                            next_hop: "10.0.0.1".into(),
                            destination_prefix: "0.0.0.0/0".into(),
                            metric: 0,
                        }],
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            })
            .expect("the seed network");
        assert!(!net.id.is_empty());
        e
    })
}

fuzz_target!(|data: &[u8]| {
    round_trip::<HostComputeNetwork>(data);
    round_trip::<HostComputeEndpoint>(data);
    round_trip::<HostComputeNamespace>(data);
    round_trip::<HostComputeLoadBalancer>(data);
    round_trip::<HostComputeRoute>(data);
    round_trip::<HostComputeQuery>(data);
    round_trip::<ModifyNamespaceSettingRequest>(data);
    round_trip::<hcn::v1::HnsNetwork>(data);
    round_trip::<hcn::v1::HnsEndpoint>(data);
    round_trip::<hcn::v1::PolicyList>(data);
    round_trip::<hcn::wire::Request>(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hcn::v1::decode_envelope::<hcn::v1::HnsNetwork>(text);
    let _ = HostComputeNetwork::from_json(text);
    if let Ok(p) = serde_json::from_str::<EndpointPolicy>(text) {
        let _ = p.settings::<PortMappingPolicySetting>();
    }
    // The engine: each answer is Ok or an error with an HRESULT and a JSON record.
    let e = engine();
    let net = e.enumerate(ObjectKind::Network, "").expect("enumerate");
    let net_id: Vec<String> = serde_json::from_str(&net).expect("a GUID list");
    let network = e
        .open(ObjectKind::Network, &net_id[0])
        .expect("the seed network");
    for kind in ObjectKind::ALL {
        match e.create(
            kind,
            hcn::ZERO_GUID,
            text,
            (kind == ObjectKind::Endpoint).then_some(&network),
        ) {
            Ok(h) => {
                e.query(&h, "").expect("a created object answers queries");
                let _ = e.modify(&h, text);
                let _ = e.delete(kind, &h.id);
            }
            Err(err) => {
                assert!(err.hr < 0, "a failure has a failure HRESULT");
                serde_json::from_str::<serde_json::Value>(&err.record).expect("a JSON record");
            }
        }
        let _ = e.enumerate(kind, text);
    }
    let _ = e.modify(&network, text);
    for path in ["/networks/", "/endpoints/", "/policylists/", "/namespaces/"] {
        let reply = e
            .hns_call("POST", path, text)
            .expect("HNSCall always answers");
        serde_json::from_str::<serde_json::Value>(&reply).expect("an envelope");
    }
});

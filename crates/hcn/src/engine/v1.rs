//! The HNS v1 paths (hcs-hcn-api.md §4.2) over the same state as the v2 entities.
//!
//! v1 documents are converted to and from the v2 objects (a v1 network is a v2 network
//! with one static IPAM, a v1 `NAT` policy is a v2 `PortMapping`, …), so a v1 client and a
//! v2 client see the same objects. Every answer is the HNS envelope
//! `{"Success", "Error", "Output"}`; failures carry the HRESULT's message and detail.
//!
//! Not realized on Linux: container/host/VM attach (recorded in `SharedContainers` and
//! `State`; hnsd cannot know a v1 container's network namespace), endpoint statistics
//! (`HCN_E_REQUEST_UNSUPPORTED`), policy lists (kept as state, no dataplane).

use hcs::HResult;
use serde::Serialize;

use crate::hresult::{
    ERROR_INVALID_PARAMETER, HCN_E_INVALID_NETWORK_TYPE, HCN_E_INVALID_POLICY,
    HCN_E_INVALID_POLICY_TYPE, HCN_E_REQUEST_UNSUPPORTED,
};
use crate::raw::RawJson;
use crate::schema::*;
use crate::v1::{
    endpoint_state, AclPolicy, EndpointAttachDetachRequest, HnsEndpoint, HnsNetwork,
    MacAddressEntry, MacAddressList, MacPool as V1MacPool, NamespaceRequest,
    NamespaceResourceRequest, NatPolicy, OutboundNatPolicy, PaPolicy, PolicyList, QosPolicy,
    RoutePolicy, Subnet as V1Subnet, SystemType,
};

use super::fail::{fail, Fail, Res, E_FAIL};
use super::state::Record;
use super::{canon_id, decode, Engine, ENGINE_VERSION};

/// `{"Success":true,"Output":...}`, the output kept in its own key order.
fn envelope_ok(output: Option<RawJson>) -> String {
    #[derive(Serialize)]
    struct Ok {
        #[serde(rename = "Success")]
        success: bool,
        #[serde(rename = "Output", skip_serializing_if = "Option::is_none")]
        output: Option<RawJson>,
    }
    serde_json::to_string(&Ok {
        success: true,
        output,
    })
    .unwrap_or_else(|e| envelope_err(&fail(E_FAIL, format!("encode: {e}"))))
}

fn envelope_err(f: &Fail) -> String {
    serde_json::json!({"Success": false, "Error": f.message(), "ErrorCode": f.wire_hr() as u32})
        .to_string()
}

fn protocol_number(text: &str) -> Res<u32> {
    match text.to_ascii_uppercase().as_str() {
        "TCP" => Ok(6),
        "UDP" => Ok(17),
        n => n
            .parse()
            .map_err(|_| fail(HCN_E_INVALID_POLICY, format!("protocol {text:?}"))),
    }
}

fn protocol_name(n: u32) -> String {
    match n {
        6 => "TCP".into(),
        17 => "UDP".into(),
        n => n.to_string(),
    }
}

fn v2_network_type(t: &str) -> Res<NetworkType> {
    let known = NetworkType::KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(t))
        .ok_or_else(|| fail(HCN_E_INVALID_NETWORK_TYPE, format!("type {t:?}")))?;
    Ok(NetworkType::from(*known))
}

fn raw<T: Serialize>(v: &T) -> Res<RawJson> {
    RawJson::from_value(v).map_err(|e| fail(E_FAIL, format!("encode: {e}")))
}

fn policy<T: Serialize>(t: EndpointPolicyType, s: &T) -> Res<EndpointPolicy> {
    EndpointPolicy::new(t, s).map_err(|e| fail(E_FAIL, format!("encode: {e}")))
}

/// A v1 network as the v2 document it is.
pub(super) fn network_from_v1(n: &HnsNetwork) -> Res<HostComputeNetwork> {
    let mut policies = Vec::new();
    if !n.network_adapter_name.is_empty() {
        policies.push(
            NetworkPolicy::new(
                NetworkPolicyType::NetAdapterName,
                &NetAdapterNameNetworkPolicySetting {
                    network_adapter_name: n.network_adapter_name.clone(),
                },
            )
            .map_err(|e| fail(E_FAIL, format!("encode: {e}")))?,
        );
    }
    let mut subnet_policies = Vec::new();
    for p in &n.policies {
        let t: crate::v1::Policy = p
            .decode()
            .map_err(|e| fail(HCN_E_INVALID_POLICY, format!("network policy: {e}")))?;
        match t.policy_type.as_str() {
            "VLAN" | "VSID" => subnet_policies.push(p.clone()),
            other => {
                return Err(fail(
                    HCN_E_INVALID_POLICY_TYPE,
                    format!("v1 network policy {other:?}"),
                ))
            }
        }
    }
    let subnets = n
        .subnets
        .iter()
        .map(|s| Subnet {
            ip_address_prefix: s.address_prefix.clone(),
            policies: s.policies.iter().chain(&subnet_policies).cloned().collect(),
            routes: if s.gateway_address.is_empty() {
                Vec::new()
            } else {
                vec![Route {
                    next_hop: s.gateway_address.clone(),
                    destination_prefix: "0.0.0.0/0".into(),
                    metric: 0,
                }]
            },
            flags: 0,
        })
        .collect();
    Ok(HostComputeNetwork {
        name: n.name.clone(),
        network_type: v2_network_type(if n.network_type.is_empty() {
            "NAT"
        } else {
            &n.network_type
        })?,
        policies,
        mac_pool: MacPool {
            ranges: n
                .mac_pools
                .iter()
                .map(|m| MacRange {
                    start_mac_address: m.start_mac_address.clone(),
                    end_mac_address: m.end_mac_address.clone(),
                })
                .collect(),
        },
        dns: Dns {
            domain: n.dns_suffix.clone(),
            server_list: split_list(&n.dns_server_list),
            ..Default::default()
        },
        ipams: vec![Ipam {
            ipam_type: IpamType::Static,
            subnets,
        }],
        schema_version: V2_SCHEMA_VERSION,
        ..Default::default()
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The v1 view of a v2 network.
pub(super) fn network_to_v1(n: &HostComputeNetwork) -> HnsNetwork {
    let adapter = n
        .policies
        .iter()
        .filter(|p| p.policy_type == NetworkPolicyType::NetAdapterName)
        .find_map(|p| p.settings::<NetAdapterNameNetworkPolicySetting>().ok())
        .map(|s| s.network_adapter_name)
        .unwrap_or_default();
    HnsNetwork {
        id: n.id.clone(),
        network_type: n.network_type.as_str().to_string(),
        name: n.name.clone(),
        network_adapter_name: adapter,
        mac_pools: n
            .mac_pool
            .ranges
            .iter()
            .map(|r| V1MacPool {
                start_mac_address: r.start_mac_address.clone(),
                end_mac_address: r.end_mac_address.clone(),
            })
            .collect(),
        subnets: n
            .ipams
            .iter()
            .flat_map(|i| &i.subnets)
            .map(|s| V1Subnet {
                address_prefix: s.ip_address_prefix.clone(),
                gateway_address: s
                    .routes
                    .iter()
                    .find(|r| r.destination_prefix == "0.0.0.0/0" || r.destination_prefix == "::/0")
                    .map(|r| r.next_hop.clone())
                    .unwrap_or_default(),
                policies: s.policies.clone(),
            })
            .collect(),
        dns_suffix: n.dns.domain.clone(),
        dns_server_list: n.dns.server_list.join(","),
        ..Default::default()
    }
}

/// v1 endpoint policies as v2 ones.
fn policies_from_v1(policies: &[RawJson]) -> Res<Vec<EndpointPolicy>> {
    let mut out = Vec::new();
    for p in policies {
        let bad = |e: serde_json::Error| fail(HCN_E_INVALID_POLICY, format!("v1 policy: {e}"));
        let t: crate::v1::Policy = p.decode().map_err(bad)?;
        out.push(match t.policy_type.as_str() {
            "NAT" => {
                let n: NatPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::PortMapping,
                    &PortMappingPolicySetting {
                        protocol: protocol_number(if n.protocol.is_empty() {
                            "TCP"
                        } else {
                            &n.protocol
                        })?,
                        internal_port: n.internal_port,
                        external_port: n.external_port,
                        ..Default::default()
                    },
                )?
            }
            "OutBoundNAT" => {
                let o: OutboundNatPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::OutBoundNat,
                    &OutboundNatPolicySetting {
                        virtual_ip: o.vip,
                        exceptions: o.exceptions,
                        destinations: o.destinations,
                        max_port_pool_usage: o.max_port_pool_usage,
                        ..Default::default()
                    },
                )?
            }
            "ROUTE" => {
                let r: RoutePolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::SdnRoute,
                    &SdnRoutePolicySetting {
                        destination_prefix: r.destination_prefix,
                        next_hop: r.next_hop,
                        need_encap: r.encap_enabled,
                    },
                )?
            }
            "ACL" => {
                let a: AclPolicy = p.decode().map_err(bad)?;
                let protocols = if a.protocols.is_empty() && a.protocol != 0 {
                    a.protocol.to_string()
                } else {
                    a.protocols
                };
                let port = |s: String, n: u16| {
                    if s.is_empty() && n != 0 {
                        n.to_string()
                    } else {
                        s
                    }
                };
                policy(
                    EndpointPolicyType::Acl,
                    &AclPolicySetting {
                        protocols,
                        action: ActionType::from(a.action),
                        direction: DirectionType::from(a.direction),
                        local_addresses: a.local_addresses,
                        remote_addresses: a.remote_addresses,
                        local_ports: port(a.local_ports, a.local_port),
                        remote_ports: port(a.remote_ports, a.remote_port),
                        rule_type: RuleType::from(a.rule_type),
                        priority: a.priority,
                    },
                )?
            }
            "QOS" => {
                let q: QosPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::Qos,
                    &QosPolicySetting {
                        maximum_outgoing_bandwidth_in_bytes: q.maximum_outgoing_bandwidth_in_bytes,
                    },
                )?
            }
            "PA" => {
                let a: PaPolicy = p.decode().map_err(bad)?;
                policy(
                    EndpointPolicyType::ProviderAddress,
                    &ProviderAddressEndpointPolicySetting {
                        provider_address: a.pa,
                    },
                )?
            }
            "L2Driver" => EndpointPolicy {
                policy_type: EndpointPolicyType::L2Driver,
                settings: None,
            },
            other => {
                return Err(fail(
                    HCN_E_INVALID_POLICY_TYPE,
                    format!("v1 endpoint policy {other:?}"),
                ))
            }
        });
    }
    Ok(out)
}

/// v2 endpoint policies in their v1 shapes (a type without a v1 shape is sent as its v2
/// envelope).
fn policies_to_v1(policies: &[EndpointPolicy]) -> Vec<RawJson> {
    policies
        .iter()
        .filter_map(|p| {
            let v = match p.policy_type {
                EndpointPolicyType::PortMapping => {
                    p.settings::<PortMappingPolicySetting>().ok().and_then(|s| {
                        RawJson::from_value(&NatPolicy {
                            policy_type: crate::v1::PolicyType::Nat,
                            protocol: protocol_name(s.protocol),
                            internal_port: s.internal_port,
                            external_port: s.external_port,
                            external_port_reserved: false,
                        })
                        .ok()
                    })
                }
                EndpointPolicyType::OutBoundNat => {
                    p.settings::<OutboundNatPolicySetting>().ok().and_then(|s| {
                        RawJson::from_value(&OutboundNatPolicy {
                            policy_type: crate::v1::PolicyType::OutboundNat,
                            vip: s.virtual_ip,
                            exceptions: s.exceptions,
                            destinations: s.destinations,
                            max_port_pool_usage: s.max_port_pool_usage,
                        })
                        .ok()
                    })
                }
                EndpointPolicyType::SdnRoute => {
                    p.settings::<SdnRoutePolicySetting>().ok().and_then(|s| {
                        RawJson::from_value(&RoutePolicy {
                            policy_type: crate::v1::PolicyType::Route,
                            destination_prefix: s.destination_prefix,
                            next_hop: s.next_hop,
                            encap_enabled: s.need_encap,
                        })
                        .ok()
                    })
                }
                _ => None,
            };
            v.or_else(|| RawJson::from_value(p).ok())
        })
        .collect()
}

impl Engine {
    fn endpoint_to_v1(
        &self,
        e: &Record<HostComputeEndpoint, super::state::EndpointExtra>,
    ) -> HnsEndpoint {
        let st = self.lock();
        let net_name = st
            .networks
            .get(&e.doc.host_compute_network)
            .map(|n| n.doc.name.clone())
            .unwrap_or_default();
        drop(st);
        let mut v4 = e
            .doc
            .ip_configurations
            .iter()
            .filter(|c| !c.ip_address.contains(':'));
        let mut v6 = e
            .doc
            .ip_configurations
            .iter()
            .filter(|c| c.ip_address.contains(':'));
        let (ip, plen) = v4
            .next()
            .map(|c| (c.ip_address.clone(), c.prefix_length))
            .unwrap_or_default();
        let (ip6, plen6) = v6
            .next()
            .map(|c| (c.ip_address.clone(), c.prefix_length))
            .unwrap_or_default();
        let gw = |d: &str| {
            e.doc
                .routes
                .iter()
                .find(|r| r.destination_prefix == d)
                .map(|r| r.next_hop.clone())
                .unwrap_or_default()
        };
        HnsEndpoint {
            id: e.doc.id.clone(),
            name: e.doc.name.clone(),
            virtual_network: e.doc.host_compute_network.clone(),
            virtual_network_name: net_name,
            policies: policies_to_v1(&e.doc.policies),
            mac_address: e.doc.mac_address.clone(),
            ip_address: ip,
            ipv6_address: ip6,
            dns_suffix: e.doc.dns.domain.clone(),
            dns_server_list: e.doc.dns.server_list.join(","),
            gateway_address: gw("0.0.0.0/0"),
            gateway_address_v6: gw("::/0"),
            prefix_length: plen,
            ipv6_prefix_length: plen6,
            is_remote_endpoint: e.doc.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT != 0,
            namespace: (!e.doc.host_compute_namespace.is_empty()).then(|| crate::v1::Namespace {
                id: e.doc.host_compute_namespace.clone(),
                ..Default::default()
            }),
            shared_containers: e.extra.shared_containers.clone(),
            state: e.extra.state,
            ..Default::default()
        }
    }

    fn endpoint_from_v1(&self, e: &HnsEndpoint) -> Res<HostComputeEndpoint> {
        let network = if !e.virtual_network.is_empty() {
            canon_id(&e.virtual_network)?
        } else {
            let st = self.lock();
            st.networks
                .values()
                .find(|n| {
                    n.doc.name == e.virtual_network_name && !e.virtual_network_name.is_empty()
                })
                .map(|n| n.doc.id.clone())
                .ok_or_else(|| {
                    fail(
                        crate::hresult::HCN_E_NETWORK_NOT_FOUND,
                        format!("network {:?}", e.virtual_network_name),
                    )
                })?
        };
        let mut ips = Vec::new();
        if !e.ip_address.is_empty() {
            ips.push(IpConfig {
                ip_address: e.ip_address.clone(),
                prefix_length: e.prefix_length,
            });
        }
        if !e.ipv6_address.is_empty() {
            ips.push(IpConfig {
                ip_address: e.ipv6_address.clone(),
                prefix_length: e.ipv6_prefix_length,
            });
        }
        let mut routes = Vec::new();
        if !e.gateway_address.is_empty() {
            routes.push(Route {
                next_hop: e.gateway_address.clone(),
                destination_prefix: "0.0.0.0/0".into(),
                metric: 0,
            });
        }
        if !e.gateway_address_v6.is_empty() {
            routes.push(Route {
                next_hop: e.gateway_address_v6.clone(),
                destination_prefix: "::/0".into(),
                metric: 0,
            });
        }
        Ok(HostComputeEndpoint {
            name: e.name.clone(),
            host_compute_network: network,
            policies: policies_from_v1(&e.policies)?,
            ip_configurations: ips,
            dns: Dns {
                domain: e.dns_suffix.clone(),
                server_list: split_list(&e.dns_server_list),
                ..Default::default()
            },
            routes,
            mac_address: e.mac_address.clone(),
            flags: if e.is_remote_endpoint {
                ENDPOINT_FLAG_REMOTE_ENDPOINT
            } else {
                0
            },
            schema_version: V2_SCHEMA_VERSION,
            ..Default::default()
        })
    }

    fn v1_endpoint(&self, id: &str) -> Res<HnsEndpoint> {
        let id = canon_id(id)?;
        let rec = self
            .lock()
            .endpoints
            .get(&id)
            .cloned()
            .ok_or_else(|| fail(HResult::ERROR_NOT_FOUND, format!("endpoint {id}")))?;
        Ok(self.endpoint_to_v1(&rec))
    }

    fn v1_network(&self, id: &str) -> Res<HnsNetwork> {
        let id = canon_id(id)?;
        self.lock()
            .networks
            .get(&id)
            .map(|n| network_to_v1(&n.doc))
            .ok_or_else(|| fail(HResult::ERROR_NOT_FOUND, format!("network {id}")))
    }

    /// v1 attach/detach: recorded in `SharedContainers` and `State`.
    fn v1_attach(&self, id: &str, attach: bool, body: &str) -> Res<()> {
        let req: EndpointAttachDetachRequest = decode("attach request", body)?;
        if let SystemType::Other(t) = &req.system_type {
            return Err(fail(ERROR_INVALID_PARAMETER, format!("SystemType {t:?}")));
        }
        let id = canon_id(id)?;
        let mut st = self.lock();
        let mut rec = st
            .endpoints
            .get(&id)
            .cloned()
            .ok_or_else(|| fail(HResult::ERROR_NOT_FOUND, format!("endpoint {id}")))?;
        let who = if req.container_id.is_empty() {
            req.system_type.as_str().to_string()
        } else {
            req.container_id.clone()
        };
        let pos = rec
            .extra
            .shared_containers
            .iter()
            .position(|c| c.eq_ignore_ascii_case(&who));
        match (attach, pos) {
            (true, Some(_)) => {
                return Err(fail(
                    crate::hresult::HCN_E_ENDPOINT_ALREADY_ATTACHED,
                    who.clone(),
                ))
            }
            (true, None) => rec.extra.shared_containers.push(who),
            (false, Some(i)) => {
                rec.extra.shared_containers.remove(i);
            }
            (false, None) => {
                return Err(fail(
                    crate::hresult::HCN_E_ENDPOINT_NOT_ATTACHED,
                    who.clone(),
                ))
            }
        }
        rec.extra.state = match rec.extra.shared_containers.len() {
            0 => endpoint_state::DETACHED,
            1 => endpoint_state::ATTACHED,
            _ => endpoint_state::ATTACHED_SHARING,
        };
        self.persist("endpoints", &id, &rec)?;
        st.endpoints.insert(id, rec);
        Ok(())
    }

    fn v1_namespace(&self, id: &str) -> Res<serde_json::Value> {
        let id = canon_id(id)?;
        let st = self.lock();
        let ns = st
            .namespaces
            .get(&id)
            .ok_or_else(|| fail(HResult::ERROR_NOT_FOUND, format!("namespace {id}")))?;
        let resources: Vec<serde_json::Value> = st
            .endpoints
            .values()
            .filter(|e| e.doc.host_compute_namespace.eq_ignore_ascii_case(&id))
            .map(|e| serde_json::json!({"Type": "Endpoint", "Data": {"Id": e.doc.id}}))
            .collect();
        let mut v = serde_json::json!({"ID": id, "IsDefault": ns.doc.namespace_type == NamespaceType::HostDefault});
        if !resources.is_empty() {
            v["ResourceList"] = resources.into();
        }
        Ok(v)
    }

    fn v1_policy_list_create(&self, body: &str) -> Res<PolicyList> {
        let mut pl: PolicyList = decode("policy list", body)?;
        let mut st = self.lock();
        for r in &pl.endpoint_references {
            let ep = r.strip_prefix("/endpoints/").ok_or_else(|| {
                fail(
                    ERROR_INVALID_PARAMETER,
                    format!("reference {r:?} is not /endpoints/<id>"),
                )
            })?;
            if !st.endpoints.contains_key(&canon_id(ep)?) {
                return Err(fail(HResult::ERROR_NOT_FOUND, format!("endpoint {ep}")));
            }
        }
        let id = super::new_id(if pl.id.is_empty() {
            crate::ZERO_GUID
        } else {
            &pl.id
        })?;
        pl.id = id.clone();
        let rec = Record {
            doc: pl.clone(),
            extra: (),
        };
        self.persist("policylists", &id, &rec)?;
        st.policy_lists.insert(id, rec);
        Ok(pl)
    }

    /// One `HNSCall`: the envelope.
    pub(super) fn v1_call(&self, method: &str, path: &str, body: &str) -> String {
        match self.v1_route(method, path, body) {
            Ok(v) => envelope_ok(v),
            Err(f) => envelope_err(&f),
        }
    }

    fn v1_route(&self, method: &str, path: &str, body: &str) -> Res<Option<RawJson>> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let json = |v: &dyn erased::Ser| v.to_value();
        let m = method.to_ascii_uppercase();
        let out: RawJson = match (m.as_str(), parts.as_slice()) {
            ("GET", ["globals", "version"]) => json(&ENGINE_VERSION)?,
            ("GET", ["networks"]) => {
                let list: Vec<HnsNetwork> = self
                    .lock()
                    .networks
                    .values()
                    .map(|n| network_to_v1(&n.doc))
                    .collect();
                json(&list)?
            }
            ("GET", ["networks", id]) => json(&self.v1_network(id)?)?,
            ("POST", ["networks"]) => {
                let n: HnsNetwork = decode("network", body)?;
                let doc = network_from_v1(&n)?;
                let id = self.create_network(
                    super::new_id(if n.id.is_empty() {
                        crate::ZERO_GUID
                    } else {
                        &n.id
                    })?,
                    &super::encode(&doc)?,
                )?;
                json(&self.v1_network(&id)?)?
            }
            ("DELETE", ["networks", id]) => {
                self.delete_network(&canon_id(id)?)?;
                return Ok(None);
            }
            ("GET", ["endpoints"]) => {
                let recs: Vec<_> = self.lock().endpoints.values().cloned().collect();
                let list: Vec<HnsEndpoint> = recs.iter().map(|e| self.endpoint_to_v1(e)).collect();
                json(&list)?
            }
            ("GET", ["endpoints", id]) => json(&self.v1_endpoint(id)?)?,
            ("POST", ["endpoints"]) => {
                let e: HnsEndpoint = decode("endpoint", body)?;
                let doc = self.endpoint_from_v1(&e)?;
                let id = self.create_endpoint(
                    super::new_id(if e.id.is_empty() {
                        crate::ZERO_GUID
                    } else {
                        &e.id
                    })?,
                    &super::encode(&doc)?,
                    None,
                )?;
                json(&self.v1_endpoint(&id)?)?
            }
            ("POST", ["endpoints", id]) => {
                // Update: the policies are what a v1 update changes.
                let e: HnsEndpoint = decode("endpoint", body)?;
                let req = ModifyEndpointSettingRequest {
                    resource_type: EndpointResourceType::Policy,
                    request_type: RequestType::Update,
                    settings: Some(raw(&PolicyEndpointRequest {
                        policies: policies_from_v1(&e.policies)?,
                    })?),
                };
                let id = canon_id(id)?;
                self.modify_endpoint(&id, &super::encode(&req)?)?;
                json(&self.v1_endpoint(&id)?)?
            }
            ("POST", ["endpoints", id, verb @ ("attach" | "detach")]) => {
                self.v1_attach(id, *verb == "attach", body)?;
                return Ok(None);
            }
            ("DELETE", ["endpoints", id]) => {
                self.delete_endpoint(&canon_id(id)?)?;
                return Ok(None);
            }
            ("GET", ["policylists"]) => {
                let list: Vec<PolicyList> = self
                    .lock()
                    .policy_lists
                    .values()
                    .map(|p| p.doc.clone())
                    .collect();
                json(&list)?
            }
            ("GET", ["policylists", id]) => {
                let id = canon_id(id)?;
                let pl = self.lock().policy_lists.get(&id).map(|p| p.doc.clone());
                json(
                    &pl.ok_or_else(|| fail(HResult::ERROR_NOT_FOUND, format!("policy list {id}")))?,
                )?
            }
            ("POST", ["policylists"]) => json(&self.v1_policy_list_create(body)?)?,
            ("DELETE", ["policylists", id]) => {
                let id = canon_id(id)?;
                let mut st = self.lock();
                if !st.policy_lists.contains_key(&id) {
                    return Err(fail(HResult::ERROR_NOT_FOUND, format!("policy list {id}")));
                }
                self.unpersist("policylists", &id)?;
                st.policy_lists.remove(&id);
                return Ok(None);
            }
            ("POST", ["namespaces"]) => {
                let r: NamespaceRequest = decode("namespace", body)?;
                let doc = HostComputeNamespace {
                    namespace_type: if r.is_default {
                        NamespaceType::HostDefault
                    } else {
                        NamespaceType::Host
                    },
                    schema_version: V2_SCHEMA_VERSION,
                    ..Default::default()
                };
                let id =
                    self.create_namespace(super::new_id(crate::ZERO_GUID)?, &super::encode(&doc)?)?;
                json(&self.v1_namespace(&id)?)?
            }
            ("GET", ["namespaces", id]) => json(&self.v1_namespace(id)?)?,
            ("DELETE", ["namespaces", id]) => {
                self.delete_namespace(&canon_id(id)?)?;
                return Ok(None);
            }
            ("POST", ["namespaces", id, verb @ ("addresource" | "removeresource")]) => {
                let r: NamespaceResourceRequest = decode("namespace resource", body)?;
                if r.resource_type != "Endpoint" {
                    return Err(fail(
                        ERROR_INVALID_PARAMETER,
                        format!("resource type {:?}", r.resource_type),
                    ));
                }
                let req = ModifyNamespaceSettingRequest {
                    resource_type: NamespaceResourceType::Endpoint,
                    request_type: if *verb == "addresource" {
                        RequestType::Add
                    } else {
                        RequestType::Remove
                    },
                    settings: Some(raw(&NamespaceEndpointRequest {
                        endpoint_id: r.data.id,
                        ..Default::default()
                    })?),
                };
                self.modify_namespace(&canon_id(id)?, &super::encode(&req)?)?;
                return Ok(None);
            }
            ("GET", ["accelnet"]) => {
                let macs = self.lock().meta.accelnet_macs.clone();
                json(&MacAddressList {
                    mac_address_list: macs
                        .into_iter()
                        .map(|m| MacAddressEntry { mac_address: m })
                        .collect(),
                })?
            }
            ("POST", ["accelnet"]) => {
                let l: MacAddressList = decode("accelnet", body)?;
                if l.mac_address_list.is_empty() {
                    return Err(fail(
                        ERROR_INVALID_PARAMETER,
                        "the MAC address list is empty",
                    ));
                }
                let mut st = self.lock();
                st.meta.accelnet_macs = l
                    .mac_address_list
                    .into_iter()
                    .map(|m| m.mac_address)
                    .collect();
                self.persist_meta(&st)?;
                return Ok(None);
            }
            ("DELETE", ["accelnet"]) => {
                let mut st = self.lock();
                st.meta.accelnet_macs.clear();
                self.persist_meta(&st)?;
                return Ok(None);
            }
            _ => {
                return Err(fail(
                    HCN_E_REQUEST_UNSUPPORTED,
                    format!("{method} {}", crate::schema::echo(path)),
                ))
            }
        };
        Ok(Some(out))
    }
}

/// Serializing through a trait object (the router's outputs differ in type).
mod erased {
    use super::{fail, Res, E_FAIL};

    pub trait Ser {
        fn to_value(&self) -> Res<crate::raw::RawJson>;
    }

    impl<T: serde::Serialize> Ser for T {
        fn to_value(&self) -> Res<crate::raw::RawJson> {
            crate::raw::RawJson::from_value(self).map_err(|e| fail(E_FAIL, format!("encode: {e}")))
        }
    }
}

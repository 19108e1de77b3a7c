//! What a configuration asks of HCN (spec §2.3, §2.4 steps 3, 4, 6, 10, 11, 13), computed
//! without calling anything: the network document to create, the endpoint document, the
//! policies, the DNS settings, and the CNI result read back from HCN objects.
//!
//! Where the reference misbehaves on bad input this port returns a configuration error
//! (code 7) instead: a malformed `AdditionalArgs` policy (the reference panics), an IPv6
//! `ipam.subnet` (panics; here it works), a port outside 1–65535 (the reference truncates
//! it to 16 bits). The default gateway of `ipam.subnet` is the subnet's first host (the
//! reference adds one to the last byte of the address as written, which is the same for the
//! usual `10.0.0.0/16` and wraps or lands outside the subnet otherwise).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hcn::schema::{
    protocol, AclPolicySetting, ActionType, DirectionType, Dns, EndpointPolicy, EndpointPolicyType,
    HostComputeEndpoint, HostComputeNetwork, IpConfig, Ipam, IpamType, NetworkPolicy,
    NetworkPolicyType, NetworkType, PortMappingPolicySetting, QosPolicySetting, Route, Subnet,
    NAT_FLAG_IPV6, NAT_FLAG_LOCAL_ROUTED_VIP, V2_SCHEMA_VERSION,
};
use hcn::RawJson;
use ipnet::IpNet;

use crate::ci::ci_struct;
use crate::config::{K8sArgs, KeyValue, NetworkConfig, PortMapping};
use crate::error::PluginError;
use crate::result::{format_mac, CniResult, Interface, IpConfig as ResultIp};

/// The priority of every ACL a port mapping adds (the reference's constant).
pub const PORT_MAPPING_ACL_PRIORITY: u16 = 1000;

/// The destination of the default route of an address's family.
pub fn default_destination(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "0.0.0.0/0",
        IpAddr::V6(_) => "::/0",
    }
}

/// The endpoint of container `container_id` on network `network`: `<cid>_<network>`.
pub fn endpoint_name(container_id: &str, network: &str) -> String {
    format!("{container_id}_{network}")
}

/// The policies of `AdditionalArgs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArgPolicies {
    /// `EndpointPolicy` entries, forwarded as is.
    pub endpoint: Vec<EndpointPolicy>,
    /// `NetworkPolicy` entries, used when the plugin creates the network.
    pub network: Vec<NetworkPolicy>,
}

ci_struct! {
    /// The value of an `AdditionalArgs` policy: an HCN v2 policy `{Type, Settings}`.
    pub struct PolicyValue {
        "Type" policy_type: String,
        "Settings" settings: Option<RawJson>,
    }
}

/// Collects the `AdditionalArgs` policies: entries whose name contains `Policy`; only
/// `EndpointPolicy` and `NetworkPolicy` are used (spec §2.3). `Settings` keeps its bytes.
pub fn additional_policies(args: &[KeyValue]) -> Result<ArgPolicies, PluginError> {
    let mut out = ArgPolicies::default();
    for (i, kv) in args.iter().enumerate() {
        if !kv.name.contains("Policy") {
            continue;
        }
        let is_endpoint = kv.name == "EndpointPolicy";
        if !is_endpoint && kv.name != "NetworkPolicy" {
            tracing::debug!(name = %kv.name, "ignoring an AdditionalArgs policy of unknown kind");
            continue;
        }
        let bad =
            |why: String| PluginError::Config(format!("AdditionalArgs[{i}] ({}): {why}", kv.name));
        let raw = kv.value.as_ref().ok_or_else(|| bad("no value".into()))?;
        let value: PolicyValue = raw.decode().map_err(|e| {
            bad(format!(
                "value is not an HCN v2 policy {{Type, Settings}}: {e}"
            ))
        })?;
        if value.policy_type.is_empty() {
            return Err(bad("the policy has no Type".into()));
        }
        if is_endpoint {
            out.endpoint.push(EndpointPolicy {
                policy_type: EndpointPolicyType::from(value.policy_type),
                settings: value.settings,
            });
        } else {
            out.network.push(NetworkPolicy {
                policy_type: NetworkPolicyType::from(value.policy_type),
                settings: value.settings,
            });
        }
    }
    Ok(out)
}

/// Parses a port-mapping protocol: `tcp`, `udp`, `icmpv4`, `icmpv6`, `igmp` in any case, or
/// a number up to 1023 (`0x`, `0o`, `0b` and leading-zero octal accepted, as Go's
/// `ParseUint(s, 0, 10)`).
pub fn parse_protocol(text: &str) -> Result<u32, PluginError> {
    let named = match text.to_ascii_lowercase().as_str() {
        "tcp" => Some(protocol::TCP),
        "udp" => Some(protocol::UDP),
        "icmpv4" => Some(protocol::ICMPV4),
        "icmpv6" => Some(protocol::ICMPV6),
        "igmp" => Some(protocol::IGMP),
        _ => None,
    };
    if let Some(p) = named {
        return Ok(p);
    }
    let lower = text.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    match u32::from_str_radix(digits, radix) {
        Ok(n) if n <= 1023 && !digits.starts_with(['+', '-']) => Ok(n),
        _ => Err(PluginError::Config(format!(
            "invalid protocol supplied to port mapping policy: {text:?}"
        ))),
    }
}

fn port(value: i64, what: &str) -> Result<u16, PluginError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            PluginError::Config(format!("port mapping {what} {value} is not in 1-65535"))
        })
}

fn policy<T: serde::Serialize>(
    t: EndpointPolicyType,
    settings: &T,
) -> Result<EndpointPolicy, PluginError> {
    EndpointPolicy::new(t, settings).map_err(|e| PluginError::Other(format!("encode policy: {e}")))
}

/// The endpoint policy of `runtimeConfig.bandwidth`: the pod's egress rate as an HCN `QOS`
/// cap (bytes per second). HNS shapes only what leaves the endpoint: an ingress rate and the
/// bursts cannot be honoured and are logged, not refused, so a pod is not kept from
/// starting by a limit the platform does not have. A negative value is code 7.
pub fn bandwidth_policies(cfg: &NetworkConfig) -> Result<Vec<EndpointPolicy>, PluginError> {
    let bw = &cfg.runtime_config.bandwidth;
    let fields = [
        ("ingressRate", bw.ingress_rate),
        ("ingressBurst", bw.ingress_burst),
        ("egressRate", bw.egress_rate),
        ("egressBurst", bw.egress_burst),
    ];
    if let Some((name, v)) = fields.iter().find(|(_, v)| *v < 0) {
        return Err(PluginError::Config(format!(
            "runtimeConfig.bandwidth.{name} {v} is negative"
        )));
    }
    if bw.ingress_rate > 0 || bw.ingress_burst > 0 || bw.egress_burst > 0 {
        tracing::warn!(
            ingress_rate = bw.ingress_rate,
            ingress_burst = bw.ingress_burst,
            egress_burst = bw.egress_burst,
            "HNS shapes only the egress rate: ingress limits and bursts are not applied"
        );
    }
    if bw.egress_rate == 0 {
        return Ok(Vec::new());
    }
    // Rounded up so that a rate below 8 bit/s still caps rather than meaning "no cap".
    let bytes = (bw.egress_rate as u64).div_ceil(8);
    Ok(vec![policy(
        EndpointPolicyType::Qos,
        &QosPolicySetting {
            maximum_outgoing_bandwidth_in_bytes: bytes,
        },
    )?])
}

/// The endpoint policies of `runtimeConfig.portMappings`: a `PortMapping` per mapping (a
/// second one with the IPv6 flag and no VIP in dual stack), and with `allowAclPortMapping`
/// an inbound Allow ACL per mapping.
pub fn port_mapping_policies(cfg: &NetworkConfig) -> Result<Vec<EndpointPolicy>, PluginError> {
    let flags = &cfg.optional_flags;
    let mut out = Vec::new();
    for pm in &cfg.runtime_config.port_mappings {
        let PortMapping {
            host_port,
            container_port,
            protocol: proto,
            host_ip,
        } = pm;
        let external = port(*host_port, "hostPort")?;
        let internal = port(*container_port, "containerPort")?;
        let proto = parse_protocol(proto)?;
        if !host_ip.is_empty() && host_ip.parse::<IpAddr>().is_err() {
            return Err(PluginError::Config(format!(
                "port mapping hostIP {host_ip:?} is not an IP address"
            )));
        }
        let nat_flags = if flags.local_routed_port_mapping {
            NAT_FLAG_LOCAL_ROUTED_VIP
        } else {
            0
        };
        out.push(policy(
            EndpointPolicyType::PortMapping,
            &PortMappingPolicySetting {
                protocol: proto,
                internal_port: internal,
                external_port: external,
                vip: host_ip.clone(),
                flags: nat_flags,
            },
        )?);
        if flags.enable_dual_stack {
            out.push(policy(
                EndpointPolicyType::PortMapping,
                &PortMappingPolicySetting {
                    protocol: proto,
                    internal_port: internal,
                    external_port: external,
                    vip: String::new(),
                    flags: nat_flags | NAT_FLAG_IPV6,
                },
            )?);
        }
        if flags.allow_acl_port_mapping {
            out.push(policy(
                EndpointPolicyType::Acl,
                &AclPolicySetting {
                    protocols: proto.to_string(),
                    action: ActionType::Allow,
                    direction: DirectionType::In,
                    local_ports: internal.to_string(),
                    priority: PORT_MAPPING_ACL_PRIORITY,
                    ..Default::default()
                },
            )?);
        }
    }
    Ok(out)
}

/// The endpoint DNS settings: the configuration's `dns`, the first search domain prefixed
/// with the pod namespace, each non-empty `runtimeConfig.dns` list replacing its own.
pub fn dns_settings(cfg: &NetworkConfig, args: &K8sArgs) -> Dns {
    let mut search = cfg.dns.search.clone();
    if !args.pod_namespace.is_empty() {
        if let Some(first) = search.first_mut() {
            *first = format!("{}.{}", args.pod_namespace, first);
        }
    }
    let mut servers = cfg.dns.nameservers.clone();
    let mut options = cfg.dns.options.clone();
    let rt = &cfg.runtime_config.dns;
    if !rt.servers.is_empty() {
        servers = rt.servers.clone();
    }
    if !rt.searches.is_empty() {
        search = rt.searches.clone();
    }
    if !rt.options.is_empty() {
        options = rt.options.clone();
    }
    Dns {
        domain: cfg.dns.domain.clone(),
        search,
        server_list: servers,
        options,
    }
}

/// The next address after `ip` (`None` at the end of the space).
fn next_ip(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a)
            .checked_add(1)
            .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        IpAddr::V6(a) => u128::from(a)
            .checked_add(1)
            .map(|n| IpAddr::V6(Ipv6Addr::from(n))),
    }
}

/// The network side of a configuration (the reference's `GetNetworkInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPlan {
    /// The HCN network name (the configuration's `name`).
    pub name: String,
    /// The HCN network type.
    pub network_type: NetworkType,
    /// `ipam.subnet`, masked.
    pub subnet: Option<IpNet>,
    /// The default gateway: the subnet's first host, or `ipam.routes[0].gw`.
    pub gateway: Option<IpAddr>,
    /// The DNS settings.
    pub dns: Dns,
    /// The `AdditionalArgs` policies.
    pub policies: ArgPolicies,
}

impl NetworkPlan {
    /// Computes the plan of `cfg` for a pod with `args`.
    pub fn new(cfg: &NetworkConfig, args: &K8sArgs) -> Result<Self, PluginError> {
        let network_type = cfg.network_type()?;
        let mut subnet = None;
        let mut gateway = None;
        if !cfg.ipam.subnet.is_empty() {
            let net: IpNet = cfg.ipam.subnet.parse().map_err(|e| {
                PluginError::Config(format!("ipam.subnet {:?}: {e}", cfg.ipam.subnet))
            })?;
            let net = net.trunc();
            gateway = next_ip(net.network());
            subnet = Some(net);
        }
        if let Some(first) = cfg.ipam.routes.first() {
            if !first.gw.is_empty() {
                gateway = Some(first.gw.parse().map_err(|e| {
                    PluginError::Config(format!("ipam.routes[0].gw {:?}: {e}", first.gw))
                })?);
            }
        }
        Ok(Self {
            name: cfg.name.clone(),
            network_type,
            subnet,
            gateway,
            dns: dns_settings(cfg, args),
            policies: additional_policies(&cfg.additional_args)?,
        })
    }

    /// The document of the network the plugin creates when none has the name: a static
    /// IPAM with the subnet and its default route (omitted without a subnet).
    pub fn network_document(&self) -> HostComputeNetwork {
        let ipams = match (self.subnet, self.gateway) {
            (Some(net), gw) => vec![Ipam {
                ipam_type: IpamType::Static,
                subnets: vec![Subnet {
                    ip_address_prefix: net.to_string(),
                    routes: gw
                        .map(|gw| Route {
                            next_hop: gw.to_string(),
                            destination_prefix: default_destination(&gw).into(),
                            ..Default::default()
                        })
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }],
            }],
            (None, _) => Vec::new(),
        };
        HostComputeNetwork {
            name: self.name.clone(),
            network_type: self.network_type.clone(),
            ipams,
            dns: self.dns.clone(),
            policies: self.policies.network.clone(),
            schema_version: V2_SCHEMA_VERSION,
            ..Default::default()
        }
    }
}

/// The addresses an endpoint is created with (IPAM's, or none when HNS allocates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointAddresses {
    /// IPv4 address.
    pub ip4: Option<Ipv4Addr>,
    /// IPv4 gateway.
    pub gw4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ip6: Option<Ipv6Addr>,
    /// IPv6 gateway.
    pub gw6: Option<Ipv6Addr>,
}

/// The endpoint document (spec §2.4 step 11): no MAC and no namespace; addresses and
/// default routes only for what is known.
pub fn endpoint_document(
    name: &str,
    network_id: &str,
    policies: Vec<EndpointPolicy>,
    addrs: &EndpointAddresses,
    dns: &Dns,
) -> HostComputeEndpoint {
    let mut ip_configurations = Vec::new();
    if let Some(ip) = addrs.ip4 {
        ip_configurations.push(IpConfig {
            ip_address: ip.to_string(),
            ..Default::default()
        });
    }
    if let Some(ip) = addrs.ip6 {
        ip_configurations.push(IpConfig {
            ip_address: ip.to_string(),
            ..Default::default()
        });
    }
    let mut routes = Vec::new();
    if let Some(gw) = addrs.gw4 {
        routes.push(Route {
            next_hop: gw.to_string(),
            destination_prefix: "0.0.0.0/0".into(),
            ..Default::default()
        });
    }
    if let Some(gw) = addrs.gw6 {
        routes.push(Route {
            next_hop: gw.to_string(),
            destination_prefix: "::/0".into(),
            ..Default::default()
        });
    }
    HostComputeEndpoint {
        name: name.to_string(),
        host_compute_network: network_id.to_string(),
        policies,
        ip_configurations,
        dns: dns.clone(),
        routes,
        schema_version: V2_SCHEMA_VERSION,
        ..Default::default()
    }
}

/// What the runtime asked of the endpoint through the `ips` and `mac` capabilities (CNI
/// CONVENTIONS), checked before anything is created. The reference ignores both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeRequests {
    /// The first IPv4 address of `runtimeConfig.ips`.
    pub ip4: Option<Ipv4Addr>,
    /// The first IPv6 address of `runtimeConfig.ips`.
    pub ip6: Option<Ipv6Addr>,
    /// `runtimeConfig.mac` in HNS's form `AA-BB-CC-DD-EE-FF`.
    pub mac: Option<String>,
}

/// Reads `runtimeConfig.ips` (`a.b.c.d/n` or a bare address; one per family is used) and
/// `runtimeConfig.mac` (`aa:bb:cc:dd:ee:ff` or `AA-BB-...`), each falling back to the same
/// key of `args.cni` (CONVENTIONS: the capability wins); a malformed value is a
/// configuration error (7).
pub fn runtime_requests(cfg: &NetworkConfig) -> Result<RuntimeRequests, PluginError> {
    let (rc, args) = (&cfg.runtime_config, &cfg.args.cni);
    let ips = if rc.ips.is_empty() {
        &args.ips
    } else {
        &rc.ips
    };
    let mac = if rc.mac.is_empty() {
        &args.mac
    } else {
        &rc.mac
    };
    let mut out = RuntimeRequests::default();
    for text in ips {
        let ip = text
            .parse::<IpNet>()
            .map(|n| n.addr())
            .or_else(|_| text.parse::<IpAddr>())
            .map_err(|e| PluginError::Config(format!("runtimeConfig.ips {text:?}: {e}")))?;
        match ip {
            IpAddr::V4(a) => {
                out.ip4.get_or_insert(a);
            }
            IpAddr::V6(a) => {
                out.ip6.get_or_insert(a);
            }
        }
    }
    if !mac.is_empty() {
        let mac = format_mac(mac).ok_or_else(|| {
            PluginError::Config(format!("runtimeConfig.mac {mac:?} is not a MAC address"))
        })?;
        out.mac = Some(mac.replace(':', "-").to_ascii_uppercase());
    }
    Ok(out)
}

/// The subnets of a network, parsed (unparsable prefixes are skipped: HNS validated them).
fn network_subnets(network: &HostComputeNetwork) -> impl Iterator<Item = (IpNet, &Subnet)> {
    network
        .ipams
        .iter()
        .flat_map(|i| i.subnets.iter())
        .filter_map(|s| s.ip_address_prefix.parse::<IpNet>().ok().map(|n| (n, s)))
}

/// The default gateway of `ip`: the endpoint's default route of that family, else the
/// default route of the network subnet holding `ip`.
fn gateway_of(
    ip: IpAddr,
    ep: &HostComputeEndpoint,
    network: &HostComputeNetwork,
) -> Option<IpAddr> {
    let dest = default_destination(&ip);
    let from = |routes: &[Route]| {
        routes
            .iter()
            .filter(|r| r.destination_prefix == dest)
            .find_map(|r| r.next_hop.parse::<IpAddr>().ok())
    };
    from(&ep.routes).or_else(|| {
        network_subnets(network)
            .find(|(n, _)| n.contains(&ip))
            .and_then(|(_, s)| from(&s.routes))
    })
}

/// The CNI result of an endpoint (spec §2.4 step 13): each address with the prefix length
/// of the network subnet holding it (else the endpoint's own, else a host prefix), its
/// family's default gateway, and one interface `ifname` with the endpoint's MAC.
pub fn result_of(
    ep: &HostComputeEndpoint,
    network: &HostComputeNetwork,
    ifname: &str,
) -> Result<CniResult, PluginError> {
    let mut ips = Vec::new();
    for c in &ep.ip_configurations {
        let ip: IpAddr = c.ip_address.parse().map_err(|e| {
            PluginError::Other(format!(
                "endpoint {} has an invalid IpAddress {:?}: {e}",
                ep.id, c.ip_address
            ))
        })?;
        let prefix = network_subnets(network)
            .find(|(n, _)| n.contains(&ip))
            .map(|(n, _)| n.prefix_len())
            .or((c.prefix_length != 0).then_some(c.prefix_length))
            .unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        let address = IpNet::new(ip, prefix).map_err(|e| {
            PluginError::Other(format!("endpoint {} address {ip}/{prefix}: {e}", ep.id))
        })?;
        ips.push(ResultIp {
            interface: Some(0),
            address,
            gateway: gateway_of(ip, ep, network),
        });
    }
    if ips.is_empty() {
        return Err(PluginError::Other(format!(
            "endpoint {} ({}) has no IP address",
            ep.id, ep.name
        )));
    }
    // IPv4 first, as the reference reports it.
    ips.sort_by_key(|ip| !ip.address.addr().is_ipv4());
    let mac = if ep.mac_address.is_empty() {
        String::new()
    } else {
        format_mac(&ep.mac_address).ok_or_else(|| {
            PluginError::Other(format!(
                "endpoint {} has an invalid MacAddress {:?}",
                ep.id, ep.mac_address
            ))
        })?
    };
    Ok(CniResult {
        interfaces: vec![Interface {
            name: ifname.to_string(),
            mac,
            ..Default::default()
        }],
        ips,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

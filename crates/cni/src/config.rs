//! The network configuration (spec §2.3) as the reference's `NetworkConfig` reads it, with
//! Go's case-insensitive keys (see [`crate::ci`]), and the `CNI_ARGS` of Kubernetes.
//!
//! Unknown keys are ignored (`capabilities`, `prevResult`, `master`, ...); the values the
//! plugin uses are validated where they are used ([`crate::plan`]), so DEL of a pod whose
//! configuration carries a malformed policy still works.

use hcn::schema::NetworkType;
use hcn::RawJson;

use crate::ci::ci_struct;
use crate::error::PluginError;

ci_struct! {
    /// `ipam`.
    pub struct IpamConfig {
        "type" ipam_type: String,
        "environment" environment: String,
        "addressSpace" address_space: String,
        "subnet" subnet: String,
        "ipAddress" ip_address: String,
        "queryInterval" query_interval: String,
        "routes" routes: Vec<RouteConfig>,
    }
}

ci_struct! {
    /// A route: `{dst, gw}`.
    pub struct RouteConfig {
        "dst" dst: String,
        "gw" gw: String,
    }
}

ci_struct! {
    /// `dns`: the configuration's DNS settings.
    pub struct DnsConfig {
        "nameservers" nameservers: Vec<String>,
        "domain" domain: String,
        "search" search: Vec<String>,
        "options" options: Vec<String>,
    }
}

ci_struct! {
    /// `optionalFlags`.
    pub struct OptionalFlags {
        "localRoutedPortMapping" local_routed_port_mapping: bool,
        "allowAclPortMapping" allow_acl_port_mapping: bool,
        "forceBridgeGateway" force_bridge_gateway: bool,
        "enableDualStack" enable_dual_stack: bool,
        "loopbackDSR" loopback_dsr: bool,
        "gatewayFromAdditionalRoutes" gateway_from_additional_routes: bool,
    }
}

ci_struct! {
    /// One `runtimeConfig.portMappings` entry.
    pub struct PortMapping {
        "hostPort" host_port: i64,
        "containerPort" container_port: i64,
        "protocol" protocol: String,
        "hostIP" host_ip: String,
    }
}

ci_struct! {
    /// `runtimeConfig.dns`: each non-empty list replaces the configuration's.
    pub struct RuntimeDns {
        "servers" servers: Vec<String>,
        "searches" searches: Vec<String>,
        "options" options: Vec<String>,
    }
}

ci_struct! {
    /// `runtimeConfig.bandwidth` (CNI CONVENTIONS): rates in bits per second, bursts in
    /// bits.
    pub struct Bandwidth {
        "ingressRate" ingress_rate: i64,
        "ingressBurst" ingress_burst: i64,
        "egressRate" egress_rate: i64,
        "egressBurst" egress_burst: i64,
    }
}

ci_struct! {
    /// `runtimeConfig`: what the runtime injects for the declared capabilities
    /// (CNI CONVENTIONS: `portMappings`, `dns`, `ips`, `mac`, `bandwidth`).
    pub struct RuntimeConfig {
        "portMappings" port_mappings: Vec<PortMapping>,
        "dns" dns: RuntimeDns,
        "ips" ips: Vec<String>,
        "mac" mac: String,
        "bandwidth" bandwidth: Bandwidth,
    }
}

ci_struct! {
    /// `args.cni`: the CONVENTIONS' per-attachment requests in the configuration itself.
    pub struct ArgsCni {
        "ips" ips: Vec<String>,
        "mac" mac: String,
    }
}

ci_struct! {
    /// `args`: runtime-provided arguments; only `cni` is read, the rest is ignored as the
    /// specification asks of keys a plugin does not understand.
    pub struct Args {
        "cni" cni: ArgsCni,
    }
}

ci_struct! {
    /// One `AdditionalArgs` entry: `{name, value}`.
    pub struct KeyValue {
        "name" name: String,
        "value" value: Option<RawJson>,
    }
}

ci_struct! {
    /// One `cni.dev/valid-attachments` entry of a GC request.
    pub struct Attachment {
        "containerID" container_id: String,
        "ifname" ifname: String,
    }
}

ci_struct! {
    /// One address of a `prevResult` (1.x and 0.3/0.4 layouts).
    pub struct PrevIp {
        "address" address: String,
        "interface" interface: Option<usize>,
    }
}

ci_struct! {
    /// One interface of a `prevResult`.
    pub struct PrevInterface {
        "name" name: String,
        "mac" mac: String,
        "sandbox" sandbox: String,
    }
}

ci_struct! {
    /// The `prevResult` a CHECK carries: the interfaces and addresses of the whole chain.
    pub struct PrevResult {
        "interfaces" interfaces: Vec<PrevInterface>,
        "ips" ips: Vec<PrevIp>,
    }
}

ci_struct! {
    /// The network configuration.
    pub struct NetworkConfig {
        "cniVersion" cni_version: String,
        "name" name: String,
        "type" plugin_type: String,
        "ipam" ipam: IpamConfig,
        "dns" dns: DnsConfig,
        "runtimeConfig" runtime_config: RuntimeConfig,
        "AdditionalArgs" additional_args: Vec<KeyValue>,
        "optionalFlags" optional_flags: OptionalFlags,
        "additionalRoutes" additional_routes: Vec<RouteConfig>,
        "prevResult" prev_result: Option<PrevResult>,
        "cni.dev/valid-attachments" valid_attachments: Vec<Attachment>,
        "cni.dev/attachments" attachments: Vec<Attachment>,
        "args" args: Args,
    }
}

/// The attachments a GC request says are still valid: `cni.dev/valid-attachments`, and
/// `cni.dev/attachments`, the name an earlier text of the specification used (libcni sends
/// both, containernetworking/cni#1101). `None` when the request has neither key, which
/// says nothing about what is valid (as opposed to an empty list or `null`: nothing is).
pub fn gc_attachments(stdin: &[u8]) -> Result<Option<Vec<Attachment>>, PluginError> {
    let members: crate::ci::Members =
        serde_json::from_slice(stdin).map_err(|e| PluginError::Decode(e.to_string()))?;
    let mut found = None;
    for (key, raw) in &members.0 {
        let named = ["cni.dev/valid-attachments", "cni.dev/attachments"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key));
        if !named {
            continue;
        }
        let list: Option<Vec<Attachment>> = serde_json::from_str(raw.get())
            .map_err(|e| PluginError::Decode(format!("{key}: {e}")))?;
        found
            .get_or_insert_with(Vec::new)
            .extend(list.unwrap_or_default());
    }
    Ok(found)
}

impl NetworkConfig {
    /// Decodes the configuration from stdin bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PluginError> {
        serde_json::from_slice(bytes).map_err(|e| PluginError::Decode(e.to_string()))
    }

    /// The HCN network type of `type` (spec §2.3; case-sensitive, as the reference).
    pub fn network_type(&self) -> Result<NetworkType, PluginError> {
        network_type(&self.plugin_type)
    }
}

/// Maps a configuration `type` to its HCN network type: `nat`/`NAT` → NAT,
/// `sdnbridge`/`L2Bridge` → L2Bridge, `sdnoverlay`/`Overlay` → Overlay.
pub fn network_type(plugin_type: &str) -> Result<NetworkType, PluginError> {
    let t = match plugin_type {
        "nat" | "NAT" => NetworkType::Nat,
        "sdnbridge" | "L2Bridge" => NetworkType::L2Bridge,
        "sdnoverlay" | "Overlay" => NetworkType::Overlay,
        other => {
            return Err(PluginError::Config(format!(
                "Unsupported CNI config 'type' {other:?} (expected nat, sdnbridge, sdnoverlay, \
                 NAT, L2Bridge or Overlay)"
            )))
        }
    };
    if plugin_type != t.as_str() {
        tracing::debug!(from = plugin_type, to = %t, "mapped the CNI type to the HCN network type");
    }
    Ok(t)
}

/// The Kubernetes `CNI_ARGS` the plugin reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sArgs {
    /// `K8S_POD_NAMESPACE`.
    pub pod_namespace: String,
    /// `K8S_POD_NAME`.
    pub pod_name: String,
    /// `K8S_POD_INFRA_CONTAINER_ID`.
    pub pod_infra_container_id: String,
}

/// Parses `CNI_ARGS` (`K=V;K=V`) as the reference does (containernetworking's
/// `types.LoadArgs` into its Kubernetes arguments struct), all or nothing: a pair that is
/// not `K=V`, an `IgnoreUnknown` that is not a boolean (`1`/`true`/`0`/`false`, any case),
/// or a key other than the three Kubernetes ones without `IgnoreUnknown` true fails the
/// whole list, and the reference then ignores it (every value empty). Not an error of the
/// command: the problem is returned for the log. A later duplicate key wins.
pub fn parse_cni_args(text: &str) -> (K8sArgs, Option<String>) {
    match load_cni_args(text) {
        Ok(args) => (args, None),
        Err(problem) => (K8sArgs::default(), Some(problem)),
    }
}

fn load_cni_args(text: &str) -> Result<K8sArgs, String> {
    let mut args = K8sArgs::default();
    if text.is_empty() {
        return Ok(args);
    }
    let mut ignore_unknown = false;
    let mut unknown = Vec::new();
    for pair in text.split(';') {
        let mut kv = pair.split('=');
        let (Some(k), Some(v), None) = (kv.next(), kv.next(), kv.next()) else {
            return Err(format!("ARGS: invalid pair {pair:?}"));
        };
        match k {
            "K8S_POD_NAMESPACE" => args.pod_namespace = v.to_string(),
            "K8S_POD_NAME" => args.pod_name = v.to_string(),
            "K8S_POD_INFRA_CONTAINER_ID" => args.pod_infra_container_id = v.to_string(),
            "IgnoreUnknown" => {
                ignore_unknown = match v.to_ascii_lowercase().as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => {
                        return Err(format!(
                            "ARGS: error parsing value of pair {pair:?}: boolean unmarshal \
                             error: invalid input {v}"
                        ))
                    }
                }
            }
            _ => unknown.push(pair),
        }
    }
    if !unknown.is_empty() && !ignore_unknown {
        return Err(format!("ARGS: unknown args {unknown:?}"));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration in the Windows examples' style: mixed-case keys everywhere.
    const EXAMPLE: &str = r#"{
        "cniVersion": "0.2.0",
        "Name": "nat",
        "Type": "nat",
        "capabilities": {"portMappings": true, "dns": true},
        "ipam": {"environment": "mas", "Subnet": "10.0.0.0/16",
                 "Routes": [{"Dst": "0.0.0.0/0", "GW": "10.0.0.1"}]},
        "dns": {"Nameservers": ["10.50.10.50", "8.8.8.8"], "Search": ["svc.cluster.local"]},
        "optionalFlags": {"LocalRoutedPortMapping": true, "allowAclPortMapping": true},
        "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80,
                          "protocol": "tcp", "hostIP": "192.168.1.2"}],
                          "dns": {"servers": ["1.1.1.1"], "searches": [], "options": ["ndots:5"]}},
        "AdditionalArgs": [
            {"Name": "EndpointPolicy", "Value": {"Type": "OutBoundNAT",
             "Settings": {"Exceptions": ["10.0.0.0/16"]}}},
            {"name": "Ignored", "value": 1}
        ]
    }"#;

    #[test]
    fn example_with_mixed_case_keys_decodes_fully() {
        let c = NetworkConfig::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(c.cni_version, "0.2.0");
        assert_eq!(c.name, "nat");
        assert_eq!(c.network_type().unwrap(), NetworkType::Nat);
        assert_eq!(c.ipam.subnet, "10.0.0.0/16");
        assert_eq!(c.ipam.environment, "mas");
        assert_eq!(c.ipam.routes[0].gw, "10.0.0.1");
        assert_eq!(c.dns.nameservers, ["10.50.10.50", "8.8.8.8"]);
        assert_eq!(c.dns.search, ["svc.cluster.local"]);
        assert!(c.optional_flags.local_routed_port_mapping);
        assert!(c.optional_flags.allow_acl_port_mapping);
        assert!(!c.optional_flags.loopback_dsr);
        let pm = &c.runtime_config.port_mappings[0];
        assert_eq!(
            (
                pm.host_port,
                pm.container_port,
                pm.protocol.as_str(),
                pm.host_ip.as_str()
            ),
            (8080, 80, "tcp", "192.168.1.2")
        );
        assert_eq!(c.runtime_config.dns.servers, ["1.1.1.1"]);
        assert_eq!(c.additional_args.len(), 2);
        assert_eq!(c.additional_args[0].name, "EndpointPolicy");
        assert_eq!(
            c.additional_args[0].value.as_ref().unwrap().get(),
            r#"{"Type": "OutBoundNAT",
             "Settings": {"Exceptions": ["10.0.0.0/16"]}}"#
        );
    }

    #[test]
    fn type_mapping_is_case_sensitive() {
        assert_eq!(network_type("nat").unwrap(), NetworkType::Nat);
        assert_eq!(network_type("NAT").unwrap(), NetworkType::Nat);
        assert_eq!(network_type("sdnbridge").unwrap(), NetworkType::L2Bridge);
        assert_eq!(network_type("L2Bridge").unwrap(), NetworkType::L2Bridge);
        assert_eq!(network_type("sdnoverlay").unwrap(), NetworkType::Overlay);
        assert_eq!(network_type("Overlay").unwrap(), NetworkType::Overlay);
        for bad in ["l2bridge", "l2tunnel", "Nat", "bridge", ""] {
            let e = network_type(bad).unwrap_err();
            assert!(
                e.to_string().contains("Unsupported CNI config 'type'"),
                "{e}"
            );
            assert_eq!(e.code(), 7);
        }
    }

    #[test]
    fn wrong_value_types_are_decoding_errors() {
        for bad in [
            r#"{"name": "n", "ipam": "x"}"#,
            r#"{"name": "n", "runtimeConfig": {"portMappings": [{"hostPort": "80"}]}}"#,
            r#"{"name": "n", "AdditionalArgs": {"name": "x"}}"#,
            "[]",
            "not json",
        ] {
            let e = NetworkConfig::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(e.code(), 6, "{bad}: {e}");
        }
    }

    #[test]
    fn gc_attachments_and_prev_result_decode() {
        let c = NetworkConfig::parse(
            br#"{"name":"n","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],
                "prevResult":{"ips":[{"address":"10.0.0.2/24"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.valid_attachments[0].container_id, "a");
        let a = |text: &str| gc_attachments(text.as_bytes()).unwrap();
        let ids = |l: Option<Vec<Attachment>>| {
            l.map(|l| l.into_iter().map(|a| a.container_id).collect::<Vec<_>>())
        };
        assert_eq!(ids(a(r#"{"name":"n"}"#)), None);
        assert_eq!(
            ids(a(r#"{"cni.dev/valid-attachments":null}"#)),
            Some(vec![])
        );
        assert_eq!(ids(a(r#"{"cni.dev/valid-attachments":[]}"#)), Some(vec![]));
        assert_eq!(
            ids(a(
                r#"{"cni.dev/attachments":[{"containerID":"b","ifname":"eth0"}]}"#
            )),
            Some(vec!["b".to_string()])
        );
        assert_eq!(
            ids(a(
                r#"{"cni.dev/valid-attachments":[{"containerID":"a"}],"cni.dev/attachments":[{"containerID":"a"}]}"#
            )),
            Some(vec!["a".to_string(), "a".to_string()])
        );
        assert_eq!(
            gc_attachments(br#"{"cni.dev/valid-attachments":{"x":1}}"#)
                .unwrap_err()
                .code(),
            6
        );
        assert_eq!(c.prev_result.unwrap().ips[0].address, "10.0.0.2/24");
    }

    #[test]
    fn cni_args_are_read_as_go_load_args_reads_them() {
        let (a, w) = parse_cni_args(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u",
        );
        assert_eq!(w, None);
        assert_eq!(a.pod_namespace, "default");
        assert_eq!(a.pod_name, "web");
        assert_eq!(a.pod_infra_container_id, "abc");
        // IgnoreUnknown may come last, and any boolean spelling counts.
        let (a, w) = parse_cni_args("K8S_POD_UID=u;K8S_POD_NAMESPACE=ns;IgnoreUnknown=TRUE");
        assert_eq!((a.pod_namespace.as_str(), w), ("ns", None));
        // Without it an unknown key fails the whole list: nothing is used.
        let (a, w) = parse_cni_args("K8S_POD_NAMESPACE=ns;K8S_POD_UID=u");
        assert_eq!(a, K8sArgs::default());
        assert!(w.unwrap().contains("unknown args"));
        let (a, w) = parse_cni_args("IgnoreUnknown=0;K8S_POD_NAMESPACE=ns;FOO=1");
        assert_eq!(a, K8sArgs::default());
        assert!(w.is_some());
        let (a, w) = parse_cni_args("IgnoreUnknown=yes;K8S_POD_NAMESPACE=ns");
        assert_eq!(a, K8sArgs::default());
        assert!(w.unwrap().contains("boolean"));
        // The reference's tests pass JSON text: the parse fails and the namespace stays empty.
        let (a, w) = parse_cni_args(r#"{"K8S_POD_NAMESPACE":"x"}"#);
        assert_eq!(a, K8sArgs::default());
        assert!(w.unwrap().contains("invalid pair"));
        // A malformed pair anywhere (even after good ones, or an empty trailing pair).
        for bad in [
            "K8S_POD_NAMESPACE=ns;broken",
            "K8S_POD_NAMESPACE=ns;",
            "a=b=c",
        ] {
            let (a, w) = parse_cni_args(bad);
            assert_eq!(a, K8sArgs::default(), "{bad}");
            assert!(w.unwrap().contains("invalid pair"), "{bad}");
        }
        // A later duplicate wins; an empty value is a value.
        let (a, _) = parse_cni_args("K8S_POD_NAMESPACE=a;K8S_POD_NAMESPACE=b;K8S_POD_NAME=");
        assert_eq!((a.pod_namespace.as_str(), a.pod_name.as_str()), ("b", ""));
        assert_eq!(parse_cni_args(""), (K8sArgs::default(), None));
    }
}

//! The plugin: ADD, DEL, CHECK, GC and STATUS over HCN (spec §2.4, §2.5, §2.7).
//!
//! One core for the three plugins: behaviour follows the configuration's `type`, never
//! the executable's name. Where the reference leaves debris or hides a failure this port
//! cleans up or reports instead (spec §2.9):
//!
//! * the network is created only when the lookup says it does not exist (the reference
//!   creates it on any lookup error), and only from an `ipam.subnet`; without one a missing
//!   network is error 81;
//! * a failed attach deletes the endpoint it just created (and, as the reference does,
//!   releases the IPAM addresses);
//! * an endpoint of the same name on another network (left by a network that was deleted
//!   and recreated) is removed before the new one is created;
//! * an ADD repeated for an endpoint that exists but is not attached to `CNI_NETNS` attaches
//!   it (the reference returns a result for an endpoint no namespace holds);
//! * with `loopbackDSR` and no IPAM the `OutBoundNAT` destination is the address HNS
//!   allocated, applied after creation (the reference sends the text `<nil>`);
//! * CHECK verifies the endpoint, its network, its namespace and the `prevResult`
//!   addresses (the reference's CHECK does nothing); GC removes this network's endpoints
//!   of containers not in `cni.dev/valid-attachments` (and forwards GC to the IPAM
//!   delegate); STATUS reports whether HNS and the IPAM delegate answer and the network
//!   exists or can be created.

use std::net::{IpAddr, Ipv4Addr};

use hcn::error::{check_error_with_code, is_not_found_error};
use hcn::hresult::HCN_E_ENDPOINT_NOT_ATTACHED;
use hcn::schema::{
    EndpointPolicy, EndpointPolicyType, HostComputeEndpoint, HostComputeNetwork, NetworkType,
    OutboundNatPolicySetting, RequestType,
};
use hcn::Hcn;

use crate::config::{gc_attachments, parse_cni_args, NetworkConfig, PrevResult};
use crate::error::{PluginError, ERR_PLUGIN_LIMITED, ERR_PLUGIN_NOT_AVAILABLE};
use crate::ipam::{ExecIpam, Ipam, IpamResult};
use crate::netns::{self, NetnsRef};
use crate::plan::{
    bandwidth_policies, endpoint_document, endpoint_name, port_mapping_policies, result_of,
    runtime_requests, EndpointAddresses, NetworkPlan, RuntimeRequests,
};
use crate::result::{format_mac, CniResult};
use crate::skel::{CmdArgs, Handler};

/// Whether two GUIDs are the same (HNS answers in either case).
fn same_id(a: &str, b: &str) -> bool {
    !a.is_empty() && a.eq_ignore_ascii_case(b)
}

/// The ADD result of endpoint `ep`: its interface is `CNI_IFNAME` in sandbox `CNI_NETNS`.
fn report(
    ep: &HostComputeEndpoint,
    network: &HostComputeNetwork,
    args: &CmdArgs,
) -> Result<CniResult, PluginError> {
    let mut r = result_of(ep, network, &args.ifname)?;
    for i in &mut r.interfaces {
        i.sandbox = args.netns.clone();
    }
    Ok(r)
}

/// CHECK of the part of a chain's `prevResult` that is this plugin's: the interface named
/// `CNI_IFNAME` (in `CNI_NETNS` when the result names a sandbox) must be there with the
/// endpoint's MAC, and the addresses on it must be the endpoint's. Interfaces and addresses
/// other plugins of the chain reported are theirs to check.
fn check_prev_result(
    prev: &PrevResult,
    ep: &HostComputeEndpoint,
    args: &CmdArgs,
) -> Result<(), PluginError> {
    let ours: Vec<usize> = prev
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| i.name == args.ifname && (i.sandbox.is_empty() || i.sandbox == args.netns))
        .map(|(n, _)| n)
        .collect();
    if !prev.interfaces.is_empty() && ours.is_empty() {
        return Err(PluginError::Other(format!(
            "prevResult has no interface {} in {}",
            args.ifname, args.netns
        )));
    }
    let mac = format_mac(&ep.mac_address);
    for &n in &ours {
        let want = &prev.interfaces[n].mac;
        if !want.is_empty() && mac.as_deref() != Some(want.to_ascii_lowercase().as_str()) {
            return Err(PluginError::Other(format!(
                "prevResult MAC {want} of {} is not the endpoint's ({})",
                args.ifname, ep.mac_address
            )));
        }
    }
    for ip in &prev.ips {
        // An address without an interface index predates interfaces in results: ours.
        if ip.interface.is_some_and(|n| !ours.contains(&n)) {
            continue;
        }
        let addr = ip.address.split('/').next().unwrap_or_default();
        if !ep.ip_configurations.iter().any(|c| c.ip_address == addr) {
            return Err(PluginError::Other(format!(
                "prevResult address {} is not an address of endpoint {}",
                ip.address, ep.name
            )));
        }
    }
    Ok(())
}

/// Everything ADD decided before creating anything.
struct AddPlan<'a> {
    args: &'a CmdArgs,
    cfg: NetworkConfig,
    plan: NetworkPlan,
    /// Port mappings and ACLs, then the `AdditionalArgs` endpoint policies.
    policies: Vec<EndpointPolicy>,
    netns: NetnsRef,
    network: HostComputeNetwork,
    name: String,
    /// `runtimeConfig.ips` / `mac`.
    requests: RuntimeRequests,
}

/// The plugin over an HCN client and an IPAM delegate.
#[derive(Debug, Clone)]
pub struct Plugin<I = ExecIpam> {
    hcn: Hcn,
    ipam: I,
}

impl Plugin<ExecIpam> {
    /// The plugin of this host: HNS on Windows, hnsd elsewhere; IPAM by exec.
    pub fn system() -> Result<Self, PluginError> {
        let hcn = Hcn::system().map_err(|e| PluginError::hcn("reach HNS", e))?;
        Ok(Self::new(hcn, ExecIpam))
    }
}

impl<I: Ipam> Plugin<I> {
    /// A plugin over `hcn` with IPAM `ipam`.
    pub fn new(hcn: Hcn, ipam: I) -> Self {
        Self { hcn, ipam }
    }

    /// The HCN client.
    pub fn hcn(&self) -> &Hcn {
        &self.hcn
    }

    /// The network of an ADD (spec §2.4 step 6).
    fn network_for_add(
        &self,
        plan: &NetworkPlan,
        dual_stack: bool,
    ) -> Result<HostComputeNetwork, PluginError> {
        let found = match self.hcn.get_network_by_name(&plan.name) {
            Ok(n) => Some(n),
            Err(e) if is_not_found_error(&e) => None,
            Err(e) => {
                return Err(PluginError::hcn(
                    format!("look up network {:?}", plan.name),
                    e,
                ))
            }
        };
        if dual_stack {
            let n = found.ok_or_else(|| PluginError::NetworkNotFound {
                name: plan.name.clone(),
                reason: "a dual-stack network must exist before ADD".into(),
            })?;
            if n.network_type != NetworkType::L2Bridge {
                return Err(PluginError::Config(format!(
                    "Dual stack specified with non l2bridge network ({:?} is {})",
                    plan.name, n.network_type
                )));
            }
            return Ok(n);
        }
        if let Some(n) = found {
            if n.network_type != plan.network_type {
                tracing::warn!(
                    network = %plan.name,
                    configured = %plan.network_type,
                    actual = %n.network_type,
                    "the network exists with another type; using it"
                );
            }
            return Ok(n);
        }
        // Without ipam.subnet the network is created without Ipams and HNS picks the
        // subnet (NAT), as the reference does; a type that needs one fails in HNS.
        match self.hcn.create_network(&plan.network_document()) {
            Ok(n) => {
                tracing::info!(network = %n.name, id = %n.id, "created the network");
                Ok(n)
            }
            // A concurrent ADD may have created it first.
            Err(e) => self
                .hcn
                .get_network_by_name(&plan.name)
                .map_err(|_| PluginError::hcn(format!("create network {:?}", plan.name), e)),
        }
    }

    /// Attaches endpoint `ep` to namespace `ns`, naming its interface `ifname` where the
    /// backend can (hnsd; HNS names interfaces itself).
    fn attach(&self, ns: &str, ep: &str, ifname: &str) -> hcn::Result<()> {
        if cfg!(windows) {
            self.hcn.add_namespace_endpoint(ns, ep)
        } else {
            self.hcn.add_namespace_endpoint_named(ns, ep, ifname)
        }
    }

    /// Detaches `ep` from its namespace, deletes it, and releases the namespace when the
    /// plugin bound it to `cni_netns` and it is now empty (spec §2.5).
    fn remove_endpoint(
        &self,
        ep: &HostComputeEndpoint,
        cni_netns: &str,
    ) -> Result<(), PluginError> {
        let ns_id = ep.host_compute_namespace.as_str();
        if !ns_id.is_empty() {
            match self.hcn.get_namespace_by_id(ns_id) {
                Ok(_) => match self.hcn.remove_namespace_endpoint(ns_id, &ep.id) {
                    Ok(()) => {}
                    Err(e)
                        if is_not_found_error(&e)
                            || check_error_with_code(&e, HCN_E_ENDPOINT_NOT_ATTACHED) => {}
                    Err(e) => {
                        return Err(PluginError::hcn(
                            format!("remove endpoint {} from namespace {ns_id}", ep.id),
                            e,
                        ))
                    }
                },
                Err(e) if is_not_found_error(&e) => {}
                Err(e) => {
                    return Err(PluginError::hcn(
                        format!("error while attempting to get namespace {ns_id}"),
                        e,
                    ))
                }
            }
        }
        if let Err(e) = self.hcn.delete_endpoint(&ep.id) {
            match self.hcn.get_endpoint_by_name(&ep.name) {
                Err(again) if is_not_found_error(&again) => {}
                _ => return Err(PluginError::hcn(format!("delete endpoint {}", ep.id), e)),
            }
        }
        if !ns_id.is_empty() {
            netns::release(&self.hcn, ns_id, cni_netns)?;
        }
        Ok(())
    }

    /// ADD for an endpoint that already exists on the network: attach it to `CNI_NETNS` if
    /// it is not there, and report it.
    fn adopt(
        &self,
        ep: HostComputeEndpoint,
        network: &HostComputeNetwork,
        netns: &NetnsRef,
        args: &CmdArgs,
    ) -> Result<CniResult, PluginError> {
        let (ns_id, _) = netns.resolve(&self.hcn)?;
        if !same_id(&ep.host_compute_namespace, &ns_id) {
            if !ep.host_compute_namespace.is_empty() {
                match self
                    .hcn
                    .remove_namespace_endpoint(&ep.host_compute_namespace, &ep.id)
                {
                    Ok(()) => {}
                    Err(e) if is_not_found_error(&e) => {}
                    Err(e) => {
                        return Err(PluginError::hcn(
                            format!("move endpoint {} out of its old namespace", ep.id),
                            e,
                        ))
                    }
                }
            }
            self.attach(&ns_id, &ep.id, &args.ifname).map_err(|e| {
                PluginError::hcn(format!("attach endpoint {} to namespace {ns_id}", ep.id), e)
            })?;
        }
        let ep = self
            .hcn
            .get_endpoint_by_id(&ep.id)
            .map_err(|e| PluginError::hcn("read the endpoint back", e))?;
        report(&ep, network, args)
    }

    /// The addresses and gateways the endpoint is created with (spec §2.4 steps 4, 8, 9).
    fn addresses(
        cfg: &NetworkConfig,
        plan: &NetworkPlan,
        allocated: Option<&IpamResult>,
    ) -> Result<EndpointAddresses, PluginError> {
        let flags = &cfg.optional_flags;
        let mut a = EndpointAddresses::default();
        match plan.gateway {
            Some(IpAddr::V4(g)) => a.gw4 = Some(g),
            Some(IpAddr::V6(g)) => a.gw6 = Some(g),
            None => {}
        }
        if let Some(r) = allocated {
            a.ip4 = r.ip4.map(|n| n.addr());
            a.ip6 = r.ip6.map(|n| n.addr());
            if r.gw6.is_some() {
                a.gw6 = r.gw6;
            }
            // In both modes (the reference's dual-stack branch sets the IPv4 gateway too):
            // without it, a dual-stack endpoint from host-local `ranges` gets no IPv4
            // default route.
            let gw = if flags.force_bridge_gateway {
                r.ip4.map(|n| {
                    let o = n.network().octets();
                    Ipv4Addr::new(o[0], o[1], o[2], 2)
                })
            } else {
                r.gw4
            };
            if gw.is_some() {
                a.gw4 = gw;
            }
        }
        if flags.gateway_from_additional_routes {
            for r in &cfg.additional_routes {
                let parse = || {
                    r.gw.parse::<IpAddr>().map_err(|e| {
                        PluginError::Config(format!("additionalRoutes gw {:?}: {e}", r.gw))
                    })
                };
                match (r.dst.as_str(), a.gw4.is_none(), a.gw6.is_none()) {
                    ("0.0.0.0/0", true, _) => match parse()? {
                        IpAddr::V4(g) => a.gw4 = Some(g),
                        IpAddr::V6(_) => {
                            return Err(PluginError::Config(format!(
                                "additionalRoutes: gateway {} of 0.0.0.0/0 is not IPv4",
                                r.gw
                            )))
                        }
                    },
                    ("::/0", _, true) => match parse()? {
                        IpAddr::V6(g) => a.gw6 = Some(g),
                        IpAddr::V4(_) => {
                            return Err(PluginError::Config(format!(
                                "additionalRoutes: gateway {} of ::/0 is not IPv6",
                                r.gw
                            )))
                        }
                    },
                    _ => {}
                }
            }
        }
        Ok(a)
    }

    /// The part of ADD after IPAM: create the endpoint, attach it, read it back. A failure
    /// after creation deletes the endpoint.
    fn create_and_attach(
        &self,
        p: &AddPlan<'_>,
        allocated: Option<&IpamResult>,
    ) -> Result<CniResult, PluginError> {
        let AddPlan {
            args,
            cfg,
            plan,
            netns,
            network,
            name,
            ..
        } = p;
        let name = name.as_str();
        let mut addrs = Self::addresses(cfg, plan, allocated)?;
        // Addresses the runtime asked for stand in for an IPAM delegate; with one, the
        // delegate got them in its configuration and its answer rules.
        if allocated.is_none() {
            addrs.ip4 = p.requests.ip4.or(addrs.ip4);
            addrs.ip6 = p.requests.ip6.or(addrs.ip6);
        }
        let mut policies = p.policies.clone();
        let dsr = cfg.optional_flags.loopback_dsr;
        let dsr_policy = |ip: &str| {
            EndpointPolicy::new(
                EndpointPolicyType::OutBoundNat,
                &OutboundNatPolicySetting {
                    destinations: vec![ip.to_string()],
                    ..Default::default()
                },
            )
            .map_err(|e| PluginError::Other(format!("encode policy: {e}")))
        };
        if let (true, Some(ip)) = (dsr, addrs.ip4) {
            policies.push(dsr_policy(&ip.to_string())?);
        }
        let mut doc = endpoint_document(name, &network.id, policies, &addrs, &plan.dns);
        if let Some(mac) = &p.requests.mac {
            doc.mac_address = mac.clone();
        }
        let ep = self
            .hcn
            .create_endpoint(network, &doc)
            .map_err(|e| PluginError::hcn(format!("create endpoint {name}"), e))?;
        tracing::info!(endpoint = %ep.id, name, network = %network.name, "created the endpoint");
        let attached = (|| {
            if dsr && addrs.ip4.is_none() {
                let ip = ep
                    .ip_configurations
                    .iter()
                    .find(|c| c.ip_address.parse::<Ipv4Addr>().is_ok())
                    .ok_or_else(|| {
                        PluginError::Other(format!("endpoint {} has no IPv4 address", ep.id))
                    })?;
                self.hcn
                    .apply_endpoint_policy(
                        &ep.id,
                        RequestType::Add,
                        vec![dsr_policy(&ip.ip_address)?],
                    )
                    .map_err(|e| PluginError::hcn("add the loopback DSR policy", e))?;
            }
            let (ns_id, created) = netns.resolve(&self.hcn)?;
            if let Err(e) = self.attach(&ns_id, &ep.id, &args.ifname) {
                if created {
                    if let Err(undo) = netns::release(&self.hcn, &ns_id, &args.netns) {
                        tracing::error!(error = %undo, "removing the namespace after a failed attach");
                    }
                }
                return Err(PluginError::hcn(
                    format!("attach endpoint {} to namespace {ns_id}", ep.id),
                    e,
                ));
            }
            let read = self
                .hcn
                .get_endpoint_by_id(&ep.id)
                .map_err(|e| PluginError::hcn("read the endpoint back", e))?;
            report(&read, network, args)
        })();
        if attached.is_err() {
            // The endpoint as it is now (attached or not); if it cannot be read, remove it
            // with what creation returned (its namespace link is then unknown).
            let current = match self.hcn.get_endpoint_by_id(&ep.id) {
                Ok(now) => now,
                Err(e) => {
                    tracing::warn!(error = %e, endpoint = %ep.id, "re-reading the endpoint failed");
                    ep
                }
            };
            if let Err(undo) = self.remove_endpoint(&current, &args.netns) {
                tracing::error!(error = %undo, endpoint = %current.id, "removing the endpoint after a failed ADD");
            }
        }
        attached
    }
}

impl<I: Ipam> Handler for Plugin<I> {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
        let cfg = NetworkConfig::parse(&args.stdin)?;
        let (k8s, warning) = parse_cni_args(&args.args);
        if let Some(w) = warning {
            tracing::warn!(cni_args = %args.args, "{w}; CNI_ARGS ignored");
        }
        if cfg.optional_flags.loopback_dsr {
            self.hcn
                .dsr_supported()
                .map_err(|e| PluginError::hcn("loopbackDSR needs DSR support in HNS", e))?;
        }
        let plan = NetworkPlan::new(&cfg, &k8s)?;
        let requests = runtime_requests(&cfg)?;
        let mut policies = port_mapping_policies(&cfg)?;
        policies.extend(bandwidth_policies(&cfg)?);
        policies.extend(plan.policies.endpoint.iter().cloned());
        let netns = NetnsRef::parse(&args.netns)?;
        let network = self.network_for_add(&plan, cfg.optional_flags.enable_dual_stack)?;
        let name = endpoint_name(&args.container_id, &cfg.name);
        match self.hcn.get_endpoint_by_name(&name) {
            Ok(ep) if same_id(&ep.host_compute_network, &network.id) => {
                return self.adopt(ep, &network, &netns, args)
            }
            Ok(stale) => {
                tracing::warn!(endpoint = %stale.id, name, old_network = %stale.host_compute_network,
                    "an endpoint of this name is on another network; replacing it");
                self.remove_endpoint(&stale, "")?;
            }
            Err(e) if is_not_found_error(&e) => {}
            Err(e) => return Err(PluginError::hcn(format!("look up endpoint {name}"), e)),
        }
        let ipam_type = cfg.ipam.ipam_type.clone();
        let allocated = if ipam_type.is_empty() {
            None
        } else {
            Some(self.ipam.add(args, &ipam_type)?)
        };
        let p = AddPlan {
            args,
            cfg,
            plan,
            policies,
            netns,
            network,
            name,
            requests,
        };
        let outcome = self.create_and_attach(&p, allocated.as_ref());
        if outcome.is_err() && allocated.is_some() {
            if let Err(e) = self.ipam.del(args, &ipam_type) {
                tracing::error!(error = %e, "releasing the IPAM addresses after a failed ADD");
            }
        }
        outcome
    }

    fn del(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let cfg = NetworkConfig::parse(&args.stdin)?;
        if !cfg.ipam.ipam_type.is_empty() {
            self.ipam
                .del(args, &cfg.ipam.ipam_type)
                .map_err(|e| match e {
                    // The delegate's own error keeps its code.
                    PluginError::Delegate(_) => e,
                    e => PluginError::Ipam(format!("ipam deletion failed: {e}")),
                })?;
        }
        let name = endpoint_name(&args.container_id, &cfg.name);
        match self.hcn.get_endpoint_by_name(&name) {
            Ok(ep) => self.remove_endpoint(&ep, &args.netns),
            Err(e) if is_not_found_error(&e) => {
                // Already gone; a DEL retried after a failed namespace release finishes it.
                if let Ok(r @ NetnsRef::Path(_)) = NetnsRef::parse(&args.netns) {
                    if let Some(ns) = r.find(&self.hcn)? {
                        netns::release(&self.hcn, &ns.id, &args.netns)?;
                    }
                }
                Ok(())
            }
            Err(e) => Err(PluginError::hcn(format!("look up endpoint {name}"), e)),
        }
    }

    fn check(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let cfg = NetworkConfig::parse(&args.stdin)?;
        let name = endpoint_name(&args.container_id, &cfg.name);
        let ep = self
            .hcn
            .get_endpoint_by_name(&name)
            .map_err(|e| PluginError::hcn(format!("endpoint {name}"), e))?;
        let network = self
            .hcn
            .get_network_by_name(&cfg.name)
            .map_err(|e| PluginError::hcn(format!("network {:?}", cfg.name), e))?;
        if !same_id(&ep.host_compute_network, &network.id) {
            return Err(PluginError::Other(format!(
                "endpoint {name} is on network {}, not {} ({})",
                ep.host_compute_network, network.id, cfg.name
            )));
        }
        let netns = NetnsRef::parse(&args.netns)?;
        let ns = netns
            .find(&self.hcn)?
            .ok_or_else(|| PluginError::Namespace {
                netns: args.netns.clone(),
                reason: "no HCN namespace is bound to it".into(),
            })?;
        if !same_id(&ep.host_compute_namespace, &ns.id) {
            return Err(PluginError::Other(format!(
                "endpoint {name} is not attached to namespace {} of {}",
                ns.id, args.netns
            )));
        }
        if let Some(prev) = &cfg.prev_result {
            check_prev_result(prev, &ep, args)?;
        }
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let cfg = NetworkConfig::parse(&args.stdin)?;
        // The delegate keeps its own state of this network's attachments.
        if !cfg.ipam.ipam_type.is_empty() {
            self.ipam.gc(args, &cfg.ipam.ipam_type)?;
        }
        let Some(valid) = gc_attachments(&args.stdin)? else {
            // Without the list nothing is known to be stale; removing every endpoint of
            // the network would cut running pods off.
            tracing::warn!("GC without cni.dev/valid-attachments: nothing removed");
            return Ok(());
        };
        let network = match self.hcn.get_network_by_name(&cfg.name) {
            Ok(n) => n,
            Err(e) if is_not_found_error(&e) => return Ok(()),
            Err(e) => return Err(PluginError::hcn(format!("network {:?}", cfg.name), e)),
        };
        let suffix = format!("_{}", cfg.name);
        let endpoints = self
            .hcn
            .list_endpoints_of_network(&network.id)
            .map_err(|e| PluginError::hcn("list the network's endpoints", e))?;
        let mut first_error = None;
        for ep in endpoints {
            let Some(cid) = ep.name.strip_suffix(&suffix) else {
                continue; // not an endpoint of this plugin
            };
            if valid.iter().any(|a| a.container_id == cid) {
                continue;
            }
            tracing::info!(endpoint = %ep.id, name = %ep.name, "GC: removing a stale endpoint");
            if let Err(e) = self.remove_endpoint(&ep, "") {
                tracing::error!(error = %e, endpoint = %ep.id, "GC: removing a stale endpoint failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn status(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let cfg = NetworkConfig::parse(&args.stdin)?;
        if !cfg.ipam.ipam_type.is_empty() {
            self.ipam
                .status(args, &cfg.ipam.ipam_type)
                .map_err(|e| match e {
                    // 50 / 51 from the delegate are STATUS answers: passed on as they are.
                    PluginError::Delegate(ref d)
                        if matches!(
                            d.error.code,
                            ERR_PLUGIN_NOT_AVAILABLE | ERR_PLUGIN_LIMITED
                        ) =>
                    {
                        e
                    }
                    e => PluginError::NotAvailable(e.to_string()),
                })?;
        }
        self.hcn
            .get_globals()
            .map_err(|e| PluginError::NotAvailable(e.to_string()))?;
        match self.hcn.get_network_by_name(&cfg.name) {
            Ok(_) => Ok(()),
            Err(e) if is_not_found_error(&e) && !cfg.ipam.subnet.is_empty() => Ok(()),
            Err(e) => Err(PluginError::NotAvailable(format!(
                "network {:?}: {e}",
                cfg.name
            ))),
        }
    }
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;

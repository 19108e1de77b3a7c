//! Address and MAC management: parsing, the reserved addresses of a subnet, allocation.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::hresult::{
    HCN_E_ADDR_INVALID_OR_RESERVED, HCN_E_INVALID_ENDPOINT, HCN_E_INVALID_NETWORK,
};
use crate::schema::{HostComputeNetwork, MacPool, SUBNET_FLAG_DO_NOT_RESERVE_GATEWAY_ADDRESS};

use super::fail::{fail, Res};

/// The pool used when a network names none: Microsoft's OUI `00-15-5D`, as HNS uses.
pub const DEFAULT_MAC_POOL: (u64, u64) = (0x0015_5D00_0001, 0x0015_5DFF_FFFF);

/// One IPv4 subnet of a network with its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Subnet {
    /// The prefix.
    pub net: Ipv4Net,
    /// The gateway: the default route's next hop, or the first host.
    pub gateway: Ipv4Addr,
    /// Whether the gateway may be given to an endpoint.
    pub gateway_reserved: bool,
}

/// The IPv4 subnets of a (validated) network.
pub fn v4_subnets(network: &HostComputeNetwork) -> Vec<V4Subnet> {
    let mut out = Vec::new();
    for ipam in &network.ipams {
        for s in &ipam.subnets {
            let Ok(IpNet::V4(net)) = s.ip_address_prefix.parse::<IpNet>() else {
                continue; // IPv6 subnets: `v6_subnets`; invalid ones were refused on create
            };
            let gateway = s
                .routes
                .iter()
                .filter(|r| r.destination_prefix == "0.0.0.0/0")
                .find_map(|r| r.next_hop.parse::<Ipv4Addr>().ok())
                .unwrap_or_else(|| first_host(net));
            out.push(V4Subnet {
                net,
                gateway,
                gateway_reserved: s.flags & SUBNET_FLAG_DO_NOT_RESERVE_GATEWAY_ADDRESS == 0,
            });
        }
    }
    out
}

/// The IPv6 subnets of a (validated) network, each with its gateway: the `::/0` route's
/// next hop, or the subnet's first address after the router anycast one.
pub fn v6_subnets(network: &HostComputeNetwork) -> Vec<(ipnet::Ipv6Net, std::net::Ipv6Addr)> {
    let mut out = Vec::new();
    for ipam in &network.ipams {
        for s in &ipam.subnets {
            let Ok(IpNet::V6(net)) = s.ip_address_prefix.parse::<IpNet>() else {
                continue;
            };
            let gateway = s
                .routes
                .iter()
                .filter(|r| r.destination_prefix == "::/0")
                .find_map(|r| r.next_hop.parse::<std::net::Ipv6Addr>().ok())
                .unwrap_or_else(|| {
                    std::net::Ipv6Addr::from(u128::from(net.network()).wrapping_add(1))
                });
            out.push((net, gateway));
        }
    }
    out
}

/// The first host address of `net`.
pub fn first_host(net: Ipv4Net) -> Ipv4Addr {
    if net.prefix_len() >= 31 {
        net.network()
    } else {
        Ipv4Addr::from(u32::from(net.network()) + 1)
    }
}

/// Why `ip` cannot be given to an endpoint of `subnet`, if it cannot.
pub fn reserved_reason(subnet: &V4Subnet, ip: Ipv4Addr) -> Option<&'static str> {
    let net = subnet.net;
    if net.prefix_len() < 31 && (ip == net.network() || ip == net.broadcast()) {
        return Some("is the subnet's network or broadcast address");
    }
    if subnet.gateway_reserved && ip == subnet.gateway {
        return Some("is the subnet's gateway");
    }
    None
}

/// The first free address of `subnet`.
pub fn allocate(subnet: &V4Subnet, used: &HashSet<Ipv4Addr>) -> Res<Ipv4Addr> {
    for ip in subnet.net.hosts() {
        if reserved_reason(subnet, ip).is_none() && !used.contains(&ip) {
            return Ok(ip);
        }
    }
    Err(fail(
        HCN_E_ADDR_INVALID_OR_RESERVED,
        format!("no free address left in {}", subnet.net),
    ))
}

/// Parses an address of either family.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// Parses a MAC written `00-15-5D-00-00-01` or `00:15:5d:00:00:01` into its 48-bit value.
pub fn parse_mac(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split(['-', ':']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut v = 0u64;
    for p in parts {
        if p.len() != 2 {
            return None;
        }
        v = (v << 8) | u64::from(u8::from_str_radix(p, 16).ok()?);
    }
    Some(v)
}

/// HNS's MAC form: upper-case, dash-separated.
pub fn format_mac(v: u64) -> String {
    let b = mac_bytes(v);
    format!(
        "{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// The six bytes of a MAC value.
pub fn mac_bytes(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The MAC ranges of a pool, validated (start ≤ end, unicast).
pub fn mac_ranges(pool: &MacPool) -> Res<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for r in &pool.ranges {
        let (Some(a), Some(b)) = (
            parse_mac(&r.start_mac_address),
            parse_mac(&r.end_mac_address),
        ) else {
            return Err(fail(
                HCN_E_INVALID_NETWORK,
                format!(
                    "MacPool range {:?}-{:?} is not two MAC addresses",
                    r.start_mac_address, r.end_mac_address
                ),
            ));
        };
        if a > b || (a >> 40) & 1 == 1 {
            return Err(fail(
                HCN_E_INVALID_NETWORK,
                format!(
                    "MacPool range {}-{} is empty or multicast",
                    r.start_mac_address, r.end_mac_address
                ),
            ));
        }
        out.push((a, b));
    }
    Ok(out)
}

/// The first free MAC of `ranges` (the default pool when empty).
pub fn allocate_mac(ranges: &[(u64, u64)], used: &HashSet<u64>) -> Res<u64> {
    let default = [DEFAULT_MAC_POOL];
    let ranges = if ranges.is_empty() {
        &default[..]
    } else {
        ranges
    };
    for &(a, b) in ranges {
        let mut m = a;
        while m <= b {
            if !used.contains(&m) {
                return Ok(m);
            }
            m += 1;
        }
    }
    Err(fail(
        HCN_E_INVALID_ENDPOINT,
        "the network's MAC pool is exhausted",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(parse_mac("00-15-5d-00-00-01"), Some(0x0015_5D00_0001));
        assert_eq!(parse_mac("00:15:5D:00:00:01"), Some(0x0015_5D00_0001));
        assert_eq!(parse_mac("00-15-5D-00-00"), None);
        assert_eq!(parse_mac("00-15-5D-00-00-0G"), None);
        assert_eq!(format_mac(0x0015_5D00_00AB), "00-15-5D-00-00-AB");
        let used: HashSet<u64> = [0x0015_5D00_0001].into();
        assert_eq!(allocate_mac(&[], &used).unwrap(), 0x0015_5D00_0002);
        assert!(allocate_mac(&[(5, 5)], &[5].into()).is_err());
    }

    #[test]
    fn addresses() {
        let s = V4Subnet {
            net: "10.0.0.0/30".parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            gateway_reserved: true,
        };
        assert_eq!(
            allocate(&s, &HashSet::new()).unwrap(),
            "10.0.0.2".parse::<Ipv4Addr>().unwrap()
        );
        let used: HashSet<Ipv4Addr> = ["10.0.0.2".parse().unwrap()].into();
        assert!(allocate(&s, &used).is_err());
        assert!(reserved_reason(&s, "10.0.0.3".parse().unwrap()).is_some());
        assert!(reserved_reason(&s, "10.0.0.1".parse().unwrap()).is_some());
        assert_eq!(
            first_host("10.1.0.0/16".parse().unwrap()),
            "10.1.0.1".parse::<Ipv4Addr>().unwrap()
        );
    }
}

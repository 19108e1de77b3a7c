//! The ADD result (spec §2.6): built once in the 1.x model, printed in the layout of the
//! configuration's version.
//!
//! * 1.0.0 / 1.1.0: `{"cniVersion","interfaces":[{"name","mac"}],"ips":[{"interface",
//!   "address","gateway"}],"dns":{}}`;
//! * 0.3.0 / 0.3.1 / 0.4.0: the same with `"version":"4"|"6"` first in each IP;
//! * 0.2.0: `{"cniVersion","ip4":{"ip","gateway"},"ip6":{...},"dns":{}}` (the first address
//!   of each family; interfaces dropped).
//!
//! Keys are in the reference's (Go struct) order, empty lists are omitted, `dns` is always
//! the empty object, and the text is indented by four spaces with no trailing newline, as
//! the reference prints it. The MAC is written `aa:bb:cc:dd:ee:ff` (the reference writes
//! the six raw bytes into the JSON string, a bug this port does not copy), and the interface
//! names its `sandbox` (`CNI_NETNS`), which the specification asks for and the reference
//! omits.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;

use crate::ci::ci_struct;
use crate::error::{CniError, ERR_DECODING, ERR_INCOMPATIBLE_VERSION};
use crate::version::{self, ResultLayout};

/// One interface of the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// The interface name (`CNI_IFNAME`).
    pub name: String,
    /// The MAC address, `aa:bb:cc:dd:ee:ff` (omitted when unknown).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The sandbox the interface is in: `CNI_NETNS` (omitted when empty). The reference
    /// leaves it out; the CNI specification asks for it on interfaces in a container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

/// One address of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The index of the interface in [`CniResult::interfaces`].
    pub interface: Option<usize>,
    /// The address with its prefix length (host bits kept: `10.0.0.5/16`).
    pub address: IpNet,
    /// The gateway.
    pub gateway: Option<IpAddr>,
}

/// A result in the 1.x model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    /// The interfaces.
    pub interfaces: Vec<Interface>,
    /// The addresses.
    pub ips: Vec<IpConfig>,
}

/// The empty `dns` object every result carries.
#[derive(Debug, Serialize)]
struct Dns {}

ci_struct! {
    /// The `prevResult` of an ADD in a chain (0.3 and later layouts), kept as given so that
    /// what earlier plugins reported passes through (specification: a plugin must pass a
    /// `prevResult` through, modify it, or suppress it, never ignore it).
    pub struct ChainResult {
        "interfaces" interfaces: Vec<Value>,
        "ips" ips: Vec<Value>,
        "routes" routes: Vec<Value>,
        "dns" dns: Value,
    }
}

ci_struct! {
    /// The one key of the configuration chaining reads.
    pub struct ChainHead {
        "prevResult" prev_result: Option<ChainResult>,
    }
}

/// A result merged with a `prevResult`.
#[derive(Serialize)]
struct Chained<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Value>,
    dns: Value,
}

/// The `prevResult` of configuration `stdin`, if any; a `prevResult` of the wrong shape is
/// a decoding error (code 6), found before anything is created.
pub fn chain_result(stdin: &[u8]) -> Result<Option<ChainResult>, CniError> {
    serde_json::from_slice::<ChainHead>(stdin)
        .map(|h| h.prev_result)
        .map_err(|e| CniError::new(ERR_DECODING, format!("decoding prevResult: {e}"), ""))
}

#[derive(Serialize)]
struct Ip100<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<&'a IpAddr>,
}

#[derive(Serialize)]
struct Ip040<'a> {
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<&'a IpAddr>,
}

#[derive(Serialize)]
struct Result1<'a, Ip> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    interfaces: &'a [Interface],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<Ip>,
    dns: Dns,
}

#[derive(Serialize)]
struct Ip020<'a> {
    ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<&'a IpAddr>,
}

#[derive(Serialize)]
struct Result020<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip4: Option<Ip020<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip6: Option<Ip020<'a>>,
    dns: Dns,
}

/// `value` as JSON indented by four spaces (Go's `MarshalIndent(v, "", "    ")`).
pub fn to_indented_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match value.serialize(&mut ser) {
        // Serializing plain structs of strings and numbers into memory cannot fail, and
        // serde_json writes UTF-8 only.
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"code\": 999, \"msg\": \"encode: {e}\"}}"),
    }
}

/// The version word of an address family in the 0.3/0.4 layout.
fn family(ip: &IpNet) -> &'static str {
    match ip {
        IpNet::V4(_) => "4",
        IpNet::V6(_) => "6",
    }
}

impl CniResult {
    /// The result as printed for configuration version `cni_version`; code 1 for a version
    /// these plugins do not speak.
    pub fn to_json(&self, cni_version: &str) -> Result<String, CniError> {
        let layout = version::result_layout(cni_version).ok_or_else(|| {
            CniError::new(
                ERR_INCOMPATIBLE_VERSION,
                "incompatible CNI versions",
                version::incompatible_details(cni_version),
            )
        })?;
        Ok(match layout {
            ResultLayout::V100 => to_indented_json(&Result1 {
                cni_version,
                interfaces: &self.interfaces,
                ips: self
                    .ips
                    .iter()
                    .map(|ip| Ip100 {
                        interface: ip.interface,
                        address: ip.address.to_string(),
                        gateway: ip.gateway.as_ref(),
                    })
                    .collect(),
                dns: Dns {},
            }),
            ResultLayout::V040 => to_indented_json(&Result1 {
                cni_version,
                interfaces: &self.interfaces,
                ips: self
                    .ips
                    .iter()
                    .map(|ip| Ip040 {
                        version: family(&ip.address),
                        interface: ip.interface,
                        address: ip.address.to_string(),
                        gateway: ip.gateway.as_ref(),
                    })
                    .collect(),
                dns: Dns {},
            }),
            ResultLayout::V020 => {
                let first = |v4: bool| {
                    self.ips
                        .iter()
                        .find(|ip| matches!(ip.address, IpNet::V4(_)) == v4)
                        .map(|ip| Ip020 {
                            ip: ip.address.to_string(),
                            gateway: ip.gateway.as_ref(),
                        })
                };
                to_indented_json(&Result020 {
                    cni_version,
                    ip4: first(true),
                    ip6: first(false),
                    dns: Dns {},
                })
            }
        })
    }
}

impl CniResult {
    /// The result printed for configuration version `cni_version` after a chain's earlier
    /// plugins reported `prev`: their interfaces, addresses, routes and DNS first, then
    /// this plugin's (its addresses' `interface` indexes shifted past theirs). Version
    /// 0.2.0 has no chaining and its layout no interfaces: `prev` is not used there.
    pub fn to_json_chained(
        &self,
        cni_version: &str,
        prev: Option<&ChainResult>,
    ) -> Result<String, CniError> {
        let layout = version::result_layout(cni_version);
        let Some(prev) = prev.filter(|_| layout.is_some_and(|l| l != ResultLayout::V020)) else {
            return self.to_json(cni_version);
        };
        let offset = prev.interfaces.len();
        let encode = |v: Result<Value, serde_json::Error>| {
            v.map_err(|e| CniError::new(ERR_DECODING, format!("encode the result: {e}"), ""))
        };
        let mut interfaces = prev.interfaces.clone();
        for i in &self.interfaces {
            interfaces.push(encode(serde_json::to_value(i))?);
        }
        let mut ips = prev.ips.clone();
        for ip in &self.ips {
            let interface = ip.interface.map(|i| i + offset);
            let address = ip.address.to_string();
            let gateway = ip.gateway.as_ref();
            ips.push(encode(if layout == Some(ResultLayout::V040) {
                serde_json::to_value(Ip040 {
                    version: family(&ip.address),
                    interface,
                    address,
                    gateway,
                })
            } else {
                serde_json::to_value(Ip100 {
                    interface,
                    address,
                    gateway,
                })
            })?);
        }
        Ok(to_indented_json(&Chained {
            cni_version,
            interfaces,
            ips,
            routes: prev.routes.clone(),
            dns: match &prev.dns {
                Value::Null => Value::Object(Default::default()),
                dns => dns.clone(),
            },
        }))
    }
}

/// `00-15-5D-AA-BB-CC` (HNS) or `00:15:5d:aa:bb:cc` → `00:15:5d:aa:bb:cc`; `None` when the
/// text is not six hex bytes.
pub fn format_mac(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split(['-', ':']).collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dual: bool) -> CniResult {
        let mut ips = vec![IpConfig {
            interface: Some(0),
            address: "10.0.0.5/16".parse().unwrap(),
            gateway: Some("10.0.0.1".parse().unwrap()),
        }];
        if dual {
            ips.push(IpConfig {
                interface: Some(0),
                address: "fd00::5/64".parse().unwrap(),
                gateway: Some("fd00::101".parse().unwrap()),
            });
        }
        CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "00:15:5d:aa:bb:cc".into(),
                sandbox: "/var/run/netns/p".into(),
            }],
            ips,
        }
    }

    #[test]
    fn layout_1_0_0_and_1_1_0() {
        let want = r#"{
    "cniVersion": "1.0.0",
    "interfaces": [
        {
            "name": "eth0",
            "mac": "00:15:5d:aa:bb:cc",
            "sandbox": "/var/run/netns/p"
        }
    ],
    "ips": [
        {
            "interface": 0,
            "address": "10.0.0.5/16",
            "gateway": "10.0.0.1"
        }
    ],
    "dns": {}
}"#;
        assert_eq!(sample(false).to_json("1.0.0").unwrap(), want);
        assert_eq!(
            sample(false).to_json("1.1.0").unwrap(),
            want.replace("1.0.0", "1.1.0")
        );
    }

    #[test]
    fn layout_0_3_x_and_0_4_0_carry_the_family() {
        for v in ["0.3.0", "0.3.1", "0.4.0"] {
            let got: serde_json::Value =
                serde_json::from_str(&sample(true).to_json(v).unwrap()).unwrap();
            assert_eq!(got["cniVersion"], v);
            assert_eq!(got["ips"][0]["version"], "4");
            assert_eq!(got["ips"][1]["version"], "6");
            assert_eq!(got["ips"][1]["address"], "fd00::5/64");
            assert_eq!(got["interfaces"][0]["name"], "eth0");
            assert_eq!(got["dns"], serde_json::json!({}));
        }
        let text = sample(false).to_json("0.4.0").unwrap();
        assert!(
            text.contains("\"version\": \"4\",\n            \"interface\": 0,"),
            "{text}"
        );
    }

    #[test]
    fn layout_0_2_0_has_ip4_and_ip6_only() {
        let want = r#"{
    "cniVersion": "0.2.0",
    "ip4": {
        "ip": "10.0.0.5/16",
        "gateway": "10.0.0.1"
    },
    "dns": {}
}"#;
        assert_eq!(sample(false).to_json("0.2.0").unwrap(), want);
        let got: serde_json::Value =
            serde_json::from_str(&sample(true).to_json("0.2.0").unwrap()).unwrap();
        assert_eq!(got["ip6"]["ip"], "fd00::5/64");
        assert_eq!(got["ip6"]["gateway"], "fd00::101");
        assert!(got.get("interfaces").is_none());
    }

    #[test]
    fn empty_lists_are_omitted_and_no_trailing_newline() {
        let text = CniResult::default().to_json("1.0.0").unwrap();
        assert_eq!(
            text,
            "{\n    \"cniVersion\": \"1.0.0\",\n    \"dns\": {}\n}"
        );
    }

    #[test]
    fn unknown_version_is_code_1() {
        let e = sample(false).to_json("0.1.0").unwrap_err();
        assert_eq!(e.code, 1);
    }

    #[test]
    fn a_prev_result_passes_through_before_ours() {
        let conf = br#"{"prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": "lo0", "mtu": 9000}],
            "ips": [{"interface": 0, "address": "192.168.9.9/32"}],
            "routes": [{"dst": "192.168.0.0/16"}],
            "dns": {"nameservers": ["1.1.1.1"]}}}"#;
        let prev = chain_result(conf).unwrap().unwrap();
        for (v, family) in [("1.0.0", None), ("0.4.0", Some("4"))] {
            let got: Value =
                serde_json::from_str(&sample(false).to_json_chained(v, Some(&prev)).unwrap())
                    .unwrap();
            assert_eq!(got["cniVersion"], v);
            assert_eq!(
                got["interfaces"][0],
                serde_json::json!({"name": "lo0", "mtu": 9000})
            );
            assert_eq!(got["interfaces"][1]["name"], "eth0");
            assert_eq!(got["ips"][0]["address"], "192.168.9.9/32");
            assert_eq!(got["ips"][1]["address"], "10.0.0.5/16");
            // Ours points at our interface, now second.
            assert_eq!(got["ips"][1]["interface"], 1);
            assert_eq!(got["ips"][1].get("version").and_then(Value::as_str), family);
            assert_eq!(got["routes"][0]["dst"], "192.168.0.0/16");
            assert_eq!(got["dns"]["nameservers"][0], "1.1.1.1");
        }
        // 0.2.0 has no chaining; no prevResult prints the plain result.
        assert_eq!(
            sample(false).to_json_chained("0.2.0", Some(&prev)).unwrap(),
            sample(false).to_json("0.2.0").unwrap()
        );
        assert_eq!(
            sample(false).to_json_chained("1.0.0", None).unwrap(),
            sample(false).to_json("1.0.0").unwrap()
        );
        assert_eq!(chain_result(br#"{"name":"n"}"#).unwrap(), None);
        assert_eq!(
            chain_result(br#"{"prevResult":{"ips":5}}"#)
                .unwrap_err()
                .code,
            6
        );
    }

    #[test]
    fn mac_formats() {
        assert_eq!(
            format_mac("00-15-5D-AA-BB-CC").as_deref(),
            Some("00:15:5d:aa:bb:cc")
        );
        assert_eq!(
            format_mac("02:42:ac:11:00:02").as_deref(),
            Some("02:42:ac:11:00:02")
        );
        assert_eq!(format_mac(""), None);
        assert_eq!(format_mac("00-15-5D-AA-BB"), None);
        assert_eq!(format_mac("00-15-5D-AA-BB-ZZ"), None);
    }
}

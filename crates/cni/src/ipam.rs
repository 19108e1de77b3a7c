//! IPAM delegation (spec §2.4 step 8): when `ipam.type` is set, the IPAM plugin of that
//! name, found on `CNI_PATH`, allocates the addresses (ADD) and releases them (DEL); GC and
//! STATUS are forwarded to it, as the 1.1.0 specification asks of delegating plugins.
//!
//! The plugin gets the invocation's environment and, unlike the reference, always the
//! configuration bytes as received: the reference re-serialises its own parsed view for
//! non-dual-stack networks, which drops keys an IPAM plugin needs (host-local's `ranges`).
//! Its result, in any supported layout, is reduced to one IPv4 and one IPv6 address with
//! their gateways.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::ci::ci_struct;
use crate::error::{CniError, DelegateFailure, PluginError};
use crate::skel::CmdArgs;

/// The largest IPAM reply read.
pub const MAX_REPLY: u64 = 1 << 20;

/// What an IPAM plugin allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpamResult {
    /// The IPv4 address with its prefix.
    pub ip4: Option<Ipv4Net>,
    /// The IPv4 gateway.
    pub gw4: Option<Ipv4Addr>,
    /// The IPv6 address with its prefix.
    pub ip6: Option<Ipv6Net>,
    /// The IPv6 gateway.
    pub gw6: Option<Ipv6Addr>,
}

/// The IPAM boundary (the exec of a delegate; tests may substitute it).
pub trait Ipam {
    /// Allocates with plugin `plugin` (ADD).
    fn add(&self, args: &CmdArgs, plugin: &str) -> Result<IpamResult, PluginError>;
    /// Releases with plugin `plugin` (DEL).
    fn del(&self, args: &CmdArgs, plugin: &str) -> Result<(), PluginError>;
    /// Forwards a GC to plugin `plugin` (spec 1.1.0: a plugin forwards GC to its delegates).
    fn gc(&self, args: &CmdArgs, plugin: &str) -> Result<(), PluginError>;
    /// Asks plugin `plugin` whether it is ready (STATUS, forwarded the same way).
    fn status(&self, args: &CmdArgs, plugin: &str) -> Result<(), PluginError>;
}

ci_struct! {
    /// An address of a 0.3+ result.
    pub struct ReplyIp {
        "address" address: String,
        "gateway" gateway: String,
    }
}

ci_struct! {
    /// `ip4` / `ip6` of a 0.2.0 result.
    pub struct ReplyIp020 {
        "ip" ip: String,
        "gateway" gateway: String,
    }
}

ci_struct! {
    /// An IPAM result in any layout (0.2.0 `ip4`/`ip6`, 0.3+ `ips`).
    pub struct Reply {
        "ips" ips: Vec<ReplyIp>,
        "ip4" ip4: Option<ReplyIp020>,
        "ip6" ip6: Option<ReplyIp020>,
    }
}

ci_struct! {
    /// A CNI error object printed by a failing plugin.
    pub struct ReplyError {
        "code" code: u64,
        "msg" msg: String,
        "details" details: String,
    }
}

fn bad(what: impl std::fmt::Display) -> PluginError {
    PluginError::Ipam(what.to_string())
}

/// Reduces an IPAM reply to [`IpamResult`]: the first address of each family.
pub fn parse_reply(bytes: &[u8]) -> Result<IpamResult, PluginError> {
    let reply: Reply =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid IPAM result: {e}")))?;
    let mut pairs: Vec<(&str, &str)> = reply
        .ips
        .iter()
        .map(|i| (i.address.as_str(), i.gateway.as_str()))
        .collect();
    for old in [&reply.ip4, &reply.ip6].into_iter().flatten() {
        pairs.push((old.ip.as_str(), old.gateway.as_str()));
    }
    let mut out = IpamResult::default();
    for (address, gateway) in pairs {
        let net: IpNet = address
            .parse()
            .map_err(|e| bad(format!("IPAM address {address:?}: {e}")))?;
        let gw: Option<IpAddr> = if gateway.is_empty() {
            None
        } else {
            Some(
                gateway
                    .parse()
                    .map_err(|e| bad(format!("IPAM gateway {gateway:?}: {e}")))?,
            )
        };
        match net {
            IpNet::V4(n) if out.ip4.is_none() => {
                out.ip4 = Some(n);
                out.gw4 = match gw {
                    Some(IpAddr::V4(g)) => Some(g),
                    _ => None,
                };
            }
            IpNet::V6(n) if out.ip6.is_none() => {
                out.ip6 = Some(n);
                out.gw6 = match gw {
                    Some(IpAddr::V6(g)) => Some(g),
                    _ => None,
                };
            }
            _ => {}
        }
    }
    if out.ip4.is_none() && out.ip6.is_none() {
        return Err(bad("the IPAM result has no address"));
    }
    Ok(out)
}

/// Finds plugin `name` in the `CNI_PATH` list `path`.
pub fn find_plugin(name: &str, path: &str) -> Result<PathBuf, PluginError> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(PluginError::Config(format!(
            "ipam.type {name:?} is not a plugin name"
        )));
    }
    let sep = if cfg!(windows) { ';' } else { ':' };
    let exe = if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_string()
    };
    path.split(sep)
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(&exe))
        .find(|p| p.is_file())
        .ok_or_else(|| bad(format!("failed to find plugin {name:?} in path [{path}]")))
}

/// IPAM through the delegate's executable.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecIpam;

impl ExecIpam {
    /// Runs plugin `name` for `command` with the invocation's arguments; its stdout.
    fn exec(&self, args: &CmdArgs, name: &str, command: &str) -> Result<Vec<u8>, PluginError> {
        let exe = find_plugin(name, &args.path)?;
        let mut child = Process::new(&exe)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &args.container_id)
            .env("CNI_NETNS", &args.netns)
            .env("CNI_IFNAME", &args.ifname)
            .env("CNI_ARGS", &args.args)
            .env("CNI_PATH", &args.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| bad(format!("run {}: {e}", exe.display())))?;
        // Feed stdin from a thread while the output is collected: a plugin may write
        // before it has read everything.
        let mut stdin = child.stdin.take().ok_or_else(|| bad("no stdin pipe"))?;
        let input = args.stdin.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child
            .wait_with_output()
            .map_err(|e| bad(format!("wait for {}: {e}", exe.display())))?;
        let (status, out, err) = (output.status, output.stdout, output.stderr);
        match writer.join() {
            Ok(Ok(())) => {}
            // A plugin that exits without reading its stdin (e.g. on a usage error) breaks
            // the pipe; its exit status and output say what happened.
            Ok(Err(e)) if status.success() => {
                return Err(bad(format!(
                    "write the configuration to {}: {e}",
                    exe.display()
                )))
            }
            Ok(Err(_)) => {}
            Err(_) => return Err(bad("the stdin writer panicked")),
        }
        if out.len() as u64 > MAX_REPLY {
            return Err(bad(format!(
                "{name} {command} printed more than {MAX_REPLY} bytes"
            )));
        }
        if !status.success() {
            let why = match serde_json::from_slice::<ReplyError>(&out) {
                // A CNI error of the delegate's own: the runtime gets its code.
                Ok(e) if e.code != 0 => {
                    return Err(PluginError::Delegate(Box::new(DelegateFailure {
                        plugin: name.to_string(),
                        command: command.to_string(),
                        error: CniError::new(
                            u32::try_from(e.code).unwrap_or(u32::MAX),
                            e.msg,
                            e.details,
                        ),
                    })))
                }
                _ => format!(
                    "{status}: {}{}",
                    String::from_utf8_lossy(&out[..out.len().min(4096)]),
                    String::from_utf8_lossy(&err[..err.len().min(4096)])
                ),
            };
            return Err(bad(format!("{name} {command} failed: {why}")));
        }
        Ok(out)
    }
}

impl Ipam for ExecIpam {
    fn add(&self, args: &CmdArgs, plugin: &str) -> Result<IpamResult, PluginError> {
        parse_reply(&self.exec(args, plugin, "ADD")?)
    }

    fn del(&self, args: &CmdArgs, plugin: &str) -> Result<(), PluginError> {
        self.exec(args, plugin, "DEL").map(drop)
    }

    fn gc(&self, args: &CmdArgs, plugin: &str) -> Result<(), PluginError> {
        self.exec(args, plugin, "GC").map(drop)
    }

    fn status(&self, args: &CmdArgs, plugin: &str) -> Result<(), PluginError> {
        self.exec(args, plugin, "STATUS").map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_every_layout() {
        let r = parse_reply(
            br#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.5/24","gateway":"10.0.0.1"},
                {"address":"fd00::5/64","gateway":"fd00::1"}],"dns":{}}"#,
        )
        .unwrap();
        assert_eq!(r.ip4.unwrap().to_string(), "10.0.0.5/24");
        assert_eq!(r.gw4.unwrap().to_string(), "10.0.0.1");
        assert_eq!(r.ip6.unwrap().to_string(), "fd00::5/64");
        assert_eq!(r.gw6.unwrap().to_string(), "fd00::1");
        let r = parse_reply(
            br#"{"cniVersion":"0.2.0","IP4":{"ip":"10.0.0.6/16","Gateway":"10.0.0.1"}}"#,
        )
        .unwrap();
        assert_eq!(r.ip4.unwrap().to_string(), "10.0.0.6/16");
        assert_eq!(r.ip6, None);
        let r = parse_reply(br#"{"ips":[{"version":"4","address":"10.0.0.7/16"}]}"#).unwrap();
        assert_eq!(r.gw4, None);
    }

    #[test]
    fn bad_replies_are_ipam_errors() {
        for bad in [
            &b"{}"[..],
            b"nope",
            br#"{"ips":[{"address":"10.0.0.5"}]}"#,
            br#"{"ips":[{"address":"10.0.0.5/24","gateway":"x"}]}"#,
        ] {
            let e = parse_reply(bad).unwrap_err();
            assert_eq!(e.code(), 66, "{e}");
        }
    }

    #[test]
    fn plugin_names_are_confined_to_cni_path() {
        for name in ["", "../x", "a/b", ".."] {
            assert_eq!(find_plugin(name, "/bin").unwrap_err().code(), 7, "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        // CNI_PATH is the platform's path list, and Windows plugins are `.exe` files.
        let exe = dir
            .path()
            .join(format!("fake-ipam{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&exe, "").unwrap();
        let sep = if cfg!(windows) { ';' } else { ':' };
        let path = format!("/nonexistent{sep}{}", dir.path().display());
        assert_eq!(find_plugin("fake-ipam", &path).unwrap(), exe);
        assert!(find_plugin("other", &path)
            .unwrap_err()
            .to_string()
            .contains("failed to find plugin"));
    }
}

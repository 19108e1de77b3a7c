//! `CNI_NETNS` → the HCN namespace the endpoint is attached to.
//!
//! On Windows `CNI_NETNS` is the GUID of an HCN namespace the runtime created (spec §2.4
//! step 12). On Linux a runtime passes the path of a network namespace file
//! (`/var/run/netns/cni-…`); hnsd binds an HCN namespace to such a file through the
//! document's `NetnsPath` extension. The plugin finds the namespace bound to the path, or
//! creates it on ADD, and removes it again on DEL once its last endpoint is gone (it only
//! existed to hold this runtime's endpoints; hnsd never deletes a file it was given). A GUID
//! is accepted on Linux too, for callers that create HCN namespaces themselves.

use std::path::Path;

use hcn::schema::{HostComputeNamespace, HostComputeQuery, NamespaceType, V2_SCHEMA_VERSION};
use hcn::Hcn;

use crate::error::PluginError;

/// What `CNI_NETNS` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsRef {
    /// The GUID of an HCN namespace.
    Id(String),
    /// A network namespace file (Linux).
    Path(String),
}

/// Whether `text` is a GUID (`8-4-4-4-12` hex digits, braces allowed).
pub fn is_guid(text: &str) -> bool {
    let t = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let groups: Vec<&str> = t.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `CNI_NETNS` itself is malformed: CNI code 4, which names the variable.
fn env_err(netns: &str, reason: &str) -> PluginError {
    PluginError::InvalidEnv(format!("CNI_NETNS {netns:?}: {reason}"))
}

fn ns_err(netns: &str, reason: impl Into<String>) -> PluginError {
    PluginError::Namespace {
        netns: netns.to_string(),
        reason: reason.into(),
    }
}

impl NetnsRef {
    /// Parses `CNI_NETNS`.
    pub fn parse(netns: &str) -> Result<Self, PluginError> {
        if netns.is_empty() {
            return Err(env_err(netns, "cannot create endpoint without a namespace"));
        }
        let netns = netns.trim();
        if is_guid(netns) {
            return Ok(NetnsRef::Id(
                netns
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .to_string(),
            ));
        }
        if cfg!(windows) {
            return Err(env_err(netns, "must be the GUID of an HCN namespace"));
        }
        if !netns.starts_with('/') || netns.split('/').any(|c| c == "..") {
            return Err(env_err(
                netns,
                "must be an HCN namespace GUID or an absolute network namespace path",
            ));
        }
        Ok(NetnsRef::Path(netns.to_string()))
    }

    /// The namespace bound to this reference, if there is one (never creates).
    pub fn find(&self, hcn: &Hcn) -> Result<Option<HostComputeNamespace>, PluginError> {
        match self {
            NetnsRef::Id(id) => match hcn.get_namespace_by_id(id) {
                Ok(ns) => Ok(Some(ns)),
                Err(e) if hcn::error::is_not_found_error(&e) => Ok(None),
                Err(e) => Err(PluginError::hcn(format!("look up namespace {id}"), e)),
            },
            NetnsRef::Path(path) => hcn
                .list_namespaces_query(&HostComputeQuery::filter_by("NetnsPath", path))
                .map(|mut l| {
                    // hnsd filters; a backend that ignores unknown filter keys does not.
                    l.retain(|n| n.netns_path == *path);
                    l.into_iter().next()
                })
                .map_err(|e| PluginError::hcn(format!("look up the namespace of {path}"), e)),
        }
    }

    /// The namespace's id for ADD, creating the namespace bound to a path when there is
    /// none; the flag says whether it was created now (so a failed ADD removes it).
    pub fn resolve(&self, hcn: &Hcn) -> Result<(String, bool), PluginError> {
        if let Some(ns) = self.find(hcn)? {
            return Ok((ns.id, false));
        }
        match self {
            NetnsRef::Id(id) => Err(ns_err(id, "no HCN namespace has this id")),
            NetnsRef::Path(path) => {
                let doc = HostComputeNamespace {
                    namespace_type: NamespaceType::Host,
                    netns_path: path.clone(),
                    schema_version: V2_SCHEMA_VERSION,
                    ..Default::default()
                };
                match hcn.create_namespace(&doc) {
                    Ok(ns) => Ok((ns.id, true)),
                    // Another ADD for the same pod (a second network) may have won the race.
                    Err(e) => match self.find(hcn)? {
                        Some(ns) => Ok((ns.id, false)),
                        None => Err(PluginError::hcn(
                            format!("create the namespace of {path}"),
                            e,
                        )),
                    },
                }
            }
        }
    }
}

/// Deletes namespace `ns` when it is bound to a network namespace file, holds nothing any
/// more, and that file is `cni_netns` or gone (see the module docs). A namespace hnsd created
/// itself, or one still in use, is left alone.
pub fn release(hcn: &Hcn, ns_id: &str, cni_netns: &str) -> Result<(), PluginError> {
    let ns = match hcn.get_namespace_by_id(ns_id) {
        Ok(ns) => ns,
        Err(e) if hcn::error::is_not_found_error(&e) => return Ok(()),
        Err(e) => return Err(PluginError::hcn(format!("look up namespace {ns_id}"), e)),
    };
    let bound = !ns.netns_path.is_empty()
        && (ns.netns_path == cni_netns || !Path::new(&ns.netns_path).exists());
    if !bound || !ns.resources.is_empty() {
        return Ok(());
    }
    match hcn.delete_namespace(&ns.id) {
        Ok(()) => Ok(()),
        Err(e) if hcn::error::is_not_found_error(&e) => Ok(()),
        Err(e) => Err(PluginError::hcn(
            format!("delete namespace {} of {}", ns.id, ns.netns_path),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_paths() {
        let id = "5F3C1B2A-0000-4000-8000-00155D000001";
        assert_eq!(NetnsRef::parse(id).unwrap(), NetnsRef::Id(id.into()));
        assert_eq!(
            NetnsRef::parse(&format!("{{{id}}}")).unwrap(),
            NetnsRef::Id(id.into())
        );
        assert!(is_guid(&id.to_lowercase()));
        assert!(!is_guid("5F3C1B2A-0000-4000-8000-00155D00000"));
        assert!(!is_guid("not-a-guid"));
        if cfg!(windows) {
            assert!(NetnsRef::parse("/var/run/netns/x").is_err());
        } else {
            assert_eq!(
                NetnsRef::parse("/var/run/netns/cni-1").unwrap(),
                NetnsRef::Path("/var/run/netns/cni-1".into())
            );
            assert!(NetnsRef::parse("relative/path").is_err());
            assert!(NetnsRef::parse("/var/run/netns/../x").is_err());
        }
        let e = NetnsRef::parse("").unwrap_err();
        assert!(e
            .to_string()
            .contains("cannot create endpoint without a namespace"));
        assert_eq!(e.code(), 4);
        if !cfg!(windows) {
            assert_eq!(NetnsRef::parse("relative/path").unwrap_err().code(), 4);
        }
    }
}

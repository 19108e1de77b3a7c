//! Namespaces: create (an owned network namespace, or one bound by `NetnsPath`), attach and
//! detach endpoints (the veth moves into the namespace), containers, delete.

use hcs::HResult;

use crate::api::ObjectKind;
use crate::hresult::{
    ERROR_ALREADY_EXISTS, ERROR_INVALID_PARAMETER, ERROR_OBJECT_ALREADY_EXISTS,
    HCN_E_ENDPOINT_ALREADY_ATTACHED, HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS,
    HCN_E_ENDPOINT_NOT_ATTACHED, HCN_E_INVALID_REMOTE_ENDPOINT_OPERATION,
    HCN_E_NAMESPACE_ATTACH_FAILED, HCN_E_REQUEST_UNSUPPORTED,
};
use crate::raw::RawJson;
use crate::schema::{
    HostComputeNamespace, ModifyNamespaceSettingRequest, NamespaceEndpointRequest,
    NamespaceResource, NamespaceResourceContainer, NamespaceResourceEndpoint,
    NamespaceResourceType, NamespaceType, RequestType, ENDPOINT_FLAG_REMOTE_ENDPOINT,
    V2_SCHEMA_VERSION,
};
use crate::v1::endpoint_state;

use super::dataplane::NamespaceSpec;
use super::fail::{fail, Res, E_FAIL};
use super::state::{NamespaceExtra, Record, State};
use super::{canon_id, decode, not_found, Engine};

/// Whether `name` can name a Linux interface (1–15 bytes, no `/`, `:` or whitespace, not
/// `.` or `..`).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

fn resource_data<T: serde::Serialize>(value: &T) -> Res<RawJson> {
    RawJson::from_value(value).map_err(|e| fail(E_FAIL, format!("encode: {e}")))
}

fn is_endpoint_resource(r: &NamespaceResource, id: &str) -> bool {
    r.resource_type == NamespaceResourceType::Endpoint
        && r.data
            .decode::<NamespaceResourceEndpoint>()
            .is_ok_and(|d| d.id.eq_ignore_ascii_case(id))
}

impl Engine {
    pub(super) fn create_namespace(&self, id: String, settings: &str) -> Res<String> {
        let mut ns: HostComputeNamespace = decode("namespace", settings)?;
        let mut st = self.lock();
        if st.namespaces.contains_key(&id) {
            return Err(fail(ERROR_ALREADY_EXISTS, format!("namespace {id}")));
        }
        if ns.namespace_type.as_str().is_empty() {
            ns.namespace_type = NamespaceType::Host;
        }
        if let NamespaceType::Other(t) = &ns.namespace_type {
            return Err(fail(
                ERROR_INVALID_PARAMETER,
                format!("namespace type {t:?}"),
            ));
        }
        if !ns.resources.is_empty() {
            return Err(fail(
                ERROR_INVALID_PARAMETER,
                "Resources are added with ModifyNamespace, not on create",
            ));
        }
        let owned = ns.netns_path.is_empty();
        if owned {
            ns.netns_path = self
                .dataplane
                .create_namespace(&id)
                .map_err(|e| fail(E_FAIL, format!("create network namespace: {e}")))?
                .to_string_lossy()
                .into_owned();
        } else {
            if !ns.netns_path.starts_with('/') {
                return Err(fail(
                    ERROR_INVALID_PARAMETER,
                    format!("NetnsPath {:?} is not absolute", ns.netns_path),
                ));
            }
            if st
                .namespaces
                .values()
                .any(|o| o.doc.netns_path == ns.netns_path)
            {
                return Err(fail(
                    ERROR_OBJECT_ALREADY_EXISTS,
                    format!("a namespace for {} exists", ns.netns_path),
                ));
            }
            let spec = NamespaceSpec {
                id: id.clone(),
                netns: ns.netns_path.clone().into(),
                owned: false,
            };
            self.dataplane.check_namespace(&spec).map_err(|e| {
                fail(
                    HResult::ERROR_NOT_FOUND,
                    format!("NetnsPath {}: {e}", ns.netns_path),
                )
            })?;
        }
        st.meta.next_namespace_id += 1;
        ns.namespace_id = st.meta.next_namespace_id;
        ns.id = id.clone();
        if ns.schema_version == Default::default() {
            ns.schema_version = V2_SCHEMA_VERSION;
        }
        let rec = Record {
            doc: ns,
            extra: NamespaceExtra { owned },
        };
        let saved = self
            .persist_meta(&st)
            .and_then(|()| self.persist("namespaces", &id, &rec));
        if let Err(e) = saved {
            if owned {
                let spec = NamespaceSpec {
                    id: id.clone(),
                    netns: rec.doc.netns_path.clone().into(),
                    owned,
                };
                if let Err(undo) = self.dataplane.remove_namespace(&spec) {
                    tracing::error!(error = %undo, namespace = %id, "undo of a namespace failed");
                }
            }
            return Err(e);
        }
        st.namespaces.insert(id.clone(), rec);
        Ok(id)
    }

    pub(super) fn modify_namespace(&self, id: &str, settings: &str) -> Res<()> {
        let req: ModifyNamespaceSettingRequest = decode("namespace modify request", settings)?;
        let raw = req.settings.as_ref().map(|s| s.get()).unwrap_or("{}");
        let mut st = self.lock();
        if !st.namespaces.contains_key(id) {
            return Err(not_found(ObjectKind::Namespace, id));
        }
        match (&req.resource_type, &req.request_type) {
            (NamespaceResourceType::Endpoint, RequestType::Add) => {
                let r: NamespaceEndpointRequest = decode("namespace endpoint request", raw)?;
                self.attach_locked(&mut st, id, &canon_id(&r.endpoint_id)?, &r.interface_name)
            }
            (NamespaceResourceType::Endpoint, RequestType::Remove) => {
                let r: NamespaceEndpointRequest = decode("namespace endpoint request", raw)?;
                let ep = canon_id(&r.endpoint_id)?;
                let rec = st
                    .endpoints
                    .get(&ep)
                    .ok_or_else(|| not_found(ObjectKind::Endpoint, &ep))?;
                if !rec.doc.host_compute_namespace.eq_ignore_ascii_case(id) {
                    return Err(fail(
                        HCN_E_ENDPOINT_NOT_ATTACHED,
                        format!("endpoint {ep} is not in namespace {id}"),
                    ));
                }
                self.detach_locked(&mut st, &ep)
            }
            (NamespaceResourceType::Container, RequestType::Add | RequestType::Remove) => {
                let c: serde_json::Map<String, serde_json::Value> =
                    decode("namespace container request", raw)?;
                let cid = c
                    .get("ContainerId")
                    .or_else(|| c.get("ID"))
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| fail(ERROR_INVALID_PARAMETER, "ContainerId is required"))?
                    .to_string();
                let mut rec = st.namespaces[id].clone();
                let pos = rec.doc.resources.iter().position(|r| {
                    r.resource_type == NamespaceResourceType::Container
                        && r.data
                            .decode::<NamespaceResourceContainer>()
                            .is_ok_and(|d| d.id == cid)
                });
                match (req.request_type == RequestType::Add, pos) {
                    (true, Some(_)) => {
                        return Err(fail(
                            ERROR_OBJECT_ALREADY_EXISTS,
                            format!("container {cid}"),
                        ))
                    }
                    (true, None) => rec.doc.resources.push(NamespaceResource {
                        resource_type: NamespaceResourceType::Container,
                        data: resource_data(&NamespaceResourceContainer { id: cid })?,
                    }),
                    (false, Some(i)) => {
                        rec.doc.resources.remove(i);
                    }
                    (false, None) => {
                        return Err(fail(HResult::ERROR_NOT_FOUND, format!("container {cid}")))
                    }
                }
                self.persist("namespaces", id, &rec)?;
                st.namespaces.insert(id.to_string(), rec);
                Ok(())
            }
            (r, q) => Err(fail(
                HCN_E_REQUEST_UNSUPPORTED,
                format!("namespace modify {r}/{q}"),
            )),
        }
    }

    /// Attaches endpoint `ep` to namespace `ns` (the namespace exists).
    fn attach_locked(&self, st: &mut State, ns: &str, ep: &str, ifname: &str) -> Res<()> {
        let mut erec = st
            .endpoints
            .get(ep)
            .ok_or_else(|| not_found(ObjectKind::Endpoint, ep))?
            .clone();
        if erec.doc.flags & ENDPOINT_FLAG_REMOTE_ENDPOINT != 0 {
            return Err(fail(
                HCN_E_INVALID_REMOTE_ENDPOINT_OPERATION,
                format!("endpoint {ep} is remote"),
            ));
        }
        if erec.doc.host_compute_namespace.eq_ignore_ascii_case(ns) {
            return Err(fail(
                HCN_E_ENDPOINT_ALREADY_ATTACHED,
                format!("endpoint {ep} is already in namespace {ns}"),
            ));
        }
        if !erec.doc.host_compute_namespace.is_empty() {
            return Err(fail(
                HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS,
                format!(
                    "endpoint {ep} is in namespace {}",
                    erec.doc.host_compute_namespace
                ),
            ));
        }
        let mut nrec = st.namespaces[ns].clone();
        let taken: Vec<String> = st
            .endpoints
            .values()
            .filter(|e| e.doc.host_compute_namespace.eq_ignore_ascii_case(ns))
            .map(|e| e.extra.ifname.clone())
            .collect();
        let ifname = if ifname.is_empty() {
            (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !taken.contains(n))
                .unwrap_or_default()
        } else {
            if !valid_ifname(ifname) {
                return Err(fail(
                    ERROR_INVALID_PARAMETER,
                    format!("InterfaceName {ifname:?}"),
                ));
            }
            if taken.iter().any(|t| t == ifname) {
                return Err(fail(
                    ERROR_OBJECT_ALREADY_EXISTS,
                    format!("interface {ifname} exists in namespace {ns}"),
                ));
            }
            ifname.to_string()
        };
        erec.doc.host_compute_namespace = ns.to_string();
        erec.extra.ifname = ifname;
        erec.extra.state = endpoint_state::ATTACHED;
        // The spec of the endpoint as it will be (in the namespace).
        let spec = st.attachment_spec(&self.tag, &erec);
        if let Some(spec) = &spec {
            self.dataplane
                .ensure_attachment(spec)
                .map_err(|e| fail(HCN_E_NAMESPACE_ATTACH_FAILED, e))?;
        }
        nrec.doc.resources.push(NamespaceResource {
            resource_type: NamespaceResourceType::Endpoint,
            data: resource_data(&NamespaceResourceEndpoint { id: ep.to_string() })?,
        });
        let saved = self
            .persist("endpoints", ep, &erec)
            .and_then(|()| self.persist("namespaces", ns, &nrec));
        if let Err(e) = saved {
            if let Some(spec) = &spec {
                if let Err(undo) = self.dataplane.remove_attachment(spec) {
                    tracing::error!(error = %undo, endpoint = %ep, "undo of an attach failed");
                }
            }
            return Err(e);
        }
        st.endpoints.insert(ep.to_string(), erec);
        st.namespaces.insert(ns.to_string(), nrec);
        Ok(())
    }

    /// Detaches endpoint `ep` from its namespace.
    pub(super) fn detach_locked(&self, st: &mut State, ep: &str) -> Res<()> {
        let mut erec = st.endpoints[ep].clone();
        let ns = erec.doc.host_compute_namespace.to_ascii_uppercase();
        if let Some(spec) = st.attachment_spec(&self.tag, &erec) {
            self.dataplane
                .remove_attachment(&spec)
                .map_err(|e| fail(E_FAIL, format!("dataplane: {e}")))?;
        }
        erec.doc.host_compute_namespace.clear();
        erec.extra.ifname.clear();
        erec.extra.state = endpoint_state::DETACHED;
        self.persist("endpoints", ep, &erec)?;
        st.endpoints.insert(ep.to_string(), erec);
        if let Some(mut nrec) = st.namespaces.get(&ns).cloned() {
            nrec.doc.resources.retain(|r| !is_endpoint_resource(r, ep));
            self.persist("namespaces", &ns, &nrec)?;
            st.namespaces.insert(ns, nrec);
        }
        Ok(())
    }

    pub(super) fn delete_namespace(&self, id: &str) -> Res<()> {
        let mut st = self.lock();
        let rec = st
            .namespaces
            .get(id)
            .ok_or_else(|| not_found(ObjectKind::Namespace, id))?
            .clone();
        let attached: Vec<String> = st
            .endpoints
            .iter()
            .filter(|(_, e)| e.doc.host_compute_namespace.eq_ignore_ascii_case(id))
            .map(|(k, _)| k.clone())
            .collect();
        for ep in attached {
            self.detach_locked(&mut st, &ep)?;
        }
        if rec.extra.owned {
            let spec = NamespaceSpec {
                id: id.to_string(),
                netns: rec.doc.netns_path.clone().into(),
                owned: true,
            };
            self.dataplane
                .remove_namespace(&spec)
                .map_err(|e| fail(E_FAIL, format!("remove network namespace: {e}")))?;
        }
        self.unpersist("namespaces", id)?;
        st.namespaces.remove(id);
        Ok(())
    }
}

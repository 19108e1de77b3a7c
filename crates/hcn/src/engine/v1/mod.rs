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
//!
//! This module routes the v1 paths and builds the envelope; the document conversions are in
//! `convert`.

use hcs::HResult;
use serde::Serialize;

use crate::hresult::{ERROR_INVALID_PARAMETER, HCN_E_REQUEST_UNSUPPORTED};
use crate::raw::RawJson;
use crate::schema::*;
use crate::v1::{
    endpoint_state, EndpointAttachDetachRequest, HnsEndpoint, HnsNetwork, MacAddressEntry,
    MacAddressList, NamespaceRequest, NamespaceResourceRequest, PolicyList, SystemType,
};

use super::fail::{fail, Fail, Res, E_FAIL};
use super::state::Record;
use super::{canon_id, decode, Engine, ENGINE_VERSION};

mod convert;

use convert::{network_from_v1, network_to_v1, policies_from_v1};

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

fn raw<T: Serialize>(v: &T) -> Res<RawJson> {
    RawJson::from_value(v).map_err(|e| fail(E_FAIL, format!("encode: {e}")))
}

impl Engine {
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

//! The HNS engine: HCN objects kept, validated and allocated as HNS does, answering the
//! [`HcnApi`] calls (v2 entities and v1 `HNSCall` paths over one state) with HNS's HRESULTs
//! and error records.
//!
//! It is OS-free: the kernel side is the [`Dataplane`] it is given, its state optionally
//! persisted under a directory ([`state::Store`]). hnsd serves it over a socket with the
//! netlink/nftables dataplane; tests of other crates run it in process with
//! [`Engine::in_memory`] (no root, no socket):
//!
//! ```
//! let hcn = hcn::engine::Engine::in_memory().client();
//! assert!(hcn.list_networks().unwrap().is_empty());
//! ```
//!
//! Concurrency: one lock over the state serializes mutations (validation needs the whole
//! state: names, addresses, ports), including their dataplane work; callers on many
//! threads are safe. A mutation's changes are committed to the store (one journal record,
//! one `fdatasync`) before it answers, and no call observes them before they are durable.

pub mod dataplane;
mod endpoint;
pub mod fail;
pub mod ipam;
mod loadbalancer;
mod namespace;
mod network;
pub mod overlay;
mod specs;
pub mod state;
pub mod store;
mod v1;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v1;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hcs::HResult;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{CallResult, Handle, HcnApi, ObjectKind};
use crate::hresult::{HCN_E_GUID_CONVERSION_FAILURE, HCN_E_INVALID_JSON};
use crate::schema::{HostComputeQuery, Version};

pub use dataplane::{Dataplane, NullDataplane, RecordingDataplane};
use fail::{fail, Fail, Res, E_FAIL};
use state::State;
use store::Store;

/// The HNS version the engine reports: 15.4, so every feature of the table is on (the
/// control plane accepts them all; which ones have a dataplane is documented in hnsd).
pub const ENGINE_VERSION: Version = Version::new(15, 4);

/// How to build an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the state is persisted (`None`: memory only).
    pub state_dir: Option<PathBuf>,
    /// The kernel side.
    pub dataplane: Arc<dyn Dataplane>,
    /// The prefix of every link this instance creates (`h` + 4 hex digits: unique per
    /// state directory, so instances sharing a network namespace do not collide).
    pub link_tag: String,
}

impl EngineConfig {
    /// A configuration persisting under `state_dir`, with the link tag derived from it.
    pub fn new(state_dir: impl Into<PathBuf>, dataplane: Arc<dyn Dataplane>) -> Self {
        let state_dir = state_dir.into();
        let link_tag = link_tag_for(&state_dir);
        Self {
            state_dir: Some(state_dir),
            dataplane,
            link_tag,
        }
    }
}

/// `h` and 4 hex digits of a hash of `dir`: the link and table tag of the instance that
/// keeps its state there.
pub fn link_tag_for(dir: &std::path::Path) -> String {
    // FNV-1a: stable across runs and releases (std's hasher is not).
    let mut h: u32 = 0x811c_9dc5;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("h{:04x}", h & 0xFFFF)
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    /// Held shared by reads and exclusively by a mutation until it is committed, so reads
    /// see only durable state.
    gate: RwLock<()>,
    state: Mutex<State>,
    store: Option<Store>,
    dataplane: Arc<dyn Dataplane>,
    tag: String,
}

impl Engine {
    /// An engine with no persistence and no dataplane, for tests.
    pub fn in_memory() -> Arc<Self> {
        Self::with_dataplane(Arc::new(NullDataplane))
    }

    /// An engine with no persistence over `dataplane`.
    pub fn with_dataplane(dataplane: Arc<dyn Dataplane>) -> Arc<Self> {
        Arc::new(Self {
            gate: RwLock::new(()),
            state: Mutex::new(State::default()),
            store: None,
            dataplane,
            tag: "h0000".into(),
        })
    }

    /// Opens (or creates) the engine of `config`: loads the persisted objects and
    /// reconciles the dataplane with them.
    pub fn open(config: EngineConfig) -> Result<Arc<Self>, String> {
        let (store, state) = match &config.state_dir {
            Some(dir) => {
                let store = Store::open(dir)?;
                let state = store.load()?;
                (Some(store), state)
            }
            None => (None, State::default()),
        };
        let engine = Arc::new(Self {
            gate: RwLock::new(()),
            state: Mutex::new(state),
            store,
            dataplane: config.dataplane,
            tag: config.link_tag,
        });
        let desired = engine.desired_state();
        engine
            .dataplane
            .reconcile(&desired)
            .map_err(|e| format!("reconcile the dataplane with the state: {e}"))?;
        Ok(engine)
    }

    /// A client of this engine.
    pub fn client(self: &Arc<Self>) -> crate::Hcn {
        crate::Hcn::new(self.clone())
    }

    /// A v1 client of this engine.
    pub fn hns(self: &Arc<Self>) -> crate::v1::Hns {
        crate::v1::Hns::new(self.clone())
    }

    /// The link tag of this instance.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// What the kernel should hold now.
    pub fn desired_state(&self) -> dataplane::DesiredState {
        self.lock().desired(&self.tag)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves state that was valid before the panicking
        // operation changed anything (every change is committed at its end).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs mutation `f` and commits what it changed before anyone sees it. A failed
    /// commit fails the call; the change stays in memory and is written with the next
    /// commit (the store then rewrites the whole state).
    fn mutation<T>(&self, f: impl FnOnce() -> Res<T>) -> Res<T> {
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let out = f();
        if let Some(store) = &self.store {
            let st = self.lock();
            store
                .commit(&st)
                .map_err(|e| fail(E_FAIL, format!("persist: {e}")))?;
        }
        out
    }

    /// Runs read `f` (after any mutation in progress is committed).
    fn reading<T>(&self, f: impl FnOnce() -> Res<T>) -> Res<T> {
        let _gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        f()
    }

    /// Records an object change for the commit of the current mutation.
    fn persist<T: Serialize>(&self, dir: &str, id: &str, record: &T) -> Res<()> {
        match &self.store {
            Some(s) => s
                .put(dir, id, record)
                .map_err(|e| fail(E_FAIL, format!("persist: {e}"))),
            None => Ok(()),
        }
    }

    fn unpersist(&self, dir: &str, id: &str) -> Res<()> {
        match &self.store {
            Some(s) => s
                .remove(dir, id)
                .map_err(|e| fail(E_FAIL, format!("persist: {e}"))),
            None => Ok(()),
        }
    }

    fn persist_meta(&self, st: &State) -> Res<()> {
        match &self.store {
            Some(s) => s
                .put_meta(&st.meta)
                .map_err(|e| fail(E_FAIL, format!("persist: {e}"))),
            None => Ok(()),
        }
    }

    /// Rewrites the nft rules from the state.
    fn sync_rules(&self, st: &State) -> Res<()> {
        self.dataplane
            .sync_rules(&st.rules(&self.tag))
            .map_err(|e| fail(E_FAIL, format!("dataplane rules: {e}")))
    }
}

/// A GUID in the engine's canonical form (upper case, hyphenated).
pub fn canon_id(text: &str) -> Res<String> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| u.hyphenated().to_string().to_ascii_uppercase())
        .map_err(|e| {
            fail(
                HCN_E_GUID_CONVERSION_FAILURE,
                format!("{:?}: {e}", crate::schema::echo(text)),
            )
        })
}

/// The id of a new object: `id` unless it is the zero GUID, else a new one.
fn new_id(id: &str) -> Res<String> {
    let id = canon_id(id)?;
    if id == crate::ZERO_GUID {
        Ok(uuid::Uuid::new_v4()
            .hyphenated()
            .to_string()
            .to_ascii_uppercase())
    } else {
        Ok(id)
    }
}

/// Decodes a document sent by a client: `HCN_E_INVALID_JSON` naming the error.
fn decode<T: DeserializeOwned>(what: &str, text: &str) -> Res<T> {
    serde_json::from_str(text).map_err(|e| fail(HCN_E_INVALID_JSON, format!("{what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Res<String> {
    serde_json::to_string(value).map_err(|e| fail(E_FAIL, format!("encode: {e}")))
}

/// A parsed query filter: `{key: value}` pairs every listed object must match.
fn parse_query(query: &str) -> Res<Vec<(String, serde_json::Value)>> {
    if query.trim().is_empty() {
        return Ok(Vec::new());
    }
    let q: HostComputeQuery = decode("query", query)?;
    if q.filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let filter: serde_json::Map<String, serde_json::Value> = decode("query filter", &q.filter)?;
    Ok(filter.into_iter().collect())
}

/// Whether `doc` matches every filter pair: strings compare case-insensitively (GUIDs come
/// in either case); `VirtualNetwork` (the v1 name) matches `HostComputeNetwork`.
fn matches(doc: &serde_json::Value, filter: &[(String, serde_json::Value)]) -> bool {
    filter.iter().all(|(k, want)| {
        let got = doc.get(k).or_else(|| {
            (k == "VirtualNetwork")
                .then(|| doc.get("HostComputeNetwork"))
                .flatten()
        });
        match (got, want) {
            (Some(serde_json::Value::String(a)), serde_json::Value::String(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            (Some(a), b) => a == b,
            (None, _) => false,
        }
    })
}

/// The not-found error of a kind.
fn not_found(kind: ObjectKind, id: &str) -> Fail {
    let hr = match kind {
        ObjectKind::Network => crate::hresult::HCN_E_NETWORK_NOT_FOUND,
        ObjectKind::Endpoint => crate::hresult::HCN_E_ENDPOINT_NOT_FOUND,
        _ => HResult::ERROR_NOT_FOUND,
    };
    fail(hr, format!("{} {id}", kind.noun()))
}

impl Engine {
    fn exists(&self, st: &State, kind: ObjectKind, id: &str) -> bool {
        match kind {
            ObjectKind::Network => st.networks.contains_key(id),
            ObjectKind::Endpoint => st.endpoints.contains_key(id),
            ObjectKind::Namespace => st.namespaces.contains_key(id),
            ObjectKind::LoadBalancer => st.load_balancers.contains_key(id),
            ObjectKind::Route => st.routes.contains_key(id),
        }
    }

    fn docs(&self, st: &State, kind: ObjectKind) -> Res<Vec<(String, serde_json::Value)>> {
        fn all<D: Serialize, X>(
            m: &std::collections::BTreeMap<String, state::Record<D, X>>,
        ) -> Res<Vec<(String, serde_json::Value)>> {
            m.iter()
                .map(|(id, r)| {
                    serde_json::to_value(&r.doc)
                        .map(|v| (id.clone(), v))
                        .map_err(|e| fail(E_FAIL, format!("encode: {e}")))
                })
                .collect()
        }
        match kind {
            ObjectKind::Network => all(&st.networks),
            ObjectKind::Endpoint => all(&st.endpoints),
            ObjectKind::Namespace => all(&st.namespaces),
            ObjectKind::LoadBalancer => all(&st.load_balancers),
            ObjectKind::Route => all(&st.routes),
        }
    }

    fn do_enumerate(&self, kind: ObjectKind, query: &str) -> Res<String> {
        let filter = parse_query(query)?;
        let st = self.lock();
        let ids: Vec<String> = self
            .docs(&st, kind)?
            .into_iter()
            .filter(|(_, doc)| matches(doc, &filter))
            .map(|(id, _)| id)
            .collect();
        encode(&ids)
    }

    fn do_query(&self, kind: ObjectKind, id: &str, query: &str) -> Res<String> {
        parse_query(query)?;
        let id = canon_id(id)?;
        let st = self.lock();
        let doc = match kind {
            ObjectKind::Network => st.networks.get(&id).map(|r| encode(&r.doc)),
            ObjectKind::Endpoint => st.endpoints.get(&id).map(|r| encode(&r.doc)),
            ObjectKind::Namespace => st.namespaces.get(&id).map(|r| encode(&r.doc)),
            ObjectKind::LoadBalancer => st.load_balancers.get(&id).map(|r| encode(&r.doc)),
            ObjectKind::Route => st.routes.get(&id).map(|r| encode(&r.doc)),
        };
        doc.unwrap_or_else(|| Err(not_found(kind, &id)))
    }

    fn do_open(&self, kind: ObjectKind, id: &str) -> Res<Handle> {
        let id = canon_id(id)?;
        let st = self.lock();
        if !self.exists(&st, kind, &id) {
            return Err(not_found(kind, &id));
        }
        Ok(Handle { kind, id, raw: 0 })
    }

    fn do_create(
        &self,
        kind: ObjectKind,
        id: &str,
        settings: &str,
        network: Option<&Handle>,
    ) -> Res<Handle> {
        let id = new_id(id)?;
        let id = match kind {
            ObjectKind::Network => self.create_network(id, settings)?,
            ObjectKind::Endpoint => {
                let net = match network {
                    Some(h) if h.kind == ObjectKind::Network => Some(canon_id(&h.id)?),
                    Some(h) => {
                        return Err(fail(
                            crate::hresult::HCN_E_INVALID_NETWORK,
                            format!("handle of a {} is not a network", h.kind.noun()),
                        ))
                    }
                    None => None,
                };
                self.create_endpoint(id, settings, net)?
            }
            ObjectKind::Namespace => self.create_namespace(id, settings)?,
            ObjectKind::LoadBalancer => self.create_load_balancer(id, settings)?,
            ObjectKind::Route => self.create_route(id, settings)?,
        };
        Ok(Handle { kind, id, raw: 0 })
    }

    fn do_modify(&self, handle: &Handle, settings: &str) -> Res<()> {
        let id = canon_id(&handle.id)?;
        match handle.kind {
            ObjectKind::Network => self.modify_network(&id, settings),
            ObjectKind::Endpoint => self.modify_endpoint(&id, settings),
            ObjectKind::Namespace => self.modify_namespace(&id, settings),
            ObjectKind::LoadBalancer => self.modify_load_balancer(&id, settings),
            ObjectKind::Route => self.modify_route(&id, settings),
        }
    }

    fn do_delete(&self, kind: ObjectKind, id: &str) -> Res<()> {
        let id = canon_id(id)?;
        match kind {
            ObjectKind::Network => self.delete_network(&id),
            ObjectKind::Endpoint => self.delete_endpoint(&id),
            ObjectKind::Namespace => self.delete_namespace(&id),
            ObjectKind::LoadBalancer => self.delete_load_balancer(&id),
            ObjectKind::Route => self.delete_route(&id),
        }
    }
}

impl HcnApi for Engine {
    fn enumerate(&self, kind: ObjectKind, query: &str) -> CallResult<String> {
        Ok(self.reading(|| self.do_enumerate(kind, query))?)
    }

    fn create(
        &self,
        kind: ObjectKind,
        id: &str,
        settings: &str,
        network: Option<&Handle>,
    ) -> CallResult<Handle> {
        Ok(self.mutation(|| self.do_create(kind, id, settings, network))?)
    }

    fn open(&self, kind: ObjectKind, id: &str) -> CallResult<Handle> {
        Ok(self.reading(|| self.do_open(kind, id))?)
    }

    fn modify(&self, handle: &Handle, settings: &str) -> CallResult<()> {
        Ok(self.mutation(|| self.do_modify(handle, settings))?)
    }

    fn query(&self, handle: &Handle, query: &str) -> CallResult<String> {
        Ok(self.reading(|| self.do_query(handle.kind, &handle.id, query))?)
    }

    fn delete(&self, kind: ObjectKind, id: &str) -> CallResult<()> {
        Ok(self.mutation(|| self.do_delete(kind, id))?)
    }

    /// Closing a handle releases nothing in the engine (its handles are ids); an id that is
    /// not a GUID is still an error.
    fn close(&self, handle: &Handle) -> CallResult<()> {
        canon_id(&handle.id)?;
        Ok(())
    }

    fn hns_call(&self, method: &str, path: &str, request: &str) -> CallResult<String> {
        if method.eq_ignore_ascii_case("GET") {
            return Ok(self.reading(|| Ok(self.v1_call(method, path, request)))?);
        }
        // The v1 envelope carries the call's own failure; a failed commit is the call's.
        Ok(self.mutation(|| Ok(self.v1_call(method, path, request)))?)
    }
}

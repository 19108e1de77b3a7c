//! The engine's objects and their persistence.
//!
//! Each object is one file `<state>/<kind>/<ID>.json` holding its document and the
//! engine's private bookkeeping ([`Record`]); `<state>/meta.json` holds the counters. Every
//! write is atomic (a temporary file, `fsync`, `rename`, `fsync` of the directory), so a
//! crash leaves either the old or the new object, never a torn one, and a restart loses
//! nothing that was acknowledged.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::schema::{
    HostComputeEndpoint, HostComputeLoadBalancer, HostComputeNamespace, HostComputeNetwork,
    HostComputeRoute,
};
use crate::v1::PolicyList;

/// What the engine keeps about an endpoint beyond its document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointExtra {
    /// Unique small number naming its host veth.
    pub index: u32,
    /// The interface name inside its namespace.
    pub ifname: String,
    /// v1: containers attached (`SharedContainers`).
    pub shared_containers: Vec<String>,
    /// v1: `State`.
    pub state: u32,
}

/// What the engine keeps about a network beyond its document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkExtra {
    /// Unique small number naming its bridge.
    pub index: u32,
}

/// What the engine keeps about a namespace beyond its document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceExtra {
    /// Whether hnsd created its network namespace (and removes it).
    pub owned: bool,
}

/// One persisted object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record<D, X> {
    /// The document, as queries return it.
    #[serde(rename = "Document")]
    pub doc: D,
    /// The engine's bookkeeping.
    #[serde(rename = "Extra", default)]
    pub extra: X,
}

/// Counters that must survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// The next link index.
    #[serde(rename = "NextIndex")]
    pub next_index: u32,
    /// The next namespace (compartment) id.
    #[serde(rename = "NextNamespaceId")]
    pub next_namespace_id: u32,
    /// v1 accelnet management MACs.
    #[serde(rename = "AccelnetMacs")]
    pub accelnet_macs: Vec<String>,
}

/// Every object, by upper-case GUID.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Networks.
    pub networks: BTreeMap<String, Record<HostComputeNetwork, NetworkExtra>>,
    /// Endpoints.
    pub endpoints: BTreeMap<String, Record<HostComputeEndpoint, EndpointExtra>>,
    /// Namespaces.
    pub namespaces: BTreeMap<String, Record<HostComputeNamespace, NamespaceExtra>>,
    /// Load balancers.
    pub load_balancers: BTreeMap<String, Record<HostComputeLoadBalancer, ()>>,
    /// SDN routes.
    pub routes: BTreeMap<String, Record<HostComputeRoute, ()>>,
    /// v1 policy lists.
    pub policy_lists: BTreeMap<String, Record<PolicyList, ()>>,
    /// Counters.
    pub meta: Meta,
}

/// The directories of the kinds.
pub const DIRS: [&str; 6] = [
    "networks",
    "endpoints",
    "namespaces",
    "loadbalancers",
    "routes",
    "policylists",
];

/// Where the state lives.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

impl Store {
    /// A store under `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, String> {
        let root = root.into();
        for d in DIRS {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| io_err("create", &p, e))?;
        }
        Ok(Self { root })
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), String> {
        let dir = path.parent().unwrap_or(&self.root);
        let tmp = path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err("rename", path, e))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("sync", dir, e))
    }

    /// Writes one object.
    pub fn put<T: Serialize>(&self, dir: &str, id: &str, record: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| format!("encode {id}: {e}"))?;
        self.write_atomic(&self.root.join(dir).join(format!("{id}.json")), &bytes)
    }

    /// Removes one object (absent is fine).
    pub fn remove(&self, dir: &str, id: &str) -> Result<(), String> {
        let p = self.root.join(dir).join(format!("{id}.json"));
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p, e)),
        }
    }

    /// Writes the counters.
    pub fn put_meta(&self, meta: &Meta) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(meta).map_err(|e| format!("encode meta: {e}"))?;
        self.write_atomic(&self.root.join("meta.json"), &bytes)
    }

    fn load_dir<T: DeserializeOwned>(&self, dir: &str) -> Result<BTreeMap<String, T>, String> {
        let mut out = BTreeMap::new();
        let p = self.root.join(dir);
        for entry in fs::read_dir(&p).map_err(|e| io_err("read", &p, e))? {
            let entry = entry.map_err(|e| io_err("read", &p, e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue; // a temporary file a crash left behind: its rename never happened
            }
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| format!("bad state file name {}", path.display()))?
                .to_string();
            let bytes = fs::read(&path).map_err(|e| io_err("read", &path, e))?;
            let rec = serde_json::from_slice(&bytes)
                .map_err(|e| format!("corrupt state file {}: {e}", path.display()))?;
            out.insert(id, rec);
        }
        Ok(out)
    }

    /// Loads every object.
    pub fn load(&self) -> Result<State, String> {
        let meta_path = self.root.join("meta.json");
        let meta = match fs::read(&meta_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| format!("corrupt state file {}: {e}", meta_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Meta::default(),
            Err(e) => return Err(io_err("read", &meta_path, e)),
        };
        Ok(State {
            networks: self.load_dir("networks")?,
            endpoints: self.load_dir("endpoints")?,
            namespaces: self.load_dir("namespaces")?,
            load_balancers: self.load_dir("loadbalancers")?,
            routes: self.load_dir("routes")?,
            policy_lists: self.load_dir("policylists")?,
            meta,
        })
    }
}

//! Sandboxes: something that runs a GCS and hands out a bridge to it (the utility VM).
//!
//! On Windows the sandbox is an HCS utility VM ([`hcs`], whose logic is OS-neutral and
//! tested against the `hcs` crate's simulators); on Linux the `local` sandbox runs the
//! `gcs` binary as a child process, which is enough to run real containers with runc.

#[cfg(target_os = "linux")]
mod agent;
pub mod hcs;
#[cfg(target_os = "linux")]
pub mod host_mounts;
#[cfg(target_os = "linux")]
pub mod local;
#[cfg(target_os = "linux")]
pub mod state_dir;
#[cfg(target_os = "linux")]
pub mod vm;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bridge::messages::{CombinedLayers, ContainerConfig, GcsCapabilities, Layer, SchemaVersion};
use bridge::RawJson;

use crate::client::BridgeClient;
use crate::container::GcsContainer;
use crate::error::{Error, Result};

/// How a utility VM gets its root filesystem (the QEMU VM's boot modes, `vm::boot`; an HCS
/// utility VM takes `initrd` and `vhd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootMode {
    /// The whole root filesystem is the initrd (`initrd.img`).
    #[default]
    Initrd,
    /// `rootfs.vhd` is the read-only root disk.
    Vhd,
    /// `rootfs-verity.vhd` is the root disk, checked by dm-verity.
    VerityVhd,
}

impl std::str::FromStr for BootMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "initrd" => Ok(BootMode::Initrd),
            "vhd" => Ok(BootMode::Vhd),
            "verity-vhd" => Ok(BootMode::VerityVhd),
            o => Err(Error::InvalidArgument(format!(
                "unknown boot mode {o:?}: use initrd, vhd or verity-vhd"
            ))),
        }
    }
}

impl std::fmt::Display for BootMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BootMode::Initrd => "initrd",
            BootMode::Vhd => "vhd",
            BootMode::VerityVhd => "verity-vhd",
        })
    }
}

/// What hosts a sandbox's GCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxKind {
    /// The GCS as a child process of the host, in its own namespaces (Linux).
    Local,
    /// The GCS inside a utility VM booted by QEMU (Linux host).
    Vm,
    /// The GCS inside an HCS utility VM (Windows host).
    Hcs,
}

impl SandboxKind {
    /// The name used in options, flags and logs (`local`, `vm`, `hcs`).
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Local => "local",
            SandboxKind::Vm => "vm",
            SandboxKind::Hcs => "hcs",
        }
    }
}

impl std::str::FromStr for SandboxKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(SandboxKind::Local),
            "vm" => Ok(SandboxKind::Vm),
            "hcs" => Ok(SandboxKind::Hcs),
            other => Err(Error::InvalidArgument(format!(
                "unknown sandbox kind {other:?}: use local, vm or hcs"
            ))),
        }
    }
}

impl std::fmt::Display for SandboxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A running utility VM, or what stands in for one: one GCS, reached over one bridge, that
/// hosts any number of containers. The shim and `runhcs` drive every kind through this
/// interface; what differs is how the GCS is started and how layers reach it.
#[async_trait]
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// What hosts this sandbox's GCS.
    fn kind(&self) -> SandboxKind;

    /// The bridge to the GCS.
    fn client(&self) -> &BridgeClient;

    /// What the GCS announced at negotiation.
    fn capabilities(&self) -> &GcsCapabilities;

    /// The host directory holding the sandbox's state (sockets, logs).
    fn state_dir(&self) -> PathBuf;

    /// The last lines of the GCS's log (and the VM's console, where there is one), for error
    /// messages.
    fn log_tail(&self) -> String;

    /// Builds the root filesystem of container `id` from the host directories `layers`
    /// (in overlayfs `lowerdir` order: the topmost first; a writable scratch on top) and creates the container from the OCI
    /// `spec` (prepared for the guest with [`prepare_spec`]).
    async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
    ) -> Result<GcsContainer>;

    /// Like [`Sandbox::create_container`], but the container's writable layer is the host
    /// directory `scratch` (the overlay's `upper` and `work` are made in it) instead of one
    /// of the sandbox's own, so the container's changes stay where the caller keeps them
    /// (the shim: containerd's snapshot). A sandbox whose GCS cannot write to host
    /// directories refuses it.
    async fn create_container_on_scratch(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
        scratch: &Path,
    ) -> Result<GcsContainer> {
        let _ = (id, spec, layers);
        Err(Error::InvalidArgument(format!(
            "the {} sandbox cannot use the host directory {} as a container's scratch",
            self.kind(),
            scratch.display()
        )))
    }

    /// Removes a container's guest state and root filesystem.
    async fn remove_container(&self, container: &GcsContainer) -> Result<()>;

    /// Resizes the utility VM itself (an Update of the task that owns it). A sandbox that
    /// is not such a VM, or cannot resize it, says so ([`Error::Unsupported`]).
    async fn update_vm(&self, resources: &VmResources) -> Result<()> {
        let _ = resources;
        Err(Error::Unsupported(format!(
            "the {} sandbox cannot change its resources",
            self.kind()
        )))
    }

    /// Stops the GCS and removes everything the sandbox made. Safe to call again and after
    /// the GCS (or the VM) died.
    async fn teardown(&self) -> Result<()>;
}

/// Where a container's files live in the guest, as the host lays them out (shim v1 layout:
/// bundle `<root>/<id>`, rootfs `<bundle>/rootfs`, scratch `<bundle>/scratch/<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    /// The OCI bundle directory (`OciBundlePath`).
    pub bundle: PathBuf,
    /// The overlay mount point (`root.path`, `ContainerRootPath`).
    pub rootfs: PathBuf,
    /// The overlay's upper/work parent (`ScratchPath`, `ScratchDirPath`).
    pub scratch: PathBuf,
}

impl ContainerPaths {
    /// The layout for container `id` under `root` (`/run/gcs/c` in a utility VM).
    ///
    /// These are the guest's (Linux) paths whatever the host is: they are joined with `/`,
    /// never with the host's separator (a Windows host's `Path::join` would insert `\`).
    pub fn new(root: &Path, id: &str) -> Self {
        let root = root.display().to_string();
        let bundle = format!("{}/{id}", root.trim_end_matches('/'));
        Self {
            rootfs: PathBuf::from(format!("{bundle}/rootfs")),
            scratch: PathBuf::from(format!("{bundle}/scratch/{id}")),
            bundle: PathBuf::from(bundle),
        }
    }

    /// The CombinedLayers settings that build the rootfs from `layers` (topmost first, as
    /// overlayfs reads `lowerdir`).
    pub fn combined_layers(&self, id: &str, layers: &[PathBuf]) -> CombinedLayers {
        CombinedLayers {
            container_id: id.to_owned(),
            container_root_path: self.rootfs.display().to_string(),
            layers: layers
                .iter()
                .map(|p| Layer {
                    path: p.display().to_string(),
                    ..Default::default()
                })
                .collect(),
            scratch_path: self.scratch.display().to_string(),
        }
    }
}

/// Validates a container id: non-empty, no path separators or dot names, at most 128
/// characters of `[A-Za-z0-9_.-]`, since it becomes a directory name in the guest.
pub fn validate_container_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid container id {id:?}: use 1 to 128 characters of [A-Za-z0-9_.-]"
        )))
    }
}

/// CRI's container type annotation (`sandbox` or `container`).
pub const ANNOTATION_CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// Annotation telling the guest that a CRI sandbox has no pod network for it to set up.
pub const ANNOTATION_SKIP_POD_NETWORKING: &str = "io.microsoft.cri.skip-pod-networking";

/// New resources of a utility VM (the reference's `UtilityVM.Update`), each `None` when
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmResources {
    /// Its memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// Its processors' `Limit` (HCS's ProcessorLimits: 1-10000, per 10000 of all).
    pub processor_limit: Option<u64>,
    /// Its processors' `Weight` (relative share).
    pub processor_weight: Option<u64>,
    /// The host CPU group it runs on (`io.microsoft.virtualmachine.cpugroup.id`).
    pub cpu_group: Option<String>,
}

/// Annotation asking the guest to run a workload privileged (all of its devices).
pub const ANNOTATION_PRIVILEGED: &str = "io.microsoft.virtualmachine.lcow.privileged";

/// Whether an OCI device cgroup rule allows every device (containerd's privileged rule).
fn allows_every_device(rule: &serde_json::Value) -> bool {
    rule.get("allow").and_then(|a| a.as_bool()) == Some(true)
        && rule
            .get("type")
            .and_then(|t| t.as_str())
            .is_none_or(|t| t == "a")
        && rule.get("major").is_none_or(|m| m.is_null())
        && rule.get("minor").is_none_or(|m| m.is_null())
}

/// Prepares an OCI spec the way the host does for LCOW (`createLCOWSpec`): `root.path` is
/// the guest rootfs, hooks are removed (they would run in the guest), `linux.cgroupsPath` is
/// left to the guest (or set to `cgroups_path`: a local sandbox's agent that keeps host
/// cgroup paths, see [`bridge::ext::host_cgroup_path`]), the resources the guest cannot honour
/// are cleared, and `windows` is dropped.
pub fn prepare_spec(
    mut spec: serde_json::Value,
    paths: &ContainerPaths,
    cgroups_path: Option<&str>,
) -> Result<ContainerConfig> {
    let obj = spec
        .as_object_mut()
        .ok_or_else(|| Error::InvalidArgument("the OCI spec is not a JSON object".into()))?;
    if !obj.get("process").is_some_and(|p| p.is_object()) {
        return Err(Error::InvalidArgument(
            "the OCI spec has no process: nothing to run".into(),
        ));
    }
    let root = obj.entry("root").or_insert_with(|| serde_json::json!({}));
    if let Some(root) = root.as_object_mut() {
        root.insert(
            "path".into(),
            serde_json::Value::String(paths.rootfs.display().to_string()),
        );
    }
    obj.remove("hooks");
    // Of `windows`, only the network namespace id means something to the GCS (it names the
    // pod network a container gets).
    let namespace = obj
        .get("windows")
        .and_then(|w| w.pointer("/network/networkNamespace"))
        .cloned();
    obj.remove("windows");
    let cri_sandbox = obj
        .get("annotations")
        .and_then(|a| a.get(ANNOTATION_CRI_CONTAINER_TYPE))
        .and_then(|t| t.as_str())
        == Some("sandbox");
    match namespace {
        Some(ns) => {
            obj.insert(
                "windows".into(),
                serde_json::json!({"network": {"networkNamespace": ns}}),
            );
        }
        // The GCS fails a CRI sandbox without an HCN namespace of NICs it was given. A pod
        // here has its network another way (the local sandbox's Linux namespace, or the
        // VM's own for a host-network pod): the GCS is told to go without.
        None if cri_sandbox => {
            let annotations = obj
                .entry("annotations")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.entry(ANNOTATION_SKIP_POD_NETWORKING)
                    .or_insert_with(|| "true".into());
            }
        }
        None => {}
    }
    if let Some(linux) = obj.get_mut("linux").and_then(|l| l.as_object_mut()) {
        linux.insert(
            "cgroupsPath".into(),
            serde_json::Value::String(cgroups_path.unwrap_or_default().to_owned()),
        );
        let mut privileged = false;
        if let Some(res) = linux.get_mut("resources").and_then(|r| r.as_object_mut()) {
            privileged = res
                .get("devices")
                .and_then(|d| d.as_array())
                .is_some_and(|rules| rules.iter().any(allows_every_device));
            for k in ["devices", "pids", "blockIO", "hugepageLimits", "network"] {
                res.remove(k);
            }
        }
        if privileged {
            // The device rules go (they are the host's), but what they said must reach the
            // guest: a Linux CRI's privileged container has a rule allowing every device,
            // LCOW says privileged with an annotation, on which the guest gives the
            // container every device and a device cgroup allowing them.
            let annotations = obj
                .entry("annotations")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.entry(ANNOTATION_PRIVILEGED)
                    .or_insert_with(|| serde_json::Value::String("true".into()));
            }
        }
    }
    let spec = RawJson::from_value(&spec).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(ContainerConfig {
        schema_version: SchemaVersion::V2_1,
        oci_bundle_path: paths.bundle.display().to_string(),
        oci_specification: Some(spec),
        scratch_dir_path: paths.scratch.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(validate_container_id("abc-1.2_3").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_container_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_rule_allowing_every_device_becomes_the_privileged_annotation() {
        let paths = ContainerPaths::new(Path::new("/run/gcs/c"), "c1");
        let spec = |rules: serde_json::Value| {
            serde_json::json!({
                "process": {"args": ["sh"]},
                "annotations": {"a": "b"},
                "linux": {"resources": {"devices": rules}}
            })
        };
        let annotations = |spec| {
            let cfg = prepare_spec(spec, &paths, None).unwrap();
            let out: serde_json::Value = cfg.oci_specification.unwrap().parse().unwrap();
            assert!(out["linux"]["resources"].get("devices").is_none(), "{out}");
            out["annotations"].clone()
        };
        let privileged = spec(serde_json::json!([{"allow": true, "access": "rwm"}]));
        assert_eq!(
            annotations(privileged),
            serde_json::json!({"a": "b", ANNOTATION_PRIVILEGED: "true"})
        );
        // containerd's default rules: deny all, then allow some devices.
        let default = spec(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"}
        ]));
        assert_eq!(annotations(default), serde_json::json!({"a": "b"}));
    }

    #[test]
    fn a_cri_sandbox_without_an_hcn_namespace_tells_the_guest_to_skip_pod_networking() {
        let paths = ContainerPaths::new(Path::new("/run/gcs/c"), "c1");
        let annotations = |spec: serde_json::Value| {
            let cfg = prepare_spec(spec, &paths, None).unwrap();
            let out: serde_json::Value = cfg.oci_specification.unwrap().parse().unwrap();
            out["annotations"].clone()
        };
        let sandbox = |extra: serde_json::Value| {
            let mut s = serde_json::json!({
                "process": {"args": ["pause"]},
                "annotations": {ANNOTATION_CRI_CONTAINER_TYPE: "sandbox"}
            });
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            s
        };
        assert_eq!(
            annotations(sandbox(serde_json::json!({}))),
            serde_json::json!({ANNOTATION_CRI_CONTAINER_TYPE: "sandbox", ANNOTATION_SKIP_POD_NETWORKING: "true"})
        );
        // A pod network the GCS was given NICs for: nothing to skip.
        let with_ns =
            sandbox(serde_json::json!({"windows": {"network": {"networkNamespace": "n1"}}}));
        assert_eq!(
            annotations(with_ns),
            serde_json::json!({ANNOTATION_CRI_CONTAINER_TYPE: "sandbox"})
        );
        // A user's own value stays; workload containers are not touched.
        let mut own = sandbox(serde_json::json!({}));
        own["annotations"][ANNOTATION_SKIP_POD_NETWORKING] = "false".into();
        assert_eq!(annotations(own)[ANNOTATION_SKIP_POD_NETWORKING], "false");
        let workload = serde_json::json!({
            "process": {"args": ["sh"]},
            "annotations": {ANNOTATION_CRI_CONTAINER_TYPE: "container"}
        });
        assert!(annotations(workload)
            .get(ANNOTATION_SKIP_POD_NETWORKING)
            .is_none());
    }

    #[test]
    fn spec_is_prepared_for_the_guest() {
        let paths = ContainerPaths::new(Path::new("/run/gcs/c"), "c1");
        assert_eq!(paths.scratch, Path::new("/run/gcs/c/c1/scratch/c1"));
        let spec = serde_json::json!({
            "ociVersion": "1.1.0",
            "process": {"args": ["sh"]},
            "root": {"path": "rootfs", "readonly": true},
            "hooks": {"prestart": []},
            "windows": {},
            "linux": {"cgroupsPath": "/x", "resources": {"devices": [], "memory": {"limit": 1}}}
        });
        let cfg = prepare_spec(spec, &paths, None).unwrap();
        let out: serde_json::Value = cfg.oci_specification.unwrap().parse().unwrap();
        assert_eq!(out["root"]["path"], "/run/gcs/c/c1/rootfs");
        assert_eq!(out["root"]["readonly"], true);
        assert!(out.get("hooks").is_none() && out.get("windows").is_none());
        assert_eq!(out["linux"]["cgroupsPath"], "");
        assert!(out["linux"]["resources"].get("devices").is_none());
        assert_eq!(out["linux"]["resources"]["memory"]["limit"], 1);
        assert_eq!(cfg.oci_bundle_path, "/run/gcs/c/c1");
        assert!(prepare_spec(serde_json::json!([]), &paths, None).is_err());
        assert!(prepare_spec(serde_json::json!({"ociVersion": "1"}), &paths, None).is_err());
    }

    #[test]
    fn guest_paths_use_slashes_on_every_host() {
        let paths = ContainerPaths::new(Path::new("/run/gcs/c/"), "c1");
        assert_eq!(paths.bundle.to_str(), Some("/run/gcs/c/c1"));
        assert_eq!(paths.rootfs.to_str(), Some("/run/gcs/c/c1/rootfs"));
        assert_eq!(paths.scratch.to_str(), Some("/run/gcs/c/c1/scratch/c1"));
    }

    #[test]
    fn combined_layers_lists_paths_in_order() {
        let paths = ContainerPaths::new(Path::new("/g"), "c");
        let cl = paths.combined_layers("c", &[PathBuf::from("/l0"), PathBuf::from("/l1")]);
        assert_eq!(cl.container_root_path, "/g/c/rootfs");
        assert_eq!(cl.layers[1].path, "/l1");
        assert_eq!(cl.scratch_path, "/g/c/scratch/c");
    }
}

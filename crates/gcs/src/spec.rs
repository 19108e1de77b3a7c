//! Guest-side rewriting of the OCI spec received in a Create (spec §4, `Host.CreateContainer`).
//!
//! The spec is kept as a JSON value so fields this agent does not know pass through to runc
//! untouched.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Annotation naming the CRI container type (`sandbox` or `container`).
pub const ANNOTATION_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// Annotation naming the sandbox of a workload container.
pub const ANNOTATION_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// Annotation setting the size of a workload's `/dev/shm`, in KiB.
pub const ANNOTATION_SHM_SIZE_KB: &str = "io.microsoft.lcow.shm.size-kb";
/// Annotation setting a workload's RLIMIT_CORE as `soft;hard` (the reference's separator).
pub const ANNOTATION_RLIMIT_CORE: &str = "io.microsoft.lcow.rlimitcore";
/// Annotation making a container privileged: all of the guest's devices, and a device cgroup
/// that allows them.
pub const ANNOTATION_PRIVILEGED: &str = "io.microsoft.virtualmachine.lcow.privileged";
/// Annotation asking for host networking.
pub const ANNOTATION_HOST_NETWORK: &str = "io.microsoft.virtualmachine.lcow.hostnetwork";

/// How the container relates to a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A pod sandbox (its own id is the sandbox id).
    Sandbox,
    /// A workload container in the sandbox with this id.
    Workload(String),
    /// A container outside any pod.
    Standalone,
}

/// What the GCS learned from the spec while preparing it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Sandbox, workload or standalone.
    pub role: Role,
    /// `process.terminal`.
    pub terminal: bool,
    /// The HCN namespace id (`windows.network.networkNamespace`), lowercased.
    pub network_namespace: Option<String>,
    /// The container has its own pid namespace (a `pid` entry without a path).
    pub owns_pid_ns: bool,
    /// `linux.cgroupsPath` as set.
    pub cgroups_path: String,
    /// `process.cwd`.
    pub cwd: String,
    /// The file the init's output is also appended to (the tee-log annotations).
    pub tee_log: Option<PathBuf>,
    /// The hugetlbfs mounts a workload's `hugepages://<size>/<path>` sources need (under its
    /// sandbox's `hugepages/`) that do not exist yet; the caller mounts them.
    pub hugepages: Vec<HugePages>,
}

mod mounts;
pub use mounts::HugePages;
use mounts::{apply_tee_log, rewrite_mount_sources, update_block_device_mounts};
pub use mounts::{ANNOTATION_TEE_LOG_DIR_MOUNT, ANNOTATION_TEE_LOG_PATH};

fn annotation<'a>(spec: &'a Value, key: &str) -> Option<&'a str> {
    spec.get("annotations")?.get(key)?.as_str()
}

/// Classifies the container from its annotations.
pub fn role(spec: &Value) -> Role {
    match annotation(spec, ANNOTATION_CONTAINER_TYPE) {
        Some("sandbox") => Role::Sandbox,
        Some("container") => match annotation(spec, ANNOTATION_SANDBOX_ID) {
            Some(sb) if !sb.is_empty() => Role::Workload(sb.to_string()),
            _ => Role::Standalone,
        },
        _ => Role::Standalone,
    }
}

/// Rewrites `spec` for container `id` with bundle `bundle`, writing the bundle's
/// `hostname`/`hosts`/`resolv.conf` for sandbox and standalone containers.
pub fn prepare(id: &str, bundle: &Path, spec: &mut Value, resolv_conf: &str) -> Result<Prepared> {
    if !spec.is_object() {
        return Err(Error::Invalid("OciSpecification must be an object".into()));
    }
    let role = role(spec);
    let network_namespace = spec
        .pointer("/windows/network/networkNamespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let terminal = spec
        .pointer("/process/terminal")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let cwd = spec
        .pointer("/process/cwd")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();

    let mut hugepages = Vec::new();
    let cgroups_path = match &role {
        Role::Workload(sb) if !is_plain_name(sb) => {
            return Err(Error::Invalid(format!("invalid sandbox id {sb:?}")));
        }
        Role::Workload(sb) => {
            if spec
                .get("hostname")
                .and_then(Value::as_str)
                .is_some_and(|h| !h.is_empty())
            {
                return Err(Error::Invalid(
                    "workload container must not set hostname (it shares the sandbox's)".into(),
                ));
            }
            hugepages = rewrite_mount_sources(spec, &sandbox_root(bundle, sb))?;
            update_block_device_mounts(spec)?;
            add_sandbox_file_mounts(spec, &sandbox_root(bundle, sb));
            apply_workload_annotations(spec)?;
            format!("/pods/{sb}/{id}")
        }
        Role::Sandbox | Role::Standalone => {
            write_network_files(bundle, spec, resolv_conf)?;
            add_sandbox_file_mounts(spec, bundle);
            format!("/pods/{id}")
        }
    };

    let root = match &role {
        Role::Workload(sb) => sandbox_root(bundle, sb),
        _ => bundle.to_path_buf(),
    };
    let tee_log = apply_tee_log(spec, &root)?;

    // Any container may be privileged: a pod's workload, and a standalone task too
    // (`ctr run --privileged`).
    if annotation(spec, ANNOTATION_PRIVILEGED) == Some("true") {
        apply_privileged(spec, Path::new("/dev"))?;
    }

    let obj = spec.as_object_mut().expect("checked above");
    obj.insert("windows".into(), Value::Null);
    let linux = obj
        .entry("linux")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::Invalid("linux must be an object".into()))?;
    linux.insert("cgroupsPath".into(), Value::String(cgroups_path.clone()));
    if role == Role::Sandbox {
        // The sandbox's cgroup is the parent of its workloads' (`/pods/<sandbox>/<id>`), and
        // a cgroup's device rules bound its children's: the pause's deny-all rules would keep
        // a privileged workload from the devices its own allow-all rule grants (runc fails
        // writing it). Nothing in the pause's spec says whether the pod is privileged, so
        // the pod-level cgroup allows every device, as kubelet's pod cgroups do. Each
        // workload keeps its own rules on its own cgroup; the pause, which shares the
        // pod-level cgroup, has only runc's default device nodes and runs nothing else.
        let resources = linux
            .entry("resources")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| Error::Invalid("linux.resources must be an object".into()))?;
        resources.insert("devices".into(), json!([{"allow": true, "access": "rwm"}]));
    }
    if annotation(spec, ANNOTATION_HOST_NETWORK) == Some("true") {
        if let Some(ns) = spec
            .pointer_mut("/linux/namespaces")
            .and_then(Value::as_array_mut)
        {
            ns.retain(|n| n.get("type").and_then(Value::as_str) != Some("network"));
        }
    }
    let owns_pid_ns = spec
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.get("type").and_then(Value::as_str) == Some("pid")
                    && n.get("path")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
            })
        });
    Ok(Prepared {
        role,
        terminal,
        network_namespace,
        owns_pid_ns,
        cgroups_path,
        cwd,
        tee_log,
        hugepages,
    })
}

/// Whether `s` can be used as one path component and a runc argument: ASCII letters,
/// digits, `-`, `_`, `.`, and not `.` or `..`.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 1024
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The sandbox root of a workload: a sibling of its bundle named by the sandbox id.
pub fn sandbox_root(bundle: &Path, sandbox_id: &str) -> PathBuf {
    bundle
        .parent()
        .map(|p| p.join(sandbox_id))
        .unwrap_or_else(|| PathBuf::from(sandbox_id))
}

fn has_mount(spec: &Value, destination: &str) -> bool {
    spec.get("mounts")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|m| m.get("destination").and_then(Value::as_str) == Some(destination))
        })
}

fn write_network_files(bundle: &Path, spec: &Value, resolv_conf: &str) -> Result<()> {
    use crate::error::PathContext;
    std::fs::create_dir_all(bundle).with_path("mkdir", bundle)?;
    let hostname = match spec.get("hostname").and_then(Value::as_str) {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
    };
    let hosts = format!(
        "127.0.0.1 localhost\n127.0.0.1 {hostname}\n::1 localhost ip6-localhost ip6-loopback\n"
    );
    for (name, content) in [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", resolv_conf.to_string()),
    ] {
        let p = bundle.join(name);
        std::fs::write(&p, content).with_path("write", &p)?;
    }
    Ok(())
}

/// Bind-mounts `<root>/{hostname,hosts,resolv.conf}` unless the spec already mounts them.
fn add_sandbox_file_mounts(spec: &mut Value, root: &Path) {
    let readonly = spec
        .pointer("/root/readonly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut add = Vec::new();
    for (name, dest) in [
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        let src = root.join(name);
        if has_mount(spec, dest) || !src.exists() {
            continue;
        }
        let mut options = vec!["bind"];
        if readonly {
            options.push("ro");
        }
        add.push(json!({
            "destination": dest,
            "type": "bind",
            "source": src.to_string_lossy(),
            "options": options,
        }));
    }
    if add.is_empty() {
        return;
    }
    let obj = spec.as_object_mut().expect("spec is an object");
    let mounts = obj.entry("mounts").or_insert_with(|| json!([]));
    if let Some(m) = mounts.as_array_mut() {
        m.extend(add);
    }
}

/// `io.microsoft.lcow.shm.size-kb` and `io.microsoft.lcow.rlimitcore`.
fn apply_workload_annotations(spec: &mut Value) -> Result<()> {
    if let Some(v) = annotation(spec, ANNOTATION_SHM_SIZE_KB).map(str::to_string) {
        let kb: u64 = v.parse().ok().filter(|k| *k > 0).ok_or_else(|| {
            Error::Invalid(format!("{ANNOTATION_SHM_SIZE_KB}: invalid size {v:?}"))
        })?;
        let shm = spec
            .get_mut("mounts")
            .and_then(Value::as_array_mut)
            .and_then(|m| {
                m.iter_mut()
                    .find(|m| m.get("destination").and_then(Value::as_str) == Some("/dev/shm"))
            })
            .ok_or_else(|| {
                Error::Invalid(format!("{ANNOTATION_SHM_SIZE_KB}: no /dev/shm mount"))
            })?;
        let mut opts: Vec<Value> = shm
            .get("options")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        opts.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("size=")));
        opts.push(Value::String(format!("size={kb}k")));
        shm["options"] = Value::Array(opts);
    }
    if let Some(v) = annotation(spec, ANNOTATION_RLIMIT_CORE).map(str::to_string) {
        let parsed = v
            .split_once(';')
            .and_then(|(s, h)| Some((s.parse::<u64>().ok()?, h.parse::<u64>().ok()?)));
        let Some((soft, hard)) = parsed else {
            return Err(Error::Invalid(format!(
                "{ANNOTATION_RLIMIT_CORE}: expected soft;hard, got {v:?}"
            )));
        };
        let process = spec
            .as_object_mut()
            .expect("spec is an object")
            .entry("process")
            .or_insert_with(|| json!({}));
        let Some(process) = process.as_object_mut() else {
            return Err(Error::Invalid("process must be an object".into()));
        };
        let rl = process.entry("rlimits").or_insert_with(|| json!([]));
        if let Some(rl) = rl.as_array_mut() {
            rl.retain(|r| r.get("type").and_then(Value::as_str) != Some("RLIMIT_CORE"));
            rl.push(json!({"type": "RLIMIT_CORE", "hard": hard, "soft": soft}));
        }
    }
    Ok(())
}

/// Gives a privileged container every device node under `dev` (those the spec does not list
/// already) and a device cgroup allowing all devices. The host cleared the spec's device
/// rules (they describe the host's devices, not the guest's); without the allow-all rule,
/// runc's default rules would deny the container even the devices it lists.
fn apply_privileged(spec: &mut Value, dev: &Path) -> Result<()> {
    let linux = spec
        .as_object_mut()
        .expect("spec is an object")
        .entry("linux")
        .or_insert_with(|| json!({}));
    let Some(linux) = linux.as_object_mut() else {
        return Err(Error::Invalid("linux must be an object".into()));
    };
    let devices = linux.entry("devices").or_insert_with(|| json!([]));
    let Some(devices) = devices.as_array_mut() else {
        return Err(Error::Invalid("linux.devices must be an array".into()));
    };
    let listed: std::collections::HashSet<String> = devices
        .iter()
        .filter_map(|d| d.get("path").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let mut found = Vec::new();
    device_nodes(dev, &mut found)?;
    devices.extend(
        found
            .into_iter()
            .filter(|d| d["path"].as_str().is_some_and(|p| !listed.contains(p))),
    );
    let resources = linux.entry("resources").or_insert_with(|| json!({}));
    let Some(resources) = resources.as_object_mut() else {
        return Err(Error::Invalid("linux.resources must be an object".into()));
    };
    resources.insert("devices".into(), json!([{"allow": true, "access": "rwm"}]));
    Ok(())
}

/// The character and block device nodes under `dir`, recursively, as OCI devices; as runc's
/// host device list, without the pseudo-terminal, shm, mqueue and fd directories and
/// `/dev/console` (the container gets its own).
fn device_nodes(dir: &Path, out: &mut Vec<Value>) -> Result<()> {
    use crate::error::PathContext;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for entry in std::fs::read_dir(dir).with_path("read dir", dir)? {
        let entry = entry.with_path("read dir", dir)?;
        let path = entry.path();
        let name = entry.file_name();
        // A node can go between listing and stat (a hot-unplugged device): skip it.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_path("stat", &path),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            if !matches!(name.to_str(), Some("pts" | "shm" | "mqueue" | "fd")) {
                device_nodes(&path, out)?;
            }
            continue;
        }
        let type_ = if kind.is_char_device() {
            "c"
        } else if kind.is_block_device() {
            "b"
        } else {
            continue;
        };
        if name == "console" {
            continue;
        }
        let rdev = meta.rdev();
        out.push(json!({
            "path": path.to_string_lossy(),
            "type": type_,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "fileMode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_gets_pods_cgroup_and_network_files() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("c1");
        let mut spec = json!({
            "process": {"cwd": "/w", "terminal": true},
            "hostname": "demo",
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
            "windows": {"network": {"networkNamespace": "ABC"}}
        });
        let p = prepare("c1", &bundle, &mut spec, "nameserver 1.1.1.1\n").unwrap();
        assert_eq!(p.role, Role::Standalone);
        assert_eq!(p.cgroups_path, "/pods/c1");
        assert!(p.owns_pid_ns && p.terminal);
        assert_eq!(p.network_namespace.as_deref(), Some("abc"));
        assert_eq!(spec["windows"], Value::Null);
        assert_eq!(spec["linux"]["cgroupsPath"], "/pods/c1");
        assert_eq!(spec["mounts"].as_array().unwrap().len(), 3);
        assert_eq!(
            std::fs::read_to_string(bundle.join("hostname")).unwrap(),
            "demo\n"
        );
    }

    #[test]
    fn sandbox_cgroup_allows_the_devices_its_workloads_may_have() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = json!({
            "annotations": {"io.kubernetes.cri.container-type": "sandbox"},
            "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}
        });
        let p = prepare("sb", &dir.path().join("sb"), &mut spec, "").unwrap();
        assert_eq!(p.role, Role::Sandbox);
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
    }

    #[test]
    fn privileged_workload_gets_the_guests_devices_and_an_allow_all_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = json!({
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-id": "sb",
                ANNOTATION_PRIVILEGED: "true",
            },
            "linux": {"devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]}
        });
        prepare("c1", &dir.path().join("c1"), &mut spec, "").unwrap();
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
        let devices = spec["linux"]["devices"].as_array().unwrap();
        let null: Vec<_> = devices
            .iter()
            .filter(|d| d["path"] == "/dev/null")
            .collect();
        assert_eq!(null.len(), 1, "listed twice: {devices:?}");
        let zero = devices.iter().find(|d| d["path"] == "/dev/zero").unwrap();
        assert_eq!(
            (&zero["type"], &zero["major"], &zero["minor"]),
            (&json!("c"), &json!(1), &json!(5))
        );
        assert!(!devices.iter().any(|d| d["path"] == "/dev/console"));

        // A standalone task (no CRI annotations) too.
        let mut spec = json!({"annotations": {ANNOTATION_PRIVILEGED: "true"}});
        prepare("t1", &dir.path().join("t1"), &mut spec, "").unwrap();
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );

        // Not privileged: the devices and rules are left alone.
        let mut spec = json!({
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.sandbox-id": "sb",
            },
        });
        prepare("c2", &dir.path().join("c2"), &mut spec, "").unwrap();
        assert!(spec["linux"].get("devices").is_none(), "{spec}");
        assert!(spec["linux"].get("resources").is_none(), "{spec}");
    }

    #[test]
    fn workload_rewrites_sources_and_refuses_escape() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("w1");
        let mut spec = json!({
            "annotations": {ANNOTATION_CONTAINER_TYPE: "container", ANNOTATION_SANDBOX_ID: "sb"},
            "mounts": [{"destination": "/d", "source": "sandbox://x/y"}, {"destination": "/u", "source": "uvm:///run/z"}]
        });
        let p = prepare("w1", &bundle, &mut spec, "").unwrap();
        assert_eq!(p.role, Role::Workload("sb".into()));
        assert_eq!(p.cgroups_path, "/pods/sb/w1");
        assert!(!p.owns_pid_ns);
        let src = spec["mounts"][0]["source"].as_str().unwrap();
        assert!(src.ends_with("sb/sandboxMounts/x/y"), "{src}");
        assert_eq!(spec["mounts"][1]["source"], "/run/z");
        let mut annotated = json!({
            "annotations": {
                ANNOTATION_CONTAINER_TYPE: "container", ANNOTATION_SANDBOX_ID: "sb",
                ANNOTATION_SHM_SIZE_KB: "2048", ANNOTATION_RLIMIT_CORE: "10;20"
            },
            "mounts": [{"destination": "/dev/shm", "type": "tmpfs", "options": ["nosuid", "size=65536k"]}]
        });
        prepare("w4", &bundle, &mut annotated, "").unwrap();
        assert_eq!(
            annotated["mounts"][0]["options"],
            json!(["nosuid", "size=2048k"])
        );
        assert_eq!(
            annotated["process"]["rlimits"],
            json!([{"type": "RLIMIT_CORE", "hard": 20, "soft": 10}])
        );
        annotated["annotations"][ANNOTATION_RLIMIT_CORE] = "bad".into();
        assert!(prepare("w5", &bundle, &mut annotated, "").is_err());
        let mut evil = json!({
            "annotations": {ANNOTATION_CONTAINER_TYPE: "container", ANNOTATION_SANDBOX_ID: "../../etc"}
        });
        assert!(prepare("w3", &bundle, &mut evil, "").is_err());
        let mut bad = json!({
            "annotations": {ANNOTATION_CONTAINER_TYPE: "container", ANNOTATION_SANDBOX_ID: "sb"},
            "mounts": [{"destination": "/d", "source": "sandbox://../../etc"}]
        });
        assert!(prepare("w2", &bundle, &mut bad, "").is_err());
    }
}

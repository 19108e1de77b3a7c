//! The mount sources and destinations of a workload that name places in its sandbox or
//! the utility VM (spec §4 step 4): `sandbox://`, `sandbox-tmp://`, `hugepages://`,
//! `uvm://` sources and `blockdev://` destinations.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// A hugetlbfs mount to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugePages {
    /// Where (under the sandbox's `hugepages/`).
    pub path: PathBuf,
    /// The page size, as the source names it (`2M`, `1G`): the `pagesize=` option.
    pub page_size: String,
}

/// Rewrites `sandbox://`, `sandbox-tmp://`, `hugepages://` and `uvm://` mount sources of a
/// workload; returns the hugetlbfs mounts to make (those whose directory is new, as the
/// reference mounts only then).
pub(super) fn rewrite_mount_sources(
    spec: &mut Value,
    sandbox_root: &Path,
) -> Result<Vec<HugePages>> {
    let mut hugepages = Vec::new();
    let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) else {
        return Ok(hugepages);
    };
    for m in mounts {
        let Some(src) = m.get("source").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        let new = if let Some(rest) = src.strip_prefix("sandbox://") {
            Some(checked_join(&sandbox_root.join("sandboxMounts"), rest)?)
        } else if let Some(rest) = src.strip_prefix("sandbox-tmp://") {
            Some(checked_join(
                &sandbox_root.join("sandboxTmpfsMounts"),
                rest,
            )?)
        } else if let Some(rest) = src.strip_prefix("uvm://") {
            Some(PathBuf::from(rest))
        } else if let Some(rest) = src.strip_prefix("hugepages://") {
            let path = checked_join(&sandbox_root.join("hugepages"), rest)?;
            let page_size = rest.split('/').next().unwrap_or_default();
            // It becomes a mount option: a size such as 2M or 1G, nothing else.
            if page_size.is_empty()
                || page_size.len() > 16
                || !page_size.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(Error::Invalid(format!(
                    "hugepages mount {src}: {page_size:?} is not a page size"
                )));
            }
            if !path.exists() {
                hugepages.push(HugePages {
                    path: path.clone(),
                    page_size: page_size.to_owned(),
                });
            }
            Some(path)
        } else {
            None
        };
        if let Some(p) = new {
            if src.starts_with("sandbox") || src.starts_with("hugepages") {
                use crate::error::PathContext;
                std::fs::create_dir_all(&p).with_path("mkdir", &p)?;
            }
            m["source"] = Value::String(p.to_string_lossy().into_owned());
        }
    }
    Ok(hugepages)
}

/// `blockdev://<path>` destinations (a block device mapped into the VM, whose SCSI mount
/// left a symlink to its node as the source): the destination loses its prefix and the
/// container's device cgroup allows the device, read-only (`r`) when the mount is `ro`,
/// else `rwm` (the reference's updateBlockDeviceMounts).
pub(super) fn update_block_device_mounts(spec: &mut Value) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let mut rules = Vec::new();
    for m in mounts {
        let Some(dest) = m.get("destination").and_then(Value::as_str) else {
            continue;
        };
        let Some(stripped) = dest.strip_prefix("blockdev://").map(str::to_owned) else {
            continue;
        };
        let source = m.get("source").and_then(Value::as_str).unwrap_or_default();
        let link = Path::new(source);
        let target = std::fs::read_link(link)
            .map_err(|e| Error::Invalid(format!("failed to readlink {source}: {e}")))?;
        // A relative link is relative to its own directory.
        let target = link.parent().unwrap_or(Path::new("/")).join(target);
        let meta = std::fs::metadata(&target).map_err(|e| {
            Error::Invalid(format!(
                "failed to get device from path {}: {e}",
                target.display()
            ))
        })?;
        let kind = if meta.file_type().is_block_device() {
            "b"
        } else if meta.file_type().is_char_device() {
            "c"
        } else {
            return Err(Error::Invalid(format!(
                "failed to get device from path {}: not a device node",
                target.display()
            )));
        };
        let read_only = m
            .get("options")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|o| o.as_str() == Some("ro")));
        rules.push(json!({
            "allow": true,
            "type": kind,
            "major": libc::major(meta.rdev()),
            "minor": libc::minor(meta.rdev()),
            "access": if read_only { "r" } else { "rwm" },
        }));
        m["destination"] = Value::String(stripped);
    }
    if rules.is_empty() {
        return Ok(());
    }
    let devices = spec
        .as_object_mut()
        .ok_or_else(|| Error::Invalid("the spec must be an object".into()))?
        .entry("linux")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::Invalid("linux must be an object".into()))?
        .entry("resources")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::Invalid("linux.resources must be an object".into()))?
        .entry("devices")
        .or_insert_with(|| json!([]));
    match devices.as_array_mut() {
        Some(d) => d.extend(rules),
        None => {
            return Err(Error::Invalid(
                "linux.resources.devices must be an array".into(),
            ))
        }
    }
    Ok(())
}

/// `io.microsoft.container.lcow.tee-log-dir-mount`: the sandbox's `logs/` is bind-mounted
/// at that path in the container.
pub const ANNOTATION_TEE_LOG_DIR_MOUNT: &str = "io.microsoft.container.lcow.tee-log-dir-mount";
/// `io.microsoft.container.lcow.tee-log-path`: the init's output is also appended to this
/// file under the sandbox's `logs/`.
pub const ANNOTATION_TEE_LOG_PATH: &str = "io.microsoft.container.lcow.tee-log-path";

/// The tee-log annotations of any container (spec §4 step 6) against `root`, the sandbox
/// root (a workload's sandbox's, else the container's own bundle): adds the `logs/` mount
/// and returns the tee log file, confined to `logs/`, its directory made.
pub(super) fn apply_tee_log(spec: &mut Value, root: &Path) -> Result<Option<PathBuf>> {
    use crate::error::PathContext;
    let logs = root.join("logs");
    let get = |spec: &Value, key: &str| {
        spec.pointer("/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(dest) = get(spec, ANNOTATION_TEE_LOG_DIR_MOUNT) {
        std::fs::create_dir_all(&logs).with_path("mkdir", &logs)?;
        let mount = json!({
            "destination": dest,
            "type": "bind",
            "source": logs.to_string_lossy(),
            "options": ["bind"],
        });
        let obj = spec
            .as_object_mut()
            .ok_or_else(|| Error::Invalid("the spec must be an object".into()))?;
        match obj
            .entry("mounts")
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            Some(m) => m.push(mount),
            None => return Err(Error::Invalid("mounts must be an array".into())),
        }
    }
    let Some(rel) = get(spec, ANNOTATION_TEE_LOG_PATH) else {
        return Ok(None);
    };
    let path = checked_join(&logs, &rel).map_err(|_| {
        Error::Invalid(format!(
            "log path {rel} is not within the sandbox's log dir"
        ))
    })?;
    let Some(dir) = path.parent().filter(|_| path != logs) else {
        return Err(Error::Invalid(format!("log path {rel:?} names no file")));
    };
    std::fs::create_dir_all(dir).with_path("mkdir", dir)?;
    Ok(Some(path))
}

/// Joins a relative path from a request under `base`, refusing to leave it.
fn checked_join(base: &Path, rel: &str) -> Result<PathBuf> {
    let mut out = base.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "mount source {rel} escapes {}",
                    base.display()
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    #[test]
    fn tee_log_annotations_mount_the_logs_and_name_a_file_inside_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = json!({"annotations": {
            ANNOTATION_TEE_LOG_DIR_MOUNT: "/var/log/pod",
            ANNOTATION_TEE_LOG_PATH: "app/c1.log",
        }});
        let path = apply_tee_log(&mut spec, dir.path()).unwrap();
        let logs = dir.path().join("logs");
        assert_eq!(path, Some(logs.join("app/c1.log")));
        assert!(logs.join("app").is_dir());
        assert_eq!(
            spec["mounts"],
            json!([{"destination": "/var/log/pod", "type": "bind",
                    "source": logs.to_string_lossy(), "options": ["bind"]}])
        );
        assert_eq!(apply_tee_log(&mut json!({}), dir.path()).unwrap(), None);
        for bad in ["../escape.log", "a/../../x", "", "."] {
            let mut spec = json!({"annotations": {ANNOTATION_TEE_LOG_PATH: bad}});
            let r = apply_tee_log(&mut spec, dir.path());
            assert!(bad.is_empty() || r.is_err(), "{bad}: {r:?}");
        }
    }

    #[test]
    fn a_blockdev_destination_becomes_a_device_rule_and_a_plain_destination() {
        let dir = tempfile::tempdir().unwrap();
        // The SCSI mount's symlink to the device node (a character device stands in for
        // the block device a test cannot make).
        let link = dir.path().join("disk");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let mut spec = json!({
            "mounts": [
                {"destination": "blockdev:///dev/xvdb", "source": link.to_string_lossy(),
                 "type": "bind", "options": ["bind", "ro"]},
                {"destination": "/data", "source": "/x", "type": "bind"}
            ],
            "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}
        });
        update_block_device_mounts(&mut spec).unwrap();
        assert_eq!(spec["mounts"][0]["destination"], "/dev/xvdb");
        assert_eq!(spec["mounts"][1]["destination"], "/data");
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}
            ])
        );
        // Not a symlink, or not to a device: a clear error.
        for source in [dir.path().to_path_buf(), {
            let l = dir.path().join("file");
            std::os::unix::fs::symlink(dir.path(), &l).unwrap();
            l
        }] {
            let mut spec = json!({"mounts": [
                {"destination": "blockdev:///d", "source": source.to_string_lossy()}
            ]});
            let e = update_block_device_mounts(&mut spec)
                .unwrap_err()
                .to_string();
            assert!(e.contains("readlink") || e.contains("not a device"), "{e}");
        }
    }

    #[test]
    fn hugepages_sources_name_a_mount_under_the_sandbox_and_a_plain_page_size() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("w1");
        let workload = |source: &str| {
            json!({
                "annotations": {ANNOTATION_CONTAINER_TYPE: "container", ANNOTATION_SANDBOX_ID: "sb"},
                "mounts": [{"destination": "/hp", "type": "bind", "source": source}]
            })
        };
        let mut spec = workload("hugepages://2M/a/b");
        let p = prepare("w1", &bundle, &mut spec, "").unwrap();
        let path = dir.path().join("sb/hugepages/2M/a/b");
        assert_eq!(spec["mounts"][0]["source"], path.to_string_lossy().as_ref());
        assert_eq!(
            p.hugepages,
            [HugePages {
                path: path.clone(),
                page_size: "2M".into()
            }]
        );
        assert!(path.is_dir());
        // A second workload on the same source finds it made: nothing more to mount.
        let mut again = workload("hugepages://2M/a/b");
        assert!(prepare("w2", &dir.path().join("w2"), &mut again, "")
            .unwrap()
            .hugepages
            .is_empty());
        // The size becomes a mount option; a path may not climb out.
        for bad in [
            "hugepages://",
            "hugepages://2M,uid=0/x",
            "hugepages://../x",
            "hugepages://2M/../../x",
        ] {
            let mut spec = workload(bad);
            assert!(
                prepare("w3", &dir.path().join("w3"), &mut spec, "").is_err(),
                "{bad}"
            );
        }
    }
}

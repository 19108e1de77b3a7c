//! Host directories and files that containers bind-mount, shared with the guest over
//! virtio-9p (QEMU's 9p server).
//!
//! In a Hyper-V utility VM the reference serves a container's host bind mounts as plan9
//! shares. Here QEMU exports one directory per sandbox, `<state>/shares`, under the tag
//! [`TAG`]; the guest's init mounts it at [`GUEST_ROOT`] at boot. For each host bind mount
//! of a container the host bind-mounts the source at `shares/<container>/<n>` (read-only
//! when the mount asks for it, so the guest cannot write through a read-only share) and the
//! spec's source becomes `/run/hostshares/<container>/<n>`: the GCS then binds a guest
//! path as it would in any utility VM. The share holds only what containers asked for.
//!
//! The host mounts are removed with the container, and all of them before the sandbox's
//! state directory is deleted: the deletion must never reach into a host directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::Value;

use crate::error::{Error, Result};

/// The virtio-9p mount tag of the shares directory.
pub const TAG: &str = "hcsshim-shares";
/// Where the guest's init mounts the shares.
pub const GUEST_ROOT: &str = "/run/hostshares";
/// The shares directory's name in the state directory.
pub const DIR: &str = "shares";

/// Whether a mount of an OCI spec binds a host path.
fn host_bind(m: &Value) -> Option<&str> {
    let bind = m.get("type").and_then(Value::as_str) == Some("bind")
        || options(m).any(|o| matches!(o, "bind" | "rbind"));
    let source = m.get("source").and_then(Value::as_str)?;
    (bind && source.starts_with('/')).then_some(source)
}

fn options(m: &Value) -> impl Iterator<Item = &str> {
    m.get("options")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The host side of the shares of one sandbox.
#[derive(Debug)]
pub struct Shares {
    root: PathBuf,
    /// The host mount points of each container, in creation order.
    mounts: BTreeMap<String, Vec<PathBuf>>,
}

impl Shares {
    /// The shares of a sandbox whose shares directory (made by the sandbox, mode 0700) is
    /// `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            mounts: BTreeMap::new(),
        }
    }

    /// Shares the sources of container `id`'s host bind mounts and points the spec's
    /// mounts at their guest paths. On failure what was shared for `id` is removed.
    pub fn share(&mut self, id: &str, spec: &mut Value) -> Result<()> {
        let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        if self.mounts.contains_key(id) {
            return Err(Error::AlreadyExists(format!("shares of {id}")));
        }
        self.mounts.insert(id.to_owned(), Vec::new());
        let dir = self.root.join(id);
        let mut r = Ok(());
        for (n, m) in mounts.iter_mut().enumerate() {
            let Some(source) = host_bind(m).map(PathBuf::from) else {
                continue;
            };
            let read_only = options(m).any(|o| o == "ro");
            let target = dir.join(n.to_string());
            r = self.bind(id, &source, &target, read_only);
            if r.is_err() {
                break;
            }
            m["source"] = Value::String(format!("{GUEST_ROOT}/{id}/{n}"));
        }
        if let Err(e) = r {
            if let Err(e2) = self.release(id) {
                tracing::warn!(error = %e2, id, "shares not removed after a failed share");
            }
            return Err(e);
        }
        Ok(())
    }

    fn bind(&mut self, id: &str, source: &Path, target: &Path, read_only: bool) -> Result<()> {
        let meta = std::fs::metadata(source).map_err(|e| {
            Error::InvalidArgument(format!("bind mount source {}: {e}", source.display()))
        })?;
        let parent = target.parent().expect("a share has a parent");
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
        let made = if meta.is_dir() {
            std::fs::create_dir(target)
        } else {
            std::fs::File::create(target).map(drop)
        };
        made.map_err(|e| Error::io(format!("create {}", target.display()), e))?;
        let recorded = self.mounts.get_mut(id).expect("inserted by share");
        recorded.push(target.to_path_buf());
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            Error::io(
                format!("bind {} at {}", source.display(), target.display()),
                e.into(),
            )
        })?;
        if read_only {
            // A bind mount takes MS_RDONLY only on a remount of itself.
            mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|e| {
                Error::io(
                    format!("make the share {} read-only", target.display()),
                    e.into(),
                )
            })?;
        }
        Ok(())
    }

    /// Removes container `id`'s shares: unmounts each (detached, so a guest still holding
    /// a file open does not keep the host busy) and removes the mount points.
    pub fn release(&mut self, id: &str) -> Result<()> {
        let Some(targets) = self.mounts.remove(id) else {
            return Ok(());
        };
        let mut first = None;
        for t in targets.iter().rev() {
            if let Err(e) = unmount_and_remove(t) {
                first.get_or_insert(e);
            }
        }
        if first.is_none() {
            let dir = self.root.join(id);
            if let Err(e) = std::fs::remove_dir(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    first = Some(Error::io(format!("remove {}", dir.display()), e));
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Removes every container's shares (teardown).
    pub fn release_all(&mut self) -> Result<()> {
        let ids: Vec<String> = self.mounts.keys().cloned().collect();
        let mut first = None;
        for id in ids {
            if let Err(e) = self.release(&id) {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn unmount_and_remove(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (the bind never happened).
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::io(format!("unmount {}", target.display()), e.into()));
        }
    }
    let removed = if target.is_dir() {
        std::fs::remove_dir(target)
    } else {
        std::fs::remove_file(target)
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", target.display()), e))
        }
        _ => Ok(()),
    }
}

/// Whether anything is mounted at or below `dir`.
pub fn has_mounts_under(dir: &Path) -> Result<bool> {
    Ok(!crate::sandbox::state_dir::mounts_under(dir)?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_host_binds_are_shared() {
        assert_eq!(
            host_bind(&json!({"type": "bind", "source": "/a", "destination": "/x"})),
            Some("/a")
        );
        assert_eq!(
            host_bind(&json!({"type": "none", "source": "/a", "options": ["rbind", "ro"]})),
            Some("/a")
        );
        for m in [
            json!({"type": "tmpfs", "source": "tmpfs", "destination": "/t"}),
            json!({"type": "bind", "source": "sandbox:///x", "destination": "/x"}),
            json!({"type": "proc", "source": "proc", "destination": "/proc"}),
        ] {
            assert_eq!(host_bind(&m), None, "{m}");
        }
    }

    #[test]
    fn a_missing_source_is_refused_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut shares = Shares::new(dir.path().join(DIR));
        let mut spec = json!({"mounts": [
            {"type": "bind", "source": "/does/not/exist", "destination": "/x", "options": ["rbind"]}
        ]});
        let e = shares.share("c1", &mut spec).unwrap_err().to_string();
        assert!(e.contains("/does/not/exist"), "{e}");
        assert_eq!(spec["mounts"][0]["source"], "/does/not/exist");
        assert!(shares.mounts.is_empty());
        assert!(!dir.path().join(DIR).join("c1").exists());
    }

    /// As root (CI): a read-only share cannot be written, a writable one shows the guest's
    /// writes on the host, and release leaves no mount and no mount point.
    #[test]
    fn shares_are_bind_mounts_removed_with_the_container() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to mount");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), "host").unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "one file").unwrap();
        let root = dir.path().join(DIR);
        std::fs::create_dir(&root).unwrap();
        let mut shares = Shares::new(root.clone());
        let mut spec = json!({"mounts": [
            {"type": "proc", "source": "proc", "destination": "/proc"},
            {"type": "bind", "source": src, "destination": "/ro", "options": ["rbind", "ro"]},
            {"type": "bind", "source": src, "destination": "/rw", "options": ["rbind", "rw"]},
            {"type": "bind", "source": file, "destination": "/etc/f", "options": ["bind"]},
        ]});
        shares.share("c1", &mut spec).unwrap();
        assert_eq!(spec["mounts"][0]["source"], "proc");
        assert_eq!(spec["mounts"][1]["source"], format!("{GUEST_ROOT}/c1/1"));
        assert_eq!(spec["mounts"][3]["source"], format!("{GUEST_ROOT}/c1/3"));
        assert_eq!(
            std::fs::read_to_string(root.join("c1/1/f")).unwrap(),
            "host"
        );
        let ro = std::fs::write(root.join("c1/1/g"), "x").unwrap_err();
        assert_eq!(ro.raw_os_error(), Some(libc::EROFS), "{ro}");
        std::fs::write(root.join("c1/2/g"), "guest").unwrap();
        assert_eq!(std::fs::read_to_string(src.join("g")).unwrap(), "guest");
        assert_eq!(
            std::fs::read_to_string(root.join("c1/3")).unwrap(),
            "one file"
        );
        assert!(has_mounts_under(&root).unwrap());
        shares.release_all().unwrap();
        assert!(!has_mounts_under(&root).unwrap());
        assert!(!root.join("c1").exists());
        // The host's files are untouched.
        assert_eq!(std::fs::read_to_string(src.join("f")).unwrap(), "host");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "one file");
    }
}

//! The bind-mount sources of a local sandbox's containers, as the host has them when the
//! container is created.
//!
//! The agent's mount namespace is a copy of the host's taken when the sandbox started. On a
//! host whose `/` is a shared mount (systemd's default) later host mounts propagate into it;
//! where `/` is private they do not, and a volume whose source gained a mount since (a
//! tmpfs under a host path, a disk mounted later) would show the directory beneath it. runc
//! on the host binds what is there at creation, and so does this: each bind source is
//! cloned on the host (`open_tree` with `OPEN_TREE_CLONE | AT_RECURSIVE`, which keeps the
//! source's propagation peers, so HostToContainer and Bidirectional volumes still work),
//! attached in the agent's namespace under the container's bundle (`move_mount`), and the
//! spec's mount names that copy. Nothing is mounted in the host's namespace: when the agent
//! dies its namespace, and these mounts with it, goes.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use serde_json::Value;

use crate::{Error, Result};

/// The bundle's subdirectory holding the copies (one entry per bind mount, by index).
pub const HOST_MOUNTS_DIR: &str = "host-mounts";

/// Whether an OCI mount is a bind mount (`type` bind, or a `bind`/`rbind` option).
fn is_bind(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("bind")
        || m.get("options").and_then(Value::as_array).is_some_and(|o| {
            o.iter()
                .any(|o| matches!(o.as_str(), Some("bind" | "rbind")))
        })
}

/// The bind mounts of `spec` to copy: (index in `mounts`, source). Sources that are not
/// absolute, do not exist (runc reports them) or lie in the sandbox's own state dir (the
/// agent has those already) are left alone.
fn bind_sources(spec: &Value, state_dir: &Path) -> Vec<(usize, PathBuf)> {
    let Some(mounts) = spec.get("mounts").and_then(Value::as_array) else {
        return Vec::new();
    };
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| is_bind(m))
        .filter_map(|(i, m)| Some((i, PathBuf::from(m.get("source")?.as_str()?))))
        .filter(|(_, s)| s.is_absolute() && !s.starts_with(state_dir) && s.exists())
        .collect()
}

/// Runs `f` on a thread of its own that has entered the mount namespace of process `pid`
/// (a thread may only do so once it no longer shares its file system attributes).
fn in_mount_ns<T: Send>(pid: u32, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let ns = File::open(&ns_path).map_err(|e| Error::io(format!("open {ns_path}"), e))?;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("agent-mount-ns".into())
            .spawn_scoped(s, move || {
                nix::sched::unshare(CloneFlags::CLONE_FS)
                    .map_err(|e| Error::io("unshare CLONE_FS", e.into()))?;
                nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS).map_err(|e| {
                    Error::io(format!("enter the mount namespace {ns_path}"), e.into())
                })?;
                f()
            })
            .map_err(|e| Error::io("spawn a thread for the agent's mount namespace", e))?
            .join()
            .unwrap_or_else(|_| Err(Error::Sandbox("the mount namespace thread panicked".into())))
    })
}

/// Copies the bind-mount sources of `spec` into the mount namespace of the agent (`pid`)
/// under `bundle`/[`HOST_MOUNTS_DIR`] and points the spec's mounts at the copies
/// ([`detach`] undoes it). On failure nothing is left attached.
pub fn attach(spec: &mut Value, bundle: &Path, state_dir: &Path, pid: u32) -> Result<()> {
    let sources = bind_sources(spec, state_dir);
    if sources.is_empty() {
        return Ok(());
    }
    let dir = bundle.join(HOST_MOUNTS_DIR);
    std::fs::create_dir(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    // Cloned here, in the host's namespace: that is the view the spec's paths mean.
    let mut trees: Vec<(usize, OwnedFd, PathBuf)> = Vec::with_capacity(sources.len());
    for (i, source) in sources {
        let tree = rustix::mount::open_tree(
            rustix::fs::CWD,
            &source,
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(|e| {
            Error::io(
                format!("clone the mount tree of {}", source.display()),
                e.into(),
            )
        })?;
        // The host and the agent see the same bundle directory: the mount point is made
        // here, of the source's kind (a file is bound onto a file).
        let target = dir.join(i.to_string());
        let made = if source.is_dir() {
            std::fs::create_dir(&target)
        } else {
            File::create(&target).map(drop)
        };
        made.map_err(|e| Error::io(format!("create {}", target.display()), e))?;
        trees.push((i, tree, target));
    }
    let attached = in_mount_ns(pid, || {
        let mut done = Vec::new();
        for (_, tree, target) in &trees {
            let moved = rustix::mount::move_mount(
                tree,
                "",
                rustix::fs::CWD,
                target,
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            );
            if let Err(e) = moved {
                unmount_all(&done);
                return Err(Error::io(
                    format!("attach {} in the agent's namespace", target.display()),
                    e.into(),
                ));
            }
            done.push(target.clone());
        }
        Ok(())
    });
    attached?;
    if let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) {
        for (i, _, target) in &trees {
            if let Some(m) = mounts.get_mut(*i) {
                m["source"] = Value::String(target.display().to_string());
            }
        }
    }
    Ok(())
}

/// Lazily unmounts `targets` in the current namespace (one not mounted is skipped);
/// failures are logged (the namespace drops them when the agent ends).
fn unmount_all(targets: &[PathBuf]) {
    for t in targets {
        if let Err(e) = super::state_dir::unmount_detach(t) {
            tracing::warn!(target = %t.display(), error = %e, "unmounting a volume copy failed");
        }
    }
}

/// Undoes [`attach`] for the container of `bundle`: unmounts its copies in the agent's
/// namespace. An agent that is gone took its namespace, and the copies, with it.
pub fn detach(bundle: &Path, pid: u32) -> Result<()> {
    let dir = bundle.join(HOST_MOUNTS_DIR);
    let targets: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
    };
    if targets.is_empty() || !Path::new(&format!("/proc/{pid}/ns/mnt")).exists() {
        return Ok(());
    }
    in_mount_ns(pid, || {
        unmount_all(&targets);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_existing_absolute_bind_sources_outside_the_state_dir_are_copied() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        std::fs::create_dir_all(state.join("x")).unwrap();
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let spec = serde_json::json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/a", "type": "bind", "source": src},
            {"destination": "/b", "source": src, "options": ["rbind", "ro"]},
            {"destination": "/c", "type": "none", "source": src, "options": ["bind"]},
            {"destination": "/d", "type": "bind", "source": "relative"},
            {"destination": "/e", "type": "bind", "source": d.path().join("missing")},
            {"destination": "/f", "type": "bind", "source": state.join("x")},
            {"destination": "/g", "type": "tmpfs", "source": src},
        ]});
        let got: Vec<usize> = bind_sources(&spec, &state)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(got, [1, 2, 3]);
        assert!(bind_sources(&serde_json::json!({}), &state).is_empty());
    }
}

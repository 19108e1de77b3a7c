//! Network namespaces: named ones (a bind mount of a namespace file, as `ip netns add`
//! makes), and running code inside one.
//!
//! A thread can enter a network namespace (`setns`) without affecting the rest of the
//! process; sockets it opens (netlink, TCP) and processes it spawns (`nft`) live there. Every
//! helper here does its namespace work on a thread of its own, so no other thread's
//! namespace ever changes.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// `NSFS_MAGIC`: the file system type of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Runs `f` on a new thread inside the network namespace `path`.
pub fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let ns = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let shown = path.display().to_string();
    std::thread::spawn(move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {shown}: {e}"))?;
        f()
    })
    .join()
    .map_err(|_| "a network namespace thread panicked".to_string())?
}

/// Enters the network namespace `path` on the calling thread (for threads that serve one
/// namespace for their whole life).
pub fn enter(path: &Path) -> Result<(), String> {
    let ns = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {}: {e}", path.display()))
}

/// Whether `path` is a namespace file.
pub fn is_netns(path: &Path) -> Result<(), String> {
    let f = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let st =
        nix::sys::statfs::fstatfs(&f).map_err(|e| format!("statfs {}: {e}", path.display()))?;
    if st.filesystem_type().0 as i64 == NSFS_MAGIC {
        Ok(())
    } else {
        Err(format!("{} is not a namespace file", path.display()))
    }
}

/// Creates a new network namespace and pins it at `path` (a bind mount over a new file).
pub fn create_named(path: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let target = path.to_path_buf();
    let made = std::thread::spawn(move || -> Result<(), String> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare: {e}"))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind {}: {e}", target.display()))
    })
    .join()
    .map_err(|_| "a network namespace thread panicked".to_string())?;
    if let Err(e) = made {
        // The file was created above and is not a mount point: remove it again.
        if let Err(rm) = std::fs::remove_file(path) {
            tracing::warn!(error = %rm, path = %path.display(), "removing a namespace file failed");
        }
        return Err(e);
    }
    // Bring up loopback: containers expect it.
    in_netns(path, crate::dataplane::netlink::set_lo_up)?;
    Ok(path.to_path_buf())
}

/// Unpins and removes a named network namespace (absent is fine).
pub fn remove_named(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Ok(());
    }
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {} // EINVAL: not a mount point (anymore)
        Err(e) => return Err(format!("unmount {}: {e}", path.display())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", path.display())),
    }
}

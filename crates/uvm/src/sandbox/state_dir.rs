//! Removing a sandbox's state directory without ever reaching through a mount in it.
//!
//! A state directory can hold mount points: the local sandbox's private `c/`, and a VM
//! sandbox's shares, which are bind mounts of host directories (a container's volumes). A
//! recursive delete that crossed one would empty a host directory. So every mount at or
//! below the directory is detached first (deepest first), and the delete is refused if
//! anything is still mounted there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The mount points at or below `dir` (from `/proc/self/mountinfo`), deepest first.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches the mount at `path`; `false` if nothing was mounted there.
pub fn unmount_detach(path: &Path) -> Result<bool> {
    use rustix::io::Errno;
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOENT) => Ok(false),
        Err(e) => Err(Error::io(format!("unmount {}", path.display()), e.into())),
    }
}

/// Detaches every mount at or below `dir`, then removes the tree; refuses (leaving the
/// directory) if a mount could not be detached.
pub fn remove_state_dir(dir: &Path) -> Result<()> {
    for m in mounts_under(dir)? {
        unmount_detach(&m)?;
    }
    let left = mounts_under(dir)?;
    if !left.is_empty() {
        return Err(Error::Sandbox(format!(
            "{} still has mounts in it ({}): left in place",
            dir.display(),
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut last = None;
    for _ in 0..20 {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // A namespace still being torn down can keep a mount busy for a moment.
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::io(
        format!("remove {}", dir.display()),
        last.unwrap_or_else(|| std::io::Error::other("unknown")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_octal(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape_octal(r"/plain"), "/plain");
        assert_eq!(unescape_octal(r"/end\04"), r"/end\04");
    }

    /// As root (CI): a state dir with a bind mount of a host directory in it is removed
    /// and the host directory keeps its files.
    #[test]
    fn a_bind_mounted_host_directory_survives_the_removal() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to mount");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("precious"), "keep me").unwrap();
        let state = tmp.path().join("state");
        let share = state.join("shares/c1/0");
        std::fs::create_dir_all(&share).unwrap();
        nix::mount::mount(
            Some(&host),
            &share,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        assert_eq!(mounts_under(&state).unwrap(), [share]);
        remove_state_dir(&state).unwrap();
        assert!(!state.exists());
        assert_eq!(
            std::fs::read_to_string(host.join("precious")).unwrap(),
            "keep me"
        );
    }
}

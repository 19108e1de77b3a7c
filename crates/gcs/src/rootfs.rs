//! Paths inside a container's root filesystem, resolved the way the container will see them.
//!
//! The image is untrusted: a `..` or a symlink in it (absolute or relative) must not lead the
//! agent, which runs with the utility VM's view of the file system, to create or read files
//! outside the rootfs. Every lookup here goes through `openat2(2)` with `RESOLVE_IN_ROOT`, so
//! the kernel resolves `..` and symlinks as if the rootfs were `/`, and with
//! `RESOLVE_NO_MAGICLINKS` so that `/proc/<pid>/fd`-style links cannot jump out either.
//! Directories are created one component at a time with `mkdirat(2)` in the directory the
//! previous lookup returned.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

/// The components of `path` (absolute or not, as the container sees it) after a lexical
/// clean: `.` dropped, `..` removing the previous component and stopping at the root.
fn clean(path: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn join(components: &[OsString]) -> PathBuf {
    if components.is_empty() {
        return PathBuf::from(".");
    }
    components.iter().collect()
}

/// `openat2(dir, rel, flags)` resolved inside `dir` as the root.
fn open_in(dir: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    // openat2 refuses flags that do not apply (EINVAL): O_PATH takes only a few.
    let extra = if flags.contains(OFlag::O_PATH) {
        OFlag::O_CLOEXEC
    } else {
        OFlag::O_CLOEXEC | OFlag::O_NOCTTY
    };
    let open = || {
        rustix::fs::openat2(
            dir,
            rel,
            OFlags::from_bits_retain((flags | extra).bits() as u32),
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    };
    // EAGAIN: a mount or rename elsewhere on the system raced a `..` of the walk, and the
    // kernel could not prove it stayed inside; openat2(2) says to retry. Bounded, so a
    // system that keeps mounting cannot hold a request forever.
    let mut tries = 0;
    loop {
        match open() {
            Err(e) if e == rustix::io::Errno::AGAIN && tries < OPENAT2_RETRIES => tries += 1,
            r => return r.map_err(|e| Errno::from_raw(e.raw_os_error())),
        }
    }
}

/// How many times a lookup that raced a mount or rename is tried again.
const OPENAT2_RETRIES: u32 = 64;

fn open_root(root: &Path) -> Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::path("open the rootfs", root, e.into()))
}

/// The error of `op` on `path` in the rootfs, failing at its prefix `at` with `e`.
fn in_root_error(op: &'static str, root: &Path, path: &str, at: &Path, e: Errno) -> Error {
    let what = match e {
        Errno::ENOSYS => {
            return Error::Invalid(format!(
                "{op} {path} in the rootfs {}: the kernel lacks openat2(2) (Linux 5.6 or later \
                 is needed to confine paths to the rootfs)",
                root.display()
            ))
        }
        Errno::ENOTDIR => "not a directory".to_string(),
        Errno::ELOOP => "too many levels of symbolic links".to_string(),
        e => std::io::Error::from(e).to_string(),
    };
    Error::Invalid(format!(
        "{op} {path} in the rootfs {}: {}: {what}",
        root.display(),
        at.display()
    ))
}

/// `mkdir -p` of `path` inside the rootfs at `root`, mode 0755 for what it creates. `path`
/// is resolved as the container would resolve it: `..` stops at the rootfs's `/` and
/// symlinks point into the rootfs, never outside.
pub fn mkdir_all(root: &Path, path: &str) -> Result<()> {
    let rootfd = open_root(root)?;
    let comps = clean(path);
    let mut dir = rootfd
        .try_clone()
        .map_err(|e| Error::path("dup the rootfs fd", root, e))?;
    for i in 0..comps.len() {
        let prefix = join(&comps[..=i]);
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        dir = match open_in(&rootfd, &prefix, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                // `dir` is where the previous components led: the missing one goes there.
                let name = comps[i].as_bytes();
                match nix::sys::stat::mkdirat(
                    Some(dir.as_raw_fd()),
                    name,
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(in_root_error("create", root, path, &prefix, e)),
                }
                match open_in(&rootfd, &prefix, flags) {
                    Ok(fd) => fd,
                    // The name exists but leads nowhere: a dangling symlink.
                    Err(Errno::ENOENT) => {
                        return Err(Error::Invalid(format!(
                            "create {path} in the rootfs {}: {}: a dangling symbolic link",
                            root.display(),
                            prefix.display(),
                        )))
                    }
                    Err(e) => return Err(in_root_error("create", root, path, &prefix, e)),
                }
            }
            Err(e) => return Err(in_root_error("create", root, path, &prefix, e)),
        };
    }
    Ok(())
}

/// Reads the regular file `path` inside the rootfs at `root` (resolved as in [`mkdir_all`]),
/// refusing anything larger than `limit` bytes. `Ok(None)` when it does not exist.
pub fn read_file(root: &Path, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    let rootfd = open_root(root)?;
    let rel = join(&clean(path));
    // O_NONBLOCK: opening a FIFO planted in the image must not block the agent.
    let fd = match open_in(&rootfd, &rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(in_root_error("open", root, path, &rel, e)),
    };
    let file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| Error::path("stat", root.join(&rel), e))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{} in the rootfs {} is not a regular file",
            rel.display(),
            root.display()
        )));
    }
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::path("read", root.join(&rel), e))?;
    if data.len() as u64 > limit {
        return Err(Error::Invalid(format!(
            "{} in the rootfs {} is larger than {limit} bytes",
            rel.display(),
            root.display()
        )));
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A rootfs beside a directory it must not reach, with symlinks that try.
    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        symlink("../outside", root.join("rel")).unwrap();
        symlink(&outside, root.join("abs")).unwrap();
        symlink("/nowhere/at/all", root.join("dangling")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        (dir, root, outside)
    }

    #[test]
    fn lookups_through_dot_dot_survive_concurrent_mounts() {
        // Every mount on the system can make openat2 refuse a `..` walk with EAGAIN; the
        // lookups retry. A thread mounts and unmounts a tmpfs meanwhile (root only).
        let (dir, root, outside) = layout();
        // `..` twice from /etc: past the root, which the walk must clamp to it.
        symlink("../..", root.join("etc/up")).unwrap();
        let spot = dir.path().join("spot");
        std::fs::create_dir(&spot).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (stop, spot) = (stop.clone(), spot.clone());
            std::thread::spawn(move || {
                use nix::mount::{mount, umount2, MntFlags, MsFlags};
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let none: Option<&str> = None;
                    if mount(Some("tmpfs"), &spot, Some("tmpfs"), MsFlags::empty(), none).is_err() {
                        return n; // not root: nothing to race with
                    }
                    umount2(&spot, MntFlags::MNT_DETACH).unwrap();
                    n += 1;
                }
                n
            })
        };
        let made = (0..2000).map(|i| mkdir_all(&root, &format!("/etc/up/made/d{i}")));
        let failures: Vec<String> = made
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mounts = churn.join().unwrap();
        assert!(
            failures.is_empty(),
            "{} failed, e.g. {}",
            failures.len(),
            failures[0]
        );
        assert!(root.join("made/d1999").is_dir());
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        eprintln!("{mounts} mounts raced the lookups");
    }

    #[test]
    fn cleans_dots_lexically_and_stops_at_the_root() {
        assert_eq!(clean("/a/./b/../c"), vec!["a", "c"]);
        assert_eq!(clean("../../x"), vec!["x"]);
        assert!(clean("/").is_empty());
    }

    #[test]
    fn creates_nested_directories() {
        let (_d, root, _) = layout();
        mkdir_all(&root, "/work/a/b").unwrap();
        assert!(root.join("work/a/b").is_dir());
        // Existing directories are fine.
        mkdir_all(&root, "/work/a").unwrap();
        mkdir_all(&root, "/").unwrap();
    }

    #[test]
    fn dot_dot_and_symlinks_stay_inside_the_rootfs() {
        let (_d, root, outside) = layout();
        mkdir_all(&root, "/../../outside/x").unwrap();
        assert!(root.join("outside/x").is_dir());
        // A relative symlink's `..` stops at the rootfs's root: rel -> /outside in the rootfs.
        mkdir_all(&root, "/rel/y").unwrap();
        assert!(root.join("outside/y").is_dir());
        // An absolute symlink is taken relative to the rootfs: its target does not exist
        // there, so it is dangling...
        let e = mkdir_all(&root, "/abs/z").unwrap_err().to_string();
        assert!(e.contains("dangling"), "{e}");
        // ...until the rootfs has that path.
        let abs_inside = root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&abs_inside).unwrap();
        mkdir_all(&root, "/abs/z").unwrap();
        assert!(abs_inside.join("z").is_dir());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn errors_name_the_problem() {
        let (_d, root, _) = layout();
        let e = mkdir_all(&root, "/file/sub").unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        let e = mkdir_all(&root, "/dangling/sub").unwrap_err().to_string();
        assert!(e.contains("dangling"), "{e}");
        let e = mkdir_all(&root.join("missing"), "/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("open the rootfs"), "{e}");
    }

    #[test]
    fn reads_files_inside_only() {
        let (_d, root, outside) = layout();
        std::fs::write(root.join("etc/passwd"), b"root:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::write(outside.join("secret"), b"no").unwrap();
        assert_eq!(
            read_file(&root, "/etc/passwd", 100).unwrap().unwrap(),
            b"root:x:0:0::/:/bin/sh\n"
        );
        assert_eq!(read_file(&root, "/rel/secret", 100).unwrap(), None);
        assert_eq!(read_file(&root, "/abs/secret", 100).unwrap(), None);
        assert_eq!(read_file(&root, "/../outside/secret", 100).unwrap(), None);
        let e = read_file(&root, "/etc/passwd", 5).unwrap_err().to_string();
        assert!(e.contains("larger than 5 bytes"), "{e}");
        let e = read_file(&root, "/etc", 5).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let e = read_file(&root, "/fifo", 5).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}

//! The mounts init makes before anything else runs (§5.3 steps 3-6).

use std::path::Path;

use super::cstring;
use crate::error::{Error, Result};

/// One mount of the base sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount {
    /// The source (a filesystem name for virtual filesystems).
    pub source: &'static str,
    /// Where.
    pub target: &'static str,
    /// Filesystem type.
    pub fstype: &'static str,
    /// `MS_*` flags.
    pub flags: libc::c_ulong,
    /// Filesystem options.
    pub data: &'static str,
    /// Whether `EBUSY` (already mounted, e.g. the kernel's own devtmpfs) is fine.
    pub busy_ok: bool,
}

const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// The base mounts, in order.
pub const BASE: &[Mount] = &[
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: libc::MS_NOSUID,
        data: "mode=0755",
        busy_ok: true,
    },
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        busy_ok: false,
    },
    Mount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "mode=0755",
        busy_ok: false,
    },
    Mount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "",
        busy_ok: false,
    },
    Mount {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: "mode=1777",
        busy_ok: false,
    },
    Mount {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
        data: "newinstance,ptmxmode=0666,mode=0620",
        busy_ok: false,
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        busy_ok: false,
    },
];

/// The `/dev` symlinks made after `/proc` is mounted.
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
];

/// mount(2), creating the target directory first.
pub fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    if !Path::new(target).exists() {
        std::fs::create_dir_all(target).map_err(|e| Error::path("mkdir", Path::new(target), e))?;
    }
    let (s, t, f, d) = (
        cstring(source)?,
        cstring(target)?,
        cstring(fstype)?,
        cstring(data)?,
    );
    // SAFETY: mount(2) with NUL-terminated strings that live across the call.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ptr(),
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                d.as_ptr().cast()
            },
        )
    };
    if rc != 0 {
        return Err(Error::last_os(format!("mount {fstype} on {target}")));
    }
    Ok(())
}

/// Mounts [`BASE`] and makes [`DEV_LINKS`]. A mount failure is fatal: nothing can run
/// without them.
pub fn mount_base() -> Result<()> {
    for m in BASE {
        match mount(m.source, m.target, m.fstype, m.flags, m.data) {
            Err(Error::Io { source, .. })
                if m.busy_ok && source.raw_os_error() == Some(libc::EBUSY) => {}
            r => r?,
        }
        if m.target == "/proc" {
            for (to, link) in DEV_LINKS {
                match std::os::unix::fs::symlink(to, link) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        super::warn(&format!("symlink {link}"), &e)
                    }
                    _ => {}
                }
            }
        }
    }
    // /dev/ptmx for the new devpts instance.
    match std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx") {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Err(e) = mount("/dev/pts/ptmx", "/dev/ptmx", "", libc::MS_BIND, "") {
                super::warn("bind /dev/ptmx", &e);
            }
        }
        Err(e) => super::warn("symlink /dev/ptmx", &e),
        Ok(()) => {}
    }
    Ok(())
}

/// The virtio-9p tag under which a VM sandbox exports the host paths its containers
/// bind-mount (the host side is uvm's `sandbox::vm::shares`).
pub const SHARES_TAG: &str = "hcsshim-shares";
/// Where init mounts those shares (the spec's bind sources point below it).
pub const SHARES_DIR: &str = "/run/hostshares";

/// Whether a virtio-9p device with `tag` exists under `drivers` (the 9pnet_virtio driver's
/// sysfs directory; each device's `mount_tag` holds its tag and a NUL).
pub fn has_9p_tag(drivers: &Path, tag: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(drivers) else {
        return false;
    };
    entries.flatten().any(|e| {
        std::fs::read(e.path().join("mount_tag")).is_ok_and(|t| {
            let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
            t[..end].trim_ascii() == tag.as_bytes()
        })
    })
}

/// Mounts the host's shares at [`SHARES_DIR`] when the VM has a [`SHARES_TAG`] device;
/// `Ok(false)` when it has none (a VM without shares).
pub fn host_shares() -> Result<bool> {
    if !has_9p_tag(
        Path::new("/sys/bus/virtio/drivers/9pnet_virtio"),
        SHARES_TAG,
    ) {
        return Ok(false);
    }
    mount(
        SHARES_TAG,
        SHARES_DIR,
        "9p",
        libc::MS_NOSUID | libc::MS_NODEV,
        "trans=virtio,version=9p2000.L,msize=262144",
    )?;
    Ok(true)
}

/// The directories `-w` makes writable.
pub const OVERLAY_DIRS: [&str; 2] = ["/etc", "/var"];

/// The overlay options for directory `dir` with its upper and work dirs under `base`.
pub fn overlay_options(base: &str, dir: &str) -> String {
    let name = dir.trim_start_matches('/');
    format!("lowerdir={dir},upperdir={base}/{name}/upper,workdir={base}/{name}/work")
}

/// `-w`: a tmpfs at `/run/over` (40% of RAM) and overlays over `/etc` and `/var`.
pub fn writable_overlays() -> Result<()> {
    const BASE_DIR: &str = "/run/over";
    mount(
        "tmpfs",
        BASE_DIR,
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "size=40%",
    )?;
    for dir in OVERLAY_DIRS {
        let name = dir.trim_start_matches('/');
        for sub in ["upper", "work"] {
            let p = format!("{BASE_DIR}/{name}/{sub}");
            std::fs::create_dir_all(&p).map_err(|e| Error::path("mkdir", Path::new(&p), e))?;
        }
        mount(
            "overlay",
            dir,
            "overlay",
            0,
            &overlay_options(BASE_DIR, dir),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_sequence_matches_the_reference_order() {
        let targets: Vec<&str> = BASE.iter().map(|m| m.target).collect();
        assert_eq!(
            targets,
            ["/dev", "/proc", "/run", "/tmp", "/dev/shm", "/dev/pts", "/sys"]
        );
        assert!(BASE[0].busy_ok && BASE[1..].iter().all(|m| !m.busy_ok));
        assert!(BASE
            .iter()
            .find(|m| m.target == "/run")
            .unwrap()
            .data
            .contains("0755"));
    }

    #[test]
    fn a_9p_tag_is_found_by_its_sysfs_mount_tag() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_9p_tag(&dir.path().join("none"), SHARES_TAG));
        let dev = dir.path().join("virtio3");
        std::fs::create_dir(&dev).unwrap();
        std::fs::write(dev.join("mount_tag"), b"other\0").unwrap();
        assert!(!has_9p_tag(dir.path(), SHARES_TAG));
        let dev = dir.path().join("virtio4");
        std::fs::create_dir(&dev).unwrap();
        std::fs::write(dev.join("mount_tag"), b"hcsshim-shares\0").unwrap();
        assert!(has_9p_tag(dir.path(), SHARES_TAG));
    }

    #[test]
    fn overlay_options_name_upper_and_work() {
        assert_eq!(
            overlay_options("/run/over", "/etc"),
            "lowerdir=/etc,upperdir=/run/over/etc/upper,workdir=/run/over/etc/work"
        );
    }
}

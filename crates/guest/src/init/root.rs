//! The VHD boot modes' first stage: init in the small boot initrd mounts the real root
//! filesystem (`rootfs.vhd`, or `rootfs-verity.vhd` through dm-verity) and hands over to the
//! `init` on it (ext4-uvm.md §5.2).
//!
//! The reference kernel has SCSI, ext4 and device-mapper built in, so `root=/dev/sda ro
//! rootwait init=/init` (or `root=/dev/dm-0 dm-mod.create=<args>`) is all it needs. Debian's
//! kernel has them as modules, so the VM sandbox also passes a boot initrd holding only
//! `init` and those modules; init there reads the same arguments from `/proc/cmdline` and
//! does what the kernel would: load the modules (dependencies first), create the
//! device-mapper devices ([`dm`](super::dm)), wait for the root device (`rootwait`), mount
//! it (`ro`, `rootfstype`, default ext4), move it over `/` and exec `init=` with init's own
//! arguments. The second init sees an ext4 root and runs the normal sequence.
//!
//! This stage runs only when PID 1's root is the initramfs and the command line has
//! `root=`; a full initrd (the initrd boot mode) has no `root=` and skips it.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{cstring, dm, modules};
use crate::error::{Error, Result};

/// Where the root is mounted before it is moved over `/`.
const NEW_ROOT: &str = "/newroot";
/// Bound of waiting for a device (`rootwait` waits forever; a VM that never gets its
/// disk should fail visibly instead).
pub const DEVICE_WAIT: Duration = Duration::from_secs(120);

/// What the kernel command line asks of the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSpec {
    /// `root=`: the device.
    pub device: String,
    /// `rootfstype=`, default `ext4`.
    pub fstype: String,
    /// `ro` (and no later `rw`).
    pub readonly: bool,
    /// `rootflags=`: filesystem options.
    pub flags: String,
    /// `init=`, default `/init`.
    pub init: String,
    /// `dm-mod.create=`: device-mapper devices to create first.
    pub dm: Vec<dm::Device>,
}

/// Splits a kernel command line into parameters as the kernel does: whitespace separates
/// them except inside double quotes, which are removed. Stops at `--` (init's arguments).
pub fn params(cmdline: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut words = Vec::new();
    for c in cmdline.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    for w in words {
        if w == "--" {
            break;
        }
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((w, None)),
        }
    }
    out
}

/// The root of `cmdline`, or `None` without `root=`.
pub fn spec(cmdline: &str) -> Result<Option<RootSpec>> {
    let mut s = RootSpec {
        device: String::new(),
        fstype: "ext4".into(),
        readonly: false,
        flags: String::new(),
        init: "/init".into(),
        dm: Vec::new(),
    };
    for (k, v) in params(cmdline) {
        match (k.as_str(), v) {
            ("root", Some(v)) => s.device = v,
            ("rootfstype", Some(v)) => s.fstype = v,
            ("rootflags", Some(v)) => s.flags = v,
            ("init", Some(v)) => s.init = v,
            ("dm-mod.create", Some(v)) => s.dm = dm::parse_create(&v)?,
            ("ro", None) => s.readonly = true,
            ("rw", None) => s.readonly = false,
            _ => {}
        }
    }
    if s.device.is_empty() {
        return Ok(None);
    }
    if !s.device.starts_with("/dev/") {
        return Err(Error::Usage(format!(
            "root={} is not a /dev path (PARTUUID= and the like are not supported)",
            s.device
        )));
    }
    Ok(Some(s))
}

/// Whether `/` is the initramfs (ramfs or tmpfs).
fn root_is_initramfs() -> Result<bool> {
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    // SAFETY: statfs is plain data; statfs(2) fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid statfs buffer.
    if unsafe { libc::statfs(c"/".as_ptr(), &mut st) } != 0 {
        return Err(Error::last_os("statfs /"));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between C libraries.
    let t = st.f_type as i64;
    Ok(t == RAMFS_MAGIC || t == TMPFS_MAGIC)
}

fn mount(
    src: &str,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    let (s, t, d) = (cstring(src)?, cstring(target)?, cstring(data)?);
    let f = fstype.map(cstring).transpose()?;
    // SAFETY: NUL-terminated strings that outlive the call; a null fstype is allowed.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            d.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(Error::last_os(format!("mount {src} on {target}")));
    }
    Ok(())
}

fn umount(target: &str) -> Result<()> {
    let t = cstring(target)?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(Error::last_os(format!("unmount {target}")));
    }
    Ok(())
}

/// Waits until `path` exists, up to `limit`.
pub fn wait_for(path: &Path, limit: Duration) -> Result<()> {
    let t0 = Instant::now();
    while !path.exists() {
        if t0.elapsed() > limit {
            return Err(Error::Usage(format!(
                "{} did not appear within {limit:?}",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The first stage: when `/` is the initramfs and the kernel command line has `root=`,
/// mounts that root and execs its init with `args`; this returns only on failure. Without
/// `root=` (or on a real root) it returns `Ok(())` with nothing left mounted, and the
/// normal sequence runs.
pub fn switch_if_asked(args: &[String]) -> Result<()> {
    // SAFETY: getpid(2) cannot fail.
    if unsafe { libc::getpid() } != 1 || !root_is_initramfs()? {
        return Ok(());
    }
    std::fs::create_dir_all("/proc").map_err(|e| Error::path("mkdir", Path::new("/proc"), e))?;
    mount("proc", "/proc", Some("proc"), 0, "")?;
    let cmdline = std::fs::read_to_string("/proc/cmdline")
        .map_err(|e| Error::path("read", Path::new("/proc/cmdline"), e));
    let spec = match cmdline.and_then(|c| spec(&c)) {
        Ok(Some(s)) => s,
        other => {
            umount("/proc")?;
            return other.map(|_| ());
        }
    };
    let t0 = Instant::now();
    std::fs::create_dir_all("/dev").map_err(|e| Error::path("mkdir", Path::new("/dev"), e))?;
    match mount(
        "devtmpfs",
        "/dev",
        Some("devtmpfs"),
        libc::MS_NOSUID,
        "mode=0755",
    ) {
        // The kernel's own devtmpfs automount got there first.
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {}
        r => r?,
    }
    let loaded = modules::load_all(&modules::release_dir(), &modules::FinitModule)?;
    for (path, e) in &loaded.failed {
        super::warn(&format!("load module {}", path.display()), e);
    }
    for d in &spec.dm {
        for p in d.dev_paths() {
            wait_for(Path::new(&p), DEVICE_WAIT)?;
        }
        dm::create(Path::new("/dev/mapper/control"), d)?;
    }
    wait_for(Path::new(&spec.device), DEVICE_WAIT)?;
    std::fs::create_dir_all(NEW_ROOT).map_err(|e| Error::path("mkdir", Path::new(NEW_ROOT), e))?;
    let mut readonly = spec.readonly;
    let flags = if readonly { libc::MS_RDONLY } else { 0 };
    match mount(
        &spec.device,
        NEW_ROOT,
        Some(&spec.fstype),
        flags,
        &spec.flags,
    ) {
        // As the kernel does: a read-only device (a dm-verity target) is mounted read-only.
        Err(Error::Io { source, .. })
            if !readonly && matches!(source.raw_os_error(), Some(libc::EACCES | libc::EROFS)) =>
        {
            readonly = true;
            mount(
                &spec.device,
                NEW_ROOT,
                Some(&spec.fstype),
                libc::MS_RDONLY,
                &spec.flags,
            )?
        }
        r => r?,
    }
    eprintln!(
        "init: mounted {} ({}) in {} ms; switching to {}",
        spec.device,
        if readonly { "ro" } else { "rw" },
        t0.elapsed().as_millis(),
        spec.init
    );
    // The second init mounts its own /dev and /proc on the new root.
    umount("/dev")?;
    umount("/proc")?;
    // What stays on the initramfs would hold its memory for the VM's life (as switch_root
    // does, empty it; the new root is another filesystem and is left alone). A failure
    // costs memory, not the boot.
    match free_initramfs(Path::new("/")) {
        Ok(bytes) => eprintln!("init: freed {} KiB of initramfs", bytes / 1024),
        Err(e) => super::warn("free the initramfs", &e),
    }
    std::env::set_current_dir(NEW_ROOT)
        .map_err(|e| Error::path("chdir", Path::new(NEW_ROOT), e))?;
    mount(".", "/", None, libc::MS_MOVE, "")?;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::chroot(c".".as_ptr()) } != 0 {
        return Err(Error::last_os("chroot to the new root"));
    }
    std::env::set_current_dir("/").map_err(|e| Error::path("chdir", Path::new("/"), e))?;
    let argv: Vec<CString> = std::iter::once(spec.init.as_str())
        .chain(args.iter().map(String::as_str))
        .map(cstring)
        .collect::<Result<_>>()?;
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: a NULL-terminated array of NUL-terminated strings that outlive the call.
    unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
    Err(Error::last_os(format!(
        "exec {} on the new root",
        spec.init
    )))
}

/// Removes everything under `dir` that lives on the same filesystem as `dir` itself,
/// without entering other mounts (the new root mounted on the initramfs) or following
/// symlinks; `dir` stays. Returns the bytes of the regular files removed.
pub fn free_initramfs(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::path("stat", dir, e))?
        .dev();
    empty_dir(dir, dev)
}

fn empty_dir(dir: &Path, dev: u64) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut freed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::path("read dir", dir, e))? {
        let entry = entry.map_err(|e| Error::path("read dir", dir, e))?;
        let path = entry.path();
        // DirEntry::metadata does not follow a symlink (lstat).
        let md = entry
            .metadata()
            .map_err(|e| Error::path("stat", &path, e))?;
        if md.dev() != dev {
            continue;
        }
        if md.is_dir() {
            freed += empty_dir(&path, dev)?;
            std::fs::remove_dir(&path).map_err(|e| Error::path("rmdir", &path, e))?;
        } else {
            if md.is_file() {
                freed += md.len();
            }
            std::fs::remove_file(&path).map_err(|e| Error::path("unlink", &path, e))?;
        }
    }
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tmpfs mounted for a test, detached when dropped (also when the test fails).
    struct Tmpfs(std::path::PathBuf);

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = umount(self.0.to_str().unwrap());
        }
    }

    #[test]
    fn freeing_the_initramfs_empties_it_but_not_mounts_on_it() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("lib/modules/x")).unwrap();
        std::fs::write(root.join("init"), [0u8; 3000]).unwrap();
        std::fs::write(root.join("lib/modules/x/a.ko"), [0u8; 5000]).unwrap();
        std::os::unix::fs::symlink("/outside", root.join("link")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("kept"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("dirlink")).unwrap();
        std::fs::create_dir(root.join("newroot")).unwrap();
        // SAFETY: geteuid(2) cannot fail.
        let mounted = (unsafe { libc::geteuid() } == 0).then(|| {
            let at = root.join("newroot");
            mount("tmpfs", at.to_str().unwrap(), Some("tmpfs"), 0, "size=1m").unwrap();
            std::fs::write(at.join("sbin-init"), b"real root").unwrap();
            Tmpfs(at)
        });

        assert_eq!(free_initramfs(root).unwrap(), 8000);
        let mut left: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        if let Some(m) = &mounted {
            assert_eq!(left, ["newroot"]);
            assert_eq!(std::fs::read(m.0.join("sbin-init")).unwrap(), b"real root");
        } else {
            assert!(left.is_empty(), "{left:?}");
        }
        // A symlink is removed, never followed.
        assert!(outside.path().join("kept").exists());
        assert!(free_initramfs(&root.join("missing")).is_err());
    }

    #[test]
    fn quoted_parameters_keep_their_spaces() {
        let p = params(
            r#"console=ttyS0 root=/dev/dm-0 dm-mod.create="v,,,ro,0 8 verity 1 /dev/sda" quiet -- -e 1 root=/x"#,
        );
        assert_eq!(
            p,
            [
                ("console".into(), Some("ttyS0".into())),
                ("root".into(), Some("/dev/dm-0".into())),
                (
                    "dm-mod.create".into(),
                    Some("v,,,ro,0 8 verity 1 /dev/sda".into())
                ),
                ("quiet".into(), None),
            ]
        );
    }

    #[test]
    fn scsi_vhd_root() {
        let s = spec("quiet root=/dev/sda ro rootwait init=/init -- -e 1")
            .unwrap()
            .unwrap();
        assert_eq!(s.device, "/dev/sda");
        assert!(s.readonly && s.dm.is_empty());
        assert_eq!((s.fstype.as_str(), s.init.as_str()), ("ext4", "/init"));
    }

    #[test]
    fn verity_root_creates_its_device() {
        let s = spec(r#"root=/dev/dm-0 ro dm-mod.create="dmverity,,,ro,0 8 verity 1 /dev/sda /dev/sda 4096 4096 1 2 sha256 ab cd" init=/init"#)
            .unwrap()
            .unwrap();
        assert_eq!(s.dm.len(), 1);
        assert_eq!(s.dm[0].name, "dmverity");
        assert_eq!(s.dm[0].dev_paths(), ["/dev/sda", "/dev/sda"]);
    }

    #[test]
    fn no_root_means_no_first_stage() {
        assert_eq!(spec("console=ttyS0 -- root=/dev/sda").unwrap(), None);
        assert!(spec("root=PARTUUID=1234").is_err());
        assert!(spec(r#"root=/dev/dm-0 dm-mod.create="bad""#).is_err());
    }
}

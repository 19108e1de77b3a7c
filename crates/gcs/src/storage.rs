//! Storage resources of ModifySettings (spec §5): overlay root filesystems, SCSI disks, VPMem
//! devices and plan9 shares, plus a bundle remover that never crosses into a mount.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, PathContext, Result};
use crate::transport::Transport;

/// The VMBus GUIDs of the SCSI controllers, by controller index (`ScsiControllerGuids`).
pub const SCSI_CONTROLLER_GUIDS: [&str; 4] = [
    "df6d0690-79e5-55b6-a5ec-c1e2f77f580a",
    "0110f83b-de10-5172-a266-78bca56bf50a",
    "b5d2d8d4-3a75-51bf-945b-3444dc6b8579",
    "305891a9-b251-5dfe-91a2-c25d9212275b",
];

/// How long a SCSI disk may take to appear.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(5);

fn mkdir_0700(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).with_path("mkdir", p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).with_path("chmod", p)
}

fn do_mount(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(Some(OsStr::new(source)), target, fstype, flags, data).map_err(|e| {
        Error::io(
            format!(
                "mount {source} on {} ({})",
                target.display(),
                fstype.unwrap_or("bind")
            ),
            e.into(),
        )
    })
}

/// Unmounts `target` until nothing is mounted there any more (stacked mounts).
pub fn unmount_all(target: &Path) -> Result<()> {
    for _ in 0..64 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(Error::io(format!("unmount {}", target.display()), e.into())),
        }
    }
    Err(Error::Invalid(format!(
        "unmount {}: too many stacked mounts",
        target.display()
    )))
}

/// CombinedLayers Add: an overlay of `layers` (base → top) at `root`, writable when
/// `scratch` is given (`<scratch>/upper`, `<scratch>/work`).
pub fn mount_overlay(root: &Path, layers: &[PathBuf], scratch: Option<&Path>) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::Invalid(
            "CombinedLayers needs at least one layer".into(),
        ));
    }
    for p in layers
        .iter()
        .map(|p| p.as_os_str())
        .chain(scratch.map(|s| s.as_os_str()))
    {
        let s = p.to_string_lossy();
        if s.contains(',') || s.contains(':') {
            return Err(Error::Invalid(format!(
                "layer path {s:?} contains ',' or ':'"
            )));
        }
    }
    // Joined in the order the host sent them, as the reference does (overlayfs reads the
    // first entry as the topmost lower layer).
    let lower: Vec<String> = layers
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut data = format!("lowerdir={}", lower.join(":"));
    let mut flags = MsFlags::empty();
    match scratch {
        Some(s) => {
            let (upper, work) = (s.join("upper"), s.join("work"));
            for d in [&upper, &work] {
                std::fs::create_dir_all(d).with_path("mkdir", d)?;
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                    .with_path("chmod", d)?;
            }
            data.push_str(&format!(
                ",upperdir={},workdir={}",
                upper.display(),
                work.display()
            ));
        }
        None => flags |= MsFlags::MS_RDONLY,
    }
    std::fs::create_dir_all(root).with_path("mkdir", root)?;
    do_mount("overlay", root, Some("overlay"), flags, Some(&data))
}

/// CombinedLayers Remove: unmount and remove the root.
pub fn unmount_overlay(root: &Path) -> Result<()> {
    unmount_all(root)?;
    match std::fs::remove_dir(root) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path("rmdir", root, e)),
    }
}

/// Settings of a SCSI disk to mount.
#[derive(Debug, Clone, Default)]
pub struct ScsiMount {
    /// Where to mount (empty: nothing is mounted).
    pub mount_path: String,
    /// Controller index.
    pub controller: u8,
    /// LUN.
    pub lun: u8,
    /// Partition (0 = whole disk).
    pub partition: u64,
    /// Mount read-only.
    pub read_only: bool,
    /// Symlink the block device instead of mounting.
    pub block_dev: bool,
    /// Filesystem type (empty: ext4).
    pub filesystem: String,
    /// Mount options; only propagation flags are used.
    pub options: Vec<String>,
    /// Encrypted scratch (dm-crypt): not implemented.
    pub encrypted: bool,
    /// Format when the filesystem differs: not implemented.
    pub ensure_filesystem: bool,
}

/// The `/dev` node of a SCSI disk, waiting up to 5 s for it to appear.
pub fn scsi_device(controller: u8, lun: u8, partition: u64) -> Result<PathBuf> {
    let guid = SCSI_CONTROLLER_GUIDS
        .get(controller as usize)
        .ok_or_else(|| Error::Invalid(format!("SCSI controller {controller} out of range")))?;
    let deadline = Instant::now() + DEVICE_TIMEOUT;
    loop {
        if let Some(dev) = find_scsi_block(guid, controller, lun) {
            let name = if partition > 0 {
                format!("{dev}{partition}")
            } else {
                dev
            };
            // The sysfs entry comes before the disk is ready: poll until it opens
            // (ENXIO/ENOENT until then).
            let path = PathBuf::from("/dev").join(name);
            if std::fs::File::open(&path).is_ok() {
                return Ok(path);
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Invalid(format!(
                "SCSI disk controller {controller} lun {lun} not found or not ready after {}s",
                DEVICE_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The SCSI host number of controller `controller`: the `host<N>` under its VMBus device in
/// a Hyper-V utility VM; where there is no VMBus (a QEMU utility VM with virtio-scsi), the
/// `controller`-th virtio-scsi host in the order of the hosts' device paths.
fn scsi_host_number(guid: &str, controller: u8) -> Option<String> {
    let vmbus = Path::new("/sys/bus/vmbus/devices");
    if vmbus.is_dir() {
        let dir = vmbus.join(guid);
        return std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("host").map(str::to_string)
        });
    }
    virtio_scsi_hosts().into_iter().nth(controller as usize)
}

/// The host numbers of the virtio-scsi adapters, ordered by device path.
fn virtio_scsi_hosts() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/class/scsi_host") else {
        return Vec::new();
    };
    let mut hosts: Vec<(PathBuf, String)> = rd
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("proc_name"))
                .is_ok_and(|n| n.trim() == "virtio_scsi")
        })
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("host")?.to_string();
            Some((
                std::fs::canonicalize(e.path()).unwrap_or_else(|_| e.path()),
                n,
            ))
        })
        .collect();
    hosts.sort();
    hosts.into_iter().map(|(_, n)| n).collect()
}

fn find_scsi_block(guid: &str, controller: u8, lun: u8) -> Option<String> {
    let host = scsi_host_number(guid, controller)?;
    let dir = PathBuf::from(format!("/sys/bus/scsi/devices/{host}:0:0:{lun}/block"));
    let e = std::fs::read_dir(dir).ok()?.flatten().next()?;
    Some(e.file_name().to_string_lossy().into_owned())
}

fn propagation(options: &[String]) -> MsFlags {
    let mut f = MsFlags::empty();
    for o in options {
        f |= match o.as_str() {
            "shared" => MsFlags::MS_SHARED,
            "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
            "private" => MsFlags::MS_PRIVATE,
            "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "slave" => MsFlags::MS_SLAVE,
            "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "unbindable" => MsFlags::MS_UNBINDABLE,
            "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            _ => MsFlags::empty(),
        };
    }
    f
}

/// MappedVirtualDisk Add.
pub fn mount_scsi(m: &ScsiMount) -> Result<()> {
    if m.encrypted || m.ensure_filesystem {
        return Err(Error::Invalid(
            "encrypted or formatted SCSI disks are not implemented".into(),
        ));
    }
    if m.mount_path.is_empty() {
        return Ok(());
    }
    let dev = scsi_device(m.controller, m.lun, m.partition)?;
    let target = Path::new(&m.mount_path);
    if m.block_dev {
        return std::os::unix::fs::symlink(&dev, target).with_path("symlink", target);
    }
    let fstype = if m.filesystem.is_empty() {
        "ext4"
    } else {
        m.filesystem.as_str()
    };
    let (flags, data) = if m.read_only {
        (MsFlags::MS_RDONLY, Some("noload"))
    } else {
        (MsFlags::empty(), None)
    };
    mount_new_dir(&dev.to_string_lossy(), target, fstype, flags, data)?;
    let prop = propagation(&m.options);
    if !prop.is_empty() {
        if let Err(e) = do_mount("none", target, None, prop, None) {
            let _ = unmount_path(&m.mount_path);
            return Err(e);
        }
    }
    Ok(())
}

/// MappedVirtualDisk / MappedDirectory / VPMemDevice Remove: unmount and remove the path.
pub fn unmount_path(mount_path: &str) -> Result<()> {
    if mount_path.is_empty() {
        return Ok(());
    }
    let target = Path::new(mount_path);
    if target.is_symlink() {
        return std::fs::remove_file(target).with_path("remove", target);
    }
    unmount_all(target)?;
    match std::fs::remove_dir(target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path("rmdir", target, e)),
    }
}

/// SCSIDevice Remove: ask the kernel to drop the disk. A missing device is fine.
pub fn remove_scsi_device(controller: u8, lun: u8) -> Result<()> {
    let guid = SCSI_CONTROLLER_GUIDS
        .get(controller as usize)
        .ok_or_else(|| Error::Invalid(format!("SCSI controller {controller} out of range")))?;
    let Some(host) = scsi_host_number(guid, controller) else {
        return Ok(());
    };
    let p = PathBuf::from(format!("/sys/bus/scsi/devices/{host}:0:0:{lun}/delete"));
    match std::fs::write(&p, "1\n") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::path("write", p, e)),
    }
}

/// VPMemDevice Add (whole device only).
pub fn mount_vpmem(device_number: u32, mount_path: &str, mapped: bool) -> Result<()> {
    if mapped {
        return Err(Error::Invalid(
            "VPMem multi-mapping (dm-linear) is not implemented".into(),
        ));
    }
    let dev = format!("/dev/pmem{device_number}");
    mount_new_dir(
        &dev,
        Path::new(mount_path),
        "ext4",
        MsFlags::MS_RDONLY,
        Some("noload"),
    )
}

/// Creates `target` (0700) and mounts on it; a failed mount removes the directory again.
fn mount_new_dir(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let existed = target.exists();
    mkdir_0700(target)?;
    let r = do_mount(source, target, Some(fstype), flags, data);
    if r.is_err() && !existed {
        let _ = std::fs::remove_dir(target);
    }
    r
}

/// MappedDirectory Add: a plan9 share served by the host on `port`, mounted over the dialed
/// connection (`trans=fd`).
pub fn mount_plan9(
    transport: &Transport,
    mount_path: &str,
    port: u32,
    share_name: &str,
    read_only: bool,
) -> Result<()> {
    let target = Path::new(mount_path);
    let conn = transport
        .dial(port)
        .map_err(|e| Error::io("dial plan9 share", e))?;
    // 9p over a socket wants buffers of at least msize (the reference sets both).
    let buffers = rustix::net::sockopt::set_socket_recv_buffer_size(&conn, 65536)
        .and_then(|()| rustix::net::sockopt::set_socket_send_buffer_size(&conn, 65536));
    buffers.map_err(|e| Error::io("set the plan9 socket's buffer sizes", e.into()))?;
    let fd = conn.as_raw_fd();
    let mut data = format!("trans=fd,rfdno={fd},wfdno={fd},msize=65536");
    let mut flags = MsFlags::empty();
    if read_only {
        flags |= MsFlags::MS_RDONLY;
        data.push_str(",noload");
    }
    if !share_name.is_empty() {
        data.push_str(&format!(",aname={share_name}"));
    }
    // The kernel holds its own reference to the connection once mounted.
    mount_new_dir(mount_path, target, "9p", flags, Some(&data))
}

/// Binds `<scratch>/bundle` onto `bundle` so the bundle lives on the scratch disk.
pub fn bind_scratch_bundle(scratch: &Path, bundle: &Path) -> Result<()> {
    let src = scratch.join("bundle");
    mkdir_0700(&src)?;
    mkdir_0700(bundle)?;
    do_mount(&src.to_string_lossy(), bundle, None, MsFlags::MS_BIND, None)
}

/// A hugetlbfs of `page_size` pages at `path` (a workload's `hugepages://` source).
pub fn mount_hugetlbfs(path: &Path, page_size: &str) -> Result<()> {
    do_mount(
        "none",
        path,
        Some("hugetlbfs"),
        MsFlags::empty(),
        Some(&format!("pagesize={page_size}")),
    )
}

/// Unmounts every mount below `dir` (deepest first), e.g. a sandbox's hugetlbfs mounts
/// before its directory is removed. `dir` itself is left mounted if it is a mount point.
pub fn unmount_below(dir: &Path) -> Result<()> {
    let Ok(canon) = dir.canonicalize() else {
        return Ok(());
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let mut below: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| PathBuf::from(unescape_mountinfo(mp)))
        .filter(|mp| mp.starts_with(&canon) && *mp != canon)
        .collect();
    below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    below.dedup();
    for mp in below {
        unmount_all(&mp)?;
    }
    Ok(())
}

/// `rm -rf` that does not descend into other filesystems (the rootfs overlay, plan9 shares):
/// those mount points and their parents are left in place.
pub fn remove_tree_same_fs(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::path("stat", path, e)),
    };
    remove_inner(path, meta.dev(), true)?;
    Ok(())
}

/// Returns whether `path` was fully removed. `top` may itself be a mount point (a bundle on
/// the scratch disk): its contents are removed, then removing the directory fails quietly.
fn remove_inner(path: &Path, dev: u64, top: bool) -> Result<bool> {
    let meta = std::fs::symlink_metadata(path).with_path("stat", path)?;
    if !meta.is_dir() {
        std::fs::remove_file(path).with_path("remove", path)?;
        return Ok(true);
    }
    if !top && (meta.dev() != dev || is_mount_point(path)) {
        return Ok(false);
    }
    let mut all = true;
    for e in std::fs::read_dir(path).with_path("read dir", path)? {
        let e = e.with_path("read dir", path)?;
        all &= remove_inner(&e.path(), dev, false)?;
    }
    if top && is_mount_point(path) {
        return Ok(false);
    }
    if all {
        std::fs::remove_dir(path).with_path("rmdir", path)?;
    }
    Ok(all)
}

/// A bind mount of a directory of the same filesystem has the same st_dev: compare with the
/// parent's mount id through `/proc/self/mountinfo`.
fn is_mount_point(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp) == canon.to_string_lossy())
    })
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_tree_removes_plain_trees() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("b");
        std::fs::create_dir_all(t.join("x/y")).unwrap();
        std::fs::write(t.join("x/y/f"), "1").unwrap();
        std::os::unix::fs::symlink("/etc", t.join("l")).unwrap();
        remove_tree_same_fs(&t).unwrap();
        assert!(!t.exists());
        assert!(Path::new("/etc").exists());
        remove_tree_same_fs(&t).unwrap();
    }

    /// Unmounts what a test mounted, also when it fails.
    struct Unmount(Vec<PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            for p in self.0.iter().rev() {
                let _ = umount2(p, MntFlags::MNT_DETACH);
            }
        }
    }

    #[test]
    fn remove_tree_empties_a_mounted_top_but_never_enters_inner_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("bundle");
        let inner = top.join("rootfs");
        std::fs::create_dir_all(&top).unwrap();
        let mut guard = Unmount(Vec::new());
        do_mount("tmpfs", &top, Some("tmpfs"), MsFlags::empty(), None).unwrap();
        guard.0.push(top.clone());
        std::fs::create_dir_all(inner.join("keep")).unwrap();
        do_mount("tmpfs", &inner, Some("tmpfs"), MsFlags::empty(), None).unwrap();
        guard.0.push(inner.clone());
        std::fs::write(inner.join("layer-file"), "x").unwrap();
        std::fs::create_dir_all(top.join("scratch/a")).unwrap();
        std::fs::write(top.join("config.json"), "{}").unwrap();

        remove_tree_same_fs(&top).unwrap();
        assert!(inner.join("layer-file").exists(), "entered an inner mount");
        assert!(!top.join("config.json").exists() && !top.join("scratch").exists());
        assert!(top.exists(), "a mount point itself stays");
    }

    #[test]
    fn overlay_refuses_bad_paths() {
        let e = mount_overlay(Path::new("/nonexistent/r"), &[PathBuf::from("/a,b")], None);
        assert!(e.is_err());
        assert!(mount_overlay(Path::new("/nonexistent/r"), &[], None).is_err());
    }

    #[test]
    fn propagation_flags_only() {
        let f = propagation(&["ro".into(), "rshared".into()]);
        assert_eq!(f, MsFlags::MS_SHARED | MsFlags::MS_REC);
    }
}

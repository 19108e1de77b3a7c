//! How container layers and scratch space reach the guest (ext4-uvm.md §5.6), the LCOW way:
//! as SCSI disks the GCS mounts with ModifySettings `MappedVirtualDisk`.
//!
//! * A **layer** (a host directory) becomes a read-only ext4 image made by our `ext4` crate
//!   (the directory is streamed as a tar into tar2ext4), hot-plugged once per sandbox and
//!   mounted at `/run/mounts/scsi/m<lun>`; containers that use the same layer directory
//!   share the disk (reference-counted), as LCOW shares a layer's VPMem/SCSI mount.
//! * Each container gets its own **scratch** disk: a sparse file formatted by `mkfs.ext4`
//!   with the reference's options, mounted read-write at the bundle `/run/gcs/c/<id>` (as
//!   `MountLCOWLayers` does), so the bundle, the overlay mount point `rootfs` and the
//!   overlay's upper and work dirs `scratch/<id>` are all disk-backed. Removing the
//!   container detaches it, so nothing is left behind in the guest or on the host.
//!
//! Why disks rather than a shared filesystem (virtio-fs, 9p): that is what the GCS serves in
//! a Hyper-V utility VM (VPMem or SCSI), so the guest code paths under test are the real
//! ones, and the layers are immutable images, as in LCOW. (Host paths that containers
//! bind-mount are shared over 9p, as LCOW shares them over plan9: see [`super::shares`].)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The guest mount point of the disk at `lun` (`/run/mounts/scsi/m<n>`).
pub fn guest_mount(lun: u8) -> String {
    format!("/run/mounts/scsi/m{lun}")
}

/// Converts the host directory `dir` into a read-only ext4 image at `image`.
pub fn layer_image(dir: &Path, image: &Path) -> Result<()> {
    let tar_path = image.with_extension("tar");
    let built = (|| -> Result<()> {
        let f = std::fs::File::create(&tar_path)
            .map_err(|e| Error::io(format!("create {}", tar_path.display()), e))?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(f));
        b.follow_symlinks(false);
        b.append_dir_all(".", dir)
            .map_err(|e| Error::io(format!("read layer {}", dir.display()), e))?;
        b.into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| Error::io(format!("write {}", tar_path.display()), e))?;
        let tar = std::fs::File::open(&tar_path)
            .map_err(|e| Error::io(format!("open {}", tar_path.display()), e))?;
        ext4::convert_to_path(
            std::io::BufReader::new(tar),
            image,
            &ext4::Options::default(),
        )
        .map_err(|e| Error::Sandbox(format!("convert layer {} to ext4: {e}", dir.display())))?;
        Ok(())
    })();
    if let Err(e) = std::fs::remove_file(&tar_path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %tar_path.display(), error = %e, "temporary layer tar not removed");
        }
    }
    built
}

/// Creates a sparse scratch image of `size` bytes formatted as the reference formats
/// scratch disks (`mkfs.ext4 -q -E lazy_itable_init=0,nodiscard -O
/// ^has_journal,sparse_super2,^resize_inode`).
pub fn scratch_image(path: &Path, size: u64) -> Result<()> {
    let f = std::fs::File::create(path)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    f.set_len(size)
        .map_err(|e| Error::io(format!("size {}", path.display()), e))?;
    drop(f);
    let out = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-E",
            "lazy_itable_init=0,nodiscard",
            "-O",
            "^has_journal,sparse_super2,^resize_inode",
        ])
        .arg(path)
        .output()
        .map_err(|e| Error::io("run mkfs.ext4 (install e2fsprogs)", e))?;
    if !out.status.success() {
        return Err(Error::Sandbox(format!(
            "mkfs.ext4 {} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// One attached disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Its LUN on controller 0.
    pub lun: u8,
    /// The QEMU device and block-node id.
    pub id: String,
    /// The host image.
    pub image: PathBuf,
    /// Users (containers) of a layer disk; 1 for a scratch disk.
    pub refs: usize,
    /// Where the guest mounts it.
    pub mount_path: String,
}

/// The disks of one sandbox: layers by host directory, scratch disks by container, and the
/// LUNs in use.
#[derive(Debug, Default)]
pub struct Disks {
    /// Layer disks by canonical host directory.
    pub layers: BTreeMap<PathBuf, Disk>,
    /// Scratch disks by container id.
    pub scratch: BTreeMap<String, Disk>,
    /// Used LUNs.
    used: std::collections::BTreeSet<u8>,
    next_serial: u64,
}

/// LUNs the GCS can address (a `u8` in MappedVirtualDisk).
const MAX_LUN: u8 = u8::MAX;

impl Disks {
    /// The disks of a VHD-booted VM: LUN 0 holds the root disk for the VM's lifetime.
    pub fn with_root_disk() -> Self {
        let mut d = Self::default();
        d.used.insert(0);
        d
    }

    /// Takes the lowest free LUN.
    pub fn allocate(&mut self) -> Result<(u8, String)> {
        let lun = (0..=MAX_LUN)
            .find(|l| !self.used.contains(l))
            .ok_or_else(|| Error::Sandbox("all 256 SCSI LUNs are in use".into()))?;
        self.used.insert(lun);
        self.next_serial += 1;
        Ok((lun, format!("disk{}", self.next_serial)))
    }

    /// Gives `lun` back.
    pub fn release(&mut self, lun: u8) {
        self.used.remove(&lun);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luns_are_reused_lowest_first_and_ids_are_not() {
        let mut d = Disks::default();
        let (a, ida) = d.allocate().unwrap();
        let (b, _) = d.allocate().unwrap();
        assert_eq!((a, b), (0, 1));
        d.release(0);
        let (c, idc) = d.allocate().unwrap();
        assert_eq!(c, 0);
        assert_ne!(ida, idc);
        assert_eq!(guest_mount(7), "/run/mounts/scsi/m7");
    }

    #[test]
    fn a_root_disk_keeps_lun_0() {
        let mut d = Disks::with_root_disk();
        let (a, _) = d.allocate().unwrap();
        assert_eq!(a, 1);
    }

    #[test]
    fn a_directory_becomes_an_ext4_image() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        std::fs::create_dir_all(layer.join("bin")).unwrap();
        std::fs::write(layer.join("bin/hello"), b"hi").unwrap();
        let img = dir.path().join("l.img");
        layer_image(&layer, &img).unwrap();
        let data = std::fs::read(&img).unwrap();
        // ext4 superblock magic at 1024 + 0x38.
        assert_eq!(&data[1024 + 0x38..1024 + 0x3a], &[0x53, 0xef]);
        assert!(!img.with_extension("tar").exists());
    }
}

//! Boot modes of the VM sandbox (ext4-uvm.md §5.2): what QEMU loads and what the kernel
//! command line says about the root.
//!
//! | mode | boot files | root |
//! |---|---|---|
//! | `initrd` | `vmlinux`, `initrd.img` | the initrd itself (no `root=`) |
//! | `vhd` | `vmlinux`, `boot-initrd.img`, `rootfs.vhd` | `root=/dev/sda ro rootwait init=/init` |
//! | `verity-vhd` | `vmlinux`, `boot-initrd.img`, `rootfs-verity.vhd`, `rootfs-verity.info` | `root=/dev/dm-0 dm-mod.create=<args> init=/init` |
//!
//! The VHD is attached read-only at LUN 0 of the SCSI controller before boot (the
//! reference's SCSI root), so it is the guest's `/dev/sda`; layer and scratch disks take
//! the other LUNs. Debian's kernel has SCSI, ext4 and device-mapper as modules, so the
//! kernel cannot mount that root alone: `boot-initrd.img` holds `init` and those modules,
//! and init reads the same arguments and mounts the root (see `guest::init::root`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use crate::sandbox::BootMode;

/// The dm-verity description the boot-files builder writes beside `rootfs-verity.vhd`.
pub const VERITY_INFO: &str = "rootfs-verity.info";

/// The files and root arguments of one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The initrd QEMU loads.
    pub initrd: PathBuf,
    /// The read-only root disk (LUN 0), if any.
    pub root_disk: Option<PathBuf>,
    /// The root part of the kernel command line (empty for the initrd mode).
    pub root_args: String,
}

impl BootMode {
    /// The boot files of this mode in `dir`, with the root arguments (reads
    /// `rootfs-verity.info` for the verity mode). Missing files are an error naming them.
    pub fn files(self, dir: &Path) -> Result<BootFiles> {
        let (initrd, root_disk) = match self {
            BootMode::Initrd => ("initrd.img", None),
            BootMode::Vhd => ("boot-initrd.img", Some("rootfs.vhd")),
            BootMode::VerityVhd => ("boot-initrd.img", Some("rootfs-verity.vhd")),
        };
        let f = BootFiles {
            initrd: dir.join(initrd),
            root_disk: root_disk.map(|d| dir.join(d)),
            root_args: match self {
                BootMode::Initrd => String::new(),
                BootMode::Vhd => "root=/dev/sda ro rootwait init=/init".into(),
                BootMode::VerityVhd => {
                    let p = dir.join(VERITY_INFO);
                    let info = std::fs::read_to_string(&p)
                        .map_err(|e| Error::io(format!("read {}", p.display()), e))?;
                    verity_root_args(&info)
                        .map_err(|why| Error::Sandbox(format!("{}: {why}", p.display())))?
                }
            },
        };
        for p in std::iter::once(&f.initrd).chain(&f.root_disk) {
            if !p.is_file() {
                return Err(Error::Sandbox(format!(
                    "boot file {} ({self} boot mode) is missing: build the boot files with scripts/build-bootfiles.sh {}",
                    p.display(),
                    dir.display()
                )));
            }
        }
        Ok(f)
    }
}

/// `root=/dev/dm-0 dm-mod.create="<args>" init=/init` from `rootfs-verity.info`'s
/// `dm-mod.create="…"` line. The arguments must be one quoted kernel parameter: no quote
/// or line break inside.
pub fn verity_root_args(info: &str) -> std::result::Result<String, String> {
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("dm-mod.create="))
        .ok_or("no dm-mod.create= line")?;
    let args = line
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(line);
    if args.is_empty() || args.contains('"') || !args.contains(" verity ") {
        return Err(format!("bad dm-mod.create value {line:?}"));
    }
    Ok(format!(
        "root=/dev/dm-0 dm-mod.create=\"{args}\" init=/init"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "root_hash=ab\nsalt=00\ndata_blocks=5\nhash_start_block=6\n\
dm-mod.create=\"dmverity,,,ro,0 40 verity 1 /dev/sda /dev/sda 4096 4096 5 6 sha256 ab 00\"\n";

    #[test]
    fn modes_parse_and_print() {
        for m in [BootMode::Initrd, BootMode::Vhd, BootMode::VerityVhd] {
            assert_eq!(m.to_string().parse::<BootMode>().unwrap(), m);
        }
        assert!("squashfs".parse::<BootMode>().is_err());
        assert_eq!(BootMode::default(), BootMode::Initrd);
    }

    #[test]
    fn each_mode_names_its_files_and_root() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "initrd.img",
            "boot-initrd.img",
            "rootfs.vhd",
            "rootfs-verity.vhd",
        ] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        std::fs::write(d.path().join(VERITY_INFO), INFO).unwrap();

        let f = BootMode::Initrd.files(d.path()).unwrap();
        assert_eq!(f.initrd, d.path().join("initrd.img"));
        assert_eq!((f.root_disk, f.root_args.as_str()), (None, ""));

        let f = BootMode::Vhd.files(d.path()).unwrap();
        assert_eq!(f.initrd, d.path().join("boot-initrd.img"));
        assert_eq!(f.root_disk, Some(d.path().join("rootfs.vhd")));
        assert_eq!(f.root_args, "root=/dev/sda ro rootwait init=/init");

        let f = BootMode::VerityVhd.files(d.path()).unwrap();
        assert_eq!(f.root_disk, Some(d.path().join("rootfs-verity.vhd")));
        assert_eq!(
            f.root_args,
            "root=/dev/dm-0 dm-mod.create=\"dmverity,,,ro,0 40 verity 1 /dev/sda /dev/sda 4096 4096 5 6 sha256 ab 00\" init=/init"
        );

        std::fs::remove_file(d.path().join("rootfs.vhd")).unwrap();
        let e = BootMode::Vhd.files(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("rootfs.vhd") && e.contains("vhd boot mode"),
            "{e}"
        );
    }

    #[test]
    fn bad_verity_info_is_rejected() {
        assert!(verity_root_args("root_hash=ab\n").is_err());
        assert!(verity_root_args("dm-mod.create=\"\"\n").is_err());
        assert!(verity_root_args("dm-mod.create=\"a\"b verity \"\n").is_err());
    }
}

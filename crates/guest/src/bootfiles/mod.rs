//! The UVM boot files (ext4-uvm.md §5.1), built reproducibly from a base root filesystem
//! and the project's guest programs.
//!
//! | output | what |
//! |---|---|
//! | `delta.tar.gz` | what the project adds: `/init`, `/bin/vsockexec`, `/bin/gcs`, `/info/*`, the kernel modules |
//! | `initrd.img` | base + delta as a gzipped newc cpio, every entry owned by root |
//! | `rootfs.tar.gz` | the same tree as a tar |
//! | `rootfs.vhd` | the tree as a read-only ext4 image (our tar2ext4) with a fixed VHD footer |
//! | `rootfs-verity.vhd` | the same ext4 image followed by its dm-verity superblock and hash tree, then the footer; `rootfs-verity.info` has the root hash and the `dm-mod.create` argument |
//! | `vmlinux`, `kernel.release` | the uncompressed guest kernel (when a kernel is given) |
//! | `boot-initrd.img` | the VHD boot modes' initrd: `/init` and the modules that mount the root (SCSI disk, ext4, dm-verity), which Debian's kernel does not build in |
//! | `SHA256SUMS` | digests of all of the above |
//!
//! **Reproducible**: every archive is written from one sorted in-memory [`tree::Tree`] with
//! owner 0:0 and every mtime set to the build epoch (`SOURCE_DATE_EPOCH`, else 0); gzip
//! headers carry no name or time; the VHD unique id and the dm-verity UUID are derived from
//! the content. Two builds from the same inputs are byte-identical.

pub mod base;
pub mod kernel;
pub mod tree;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use self::kernel::Kernel;
use self::tree::{file, Kind, Tree};
use crate::error::{Error, PathContext, Result};

/// Where the base root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Assembled from the build machine's busybox (static) and runc.
    Debian {
        /// The busybox binary (Debian's `busybox-static`: `/bin/busybox`).
        busybox: PathBuf,
        /// The runc binary.
        runc: PathBuf,
    },
    /// A tar, tar.gz, cpio or cpio.gz archive.
    Archive(PathBuf),
}

/// Everything a build reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The base root filesystem.
    pub base: Base,
    /// The `init` binary (static).
    pub init: PathBuf,
    /// The `vsockexec` binary (static).
    pub vsockexec: PathBuf,
    /// The `gcs` binary (static).
    pub gcs: PathBuf,
    /// The guest kernel; `None` builds the root filesystem only.
    pub kernel: Option<Kernel>,
    /// Kernel modules to include (with their dependencies).
    pub modules: Vec<String>,
    /// mtime of every entry and the `tar.date` of `/info`.
    pub epoch: u64,
    /// Written to `/info/gcs.version`.
    pub version: String,
}

/// What a build wrote.
#[derive(Debug, Clone)]
pub struct Built {
    /// The output files (name, size), sorted by name.
    pub files: Vec<(String, u64)>,
    /// The dm-verity root hash of `rootfs-verity.vhd`.
    pub verity_root: String,
    /// The kernel release, when a kernel was given.
    pub kernel_release: Option<String>,
}

/// The build epoch: `SOURCE_DATE_EPOCH` when set and valid, else 0.
pub fn epoch_from_env() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().map_err(|_| {
            Error::Input(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        }),
        Err(_) => Ok(0),
    }
}

/// The base tree of `base`.
pub fn base_tree(base: &Base) -> Result<Tree> {
    match base {
        Base::Debian { busybox, runc } => base::assemble(busybox, runc),
        Base::Archive(p) => Tree::read_archive(&std::fs::read(p).with_path("read", p)?),
    }
}

/// The delta tree: the project's programs, `/info` and the kernel modules.
pub fn delta_tree(i: &Inputs) -> Result<Tree> {
    let mut t = Tree::new();
    let read = |p: &Path| std::fs::read(p).with_path("read", p);
    t.insert("init", file(read(&i.init)?, 0o755))?;
    t.insert("bin/vsockexec", file(read(&i.vsockexec)?, 0o755))?;
    t.insert("bin/gcs", file(read(&i.gcs)?, 0o755))?;
    t.insert(
        "info/gcs.version",
        file(format!("{}\n", i.version).into_bytes(), 0o644),
    )?;
    t.insert(
        "info/tar.date",
        file(format!("{}\n", i.epoch).into_bytes(), 0o644),
    )?;
    if let Some(k) = &i.kernel {
        let names: Vec<&str> = i.modules.iter().map(String::as_str).collect();
        add_modules(&mut t, k, &names)?;
    }
    Ok(t)
}

/// Adds the modules `names` need under `lib/modules/<release>/`, and the list init loads
/// them in (dependencies first: there is no modprobe in the guest).
fn add_modules(t: &mut Tree, k: &Kernel, names: &[&str]) -> Result<()> {
    let mut order = String::new();
    for (path, data) in k.modules_for(names)? {
        t.insert(
            &format!("lib/modules/{}/{path}", k.release),
            file(data, 0o644),
        )?;
        order.push_str(&path);
        order.push('\n');
    }
    let list = format!(
        "lib/modules/{}/{}",
        k.release,
        crate::init::modules::LOAD_ORDER
    );
    t.insert(&list, file(order.into_bytes(), 0o644))
}

/// The boot initrd of the VHD boot modes: `/init` and the modules that mount the root
/// ([`kernel::ROOT_MODULES`]). init finds `root=` on the kernel command line, mounts the
/// VHD (through dm-verity when asked) and execs the `init` on it.
pub fn boot_initrd_tree(i: &Inputs, k: &Kernel) -> Result<Tree> {
    let mut t = Tree::new();
    for (d, mode) in [("dev", 0o755), ("proc", 0o555), ("newroot", 0o755)] {
        t.insert(d, tree::dir(mode))?;
    }
    // The kernel opens /dev/console for init's stdio before anything mounts /dev.
    t.insert(
        "dev/console",
        tree::Node {
            kind: Kind::Char(5, 1),
            mode: 0o600,
        },
    )?;
    t.insert(
        "init",
        file(std::fs::read(&i.init).with_path("read", &i.init)?, 0o755),
    )?;
    add_modules(&mut t, k, kernel::ROOT_MODULES)?;
    Ok(t)
}

/// Overlays `delta` on `base`. A delta path whose first directory is a symlink in the base
/// (a merged-`/usr` base's `bin -> usr/bin`) goes to the symlink's target.
pub fn merge(base: &Tree, delta: &Tree) -> Result<Tree> {
    let mut t = base.clone();
    for (p, n) in delta.iter() {
        let path = match p.split_once('/') {
            Some((first, rest)) => match base.get(first).map(|n| &n.kind) {
                Some(Kind::Symlink(target)) => {
                    let target = tree::normalize(target)?;
                    format!("{target}/{rest}")
                }
                _ => p.clone(),
            },
            None => p.clone(),
        };
        if n.kind == Kind::Dir && matches!(t.get(&path).map(|n| &n.kind), Some(Kind::Symlink(_))) {
            continue;
        }
        t.insert(&path, n.clone())?;
    }
    Ok(t)
}

fn id_from(data: &[u8], purpose: &[u8]) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(purpose)
        .chain_update(data)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

fn write(out: &Path, name: &str, data: &[u8]) -> Result<()> {
    let p = out.join(name);
    std::fs::write(&p, data).with_path("write", &p)
}

/// Builds every boot file into `out` (created if missing).
pub fn build(i: &Inputs, out: &Path) -> Result<Built> {
    std::fs::create_dir_all(out).with_path("mkdir", out)?;
    let base = base_tree(&i.base)?;
    let delta = delta_tree(i)?;
    let rootfs = merge(&base, &delta)?;

    write(out, "delta.tar.gz", &tree::gzip(&delta.to_tar(i.epoch)?)?)?;
    write(out, "initrd.img", &tree::gzip(&rootfs.to_cpio(i.epoch)?)?)?;
    let rootfs_tar = rootfs.to_tar(i.epoch)?;
    write(out, "rootfs.tar.gz", &tree::gzip(&rootfs_tar)?)?;

    let ext4_err = |path: PathBuf| move |source| Error::Ext4 { path, source };
    let vhd = out.join("rootfs.vhd");
    let opts = ext4::Options {
        append_vhd_footer: true,
        vhd_unique_id: Some(id_from(&rootfs_tar, b"rootfs.vhd")),
        ..Default::default()
    };
    ext4::convert_to_path(rootfs_tar.as_slice(), &vhd, &opts).map_err(ext4_err(vhd.clone()))?;

    let verity_vhd = out.join("rootfs-verity.vhd");
    let opts = ext4::Options {
        append_dm_verity: true,
        append_vhd_footer: true,
        verity_uuid: Some(id_from(&rootfs_tar, b"rootfs-verity uuid")),
        vhd_unique_id: Some(id_from(&rootfs_tar, b"rootfs-verity.vhd")),
        ..Default::default()
    };
    let outcome = ext4::convert_to_path(rootfs_tar.as_slice(), &verity_vhd, &opts)
        .map_err(ext4_err(verity_vhd.clone()))?;
    let tree = outcome
        .verity
        .ok_or_else(|| Error::Input("tar2ext4 returned no dm-verity tree".into()))?;
    let data_blocks = tree.data_blocks;
    let root = tree.root_hex();
    let salt = ext4::verity::hex(&ext4::verity::SALT);
    // The verity superblock takes one block after the data; the tree follows it.
    let info = format!(
        "root_hash={root}\nsalt={salt}\ndata_blocks={data_blocks}\nhash_start_block={}\n\
         dm-mod.create=\"dmverity,,,ro,0 {} verity 1 /dev/sda /dev/sda 4096 4096 {data_blocks} {} sha256 {root} {salt}\"\n",
        data_blocks + 1,
        data_blocks * 8,
        data_blocks + 1,
    );
    write(out, "rootfs-verity.info", info.as_bytes())?;

    let mut kernel_release = None;
    if let Some(k) = &i.kernel {
        let bz = std::fs::read(&k.vmlinuz).with_path("read", &k.vmlinuz)?;
        write(out, "vmlinux", &kernel::extract_vmlinux(&bz)?)?;
        write(out, "kernel.release", format!("{}\n", k.release).as_bytes())?;
        let boot = boot_initrd_tree(i, k)?;
        write(
            out,
            "boot-initrd.img",
            &tree::gzip(&boot.to_cpio(i.epoch)?)?,
        )?;
        kernel_release = Some(k.release.clone());
    }

    let mut names: Vec<String> = vec![
        "delta.tar.gz",
        "initrd.img",
        "rootfs.tar.gz",
        "rootfs.vhd",
        "rootfs-verity.vhd",
        "rootfs-verity.info",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if kernel_release.is_some() {
        names.extend(["boot-initrd.img", "kernel.release", "vmlinux"].map(String::from));
    }
    names.sort();
    let mut sums = String::new();
    let mut files = Vec::new();
    for n in &names {
        let p = out.join(n);
        let data = std::fs::read(&p).with_path("read", &p)?;
        sums.push_str(&format!(
            "{}  {n}\n",
            ext4::verity::hex(&Sha256::digest(&data))
        ));
        files.push((n.clone(), data.len() as u64));
    }
    write(out, "SHA256SUMS", sums.as_bytes())?;
    Ok(Built {
        files,
        verity_root: root,
        kernel_release,
    })
}

#[cfg(test)]
mod tests {
    use super::tree::{dir, symlink};
    use super::*;

    #[test]
    fn delta_follows_a_merged_usr_bin_symlink() {
        let mut base = Tree::new();
        base.insert("usr/bin", dir(0o755)).unwrap();
        base.insert("bin", symlink("usr/bin")).unwrap();
        let mut delta = Tree::new();
        delta
            .insert("bin/gcs", file(b"gcs".to_vec(), 0o755))
            .unwrap();
        delta.insert("init", file(b"init".to_vec(), 0o755)).unwrap();
        let t = merge(&base, &delta).unwrap();
        assert_eq!(
            t.get("usr/bin/gcs").unwrap().kind,
            Kind::File(b"gcs".to_vec())
        );
        assert!(matches!(t.get("bin").unwrap().kind, Kind::Symlink(_)));
        assert!(t.get("init").is_some());
    }

    #[test]
    fn ids_depend_on_content_and_purpose() {
        assert_eq!(id_from(b"a", b"x"), id_from(b"a", b"x"));
        assert_ne!(id_from(b"a", b"x"), id_from(b"b", b"x"));
        assert_ne!(id_from(b"a", b"x"), id_from(b"a", b"y"));
    }
}

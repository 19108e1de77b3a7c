//! The guest kernel from a distribution package (Debian's `linux-image-amd64` by default):
//! the uncompressed `vmlinux` extracted from its `vmlinuz`, and the modules the VM needs
//! with their dependencies from `modules.dep`.
//!
//! QEMU's `microvm` machine boots an uncompressed ELF kernel through its PVH entry point,
//! which skips the in-guest decompression (seconds under TCG). Debian's bzImage carries an
//! xz stream (with the x86 BCJ filter); the stream is found by its magic and decoded with
//! liblzma, and the result must be an ELF file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, PathContext, Result};

/// Modules the VM sandbox needs (resolved with their dependencies): the virtio transports
/// (microvm's MMIO, q35's PCI), vsock over virtio, SCSI disks (layers and scratch), ext4
/// (with the crc32c it asks the crypto API for), overlayfs, 9p over virtio (the host
/// paths containers bind-mount) and virtio-net (the pod network).
pub const VM_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_pci",
    "vmw_vsock_virtio_transport",
    "virtio_scsi",
    "sd_mod",
    "ext4",
    "crc32c_generic",
    "overlay",
    "9pnet_virtio",
    "9p",
    "virtio_net",
];

/// Modules the boot initrd of the VHD boot modes needs to mount the root: the virtio
/// transports (q35's PCI, microvm's MMIO), the SCSI disk, ext4 (and crc32c) and dm-verity (which pulls in dm-mod). In
/// Debian's kernel all of them are modules (`CONFIG_SCSI_VIRTIO=m`, `CONFIG_BLK_DEV_SD=m`,
/// `CONFIG_EXT4_FS=m`, `CONFIG_BLK_DEV_DM=m`, `CONFIG_DM_VERITY=m`); sha256, which
/// dm-verity hashes with, is built in.
pub const ROOT_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_pci",
    "virtio_scsi",
    "sd_mod",
    "ext4",
    "crc32c_generic",
    "dm_verity",
];

const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const ELF_MAGIC: &[u8] = b"\x7fELF";
/// Bound of the decompressed kernel.
const MAX_VMLINUX: u64 = 512 << 20;

/// The uncompressed kernel inside a bzImage (or the file itself if it already is an ELF).
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>> {
    if bzimage.starts_with(ELF_MAGIC) {
        return Ok(bzimage.to_vec());
    }
    let mut tried = Vec::new();
    for (magic, name) in [(XZ_MAGIC, "xz"), (GZIP_MAGIC, "gzip")] {
        let mut from = 0;
        while let Some(pos) = find(&bzimage[from..], magic).map(|p| p + from) {
            let stream = &bzimage[pos..];
            let mut out = Vec::new();
            let ok = if name == "xz" {
                unxz(stream, &mut out)
            } else {
                flate2::read::GzDecoder::new(stream)
                    .take(MAX_VMLINUX)
                    .read_to_end(&mut out)
                    .is_ok()
            };
            if ok && out.starts_with(ELF_MAGIC) {
                return Ok(out);
            }
            tried.push(format!("{name} at {pos}"));
            from = pos + 1;
        }
    }
    Err(Error::Input(format!(
        "no ELF kernel found in the bzImage (tried {})",
        if tried.is_empty() {
            "nothing: no xz or gzip stream".into()
        } else {
            tried.join(", ")
        }
    )))
}

/// Decodes one xz stream at the start of `data`, ignoring what follows it (the rest of
/// the bzImage). False on a decoding error or past [`MAX_VMLINUX`].
fn unxz(data: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(mut s) = xz2::stream::Stream::new_stream_decoder(u64::MAX, 0) else {
        return false;
    };
    let mut input = data;
    loop {
        if out.len() as u64 >= MAX_VMLINUX {
            return false;
        }
        out.reserve(1 << 20);
        let (in_before, out_before) = (s.total_in(), out.len());
        match s.process_vec(input, out, xz2::stream::Action::Run) {
            Ok(xz2::stream::Status::StreamEnd) => return true,
            Ok(_) => {
                let used = (s.total_in() - in_before) as usize;
                input = &input[used..];
                if used == 0 && out.len() == out_before {
                    // No progress: a truncated stream.
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `modules.dep`: module path (relative to the release dir) → dependency paths.
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter_map(|l| {
            let (m, deps) = l.split_once(':')?;
            Some((
                m.trim().to_string(),
                deps.split_whitespace().map(String::from).collect(),
            ))
        })
        .collect()
}

/// The module name of a path (`kernel/net/vmw_vsock/vsock.ko` → `vsock`), with `-` read
/// as `_` as modprobe does.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// The paths of `names` and everything they depend on, sorted.
pub fn resolve(dep: &BTreeMap<String, Vec<String>>, names: &[&str]) -> Result<Vec<String>> {
    let mut out = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for n in names {
        let want = n.replace('-', "_");
        let path = dep.keys().find(|p| module_name(p) == want).ok_or_else(|| {
            Error::Input(format!(
                "kernel module {n} is not in modules.dep (built in, or not in this kernel?)"
            ))
        })?;
        todo.push(path.clone());
    }
    while let Some(p) = todo.pop() {
        if out.insert(p.clone()) {
            todo.extend(dep.get(&p).into_iter().flatten().cloned());
        }
    }
    Ok(out.into_iter().collect())
}

/// `paths` ordered so that every module comes after its dependencies (ties in path order):
/// the order `init` loads them in (`modules.load`).
pub fn load_order(dep: &BTreeMap<String, Vec<String>>, paths: &[String]) -> Vec<String> {
    fn visit(
        p: &str,
        dep: &BTreeMap<String, Vec<String>>,
        want: &std::collections::BTreeSet<&str>,
        done: &mut std::collections::BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !want.contains(p) || !done.insert(p.to_string()) {
            return;
        }
        for d in dep.get(p).into_iter().flatten() {
            visit(d, dep, want, done, out);
        }
        out.push(p.to_string());
    }
    let want: std::collections::BTreeSet<&str> = paths.iter().map(String::as_str).collect();
    let (mut done, mut out) = (std::collections::BTreeSet::new(), Vec::new());
    for p in paths {
        visit(p, dep, &want, &mut done, &mut out);
    }
    out
}

/// An installed kernel: `/boot/vmlinuz-<release>` and `/lib/modules/<release>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// `uname -r` of the kernel.
    pub release: String,
    /// The compressed kernel image.
    pub vmlinuz: PathBuf,
    /// Its modules directory.
    pub modules: PathBuf,
}

impl Kernel {
    /// The kernel of `release` under `root` (`/` normally).
    pub fn at(root: &Path, release: &str) -> Self {
        Self {
            release: release.to_string(),
            vmlinuz: root.join("boot").join(format!("vmlinuz-{release}")),
            modules: root.join("lib/modules").join(release),
        }
    }

    /// The newest kernel installed under `root` that has both an image and modules (by
    /// version order of the release names). The host's running kernel is not used: it may
    /// be a different, non-Debian one.
    pub fn newest_installed(root: &Path) -> Result<Self> {
        let boot = root.join("boot");
        let mut found: Vec<Kernel> = std::fs::read_dir(&boot)
            .with_path("read", &boot)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rel = name.strip_prefix("vmlinuz-")?.to_string();
                let k = Kernel::at(root, &rel);
                k.modules.join("modules.dep").is_file().then_some(k)
            })
            .collect();
        found.sort_by_key(|k| version_key(&k.release));
        found.pop().ok_or_else(|| {
            Error::Input(format!(
                "no kernel with modules under {} (install linux-image-amd64)",
                boot.display()
            ))
        })
    }

    /// The modules `names` need, as (path under `lib/modules/<release>/`, contents), in
    /// load order: every module after its dependencies (init has no modprobe and loads
    /// them in this order).
    pub fn modules_for(&self, names: &[&str]) -> Result<Vec<(String, Vec<u8>)>> {
        let dep_path = self.modules.join("modules.dep");
        let dep =
            parse_modules_dep(&std::fs::read_to_string(&dep_path).with_path("read", &dep_path)?);
        let paths = resolve(&dep, names)?;
        load_order(&dep, &paths)
            .into_iter()
            .map(|p| {
                let full = self.modules.join(&p);
                let data = std::fs::read(&full).with_path("read", &full)?;
                Ok((p, data))
            })
            .collect()
    }
}

/// Numeric-aware sort key of a release name (`6.1.0-57-amd64`).
fn version_key(rel: &str) -> Vec<(u64, String)> {
    rel.split(['.', '-'])
        .map(|p| (p.parse().unwrap_or(0), p.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\n\
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko\n\
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko\n\
kernel/net/vmw_vsock/vsock.ko:\nkernel/drivers/scsi/sd_mod.ko: kernel/lib/crc-t10dif.ko\nkernel/lib/crc-t10dif.ko:\n";

    #[test]
    fn dependencies_are_resolved_transitively() {
        let dep = parse_modules_dep(DEP);
        let got = resolve(&dep, &["vmw_vsock_virtio_transport", "sd_mod"]).unwrap();
        assert_eq!(
            got,
            [
                "kernel/drivers/scsi/sd_mod.ko",
                "kernel/lib/crc-t10dif.ko",
                "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko",
                "kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko",
                "kernel/net/vmw_vsock/vsock.ko",
            ]
        );
        assert_eq!(module_name("kernel/lib/crc-t10dif.ko"), "crc_t10dif");
        let order = load_order(&dep, &got);
        let pos = |m: &str| order.iter().position(|p| p.ends_with(m)).unwrap();
        assert!(pos("/vsock.ko") < pos("/vmw_vsock_virtio_transport_common.ko"));
        assert!(pos("_common.ko") < pos("/vmw_vsock_virtio_transport.ko"));
        assert!(pos("crc-t10dif.ko") < pos("sd_mod.ko"));
        assert_eq!(order.len(), got.len());
        assert!(resolve(&dep, &["nosuch"]).is_err());
    }

    #[test]
    fn modules_for_returns_dependencies_first() {
        let dir = tempfile::tempdir().unwrap();
        let k = Kernel::at(dir.path(), "6.1.0-test");
        std::fs::create_dir_all(&k.modules).unwrap();
        std::fs::write(k.modules.join("modules.dep"), DEP).unwrap();
        for (p, _) in parse_modules_dep(DEP) {
            let f = k.modules.join(&p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, p.as_bytes()).unwrap();
        }
        let got: Vec<String> = k
            .modules_for(&["ext4", "vmw_vsock_virtio_transport"])
            .unwrap()
            .into_iter()
            .map(|(p, data)| {
                assert_eq!(data, p.as_bytes());
                module_name(&p)
            })
            .collect();
        // Sorted by path, ext4 would come before jbd2 and the transport before vsock.
        assert_eq!(
            got,
            [
                "crc16",
                "mbcache",
                "jbd2",
                "ext4",
                "vsock",
                "vmw_vsock_virtio_transport_common",
                "vmw_vsock_virtio_transport",
            ]
        );
    }

    #[test]
    fn vmlinux_is_found_behind_a_header() {
        let elf = [ELF_MAGIC, &[1u8; 300][..]].concat();
        let mut xz = Vec::new();
        xz2::read::XzEncoder::new(elf.as_slice(), 6)
            .read_to_end(&mut xz)
            .unwrap();
        let image = [&b"MZ setup code ... "[..], &xz, &[0u8; 64][..]].concat();
        assert_eq!(extract_vmlinux(&image).unwrap(), elf);
        assert!(extract_vmlinux(b"MZ nothing here").is_err());
    }

    #[test]
    fn newest_release_wins() {
        let mut v = ["6.1.0-9-amd64", "6.1.0-57-amd64", "5.10.0-1-amd64"].map(version_key);
        v.sort();
        assert_eq!(v[2], version_key("6.1.0-57-amd64"));
    }
}

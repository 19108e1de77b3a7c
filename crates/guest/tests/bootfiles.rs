//! The boot files build from the machine's Debian packages (busybox-static, runc,
//! linux-image-amd64) and are reproducible: two builds from the same inputs are
//! byte-identical. The guest programs are this crate's own binaries (the gcs slot holds a
//! stand-in: the bytes do not matter here).

use std::path::{Path, PathBuf};

use guest::bootfiles::kernel::{Kernel, VM_MODULES};
use guest::bootfiles::tree::{Kind, Tree};
use guest::bootfiles::{build, Base, Inputs};

fn inputs(epoch: u64) -> Inputs {
    let kernel = Kernel::newest_installed(Path::new("/"))
        .expect("a Debian kernel with modules (apt-get install linux-image-amd64)");
    Inputs {
        base: Base::Debian {
            busybox: "/bin/busybox".into(),
            runc: "/usr/sbin/runc".into(),
        },
        init: env!("CARGO_BIN_EXE_init").into(),
        vsockexec: env!("CARGO_BIN_EXE_vsockexec").into(),
        gcs: env!("CARGO_BIN_EXE_vsockexec").into(),
        kernel: Some(kernel),
        modules: VM_MODULES.iter().map(|s| s.to_string()).collect(),
        epoch,
        version: "test".into(),
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn boot_files_are_reproducible_and_complete() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let built = build(&inputs(1_700_000_000), a.path()).expect("first build");
    build(&inputs(1_700_000_000), b.path()).expect("second build");
    let names: Vec<&str> = built.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "boot-initrd.img",
            "delta.tar.gz",
            "initrd.img",
            "kernel.release",
            "rootfs-verity.info",
            "rootfs-verity.vhd",
            "rootfs.tar.gz",
            "rootfs.vhd",
            "vmlinux"
        ]
    );
    for n in names.iter().chain(&["SHA256SUMS"]) {
        assert!(
            read(a.path(), n) == read(b.path(), n),
            "{n} differs between two builds"
        );
    }

    // The initrd: the delta over the base, everything owned by root at the build epoch.
    let initrd = read(a.path(), "initrd.img");
    let mut cpio = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(initrd.as_slice()),
        &mut cpio,
    )
    .unwrap();
    let mut rest = cpio.as_slice();
    let mut names = Vec::new();
    loop {
        let r = cpio::NewcReader::new(rest).unwrap();
        if r.entry().is_trailer() {
            break;
        }
        assert_eq!(
            (r.entry().uid(), r.entry().gid()),
            (0, 0),
            "{}",
            r.entry().name()
        );
        assert_eq!(r.entry().mtime(), 1_700_000_000, "{}", r.entry().name());
        names.push(r.entry().name().to_string());
        rest = r.finish().unwrap();
    }
    let release = built.kernel_release.unwrap();
    for want in [
        "init".to_string(),
        "bin/gcs".into(),
        "bin/vsockexec".into(),
        "bin/sh".into(),
        "usr/sbin/runc".into(),
        "dev/console".into(),
        format!("lib/modules/{release}/kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko"),
        format!("lib/modules/{release}/kernel/drivers/scsi/virtio_scsi.ko"),
        format!("lib/modules/{release}/modules.load"),
    ] {
        assert!(names.contains(&want), "{want} missing from the initrd");
    }
    // The boot initrd of the VHD modes: init and the modules that mount the root, listed
    // dependencies first.
    let boot = Tree::read_archive(&read(a.path(), "boot-initrd.img")).unwrap();
    assert!(matches!(boot.get("init").unwrap().kind, Kind::File(_)));
    assert!(boot.get("bin/gcs").is_none());
    let Kind::File(order) = &boot
        .get(&format!("lib/modules/{release}/modules.load"))
        .unwrap()
        .kind
    else {
        panic!("modules.load is not a file");
    };
    let order = String::from_utf8(order.clone()).unwrap();
    let pos = |m: &str| {
        order
            .lines()
            .position(|l| l.ends_with(m))
            .unwrap_or_else(|| panic!("{m} not in the boot initrd's modules.load:\n{order}"))
    };
    assert!(pos("/scsi_mod.ko") < pos("/virtio_scsi.ko"));
    assert!(pos("/scsi_mod.ko") < pos("/sd_mod.ko"));
    assert!(pos("/jbd2.ko") < pos("/ext4.ko"));
    assert!(pos("/dm-mod.ko") < pos("/dm-bufio.ko"));
    assert!(pos("/dm-bufio.ko") < pos("/dm-verity.ko"));

    // rootfs.tar.gz holds the same tree as the initrd.
    let tar = Tree::read_archive(&read(a.path(), "rootfs.tar.gz")).unwrap();
    let cpio_tree = Tree::read_archive(&initrd).unwrap();
    assert_eq!(tar, cpio_tree);
    assert!(matches!(tar.get("init").unwrap().kind, Kind::File(_)));

    // The delta holds only what the project adds.
    let delta = Tree::read_archive(&read(a.path(), "delta.tar.gz")).unwrap();
    assert!(delta.get("bin/gcs").is_some() && delta.get("usr/sbin/runc").is_none());

    // vmlinux is an ELF kernel; the VHDs end in a fixed VHD footer.
    assert!(read(a.path(), "vmlinux").starts_with(b"\x7fELF"));
    for vhd in ["rootfs.vhd", "rootfs-verity.vhd"] {
        let data = read(a.path(), vhd);
        assert_eq!(
            &data[data.len() - 512..data.len() - 504],
            b"conectix",
            "{vhd}"
        );
    }
    let info = String::from_utf8(read(a.path(), "rootfs-verity.info")).unwrap();
    assert!(info.contains(&format!("root_hash={}", built.verity_root)));
}

#[test]
fn rootfs_vhd_is_a_clean_ext4_filesystem() {
    let out = tempfile::tempdir().unwrap();
    let mut i = inputs(0);
    i.kernel = None;
    build(&i, out.path()).expect("build");
    let vhd: PathBuf = out.path().join("rootfs.vhd");
    let r = std::process::Command::new("e2fsck")
        .args(["-fn"])
        .arg(&vhd)
        .output()
        .expect("run e2fsck (e2fsprogs)");
    assert!(
        r.status.success(),
        "e2fsck: {}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
}

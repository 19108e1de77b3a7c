//! Default-mode images checked with the real tools: `e2fsck -fn`, `debugfs`, a read-only loop
//! mount, an overlay mount of two layers, `veritysetup` and `qemu-img`. These need the tools
//! (e2fsprogs, cryptsetup-bin, qemu-utils) and, for mounts, root; CI runs as root with them.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Cursor;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build_tar, expected, mixed_tree, Entry, Expect, Kind};
use ext4::{Options, OutputMode};

fn run(cmd: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed to run this test: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The `--image-opts` spec that makes `qemu-img` read a VHD's size as Hyper-V does: from the
/// footer's current size. Without `force_size_calc`, qemu 7.2 (Debian 12) derives the size from
/// the CHS geometry, which the reference writes as 0, and reports a virtual size of 0.
fn vpc_image_opts(path: &Path) -> String {
    let p = path.to_str().expect("temp paths are UTF-8");
    assert!(
        !p.contains(','),
        "qemu option values would need escaping: {p}"
    );
    format!("driver=vpc,force_size_calc=current_size,file.driver=file,file.filename={p}")
}

fn assert_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "this test mounts images and must run as root (CI does)"
    );
}

fn convert_to(dir: &Path, name: &str, tar: &[u8], opts: &Options) -> (PathBuf, ext4::Outcome) {
    let path = dir.join(name);
    let outcome = ext4::convert_to_path(tar, &path, opts).expect("conversion succeeds");
    (path, outcome)
}

fn e2fsck_clean(img: &Path) {
    let (rc, text) = run("e2fsck", &["-fn", img.to_str().unwrap()]);
    assert_eq!(rc, 0, "e2fsck -fn complained:\n{text}");
}

/// A read-only loop mount removed on drop (also when the test fails).
struct Mount(PathBuf);

impl Mount {
    fn new(src: &str, target: &Path, args: &[&str]) -> Mount {
        fs::create_dir_all(target).unwrap();
        let mut a: Vec<&str> = args.to_vec();
        a.push(src);
        a.push(target.to_str().unwrap());
        let (rc, text) = run("mount", &a);
        assert_eq!(rc, 0, "mount {a:?} failed: {text}");
        Mount(target.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let (rc, _) = run("umount", &[self.0.to_str().unwrap()]);
        if rc != 0 {
            let _ = run("umount", &["-l", self.0.to_str().unwrap()]);
        }
    }
}

fn lgetxattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 65536];
    // SAFETY: c is a valid NUL-terminated path and names a writable buffer of the given size.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(
        n >= 0,
        "llistxattr {p:?}: {}",
        std::io::Error::last_os_error()
    );
    let mut out = BTreeMap::new();
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
    {
        let cn = CString::new(name).unwrap();
        let mut val = vec![0u8; 65536];
        // SAFETY: both strings are NUL-terminated and val is a writable buffer of its length.
        let m =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        assert!(
            m >= 0,
            "lgetxattr {p:?} {name:?}: {}",
            std::io::Error::last_os_error()
        );
        out.insert(
            String::from_utf8_lossy(name).into_owned(),
            val[..m as usize].to_vec(),
        );
    }
    out
}

/// Checks a mounted (or extracted) tree against the expectation.
fn compare_tree(root: &Path, want: &BTreeMap<String, Expect>, check_xattrs: bool) {
    for (path, e) in want {
        let p = root.join(path);
        let md = fs::symlink_metadata(&p).unwrap_or_else(|err| panic!("{path}: {err}"));
        let ft = md.file_type();
        match &e.kind {
            Kind::File(data) => {
                assert!(ft.is_file(), "{path}: not a file");
                assert_eq!(&fs::read(&p).unwrap(), data, "{path}: content");
            }
            Kind::Dir => assert!(ft.is_dir(), "{path}: not a dir"),
            Kind::Symlink(t) => {
                assert!(ft.is_symlink(), "{path}: not a symlink");
                assert_eq!(
                    fs::read_link(&p).unwrap().as_os_str().as_bytes(),
                    t.as_bytes(),
                    "{path}"
                );
            }
            Kind::Fifo => assert!(ft.is_fifo(), "{path}: not a fifo"),
            Kind::Char(ma, mi) | Kind::Block(ma, mi) => {
                assert!(
                    ft.is_char_device() || ft.is_block_device(),
                    "{path}: not a device"
                );
                let rdev = md.rdev();
                assert_eq!(
                    (libc::major(rdev), libc::minor(rdev)),
                    (*ma, *mi),
                    "{path}: rdev"
                );
            }
        }
        assert_eq!(md.mode() & 0o7777, e.mode, "{path}: mode");
        assert_eq!(
            (u64::from(md.uid()), u64::from(md.gid())),
            (e.uid, e.gid),
            "{path}: owner"
        );
        if let Some(t) = e.mtime {
            assert_eq!(md.mtime(), t, "{path}: mtime as the kernel reads it");
        }
        if let Some(other) = &e.same_inode_as {
            let o = fs::symlink_metadata(root.join(other)).unwrap();
            assert_eq!(
                md.ino(),
                o.ino(),
                "{path}: hard link shares the inode of {other}"
            );
        }
        if check_xattrs {
            let got = lgetxattrs(&p);
            assert_eq!(got, e.xattrs, "{path}: xattrs");
        }
    }
}

fn default_opts() -> Options {
    Options {
        mode: OutputMode::Default,
        ..Options::default()
    }
}

#[test]
fn generated_tree_is_e2fsck_clean_and_debugfs_shows_the_tar() {
    let dir = tempfile::tempdir().unwrap();
    let entries = mixed_tree(1);
    let tar = build_tar(&entries);
    for (name, inline) in [("plain.img", false), ("inline.img", true)] {
        let opts = Options {
            inline_data: inline,
            ..default_opts()
        };
        let (img, _) = convert_to(dir.path(), name, &tar, &opts);
        e2fsck_clean(&img);
        let s = ext4::check::check(&fs::read(&img).unwrap()).expect("structural check passes");
        assert!(s.directories >= 10, "{s:?}");
        // Every regular file's bytes as debugfs reads them.
        for (path, e) in expected(&entries) {
            if let Kind::File(data) = &e.kind {
                let out = Command::new("debugfs")
                    .args(["-R", &format!("cat /{path}"), img.to_str().unwrap()])
                    .output()
                    .expect("debugfs must be installed");
                // debugfs prints all 60 bytes of i_block for inline files shorter than that
                // (also for the reference's images), so compare up to the file size there.
                let got = if inline && out.stdout.len() >= data.len() && data.len() <= 60 {
                    &out.stdout[..data.len()]
                } else {
                    &out.stdout[..]
                };
                assert_eq!(got, &data[..], "{name}: debugfs cat /{path}");
            }
        }
        let (rc, ls) = run("debugfs", &["-R", "ls -l /etc", img.to_str().unwrap()]);
        assert_eq!(rc, 0);
        assert!(ls.contains("f12_300000"), "{ls}");
    }
}

#[test]
fn times_outside_1970_2038_read_back_right_in_default_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for (i, t) in [
        -1i64,
        -946_771_200,
        -2_147_483_648,
        2_147_483_648,
        2_208_988_800,
        4_294_967_295,
        4_294_967_296,
    ]
    .iter()
    .enumerate()
    {
        let mut e = Entry::new(&format!("t{i}"), Kind::File(vec![b'x'; i]));
        e.mtime = *t;
        entries.push(e);
    }
    let (img, _) = convert_to(dir.path(), "t.img", &build_tar(&entries), &default_opts());
    e2fsck_clean(&img);
    for (i, e) in entries.iter().enumerate() {
        let (_, st) = run(
            "debugfs",
            &["-R", &format!("stat /t{i}"), img.to_str().unwrap()],
        );
        // debugfs prints the decoded time; compare the year with the tar's.
        let year = 1970.0 + e.mtime as f64 / 31_556_952.0;
        let y = year.floor() as i64;
        assert!(
            st.contains(&format!(" {y}"))
                || st.contains(&format!(" {}", y + 1))
                || st.contains(&format!(" {}", y - 1)),
            "t{i} ({}) not decoded near {y}:\n{st}",
            e.mtime
        );
    }
}

#[test]
fn loop_mount_shows_the_tar() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let entries = mixed_tree(2);
    let tar = build_tar(&entries);
    let want = expected(&entries);
    for (name, inline) in [("m.img", false), ("mi.img", true)] {
        let opts = Options {
            inline_data: inline,
            ..default_opts()
        };
        let (img, _) = convert_to(dir.path(), name, &tar, &opts);
        let mnt = dir.path().join(format!("{name}.mnt"));
        let _m = Mount::new(
            img.to_str().unwrap(),
            &mnt,
            &["-t", "ext4", "-o", "loop,ro"],
        );
        compare_tree(&mnt, &want, true);
        // the lost+found every image carries, and implicit parents exist
        assert!(mnt.join("lost+found").is_dir());
        assert!(mnt.join("usr/share/doc/p3").is_dir());
    }
}

#[test]
fn acl_xattrs_are_readable_through_the_kernel() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    // user::rw- user:1000:r-- group::r-- mask::r-- other::--- in the xattr-API format (v2)
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    let mut e = Entry::new("acl", Kind::File(b"a".to_vec()));
    e.mode = 0o640;
    e.xattrs
        .push(("system.posix_acl_access".into(), acl.clone()));
    let (img, _) = convert_to(dir.path(), "acl.img", &build_tar(&[e]), &default_opts());
    e2fsck_clean(&img);
    let mnt = dir.path().join("mnt");
    let _m = Mount::new(
        img.to_str().unwrap(),
        &mnt,
        &["-t", "ext4", "-o", "loop,ro"],
    );
    let got = lgetxattrs(&mnt.join("acl"));
    assert_eq!(got.get("system.posix_acl_access"), Some(&acl));
}

#[test]
fn whiteouts_work_through_a_real_overlay_mount() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let lower = vec![
        Entry::new("a", Kind::File(b"a".to_vec())),
        Entry::new("keep", Kind::File(b"keep".to_vec())),
        Entry::new("d/", Kind::Dir),
        Entry::new("d/x", Kind::File(b"x".to_vec())),
        Entry::new("o/", Kind::Dir),
        Entry::new("o/lower_only", Kind::File(b"l".to_vec())),
    ];
    let upper = vec![
        Entry::new(".wh.a", Kind::File(Vec::new())),
        Entry::new("d/.wh..wh..opq", Kind::File(Vec::new())),
        Entry::new("d/y", Kind::File(b"y".to_vec())),
        Entry::new("o/.wh.lower_only", Kind::File(Vec::new())),
        Entry::new("o/new", Kind::File(b"n".to_vec())),
    ];
    let opts = Options {
        convert_whiteout: true,
        ..default_opts()
    };
    let (l1, _) = convert_to(dir.path(), "l1.img", &build_tar(&lower), &opts);
    let (l2, _) = convert_to(dir.path(), "l2.img", &build_tar(&upper), &opts);
    e2fsck_clean(&l1);
    e2fsck_clean(&l2);
    let m1 = dir.path().join("m1");
    let m2 = dir.path().join("m2");
    let merged = dir.path().join("merged");
    let _a = Mount::new(l1.to_str().unwrap(), &m1, &["-t", "ext4", "-o", "loop,ro"]);
    let _b = Mount::new(l2.to_str().unwrap(), &m2, &["-t", "ext4", "-o", "loop,ro"]);
    let lowerdir = format!("lowerdir={}:{}", m2.display(), m1.display());
    let _o = Mount::new("overlay", &merged, &["-t", "overlay", "-o", &lowerdir]);
    let mut names: Vec<String> = fs::read_dir(&merged)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["d", "keep", "lost+found", "o"]);
    let d: Vec<_> = fs::read_dir(merged.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(d, ["y"], "opaque dir hides the lower layer's contents");
    let mut o: Vec<String> = fs::read_dir(merged.join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    o.sort();
    assert_eq!(o, ["new"]);
    // In the layer itself the whiteout is a 0:0 char device with mode 0000.
    let md = fs::symlink_metadata(m2.join("a")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!((md.rdev(), md.mode() & 0o7777), (0, 0));
}

#[test]
fn veritysetup_accepts_the_image_with_the_printed_root_hash() {
    let dir = tempfile::tempdir().unwrap();
    let tar = build_tar(&mixed_tree(3));
    for mode in [OutputMode::Default, OutputMode::Compat] {
        let opts = Options::layer_vhd(mode);
        let (img, outcome) = convert_to(dir.path(), "v.vhd", &tar, &opts);
        let root = outcome.verity.as_ref().unwrap().root_hex();
        let bytes = fs::read(&img).unwrap();
        let body = dir.path().join("body");
        fs::write(&body, &bytes[..bytes.len() - 512]).unwrap();
        let off = format!("--hash-offset={}", outcome.ext4_size);
        let b = body.to_str().unwrap();
        let (rc, text) = run("veritysetup", &["verify", b, b, &root, &off]);
        assert_eq!(rc, 0, "veritysetup verify: {text}");
        // The reader side (hcsshim's ReadDMVerityInfo) reports the same root.
        let info = ext4::verity::read_info(&mut Cursor::new(&bytes), outcome.ext4_size).unwrap();
        assert_eq!(info.root_hash, root);
        // veritysetup format with the zero salt builds the same tree.
        let data = dir.path().join("data");
        let hash = dir.path().join("hash");
        fs::write(&data, &bytes[..outcome.ext4_size as usize]).unwrap();
        let salt = format!("--salt={}", "0".repeat(64));
        let (rc, text) = run(
            "veritysetup",
            &[
                "format",
                &salt,
                data.to_str().unwrap(),
                hash.to_str().unwrap(),
            ],
        );
        assert_eq!(rc, 0, "{text}");
        assert!(
            text.contains(&root),
            "veritysetup format root differs:\n{text}"
        );
        let h = fs::read(&hash).unwrap();
        let tree = &outcome.verity.as_ref().unwrap().tree;
        assert_eq!(&h[4096..4096 + tree.len()], &tree[..]);
        // A flipped data byte makes verification fail.
        let mut bad = bytes[..bytes.len() - 512].to_vec();
        bad[5 * 4096 + 7] ^= 1;
        fs::write(&body, &bad).unwrap();
        let (rc, _) = run("veritysetup", &["verify", b, b, &root, &off]);
        assert_ne!(rc, 0, "corruption must be detected");
        if mode == OutputMode::Default {
            let ext4_part = dir.path().join("ext4");
            fs::write(&ext4_part, &bytes[..outcome.ext4_size as usize]).unwrap();
            e2fsck_clean(&ext4_part);
        }
    }
}

#[test]
fn qemu_img_reports_the_virtual_size_of_the_vhd() {
    let dir = tempfile::tempdir().unwrap();
    let tar = build_tar(&mixed_tree(4));
    let opts = Options {
        append_vhd_footer: true,
        ..default_opts()
    };
    let (img, outcome) = convert_to(dir.path(), "q.vhd", &tar, &opts);
    let (rc, text) = run(
        "qemu-img",
        &[
            "info",
            "--output=json",
            "--image-opts",
            &vpc_image_opts(&img),
        ],
    );
    assert_eq!(rc, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["virtual-size"].as_u64(), Some(outcome.total_size - 512));
    assert_eq!(outcome.total_size, fs::metadata(&img).unwrap().len());
    let raw = dir.path().join("raw");
    let (rc, text) = run(
        "qemu-img",
        &[
            "convert",
            "--image-opts",
            &vpc_image_opts(&img),
            "-O",
            "raw",
            raw.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 0, "{text}");
    let all = fs::read(&img).unwrap();
    assert_eq!(fs::read(&raw).unwrap(), &all[..all.len() - 512]);
}

#[test]
fn cli_prints_the_root_hash_veritysetup_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let tarp = dir.path().join("in.tar");
    fs::write(&tarp, build_tar(&mixed_tree(5))).unwrap();
    let out = dir.path().join("out.vhd");
    let bin = env!("CARGO_BIN_EXE_tar2ext4");
    let o = Command::new(bin)
        .args(["-i", tarp.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args([
            "-overlay",
            "-vhd",
            "-dm-verity",
            "-max-disk-size",
            "128G",
            "-root-hash",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert_eq!(root.len(), 64);
    let bytes = fs::read(&out).unwrap();
    let size = ext4::tar2ext4::ext4_filesystem_size(&mut Cursor::new(&bytes)).unwrap();
    let body = dir.path().join("body");
    fs::write(&body, &bytes[..bytes.len() - 512]).unwrap();
    let b = body.to_str().unwrap();
    let (rc, text) = run(
        "veritysetup",
        &["verify", b, b, &root, &format!("--hash-offset={size}")],
    );
    assert_eq!(rc, 0, "{text}");
}

/// `--sync` changes when the bytes reach the disk, never which bytes: the same image as
/// without it (fixed ids make the outputs comparable), renamed into place, nothing left over.
#[test]
fn cli_sync_writes_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let tarp = dir.path().join("in.tar");
    fs::write(&tarp, build_tar(&mixed_tree(3))).unwrap();
    let bin = env!("CARGO_BIN_EXE_tar2ext4");
    let mut images = Vec::new();
    for (name, extra) in [("plain.img", &[][..]), ("synced.img", &["--sync"][..])] {
        let out = dir.path().join(name);
        let o = Command::new(bin)
            .args(["-i", tarp.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .args(["-overlay", "-inline"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        images.push(fs::read(&out).unwrap());
    }
    assert!(!images[0].is_empty());
    assert!(images[0] == images[1], "--sync changed the image");
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["in.tar", "plain.img", "synced.img"]);
}

/// A PAX 1.0 sparse file of `size` bytes with a few data islands, built with the `tar` crate.
fn sparse_tar(name: &str, size: u64, islands: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut map = format!("{}\n", islands.len());
    for (off, d) in islands {
        map.push_str(&format!("{off}\n{}\n", d.len()));
    }
    let mut body = map.into_bytes();
    body.resize(body.len().div_ceil(512) * 512, 0);
    for (_, d) in islands {
        body.extend_from_slice(d);
    }
    let mut b = tar::Builder::new(Vec::new());
    let size_s = size.to_string();
    b.append_pax_extensions([
        ("GNU.sparse.major", &b"1"[..]),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", name.as_bytes()),
        ("GNU.sparse.realsize", size_s.as_bytes()),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, format!("GNUSparseFile.0/{name}"), &body[..])
        .unwrap();
    b.into_inner().unwrap()
}

#[test]
fn files_over_512_mib_get_a_valid_depth_1_extent_tree() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    // 5 extents of up to 128 MiB: the extent tree no longer fits in the inode.
    let size = (4u64 << 27) + 3 * 4096 + 10;
    let islands = vec![
        (0, vec![1u8; 4096]),
        (300 << 20, vec![2u8; 8192]),
        (size - 10, vec![3u8; 10]),
    ];
    let tar = sparse_tar("big", size, &islands);
    let (img, _) = convert_to(dir.path(), "big.img", &tar, &default_opts());
    e2fsck_clean(&img);
    ext4::check::check(&fs::read(&img).unwrap()).expect("structural check passes");
    let (_, st) = run("debugfs", &["-R", "stat /big", img.to_str().unwrap()]);
    assert!(
        st.contains("(ETB0)"),
        "expected an extent index block:\n{st}"
    );
    let mnt = dir.path().join("mnt");
    let _m = Mount::new(
        img.to_str().unwrap(),
        &mnt,
        &["-t", "ext4", "-o", "loop,ro"],
    );
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(mnt.join("big")).unwrap();
    assert_eq!(f.metadata().unwrap().len(), size);
    for (off, d) in &islands {
        let mut got = vec![0u8; d.len()];
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.read_exact(&mut got).unwrap();
        assert_eq!(&got, d, "island at {off}");
    }
    let mut mid = vec![9u8; 4096];
    f.seek(SeekFrom::Start(200 << 20)).unwrap();
    f.read_exact(&mut mid).unwrap();
    assert!(mid.iter().all(|&b| b == 0), "holes read back as zeros");
}

#[test]
fn every_golden_tar_is_e2fsck_clean_in_default_mode() {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tar2ext4/tars");
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in fs::read_dir(&golden).unwrap() {
        let tar = fs::read(entry.unwrap().path()).unwrap();
        for (i, o) in [
            default_opts(),
            Options {
                convert_whiteout: true,
                ..default_opts()
            },
            Options {
                inline_data: true,
                ..default_opts()
            },
            Options {
                convert_whiteout: true,
                max_disk_size: 128 << 30,
                ..default_opts()
            },
        ]
        .iter()
        .enumerate()
        {
            let (img, _) = convert_to(dir.path(), &format!("g{n}_{i}.img"), &tar, o);
            e2fsck_clean(&img);
            ext4::check::check(&fs::read(&img).unwrap()).expect("structural check passes");
            fs::remove_file(img).unwrap();
        }
        n += 1;
    }
    assert!(n >= 11);
}

#[test]
fn cli_only_vhd_appends_a_footer_and_usage_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.img");
    fs::write(&raw, vec![5u8; 3 * 4096]).unwrap();
    let out = dir.path().join("raw.vhd");
    let bin = env!("CARGO_BIN_EXE_tar2ext4");
    let st = Command::new(bin)
        .args([
            "-only-vhd",
            "-i",
            raw.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let v = fs::read(&out).unwrap();
    assert_eq!(&v[..3 * 4096], &fs::read(&raw).unwrap()[..]);
    let (rc, text) = run(
        "qemu-img",
        &[
            "info",
            "--output=json",
            "--image-opts",
            &vpc_image_opts(&out),
        ],
    );
    assert_eq!(rc, 0, "{text}");
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(j["virtual-size"].as_u64(), Some(3 * 4096));
    for args in [&["-o", "x", "positional"][..], &["-i", "x"][..]] {
        let st = Command::new(bin)
            .args(args)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(1), "{args:?}");
    }
    // a failed conversion leaves no output behind
    let bad = dir.path().join("bad.tar");
    fs::write(&bad, vec![1u8; 700]).unwrap();
    let st = Command::new(bin)
        .args(["-i", bad.to_str().unwrap(), "-o", "never.img"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1));
    assert!(!dir.path().join("never.img").exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no temporary files left"
    );
}

#[test]
fn many_inodes_spread_over_several_groups_are_e2fsck_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for i in 0..40_000 {
        entries.push(Entry::new(
            &format!("d{}/f{i}", i % 7),
            Kind::File(Vec::new()),
        ));
    }
    let tar = build_tar(&entries);
    let (img, _) = convert_to(dir.path(), "many.img", &tar, &default_opts());
    e2fsck_clean(&img);
    let bytes = fs::read(&img).unwrap();
    let s = ext4::check::check(&bytes).expect("structural check passes");
    assert_eq!(s.directories, 9);
    let (_, dump) = run("dumpe2fs", &["-h", img.to_str().unwrap()]);
    assert!(dump.contains("Inode count"), "{dump}");
}

#[test]
fn compat_images_have_only_the_reference_e2fsck_findings() {
    // The reference's images fail e2fsck only for the inode-bitmap padding (D1) and, for
    // times outside 1970-2038, for timestamps (D2). A compat image of any tree must show
    // nothing else.
    let dir = tempfile::tempdir().unwrap();
    let tar = build_tar(&mixed_tree(6));
    for (i, inline) in [false, true].into_iter().enumerate() {
        let opts = Options {
            mode: OutputMode::Compat,
            inline_data: inline,
            convert_whiteout: true,
            ..Options::default()
        };
        let (img, _) = convert_to(dir.path(), &format!("c{i}.img"), &tar, &opts);
        let (rc, text) = run("e2fsck", &["-fn", img.to_str().unwrap()]);
        assert_eq!(rc, 4, "{text}");
        assert!(
            text.contains("Padding at end of inode bitmap is not set"),
            "{text}"
        );
        for line in text.lines() {
            let known = line.starts_with("Pass ")
                || line.starts_with("e2fsck ")
                || line.contains("Padding at end of inode bitmap")
                || line.contains("Timestamp(s) on inode")
                || line.contains("WARNING: Filesystem still has errors")
                || line.starts_with("Fix? no")
                || line.contains(" files, ")
                || line.trim().is_empty()
                || line.starts_with(img.to_str().unwrap());
            assert!(known, "unexpected e2fsck finding: {line}\n{text}");
        }
        ext4::check::check(&fs::read(&img).unwrap()).expect("structural check passes");
    }
}

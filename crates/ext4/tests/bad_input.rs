//! Bad input gets a clear error (or a documented normalisation), never a corrupt image, and a
//! failed conversion leaves no output file.

mod common;

use std::fs;
use std::io::Cursor;

use common::{build_tar, Entry, Kind};
use ext4::{convert, Error, File, Options, OutputMode, Writer, WriterOptions};

fn opts(mode: OutputMode) -> Options {
    Options {
        mode,
        ..Options::default()
    }
}

fn run(tar: &[u8], o: &Options) -> Result<Vec<u8>, Error> {
    let mut out = Cursor::new(Vec::new());
    convert(tar, &mut out, o).map(|_| out.into_inner())
}

fn both_modes() -> [Options; 2] {
    [opts(OutputMode::Default), opts(OutputMode::Compat)]
}

fn small_tar() -> Vec<u8> {
    build_tar(&[
        Entry::new("a/", Kind::Dir),
        Entry::new("a/file", Kind::File(vec![7u8; 3000])),
    ])
}

#[test]
fn truncated_tar_is_an_error() {
    let tar = small_tar();
    for o in both_modes() {
        // inside the file data
        let e = run(&tar[..512 * 3 + 100], &o).unwrap_err();
        assert!(matches!(e, Error::TarTruncated(_)), "{e}");
        // inside a header block
        let e = run(&tar[..700], &o).unwrap_err();
        assert!(matches!(e, Error::TarTruncated(_)), "{e}");
    }
}

#[test]
fn missing_end_marker_is_an_error_in_default_mode_only() {
    let tar = small_tar();
    // header(a/) + header(a/file) + 6 data blocks, no zero blocks
    let cut = &tar[..512 * 8];
    assert!(matches!(
        run(cut, &opts(OutputMode::Default)),
        Err(Error::TarTruncated(_))
    ));
    // Go's archive/tar treats this as a normal end; compat mode must too.
    assert!(run(cut, &opts(OutputMode::Compat)).is_ok());
}

#[test]
fn corrupt_header_is_an_error() {
    let mut tar = small_tar();
    tar[512 + 10] ^= 0x55; // name byte of the second header: checksum no longer matches
    for o in both_modes() {
        let e = run(&tar, &o).unwrap_err();
        assert!(matches!(e, Error::TarHeader(_)), "{e}");
    }
    // random garbage never panics
    let mut r = common::Rng::new(9);
    for n in [1usize, 511, 512, 1024, 5000] {
        let g = r.bytes(n);
        for o in both_modes() {
            let _ = run(&g, &o);
        }
    }
}

#[test]
fn dot_dot_and_absolute_paths_are_confined_to_the_image() {
    // Names are cleaned as path.Clean("/" + name): they cannot leave the image's root.
    let mut w = Writer::new(Cursor::new(Vec::new()), WriterOptions::default());
    for name in [&b"../../etc/x"[..], b"/abs/y", b"./a/../b"] {
        w.make_parents(name).unwrap();
        w.create(
            name,
            File {
                mode: 0o644,
                ..File::default()
            },
        )
        .unwrap();
    }
    for name in [&b"etc/x"[..], b"abs/y", b"b"] {
        assert_eq!(
            w.stat(name).unwrap().mode & 0o777,
            0o644,
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    w.close().unwrap();
}

#[test]
fn duplicate_entries_replace_or_fail_clearly() {
    let f = |p: &str, n: usize| Entry::new(p, Kind::File(vec![1; n]));
    for o in both_modes() {
        // A second regular file with data cannot replace the first (its blocks are written).
        let e = run(&build_tar(&[f("x", 10), f("x", 20)]), &o).unwrap_err();
        assert!(matches!(e, Error::OverwriteData(_)), "{e}");
        // Metadata-only duplicates replace: the later entry wins.
        assert!(run(&build_tar(&[f("x", 0), f("x", 5)]), &o).is_ok());
        assert!(run(
            &build_tar(&[Entry::new("d/", Kind::Dir), Entry::new("d/", Kind::Dir)]),
            &o
        )
        .is_ok());
        let e = run(&build_tar(&[Entry::new("d/", Kind::Dir), f("d", 0)]), &o).unwrap_err();
        assert!(matches!(e, Error::ReplaceDirWithFile(_)), "{e}");
        let e = run(&build_tar(&[f("d", 0), Entry::new("d/", Kind::Dir)]), &o).unwrap_err();
        assert!(matches!(e, Error::ReplaceFileWithDir(_)), "{e}");
    }
}

#[test]
fn names_longer_than_255_bytes_are_rejected() {
    let long = "n".repeat(256);
    for o in both_modes() {
        let e = run(&build_tar(&[Entry::new(&long, Kind::File(vec![]))]), &o).unwrap_err();
        assert!(matches!(e, Error::InvalidName(_)), "{e}");
        assert!(run(
            &build_tar(&[Entry::new(&"n".repeat(255), Kind::File(vec![]))]),
            &o
        )
        .is_ok());
    }
}

#[test]
fn bad_links_are_errors() {
    for o in both_modes() {
        let mut l = Entry::new("l", Kind::Dir);
        l.link_to = Some("missing".into());
        assert!(matches!(
            run(&build_tar(&[l.clone()]), &o),
            Err(Error::FileNotFound(_))
        ));
        l.link_to = Some("d".into());
        let e = run(&build_tar(&[Entry::new("d/", Kind::Dir), l]), &o).unwrap_err();
        assert!(matches!(e, Error::LinkToDirectory(..)), "{e}");
    }
}

#[test]
fn files_larger_than_the_maximum_disk_size_fail() {
    let tar = build_tar(&[Entry::new("big", Kind::File(vec![1; 2 << 20]))]);
    for mode in [OutputMode::Default, OutputMode::Compat] {
        let o = Options {
            max_disk_size: 1 << 20,
            ..opts(mode)
        };
        let e = run(&tar, &o).unwrap_err();
        assert!(matches!(e, Error::DiskTooLarge(_)), "{e}");
    }
    // A header declaring more than 128 GiB fails before any data is read.
    let mut h = tar::Header::new_gnu();
    h.set_size(129 << 30);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("huge").unwrap();
    h.set_cksum();
    let mut t = h.as_bytes().to_vec();
    t.extend_from_slice(&[0u8; 1024]);
    let e = run(&t, &opts(OutputMode::Default)).unwrap_err();
    assert!(matches!(e, Error::FileTooBig { .. }), "{e}");
}

#[test]
fn oversized_xattrs_are_rejected() {
    let mut e = Entry::new("x", Kind::File(vec![]));
    e.xattrs.push(("user.a".into(), vec![b'a'; 3000]));
    e.xattrs.push(("user.b".into(), vec![b'b'; 3000]));
    for o in both_modes() {
        let err = run(&build_tar(&[e.clone()]), &o).unwrap_err();
        assert!(matches!(err, Error::XattrTooBig(..)), "{err}");
    }
}

#[test]
fn pax_global_headers_become_files_only_in_compat_mode() {
    let plain = build_tar(&[Entry::new("f", Kind::File(b"x".to_vec()))]);
    let mut b = tar::Builder::new(Vec::new());
    let mut g = tar::Header::new_ustar();
    let rec = b"18 comment=hello!\n";
    g.set_size(rec.len() as u64);
    g.set_entry_type(tar::EntryType::XGlobalHeader);
    g.set_path("pax_global_header").unwrap();
    g.set_cksum();
    b.append(&g, &rec[..]).unwrap();
    let mut with_global = b.into_inner().unwrap();
    with_global.truncate(with_global.len() - 1024); // drop the end marker, append plain's entries
    with_global.extend_from_slice(&plain);
    let d = opts(OutputMode::Default);
    assert_eq!(run(&with_global, &d).unwrap(), run(&plain, &d).unwrap());
    let c = opts(OutputMode::Compat);
    assert_ne!(run(&with_global, &c).unwrap(), run(&plain, &c).unwrap());
}

#[test]
fn failed_conversion_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.img");
    let tar = small_tar();
    let e = ext4::convert_to_path(&tar[..700], &out, &opts(OutputMode::Default)).unwrap_err();
    assert!(matches!(e, Error::TarTruncated(_)));
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no partial or temporary file"
    );
    // An existing output stays untouched on failure and is replaced on success.
    fs::write(&out, b"previous").unwrap();
    assert!(ext4::convert_to_path(&tar[..700], &out, &opts(OutputMode::Default)).is_err());
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    ext4::convert_to_path(&tar[..], &out, &opts(OutputMode::Default)).unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_ne!(fs::read(&out).unwrap(), b"previous");
}

#[test]
fn gzip_input_is_detected() {
    use std::io::{Read, Write};
    let tar = small_tar();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let mut r = ext4::tar2ext4::maybe_gunzip(&gz[..]).unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert_eq!(back, tar);
    let mut r = ext4::tar2ext4::maybe_gunzip(&tar[..]).unwrap();
    back.clear();
    r.read_to_end(&mut back).unwrap();
    assert_eq!(back, tar);
}

/// Found by the ext4_superblocks fuzz target: a short image failed the size probe and left
/// the reader 1024 bytes in.
#[test]
fn filesystem_size_of_a_short_image_fails_and_keeps_the_position() {
    use std::io::{Seek, SeekFrom};
    let mut dev = Cursor::new(vec![0u8; 1500]);
    dev.seek(SeekFrom::Start(7)).unwrap();
    assert!(ext4::tar2ext4::ext4_filesystem_size(&mut dev).is_err());
    assert_eq!(dev.stream_position().unwrap(), 7);
    let mut dev = Cursor::new(vec![0u8; 4096]);
    assert!(matches!(
        ext4::tar2ext4::ext4_filesystem_size(&mut dev),
        Err(Error::NotExt4)
    ));
    assert_eq!(dev.stream_position().unwrap(), 0);
}

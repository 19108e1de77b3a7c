//! Round trips backup stream → tar → backup stream for every record kind, and the tar
//! reader's handling of bad input.

use std::io::Cursor;

use super::*;
use crate::backup::*;
use crate::ea::{self, ExtendedAttribute};
use crate::error::Error;
use crate::fileinfo::*;
use crate::reparse::ReparsePoint;

/// One entry as the import side sees it.
#[derive(Debug, PartialEq)]
struct Imported {
    name: String,
    size: u64,
    info: FileBasicInfo,
    stream: Vec<u8>,
}

fn import_all(tar: &[u8]) -> crate::Result<Vec<Imported>> {
    let mut archive = TarArchive::new(tar);
    let mut entries = archive.entries()?;
    let mut out = Vec::new();
    let mut next = entries.next_entry()?;
    while let Some((hdr, data)) = next {
        let (name, size, info) = file_info_from_header(&hdr)?;
        let mut stream = Vec::new();
        next = write_backup_stream_from_tar_file(&mut stream, &mut entries, &hdr, data)?;
        out.push(Imported {
            name,
            size,
            info,
            stream,
        });
    }
    Ok(out)
}

fn export_one(t: &mut TarOut<&mut Vec<u8>>, name: &str, size: u64, info: FileBasicInfo, s: &[u8]) {
    let mut src = SeekRewind::new(Cursor::new(s)).unwrap();
    write_tar_file_from_backup_stream(t, &mut src, name, size, &info).unwrap();
}

fn info(attrs: u32) -> FileBasicInfo {
    FileBasicInfo {
        creation_time: 132_000_000_000_000_001,
        last_access_time: 132_000_000_100_000_000,
        last_write_time: 132_000_000_200_000_007,
        change_time: 132_000_000_300_000_000,
        file_attributes: attrs,
    }
}

fn stream(records: &[(BackupHeader, &[u8])]) -> Vec<u8> {
    let mut w = BackupStreamWriter::new(Vec::new());
    for (h, d) in records {
        w.write_record(h, d).unwrap();
    }
    w.finish().unwrap()
}

fn sd() -> Vec<u8> {
    // A self-relative descriptor header with an owner SID (S-1-5-18), enough for the codec.
    let mut b = vec![
        1, 0, 0x04, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    b.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
    b
}

fn ads(name: &str, size: u64) -> BackupHeader {
    BackupHeader {
        name: format!(":{name}:$DATA"),
        ..BackupHeader::new(BACKUP_ALTERNATE_DATA, size)
    }
}

#[test]
fn every_record_kind_round_trips() {
    let eas = ea::encode(&[
        ExtendedAttribute {
            name: "$KERNEL.PURGE.ESBCACHE".into(),
            flags: 0,
            value: vec![1, 2, 3],
        },
        ExtendedAttribute {
            name: "USER.X".into(),
            flags: 0,
            value: b"v".to_vec(),
        },
    ])
    .unwrap();
    let file = stream(&[
        (
            BackupHeader::new(BACKUP_SECURITY_DATA, sd().len() as u64),
            &sd(),
        ),
        (BackupHeader::new(BACKUP_EA_DATA, eas.len() as u64), &eas),
        (BackupHeader::new(BACKUP_DATA, 11), b"hello world"),
        (ads("Zone.Identifier", 4), b"zone"),
        (ads("empty", 0), b""),
    ]);
    let dir = stream(&[(
        BackupHeader::new(BACKUP_SECURITY_DATA, sd().len() as u64),
        &sd(),
    )]);
    let link_rp = ReparsePoint {
        target: r"..\target\file".into(),
        is_mount_point: false,
    }
    .encode()
    .unwrap();
    let link = stream(&[(
        BackupHeader::new(BACKUP_REPARSE_DATA, link_rp.len() as u64),
        &link_rp,
    )]);
    let mp_rp = ReparsePoint {
        target: r"C:\ProgramData".into(),
        is_mount_point: true,
    }
    .encode()
    .unwrap();
    let mount = stream(&[(
        BackupHeader::new(BACKUP_REPARSE_DATA, mp_rp.len() as u64),
        &mp_rp,
    )]);
    let empty = stream(&[(BackupHeader::new(BACKUP_DATA, 0), b"")]);

    let dir_attrs = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_SYSTEM;
    let rp_attrs = FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_ARCHIVE;
    let cases: Vec<(&str, u64, FileBasicInfo, &Vec<u8>)> = vec![
        ("Files", 0, info(dir_attrs), &dir),
        (r"Files\file.txt", 11, info(FILE_ATTRIBUTE_ARCHIVE), &file),
        (r"Files\link", 0, info(rp_attrs), &link),
        (
            r"Files\junction",
            0,
            info(rp_attrs | FILE_ATTRIBUTE_DIRECTORY),
            &mount,
        ),
        (r"Files\empty", 0, info(0), &empty),
    ];
    let mut tar = Vec::new();
    let mut t = TarOut::new(&mut tar);
    for (name, size, i, s) in &cases {
        export_one(&mut t, name, *size, *i, s);
    }
    t.finish().unwrap();

    let got = import_all(&tar).unwrap();
    assert_eq!(got.len(), cases.len());
    for (g, (name, size, i, s)) in got.iter().zip(&cases) {
        assert_eq!(g.name, name.replace('\\', "/"));
        assert_eq!((g.size, g.info), (*size, *i), "{name}");
        assert_eq!(&g.stream, *s, "{name}");
    }
}

#[test]
fn pax_records_are_the_reference_ones() {
    let s = stream(&[
        (BackupHeader::new(BACKUP_SECURITY_DATA, 3), b"abc"),
        (BackupHeader::new(BACKUP_DATA, 2), b"hi"),
    ]);
    let mut tar = Vec::new();
    let mut t = TarOut::new(&mut tar);
    export_one(&mut t, r"Files\a", 2, info(FILE_ATTRIBUTE_ARCHIVE), &s);
    t.finish().unwrap();
    let mut archive = TarArchive::new(&tar[..]);
    let mut entries = archive.entries().unwrap();
    let (hdr, _) = entries.next_entry().unwrap().unwrap();
    let keys: Vec<&str> = hdr.pax.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "LIBARCHIVE.creationtime",
            "MSWINDOWS.fileattr",
            "MSWINDOWS.rawsd",
            "atime",
            "ctime",
            "mtime"
        ]
    );
    assert_eq!(hdr.pax_str("MSWINDOWS.rawsd").unwrap(), Some("YWJj"));
    assert_eq!(hdr.pax_str("MSWINDOWS.fileattr").unwrap(), Some("32"));
    assert_eq!(hdr.mode, mode::REG);
    assert_eq!(hdr.mtime, UnixTime::from_filetime(info(0).last_write_time));
}

#[test]
fn sparse_files_become_plain_data() {
    let s = stream(&[
        (
            BackupHeader {
                attributes: STREAM_SPARSE_ATTRIBUTE,
                ..BackupHeader::new(BACKUP_DATA, 0)
            },
            b"",
        ),
        (
            BackupHeader {
                offset: 3,
                ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 2)
            },
            b"ab",
        ),
        (
            BackupHeader {
                offset: 8,
                ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 1)
            },
            b"c",
        ),
        (
            BackupHeader {
                offset: 12,
                ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 0)
            },
            b"",
        ),
    ]);
    let mut tar = Vec::new();
    let mut t = TarOut::new(&mut tar);
    export_one(
        &mut t,
        "Files/sparse",
        12,
        info(FILE_ATTRIBUTE_SPARSE_FILE),
        &s,
    );
    t.finish().unwrap();
    let got = import_all(&tar).unwrap();
    let want = stream(&[(BackupHeader::new(BACKUP_DATA, 12), b"\0\0\0ab\0\0\0c\0\0\0")]);
    assert_eq!(got[0].stream, want);
    assert_eq!(got[0].info.file_attributes, FILE_ATTRIBUTE_SPARSE_FILE);

    // A block going backwards is refused.
    let back = stream(&[
        (
            BackupHeader {
                attributes: STREAM_SPARSE_ATTRIBUTE,
                ..BackupHeader::new(BACKUP_DATA, 0)
            },
            b"",
        ),
        (
            BackupHeader {
                offset: 4,
                ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 2)
            },
            b"ab",
        ),
        (
            BackupHeader {
                offset: 1,
                ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 0)
            },
            b"",
        ),
    ]);
    let mut tar = Vec::new();
    let mut t = TarOut::new(&mut tar);
    let mut src = SeekRewind::new(Cursor::new(&back)).unwrap();
    let err =
        write_tar_file_from_backup_stream(&mut t, &mut src, "Files/s", 6, &info(0)).unwrap_err();
    assert!(err.to_string().contains("goes back"), "{err}");
}

#[test]
fn long_and_non_ascii_names_use_pax_paths() {
    let deep: String = (0..20)
        .map(|i| format!("directory-{i:02}-with-a-long-name"))
        .collect::<Vec<_>>()
        .join("/");
    let names = [
        format!("Files/{deep}/file.txt"),
        "Files/Ünïcödé/日本語.txt".to_string(),
        format!("Files/{}", "x".repeat(200)),
    ];
    let mut tar = Vec::new();
    let mut t = TarOut::new(&mut tar);
    let s = stream(&[(BackupHeader::new(BACKUP_DATA, 1), b"1")]);
    for n in &names {
        export_one(&mut t, n, 1, info(0), &s);
    }
    t.finish().unwrap();
    let got = import_all(&tar).unwrap();
    let got_names: Vec<&str> = got.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        got_names,
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(names[0].len() > 260);
}

#[test]
fn size_mismatches_are_errors() {
    let s = stream(&[(BackupHeader::new(BACKUP_DATA, 3), b"abc")]);
    let mut tar = Vec::new();
    let mut t = TarOut::new(&mut tar);
    let mut src = SeekRewind::new(Cursor::new(&s)).unwrap();
    let err = write_tar_file_from_backup_stream(&mut t, &mut src, "f", 4, &info(0)).unwrap_err();
    assert!(err.to_string().contains("mismatch"), "{err}");
    let none = stream(&[(BackupHeader::new(BACKUP_SECURITY_DATA, 1), b"x")]);
    let mut src = SeekRewind::new(Cursor::new(&none)).unwrap();
    let err = write_tar_file_from_backup_stream(&mut t, &mut src, "f", 4, &info(0)).unwrap_err();
    assert!(err.to_string().contains("no data stream"), "{err}");
}

/// A small valid layer tar.
fn sample_tar() -> Vec<u8> {
    let mut tar = Vec::new();
    let mut t = TarOut::new(&mut tar);
    let d = stream(&[]);
    export_one(&mut t, "Files", 0, info(FILE_ATTRIBUTE_DIRECTORY), &d);
    let s = stream(&[(BackupHeader::new(BACKUP_DATA, 700), &[7u8; 700])]);
    export_one(&mut t, "Files/a", 700, info(0), &s);
    export_one(&mut t, "Files/b", 700, info(0), &s);
    t.finish().unwrap();
    tar
}

#[test]
fn truncated_tars_are_errors_never_shorter_layers() {
    let tar = sample_tar();
    import_all(&tar).unwrap();
    // The end-of-archive block starts after the last entry's padded data.
    let eoa = tar.len() - 1024;
    for cut in (0..=eoa).step_by(97).chain([eoa, 512, 1024, 1536]) {
        let r = import_all(&tar[..cut]);
        assert!(r.is_err(), "cut at {cut} imported {:?}", r.map(|v| v.len()));
    }
}

#[test]
fn hostile_tars_are_refused() {
    // A PAX record over 1 MiB.
    let mut tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar);
        let big = vec![b'a'; (MAX + 10) as usize];
        b.append_pax_extensions([("MSWINDOWS.rawsd", &big[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("Files/x").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        b.finish().unwrap();
    }
    let err = import_all(&tar).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");

    // A directory with data.
    let mut tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar);
        let mut h = tar::Header::new_ustar();
        h.set_path("Files/d").unwrap();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(5);
        h.set_cksum();
        b.append(&h, &b"12345"[..]).unwrap();
        b.finish().unwrap();
    }
    assert!(matches!(import_all(&tar).unwrap_err(), Error::Tar { .. }));

    // A PAX size disagreeing with the header.
    let mut tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar);
        b.append_pax_extensions([("size", &b"99999999999"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("Files/f").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        b.finish().unwrap();
    }
    let err = import_all(&tar).unwrap_err();
    assert!(err.to_string().contains("PAX size"), "{err}");

    // Bad base64 and a bad attribute number.
    for (k, v) in [("MSWINDOWS.rawsd", "%%%"), ("MSWINDOWS.fileattr", "x1")] {
        let mut tar = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar);
            b.append_pax_extensions([(k, v.as_bytes())]).unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_path("Files/f").unwrap();
            h.set_size(0);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
            b.finish().unwrap();
        }
        let err = import_all(&tar).unwrap_err();
        assert!(matches!(err, Error::Tar { .. }), "{k}: {err}");
    }
}

const MAX: u64 = reader::MAX_SPECIAL_RECORD;

#[test]
fn sddl_needs_windows() {
    let mut tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar);
        b.append_pax_extensions([("MSWINDOWS.sd", &b"O:SYG:SY"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("Files/f").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        b.finish().unwrap();
    }
    let r = import_all(&tar);
    #[cfg(not(windows))]
    assert!(r.unwrap_err().to_string().contains("needs Windows"));
    #[cfg(windows)]
    assert!(r.is_ok());
}

#[test]
fn a_stream_cut_inside_its_data_is_an_error_even_when_skipped_by_seeking() {
    let full = stream(&[
        (BackupHeader::new(BACKUP_DATA, 10), b"0123456789"),
        (BackupHeader::new(BACKUP_EA_DATA, 2), b"ea"),
    ]);
    for cut in [22, 25, 29] {
        let mut tar = Vec::new();
        let mut t = TarOut::new(&mut tar);
        let mut src = SeekRewind::new(Cursor::new(&full[..cut])).unwrap();
        let err =
            write_tar_file_from_backup_stream(&mut t, &mut src, "f", 10, &info(0)).unwrap_err();
        assert!(err.to_string().contains("truncated"), "cut {cut}: {err}");
    }
}

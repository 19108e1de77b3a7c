//! Restore and backup on a Linux layer folder: the stream comes back, metadata sticks to the
//! inode, bad streams fail.

use std::io::{Read, Write};

use super::*;
use crate::fileinfo::*;

fn stream(records: &[(BackupHeader, &[u8])]) -> Vec<u8> {
    let mut w = BackupStreamWriter::new(Vec::new());
    for (h, d) in records {
        w.write_record(h, d).unwrap();
    }
    w.finish().unwrap()
}

fn info(attrs: u32) -> FileBasicInfo {
    FileBasicInfo {
        creation_time: 130_000_000_000_000_000,
        last_access_time: 131_000_000_000_000_000,
        last_write_time: 132_000_000_000_000_007,
        change_time: 133_000_000_000_000_000,
        file_attributes: attrs,
    }
}

fn restore_in_chunks(fs: &XattrFs, path: &Path, i: FileBasicInfo, s: &[u8], chunk: usize) {
    let mut w = fs.restore(path, &i, Disposition::Create, true).unwrap();
    for c in s.chunks(chunk) {
        w.write_all(c).unwrap();
    }
    w.finish().unwrap();
}

fn backup_bytes(fs: &XattrFs, path: &Path, security: bool) -> Vec<u8> {
    let mut b = Vec::new();
    fs.backup(path, security)
        .unwrap()
        .read_to_end(&mut b)
        .unwrap();
    b
}

fn full_stream() -> Vec<u8> {
    let ads = BackupHeader {
        name: ":s:$DATA".into(),
        ..BackupHeader::new(BACKUP_ALTERNATE_DATA, 3)
    };
    stream(&[
        (BackupHeader::new(BACKUP_SECURITY_DATA, 4), b"sd!!"),
        (BackupHeader::new(BACKUP_EA_DATA, 2), b"ea"),
        (BackupHeader::new(BACKUP_DATA, 10), b"0123456789"),
        (ads, b"ads"),
    ])
}

#[test]
fn restore_then_backup_gives_the_stream_back() {
    let d = tempfile::tempdir().unwrap();
    let fs = XattrFs;
    let s = full_stream();
    // Every chunking, down to one byte at a time, parses the same.
    for chunk in [1, 3, 7, 20, 4096] {
        let p = d.path().join(format!("f{chunk}"));
        restore_in_chunks(&fs, &p, info(FILE_ATTRIBUTE_ARCHIVE), &s, chunk);
        assert_eq!(std::fs::read(&p).unwrap(), b"0123456789");
        assert_eq!(backup_bytes(&fs, &p, true), s, "chunk {chunk}");
        assert_eq!(fs.basic_info(&p).unwrap(), info(FILE_ATTRIBUTE_ARCHIVE));
    }
    // Without security, the descriptor is left out.
    let p = d.path().join("f1");
    let b = backup_bytes(&fs, &p, false);
    let mut r = BackupStreamReader::new(&b[..]);
    let mut ids = Vec::new();
    while let Some(h) = r.next_header().unwrap() {
        ids.push(h.id);
    }
    assert_eq!(ids, [BACKUP_EA_DATA, BACKUP_DATA, BACKUP_ALTERNATE_DATA]);
    // Skipping seeks through the recorded parts and the content alike.
    for at in [0, 5, 40, 50, s.len() - 3, s.len()] {
        let mut src = fs.backup(&p, true).unwrap();
        assert_eq!(src.skip(at as u64).unwrap(), at as u64);
        let mut rest = Vec::new();
        src.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &s[at..], "skip {at}");
    }
    assert_eq!(
        fs.backup(&p, true).unwrap().skip(1 << 20).unwrap(),
        s.len() as u64
    );
    // Rewinding replays from the start.
    let mut src = fs.backup(&p, true).unwrap();
    let mut first = vec![0u8; 30];
    src.read_exact(&mut first).unwrap();
    src.rewind().unwrap();
    let mut all = Vec::new();
    src.read_to_end(&mut all).unwrap();
    assert_eq!(all, s);
}

#[test]
fn directories_keep_their_records() {
    let d = tempfile::tempdir().unwrap();
    let fs = XattrFs;
    let s = stream(&[(BackupHeader::new(BACKUP_SECURITY_DATA, 2), b"sd")]);
    let p = d.path().join("dir");
    let i = info(FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_HIDDEN);
    restore_in_chunks(&fs, &p, i, &s, 5);
    assert!(p.is_dir());
    assert_eq!(backup_bytes(&fs, &p, true), s);
    let st = fs.stat(&p).unwrap().unwrap();
    assert!(st.is_dir() && !st.is_reparse_point());
    // A data stream for a directory is refused.
    let q = d.path().join("dir2");
    let mut w = fs.restore(&q, &i, Disposition::Create, true).unwrap();
    let bad = stream(&[(BackupHeader::new(BACKUP_DATA, 1), b"x")]);
    assert!(w.write_all(&bad).is_err());
    // Create refuses an existing directory; Open restores it again.
    assert!(fs.restore(&p, &i, Disposition::Create, true).is_err());
    let mut again = fs.restore(&p, &i, Disposition::Open, true).unwrap();
    again.write_all(&s).unwrap();
    again.finish().unwrap();
}

#[test]
fn sparse_blocks_make_holes() {
    let d = tempfile::tempdir().unwrap();
    let fs = XattrFs;
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
                offset: 1 << 20,
                ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 3)
            },
            b"abc",
        ),
        (
            BackupHeader {
                offset: 4 << 20,
                ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 0)
            },
            b"",
        ),
    ]);
    let p = d.path().join("sparse");
    restore_in_chunks(&fs, &p, info(FILE_ATTRIBUTE_SPARSE_FILE), &s, 11);
    let content = std::fs::read(&p).unwrap();
    assert_eq!(content.len(), 4 << 20);
    assert_eq!(&content[1 << 20..(1 << 20) + 3], b"abc");
    assert!(content[..1 << 20].iter().all(|&b| b == 0));
    // The stream comes back as plain data of the whole size.
    let b = backup_bytes(&fs, &p, true);
    let mut r = BackupStreamReader::new(&b[..]);
    let h = r.next_header().unwrap().unwrap();
    assert_eq!((h.id, h.size), (BACKUP_DATA, 4 << 20));
}

#[test]
fn metadata_follows_the_inode() {
    let d = tempfile::tempdir().unwrap();
    let fs = XattrFs;
    let p = d.path().join("a");
    restore_in_chunks(&fs, &p, info(FILE_ATTRIBUTE_READONLY), &full_stream(), 64);
    let q = d.path().join("b");
    fs.hard_link(&p, &q).unwrap();
    assert_eq!(fs.basic_info(&q).unwrap(), info(FILE_ATTRIBUTE_READONLY));
    assert_eq!(backup_bytes(&fs, &q, true), full_stream());
    let (lp, lq) = (fs.link_info(&p).unwrap(), fs.link_info(&q).unwrap());
    assert_eq!(lp, lq);
    assert_eq!(lp.links, 2);
    // The inode's own times show the Windows ones.
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    assert_eq!(
        unix_time(mtime),
        UnixTime::from_filetime(info(0).last_write_time)
    );
    // set_basic_info keeps the recorded streams.
    fs.set_basic_info(&q, &info(0)).unwrap();
    assert_eq!(backup_bytes(&fs, &p, true), full_stream());
    assert_eq!(fs.basic_info(&p).unwrap(), info(0));
}

#[test]
fn plain_files_read_as_what_they_are() {
    let d = tempfile::tempdir().unwrap();
    let fs = XattrFs;
    let p = d.path().join("plain");
    std::fs::write(&p, b"xyz").unwrap();
    std::fs::create_dir(d.path().join("sub")).unwrap();
    assert_eq!(fs.basic_info(&p).unwrap().file_attributes, 0);
    assert_eq!(
        fs.basic_info(&d.path().join("sub"))
            .unwrap()
            .file_attributes,
        FILE_ATTRIBUTE_DIRECTORY
    );
    assert_eq!(
        backup_bytes(&fs, &p, true),
        stream(&[(BackupHeader::new(BACKUP_DATA, 3), b"xyz")])
    );
    let names: Vec<_> = fs
        .read_dir(d.path())
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.is_dir, e.size))
        .collect();
    assert_eq!(
        names,
        [
            ("plain".to_string(), false, 3),
            ("sub".to_string(), true, 0)
        ]
    );
    // Symlinks are refused, not followed.
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("ln")).unwrap();
    assert!(fs.stat(&d.path().join("ln")).is_err());
    assert!(fs.open_file(&d.path().join("ln")).is_err());
    assert!(fs.stat(&d.path().join("missing")).unwrap().is_none());
}

#[test]
fn bad_streams_and_metadata_fail() {
    let d = tempfile::tempdir().unwrap();
    let fs = XattrFs;
    let s = full_stream();
    let p = d.path().join("cut");
    let mut w = fs.restore(&p, &info(0), Disposition::Create, true).unwrap();
    w.write_all(&s[..s.len() - 1]).unwrap();
    assert!(w.finish().is_err());
    // Metadata too big for the attribute.
    let big = vec![0u8; MAX_META];
    let q = d.path().join("big");
    let mut w = fs.restore(&q, &info(0), Disposition::Create, true).unwrap();
    let rec = stream(&[(BackupHeader::new(BACKUP_EA_DATA, big.len() as u64), &big)]);
    assert!(w.write_all(&rec).is_err());
    // Creating over an existing file fails.
    assert!(fs.restore(&p, &info(0), Disposition::Create, true).is_err());
    // Every cut of an encoded Meta fails to decode, never panics.
    let m = Meta {
        info: info(1),
        has_data: true,
        pre: vec![1, 2, 3],
        post: vec![4],
    };
    let b = m.encode();
    assert_eq!(Meta::decode(&b).unwrap(), m);
    for cut in 0..b.len() {
        assert!(Meta::decode(&b[..cut]).is_err(), "cut {cut}");
    }
}

//! The `wclayer` binary on Linux: import and export against layer folders (plain and gzip,
//! files and pipes, Go-style flags), and a clear failure for what needs Windows.
#![cfg(unix)]

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wclayer::backup::{BackupHeader, BackupStreamWriter, BACKUP_DATA, BACKUP_SECURITY_DATA};
use wclayer::backuptar::{write_tar_file_from_backup_stream, SeekRewind, TarOut};
use wclayer::fileinfo::{FileBasicInfo, FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_DIRECTORY};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wclayer"))
}

fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn info(attrs: u32) -> FileBasicInfo {
    FileBasicInfo {
        creation_time: 132_000_000_000_000_000,
        last_access_time: 132_000_000_010_000_000,
        last_write_time: 132_000_000_020_000_000,
        change_time: 132_000_000_030_000_000,
        file_attributes: attrs,
    }
}

fn stream(data: Option<&[u8]>) -> Vec<u8> {
    let mut w = BackupStreamWriter::new(Vec::new());
    w.write_record(&BackupHeader::new(BACKUP_SECURITY_DATA, 4), b"sd!!")
        .unwrap();
    if let Some(d) = data {
        w.write_record(&BackupHeader::new(BACKUP_DATA, d.len() as u64), d)
            .unwrap();
    }
    w.finish().unwrap()
}

/// A small base layer tar.
fn layer_tar() -> Vec<u8> {
    let mut out = Vec::new();
    let mut t = TarOut::new(&mut out);
    let mut add = |name: &str, data: Option<&[u8]>| {
        let attrs = if data.is_some() {
            FILE_ATTRIBUTE_ARCHIVE
        } else {
            FILE_ATTRIBUTE_DIRECTORY
        };
        let s = stream(data);
        let mut src = SeekRewind::new(Cursor::new(&s)).unwrap();
        let size = data.map_or(0, |d| d.len() as u64);
        write_tar_file_from_backup_stream(&mut t, &mut src, name, size, &info(attrs)).unwrap();
    };
    add("Files", None);
    add("Files/Windows", None);
    add("Files/Windows/notepad.exe", Some(b"MZ not really"));
    add("Files/readme.txt", Some(&[b'r'; 10_000]));
    t.finish().unwrap();
    out
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn import_and_export_round_trip_through_files_pipes_and_gzip() {
    let d = tempfile::tempdir().unwrap();
    let tar = layer_tar();
    let tar_path = d.path().join("in.tar");
    std::fs::write(&tar_path, &tar).unwrap();

    // From a file, into a folder.
    let a = d.path().join("a");
    ok(&run(
        bin().arg("import").arg(&a).arg("-i").arg(&tar_path),
        b"",
    ));
    assert_eq!(
        std::fs::read(a.join("Files/Windows/notepad.exe")).unwrap(),
        b"MZ not really"
    );
    // Exported to a gzip file: the same tar comes back.
    let gz = d.path().join("out.tar.gz");
    ok(&run(
        bin().args(["export", "-z", "--output"]).arg(&gz).arg(&a),
        b"",
    ));
    assert_eq!(gunzip(&std::fs::read(&gz).unwrap()), tar);

    // From gzip on stdin (Go-style single-dash flags), exported to stdout.
    let b = d.path().join("b");
    let gz_bytes = std::fs::read(&gz).unwrap();
    ok(&run(bin().arg("import").arg(&b), &gz_bytes));
    let o = run(bin().arg("export").arg(&b), b"");
    ok(&o);
    assert_eq!(o.stdout, tar);

    // A layer on top of a parent, parents given with `-layer`.
    let child_tar = d.path().join("child.tar");
    std::fs::write(&child_tar, layer_tar()).unwrap();
    let c = d.path().join("c");
    ok(&run(
        bin()
            .arg("import")
            .arg("-layer")
            .arg(&a)
            .arg("-input")
            .arg(&child_tar)
            .arg(&c),
        b"",
    ));
    let o = run(bin().arg("export").arg("-l").arg(&a).arg(&c), b"");
    ok(&o);
    assert!(!o.stdout.is_empty());
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let tar = layer_tar();
    let l = d.path().join("l");
    let o = run(bin().arg("import").arg(&l), &tar[..tar.len() / 2]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tar"), "{err}");
    assert!(!l.exists());
}

fn fails_with(args: &[&str], path: &Path, what: &str) {
    let o = run(bin().args(args).arg(path), b"");
    assert!(!o.status.success(), "{args:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(what), "{args:?}: {err}");
}

#[test]
fn the_windows_only_commands_say_so() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("l");
    fails_with(&["create", "-l", "/base"], &p, "only on Windows");
    fails_with(&["mount", "-l", "/base"], &p, "only on Windows");
    fails_with(&["unmount"], &p, "only on Windows");
    fails_with(&["removelayer"], &p, "only on Windows");
    fails_with(&["create"], &p, "at least one read-only layer");
    std::fs::create_dir_all(p.join("Files")).unwrap();
    fails_with(&["makebaselayer"], &p, "offreg.dll");
}

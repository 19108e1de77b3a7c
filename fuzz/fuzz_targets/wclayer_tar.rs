//! Fuzzes the decoders of untrusted Windows layer data: a layer tar through the reader and
//! the tar → backup-stream conversion (whose output is then converted back), the same bytes
//! as a raw Win32 backup stream with the EA and reparse-point buffers it carries, the
//! Linux layer folder's metadata attribute and a tombstones list. Seeds: small layer tars
//! in `fuzz/seeds/wclayer_tar/` (tar header checksums are hard to find by mutation alone).
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use wclayer::backup::{BackupStreamReader, BACKUP_EA_DATA, BACKUP_REPARSE_DATA};
use wclayer::backuptar::{
    file_info_from_header, write_backup_stream_from_tar_file, write_tar_file_from_backup_stream,
    SeekRewind, TarArchive, TarOut,
};

fn tar_round_trip(data: &[u8]) {
    let mut archive = TarArchive::new(data);
    let Ok(mut entries) = archive.entries() else {
        return;
    };
    let mut next = entries.next_entry();
    let mut out = TarOut::new(Vec::new());
    while let Ok(Some((hdr, body))) = next {
        let Ok((name, size, info)) = file_info_from_header(&hdr) else {
            return;
        };
        let mut stream = Vec::new();
        next = write_backup_stream_from_tar_file(&mut stream, &mut entries, &hdr, body);
        if next.is_err() {
            return;
        }
        // What import produced must convert back without panicking.
        let Ok(mut src) = SeekRewind::new(Cursor::new(&stream)) else {
            return;
        };
        let _ = write_tar_file_from_backup_stream(&mut out, &mut src, &name, size, &info);
    }
}

fn backup_stream(data: &[u8]) {
    let mut r = BackupStreamReader::new(data);
    while let Ok(Some(h)) = r.next_header() {
        match h.id {
            BACKUP_EA_DATA => {
                if let Ok(b) = r.read_metadata("ea") {
                    if let Ok(eas) = wclayer::ea::decode(&b) {
                        // Whatever decodes, encodes (names and values are in bounds).
                        wclayer::ea::encode(&eas).expect("decoded EAs re-encode");
                    }
                }
            }
            BACKUP_REPARSE_DATA => {
                if let Ok(b) = r.read_metadata("reparse") {
                    let _ = wclayer::reparse::ReparsePoint::decode(&b);
                }
            }
            _ => {
                let mut sink = Vec::new();
                let _ = (&mut r).take(1 << 20).read_to_end(&mut sink);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    tar_round_trip(data);
    backup_stream(data);
    let _ = wclayer::ea::decode(data);
    let _ = wclayer::reparse::ReparsePoint::decode(data);
    let _ = wclayer::fs::unix::Meta::decode(data);
    let _ = wclayer::layer::legacy::parse_tombstones(data);
});

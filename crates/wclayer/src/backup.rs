//! The Win32 backup stream (`BackupRead`/`BackupWrite`): a file as a sequence of
//! `WIN32_STREAM_ID` records — security descriptor, extended attributes, reparse data, the
//! unnamed data stream, alternate data streams, sparse blocks — each a 20-byte header, an
//! optional UTF-16 stream name and the stream's bytes. Layer readers produce these streams
//! and layer writers consume them, so this codec is the common currency of the crate.
//!
//! The layout follows go-winio's `BackupStreamReader`/`BackupStreamWriter` (no padding
//! between records; a sparse block's size includes its 8-byte offset). Everything read from
//! a stream is bounded: names by [`MAX_STREAM_NAME_BYTES`], metadata streams read into memory
//! by [`MAX_METADATA_STREAM`]; data streams are passed through, never buffered.

use std::io::{self, Read, Write};

use crate::error::{Error, Result};

/// `BACKUP_DATA`: the unnamed data stream.
pub const BACKUP_DATA: u32 = 1;
/// `BACKUP_EA_DATA`: extended attributes (`FILE_FULL_EA_INFORMATION` list).
pub const BACKUP_EA_DATA: u32 = 2;
/// `BACKUP_SECURITY_DATA`: a self-relative security descriptor.
pub const BACKUP_SECURITY_DATA: u32 = 3;
/// `BACKUP_ALTERNATE_DATA`: a named data stream.
pub const BACKUP_ALTERNATE_DATA: u32 = 4;
/// `BACKUP_LINK`: hard link information.
pub const BACKUP_LINK: u32 = 5;
/// `BACKUP_PROPERTY_DATA`: property data.
pub const BACKUP_PROPERTY_DATA: u32 = 6;
/// `BACKUP_OBJECT_ID`: object identifiers.
pub const BACKUP_OBJECT_ID: u32 = 7;
/// `BACKUP_REPARSE_DATA`: a `REPARSE_DATA_BUFFER`.
pub const BACKUP_REPARSE_DATA: u32 = 8;
/// `BACKUP_SPARSE_BLOCK`: one allocated range of a sparse file.
pub const BACKUP_SPARSE_BLOCK: u32 = 9;
/// `BACKUP_TXFS_DATA`: transactional NTFS data.
pub const BACKUP_TXFS_DATA: u32 = 10;

/// `STREAM_SPARSE_ATTRIBUTE`: the data stream continues as sparse blocks.
pub const STREAM_SPARSE_ATTRIBUTE: u32 = 0x8;

/// The size of a `WIN32_STREAM_ID` header without its name.
pub const STREAM_HEADER_LEN: usize = 20;
/// Longest stream name accepted, in bytes of UTF-16 (NTFS names are at most 255 characters;
/// this leaves room for `:name:$DATA`).
pub const MAX_STREAM_NAME_BYTES: u32 = 4096;
/// Largest metadata stream (security descriptor, extended attributes, reparse data) read
/// into memory. The PAX records that carry them are bounded by 1 MiB as well.
pub const MAX_METADATA_STREAM: u64 = 1 << 20;

/// One record header of a backup stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupHeader {
    /// The stream id (`BACKUP_*`).
    pub id: u32,
    /// `STREAM_*` attributes.
    pub attributes: u32,
    /// Bytes of the stream (for a sparse block: without its 8-byte offset).
    pub size: u64,
    /// The stream name (`:name:$DATA` for alternate data streams), empty when none.
    pub name: String,
    /// For [`BACKUP_SPARSE_BLOCK`]: where the block starts in the file.
    pub offset: u64,
}

impl BackupHeader {
    /// A header for stream `id` of `size` bytes, without name.
    pub fn new(id: u32, size: u64) -> Self {
        Self {
            id,
            size,
            ..Default::default()
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BackupStream(msg.into())
}

/// Reads `buf.len()` bytes unless the stream ends first; returns how many were read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decodes a backup stream record by record; [`Read`] yields the current record's bytes.
#[derive(Debug)]
pub struct BackupStreamReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> BackupStreamReader<R> {
    /// A reader at the start of a stream.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            remaining: 0,
        }
    }

    /// Skips what is left of the current record and reads the next header; `None` at a clean
    /// end (the stream ends exactly between records).
    pub fn next_header(&mut self) -> Result<Option<BackupHeader>> {
        if self.remaining > 0 {
            let want = self.remaining;
            let skipped =
                io::copy(&mut (&mut self.inner).take(want), &mut io::sink()).map_err(|err| {
                    Error::Read {
                        what: "backup stream",
                        err,
                    }
                })?;
            if skipped < want {
                return Err(bad(format!(
                    "truncated: {} bytes of a stream missing",
                    want - skipped
                )));
            }
            self.remaining = 0;
        }
        let mut raw = [0u8; STREAM_HEADER_LEN];
        let n = read_up_to(&mut self.inner, &mut raw).map_err(|err| Error::Read {
            what: "backup stream",
            err,
        })?;
        if n == 0 {
            return Ok(None);
        }
        if n < raw.len() {
            return Err(bad(format!("truncated stream header ({n} of 20 bytes)")));
        }
        let u32_at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().expect("4 bytes"));
        let id = u32_at(0);
        let attributes = u32_at(4);
        let size = u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"));
        let name_size = u32_at(16);
        if size > i64::MAX as u64 {
            return Err(bad(format!("stream {id} has an impossible size {size}")));
        }
        if name_size > MAX_STREAM_NAME_BYTES || name_size % 2 != 0 {
            return Err(bad(format!(
                "stream {id} name size {name_size} is odd or over {MAX_STREAM_NAME_BYTES}"
            )));
        }
        let mut hdr = BackupHeader {
            id,
            attributes,
            size,
            ..Default::default()
        };
        if name_size > 0 {
            let mut nb = vec![0u8; name_size as usize];
            self.read_exact_or_truncated(&mut nb, "stream name")?;
            let units: Vec<u16> = nb
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            hdr.name = String::from_utf16(&units)
                .map_err(|_| bad(format!("stream {id} name is not valid UTF-16")))?;
        }
        if id == BACKUP_SPARSE_BLOCK {
            if hdr.size < 8 {
                return Err(bad(format!(
                    "sparse block of {} bytes has no room for its offset",
                    hdr.size
                )));
            }
            let mut ob = [0u8; 8];
            self.read_exact_or_truncated(&mut ob, "sparse block offset")?;
            hdr.offset = u64::from_le_bytes(ob);
            if hdr.offset > i64::MAX as u64 {
                return Err(bad(format!("sparse block offset {} too large", hdr.offset)));
            }
            hdr.size -= 8;
        }
        self.remaining = hdr.size;
        Ok(Some(hdr))
    }

    fn read_exact_or_truncated(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let n = read_up_to(&mut self.inner, buf).map_err(|err| Error::Read {
            what: "backup stream",
            err,
        })?;
        if n < buf.len() {
            return Err(bad(format!("truncated {what}")));
        }
        Ok(())
    }

    /// Reads the rest of the current record into memory, refusing records over
    /// [`MAX_METADATA_STREAM`] (security descriptors, EAs and reparse data are small).
    pub fn read_metadata(&mut self, what: &str) -> Result<Vec<u8>> {
        if self.remaining > MAX_METADATA_STREAM {
            return Err(bad(format!(
                "{what} stream of {} bytes is over the {MAX_METADATA_STREAM}-byte limit",
                self.remaining
            )));
        }
        let mut buf = Vec::with_capacity(self.remaining as usize);
        self.read_to_end(&mut buf)
            .map_err(|e| Error::from_io("backup stream", e))?;
        Ok(buf)
    }

    /// Skips the rest of the current record with `skip` (given the underlying reader and the
    /// byte count; it returns how many it skipped), e.g. by seeking.
    pub fn skip_rest_with(
        &mut self,
        skip: impl FnOnce(&mut R, u64) -> io::Result<u64>,
    ) -> Result<()> {
        let want = self.remaining;
        if want == 0 {
            return Ok(());
        }
        let skipped = skip(&mut self.inner, want).map_err(|err| Error::Read {
            what: "backup stream",
            err,
        })?;
        if skipped < want {
            return Err(bad(format!(
                "truncated: {} bytes of a stream missing",
                want - skipped
            )));
        }
        self.remaining = 0;
        Ok(())
    }

    /// Bytes of the current record not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for BackupStreamReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(bad(format!(
                "truncated: {} bytes of a stream missing",
                self.remaining
            ))
            .into_io());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Encodes a backup stream: [`BackupStreamWriter::write_header`], then exactly `size` bytes
/// through [`Write`], then the next header.
#[derive(Debug)]
pub struct BackupStreamWriter<W> {
    inner: W,
    remaining: u64,
}

impl<W: Write> BackupStreamWriter<W> {
    /// A writer at the start of a stream.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            remaining: 0,
        }
    }

    /// Starts a record; the previous one must be complete.
    pub fn write_header(&mut self, hdr: &BackupHeader) -> Result<()> {
        if self.remaining != 0 {
            return Err(bad(format!(
                "{} bytes missing before the next stream header",
                self.remaining
            )));
        }
        let name: Vec<u16> = hdr.name.encode_utf16().collect();
        let name_bytes = (name.len() * 2) as u64;
        if name_bytes > MAX_STREAM_NAME_BYTES as u64 {
            return Err(bad(format!("stream name {:?} too long", hdr.name)));
        }
        let mut size = hdr.size;
        if hdr.id == BACKUP_SPARSE_BLOCK {
            size = size
                .checked_add(8)
                .ok_or_else(|| bad("sparse block size overflows"))?;
        }
        if size > i64::MAX as u64 {
            return Err(bad(format!("stream size {size} too large")));
        }
        let mut raw = Vec::with_capacity(STREAM_HEADER_LEN + name.len() * 2 + 8);
        raw.extend_from_slice(&hdr.id.to_le_bytes());
        raw.extend_from_slice(&hdr.attributes.to_le_bytes());
        raw.extend_from_slice(&size.to_le_bytes());
        raw.extend_from_slice(&(name_bytes as u32).to_le_bytes());
        for u in name {
            raw.extend_from_slice(&u.to_le_bytes());
        }
        if hdr.id == BACKUP_SPARSE_BLOCK {
            raw.extend_from_slice(&hdr.offset.to_le_bytes());
        }
        self.inner.write_all(&raw).map_err(|err| Error::Write {
            what: "backup stream",
            err,
        })?;
        self.remaining = hdr.size;
        Ok(())
    }

    /// Writes a whole record: header and bytes.
    pub fn write_record(&mut self, hdr: &BackupHeader, data: &[u8]) -> Result<()> {
        debug_assert_eq!(hdr.size, data.len() as u64);
        self.write_header(hdr)?;
        self.write_all(data)
            .map_err(|e| Error::from_io("backup stream", e))
    }

    /// Checks that the last record is complete and returns the underlying writer.
    pub fn finish(self) -> Result<W> {
        if self.remaining != 0 {
            return Err(bad(format!(
                "stream ends {} bytes short of its header's size",
                self.remaining
            )));
        }
        Ok(self.inner)
    }

    /// Bytes still owed to the current record.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl<W: Write> Write for BackupStreamWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.remaining {
            return Err(bad(format!(
                "{} bytes written to a stream with {} left",
                buf.len(),
                self.remaining
            ))
            .into_io());
        }
        let n = self.inner.write(buf)?;
        self.remaining -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = BackupStreamWriter::new(Vec::new());
        w.write_record(&BackupHeader::new(BACKUP_SECURITY_DATA, 3), b"sd!")
            .unwrap();
        w.write_record(&BackupHeader::new(BACKUP_DATA, 5), b"hello")
            .unwrap();
        let ads = BackupHeader {
            name: ":zone:$DATA".into(),
            ..BackupHeader::new(BACKUP_ALTERNATE_DATA, 2)
        };
        w.write_record(&ads, b"z1").unwrap();
        let sparse = BackupHeader {
            offset: 4096,
            ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 1)
        };
        w.write_record(&sparse, b"s").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn records_round_trip() {
        let bytes = sample();
        // 20+3, 20+5, 20+22+2, 20+8+1
        assert_eq!(bytes.len(), 23 + 25 + 44 + 29);
        let mut r = BackupStreamReader::new(&bytes[..]);
        let h = r.next_header().unwrap().unwrap();
        assert_eq!((h.id, h.size), (BACKUP_SECURITY_DATA, 3));
        assert_eq!(r.read_metadata("security").unwrap(), b"sd!");
        let h = r.next_header().unwrap().unwrap();
        assert_eq!(h.id, BACKUP_DATA);
        // Not reading the data: next_header() skips it.
        let h = r.next_header().unwrap().unwrap();
        assert_eq!(
            (h.id, h.name.as_str()),
            (BACKUP_ALTERNATE_DATA, ":zone:$DATA")
        );
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "z1");
        let h = r.next_header().unwrap().unwrap();
        assert_eq!((h.id, h.offset, h.size), (BACKUP_SPARSE_BLOCK, 4096, 1));
        assert!(r.next_header().unwrap().is_none());
    }

    #[test]
    fn truncation_is_an_error_everywhere() {
        let bytes = sample();
        for cut in 1..bytes.len() {
            let mut r = BackupStreamReader::new(&bytes[..cut]);
            let mut failed = false;
            loop {
                match r.next_header() {
                    Ok(Some(_)) => {
                        let mut sink = Vec::new();
                        if r.read_to_end(&mut sink).is_err() {
                            failed = true;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            // Cuts between records are clean ends; every other cut fails.
            let boundary = [23, 48, 92].contains(&cut);
            assert_eq!(failed, !boundary, "cut at {cut}");
        }
    }

    #[test]
    fn hostile_headers_are_refused() {
        let mut raw = Vec::new();
        raw.extend_from_slice(&BACKUP_ALTERNATE_DATA.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&1u64.to_le_bytes());
        raw.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = BackupStreamReader::new(&raw[..]).next_header().unwrap_err();
        assert!(err.to_string().contains("name size"), "{err}");

        let mut raw = Vec::new();
        raw.extend_from_slice(&BACKUP_SECURITY_DATA.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&(MAX_METADATA_STREAM + 1).to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        let mut r = BackupStreamReader::new(&raw[..]);
        r.next_header().unwrap().unwrap();
        let err = r.read_metadata("security").unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");

        let mut raw = Vec::new();
        raw.extend_from_slice(&BACKUP_SPARSE_BLOCK.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&4u64.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        assert!(BackupStreamReader::new(&raw[..]).next_header().is_err());
    }

    #[test]
    fn writer_enforces_record_sizes() {
        let mut w = BackupStreamWriter::new(Vec::new());
        w.write_header(&BackupHeader::new(BACKUP_DATA, 2)).unwrap();
        assert!(w.write_all(b"abc").is_err());
        w.write_all(b"a").unwrap();
        assert!(w.write_header(&BackupHeader::new(BACKUP_DATA, 0)).is_err());
        assert!(w.finish().is_err());
    }
}

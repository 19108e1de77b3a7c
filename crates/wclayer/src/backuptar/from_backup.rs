//! Export direction: a layer entry's basic info and Win32 backup stream become tar entries,
//! as go-winio's `WriteTarFileFromBackupStream` does: the file's entry with its metadata in
//! PAX records, then one entry per alternate data stream.
//!
//! The header must be written before the data, but a backup stream may carry metadata after
//! the data stream (`BackupRead` puts extended attributes there), so the stream is read
//! twice: once to collect the metadata, then again to copy the data. The source must
//! therefore be able to start over ([`RewindRead`]); the reference loses the extended
//! attributes of sources that cannot.

use std::io::{self, Read, Seek, SeekFrom, Write};

use base64::Engine as _;

use super::reader::typeflag;
use super::writer::{TarOut, TarOutHeader};
use super::HDR_RAW_SECURITY_DESCRIPTOR;
use super::{mode, HDR_CREATION_TIME, HDR_EA_PREFIX, HDR_FILE_ATTRIBUTES, HDR_MOUNT_POINT};
use crate::backup::*;
use crate::ea;
use crate::error::{Error, Result};
use crate::fileinfo::{FileBasicInfo, UnixTime};
use crate::reparse::ReparsePoint;

/// A backup stream source that can start over from its beginning.
pub trait RewindRead: Read {
    /// Goes back to the beginning of the stream.
    fn rewind(&mut self) -> io::Result<()>;

    /// Skips up to `n` bytes, returning how many were skipped (fewer only at the end of the
    /// stream). Sources that can seek override this so the metadata pass does not read
    /// file data it then throws away.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        skip_by_reading(self, n)
    }
}

/// [`RewindRead::skip`] for sources that cannot seek.
pub fn skip_by_reading<R: Read + ?Sized>(r: &mut R, n: u64) -> io::Result<u64> {
    let mut buf = [0u8; 64 * 1024];
    let mut done = 0;
    while done < n {
        let want = buf
            .len()
            .min(usize::try_from(n - done).unwrap_or(usize::MAX));
        match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(k) => done += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// [`RewindRead`] over anything seekable, rewinding to where it was when wrapped.
pub struct SeekRewind<T> {
    inner: T,
    start: u64,
}

impl<T: Seek> SeekRewind<T> {
    /// Wraps `inner` at its current position.
    pub fn new(mut inner: T) -> io::Result<Self> {
        let start = inner.stream_position()?;
        Ok(Self { inner, start })
    }
}

impl<T: Read> Read for SeekRewind<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<T: Read + Seek> RewindRead for SeekRewind<T> {
    fn rewind(&mut self) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(self.start)).map(|_| ())
    }

    fn skip(&mut self, n: u64) -> io::Result<u64> {
        // Never past the end: a stream cut short must still read as truncated.
        let pos = self.inner.stream_position()?;
        let end = self.inner.seek(SeekFrom::End(0))?;
        let to = pos.saturating_add(n).min(end.max(pos));
        self.inner.seek(SeekFrom::Start(to))?;
        Ok(to - pos)
    }
}

/// What the first pass found.
#[derive(Default)]
struct Scan {
    sd: Option<Vec<u8>>,
    reparse: Option<ReparsePoint>,
    eas: Vec<ea::ExtendedAttribute>,
    data: Option<BackupHeader>,
}

fn scan(r: &mut dyn RewindRead, name: &str) -> Result<Scan> {
    let mut br = BackupStreamReader::new(r);
    let mut s = Scan::default();
    while let Some(h) = br.next_header()? {
        match h.id {
            BACKUP_DATA => {
                if s.data.is_some() {
                    return Err(Error::BackupStream(format!("{name}: two data streams")));
                }
                s.data = Some(h);
                br.skip_rest_with(|r, n| r.skip(n))?;
            }
            BACKUP_SECURITY_DATA => s.sd = Some(br.read_metadata("security")?),
            BACKUP_REPARSE_DATA => {
                let raw = br.read_metadata("reparse")?;
                let rp = ReparsePoint::decode(&raw)
                    .map_err(|e| Error::InvalidLayer(format!("{name}: {e}")))?;
                s.reparse = Some(rp);
            }
            BACKUP_EA_DATA => {
                let raw = br.read_metadata("extended attribute")?;
                s.eas =
                    ea::decode(&raw).map_err(|e| Error::InvalidLayer(format!("{name}: {e}")))?;
            }
            BACKUP_ALTERNATE_DATA
            | BACKUP_SPARSE_BLOCK
            | BACKUP_LINK
            | BACKUP_PROPERTY_DATA
            | BACKUP_OBJECT_ID
            | BACKUP_TXFS_DATA => br.skip_rest_with(|r, n| r.skip(n))?,
            other => {
                return Err(Error::BackupStream(format!(
                    "{name}: unknown stream id {other}"
                )))
            }
        }
    }
    Ok(s)
}

/// The data of a sparse file: zeros between the blocks, the blocks' bytes, up to the final
/// empty block at the file's size.
struct SparseData<'r, 'a> {
    br: &'r mut BackupStreamReader<&'a mut dyn RewindRead>,
    pos: u64,
    zeros_until: u64,
    done: bool,
}

impl Read for SparseData<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.zeros_until {
                let n = buf
                    .len()
                    .min(usize::try_from(self.zeros_until - self.pos).unwrap_or(usize::MAX));
                buf[..n].fill(0);
                self.pos += n as u64;
                return Ok(n);
            }
            if self.br.remaining() > 0 {
                let n = self.br.read(buf)?;
                self.pos += n as u64;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            let h = self
                .br
                .next_header()
                .map_err(Error::into_io)?
                .ok_or_else(|| {
                    Error::BackupStream("sparse file ends without its final block".into()).into_io()
                })?;
            if h.id != BACKUP_SPARSE_BLOCK {
                return Err(Error::BackupStream(format!(
                    "stream {} among the sparse blocks",
                    h.id
                ))
                .into_io());
            }
            if h.offset < self.pos {
                return Err(Error::BackupStream(format!(
                    "sparse block at {} goes back from {}",
                    h.offset, self.pos
                ))
                .into_io());
            }
            self.zeros_until = h.offset;
            if h.size == 0 {
                self.done = true;
            }
        }
    }
}

/// `WriteTarFileFromBackupStream`: writes the entry `name` (`\` or `/` separators) of `size`
/// bytes with basic info `info`, whose backup stream `r` yields, and its alternate data
/// streams.
pub fn write_tar_file_from_backup_stream<W: Write>(
    t: &mut TarOut<W>,
    r: &mut dyn RewindRead,
    name: &str,
    size: u64,
    info: &FileBasicInfo,
) -> Result<()> {
    let name = name.replace('\\', "/");
    let s = scan(r, &name)?;
    let time = UnixTime::from_filetime;
    let mut hdr = TarOutHeader {
        name: name.clone(),
        typeflag: typeflag::REG,
        size,
        mtime: Some(time(info.last_write_time)),
        atime: Some(time(info.last_access_time)),
        ctime: Some(time(info.change_time)),
        ..Default::default()
    };
    let b64 = |b: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(b)
            .into_bytes()
    };
    hdr.pax.insert(
        HDR_FILE_ATTRIBUTES.into(),
        info.file_attributes.to_string().into_bytes(),
    );
    hdr.pax.insert(
        HDR_CREATION_TIME.into(),
        time(info.creation_time).to_pax().into_bytes(),
    );
    if info.is_dir() {
        hdr.mode |= mode::DIR;
        hdr.size = 0;
        hdr.typeflag = typeflag::DIR;
    }
    if s.data.is_some() {
        hdr.mode |= mode::REG;
    }
    if let Some(sd) = &s.sd {
        hdr.pax.insert(HDR_RAW_SECURITY_DESCRIPTOR.into(), b64(sd));
    }
    for e in &s.eas {
        hdr.pax
            .insert(format!("{HDR_EA_PREFIX}{}", e.name), b64(&e.value));
    }
    if let Some(rp) = &s.reparse {
        hdr.mode |= mode::LNK;
        hdr.typeflag = typeflag::SYMLINK;
        hdr.size = 0;
        if rp.is_mount_point {
            hdr.pax.insert(HDR_MOUNT_POINT.into(), b"1".to_vec());
        }
        hdr.linkname = rp.target.clone();
    }

    r.rewind().map_err(|err| Error::Read {
        what: "layer entry",
        err,
    })?;
    let mut br = BackupStreamReader::new(r);
    // Skip to the data stream (when there is one).
    if s.data.is_some() {
        while let Some(h) = br.next_header()? {
            match h.id {
                BACKUP_DATA => break,
                // Written after the file's entry, so they must come after its data.
                BACKUP_ALTERNATE_DATA => {
                    return Err(Error::Unsupported(format!(
                        "{name}: an alternate data stream before the data stream"
                    )))
                }
                _ => {}
            }
        }
    }
    match &s.data {
        Some(d) if hdr.typeflag == typeflag::REG => {
            let sparse = d.attributes & STREAM_SPARSE_ATTRIBUTE != 0;
            if d.size > 0 || !sparse {
                if size != d.size {
                    return Err(Error::InvalidLayer(format!(
                        "{name}: mismatch between file size {size} and data stream size {}",
                        d.size
                    )));
                }
                t.append(&hdr, &mut br)?;
            } else if size > 0 {
                let data = SparseData {
                    br: &mut br,
                    pos: 0,
                    zeros_until: 0,
                    done: false,
                };
                t.append(&hdr, data)?;
            } else {
                t.append(&hdr, io::empty())?;
            }
        }
        Some(d) if d.size > 0 => {
            return Err(Error::InvalidLayer(format!(
                "{name}: a directory or reparse point with {} bytes of data",
                d.size
            )));
        }
        None if hdr.typeflag == typeflag::REG && size > 0 => {
            return Err(Error::InvalidLayer(format!(
                "{name}: no data stream for a file of {size} bytes"
            )));
        }
        _ => t.append(&hdr, io::empty())?,
    }

    // Alternate data streams follow the data (or anything else).
    while let Some(h) = br.next_header()? {
        match h.id {
            BACKUP_ALTERNATE_DATA => {
                if h.attributes & STREAM_SPARSE_ATTRIBUTE != 0 {
                    return Err(Error::Unsupported(format!(
                        "{name}: sparse alternate data streams cannot be written to a tar"
                    )));
                }
                let stream = h.name.strip_suffix(":$DATA").unwrap_or(&h.name);
                let ads = TarOutHeader {
                    name: format!("{name}{stream}"),
                    typeflag: typeflag::REG,
                    mode: hdr.mode,
                    size: h.size,
                    mtime: hdr.mtime,
                    atime: hdr.atime,
                    ctime: hdr.ctime,
                    ..Default::default()
                };
                t.append(&ads, &mut br)?;
            }
            BACKUP_DATA => {
                return Err(Error::BackupStream(format!("{name}: two data streams")));
            }
            _ => {}
        }
    }
    Ok(())
}

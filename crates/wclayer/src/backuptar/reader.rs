//! Reading layer tars: the `tar` crate's raw entries, with the extension records (PAX `x`,
//! GNU long names `L`/`K`) applied here so that each is bounded before it is read and every
//! PAX record stays visible (Windows metadata lives in vendor records).
//!
//! What Go's `archive/tar` (the reference) would accept is accepted, with these checks on
//! top: extension records are limited to 1 MiB (Go's own limit), names must be UTF-8, a
//! header-only entry (directory, link) may not carry data, a PAX `size` record must agree with
//! the header (files over 8 GiB are refused rather than misread), GNU sparse entries are
//! refused, and the stream must end with the end-of-archive block — a stream that stops at an
//! entry boundary is reported as truncated instead of being taken as a shorter layer.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::fileinfo::UnixTime;

/// Largest PAX or GNU long-name record read into memory (as Go's `archive/tar`).
pub const MAX_SPECIAL_RECORD: u64 = 1 << 20;

/// Tar type flags used by layers.
pub mod typeflag {
    /// Regular file.
    pub const REG: u8 = b'0';
    /// Regular file (pre-POSIX NUL flag).
    pub const REG_A: u8 = 0;
    /// Hard link.
    pub const LINK: u8 = b'1';
    /// Symbolic link.
    pub const SYMLINK: u8 = b'2';
    /// Directory.
    pub const DIR: u8 = b'5';
    /// PAX record for the next entry.
    pub const XHEADER: u8 = b'x';
    /// PAX global record.
    pub const XGLOBAL: u8 = b'g';
    /// GNU long name.
    pub const GNU_LONGNAME: u8 = b'L';
    /// GNU long link name.
    pub const GNU_LONGLINK: u8 = b'K';
}

/// One entry's header with its PAX records applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarHeader {
    /// The name as stored (PAX `path`, GNU long name, or the ustar fields).
    pub name: String,
    /// The link target (PAX `linkpath`, GNU long link, or the ustar field).
    pub linkname: String,
    /// The type flag.
    pub typeflag: u8,
    /// Bytes of data.
    pub size: u64,
    /// Mode bits as stored.
    pub mode: u32,
    /// Modification time (PAX `mtime`, else the header's seconds).
    pub mtime: UnixTime,
    /// Access time (PAX `atime`), if recorded.
    pub atime: Option<UnixTime>,
    /// Change time (PAX `ctime`), if recorded.
    pub ctime: Option<UnixTime>,
    /// Every PAX record of the entry (values as bytes; vendor records are ASCII).
    pub pax: BTreeMap<String, Vec<u8>>,
}

impl TarHeader {
    /// A PAX record as text, if present and UTF-8.
    pub fn pax_str(&self, key: &str) -> Result<Option<&str>> {
        match self.pax.get(key) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v)
                .map(Some)
                .map_err(|_| Error::tar(&self.name, format!("PAX record {key} is not UTF-8"))),
        }
    }

    /// Whether the entry is a regular file (`0` or NUL).
    pub fn is_regular(&self) -> bool {
        matches!(self.typeflag, typeflag::REG | typeflag::REG_A)
    }
}

/// The input reader, noting whether it ever ran dry (a tar that ends without its
/// end-of-archive block is truncated).
#[derive(Debug)]
pub struct TrackEof<R> {
    inner: R,
    hit_eof: Rc<Cell<bool>>,
}

impl<R: Read> Read for TrackEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof.set(true);
        }
        Ok(n)
    }
}

/// A tar archive being read. Build with [`TarArchive::new`], then walk it with
/// [`TarArchive::entries`].
pub struct TarArchive<R: Read> {
    archive: tar::Archive<TrackEof<R>>,
    hit_eof: Rc<Cell<bool>>,
}

impl<R: Read> TarArchive<R> {
    /// Wraps a tar stream.
    pub fn new(r: R) -> Self {
        let hit_eof = Rc::new(Cell::new(false));
        Self {
            archive: tar::Archive::new(TrackEof {
                inner: r,
                hit_eof: hit_eof.clone(),
            }),
            hit_eof,
        }
    }

    /// The entries, in order.
    pub fn entries(&mut self) -> Result<TarEntries<'_, R>> {
        let inner = self
            .archive
            .entries()
            .map_err(|e| Error::TarStream(e.to_string()))?
            .raw(true);
        Ok(TarEntries {
            inner,
            hit_eof: self.hit_eof.clone(),
            index: 0,
        })
    }
}

/// The entries of a [`TarArchive`]. Each entry's data must be read (or left) before the next
/// call to [`TarEntries::next_entry`]; unread data is skipped.
pub struct TarEntries<'a, R: Read> {
    inner: tar::Entries<'a, TrackEof<R>>,
    hit_eof: Rc<Cell<bool>>,
    index: usize,
}

/// The data of one entry.
pub type TarData<'a, R> = tar::Entry<'a, TrackEof<R>>;

fn stream_err(e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::Other || e.kind() == io::ErrorKind::UnexpectedEof {
        Error::TarStream(e.to_string())
    } else {
        Error::Read {
            what: "layer tar",
            err: e,
        }
    }
}

fn read_special<R: Read>(entry: &mut TarData<'_, R>, what: &str, at: usize) -> Result<Vec<u8>> {
    let size = entry.header().entry_size().map_err(stream_err)?;
    if size > MAX_SPECIAL_RECORD {
        return Err(Error::tar(
            format!("#{at}"),
            format!("{what} record of {size} bytes is over the {MAX_SPECIAL_RECORD}-byte limit"),
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut buf).map_err(stream_err)?;
    if buf.len() as u64 != size {
        return Err(Error::TarStream(format!(
            "truncated {what} record ({} of {size} bytes)",
            buf.len()
        )));
    }
    Ok(buf)
}

fn utf8(bytes: Vec<u8>, what: &str, at: usize) -> Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| Error::tar(format!("#{at}"), format!("{what} is not UTF-8")))
}

fn strip_nuls(mut b: Vec<u8>) -> Vec<u8> {
    while b.last() == Some(&0) {
        b.pop();
    }
    b
}

impl<'a, R: Read> TarEntries<'a, R> {
    /// The next file entry with its header, or `None` after the end-of-archive block.
    pub fn next_entry(&mut self) -> Result<Option<(TarHeader, TarData<'a, R>)>> {
        let mut pax: Option<BTreeMap<String, Vec<u8>>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            self.index += 1;
            let at = self.index;
            let mut entry = match self.inner.next() {
                None => {
                    if self.hit_eof.get() {
                        return Err(Error::TarStream(
                            "the stream ends without the end-of-archive block (truncated?)".into(),
                        ));
                    }
                    if pax.is_some() || long_name.is_some() || long_link.is_some() {
                        return Err(Error::TarStream(
                            "extension records at the end describe no entry".into(),
                        ));
                    }
                    return Ok(None);
                }
                Some(e) => e.map_err(stream_err)?,
            };
            let flag = entry.header().entry_type().as_byte();
            match flag {
                typeflag::XHEADER => {
                    if pax.is_some() {
                        return Err(Error::tar(
                            format!("#{at}"),
                            "two PAX records for one entry",
                        ));
                    }
                    let raw = read_special(&mut entry, "PAX", at)?;
                    let mut map = BTreeMap::new();
                    for ext in tar::PaxExtensions::new(&raw) {
                        let ext = ext.map_err(|e| Error::tar(format!("#{at}"), e.to_string()))?;
                        let key = ext
                            .key()
                            .map_err(|_| Error::tar(format!("#{at}"), "PAX key is not UTF-8"))?;
                        map.insert(key.to_string(), ext.value_bytes().to_vec());
                    }
                    pax = Some(map);
                }
                typeflag::XGLOBAL => {
                    // Global records set defaults no layer relies on; Go hands them out as
                    // entries, which the reference would then write as a file. Skip them.
                    read_special(&mut entry, "PAX global", at)?;
                }
                typeflag::GNU_LONGNAME => {
                    long_name = Some(strip_nuls(read_special(&mut entry, "GNU long name", at)?));
                }
                typeflag::GNU_LONGLINK => {
                    long_link = Some(strip_nuls(read_special(&mut entry, "GNU long link", at)?));
                }
                _ => {
                    let hdr = self.header_of(&entry, flag, pax.take(), long_name, long_link, at)?;
                    return Ok(Some((hdr, entry)));
                }
            }
        }
    }

    fn header_of(
        &self,
        entry: &TarData<'a, R>,
        flag: u8,
        pax: Option<BTreeMap<String, Vec<u8>>>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        at: usize,
    ) -> Result<TarHeader> {
        let h = entry.header();
        let pax = pax.unwrap_or_default();
        let name = match (pax.get("path"), long_name) {
            (Some(p), _) => p.clone(),
            (None, Some(l)) => l,
            (None, None) => h.path_bytes().into_owned(),
        };
        let name = utf8(name, "name", at)?;
        let linkname = match (pax.get("linkpath"), long_link) {
            (Some(p), _) => p.clone(),
            (None, Some(l)) => l,
            (None, None) => h
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default(),
        };
        let linkname = utf8(linkname, "link name", at)?;
        let fail = |reason: String| Error::tar(name.clone(), reason);
        if flag == b'S' || pax.keys().any(|k| k.starts_with("GNU.sparse.")) {
            return Err(fail(
                "GNU sparse entries are not supported in layers".into(),
            ));
        }
        let size = h.entry_size().map_err(stream_err)?;
        if let Some(v) = pax.get("size") {
            let s = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            if s != Some(size) {
                return Err(fail(format!(
                    "PAX size {:?} disagrees with the header's {size} (entries over 8 GiB are \
                     not supported)",
                    String::from_utf8_lossy(v)
                )));
            }
        }
        if matches!(flag, typeflag::DIR | typeflag::LINK | typeflag::SYMLINK) && size != 0 {
            return Err(fail(format!(
                "a type {:?} entry carries {size} bytes of data",
                flag as char
            )));
        }
        let time = |key: &str| -> Result<Option<UnixTime>> {
            match pax.get(key) {
                None => Ok(None),
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(UnixTime::from_pax)
                    .map(Some)
                    .ok_or_else(|| fail(format!("bad PAX {key} {:?}", String::from_utf8_lossy(v)))),
            }
        };
        let mtime = match time("mtime")? {
            Some(t) => t,
            None => UnixTime {
                secs: h.mtime().map_err(stream_err)? as i64,
                nanos: 0,
            },
        };
        let atime = time("atime")?;
        let ctime = time("ctime")?;
        Ok(TarHeader {
            linkname,
            typeflag: flag,
            size,
            mode: h.mode().unwrap_or(0),
            mtime,
            atime,
            ctime,
            pax,
            name,
        })
    }
}

/// Copies exactly `size` bytes of an entry's data to `w`; a short entry is a truncated tar.
pub fn copy_data(r: &mut impl Read, w: &mut impl io::Write, size: u64, name: &str) -> Result<()> {
    let mut buf = vec![0u8; COPY_BUFFER.min(size as usize).max(1)];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Error::TarStream(format!(
                    "{name}: data truncated ({} of {size} bytes)",
                    size - left
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(stream_err(e)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| Error::from_io_write("layer data", e))?;
        left -= n as u64;
    }
    Ok(())
}

/// Buffer size for copying file data.
const COPY_BUFFER: usize = 256 * 1024;

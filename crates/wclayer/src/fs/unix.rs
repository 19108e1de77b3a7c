//! Layer folders on Linux (and other Unix systems): a file's unnamed data stream is the
//! file's content, everything else Windows keeps about it lives in one user extended
//! attribute, [`META_XATTR`], of the same inode:
//!
//! ```text
//! version u8 (1) | FILE_BASIC_INFO (36 bytes) | flags u8 (bit 0: has a data stream)
//! | pre u32 + bytes | post u32 + bytes
//! ```
//!
//! `pre` holds the backup-stream records that came before the data stream (security
//! descriptor, extended attributes, reparse data), `post` those after it (alternate data
//! streams), both verbatim. [`XattrFs::backup`] replays them around the file's content, so a
//! restore followed by a backup gives the stream back (sparse blocks come back as plain
//! data: the holes are real holes in the file, but the stream no longer marks them).
//!
//! Files without the attribute (a folder made by other tools) read as what they look like:
//! directories get `FILE_ATTRIBUTE_DIRECTORY`, times come from the inode.
//!
//! The attribute is bounded by [`MAX_META`]; Linux file systems refuse much less than that
//! (ext4 allows about 4 KiB per inode), which is reported as an error naming the file — a
//! big alternate data stream cannot be kept in a Linux layer folder.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{BackupSource, DirEntry, Disposition, LayerFs, LinkInfo, RestoreWriter, Stat};
use crate::backup::*;
use crate::backuptar::RewindRead;
use crate::error::{Error, Result};
use crate::fileinfo::{FileBasicInfo, UnixTime, FILE_ATTRIBUTE_DIRECTORY};

/// The extended attribute holding a file's Windows metadata.
pub const META_XATTR: &str = "user.wclayer.meta";
/// Largest metadata attribute written or read.
pub const MAX_META: usize = 64 * 1024;
const META_VERSION: u8 = 1;
const FLAG_HAS_DATA: u8 = 1;

/// A file's Windows metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Times and attributes.
    pub info: FileBasicInfo,
    /// Whether the backup stream has a data stream record.
    pub has_data: bool,
    /// Records before the data stream.
    pub pre: Vec<u8>,
    /// Records after the data stream.
    pub post: Vec<u8>,
}

impl Meta {
    /// The attribute's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(46 + self.pre.len() + self.post.len());
        b.push(META_VERSION);
        b.extend_from_slice(&self.info.to_bytes());
        b.push(if self.has_data { FLAG_HAS_DATA } else { 0 });
        for part in [&self.pre, &self.post] {
            b.extend_from_slice(&(part.len() as u32).to_le_bytes());
            b.extend_from_slice(part);
        }
        b
    }

    /// Parses the attribute's bytes (bounded; every length checked).
    pub fn decode(b: &[u8]) -> Result<Self> {
        let bad = |why: &str| Error::InvalidLayer(format!("metadata attribute: {why}"));
        if b.len() > MAX_META {
            return Err(bad("too large"));
        }
        if b.first() != Some(&META_VERSION) {
            return Err(bad("unknown version"));
        }
        let info = FileBasicInfo::from_bytes(&b[1..]).ok_or_else(|| bad("truncated"))?;
        let mut rest = b
            .get(1 + FileBasicInfo::ENCODED_LEN..)
            .ok_or_else(|| bad("truncated"))?;
        let flags = *rest.first().ok_or_else(|| bad("truncated"))?;
        rest = &rest[1..];
        let mut part = || -> Result<Vec<u8>> {
            let len = rest.get(..4).ok_or_else(|| bad("truncated"))?;
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let body = rest
                .get(4..4 + len)
                .ok_or_else(|| bad("truncated"))?
                .to_vec();
            rest = &rest[4 + len..];
            Ok(body)
        };
        let pre = part()?;
        let post = part()?;
        Ok(Self {
            info,
            has_data: flags & FLAG_HAS_DATA != 0,
            pre,
            post,
        })
    }
}

/// Layer folders on a Unix file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct XattrFs;

fn io_at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

fn read_meta(path: &Path) -> Result<Option<Meta>> {
    match xattr::get(path, META_XATTR).map_err(io_at("read metadata of", path))? {
        None => Ok(None),
        Some(b) => Meta::decode(&b)
            .map(Some)
            .map_err(|e| Error::InvalidLayer(format!("{}: {e}", path.display()))),
    }
}

fn write_meta(path: &Path, meta: &Meta) -> Result<()> {
    let b = meta.encode();
    if b.len() > MAX_META {
        return Err(Error::Unsupported(format!(
            "{}: {} bytes of Windows metadata (security descriptor, extended attributes, \
             alternate streams) do not fit a Linux layer folder",
            path.display(),
            b.len()
        )));
    }
    xattr::set(path, META_XATTR, &b).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::ENOTSUP) => " (this file system does not support user extended attributes)",
            Some(libc::E2BIG) | Some(libc::ENOSPC) => {
                " (too large for this file system's extended attributes)"
            }
            _ => "",
        };
        Error::io(
            "write metadata of",
            path,
            io::Error::new(e.kind(), format!("{e}{hint}")),
        )
    })
}

fn system_time(t: UnixTime) -> SystemTime {
    if t.secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(t.secs as u64, t.nanos)
    } else {
        let back = Duration::new(t.secs.unsigned_abs(), 0) - Duration::new(0, t.nanos);
        SystemTime::UNIX_EPOCH
            .checked_sub(back)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

fn unix_time(t: SystemTime) -> UnixTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => UnixTime::from_nanos(d.as_nanos() as i128),
        Err(e) => UnixTime::from_nanos(-(e.duration().as_nanos() as i128)),
    }
}

/// Sets the inode's access and modification times from Windows times, so `ls` shows them.
fn set_inode_times(path: &Path, info: &FileBasicInfo) -> Result<()> {
    let f = File::open(path).map_err(io_at("open", path))?;
    let times = fs::FileTimes::new()
        .set_accessed(system_time(UnixTime::from_filetime(info.last_access_time)))
        .set_modified(system_time(UnixTime::from_filetime(info.last_write_time)));
    f.set_times(times).map_err(io_at("set times of", path))
}

/// What a file looks like without the metadata attribute.
fn derived_info(md: &fs::Metadata) -> FileBasicInfo {
    let mtime = md.modified().map(unix_time).unwrap_or_default();
    let atime = md.accessed().map(unix_time).unwrap_or(mtime);
    let ctime = UnixTime::from_nanos(md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128);
    // Creation time when the file system records it; otherwise the modification time.
    let btime = md.created().map(unix_time).unwrap_or(mtime);
    FileBasicInfo {
        creation_time: btime.to_filetime(),
        last_access_time: atime.to_filetime(),
        last_write_time: mtime.to_filetime(),
        change_time: ctime.to_filetime(),
        file_attributes: if md.is_dir() {
            FILE_ATTRIBUTE_DIRECTORY
        } else {
            0
        },
    }
}

fn lstat(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

fn refuse_symlink(path: &Path, md: &fs::Metadata) -> Result<()> {
    if md.file_type().is_symlink() {
        return Err(Error::InvalidLayer(format!(
            "{}: a symbolic link in a layer folder (layer folders never hold real symlinks)",
            path.display()
        )));
    }
    Ok(())
}

impl LayerFs for XattrFs {
    fn create_dir(&self, path: &Path) -> Result<()> {
        fs::create_dir(path).map_err(io_at("create directory", path))
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).map_err(io_at("create directory", path))
    }

    fn create_file(&self, path: &Path) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc_o_nofollow())
            .open(path)
            .map_err(io_at("create", path))
    }

    fn open_file(&self, path: &Path) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nofollow())
            .open(path)
            .map_err(io_at("open", path))
    }

    fn basic_info(&self, path: &Path) -> Result<FileBasicInfo> {
        let md =
            lstat(path)?.ok_or_else(|| Error::io("stat", path, io::ErrorKind::NotFound.into()))?;
        refuse_symlink(path, &md)?;
        Ok(match read_meta(path)? {
            Some(m) => m.info,
            None => derived_info(&md),
        })
    }

    fn set_basic_info(&self, path: &Path, info: &FileBasicInfo) -> Result<()> {
        let md =
            lstat(path)?.ok_or_else(|| Error::io("stat", path, io::ErrorKind::NotFound.into()))?;
        refuse_symlink(path, &md)?;
        let mut meta = read_meta(path)?.unwrap_or(Meta {
            has_data: md.is_file(),
            ..Default::default()
        });
        meta.info = *info;
        write_meta(path, &meta)?;
        set_inode_times(path, info)
    }

    fn stat(&self, path: &Path) -> Result<Option<Stat>> {
        let Some(md) = lstat(path)? else {
            return Ok(None);
        };
        refuse_symlink(path, &md)?;
        let attributes = match read_meta(path)? {
            Some(m) => m.info.file_attributes,
            None => derived_info(&md).file_attributes,
        };
        // The directory bit follows what the inode is, whatever the metadata says.
        let attributes = if md.is_dir() {
            attributes | FILE_ATTRIBUTE_DIRECTORY
        } else {
            attributes & !FILE_ATTRIBUTE_DIRECTORY
        };
        Ok(Some(Stat {
            attributes,
            size: if md.is_file() { md.len() } else { 0 },
        }))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let md = lstat(path)?
            .ok_or_else(|| Error::io("remove", path, io::ErrorKind::NotFound.into()))?;
        if md.is_dir() {
            fs::remove_dir(path).map_err(io_at("remove directory", path))
        } else {
            fs::remove_file(path).map_err(io_at("remove", path))
        }
    }

    fn remove_all(&self, path: &Path) -> Result<()> {
        match lstat(path)? {
            None => Err(Error::io("remove", path, io::ErrorKind::NotFound.into())),
            Some(md) if md.is_dir() => fs::remove_dir_all(path).map_err(io_at("remove tree", path)),
            Some(_) => fs::remove_file(path).map_err(io_at("remove", path)),
        }
    }

    fn hard_link(&self, existing: &Path, new: &Path) -> Result<()> {
        fs::hard_link(existing, new).map_err(|e| {
            Error::io(
                "hard link",
                new,
                io::Error::new(e.kind(), format!("to {}: {e}", existing.display())),
            )
        })
    }

    fn restore(
        &self,
        path: &Path,
        info: &FileBasicInfo,
        disposition: Disposition,
        security: bool,
    ) -> Result<Box<dyn RestoreWriter>> {
        let file = if info.is_dir() {
            match (disposition, lstat(path)?) {
                (Disposition::Open, Some(md)) if md.is_dir() => {}
                _ => fs::create_dir(path).map_err(io_at("create directory", path))?,
            }
            None
        } else {
            let mut o = OpenOptions::new();
            o.read(true).write(true).custom_flags(libc_o_nofollow());
            match disposition {
                Disposition::Create => o.create_new(true),
                Disposition::Open => o.truncate(true),
            };
            Some(o.open(path).map_err(io_at("create", path))?)
        };
        Ok(Box::new(Restore {
            path: path.to_path_buf(),
            file,
            info: *info,
            security,
            parser: Parser::default(),
            meta: Meta::default(),
            data_pos: 0,
            file_len: 0,
        }))
    }

    fn backup(&self, path: &Path, security: bool) -> Result<Box<dyn BackupSource>> {
        let md =
            lstat(path)?.ok_or_else(|| Error::io("open", path, io::ErrorKind::NotFound.into()))?;
        refuse_symlink(path, &md)?;
        let meta = read_meta(path)?.unwrap_or(Meta {
            has_data: md.is_file(),
            ..Default::default()
        });
        let pre = if security {
            meta.pre.clone()
        } else {
            without_security(&meta.pre)?
        };
        let (file, len) = if md.is_file() && meta.has_data {
            (Some(self.open_file(path)?), md.len())
        } else {
            (None, 0)
        };
        let mut head = pre;
        if file.is_some() {
            let mut w = BackupStreamWriter::new(&mut head);
            w.write_header(&BackupHeader::new(BACKUP_DATA, len))?;
        }
        Ok(Box::new(Replay {
            path: path.to_path_buf(),
            head: Cursor::new(head),
            file,
            len,
            done: 0,
            post: Cursor::new(meta.post),
        }))
    }

    fn link_info(&self, path: &Path) -> Result<LinkInfo> {
        let md =
            lstat(path)?.ok_or_else(|| Error::io("stat", path, io::ErrorKind::NotFound.into()))?;
        Ok(LinkInfo {
            links: md.nlink().min(u32::MAX as u64) as u32,
            volume: md.dev(),
            file_id: md.ino() as u128,
        })
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in fs::read_dir(path).map_err(io_at("read directory", path))? {
            let e = e.map_err(io_at("read directory", path))?;
            let name = e
                .file_name()
                .into_string()
                .map_err(|n| Error::InvalidPath {
                    path: format!("{}/{}", path.display(), n.to_string_lossy()),
                    reason: "not UTF-8",
                })?;
            let ft = e.file_type().map_err(io_at("stat", &e.path()))?;
            let size = if ft.is_file() {
                e.metadata().map_err(io_at("stat", &e.path()))?.len()
            } else {
                0
            };
            out.push(DirEntry {
                name,
                is_dir: ft.is_dir(),
                size,
            });
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }
}

/// `O_NOFOLLOW`: a layer folder never holds symlinks, so one in the last component is
/// refused instead of followed.
fn libc_o_nofollow() -> i32 {
    libc::O_NOFOLLOW
}

/// The records of `stream` without the security descriptor (`BackupRead` without security).
fn without_security(stream: &[u8]) -> Result<Vec<u8>> {
    let mut r = BackupStreamReader::new(stream);
    let mut w = BackupStreamWriter::new(Vec::new());
    while let Some(h) = r.next_header()? {
        if h.id == BACKUP_SECURITY_DATA {
            continue;
        }
        w.write_header(&h)?;
        io::copy(&mut r, &mut w).map_err(|e| Error::from_io("backup stream", e))?;
    }
    w.finish()
}

/// Push parser of a backup stream written in arbitrary chunks.
#[derive(Debug, Default)]
struct Parser {
    /// Header bytes gathered so far (header, name, sparse offset).
    head: Vec<u8>,
    /// The record being received and the bytes still to come.
    body: Option<(BackupHeader, u64)>,
}

/// A restore in progress on Linux.
struct Restore {
    path: PathBuf,
    file: Option<File>,
    info: FileBasicInfo,
    security: bool,
    parser: Parser,
    meta: Meta,
    /// Where the next data byte goes.
    data_pos: u64,
    /// The file's logical size (a final sparse block can extend it).
    file_len: u64,
}

impl Restore {
    fn fail(&self, why: String) -> io::Error {
        Error::BackupStream(format!("{}: {why}", self.path.display())).into_io()
    }

    /// How many header bytes the current header needs, given what it has.
    fn header_need(&self) -> io::Result<usize> {
        let h = &self.parser.head;
        if h.len() < STREAM_HEADER_LEN {
            return Ok(STREAM_HEADER_LEN);
        }
        let id = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes"));
        let name = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes"));
        if name > MAX_STREAM_NAME_BYTES || name % 2 != 0 {
            return Err(self.fail(format!("stream name size {name}")));
        }
        let sparse = if id == BACKUP_SPARSE_BLOCK { 8 } else { 0 };
        Ok(STREAM_HEADER_LEN + name as usize + sparse)
    }

    fn take_header(&mut self) -> io::Result<()> {
        let head = std::mem::take(&mut self.parser.head);
        let mut r = BackupStreamReader::new(&head[..]);
        let h = r
            .next_header()
            .map_err(Error::into_io)?
            .ok_or_else(|| self.fail("empty header".into()))?;
        match h.id {
            BACKUP_DATA => {
                if self.file.is_none() {
                    return Err(self.fail("a data stream for a directory".into()));
                }
                if self.meta.has_data {
                    return Err(self.fail("two data streams".into()));
                }
                self.meta.has_data = true;
                self.data_pos = 0;
                self.file_len = h.size;
            }
            BACKUP_SPARSE_BLOCK => {
                if !self.meta.has_data {
                    return Err(self.fail("a sparse block before the data stream".into()));
                }
                self.data_pos = h.offset;
                self.file_len = self.file_len.max(h.offset + h.size);
            }
            _ => {
                let part = if self.meta.has_data {
                    &mut self.meta.post
                } else {
                    &mut self.meta.pre
                };
                if h.size > MAX_META as u64 || part.len() + head.len() + h.size as usize > MAX_META
                {
                    return Err(self.fail(format!(
                        "stream {} of {} bytes does not fit a Linux layer folder's metadata",
                        h.id, h.size
                    )));
                }
                part.extend_from_slice(&head);
            }
        }
        let size = h.size;
        self.parser.body = Some((h, size));
        Ok(())
    }

    fn body(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (h, left) = self.parser.body.as_mut().expect("in a body");
        let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
        let chunk = &buf[..n];
        match h.id {
            BACKUP_DATA | BACKUP_SPARSE_BLOCK => {
                let f = self.file.as_ref().expect("checked in take_header");
                f.write_all_at(chunk, self.data_pos)?;
                self.data_pos += n as u64;
            }
            _ => {
                let part = if self.meta.has_data {
                    &mut self.meta.post
                } else {
                    &mut self.meta.pre
                };
                part.extend_from_slice(chunk);
            }
        }
        *left -= n as u64;
        if *left == 0 {
            self.parser.body = None;
        }
        Ok(n)
    }
}

impl Write for Restore {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.parser.body.is_some() {
            return self.body(buf);
        }
        let need = self.header_need()?;
        let n = (need - self.parser.head.len()).min(buf.len());
        self.parser.head.extend_from_slice(&buf[..n]);
        // The name size is known only once the fixed part is in, so ask again.
        let have = self.parser.head.len();
        if have >= STREAM_HEADER_LEN && self.header_need()? == have {
            self.take_header()?;
            if let Some((_, 0)) = self.parser.body {
                self.parser.body = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RestoreWriter for Restore {
    fn finish(mut self: Box<Self>) -> Result<()> {
        if self.parser.body.is_some() || !self.parser.head.is_empty() {
            return Err(Error::BackupStream(format!(
                "{}: the stream ends inside a record",
                self.path.display()
            )));
        }
        if let Some(f) = &self.file {
            f.set_len(self.file_len)
                .map_err(io_at("set size of", &self.path))?;
        }
        if !self.security {
            self.meta.pre = without_security(&self.meta.pre)?;
            self.meta.post = without_security(&self.meta.post)?;
        }
        self.meta.info = self.info;
        write_meta(&self.path, &self.meta)?;
        set_inode_times(&self.path, &self.info)
    }
}

/// A file's backup stream on Linux: the recorded records, the content as the data stream,
/// the records after it.
struct Replay {
    path: PathBuf,
    head: Cursor<Vec<u8>>,
    file: Option<File>,
    len: u64,
    done: u64,
    post: Cursor<Vec<u8>>,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        if let Some(f) = &mut self.file {
            if self.done < self.len {
                let want = buf
                    .len()
                    .min(usize::try_from(self.len - self.done).unwrap_or(usize::MAX));
                let n = f.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(Error::InvalidLayer(format!(
                        "{}: the file shrank while it was read",
                        self.path.display()
                    ))
                    .into_io());
                }
                self.done += n as u64;
                return Ok(n);
            }
        }
        self.post.read(buf)
    }
}

impl RewindRead for Replay {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        let cursor = |c: &mut Cursor<Vec<u8>>, left: &mut u64| {
            let k = (c.get_ref().len() as u64 - c.position()).min(*left);
            c.set_position(c.position() + k);
            *left -= k;
        };
        cursor(&mut self.head, &mut left);
        if let Some(f) = &mut self.file {
            let k = (self.len - self.done).min(left);
            if k > 0 {
                f.seek(SeekFrom::Current(k as i64))?;
                self.done += k;
                left -= k;
            }
        }
        cursor(&mut self.post, &mut left);
        Ok(n - left)
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.head.set_position(0);
        self.post.set_position(0);
        self.done = 0;
        if let Some(f) = &mut self.file {
            f.seek(SeekFrom::Start(0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! NTFS through the backup APIs: the [`LayerFs`] of Windows hosts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{
    BackupRead, BackupWrite, FileBasicInfo, FileIdInfo, FileStandardInfo,
    GetFileInformationByHandleEx, SetFileInformationByHandle, FILE_BASIC_INFO,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_ID_INFO, FILE_READ_ATTRIBUTES,
    FILE_SHARE_READ, FILE_STANDARD_INFO, FILE_WRITE_ATTRIBUTES, WRITE_DAC, WRITE_OWNER,
};
use windows_sys::Win32::System::SystemServices::ACCESS_SYSTEM_SECURITY;

use crate::backuptar::RewindRead;
use crate::error::{Error, Result};
use crate::fileinfo::{
    FileBasicInfo as BasicInfo, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT,
};
use crate::fs::{BackupSource, DirEntry, Disposition, LayerFs, LinkInfo, RestoreWriter, Stat};

const BACKUP_FLAGS: u32 = FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT;

/// Layer folders on NTFS.
#[derive(Debug, Clone, Copy, Default)]
pub struct NtfsFs;

fn open_with(path: &Path, access: u32, write: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true)
        .write(write)
        .access_mode(access)
        .share_mode(FILE_SHARE_READ)
        .custom_flags(BACKUP_FLAGS);
    o.open(path).map_err(|e| Error::io("open", path, e))
}

pub(super) fn handle(f: &File) -> HANDLE {
    f.as_raw_handle() as HANDLE
}

fn get_basic(f: &File, path: &Path) -> Result<BasicInfo> {
    let mut bi = FILE_BASIC_INFO::default();
    // SAFETY: `f` is an open handle; `bi` is a FILE_BASIC_INFO of the size passed.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            handle(f),
            FileBasicInfo,
            &mut bi as *mut _ as *mut _,
            std::mem::size_of::<FILE_BASIC_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "get basic info of",
            path,
            io::Error::last_os_error(),
        ));
    }
    Ok(BasicInfo {
        creation_time: bi.CreationTime,
        last_access_time: bi.LastAccessTime,
        last_write_time: bi.LastWriteTime,
        change_time: bi.ChangeTime,
        file_attributes: bi.FileAttributes,
    })
}

fn set_basic(f: &File, path: &Path, info: &BasicInfo) -> Result<()> {
    let bi = FILE_BASIC_INFO {
        CreationTime: info.creation_time,
        LastAccessTime: info.last_access_time,
        LastWriteTime: info.last_write_time,
        ChangeTime: info.change_time,
        FileAttributes: info.file_attributes,
    };
    // SAFETY: `f` is an open handle with FILE_WRITE_ATTRIBUTES; `bi` outlives the call.
    let ok = unsafe {
        SetFileInformationByHandle(
            handle(f),
            FileBasicInfo,
            &bi as *const _ as *const _,
            std::mem::size_of::<FILE_BASIC_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "set basic info of",
            path,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

impl LayerFs for NtfsFs {
    fn create_dir(&self, path: &Path) -> Result<()> {
        fs::create_dir(path).map_err(|e| Error::io("create directory", path, e))
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).map_err(|e| Error::io("create directory", path, e))
    }

    fn create_file(&self, path: &Path) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .share_mode(FILE_SHARE_READ)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)
            .map_err(|e| Error::io("create", path, e))
    }

    fn open_file(&self, path: &Path) -> Result<File> {
        open_with(path, GENERIC_READ, false)
    }

    fn basic_info(&self, path: &Path) -> Result<BasicInfo> {
        get_basic(&open_with(path, FILE_READ_ATTRIBUTES, false)?, path)
    }

    fn set_basic_info(&self, path: &Path, info: &BasicInfo) -> Result<()> {
        let f = open_with(path, FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES, true)?;
        set_basic(&f, path, info)
    }

    fn stat(&self, path: &Path) -> Result<Option<Stat>> {
        match fs::symlink_metadata(path) {
            Ok(md) => Ok(Some(Stat {
                attributes: md.file_attributes(),
                size: if md.is_file() { md.len() } else { 0 },
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", path, e)),
        }
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let md = fs::symlink_metadata(path).map_err(|e| Error::io("remove", path, e))?;
        if md.file_attributes() & FILE_ATTRIBUTE_DIRECTORY != 0 {
            fs::remove_dir(path).map_err(|e| Error::io("remove directory", path, e))
        } else {
            fs::remove_file(path).map_err(|e| Error::io("remove", path, e))
        }
    }

    fn remove_all(&self, path: &Path) -> Result<()> {
        let md = fs::symlink_metadata(path).map_err(|e| Error::io("remove", path, e))?;
        let attrs = md.file_attributes();
        if attrs & FILE_ATTRIBUTE_DIRECTORY != 0 && attrs & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
            fs::remove_dir_all(path).map_err(|e| Error::io("remove tree", path, e))
        } else {
            self.remove(path)
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
        info: &BasicInfo,
        disposition: Disposition,
        security: bool,
    ) -> Result<Box<dyn RestoreWriter>> {
        let mut access = GENERIC_READ | GENERIC_WRITE | WRITE_DAC | WRITE_OWNER;
        if security {
            access |= ACCESS_SYSTEM_SECURITY;
        }
        let mut o = OpenOptions::new();
        o.read(true)
            .write(true)
            .access_mode(access)
            .share_mode(FILE_SHARE_READ)
            .custom_flags(BACKUP_FLAGS);
        if info.is_dir() {
            match disposition {
                Disposition::Create => self.create_dir(path)?,
                Disposition::Open if !path.is_dir() => self.create_dir(path)?,
                Disposition::Open => {}
            }
        } else {
            match disposition {
                Disposition::Create => o.create_new(true),
                Disposition::Open => o.create(true).truncate(true),
            };
        }
        let f = o.open(path).map_err(|e| Error::io("create", path, e))?;
        set_basic(&f, path, info)?;
        Ok(Box::new(BackupWriter {
            file: f,
            path: path.to_path_buf(),
            context: std::ptr::null_mut(),
            security,
        }))
    }

    fn backup(&self, path: &Path, security: bool) -> Result<Box<dyn BackupSource>> {
        let mut r = BackupReader {
            file: None,
            path: path.to_path_buf(),
            context: std::ptr::null_mut(),
            security,
        };
        r.open()?;
        Ok(Box::new(r))
    }

    fn link_info(&self, path: &Path) -> Result<LinkInfo> {
        let f = open_with(path, FILE_READ_ATTRIBUTES, false)?;
        let mut std_info = FILE_STANDARD_INFO::default();
        let mut id = FILE_ID_INFO::default();
        // SAFETY: `f` is open; each buffer is the struct of the class asked for, of the size
        // passed.
        let ok = unsafe {
            GetFileInformationByHandleEx(
                handle(&f),
                FileStandardInfo,
                &mut std_info as *mut _ as *mut _,
                std::mem::size_of::<FILE_STANDARD_INFO>() as u32,
            ) != 0
                && GetFileInformationByHandleEx(
                    handle(&f),
                    FileIdInfo,
                    &mut id as *mut _ as *mut _,
                    std::mem::size_of::<FILE_ID_INFO>() as u32,
                ) != 0
        };
        if !ok {
            return Err(Error::io(
                "get link info of",
                path,
                io::Error::last_os_error(),
            ));
        }
        Ok(LinkInfo {
            links: std_info.NumberOfLinks,
            volume: id.VolumeSerialNumber,
            file_id: u128::from_le_bytes(id.FileId.Identifier),
        })
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in fs::read_dir(path).map_err(|e| Error::io("read directory", path, e))? {
            let e = e.map_err(|e| Error::io("read directory", path, e))?;
            let name = e
                .file_name()
                .into_string()
                .map_err(|n| Error::InvalidPath {
                    path: format!("{}\\{}", path.display(), n.to_string_lossy()),
                    reason: "not valid Unicode",
                })?;
            let md = e
                .metadata()
                .map_err(|err| Error::io("stat", e.path(), err))?;
            let attrs = md.file_attributes();
            out.push(DirEntry {
                name,
                is_dir: attrs & FILE_ATTRIBUTE_DIRECTORY != 0
                    && attrs & FILE_ATTRIBUTE_REPARSE_POINT == 0,
                size: if md.is_file() { md.len() } else { 0 },
            });
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }
}

/// `BackupWrite` into an open file.
struct BackupWriter {
    file: File,
    path: PathBuf,
    context: *mut std::ffi::c_void,
    security: bool,
}

// SAFETY: the BackupWrite context is tied to the file handle, not to a thread; the writer
// is used by one thread at a time (it is not Sync).
unsafe impl Send for BackupWriter {}

impl Write for BackupWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len().min(u32::MAX as usize) as u32;
        let mut written = 0u32;
        // SAFETY: `buf` holds `len` readable bytes; `context` is null or the value the
        // previous call returned for this handle.
        let ok = unsafe {
            BackupWrite(
                handle(&self.file),
                buf.as_ptr(),
                len,
                &mut written,
                0,
                self.security as i32,
                &mut self.context,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(written as usize)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BackupWriter {
    fn release(&mut self) -> io::Result<()> {
        if self.context.is_null() {
            return Ok(());
        }
        let mut written = 0u32;
        // SAFETY: abort = TRUE frees the context the earlier calls returned; nothing is read
        // from the (null) buffer.
        let ok = unsafe {
            BackupWrite(
                handle(&self.file),
                std::ptr::null(),
                0,
                &mut written,
                1,
                self.security as i32,
                &mut self.context,
            )
        };
        self.context = std::ptr::null_mut();
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl RestoreWriter for BackupWriter {
    fn finish(mut self: Box<Self>) -> Result<()> {
        let path = self.path.clone();
        self.release()
            .map_err(|e| Error::io("BackupWrite", &path, e))
    }
}

impl Drop for BackupWriter {
    fn drop(&mut self) {
        // The error of an abandoned restore is already being reported by its caller.
        if let Err(e) = self.release() {
            tracing::debug!(path = %self.path.display(), "releasing a BackupWrite context: {e}");
        }
    }
}

/// `BackupRead` of a file; rewinding reopens it.
struct BackupReader {
    file: Option<File>,
    path: PathBuf,
    context: *mut std::ffi::c_void,
    security: bool,
}

// SAFETY: as for BackupWriter, the context belongs to the handle, used by one thread at a
// time.
unsafe impl Send for BackupReader {}

impl BackupReader {
    fn open(&mut self) -> Result<()> {
        let mut access = GENERIC_READ;
        if self.security {
            access |= ACCESS_SYSTEM_SECURITY;
        }
        self.file = Some(open_with(&self.path, access, false)?);
        Ok(())
    }

    fn release(&mut self) {
        if let (Some(f), false) = (&self.file, self.context.is_null()) {
            let mut read = 0u32;
            // SAFETY: abort = TRUE only frees the context of this handle.
            unsafe {
                BackupRead(
                    handle(f),
                    std::ptr::null_mut(),
                    0,
                    &mut read,
                    1,
                    self.security as i32,
                    &mut self.context,
                )
            };
        }
        self.context = std::ptr::null_mut();
    }
}

impl Read for BackupReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("closed"))?;
        let len = buf.len().min(u32::MAX as usize) as u32;
        let mut read = 0u32;
        // SAFETY: `buf` has room for `len` bytes; `context` is null or this handle's.
        let ok = unsafe {
            BackupRead(
                handle(f),
                buf.as_mut_ptr(),
                len,
                &mut read,
                0,
                self.security as i32,
                &mut self.context,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(read as usize)
    }
}

impl RewindRead for BackupReader {
    fn rewind(&mut self) -> io::Result<()> {
        self.release();
        self.file = None;
        self.open().map_err(Error::into_io)
    }
}

impl Drop for BackupReader {
    fn drop(&mut self) {
        self.release();
    }
}

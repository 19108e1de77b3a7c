//! The Win32 calls of the crate, typed from `windows-sys`. Each is a thin wrapper that owns
//! its handles and buffers; every decision lives in the OS-neutral code above.

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;

use windows_sys::Win32::Foundation::{LocalFree, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::PSECURITY_DESCRIPTOR;

use crate::error::{Error, Result};

/// A NUL-terminated UTF-16 copy of `s`.
pub(crate) fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain([0]).collect()
}

/// Converts SDDL to a self-relative security descriptor
/// (`ConvertStringSecurityDescriptorToSecurityDescriptorW`).
pub fn sddl_to_security_descriptor(sddl: &str) -> Result<Vec<u8>> {
    let w = wide(sddl);
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `w` is NUL-terminated and outlives the call; `sd` and `len` are valid out
    // pointers.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            w.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(Error::Unsupported(format!(
            "SDDL {sddl:?} cannot be converted: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: on success `sd` points at `len` bytes the call allocated with LocalAlloc.
    let bytes = unsafe { std::slice::from_raw_parts(sd as *const u8, len as usize) }.to_vec();
    // SAFETY: `sd` came from LocalAlloc inside the call and is freed once.
    unsafe { LocalFree(sd as HLOCAL) };
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------
// NTFS through the backup APIs.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
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

fn handle(f: &File) -> HANDLE {
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

// ---------------------------------------------------------------------------------------
// Process privileges (go-winio's EnableProcessPrivileges).

use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_NOT_ALL_ASSIGNED, LUID};
use windows_sys::Win32::Security::{
    AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
    TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

pub use crate::privilege::SE_SECURITY_NAME;

fn adjust_privileges(names: &[&str], enable: bool) -> Result<()> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of the current process needs no closing; `token` is a valid
    // out pointer.
    let ok = unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &mut token,
        )
    };
    if ok == 0 {
        return Err(Error::Unsupported(format!(
            "OpenProcessToken: {}",
            io::Error::last_os_error()
        )));
    }
    let result = (|| {
        for name in names {
            let w = wide(name);
            let mut luid = LUID::default();
            // SAFETY: `w` is NUL-terminated; `luid` is a valid out pointer.
            if unsafe { LookupPrivilegeValueW(std::ptr::null(), w.as_ptr(), &mut luid) } == 0 {
                return Err(Error::Unsupported(format!(
                    "LookupPrivilegeValue({name}): {}",
                    io::Error::last_os_error()
                )));
            }
            let tp = TOKEN_PRIVILEGES {
                PrivilegeCount: 1,
                Privileges: [LUID_AND_ATTRIBUTES {
                    Luid: luid,
                    Attributes: if enable { SE_PRIVILEGE_ENABLED } else { 0 },
                }],
            };
            // SAFETY: `token` was opened with TOKEN_ADJUST_PRIVILEGES; `tp` outlives the call;
            // no previous state is asked for.
            let ok = unsafe {
                AdjustTokenPrivileges(token, 0, &tp, 0, std::ptr::null_mut(), std::ptr::null_mut())
            };
            // SAFETY: reads the calling thread's last error, set by the call just made.
            let last = unsafe { GetLastError() };
            if ok == 0 || last == ERROR_NOT_ALL_ASSIGNED {
                return Err(Error::Unsupported(format!(
                    "the process does not hold {name} (run as an administrator)"
                )));
            }
        }
        Ok(())
    })();
    // SAFETY: `token` was opened above and is closed once.
    unsafe { CloseHandle(token) };
    result
}

/// Privileges enabled for the process while the guard lives.
#[derive(Debug)]
pub struct PrivilegeGuard {
    names: Vec<&'static str>,
}

impl PrivilegeGuard {
    /// Enables `names` for the whole process.
    pub fn enable(names: &[&'static str]) -> Result<Self> {
        adjust_privileges(names, true)?;
        Ok(Self {
            names: names.to_vec(),
        })
    }
}

impl Drop for PrivilegeGuard {
    fn drop(&mut self) {
        if let Err(e) = adjust_privileges(&self.names, false) {
            tracing::warn!("disabling privileges {:?}: {e}", self.names);
        }
    }
}

/// Enables `names` for the rest of the process's life (the CLI does this once).
pub fn enable_process_privileges(names: &[&str]) -> Result<()> {
    adjust_privileges(names, true)
}

// ---------------------------------------------------------------------------------------
// The streaming layer exports of vmcompute.dll (optional: most builds lack them).

use std::sync::{Arc, OnceLock};

use hcs::vmcompute::LayerDescriptor;
use windows_sys::core::{PCWSTR, PWSTR};
use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use crate::layer::filter::{ExportedFile, StreamContext, StreamingExports};

/// `DriverInfo` (`Flavour` is a Go `int`, pointer-sized).
#[repr(C)]
struct DriverInfo {
    flavour: isize,
    home_dir: PCWSTR,
}

/// `WC_LAYER_DESCRIPTOR`.
#[repr(C)]
struct WcLayerDescriptor {
    layer_id: windows_sys::core::GUID,
    flags: u32,
    path: PCWSTR,
}

type Hresult = i32;
type Ctx = usize;
type Begin = unsafe extern "system" fn(
    *const DriverInfo,
    PCWSTR,
    *const WcLayerDescriptor,
    usize,
    *mut Ctx,
) -> Hresult;
type ExportNext =
    unsafe extern "system" fn(Ctx, *mut PWSTR, *mut FILE_BASIC_INFO, *mut i64, *mut u32) -> Hresult;
type ExportRead = unsafe extern "system" fn(Ctx, *mut u8, u32, *mut u32) -> Hresult;
type End = unsafe extern "system" fn(Ctx) -> Hresult;
type ImportNext = unsafe extern "system" fn(Ctx, PCWSTR, *const FILE_BASIC_INFO) -> Hresult;
type ImportWrite = unsafe extern "system" fn(Ctx, *const u8, u32) -> Hresult;

/// `HRESULT_FROM_WIN32(ERROR_NO_MORE_FILES)`.
const HR_NO_MORE_FILES: i32 = 0x8007_0012_u32 as i32;

/// The exports, all present (the streaming path is used only when every one is).
#[derive(Clone, Copy)]
struct Streaming {
    export_begin: Begin,
    export_next: ExportNext,
    export_read: ExportRead,
    export_end: End,
    import_begin: Begin,
    import_next: ImportNext,
    import_write: ImportWrite,
    import_end: End,
}

impl fmt::Debug for Streaming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("vmcompute streaming exports")
    }
}

use std::fmt;

fn load_streaming() -> Option<Streaming> {
    let name = wide("vmcompute.dll");
    // SAFETY: `name` is NUL-terminated; loading from System32 only.
    let module: HMODULE = unsafe {
        LoadLibraryExW(
            name.as_ptr(),
            std::ptr::null_mut(),
            LOAD_LIBRARY_SEARCH_SYSTEM32,
        )
    };
    if module.is_null() {
        return None;
    }
    let get = |sym: &[u8]| {
        // SAFETY: `module` is loaded for the life of the process; `sym` is NUL-terminated.
        unsafe { GetProcAddress(module, sym.as_ptr()) }
    };
    type Farproc = unsafe extern "system" fn() -> isize;
    // SAFETY: each export has the signature hcsshim declares for it (a missing export makes
    // the whole set unavailable); function pointers of both types have the same size.
    unsafe {
        Some(Streaming {
            export_begin: std::mem::transmute::<Farproc, Begin>(get(b"ExportLayerBegin\0")?),
            export_next: std::mem::transmute::<Farproc, ExportNext>(get(b"ExportLayerNext\0")?),
            export_read: std::mem::transmute::<Farproc, ExportRead>(get(b"ExportLayerRead\0")?),
            export_end: std::mem::transmute::<Farproc, End>(get(b"ExportLayerEnd\0")?),
            import_begin: std::mem::transmute::<Farproc, Begin>(get(b"ImportLayerBegin\0")?),
            import_next: std::mem::transmute::<Farproc, ImportNext>(get(b"ImportLayerNext\0")?),
            import_write: std::mem::transmute::<Farproc, ImportWrite>(get(b"ImportLayerWrite\0")?),
            import_end: std::mem::transmute::<Farproc, End>(get(b"ImportLayerEnd\0")?),
        })
    }
}

/// The streaming exports, when this Windows build's vmcompute.dll has them.
pub fn streaming_exports() -> Option<Arc<dyn StreamingExports>> {
    static LOADED: OnceLock<Option<Streaming>> = OnceLock::new();
    LOADED
        .get_or_init(load_streaming)
        .map(|s| Arc::new(s) as Arc<dyn StreamingExports>)
}

fn check(hr: Hresult) -> std::result::Result<(), i32> {
    if hr < 0 {
        Err(hr)
    } else {
        Ok(())
    }
}

fn begin(
    f: Begin,
    layer: &str,
    parents: &[LayerDescriptor],
) -> std::result::Result<StreamContext, i32> {
    let home = [0u16];
    let info = DriverInfo {
        flavour: 1,
        home_dir: home.as_ptr(),
    };
    let id = wide(layer);
    let paths: Vec<Vec<u16>> = parents.iter().map(|p| wide(&p.path)).collect();
    let descs: Vec<WcLayerDescriptor> = parents
        .iter()
        .zip(&paths)
        .map(|(d, p)| WcLayerDescriptor {
            layer_id: windows_sys::core::GUID {
                data1: d.layer_id.data1,
                data2: d.layer_id.data2,
                data3: d.layer_id.data3,
                data4: d.layer_id.data4,
            },
            flags: d.flags,
            path: p.as_ptr(),
        })
        .collect();
    let mut ctx: Ctx = 0;
    // SAFETY: every pointer refers to data alive until the call returns; `ctx` is a valid
    // out pointer.
    check(unsafe { f(&info, id.as_ptr(), descs.as_ptr(), descs.len(), &mut ctx) })?;
    Ok(StreamContext(ctx))
}

impl StreamingExports for Streaming {
    fn export_begin(
        &self,
        layer: &str,
        parents: &[LayerDescriptor],
    ) -> std::result::Result<StreamContext, i32> {
        begin(self.export_begin, layer, parents)
    }

    fn export_next(&self, ctx: StreamContext) -> std::result::Result<Option<ExportedFile>, i32> {
        let mut name: PWSTR = std::ptr::null_mut();
        let mut bi = FILE_BASIC_INFO::default();
        let (mut size, mut deleted) = (0i64, 0u32);
        // SAFETY: `ctx` came from ExportLayerBegin; the out pointers are valid.
        let hr = unsafe { (self.export_next)(ctx.0, &mut name, &mut bi, &mut size, &mut deleted) };
        if hr == HR_NO_MORE_FILES {
            return Ok(None);
        }
        check(hr)?;
        let text = if name.is_null() {
            String::new()
        } else {
            // SAFETY: vmcompute returned a NUL-terminated string it allocated with
            // CoTaskMemAlloc; it is read once, then freed once.
            unsafe {
                let len = (0..).take_while(|&i| *name.add(i) != 0).count();
                let s = String::from_utf16_lossy(std::slice::from_raw_parts(name, len));
                CoTaskMemFree(name as *const _);
                s
            }
        };
        Ok(Some(ExportedFile {
            name: text,
            info: BasicInfo {
                creation_time: bi.CreationTime,
                last_access_time: bi.LastAccessTime,
                last_write_time: bi.LastWriteTime,
                change_time: bi.ChangeTime,
                file_attributes: bi.FileAttributes,
            },
            size,
            deleted: deleted != 0,
        }))
    }

    fn export_read(&self, ctx: StreamContext, buf: &mut [u8]) -> std::result::Result<usize, i32> {
        let len = buf.len().min(u32::MAX as usize) as u32;
        let mut read = 0u32;
        // SAFETY: `buf` has room for `len` bytes; `ctx` came from ExportLayerBegin.
        check(unsafe { (self.export_read)(ctx.0, buf.as_mut_ptr(), len, &mut read) })?;
        Ok(read as usize)
    }

    fn export_end(&self, ctx: StreamContext) -> std::result::Result<(), i32> {
        // SAFETY: `ctx` came from ExportLayerBegin and is ended once.
        check(unsafe { (self.export_end)(ctx.0) })
    }

    fn import_begin(
        &self,
        layer: &str,
        parents: &[LayerDescriptor],
    ) -> std::result::Result<StreamContext, i32> {
        begin(self.import_begin, layer, parents)
    }

    fn import_next(
        &self,
        ctx: StreamContext,
        name: &str,
        info: Option<&BasicInfo>,
    ) -> std::result::Result<(), i32> {
        let w = wide(name);
        let bi = info.map(|i| FILE_BASIC_INFO {
            CreationTime: i.creation_time,
            LastAccessTime: i.last_access_time,
            LastWriteTime: i.last_write_time,
            ChangeTime: i.change_time,
            FileAttributes: i.file_attributes,
        });
        let p = bi.as_ref().map_or(std::ptr::null(), |b| b as *const _);
        // SAFETY: `w` is NUL-terminated; `p` is null (a deletion) or points at `bi`, alive
        // for the call.
        check(unsafe { (self.import_next)(ctx.0, w.as_ptr(), p) })
    }

    fn import_write(&self, ctx: StreamContext, buf: &[u8]) -> std::result::Result<(), i32> {
        for chunk in buf.chunks(u32::MAX as usize) {
            // SAFETY: `chunk` holds the bytes passed; `ctx` came from ImportLayerBegin.
            check(unsafe { (self.import_write)(ctx.0, chunk.as_ptr(), chunk.len() as u32) })?;
        }
        Ok(())
    }

    fn import_end(&self, ctx: StreamContext) -> std::result::Result<(), i32> {
        // SAFETY: `ctx` came from ImportLayerBegin and is ended once.
        check(unsafe { (self.import_end)(ctx.0) })
    }
}

// ---------------------------------------------------------------------------------------
// Empty registry hives (offreg.dll) for ConvertToBaseLayer.

use windows_sys::Wdk::System::OfflineRegistry::{ORCloseHive, ORCreateHive, ORSaveHive, ORHKEY};

/// Creates an empty registry hive file at `path` (saved in the 6.1 format, as containerd's
/// Windows snapshotter does).
pub fn create_empty_hive(path: &Path) -> Result<()> {
    let mut key: ORHKEY = std::ptr::null_mut();
    // SAFETY: `key` is a valid out pointer.
    let rc = unsafe { ORCreateHive(&mut key) };
    if rc != 0 {
        return Err(Error::io(
            "ORCreateHive for",
            path,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }
    let w = wide(path);
    // SAFETY: `key` is the hive just created; `w` is NUL-terminated.
    let rc = unsafe { ORSaveHive(key, w.as_ptr(), 6, 1) };
    // SAFETY: `key` is open and closed once.
    let closed = unsafe { ORCloseHive(key) };
    if rc != 0 {
        return Err(Error::io(
            "ORSaveHive",
            path,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }
    if closed != 0 {
        return Err(Error::io(
            "ORCloseHive for",
            path,
            io::Error::from_raw_os_error(closed as i32),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Scratch volume growth after ExpandSandboxSize.

use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW;
use windows_sys::Win32::Storage::Vhd::{
    AttachVirtualDisk, OpenVirtualDisk, ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY,
    ATTACH_VIRTUAL_DISK_PARAMETERS, ATTACH_VIRTUAL_DISK_VERSION_1, OPEN_VIRTUAL_DISK_FLAG_NONE,
    OPEN_VIRTUAL_DISK_PARAMETERS, OPEN_VIRTUAL_DISK_VERSION_2, VIRTUAL_DISK_ACCESS_NONE,
    VIRTUAL_STORAGE_TYPE,
};
use windows_sys::Win32::System::Ioctl::{FSCTL_EXTEND_VOLUME, IOCTL_DISK_GET_LENGTH_INFO};
use windows_sys::Win32::System::IO::DeviceIoControl;

/// An open handle closed on drop (closing an attached VHD's handle detaches it).
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by this module and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Attaches `vhdx`, then extends the NTFS volume at `volume` (its mount path) to fill its
/// partition, when there is room.
pub fn grow_scratch_volume(vhdx: &Path, volume: &str) -> Result<()> {
    let w = wide(vhdx);
    let storage = VIRTUAL_STORAGE_TYPE::default();
    let mut open = OPEN_VIRTUAL_DISK_PARAMETERS {
        Version: OPEN_VIRTUAL_DISK_VERSION_2,
        ..Default::default()
    };
    // Version 2 parameters: not info-only, not read-only (both zero).
    open.Anonymous.Version2 = Default::default();
    let mut disk: HANDLE = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live value; `disk` is a valid out pointer.
    let rc = unsafe {
        OpenVirtualDisk(
            &storage,
            w.as_ptr(),
            VIRTUAL_DISK_ACCESS_NONE,
            OPEN_VIRTUAL_DISK_FLAG_NONE,
            &open,
            &mut disk,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "OpenVirtualDisk",
            vhdx,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }
    let disk = OwnedHandle(disk);
    let attach = ATTACH_VIRTUAL_DISK_PARAMETERS {
        Version: ATTACH_VIRTUAL_DISK_VERSION_1,
        ..Default::default()
    };
    // SAFETY: `disk` is open; `attach` outlives the (synchronous) call.
    let rc = unsafe {
        AttachVirtualDisk(
            disk.0,
            std::ptr::null_mut(),
            ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY,
            0,
            &attach,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "AttachVirtualDisk",
            vhdx,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }

    let volume = volume.trim_end_matches('\\');
    let vol = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(FILE_SHARE_READ | windows_sys::Win32::Storage::FileSystem::FILE_SHARE_WRITE)
        .open(volume)
        .map_err(|e| Error::io("open volume", volume, e))?;
    let mut partition: i64 = 0;
    let mut returned = 0u32;
    // SAFETY: `vol` is an open volume handle; the output buffer is the 8-byte length.
    let ok = unsafe {
        DeviceIoControl(
            handle(&vol),
            IOCTL_DISK_GET_LENGTH_INFO,
            std::ptr::null(),
            0,
            &mut partition as *mut i64 as *mut _,
            8,
            &mut returned,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "IOCTL_DISK_GET_LENGTH_INFO",
            volume,
            io::Error::last_os_error(),
        ));
    }
    let root = wide(format!("{volume}\\"));
    let mut total: u64 = 0;
    // SAFETY: `root` is NUL-terminated; only the total is asked for.
    let ok = unsafe {
        GetDiskFreeSpaceExW(
            root.as_ptr(),
            std::ptr::null_mut(),
            &mut total,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "GetDiskFreeSpaceEx",
            volume,
            io::Error::last_os_error(),
        ));
    }
    let Some(sectors) = crate::baselayer::extend_target_sectors(partition.max(0) as u64, total)
    else {
        return Ok(());
    };
    let sectors = sectors as i64;
    // SAFETY: the input buffer is the 8-byte sector count; no output.
    let ok = unsafe {
        DeviceIoControl(
            handle(&vol),
            FSCTL_EXTEND_VOLUME,
            &sectors as *const i64 as *const _,
            8,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "FSCTL_EXTEND_VOLUME",
            volume,
            io::Error::last_os_error(),
        ));
    }
    drop(disk);
    Ok(())
}

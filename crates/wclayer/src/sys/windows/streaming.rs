//! The streaming layer exports of vmcompute.dll (optional: most builds lack them).

use std::fmt;
use std::sync::{Arc, OnceLock};

use hcs::vmcompute::LayerDescriptor;
use windows_sys::core::{PCWSTR, PWSTR};
use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::Storage::FileSystem::FILE_BASIC_INFO;
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use super::wide;
use crate::fileinfo::FileBasicInfo as BasicInfo;
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

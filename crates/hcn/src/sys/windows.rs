//! The Windows backend: `computenetwork.dll` (the 35 `Hcn*` exports of hcs-hcn-api.md §5.1)
//! and `vmcompute.dll!HNSCall` (through the `hcs` crate), behind [`HcnApi`].
//!
//! The DLL is loaded on first use with `LoadLibraryExW(…, LOAD_LIBRARY_SEARCH_SYSTEM32)` and
//! each export resolved with `GetProcAddress`, so a host without the Containers feature gets
//! "HCN is not available" and an export missing on an older build fails only its call, with
//! `ERROR_PROC_NOT_FOUND` (the reference's `proc.Find()` behaviour).
//!
//! The function-pointer types are the declarations of `windows-sys`
//! (`Win32::System::HostComputeNetwork`): a `const` per export coerces the crate's
//! declaration to the type this module calls through, so a mismatch fails to compile. The
//! consts are never used at run time, so the binary imports nothing from computenetwork.dll.
//! The seven `SdnRoute` exports are not in Microsoft's metadata (nor in `windows-sys`); they
//! are called through the same types as the other kinds' exports, whose shape hcsshim's
//! declarations give them too.
//!
//! Strings HCN returns (results and error records) are freed with `CoTaskMemFree`, as the
//! reference does. A call fails when its HRESULT is negative **or** it returned a non-empty
//! error record (§5.9).

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use windows_sys::core::{GUID, HRESULT, PCWSTR, PWSTR};
use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::System::HostComputeNetwork as hcn_sys;
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use crate::api::{CallError, CallResult, Handle, HcnApi, ObjectKind};
use crate::error::{Error, Result};

/// `HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND)`.
const HR_PROC_NOT_FOUND: HRESULT = 0x8007_007F_u32 as i32;
/// `E_INVALIDARG`: a string with an interior NUL, or an id that is not a GUID.
const HR_INVALID_ARG: HRESULT = 0x8007_0057_u32 as i32;
/// Longest string copied out of HCN memory, in UTF-16 units.
const MAX_WSTR_UNITS: usize = 64 << 20;

type EnumerateFn = unsafe extern "system" fn(PCWSTR, *mut PWSTR, *mut PWSTR) -> HRESULT;
type CreateFn =
    unsafe extern "system" fn(*const GUID, PCWSTR, *mut *mut c_void, *mut PWSTR) -> HRESULT;
type CreateEndpointFn = unsafe extern "system" fn(
    *const c_void,
    *const GUID,
    PCWSTR,
    *mut *mut c_void,
    *mut PWSTR,
) -> HRESULT;
type OpenFn = unsafe extern "system" fn(*const GUID, *mut *mut c_void, *mut PWSTR) -> HRESULT;
type ModifyFn = unsafe extern "system" fn(*const c_void, PCWSTR, *mut PWSTR) -> HRESULT;
type QueryFn = unsafe extern "system" fn(*const c_void, PCWSTR, *mut PWSTR, *mut PWSTR) -> HRESULT;
type DeleteFn = unsafe extern "system" fn(*const GUID, *mut PWSTR) -> HRESULT;
type CloseFn = unsafe extern "system" fn(*const c_void) -> HRESULT;

/// Compile-time check that each export's `windows-sys` declaration has the type this
/// module calls it through (never evaluated at run time).
macro_rules! check_exports {
    ($($ty:ident: $($name:ident),+;)*) => {
        $($(
            const _: $ty = hcn_sys::$name;
        )+)*
    };
}

check_exports! {
    EnumerateFn: HcnEnumerateNetworks, HcnEnumerateEndpoints, HcnEnumerateNamespaces,
        HcnEnumerateLoadBalancers;
    CreateFn: HcnCreateNetwork, HcnCreateNamespace, HcnCreateLoadBalancer;
    CreateEndpointFn: HcnCreateEndpoint;
    OpenFn: HcnOpenNetwork, HcnOpenEndpoint, HcnOpenNamespace, HcnOpenLoadBalancer;
    ModifyFn: HcnModifyNetwork, HcnModifyEndpoint, HcnModifyNamespace, HcnModifyLoadBalancer;
    QueryFn: HcnQueryNetworkProperties, HcnQueryEndpointProperties,
        HcnQueryNamespaceProperties, HcnQueryLoadBalancerProperties;
    DeleteFn: HcnDeleteNetwork, HcnDeleteEndpoint, HcnDeleteNamespace, HcnDeleteLoadBalancer;
    CloseFn: HcnCloseNetwork, HcnCloseEndpoint, HcnCloseNamespace, HcnCloseLoadBalancer;
}

/// The exports of one object kind, each `None` when this Windows build lacks it.
#[derive(Clone, Copy, Default)]
struct KindFns {
    enumerate: Option<EnumerateFn>,
    create: Option<CreateFn>,
    create_endpoint: Option<CreateEndpointFn>,
    open: Option<OpenFn>,
    modify: Option<ModifyFn>,
    query: Option<QueryFn>,
    delete: Option<DeleteFn>,
    close: Option<CloseFn>,
}

/// `GetProcAddress(module, name)` as a function pointer of type `T`.
///
/// # Safety
///
/// `module` is a loaded module and `T` is the export's function-pointer type.
unsafe fn resolve<T: Copy>(module: *mut c_void, name: &str) -> Option<T> {
    let cname: Vec<u8> = name.bytes().chain(std::iter::once(0)).collect();
    // SAFETY: a loaded module and a NUL-terminated ASCII name (caller's contract).
    let p = unsafe { GetProcAddress(module, cname.as_ptr()) }?;
    debug_assert_eq!(std::mem::size_of::<T>(), std::mem::size_of_val(&p));
    // SAFETY: `T` is a function pointer of the export's signature (caller's contract), the
    // same size as the address GetProcAddress returned.
    Some(unsafe { std::mem::transmute_copy::<_, T>(&p) })
}

impl KindFns {
    fn load(module: *mut c_void, kind: ObjectKind) -> Self {
        let w = kind.export_word();
        // SAFETY: each name is resolved to the type its `check_exports!` line verifies.
        unsafe {
            Self {
                enumerate: resolve(module, &format!("HcnEnumerate{}", kind.export_plural())),
                create: (kind != ObjectKind::Endpoint)
                    .then(|| resolve(module, &format!("HcnCreate{w}")))
                    .flatten(),
                create_endpoint: (kind == ObjectKind::Endpoint)
                    .then(|| resolve(module, "HcnCreateEndpoint"))
                    .flatten(),
                open: resolve(module, &format!("HcnOpen{w}")),
                modify: resolve(module, &format!("HcnModify{w}")),
                query: resolve(module, &format!("HcnQuery{w}Properties")),
                delete: resolve(module, &format!("HcnDelete{w}")),
                close: resolve(module, &format!("HcnClose{w}")),
            }
        }
    }
}

/// computenetwork.dll, loaded for the life of the process.
pub struct ComputeNetwork {
    fns: [KindFns; 5],
}

impl std::fmt::Debug for ComputeNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ComputeNetwork")
    }
}

fn wide(s: &str) -> CallResult<Vec<u16>> {
    if s.contains('\0') {
        return Err(CallError {
            hr: HR_INVALID_ARG,
            record: "a string passed to HCN contains a NUL character".into(),
        });
    }
    Ok(s.encode_utf16().chain(std::iter::once(0)).collect())
}

/// Copies and frees a string HCN allocated (null gives an empty string).
///
/// # Safety
///
/// `p` is null or a NUL-terminated string HCN allocated for this call.
unsafe fn take(p: PWSTR) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut n = 0;
    // SAFETY: NUL-terminated (caller's contract); bounded by MAX_WSTR_UNITS.
    while n < MAX_WSTR_UNITS && unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: `n` units are readable (just scanned).
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, n) });
    // SAFETY: allocated by HCN with the COM allocator, freed once.
    unsafe { CoTaskMemFree(p as *const c_void) };
    s
}

/// A GUID from its text (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, braces allowed).
pub fn parse_guid(text: &str) -> Option<GUID> {
    let t = text.trim().trim_start_matches('{').trim_end_matches('}');
    let parts: Vec<&str> = t.split('-').collect();
    if parts.len() != 5
        || [8, 4, 4, 4, 12]
            != [
                parts[0].len(),
                parts[1].len(),
                parts[2].len(),
                parts[3].len(),
                parts[4].len(),
            ]
    {
        return None;
    }
    let tail = u64::from_str_radix(&format!("{}{}", parts[3], parts[4]), 16).ok()?;
    Some(GUID {
        data1: u32::from_str_radix(parts[0], 16).ok()?,
        data2: u16::from_str_radix(parts[1], 16).ok()?,
        data3: u16::from_str_radix(parts[2], 16).ok()?,
        data4: tail.to_be_bytes(),
    })
}

fn guid(text: &str) -> CallResult<GUID> {
    parse_guid(text).ok_or_else(|| CallError {
        hr: HR_INVALID_ARG,
        record: format!("{:?} is not a GUID", crate::schema::echo(text)),
    })
}

fn missing() -> CallError {
    CallError::hr(HR_PROC_NOT_FOUND)
}

/// The outcome of a call: failure on a negative HRESULT or a non-empty error record.
fn outcome(hr: HRESULT, record: String) -> CallResult<()> {
    if hr < 0 || !record.is_empty() {
        Err(CallError { hr, record })
    } else {
        Ok(())
    }
}

impl ComputeNetwork {
    /// The shared binding, loaded on first use.
    pub fn shared() -> Result<Arc<Self>> {
        static CN: OnceLock<std::result::Result<Arc<ComputeNetwork>, String>> = OnceLock::new();
        CN.get_or_init(|| {
            let name: Vec<u16> = "computenetwork.dll\0".encode_utf16().collect();
            // SAFETY: a NUL-terminated UTF-16 name; the module stays loaded for the life of
            // the process (never freed), so resolved addresses stay valid.
            let module = unsafe {
                LoadLibraryExW(
                    name.as_ptr(),
                    std::ptr::null_mut(),
                    LOAD_LIBRARY_SEARCH_SYSTEM32,
                )
            };
            if module.is_null() {
                return Err(
                    "computenetwork.dll could not be loaded (is the Containers feature installed?)"
                        .into(),
                );
            }
            Ok(Arc::new(Self {
                fns: ObjectKind::ALL.map(|k| KindFns::load(module, k)),
            }))
        })
        .clone()
        .map_err(Error::NotAvailable)
    }

    fn fns(&self, kind: ObjectKind) -> &KindFns {
        &self.fns[kind as usize]
    }
}

impl HcnApi for ComputeNetwork {
    fn enumerate(&self, kind: ObjectKind, query: &str) -> CallResult<String> {
        let f = self.fns(kind).enumerate.ok_or_else(missing)?;
        let q = wide(query)?;
        let (mut out, mut rec): (PWSTR, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: a NUL-terminated query and valid out pointers.
        let hr = unsafe { f(q.as_ptr(), &mut out, &mut rec) };
        // SAFETY: null or allocated by HCN for this call.
        let (out, rec) = unsafe { (take(out), take(rec)) };
        outcome(hr, rec).map(|()| out)
    }

    fn create(
        &self,
        kind: ObjectKind,
        id: &str,
        settings: &str,
        network: Option<&Handle>,
    ) -> CallResult<Handle> {
        let g = guid(id)?;
        let s = wide(settings)?;
        let (mut h, mut rec): (*mut c_void, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        let hr = if kind == ObjectKind::Endpoint {
            let f = self.fns(kind).create_endpoint.ok_or_else(missing)?;
            let net = network.ok_or_else(|| CallError {
                hr: HR_INVALID_ARG,
                record: "an endpoint is created on an open network".into(),
            })?;
            // SAFETY: an open network handle, a GUID and a NUL-terminated document that
            // outlive the call; valid out pointers.
            unsafe { f(net.raw as *const c_void, &g, s.as_ptr(), &mut h, &mut rec) }
        } else {
            let f = self.fns(kind).create.ok_or_else(missing)?;
            // SAFETY: as above, without the network.
            unsafe { f(&g, s.as_ptr(), &mut h, &mut rec) }
        };
        // SAFETY: null or allocated by HCN for this call.
        let rec = unsafe { take(rec) };
        let handle = Handle {
            kind,
            id: id.to_string(),
            raw: h as usize,
        };
        if let Err(e) = outcome(hr, rec) {
            if !h.is_null() {
                // A handle returned with a failure is released, not leaked.
                if let Err(c) = self.close(&handle) {
                    tracing::warn!(hr = c.hr, "closing the handle of a failed create");
                }
            }
            return Err(e);
        }
        Ok(handle)
    }

    fn open(&self, kind: ObjectKind, id: &str) -> CallResult<Handle> {
        let f = self.fns(kind).open.ok_or_else(missing)?;
        let g = guid(id)?;
        let (mut h, mut rec): (*mut c_void, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: a GUID that outlives the call; valid out pointers.
        let hr = unsafe { f(&g, &mut h, &mut rec) };
        // SAFETY: null or allocated by HCN for this call.
        outcome(hr, unsafe { take(rec) })?;
        Ok(Handle {
            kind,
            id: id.to_string(),
            raw: h as usize,
        })
    }

    fn modify(&self, handle: &Handle, settings: &str) -> CallResult<()> {
        let f = self.fns(handle.kind).modify.ok_or_else(missing)?;
        let s = wide(settings)?;
        let mut rec: PWSTR = std::ptr::null_mut();
        // SAFETY: an open handle of this kind, a NUL-terminated document, a valid out pointer.
        let hr = unsafe { f(handle.raw as *const c_void, s.as_ptr(), &mut rec) };
        // SAFETY: null or allocated by HCN for this call.
        outcome(hr, unsafe { take(rec) })
    }

    fn query(&self, handle: &Handle, query: &str) -> CallResult<String> {
        let f = self.fns(handle.kind).query.ok_or_else(missing)?;
        let q = wide(query)?;
        let (mut out, mut rec): (PWSTR, PWSTR) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: an open handle of this kind, a NUL-terminated query, valid out pointers.
        let hr = unsafe { f(handle.raw as *const c_void, q.as_ptr(), &mut out, &mut rec) };
        // SAFETY: null or allocated by HCN for this call.
        let (out, rec) = unsafe { (take(out), take(rec)) };
        outcome(hr, rec).map(|()| out)
    }

    fn delete(&self, kind: ObjectKind, id: &str) -> CallResult<()> {
        let f = self.fns(kind).delete.ok_or_else(missing)?;
        let g = guid(id)?;
        let mut rec: PWSTR = std::ptr::null_mut();
        // SAFETY: a GUID that outlives the call; a valid out pointer.
        let hr = unsafe { f(&g, &mut rec) };
        // SAFETY: null or allocated by HCN for this call.
        outcome(hr, unsafe { take(rec) })
    }

    fn close(&self, handle: &Handle) -> CallResult<()> {
        let f = self.fns(handle.kind).close.ok_or_else(missing)?;
        // SAFETY: a handle this backend returned, closed once (the client's RAII guard).
        let hr = unsafe { f(handle.raw as *const c_void) };
        outcome(hr, String::new())
    }

    fn hns_call(&self, method: &str, path: &str, request: &str) -> CallResult<String> {
        let api = hcs::sys::default_vmcompute().map_err(|e| CallError {
            hr: HR_PROC_NOT_FOUND,
            record: e.to_string(),
        })?;
        let out = api.hns_call(method, path, request);
        if out.hr < 0 {
            return Err(CallError {
                hr: out.hr,
                record: out.result.unwrap_or_default(),
            });
        }
        Ok(out.output.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_parse_as_windows_lays_them_out() {
        let g = parse_guid("{5f3c1e2d-0a1b-4c2d-8e3f-0123456789ab}").unwrap();
        assert_eq!(g.data1, 0x5f3c_1e2d);
        assert_eq!(g.data2, 0x0a1b);
        assert_eq!(g.data3, 0x4c2d);
        assert_eq!(g.data4, [0x8e, 0x3f, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab]);
        assert!(parse_guid("5f3c1e2d-0a1b-4c2d-8e3f").is_none());
        assert!(parse_guid("zf3c1e2d-0a1b-4c2d-8e3f-0123456789ab").is_none());
        assert!(guid("x").is_err());
        assert!(wide("a\0b").is_err());
        assert_eq!(outcome(0, "{}".into()).unwrap_err().hr, 0);
        assert!(outcome(0, String::new()).is_ok());
    }
}

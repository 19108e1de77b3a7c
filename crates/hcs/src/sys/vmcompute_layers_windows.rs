//! vmcompute.dll's graph-driver layer exports (hcs-hcn-api.md §6.1): the calls of
//! [`LayerCall`] and the two structs they take, `DRIVER_INFO` and `WC_LAYER_DESCRIPTOR`.
//! Hand-declared for the reason the parent module gives: the Win32 metadata has no
//! vmcompute.dll.

use windows_sys::core::{GUID, HRESULT, PCWSTR, PWSTR};

use super::{take, VmFns};
use crate::sys::{wide, HR_PROC_NOT_FOUND};
use crate::vmcompute::{LayerCall, LayerDescriptor, LayerGuid, LayerOutput};

type Result<T> = std::result::Result<T, i32>;

/// `DRIVER_INFO` (not in the metadata). hcsshim declares `Flavour` as a Go `int` (8 bytes
/// on 64-bit Windows); the C declaration is a 4-byte enum followed by padding, so a
/// pointer-sized integer gives the same layout (size 16, `HomeDir` at 8) with zeroed
/// padding.
#[repr(C)]
pub(in crate::sys) struct DriverInfo {
    pub(in crate::sys) flavour: isize,
    pub(in crate::sys) home_dir: PCWSTR,
}

/// `WC_LAYER_DESCRIPTOR` (not in the metadata): `{ GUID LayerId; DWORD Flags; PCWSTR Path }`.
#[repr(C)]
pub(in crate::sys) struct WcLayerDescriptor {
    pub(in crate::sys) layer_id: GUID,
    pub(in crate::sys) flags: u32,
    pub(in crate::sys) path: PCWSTR,
}

/// `const DRIVER_INFO*`.
pub(super) type Info = *const DriverInfo;
/// `const WC_LAYER_DESCRIPTOR*`.
pub(super) type Descs = *const WcLayerDescriptor;

fn descriptors(parents: &[LayerDescriptor]) -> Result<(Vec<Vec<u16>>, Vec<WcLayerDescriptor>)> {
    let paths = parents
        .iter()
        .map(|d| wide(&d.path))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let descs = parents
        .iter()
        .zip(&paths)
        .map(|(d, p)| WcLayerDescriptor {
            layer_id: GUID {
                data1: d.layer_id.data1,
                data2: d.layer_id.data2,
                data3: d.layer_id.data3,
                data4: d.layer_id.data4,
            },
            flags: d.flags,
            path: p.as_ptr(),
        })
        .collect();
    Ok((paths, descs))
}

fn check(hr: HRESULT) -> Result<LayerOutput> {
    if hr < 0 {
        Err(hr)
    } else {
        Ok(LayerOutput::None)
    }
}

/// Runs one graph-driver export with hcsshim's `DRIVER_INFO` (`{Flavour: 1, HomeDir: ""}`).
pub(super) fn layer_call(fns: &VmFns, call: LayerCall<'_>) -> Result<LayerOutput> {
    let home = [0u16];
    // hcsshim: {Flavour: 1 (filter driver), HomeDir: ""}.
    let info = DriverInfo {
        flavour: 1,
        home_dir: home.as_ptr(),
    };
    let info: Info = &info;
    let f = fns;
    match call {
        LayerCall::Activate { id }
        | LayerCall::Deactivate { id }
        | LayerCall::Destroy { id }
        | LayerCall::Unprepare { id } => {
            let export = match call {
                LayerCall::Activate { .. } => f.activate,
                LayerCall::Deactivate { .. } => f.deactivate,
                LayerCall::Destroy { .. } => f.destroy,
                _ => f.unprepare,
            };
            let export = export.ok_or(HR_PROC_NOT_FOUND)?;
            let id = wide(id)?;
            // SAFETY: `info` and `id` are valid for the call.
            check(unsafe { export(info, id.as_ptr()) })
        }
        LayerCall::Create { id, parent } => {
            let export = f.create_layer.ok_or(HR_PROC_NOT_FOUND)?;
            let (id, parent) = (wide(id)?, wide(parent)?);
            // SAFETY: all pointers are valid for the call.
            check(unsafe { export(info, id.as_ptr(), parent.as_ptr()) })
        }
        LayerCall::CreateSandbox { id, parents } => {
            let export = f.create_sandbox.ok_or(HR_PROC_NOT_FOUND)?;
            let id = wide(id)?;
            let (_paths, descs) = descriptors(parents)?;
            // SAFETY: `descs` (and the paths they point to, kept in `_paths`) outlive the
            // call; the parent argument is NULL as hcsshim passes it.
            check(unsafe {
                export(
                    info,
                    id.as_ptr(),
                    std::ptr::null(),
                    descs.as_ptr(),
                    descs.len(),
                )
            })
        }
        LayerCall::ExpandSandboxSize { id, size } => {
            let export = f.expand_sandbox.ok_or(HR_PROC_NOT_FOUND)?;
            let id = wide(id)?;
            // SAFETY: pointers valid for the call.
            check(unsafe { export(info, id.as_ptr(), size) })
        }
        LayerCall::Export { id, path, parents } | LayerCall::Import { id, path, parents } => {
            let export = match call {
                LayerCall::Export { .. } => f.export_layer,
                _ => f.import_layer,
            }
            .ok_or(HR_PROC_NOT_FOUND)?;
            let (id, path) = (wide(id)?, wide(path)?);
            let (_paths, descs) = descriptors(parents)?;
            // SAFETY: all strings and descriptors outlive the call.
            check(unsafe {
                export(
                    info,
                    id.as_ptr(),
                    path.as_ptr(),
                    descs.as_ptr(),
                    descs.len(),
                )
            })
        }
        LayerCall::Prepare { id, parents } => {
            let export = f.prepare.ok_or(HR_PROC_NOT_FOUND)?;
            let id = wide(id)?;
            let (_paths, descs) = descriptors(parents)?;
            // SAFETY: all strings and descriptors outlive the call.
            check(unsafe { export(info, id.as_ptr(), descs.as_ptr(), descs.len()) })
        }
        LayerCall::GetMountPath { id } => {
            let export = f.mount_path.ok_or(HR_PROC_NOT_FOUND)?;
            let id = wide(id)?;
            let mut len: usize = 0;
            // SAFETY: first call: a null buffer asks for the length.
            let hr = unsafe { export(info, id.as_ptr(), &mut len, std::ptr::null_mut()) };
            if hr < 0 {
                return Err(hr);
            }
            if len == 0 {
                return Ok(LayerOutput::Text(String::new()));
            }
            let mut buf = vec![0u16; len];
            // SAFETY: `buf` holds `len` units, the length vmcompute asked for.
            let hr = unsafe { export(info, id.as_ptr(), &mut len, buf.as_mut_ptr()) };
            if hr < 0 {
                return Err(hr);
            }
            let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
            Ok(LayerOutput::Text(String::from_utf16_lossy(&buf[..end])))
        }
        LayerCall::GetBaseImages => {
            let export = f.base_images.ok_or(HR_PROC_NOT_FOUND)?;
            let mut out: PWSTR = std::ptr::null_mut();
            // SAFETY: the out pointer is valid.
            let hr = unsafe { export(&mut out) };
            // SAFETY: null or allocated by vmcompute for this call.
            let text = unsafe { take(out) };
            if hr < 0 {
                return Err(hr);
            }
            Ok(LayerOutput::Text(text.unwrap_or_default()))
        }
        LayerCall::Exists { id } => {
            let export = f.exists.ok_or(HR_PROC_NOT_FOUND)?;
            let id = wide(id)?;
            let mut exists: u32 = 0;
            // SAFETY: pointers valid for the call.
            let hr = unsafe { export(info, id.as_ptr(), &mut exists) };
            if hr < 0 {
                return Err(hr);
            }
            Ok(LayerOutput::Exists(exists != 0))
        }
        LayerCall::NameToGuid { name } => {
            let export = f.name_to_guid.ok_or(HR_PROC_NOT_FOUND)?;
            let name = wide(name)?;
            let mut g = GUID::default();
            // SAFETY: pointers valid for the call.
            let hr = unsafe { export(name.as_ptr(), &mut g) };
            if hr < 0 {
                return Err(hr);
            }
            Ok(LayerOutput::Guid(LayerGuid {
                data1: g.data1,
                data2: g.data2,
                data3: g.data3,
                data4: g.data4,
            }))
        }
        LayerCall::ProcessBaseImage { path } | LayerCall::ProcessUtilityImage { path } => {
            let export = match call {
                LayerCall::ProcessBaseImage { .. } => f.process_base,
                _ => f.process_utility,
            }
            .ok_or(HR_PROC_NOT_FOUND)?;
            let path = wide(path)?;
            // SAFETY: `path` is valid for the call.
            check(unsafe { export(path.as_ptr()) })
        }
        LayerCall::GrantVmAccess { vm_id, path } => {
            let export = f.grant_vm_access.ok_or(HR_PROC_NOT_FOUND)?;
            let (vm, path) = (wide(vm_id)?, wide(path)?);
            // SAFETY: both strings are valid for the call.
            check(unsafe { export(vm.as_ptr(), path.as_ptr()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_point_at_their_paths() {
        let parents = [LayerDescriptor {
            layer_id: LayerGuid {
                data1: 7,
                ..Default::default()
            },
            flags: 0,
            path: "C:\\l".into(),
        }];
        let (paths, descs) = descriptors(&parents).unwrap();
        assert_eq!(descs[0].path, paths[0].as_ptr());
        assert_eq!(descs[0].layer_id.data1, 7);
        let bad = [LayerDescriptor {
            layer_id: LayerGuid::default(),
            flags: 0,
            path: "a\0b".into(),
        }];
        assert!(descriptors(&bad).is_err());
    }
}

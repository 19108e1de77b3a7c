//! Base-layer steps and scratch growth (hcsshim's `ConvertToBaseLayer`, `ProcessBaseLayer`,
//! `ProcessUtilityVMImage` and `ExpandScratchSize`).
//!
//! `ConvertToBaseLayer` turns a folder holding `Files\` (and optionally `UtilityVM\Files\`)
//! into a base layer: the registry hives must exist (empty ones are created with offreg,
//! Windows only), a utility VM must have its boot store, then vmcompute prepares the layer.
//! `ExpandScratchSize` grows the scratch VHD through vmcompute and then the NTFS volume on
//! it; only the decision how far to grow is OS-neutral ([`extend_target_sectors`]).

use std::path::Path;

use hcs::vmcompute::{LayerCall, LayerOutput, VmcomputeApi};

use crate::error::{Error, Result};
use crate::layer::base::ensure_not_reparse_point;
use crate::layer::Layers;
use crate::layout::{
    LayerPath, BOOT_DIR_RELATIVE_PATH, HIVE_NAMES, REG_FILES_PATH, UTILITY_VM_FILES_PATH,
    UTILITY_VM_PATH,
};

/// `ensureBaseLayer`: makes sure the registry hives exist (creating empty ones) and, when
/// the layer has a utility VM, that its boot store does. Returns whether it has one.
pub fn ensure_base_layer(layers: &Layers, root: &Path) -> Result<bool> {
    let fs = layers.fs.as_ref();
    let config = LayerPath::parse(REG_FILES_PATH)?.under(root);
    fs.create_dir_all(&config)?;
    for hive in HIVE_NAMES {
        let p = config.join(hive);
        match fs.stat(&p)? {
            None => crate::sys::create_empty_hive(&p)?,
            Some(st) if st.is_dir() || st.is_reparse_point() => {
                return Err(Error::InvalidLayer(format!(
                    "{} is not a regular file",
                    p.display()
                )))
            }
            Some(_) => {}
        }
    }
    let uvm_files = LayerPath::parse(UTILITY_VM_FILES_PATH)?.under(root);
    match fs.stat(&uvm_files)? {
        None => return Ok(false),
        Some(st) if !st.is_dir() || st.is_reparse_point() => {
            return Err(Error::InvalidLayer(format!(
                "{} is not a directory",
                uvm_files.display()
            )))
        }
        Some(_) => {}
    }
    // Only its presence is checked; ProcessUtilityImage reports a store it cannot read.
    let bcd_rel = format!(r"{}\BCD", BOOT_DIR_RELATIVE_PATH.trim_start_matches('\\'));
    let bcd = LayerPath::parse(&bcd_rel)?.under(&uvm_files);
    match fs.stat(&bcd)? {
        Some(st) if !st.is_dir() && !st.is_reparse_point() => Ok(true),
        Some(_) => Err(Error::InvalidLayer(format!(
            "{} is not a regular file",
            bcd.display()
        ))),
        None => Err(Error::InvalidLayer(format!(
            "UtilityVM must contain '{bcd_rel}'"
        ))),
    }
}

/// `ConvertToBaseLayer(path)`.
pub fn convert_to_base_layer(layers: &Layers, path: &Path) -> Result<()> {
    let has_uvm = ensure_base_layer(layers, path)?;
    layers.store.process_base_layer(path)?;
    if has_uvm {
        let uvm = path.join(UTILITY_VM_PATH);
        ensure_not_reparse_point(layers.fs.as_ref(), &uvm)?;
        layers.store.process_utility_vm_image(&uvm)?;
    }
    Ok(())
}

/// `ProcessBaseLayer(path)` on this host.
pub fn process_base_layer(path: &Path) -> Result<()> {
    Layers::host()?.store.process_base_layer(path)
}

/// `ProcessUtilityVMImage(path)` on this host (`path` is the layer's `UtilityVM` folder).
pub fn process_utility_vm_image(path: &Path) -> Result<()> {
    Layers::host()?.store.process_utility_vm_image(path)
}

/// NTFS clusters, as the reference assumes them.
pub const CLUSTER_SIZE: u64 = 4096;
/// Disk sectors.
pub const SECTOR_SIZE: u64 = 512;

/// How far to extend a volume (in sectors, for `FSCTL_EXTEND_VOLUME`) whose partition is
/// `partition_bytes` long and whose file system spans `volume_bytes`; `None` when there is
/// no room to grow (NTFS keeps one cluster, and extending by nothing fails).
pub fn extend_target_sectors(partition_bytes: u64, volume_bytes: u64) -> Option<u64> {
    let target_clusters = partition_bytes / CLUSTER_SIZE;
    let volume_clusters = volume_bytes / CLUSTER_SIZE;
    (volume_clusters + 1 < target_clusters).then(|| target_clusters * (CLUSTER_SIZE / SECTOR_SIZE))
}

/// `ExpandScratchSize(path, size)` on this host: `ExpandSandboxSize`, then the volume.
pub fn expand_scratch_size(path: &Path, size: u64) -> Result<()> {
    expand_scratch_size_with(hcs::sys::default_vmcompute()?.as_ref(), path, size)
}

/// [`expand_scratch_size`] against any vmcompute binding.
pub fn expand_scratch_size_with(api: &dyn VmcomputeApi, path: &Path, size: u64) -> Result<()> {
    const OP: &str = "hcsshim::ExpandScratchSize";
    let id = path.to_str().ok_or_else(|| Error::InvalidPath {
        path: path.display().to_string(),
        reason: "not valid Unicode",
    })?;
    let hcs_err = |hr| -> Error { hcs::operation::call_error(hr, None).with_op(OP).into() };
    api.layer_call(LayerCall::ExpandSandboxSize { id, size })
        .map_err(hcs_err)?;
    // Always grow the volume too: PrepareLayer would do it for legacy layers, but nothing
    // does it for the others.
    let mount = match api
        .layer_call(LayerCall::GetMountPath { id })
        .map_err(hcs_err)?
    {
        LayerOutput::Text(s) => s,
        LayerOutput::None => String::new(),
        other => {
            return Err(Error::Hcs(hcs::Error::op(
                OP,
                hcs::ErrorKind::InvalidResponse(format!("unexpected output {other:?}")),
            )))
        }
    };
    crate::sys::grow_scratch_volume(&path.join("sandbox.vhdx"), &mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_grow_only_with_room() {
        let gib = 1u64 << 30;
        assert_eq!(
            extend_target_sectors(20 * gib, 10 * gib),
            Some(20 * gib / 512)
        );
        // One spare cluster is what NTFS keeps: nothing to do.
        assert_eq!(extend_target_sectors(20 * gib, 20 * gib - 4096), None);
        assert_eq!(
            extend_target_sectors(20 * gib, 20 * gib - 8192),
            Some(20 * gib / 512)
        );
        assert_eq!(extend_target_sectors(10 * gib, 20 * gib), None);
        // Partial clusters do not count.
        assert_eq!(extend_target_sectors(4096 * 3 + 100, 4096), Some(24));
    }

    #[cfg(unix)]
    #[test]
    fn base_layers_need_hives_and_a_boot_store() {
        use crate::testutil::*;
        let d = tempfile::tempdir().unwrap();
        let fake = hcs::fake_vmcompute::FakeVmcompute::new();
        let layers = Layers {
            fs: crate::fs::host(),
            store: std::sync::Arc::new(crate::layer::VmcomputeStore::new(fake.clone(), None)),
        };
        let root = d.path().join("l");
        let config = root.join("Files/Windows/System32/config");
        std::fs::create_dir_all(&config).unwrap();
        // Creating a missing hive needs offreg.dll.
        let err = convert_to_base_layer(&layers, &root).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        for h in HIVE_NAMES {
            std::fs::write(config.join(h), b"").unwrap();
        }
        convert_to_base_layer(&layers, &root).unwrap();
        assert_eq!(fake.calls_of("ProcessBaseImage").len(), 1);
        assert!(fake.calls_of("ProcessUtilityImage").is_empty());

        let boot = root.join("UtilityVM/Files/EFI/Microsoft/Boot");
        std::fs::create_dir_all(&boot).unwrap();
        let err = convert_to_base_layer(&layers, &root).unwrap_err();
        assert!(err.to_string().contains(r"EFI\Microsoft\Boot\BCD"), "{err}");
        std::fs::write(boot.join("BCD"), b"bcd").unwrap();
        convert_to_base_layer(&layers, &root).unwrap();
        assert_eq!(
            fake.calls_of("ProcessUtilityImage")[0].arg,
            root.join("UtilityVM").to_str().unwrap()
        );
        // A hive that is a directory is refused.
        std::fs::remove_file(config.join("SAM")).unwrap();
        std::fs::create_dir(config.join("SAM")).unwrap();
        assert!(convert_to_base_layer(&layers, &root).is_err());
        // Without vmcompute, a folder cannot be prepared.
        std::fs::remove_dir(config.join("SAM")).unwrap();
        std::fs::write(config.join("SAM"), b"").unwrap();
        let err = convert_to_base_layer(&folder_layers(), &root).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }

    #[test]
    fn expanding_calls_vmcompute_then_grows_the_volume() {
        let fake = hcs::fake_vmcompute::FakeVmcompute::new();
        let path = Path::new(r"C:\layers\scratch");
        let r = expand_scratch_size_with(fake.as_ref(), path, 40 << 30);
        assert_eq!(
            fake.calls_of("ExpandSandboxSize")[0].arg,
            format!("{} {}", path.display(), 40u64 << 30)
        );
        // The volume step is Win32 (virtdisk and volume ioctls): elsewhere it says so.
        #[cfg(not(windows))]
        assert!(matches!(r.unwrap_err(), Error::Unsupported(_)));
        #[cfg(windows)]
        assert!(r.is_err(), "no such VHD");
        fake.fail_next("ExpandSandboxSize", 0x8007_0005_u32 as i32);
        let err = expand_scratch_size_with(fake.as_ref(), path, 1).unwrap_err();
        assert!(err.to_string().contains("ExpandScratchSize"), "{err}");
    }
}

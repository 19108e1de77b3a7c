//! The root package's layer functions (`hcsshim.ActivateLayer(info, id)` and the rest,
//! hcs-hcn-api.md §6.1): thin wrappers over [`crate::wclayer`] that take the root
//! `DriverInfo` and a layer id, and work on `HomeDir\id` (the flavour is ignored, as in the
//! reference). **Windows only**: elsewhere every function fails with "HCS is not available"
//! (wrapped in [`RootError::Hcs`]).

use super::{Result, RootError};
use crate::vmcompute::LayerGuid;
use crate::wclayer::Wclayer;

/// The root `DriverInfo`: only `home_dir` is used, to build `home_dir\id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverInfo {
    /// Graph driver flavour (0 diff, 1 filter); ignored.
    pub flavour: i32,
    /// The folder the layer ids live in.
    pub home_dir: String,
}

/// `filepath.Join(HomeDir, id)` for the usual case (an absolute home and a plain id).
pub fn layer_path(info: &DriverInfo, id: &str) -> String {
    let id = id.trim_start_matches(['\\', '/']);
    if info.home_dir.is_empty() {
        return id.to_string();
    }
    if id.is_empty() {
        return info.home_dir.clone();
    }
    format!("{}\\{id}", info.home_dir.trim_end_matches(['\\', '/']))
}

fn host() -> Result<Wclayer> {
    Wclayer::host().map_err(RootError::Hcs)
}

fn hcs<T>(r: crate::Result<T>) -> Result<T> {
    r.map_err(RootError::Hcs)
}

/// `ActivateLayer(info, id)`.
pub async fn activate_layer(info: &DriverInfo, id: &str) -> Result<()> {
    hcs(host()?.activate_layer(&layer_path(info, id)).await)
}

/// `DeactivateLayer(info, id)`.
pub async fn deactivate_layer(info: &DriverInfo, id: &str) -> Result<()> {
    hcs(host()?.deactivate_layer(&layer_path(info, id)).await)
}

/// `CreateLayer(info, id, parent)`.
pub async fn create_layer(info: &DriverInfo, id: &str, parent: &str) -> Result<()> {
    hcs(host()?.create_layer(&layer_path(info, id), parent).await)
}

/// `CreateScratchLayer(info, layerId, parentId, parentLayerPaths)` (`parentId` is unused,
/// as in the reference). `CreateSandboxLayer` is its deprecated alias.
pub async fn create_scratch_layer(
    info: &DriverInfo,
    layer_id: &str,
    _parent_id: &str,
    parent_layer_paths: &[String],
) -> Result<()> {
    hcs(host()?
        .create_scratch_layer(&layer_path(info, layer_id), parent_layer_paths)
        .await)
}

/// `DestroyLayer(info, id)`.
pub async fn destroy_layer(info: &DriverInfo, id: &str) -> Result<()> {
    hcs(host()?.destroy_layer(&layer_path(info, id)).await)
}

/// The `ExpandSandboxSize` export for `HomeDir\id` (without the volume growth of the
/// reference's `ExpandScratchSize`; see [`Wclayer::expand_sandbox_size`]).
pub async fn expand_sandbox_size(info: &DriverInfo, id: &str, size: u64) -> Result<()> {
    hcs(host()?
        .expand_sandbox_size(&layer_path(info, id), size)
        .await)
}

/// `ExportLayer(info, layerId, exportFolderPath, parentLayerPaths)`.
pub async fn export_layer(
    info: &DriverInfo,
    layer_id: &str,
    export_folder: &str,
    parent_layer_paths: &[String],
) -> Result<()> {
    hcs(host()?
        .export_layer(
            &layer_path(info, layer_id),
            export_folder,
            parent_layer_paths,
        )
        .await)
}

/// `ImportLayer(info, layerId, importFolderPath, parentLayerPaths)`.
pub async fn import_layer(
    info: &DriverInfo,
    layer_id: &str,
    import_folder: &str,
    parent_layer_paths: &[String],
) -> Result<()> {
    hcs(host()?
        .import_layer(
            &layer_path(info, layer_id),
            import_folder,
            parent_layer_paths,
        )
        .await)
}

/// `GetLayerMountPath(info, id)`.
pub async fn get_layer_mount_path(info: &DriverInfo, id: &str) -> Result<String> {
    hcs(host()?.get_layer_mount_path(&layer_path(info, id)).await)
}

/// `GetSharedBaseImages()`.
pub async fn get_shared_base_images() -> Result<String> {
    hcs(host()?.get_shared_base_images().await)
}

/// `LayerExists(info, id)`.
pub async fn layer_exists(info: &DriverInfo, id: &str) -> Result<bool> {
    hcs(host()?.layer_exists(&layer_path(info, id)).await)
}

/// `NameToGuid(name)`: the GUID (see [`LayerGuid::to_bytes`] for the root's byte form).
pub async fn name_to_guid(name: &str) -> Result<LayerGuid> {
    hcs(host()?.name_to_guid(name).await)
}

/// `PrepareLayer(info, layerId, parentLayerPaths)`.
pub async fn prepare_layer(
    info: &DriverInfo,
    layer_id: &str,
    parent_layer_paths: &[String],
) -> Result<()> {
    hcs(host()?
        .prepare_layer(&layer_path(info, layer_id), parent_layer_paths)
        .await)
}

/// `UnprepareLayer(info, layerId)`.
pub async fn unprepare_layer(info: &DriverInfo, layer_id: &str) -> Result<()> {
    hcs(host()?.unprepare_layer(&layer_path(info, layer_id)).await)
}

/// `ProcessBaseLayer(path)`.
pub async fn process_base_layer(path: &str) -> Result<()> {
    hcs(host()?.process_base_layer(path).await)
}

/// `ProcessUtilityVMImage(path)`.
pub async fn process_utility_vm_image(path: &str) -> Result<()> {
    hcs(host()?.process_utility_vm_image(path).await)
}

/// `GrantVmAccess(vmid, filepath)`.
pub async fn grant_vm_access(vm_id: &str, file_path: &str) -> Result<()> {
    hcs(host()?.grant_vm_access(vm_id, file_path).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_home_and_id() {
        let info = DriverInfo {
            flavour: 1,
            home_dir: r"C:\ProgramData\docker\windowsfilter".into(),
        };
        assert_eq!(
            layer_path(&info, "abc"),
            r"C:\ProgramData\docker\windowsfilter\abc"
        );
        let trailing = DriverInfo {
            home_dir: r"C:\h\".into(),
            ..Default::default()
        };
        assert_eq!(layer_path(&trailing, r"\abc"), r"C:\h\abc");
        // hcsshim passes the full path as the id with an empty home.
        assert_eq!(layer_path(&DriverInfo::default(), r"C:\l\x"), r"C:\l\x");
        assert_eq!(layer_path(&trailing, ""), r"C:\h\");
    }

    #[cfg(not(windows))]
    #[tokio::test]
    async fn not_available_off_windows() {
        let info = DriverInfo::default();
        for err in [
            activate_layer(&info, "x").await.unwrap_err(),
            prepare_layer(&info, "x", &[]).await.unwrap_err(),
            get_shared_base_images().await.unwrap_err(),
        ] {
            assert!(
                matches!(&err, RootError::Hcs(e) if matches!(e.kind(), crate::ErrorKind::NotAvailable(_)))
            );
        }
    }
}

//! The OCI bundle as runhcs reads it: `config.json`, the rootfs directory (the local
//! sandbox), and the layer folders of `windows.layerFolders` (the HCS sandbox).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Reads and parses a bundle's config.json with a clear error.
pub fn read_spec(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let spec: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{} is not valid JSON: {e}", path.display())))?;
    let args_ok = spec
        .pointer("/process/args")
        .and_then(|a| a.as_array())
        .is_some_and(|a| !a.is_empty());
    if !args_ok {
        return Err(Error::Invalid(format!(
            "{}: process.args must be a non-empty list",
            path.display()
        )));
    }
    Ok(spec)
}

/// The rootfs directory named by `root.path` (relative to the bundle).
pub fn rootfs_of(spec: &serde_json::Value, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .pointer("/root/path")
        .and_then(|p| p.as_str())
        .ok_or_else(|| Error::Invalid("the bundle's config.json has no root.path".into()))?;
    let path = bundle.join(root);
    if !path.is_dir() {
        return Err(Error::Invalid(format!(
            "rootfs {} does not exist or is not a directory",
            path.display()
        )));
    }
    Ok(path)
}

/// The layers of an LCOW container from `windows.layerFolders`, as the HCS sandbox takes
/// them: the read-only layer folders base first, then the scratch folder. The OCI runtime
/// spec orders the list from the topmost layer to the base layer with the scratch last;
/// each folder holds `layer.vhd` (the scratch `sandbox.vhdx`). Relative folders are taken
/// relative to the bundle.
pub fn layer_folders(spec: &serde_json::Value, bundle: &Path) -> Result<Vec<PathBuf>> {
    let list = spec
        .pointer("/windows/layerFolders")
        .and_then(|l| l.as_array())
        .ok_or_else(|| {
            Error::Invalid("the bundle's config.json has no windows.layerFolders".into())
        })?;
    let folders = list
        .iter()
        .map(|f| {
            f.as_str()
                .filter(|s| !s.is_empty())
                .map(|s| bundle.join(s))
                .ok_or_else(|| {
                    Error::Invalid("windows.layerFolders must be a list of non-empty paths".into())
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let Some((scratch, layers)) = folders.split_last() else {
        return Err(Error::Invalid("windows.layerFolders is empty".into()));
    };
    if layers.is_empty() {
        return Err(Error::Invalid(
            "windows.layerFolders needs at least one layer before the scratch".into(),
        ));
    }
    let mut out: Vec<PathBuf> = layers.iter().rev().cloned().collect();
    out.push(scratch.clone());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_folders_come_base_first_with_the_scratch_last() {
        let spec = serde_json::json!({
            "windows": {"layerFolders": ["/l/top", "/l/mid", "/l/base", "/s/scratch"]}
        });
        let got = layer_folders(&spec, Path::new("/bundle")).unwrap();
        let want: Vec<PathBuf> = ["/l/base", "/l/mid", "/l/top", "/s/scratch"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
        let rel = serde_json::json!({"windows": {"layerFolders": ["l0", "s"]}});
        assert_eq!(
            layer_folders(&rel, Path::new("/b")).unwrap(),
            [PathBuf::from("/b/l0"), PathBuf::from("/b/s")]
        );
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"windows": {"layerFolders": []}}),
            serde_json::json!({"windows": {"layerFolders": ["/only-scratch"]}}),
            serde_json::json!({"windows": {"layerFolders": ["/l", 7]}}),
            serde_json::json!({"windows": {"layerFolders": ["", "/s"]}}),
        ] {
            assert!(layer_folders(&bad, Path::new("/b")).is_err(), "{bad}");
        }
    }

    #[test]
    fn specs_need_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, r#"{"process":{"args":["sh"]}}"#).unwrap();
        assert!(read_spec(&p).is_ok());
        std::fs::write(&p, r#"{"process":{"args":[]}}"#).unwrap();
        assert!(read_spec(&p).is_err());
        std::fs::write(&p, "{").unwrap();
        assert!(read_spec(&p).is_err());
    }
}

//! The layers of a process-isolated Windows container, as containerd hands them over
//! (`hcsshim:internal/layers/wcow_parse.go` `ParseWCOWLayers`, `helpers.go`).
//!
//! containerd's Windows snapshotter describes the container's filesystem either as one
//! rootfs mount (`windows-layer`: source = the scratch folder, option
//! `parentLayerPaths=<JSON array>` = the read-only layers, topmost first), or, for old
//! clients and `ctr run --rootfs`-less bundles, as `windows.layerFolders` in the spec
//! (read-only layers topmost first, the scratch folder last). Exactly one of the two must
//! be given. The paths are Windows paths: they are checked here as text, so that the
//! parsing is the same on every host.

use crate::error::{Error, Result};
use containerd_shim_protos::types::mount::Mount;

/// The legacy (WCIFS) layer mount type of containerd's Windows snapshotter.
pub const LEGACY_MOUNT_TYPE: &str = "windows-layer";
/// The CimFS layer mount type (process isolation with forked CIMs).
pub const CIMFS_MOUNT_TYPE: &str = "CimFS";
/// The block-CIM layer mount type.
pub const BLOCK_CIM_MOUNT_TYPE: &str = "BlockCIM";
/// The mount option carrying the JSON array of parent layer folders.
const PARENT_LAYER_PATHS: &str = "parentLayerPaths=";

/// A Windows container's layer folders (Windows paths, kept as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WcowLayers {
    /// Read-only layer folders, topmost first (the base layer last).
    pub parents: Vec<String>,
    /// The scratch (writable) layer folder, where `sandbox.vhdx` lives.
    pub scratch: String,
}

/// From containerd's rootfs mounts (one `windows-layer` mount: source = scratch, option
/// `parentLayerPaths=<JSON array>`), else from `spec.windows.layerFolders` (last entry =
/// scratch).
///
/// The reference's checks, in its order: both or neither given → FailedPrecondition; more
/// than one mount, or a mount with a target → FailedPrecondition; fewer than two layer
/// folders → FailedPrecondition; an unknown mount type → InvalidArgument "invalid windows
/// mount type: '`<type>`'"; an option that is not a JSON string array → InvalidArgument. The
/// CimFS and block-CIM forms the reference also accepts need CimFS mounting, which this
/// shim does not do: Unimplemented. Beyond the reference (which finds out only when
/// vmcompute fails), a `windows-layer` mount without parent layers and any path that is
/// not an absolute Windows path or that contains a `..` component are InvalidArgument.
pub fn from_mounts(mounts: &[Mount], spec: &serde_json::Value) -> Result<WcowLayers> {
    let folders = layer_folders(spec)?;
    match (mounts, folders.is_empty()) {
        ([_, ..], false) => Err(Error::FailedPrecondition(
            "cannot pass both a rootfs mount and Windows.LayerFolders".into(),
        )),
        ([], true) => Err(Error::FailedPrecondition(
            "must pass either a rootfs mount or Windows.LayerFolders".into(),
        )),
        ([_, _, ..], _) => Err(Error::FailedPrecondition(format!(
            "expected a single rootfs mount, got {}",
            mounts.len()
        ))),
        ([m], _) => from_mount(m),
        ([], false) => {
            if folders.len() < 2 {
                return Err(Error::FailedPrecondition(
                    "must pass at least two Windows.LayerFolders".into(),
                ));
            }
            let (scratch, parents) = folders.split_last().ok_or_else(|| {
                Error::FailedPrecondition("must pass at least two Windows.LayerFolders".into())
            })?;
            checked("Windows.LayerFolders", parents, scratch)
        }
    }
}

/// `spec.windows.layerFolders` as strings (absent or `null` → empty).
fn layer_folders(spec: &serde_json::Value) -> Result<Vec<String>> {
    let Some(v) = spec
        .get("windows")
        .and_then(|w| w.get("layerFolders"))
        .filter(|v| !v.is_null())
    else {
        return Ok(Vec::new());
    };
    serde_json::from_value(v.clone()).map_err(|e| {
        Error::InvalidArgument(format!(
            "spec windows.layerFolders is not an array of strings: {e}"
        ))
    })
}

fn from_mount(m: &Mount) -> Result<WcowLayers> {
    // The reference's message says the opposite of its condition; this one says what is
    // wrong.
    if !m.target.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "rootfs mount must not have a target path (got {:?})",
            m.target
        )));
    }
    match m.type_.as_str() {
        LEGACY_MOUNT_TYPE => {
            let parents = option_array(m, PARENT_LAYER_PATHS)?;
            if parents.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "{LEGACY_MOUNT_TYPE} rootfs mount from {:?} has no parent layers (option {PARENT_LAYER_PATHS}<JSON array>)",
                    m.source
                )));
            }
            checked(&format!("{LEGACY_MOUNT_TYPE} mount"), &parents, &m.source)
        }
        CIMFS_MOUNT_TYPE | BLOCK_CIM_MOUNT_TYPE => Err(Error::Unimplemented(format!(
            "{} rootfs mounts are not supported: use the windows snapshotter's {LEGACY_MOUNT_TYPE} layers",
            m.type_
        ))),
        other => Err(Error::InvalidArgument(format!(
            "invalid windows mount type: '{other}'"
        ))),
    }
}

/// The first option starting with `prefix`, its rest decoded as a JSON string array
/// (`getOptionAsArray`: absent → empty; `null` → empty).
fn option_array(m: &Mount, prefix: &str) -> Result<Vec<String>> {
    let Some(json) = m.options.iter().find_map(|o| o.strip_prefix(prefix)) else {
        return Ok(Vec::new());
    };
    let values: Option<Vec<String>> = serde_json::from_str(json).map_err(|e| {
        Error::InvalidArgument(format!("failed to unmarshal option `{prefix}`: {e}"))
    })?;
    Ok(values.unwrap_or_default())
}

fn checked(what: &str, parents: &[String], scratch: &str) -> Result<WcowLayers> {
    for p in parents {
        check_path(what, "layer", p)?;
    }
    check_path(what, "scratch", scratch)?;
    Ok(WcowLayers {
        parents: parents.to_vec(),
        scratch: scratch.to_owned(),
    })
}

/// Refuses what is not a clean absolute Windows path: `X:\…`, a UNC path `\\server\share\…`
/// or a `\\?\` path, with no `.`/`..` component (vmcompute resolves layer ids from the
/// folder names, so a path that walks elsewhere would name another layer).
fn check_path(what: &str, role: &str, path: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "{what}: {role} path {path:?} {why}"
        )))
    };
    if path.contains('\0') {
        return bad("contains a NUL character");
    }
    let b = path.as_bytes();
    let drive = b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && is_sep(b[2]);
    let unc = b.len() > 2 && is_sep(b[0]) && is_sep(b[1]) && !is_sep(b[2]);
    if !drive && !unc {
        return bad("is not an absolute Windows path");
    }
    // `\\?\` and `\\.\` prefixes are device namespaces, not `.`/`?` components.
    let rest = path
        .strip_prefix(r"\\?\")
        .or_else(|| path.strip_prefix(r"\\.\"))
        .unwrap_or(path);
    if rest.split(['\\', '/']).any(|c| c == ".." || c == ".") {
        return bad("has a '.' or '..' component");
    }
    Ok(())
}

fn is_sep(b: u8) -> bool {
    b == b'\\' || b == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mount(t: &str, src: &str, opts: &[&str]) -> Mount {
        Mount {
            type_: t.into(),
            source: src.into(),
            options: opts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn layers(parents: &[&str], scratch: &str) -> WcowLayers {
        WcowLayers {
            parents: parents.iter().map(|s| s.to_string()).collect(),
            scratch: scratch.into(),
        }
    }

    #[test]
    fn a_windows_layer_mount_keeps_the_parent_order() {
        let m = mount(
            "windows-layer",
            r"C:\snapshots\9",
            &[
                "rw",
                r#"parentLayerPaths=["C:\\snapshots\\8","C:\\snapshots\\2","C:\\snapshots\\1"]"#,
            ],
        );
        assert_eq!(
            from_mounts(&[m], &json!({"windows": {}})).unwrap(),
            layers(
                &[r"C:\snapshots\8", r"C:\snapshots\2", r"C:\snapshots\1"],
                r"C:\snapshots\9"
            )
        );
        // Only the first parentLayerPaths option counts, as getOptionAsArray breaks there.
        let m = mount(
            "windows-layer",
            r"C:\s\9",
            &[
                r#"parentLayerPaths=["C:\\s\\1"]"#,
                r#"parentLayerPaths=["C:\\s\\2"]"#,
            ],
        );
        assert_eq!(
            from_mounts(&[m], &json!({})).unwrap(),
            layers(&[r"C:\s\1"], r"C:\s\9")
        );
    }

    #[test]
    fn layer_folders_end_with_the_scratch() {
        let spec = json!({"windows": {"layerFolders": [r"C:\l\2", r"\\?\Volume{x}\l\1", r"C:\l\scratch"]}});
        assert_eq!(
            from_mounts(&[], &spec).unwrap(),
            layers(&[r"C:\l\2", r"\\?\Volume{x}\l\1"], r"C:\l\scratch")
        );
        let unc = json!({"windows": {"layerFolders": [r"\\srv\share\l1", "D:/l/s"]}});
        assert_eq!(
            from_mounts(&[], &unc).unwrap(),
            layers(&[r"\\srv\share\l1"], "D:/l/s")
        );
    }

    #[test]
    fn each_error_has_the_reference_code_and_names_the_problem() {
        let ok_mount = || {
            mount(
                "windows-layer",
                r"C:\s\9",
                &[r#"parentLayerPaths=["C:\\s\\1"]"#],
            )
        };
        let folders = json!({"windows": {"layerFolders": [r"C:\l\1", r"C:\l\s"]}});
        let cases: Vec<(Vec<Mount>, serde_json::Value, &str, &str)> = vec![
            (vec![ok_mount()], folders.clone(), "precondition", "both"),
            (vec![], json!({"windows": {}}), "precondition", "either"),
            (
                vec![],
                json!({"windows": {"layerFolders": null}}),
                "precondition",
                "either",
            ),
            (
                vec![ok_mount(), ok_mount()],
                json!({}),
                "precondition",
                "single",
            ),
            (
                vec![],
                json!({"windows": {"layerFolders": [r"C:\l\s"]}}),
                "precondition",
                "at least two",
            ),
            (
                vec![Mount {
                    target: r"C:\t".into(),
                    ..ok_mount()
                }],
                json!({}),
                "precondition",
                "target",
            ),
            (
                vec![mount("overlay", "overlay", &[])],
                json!({}),
                "invalid",
                "invalid windows mount type: 'overlay'",
            ),
            (
                vec![mount("CimFS", r"C:\s", &[])],
                json!({}),
                "unimplemented",
                "CimFS",
            ),
            (
                vec![mount("BlockCIM", r"C:\s", &[])],
                json!({}),
                "unimplemented",
                "BlockCIM",
            ),
            (
                vec![mount("windows-layer", r"C:\s", &["parentLayerPaths=[1]"])],
                json!({}),
                "invalid",
                "failed to unmarshal option `parentLayerPaths=`",
            ),
            (
                vec![mount("windows-layer", r"C:\s", &["rw"])],
                json!({}),
                "invalid",
                "no parent layers",
            ),
            (
                vec![mount("windows-layer", r"C:\s", &["parentLayerPaths=null"])],
                json!({}),
                "invalid",
                "no parent layers",
            ),
            (
                vec![mount(
                    "windows-layer",
                    r"s\9",
                    &[r#"parentLayerPaths=["C:\\s\\1"]"#],
                )],
                json!({}),
                "invalid",
                r#"scratch path "s\\9" is not an absolute"#,
            ),
            (
                vec![mount(
                    "windows-layer",
                    r"C:\s\9",
                    &[r#"parentLayerPaths=["C:\\s\\..\\x"]"#],
                )],
                json!({}),
                "invalid",
                "'..'",
            ),
            (
                vec![],
                json!({"windows": {"layerFolders": ["l1", r"C:\l\s"]}}),
                "invalid",
                r#"layer path "l1""#,
            ),
            (
                vec![],
                json!({"windows": {"layerFolders": [r"C:\l\1", r"C:\l\.\s"]}}),
                "invalid",
                "'.'",
            ),
            (
                vec![],
                json!({"windows": {"layerFolders": [r"C:", r"C:\l\s"]}}),
                "invalid",
                "not an absolute",
            ),
            (
                vec![],
                json!({"windows": {"layerFolders": "C:\\l"}}),
                "invalid",
                "windows.layerFolders",
            ),
        ];
        for (mounts, spec, kind, text) in cases {
            let e = from_mounts(&mounts, &spec).unwrap_err();
            let got_kind = match e {
                Error::FailedPrecondition(_) => "precondition",
                Error::InvalidArgument(_) => "invalid",
                Error::Unimplemented(_) => "unimplemented",
                _ => "other",
            };
            assert_eq!(got_kind, kind, "{e}");
            assert!(e.to_string().contains(text), "{e:?} lacks {text:?}");
        }
    }
}

//! Process-isolated Windows containers (Argon): each container is an HCS compute system of
//! its own on the host, over layers the host's `vmcompute` mounts (spec shim-cni.md §1.4,
//! hcs-hcn-api.md §7 "How the implementation is chosen").
//!
//! Everything here but [`host`] is OS-neutral and tested on Linux: spec classification,
//! the layers containerd hands over, the HCS v2 container document, process parameters,
//! console-control signals, resource updates and statistics.

pub mod doc;
pub mod host;
pub mod layers;
pub mod process;
pub mod resources;
pub mod stats;

/// How an OCI spec asks to be run (`hcsshim:internal/oci/util.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecKind {
    /// A Linux container (`linux` present): runs in a utility VM's GCS.
    Lcow,
    /// A process-isolated Windows container (`windows` present, no `linux`, no `hyperv`).
    WcowProcess,
    /// A Hyper-V isolated Windows container (`windows.hyperv` present).
    WcowHyperV,
    /// A HostProcess (job) container: WCOW with `microsoft.com/hostprocess-container=true`.
    HostProcess,
}

/// Whether `key` of `v` is present and not `null` (Go decodes `null` into a nil pointer, so
/// `"linux": null` means "no Linux section").
fn present(v: &serde_json::Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

/// Classifies a spec: LCOW ⇔ `linux` present; WCOW ⇔ no `linux` and `windows` present;
/// Hyper-V ⇔ WCOW with `windows.hyperv`; HostProcess ⇔ WCOW and annotation
/// `microsoft.com/hostprocess-container` == "true". Neither → FailedPrecondition "oci spec
/// does not contain WCOW or LCOW spec".
///
/// A Hyper-V spec carrying the HostProcess annotation is [`SpecKind::WcowHyperV`]: the
/// reference creates the utility VM first and runs the HostProcess container inside it
/// (`cmd /c`-wrapped), so isolation decides where it runs.
pub fn classify(spec: &serde_json::Value) -> crate::Result<SpecKind> {
    if present(spec, "linux") {
        return Ok(SpecKind::Lcow);
    }
    let Some(windows) = spec.get("windows").filter(|w| !w.is_null()) else {
        return Err(crate::Error::FailedPrecondition(
            "oci spec does not contain WCOW or LCOW spec".into(),
        ));
    };
    if present(windows, "hyperv") {
        return Ok(SpecKind::WcowHyperV);
    }
    // The reference compares the annotation value exactly (`== "true"`), not as a bool.
    let host_process = spec
        .get("annotations")
        .and_then(|a| a.get(crate::annotations::HOST_PROCESS))
        .and_then(serde_json::Value::as_str)
        == Some("true");
    Ok(if host_process {
        SpecKind::HostProcess
    } else {
        SpecKind::WcowProcess
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_are_classified_as_the_reference_does() {
        let cases = [
            (json!({"linux": {}}), SpecKind::Lcow),
            // A Linux section wins even next to a Windows one.
            (
                json!({"linux": {}, "windows": {"hyperv": {}}}),
                SpecKind::Lcow,
            ),
            (json!({"linux": null, "windows": {}}), SpecKind::WcowProcess),
            (
                json!({"windows": {"layerFolders": []}}),
                SpecKind::WcowProcess,
            ),
            (json!({"windows": {"hyperv": {}}}), SpecKind::WcowHyperV),
            (json!({"windows": {"hyperv": null}}), SpecKind::WcowProcess),
            (
                json!({"windows": {}, "annotations": {"microsoft.com/hostprocess-container": "true"}}),
                SpecKind::HostProcess,
            ),
            // Only the exact string "true" counts.
            (
                json!({"windows": {}, "annotations": {"microsoft.com/hostprocess-container": "True"}}),
                SpecKind::WcowProcess,
            ),
            (
                json!({"windows": {"hyperv": {}}, "annotations": {"microsoft.com/hostprocess-container": "true"}}),
                SpecKind::WcowHyperV,
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(classify(&spec).unwrap(), want, "{spec}");
        }
    }

    #[test]
    fn a_spec_without_either_section_is_refused() {
        for spec in [json!({}), json!({"windows": null}), json!({"process": {}})] {
            let e = classify(&spec).unwrap_err();
            assert!(matches!(e, crate::Error::FailedPrecondition(_)), "{e:?}");
            assert_eq!(e.to_string(), "oci spec does not contain WCOW or LCOW spec");
        }
    }
}

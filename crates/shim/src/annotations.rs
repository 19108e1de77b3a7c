//! The annotations the shim reads (`pkg/annotations` of the reference, spec §1.8) and the
//! CRI classification of a container (`internal/oci/sandbox.go`).
//!
//! Only the keys that mean something to this shim are named here; every other annotation
//! is passed through to the backend untouched (the GCS reads the LCOW ones it implements;
//! the process-isolated Windows container's document reads its own, named in
//! [`crate::wcow::doc`]).

use std::collections::HashMap;

use crate::error::{Error, Result};

/// `io.kubernetes.cri.container-type`: `sandbox` or `container`.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// `io.microsoft.virtualmachine.cpugroup.id`: the host CPU group of a utility VM (Update).
pub const CPU_GROUP_ID: &str = "io.microsoft.virtualmachine.cpugroup.id";
/// `io.kubernetes.cri.sandbox-id`: the pod sandbox a container belongs to.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// `io.microsoft.virtualmachine.bootfilesrootpath` (from the `boot_files_root_path` option).
pub const BOOT_FILES_ROOT_PATH: &str = "io.microsoft.virtualmachine.bootfilesrootpath";
/// `io.microsoft.virtualmachine.computetopology.processor.count`.
pub const PROCESSOR_COUNT: &str = "io.microsoft.virtualmachine.computetopology.processor.count";
/// `io.microsoft.virtualmachine.computetopology.memory.sizeinmb`.
pub const MEMORY_SIZE_MB: &str = "io.microsoft.virtualmachine.computetopology.memory.sizeinmb";
/// `io.microsoft.virtualmachine.lcow.preferredrootfstype`: `initrd` or `vhd` (and this
/// project's `verity-vhd` on the QEMU utility VM).
pub const PREFERRED_ROOTFS_TYPE: &str = "io.microsoft.virtualmachine.lcow.preferredrootfstype";
/// `io.microsoft.network.ncproxy` (from the `NCProxyAddr` option).
pub const NCPROXY: &str = "io.microsoft.network.ncproxy";
/// `microsoft.com/hostprocess-container`: a WCOW HostProcess (job) container.
pub const HOST_PROCESS: &str = "microsoft.com/hostprocess-container";
/// `microsoft.com/disable-hostprocess-container`.
pub const DISABLE_HOST_PROCESS: &str = "microsoft.com/disable-hostprocess-container";
/// `io.microsoft.disable-unsafe-operations`: expands into the four keys of
/// [`UNSAFE_OPERATION_KEYS`].
pub const DISABLE_UNSAFE_OPERATIONS: &str = "io.microsoft.disable-unsafe-operations";
/// What [`DISABLE_UNSAFE_OPERATIONS`] expands into.
pub const UNSAFE_OPERATION_KEYS: [&str; 4] = [
    "io.microsoft.container.wcow.gmsa.disable",
    "io.microsoft.virtualmachine.fileshares.disablewritable",
    "io.microsoft.virtualmachine.wcow.virtualSMB.nodirectmap",
    DISABLE_HOST_PROCESS,
];
/// Which sandbox hosts a pod or standalone container on a Linux host: `local` (the GCS as
/// a host process, the default) or `vm` (the GCS in a QEMU utility VM). This project's
/// own key; the runtime option `sandbox_isolation = HYPERVISOR` asks for `vm` too.
pub const SANDBOX_KIND: &str = "io.hcsshim-rs.sandbox";

/// How a container relates to a pod (the CRI annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRole {
    /// No CRI annotations: a standalone task with its own sandbox.
    Standalone,
    /// The pod sandbox (pause) container; its id is the sandbox id.
    Sandbox(String),
    /// A workload container of the sandbox with this id.
    Container(String),
}

/// Classifies a container from its annotations, with the reference's errors: a type must be
/// `sandbox` or `container`, and a type and a sandbox id come together.
pub fn classify(annotations: &HashMap<String, String>) -> Result<PodRole> {
    let kind = annotations.get(CONTAINER_TYPE).map(String::as_str);
    let sandbox = annotations.get(SANDBOX_ID).map(String::as_str);
    match (kind, sandbox) {
        (None, None) => Ok(PodRole::Standalone),
        (Some(t), None) => Err(Error::InvalidArgument(format!(
            "found type: '{t}', but no sandbox id annotation '{SANDBOX_ID}'"
        ))),
        (None, Some(_)) => Err(Error::InvalidArgument(format!(
            "found sandbox id annotation '{SANDBOX_ID}' but no type annotation '{CONTAINER_TYPE}'"
        ))),
        (Some("sandbox"), Some(id)) => Ok(PodRole::Sandbox(id.to_owned())),
        (Some("container"), Some(id)) => Ok(PodRole::Container(id.to_owned())),
        (Some(t), Some(_)) => Err(Error::InvalidArgument(format!(
            "annotation '{CONTAINER_TYPE}': '{t}' is not a valid container type"
        ))),
    }
}

/// The annotations of an OCI spec (JSON), as strings; non-string values are refused.
pub fn of_spec(spec: &serde_json::Value) -> Result<HashMap<String, String>> {
    let Some(map) = spec.get("annotations") else {
        return Ok(HashMap::new());
    };
    if map.is_null() {
        return Ok(HashMap::new());
    }
    let obj = map
        .as_object()
        .ok_or_else(|| Error::InvalidArgument("spec annotations must be an object".into()))?;
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_owned())),
            None => Err(Error::InvalidArgument(format!(
                "annotation {k:?} is not a string"
            ))),
        })
        .collect()
}

/// Expands `io.microsoft.disable-unsafe-operations` into its four keys; an explicit value
/// that conflicts with the expansion is an error (`oci.ProcessAnnotations`).
pub fn expand(annotations: &mut HashMap<String, String>) -> Result<()> {
    if let Some(v) = annotations.get(DISABLE_UNSAFE_OPERATIONS).cloned() {
        for key in UNSAFE_OPERATION_KEYS {
            match annotations.get(key) {
                Some(existing) if existing != &v => {
                    return Err(Error::InvalidArgument(format!(
                        "annotation {key:?} is {existing:?} but {DISABLE_UNSAFE_OPERATIONS} sets it to {v:?}"
                    )));
                }
                _ => {
                    annotations.insert(key.to_owned(), v.clone());
                }
            }
        }
    }
    if annotations.get(HOST_PROCESS).map(String::as_str) == Some("true")
        && annotations.get(DISABLE_HOST_PROCESS).map(String::as_str) == Some("true")
    {
        return Err(Error::InvalidArgument(format!(
            "{HOST_PROCESS} and {DISABLE_HOST_PROCESS} are both set"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn classification_follows_the_cri_annotations() {
        assert_eq!(classify(&map(&[])).unwrap(), PodRole::Standalone);
        assert_eq!(
            classify(&map(&[(CONTAINER_TYPE, "sandbox"), (SANDBOX_ID, "p")])).unwrap(),
            PodRole::Sandbox("p".into())
        );
        assert_eq!(
            classify(&map(&[(CONTAINER_TYPE, "container"), (SANDBOX_ID, "p")])).unwrap(),
            PodRole::Container("p".into())
        );
        assert!(classify(&map(&[(CONTAINER_TYPE, "sandbox")])).is_err());
        assert!(classify(&map(&[(SANDBOX_ID, "p")])).is_err());
        let e = classify(&map(&[(CONTAINER_TYPE, "pod"), (SANDBOX_ID, "p")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("'pod' is not a valid container type"),
            "{e}"
        );
    }

    #[test]
    fn spec_annotations_must_be_strings() {
        let spec = serde_json::json!({"annotations": {"a": "b"}});
        assert_eq!(of_spec(&spec).unwrap(), map(&[("a", "b")]));
        assert!(of_spec(&serde_json::json!({})).unwrap().is_empty());
        assert!(of_spec(&serde_json::json!({"annotations": {"a": 1}})).is_err());
        assert!(of_spec(&serde_json::json!({"annotations": []})).is_err());
    }

    #[test]
    fn unsafe_operations_expand_and_conflicts_fail() {
        let mut a = map(&[(DISABLE_UNSAFE_OPERATIONS, "true")]);
        expand(&mut a).unwrap();
        for k in UNSAFE_OPERATION_KEYS {
            assert_eq!(a[k], "true");
        }
        let mut c = map(&[
            (DISABLE_UNSAFE_OPERATIONS, "true"),
            ("io.microsoft.container.wcow.gmsa.disable", "false"),
        ]);
        assert!(expand(&mut c).is_err());
        let mut both = map(&[(HOST_PROCESS, "true"), (DISABLE_HOST_PROCESS, "true")]);
        assert!(expand(&mut both).is_err());
    }
}

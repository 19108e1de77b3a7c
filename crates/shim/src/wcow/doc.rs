//! The HCS v2 create document of a process-isolated Windows container (Argon), built from
//! the OCI spec as `hcsshim:internal/hcsoci/hcsdoc_wcow.go createWindowsContainerDocument`
//! and `create.go CreateContainer` build it, with the mount checks of
//! `resources_wcow.go setupMounts` and the gMSA check of `create.go validateContainerConfig`.
//!
//! What needs the host (mounting the layers, resolving symlinks in mount sources, a
//! Container Credential Guard instance, device extension files) is not done here: the
//! layers come in mounted ([`LayerRef`], `volume_path`), and the rest is refused by name
//! rather than left out of the document.

use std::collections::HashMap;

use hcs_schema::v2::{
    ComputeSystem, Container, ContainerMemory, ContainerProcessor, Device, DeviceType, GuestOs,
    Layer, MappedDirectory, MappedPipe, Networking, RegistryChanges, RegistryHive, RegistryKey,
    RegistryValue, RegistryValueType, Storage, StorageQoS,
};
use hcs_schema::SchemaVersion;
use serde::Deserialize;

use crate::error::{Error, Result};

/// `io.microsoft.container.processor.count`: overrides `windows.resources.cpu.count`.
pub const CONTAINER_PROCESSOR_COUNT: &str = "io.microsoft.container.processor.count";
/// `io.microsoft.container.processor.limit`: overrides `windows.resources.cpu.maximum`.
pub const CONTAINER_PROCESSOR_LIMIT: &str = "io.microsoft.container.processor.limit";
/// `io.microsoft.container.processor.weight`: overrides `windows.resources.cpu.shares`.
pub const CONTAINER_PROCESSOR_WEIGHT: &str = "io.microsoft.container.processor.weight";
/// `io.microsoft.container.memory.sizeinmb`: overrides `windows.resources.memory.limit`
/// (in MB, not bytes).
pub const CONTAINER_MEMORY_SIZE_MB: &str = "io.microsoft.container.memory.sizeinmb";
/// `io.microsoft.container.storage.qos.bandwidthmaximum`.
pub const CONTAINER_STORAGE_BPS: &str = "io.microsoft.container.storage.qos.bandwidthmaximum";
/// `io.microsoft.container.storage.qos.iopsmaximum`.
pub const CONTAINER_STORAGE_IOPS: &str = "io.microsoft.container.storage.qos.iopsmaximum";
/// `io.microsoft.container.processdumplocation`: where WER writes process dumps.
pub const PROCESS_DUMP_LOCATION: &str = "io.microsoft.container.processdumplocation";
/// `io.microsoft.wcow.processdumptype`: `mini` or `full` (the default).
pub const PROCESS_DUMP_TYPE: &str = "io.microsoft.wcow.processdumptype";
/// `io.microsoft.wcow.processdumpcount`: how many dumps WER keeps (default 10).
pub const PROCESS_DUMP_COUNT: &str = "io.microsoft.wcow.processdumpcount";
/// `io.microsoft.container.wcow.deviceextensions`: device extension files to merge in.
pub const DEVICE_EXTENSIONS: &str = "io.microsoft.container.wcow.deviceextensions";
/// `io.microsoft.container.wcow.gmsa.disable`: refuse gMSA credential specs.
pub const GMSA_DISABLE: &str = "io.microsoft.container.wcow.gmsa.disable";

/// The prefix of a named-pipe mount source (`uvm.IsPipe`).
const PIPE_PREFIX: &str = r"\\.\pipe\";
/// The dump-path suffix replaced by the container id.
const DUMP_PATH_ID_SUFFIX: &str = "{container_id}";
/// Mount source prefixes that name places inside a utility VM.
const UVM_SOURCE_PREFIXES: [&str; 4] = ["sandbox://", "sandbox-tmp://", "hugepages://", "uvm://"];

/// One read-only layer of the document: `Id` = the layer's GUID (string form), `Path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// The layer's GUID (vmcompute `NameToGuid` of the folder name).
    pub id: String,
    /// The layer folder.
    pub path: String,
}

/// The parts of the OCI spec the document uses (Go decodes them case-insensitively, and
/// `null` as absent).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    hostname: String,
    root: Option<Root>,
    mounts: Vec<Mount>,
    windows: Option<Windows>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Root {
    readonly: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct Mount {
    destination: String,
    #[serde(rename = "type")]
    kind: String,
    source: String,
    options: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Windows {
    resources: Option<Resources>,
    network: Option<Network>,
    #[serde(rename = "credentialSpec")]
    credential_spec: Option<serde_json::Value>,
    hyperv: Option<serde_json::Value>,
    devices: Vec<WindowsDevice>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Resources {
    memory: Option<MemoryResources>,
    cpu: Option<CpuResources>,
    storage: Option<StorageResources>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MemoryResources {
    limit: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CpuResources {
    count: Option<u64>,
    shares: Option<u16>,
    maximum: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StorageResources {
    iops: Option<u64>,
    bps: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Network {
    #[serde(rename = "dnsSearchList")]
    dns_search_list: Option<Vec<String>>,
    #[serde(rename = "allowUnqualifiedDNSQuery")]
    allow_unqualified_dns_query: bool,
    #[serde(rename = "networkSharedContainerName")]
    network_shared_container_name: String,
    #[serde(rename = "networkNamespace")]
    network_namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WindowsDevice {
    id: String,
    #[serde(rename = "idType")]
    id_type: String,
}

/// The HCS v2 `ComputeSystem` document (SchemaVersion 2.1, `Owner`,
/// `ShouldTerminateOnLastHandleClosed`, `Container`) for process-isolated container `id`
/// over the mounted `layers` (topmost first) and the scratch volume `volume_path`
/// (`\\?\Volume{GUID}\`), as JSON. Object keys come out sorted; [`compute_system`] gives
/// the typed document, which encodes in Go's key order. See [`compute_system`] for the
/// rules.
pub fn container_document(
    id: &str,
    owner: &str,
    spec: &serde_json::Value,
    layers: &[LayerRef],
    volume_path: &str,
) -> Result<serde_json::Value> {
    let doc = compute_system(id, owner, spec, layers, volume_path, host_processors())?;
    serde_json::to_value(&doc)
        .map_err(|e| Error::Other(format!("encode the container document: {e}")))
}

/// This host's logical processors (a requested CPU count above it is lowered to it).
pub fn host_processors() -> i32 {
    std::thread::available_parallelism().map_or(1, |n| i32::try_from(n.get()).unwrap_or(i32::MAX))
}

/// The typed HCS v2 document of process-isolated container `id` (see
/// [`container_document`]), on a host with `host_processors` logical processors. As the
/// reference:
///
/// * `GuestOs.HostName` from `hostname`;
/// * `Processor` always (`{}` when unlimited): `Count`, `Maximum`, `Weight` from the
///   `io.microsoft.container.processor.*` annotations, else `windows.resources.cpu`
///   (`count`, `maximum`, `shares` when > 0); more than one set → InvalidArgument (they
///   are mutually exclusive); a count above the host's processors is lowered to it;
/// * `Memory.SizeInMB` from `io.microsoft.container.memory.sizeinmb`, else
///   `windows.resources.memory.limit` bytes / MiB, when > 0;
/// * `Storage.QoS` from the storage annotations, else `windows.resources.storage`;
/// * `Networking` when `windows.network` is present: `Namespace` =
///   `networkNamespace`, `AllowUnqualifiedDnsQuery`, `DnsSearchList` joined by commas,
///   `NetworkSharedContainerName`;
/// * `Storage.Layers` = `layers`, `Storage.Path` = `volume_path` (a volume GUID path, a
///   trailing `\` added when missing);
/// * `MappedPipes` for mounts whose source starts with `\\.\pipe\` (destination without
///   that prefix), `MappedDirectories` for the other mounts (read-only with an `ro`
///   option, any case);
/// * `AssignedDevices` from `windows.devices` (`vpci-location-path` → DeviceInstance,
///   `class`/`vpci-class-guid` → InterfaceClassGuid);
/// * `RegistryChanges`: `WaitToKillServiceTimeout` always (so that graceful stops wait as
///   long as asked), plus the WER LocalDumps values with a process dump location.
///
/// Refused: no `windows` section, a Hyper-V spec, a read-only root, a mount without source
/// or destination, mount types other than the reference's (InvalidArgument); disk mounts
/// and utility-VM sources (`sandbox://` …), a gMSA `credentialSpec` and device extensions,
/// which need what this document cannot carry (Unimplemented; a disabled gMSA is
/// FailedPrecondition).
pub fn compute_system(
    id: &str,
    owner: &str,
    spec: &serde_json::Value,
    layers: &[LayerRef],
    volume_path: &str,
    host_processors: i32,
) -> Result<ComputeSystem> {
    let s: Spec = hcs_schema::json::from_value(spec.clone())
        .map_err(|e| Error::InvalidArgument(format!("the OCI spec is malformed: {e}")))?;
    let annotations = crate::annotations::of_spec(spec)?;
    let Some(windows) = &s.windows else {
        return Err(Error::InvalidArgument(
            "cannot create HCS container document - OCI spec Windows section is missing".into(),
        ));
    };
    if windows.hyperv.as_ref().is_some_and(|h| !h.is_null()) {
        return Err(Error::InvalidArgument(
            "a Hyper-V isolated spec has no process-isolated container document".into(),
        ));
    }
    // setupMounts runs before the document is built: its errors come first.
    check_mounts(&s.mounts)?;
    if let Some(serde_json::Value::String(_)) = &windows.credential_spec {
        if parse_bool(&annotations, GMSA_DISABLE) {
            return Err(Error::FailedPrecondition(
                "container config validation failed: gMSA credentials are disabled".into(),
            ));
        }
        return Err(Error::Unimplemented(
            "gMSA credential specs (windows.credentialSpec) need a Container Credential Guard instance, which this shim does not create".into(),
        ));
    }

    let mut container = Container::default();
    if !s.hostname.is_empty() {
        container.guest_os = Some(GuestOs {
            host_name: s.hostname.clone(),
        });
    }
    let resources = windows.resources.as_ref();
    container.processor = Some(processor(&annotations, resources, host_processors)?);
    let memory_mb = parse_u64(&annotations, CONTAINER_MEMORY_SIZE_MB)
        .filter(|m| *m != 0)
        .or_else(|| {
            let limit = resources?.memory.as_ref()?.limit?;
            (limit > 0).then_some(limit / 1024 / 1024)
        })
        .unwrap_or(0);
    if memory_mb > 0 {
        container.memory = Some(ContainerMemory {
            size_in_mb: memory_mb,
        });
    }
    let storage_res = resources.and_then(|r| r.storage.as_ref());
    let bps = annotation_or(
        &annotations,
        CONTAINER_STORAGE_BPS,
        storage_res.and_then(|s| s.bps),
    );
    let iops = annotation_or(
        &annotations,
        CONTAINER_STORAGE_IOPS,
        storage_res.and_then(|s| s.iops),
    );
    let qos = if bps > 0 || iops > 0 {
        Some(StorageQoS {
            bandwidth_maximum: non_negative("storage bandwidth maximum", bps)?,
            iops_maximum: non_negative("storage IOPS maximum", iops)?,
        })
    } else {
        None
    };
    if let Some(n) = &windows.network {
        container.networking = Some(Networking {
            namespace: n.network_namespace.clone(),
            allow_unqualified_dns_query: n.allow_unqualified_dns_query,
            dns_search_list: n
                .dns_search_list
                .as_ref()
                .map(|l| l.join(","))
                .unwrap_or_default(),
            network_shared_container_name: n.network_shared_container_name.clone(),
            ..Default::default()
        });
    }
    if s.root.as_ref().is_some_and(|r| r.readonly) {
        return Err(Error::InvalidArgument(
            "invalid container spec - readonly is not supported for Windows containers".into(),
        ));
    }
    container.storage = Some(Storage {
        layers: layers
            .iter()
            .map(|l| Layer {
                id: l.id.clone(),
                path: l.path.clone(),
                ..Default::default()
            })
            .collect(),
        path: volume_guid_path(volume_path)?,
        qos,
        ..Default::default()
    });
    for m in &s.mounts {
        if m.source.starts_with(PIPE_PREFIX) {
            container.mapped_pipes.push(MappedPipe {
                host_path: m.source.clone(),
                container_pipe_name: m
                    .destination
                    .strip_prefix(PIPE_PREFIX)
                    .unwrap_or(&m.destination)
                    .to_owned(),
                ..Default::default()
            });
        } else {
            container.mapped_directories.push(MappedDirectory {
                host_path: m.source.clone(),
                container_path: m.destination.clone(),
                read_only: m.options.iter().any(|o| o.eq_ignore_ascii_case("ro")),
                ..Default::default()
            });
        }
    }
    container.assigned_devices = assigned_devices(&windows.devices)?;
    if annotations
        .get(DEVICE_EXTENSIONS)
        .is_some_and(|v| !v.is_empty())
    {
        return Err(Error::Unimplemented(format!(
            "annotation {DEVICE_EXTENSIONS} (device extension files) is not supported"
        )));
    }
    container.registry_changes = Some(registry_changes(id, &annotations)?);

    Ok(ComputeSystem {
        owner: if owner.is_empty() {
            default_owner()
        } else {
            owner.to_owned()
        },
        schema_version: Some(SchemaVersion::V2_1),
        container: Some(container),
        should_terminate_on_last_handle_closed: true,
        ..Default::default()
    })
}

/// The reference's default owner: the base name of the running executable.
fn default_owner() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// `setupMounts`' checks, plus what a process-isolated container cannot map.
fn check_mounts(mounts: &[Mount]) -> Result<()> {
    for m in mounts {
        if m.destination.is_empty() || m.source.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "invalid OCI spec - a mount must have both source and a destination: {m:?}"
            )));
        }
        match m.kind.as_str() {
            "" => {}
            // The reference accepts these for Argon too and hands the disk path to HCS
            // as a directory, which HCS then fails to map.
            "physical-disk" | "virtual-disk" | "extensible-virtual-disk" => {
                return Err(Error::Unimplemented(format!(
                    "mount type '{}' ({} on {}) needs a utility VM; process-isolated containers map host directories only",
                    m.kind, m.source, m.destination
                )))
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "invalid OCI spec - Type '{other}' not supported"
                )))
            }
        }
        if let Some(prefix) = UVM_SOURCE_PREFIXES
            .iter()
            .find(|p| m.source.starts_with(**p))
        {
            return Err(Error::InvalidArgument(format!(
                "mount source {:?}: {prefix} sources name a utility VM path; a process-isolated container has none",
                m.source
            )));
        }
    }
    Ok(())
}

/// `ConvertCPULimits` (without the utility-VM rescaling, which does not apply here).
fn processor(
    annotations: &HashMap<String, String>,
    resources: Option<&Resources>,
    host_processors: i32,
) -> Result<ContainerProcessor> {
    let cpu = resources.and_then(|r| r.cpu.as_ref());
    let count = annotation_or(
        annotations,
        CONTAINER_PROCESSOR_COUNT,
        cpu.and_then(|c| c.count),
    );
    let limit = annotation_or(
        annotations,
        CONTAINER_PROCESSOR_LIMIT,
        cpu.and_then(|c| c.maximum.map(u64::from)),
    );
    let weight = annotation_or(
        annotations,
        CONTAINER_PROCESSOR_WEIGHT,
        cpu.and_then(|c| c.shares.map(u64::from)),
    );
    let set = [count, limit, weight].iter().filter(|v| **v > 0).count();
    if set > 1 {
        return Err(Error::InvalidArgument(format!(
            "invalid spec - Windows Container CPU Count: '{count}', Limit: '{limit}', and Weight: '{weight}' are mutually exclusive"
        )));
    }
    Ok(ContainerProcessor {
        count: if set == 1 {
            count.min(host_processors)
        } else {
            count
        },
        maximum: limit,
        weight,
    })
}

/// `ParseAnnotationsInt32(key)` when it is set and non-zero, else the spec value when it
/// is > 0 (cast as Go's `int32()`), else 0.
fn annotation_or(annotations: &HashMap<String, String>, key: &str, spec: Option<u64>) -> i32 {
    match parse_i32(annotations, key) {
        Some(v) if v != 0 => v,
        _ => spec.filter(|v| *v > 0).map_or(0, |v| v as i32),
    }
}

/// Go's `strconv.ParseInt(v, 10, 32)`; an unparsable value is ignored (the reference logs
/// it and uses the default).
fn parse_i32(annotations: &HashMap<String, String>, key: &str) -> Option<i32> {
    let v = annotations.get(key)?;
    let parsed = v.parse::<i32>().ok();
    if parsed.is_none() {
        tracing::warn!(annotation = key, value = %v, "annotation is not a 32-bit integer: ignored");
    }
    parsed
}

/// Go's `strconv.ParseUint(v, 10, 64)` (no sign allowed).
fn parse_u64(annotations: &HashMap<String, String>, key: &str) -> Option<u64> {
    let v = annotations.get(key)?;
    let parsed = (!v.starts_with('+'))
        .then(|| v.parse::<u64>().ok())
        .flatten();
    if parsed.is_none() {
        tracing::warn!(annotation = key, value = %v, "annotation is not an unsigned integer: ignored");
    }
    parsed
}

/// `ParseAnnotationsBool`: "true"/"false" in any case; anything else is the default.
fn parse_bool(annotations: &HashMap<String, String>, key: &str) -> bool {
    annotations
        .get(key)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Go writes a negative int32 QoS as is; the schema's field is unsigned, so a negative
/// annotation is refused instead of wrapped.
fn non_negative(what: &str, v: i32) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::InvalidArgument(format!("{what} {v} is negative")))
}

/// Checks `path` against the reference's volume GUID pattern
/// `^\\\\\?\\(Volume)\{{0,1}<GUID>(\}){0,1}\}(|\\)$` and adds the trailing `\`.
fn volume_guid_path(path: &str) -> Result<String> {
    let invalid = || {
        Error::InvalidArgument(format!(
            r"invalid container spec - Root.Path '{path}' must be a volume GUID path in the format '\\?\Volume{{GUID}}\'"
        ))
    };
    let rest = path.strip_prefix(r"\\?\Volume").ok_or_else(invalid)?;
    let rest = rest.strip_prefix('{').unwrap_or(rest);
    let (guid, rest) = rest.split_at_checked(36).ok_or_else(invalid)?;
    let groups: Vec<&str> = guid.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let guid_ok = groups.len() == lens.len()
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    // After the GUID: an optional `}`, a mandatory `}`, then nothing or one `\`.
    let tail_ok = matches!(rest, "}" | r"}\" | "}}" | r"}}\");
    if !guid_ok || !tail_ok {
        return Err(invalid());
    }
    Ok(if path.ends_with('\\') {
        path.to_owned()
    } else {
        format!(r"{path}\")
    })
}

/// `parseAssignedDevices` for a v2 Argon.
fn assigned_devices(devices: &[WindowsDevice]) -> Result<Vec<Device>> {
    devices
        .iter()
        .map(|d| match d.id_type.as_str() {
            "vpci-location-path" => Ok(Device {
                device_type: Some(DeviceType::DeviceInstance),
                location_path: d.id.clone(),
                ..Default::default()
            }),
            "class" | "vpci-class-guid" => Ok(Device {
                interface_class_guid: d.id.clone(),
                ..Default::default()
            }),
            other => Err(Error::InvalidArgument(format!(
                "specified device {} has unsupported type {other}",
                d.id
            ))),
        })
        .collect()
}

/// `WaitToKillServiceTimeout` and, with a dump location, WER's LocalDumps values.
fn registry_changes(id: &str, annotations: &HashMap<String, String>) -> Result<RegistryChanges> {
    // Servercore waits WaitToKillServiceTimeout (5 s by default) before it kills a process
    // that blocks a console control event; the reference sets it past any grace period so
    // that a graceful stop is as long as the caller asks.
    let mut add = vec![RegistryValue {
        key: Some(RegistryKey {
            hive: Some(RegistryHive::System),
            name: r"ControlSet001\Control".into(),
            ..Default::default()
        }),
        name: "WaitToKillServiceTimeout".into(),
        value_type: Some(RegistryValueType::String),
        string_value: i32::MAX.to_string(),
        ..Default::default()
    }];
    let dump_path = annotations
        .get(PROCESS_DUMP_LOCATION)
        .cloned()
        .unwrap_or_default();
    if !dump_path.is_empty() {
        let upper = DUMP_PATH_ID_SUFFIX.to_uppercase();
        let dump_path = if let Some(base) = dump_path.strip_suffix(DUMP_PATH_ID_SUFFIX) {
            format!("{base}{id}")
        } else if let Some(base) = dump_path.strip_suffix(upper.as_str()) {
            format!("{base}{id}")
        } else {
            dump_path
        };
        let dump_type = match annotations.get(PROCESS_DUMP_TYPE).map(String::as_str) {
            None | Some("") | Some("full") => 2,
            Some("mini") => 1,
            Some(_) => {
                return Err(Error::InvalidArgument(
                    r#"unknown dump type specified, valid values are "mini" or "full""#.into(),
                ))
            }
        };
        let dump_count = match annotations.get(PROCESS_DUMP_COUNT).map(String::as_str) {
            None | Some("") => 10,
            Some(v) => match v.parse::<i32>() {
                Ok(n) if n > 0 => n.unsigned_abs(),
                Ok(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "invalid dump count specified: {v}"
                    )))
                }
                Err(e) => {
                    return Err(Error::InvalidArgument(format!(
                        "annotation {PROCESS_DUMP_COUNT} {v:?}: {e}"
                    )))
                }
            },
        };
        let local_dumps = || {
            Some(RegistryKey {
                hive: Some(RegistryHive::Software),
                name: r"Microsoft\Windows\Windows Error Reporting\LocalDumps".into(),
                ..Default::default()
            })
        };
        add.extend([
            RegistryValue {
                key: local_dumps(),
                name: "DumpFolder".into(),
                value_type: Some(RegistryValueType::String),
                string_value: dump_path,
                ..Default::default()
            },
            RegistryValue {
                key: local_dumps(),
                name: "DumpType".into(),
                value_type: Some(RegistryValueType::DWord),
                dword_value: dump_type,
                ..Default::default()
            },
            RegistryValue {
                key: local_dumps(),
                name: "DumpCount".into(),
                value_type: Some(RegistryValueType::DWord),
                dword_value: dump_count,
                ..Default::default()
            },
        ]);
    }
    Ok(RegistryChanges {
        add_values: add,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;

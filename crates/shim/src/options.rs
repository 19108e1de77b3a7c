//! Runtime options: how containerd configures the shim (spec §1.7).
//!
//! containerd hands the runtime options of a runtime handler to the shim twice: on `serve`'s
//! stdin (older containerd: a bare `Any`; containerd 2.3+: `BootstrapParams` whose
//! extensions hold the `Any`) and in every `Create` request's `options` field. Accepted:
//!
//! * `containerd.runhcs.v1.Options`, generated from `proto/runhcs.proto` (the reference's
//!   proto, field numbers kept);
//! * `runtimeoptions.v1.Options`, which containerd's CRI plugin sends for runtimes whose
//!   options type it does not know (Debian's containerd 1.6 does that for this runtime);
//!   it only names a config file, which this shim does not use, so it means "defaults";
//! * nothing (nil options, empty stdin): defaults.
//!
//! Any other type is an error naming it. The generated code is checked in (no build
//! script, no protoc); `tests::generated_code_is_current` regenerates it from the `.proto`
//! files and fails on any difference (run with `REGENERATE_PROTOS=1` to update).

use std::collections::HashMap;

use protobuf::well_known_types::any::Any;
use protobuf::Message;

use crate::annotations;
use crate::error::{Error, Result};

/// Code generated from `proto/runhcs.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
#[rustfmt::skip]
pub mod runhcs;
/// Code generated from `proto/runtimeoptions.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
#[rustfmt::skip]
pub mod runtimeoptions;

pub use runhcs::options::{DebugType, SandboxIsolation};
pub use runhcs::{Options, ProcessDetails};

/// The type URL containerd uses for runhcs options (typeurl registers the proto name).
pub const OPTIONS_TYPE: &str = "containerd.runhcs.v1.Options";
/// The type URL of CRI's generic runtime options.
pub const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";

fn type_name(url: &str) -> &str {
    // typeurl accepts both the bare name and `types.googleapis.com/<name>`.
    url.rsplit('/').next().unwrap_or(url)
}

/// Decodes the `options` of a Create request (or the `Any` on `serve`'s stdin). `None`,
/// an empty `Any` and `runtimeoptions.v1.Options` give the defaults.
pub fn decode_any(any: Option<&Any>) -> Result<Options> {
    let Some(any) = any else {
        return Ok(Options::new());
    };
    if any.type_url.is_empty() && any.value.is_empty() {
        return Ok(Options::new());
    }
    match type_name(&any.type_url) {
        OPTIONS_TYPE => Options::parse_from_bytes(&any.value).map_err(|source| Error::Protobuf {
            context: format!("decode {OPTIONS_TYPE}"),
            source,
        }),
        RUNTIME_OPTIONS_TYPE => {
            let generic =
                runtimeoptions::Options::parse_from_bytes(&any.value).map_err(|source| {
                    Error::Protobuf {
                        context: format!("decode {RUNTIME_OPTIONS_TYPE}"),
                        source,
                    }
                })?;
            tracing::debug!(
                config_path = %generic.config_path,
                "runtimeoptions.v1.Options carry no runhcs options; using defaults"
            );
            Ok(Options::new())
        }
        other => Err(Error::InvalidArgument(format!(
            "unexpected runtime options type {other:?}: want {OPTIONS_TYPE}"
        ))),
    }
}

/// Decodes the bytes containerd wrote on `serve`'s stdin: empty → defaults; a bare `Any`
/// of a known type; else containerd 2.3's `BootstrapParams`, whose extension of type
/// `containerd.runhcs.v1.Options` is used (none → defaults).
pub fn decode_stdin(bytes: &[u8]) -> Result<Options> {
    if bytes.is_empty() {
        return Ok(Options::new());
    }
    if let Ok(any) = Any::parse_from_bytes(bytes) {
        let name = type_name(&any.type_url);
        if name == OPTIONS_TYPE || name == RUNTIME_OPTIONS_TYPE {
            return decode_any(Some(&any));
        }
    }
    let params = containerd_shim_protos::bootstrap_api::BootstrapParams::parse_from_bytes(bytes)
        .map_err(|source| Error::Protobuf {
            context: "decode the runtime options on stdin (neither an Any nor BootstrapParams)"
                .into(),
            source,
        })?;
    for ext in &params.extensions {
        if let Some(any) = ext.value.as_ref() {
            if type_name(&any.type_url) == OPTIONS_TYPE {
                return decode_any(Some(any));
            }
        }
    }
    Ok(Options::new())
}

/// Packs options into an `Any` (tests and clients).
pub fn to_any(options: &Options) -> Result<Any> {
    Ok(Any {
        type_url: OPTIONS_TYPE.into(),
        value: options.write_to_bytes().map_err(|source| Error::Protobuf {
            context: format!("encode {OPTIONS_TYPE}"),
            source,
        })?,
        ..Default::default()
    })
}

/// A message with its full proto name spelled out: packing an `Any` then needs no protobuf
/// reflection, whose descriptors (built on first use, with every file they import) would
/// cost each shim process code pages and heap it otherwise never touches.
/// `tests::type_names_are_the_descriptors` checks each name against the descriptor.
pub trait TypeName: Message {
    /// The full proto name (`package.Message`), containerd's type URL.
    const TYPE_NAME: &'static str;
}

macro_rules! type_names {
    ($($t:ty => $name:expr),* $(,)?) => {
        $(impl TypeName for $t {
            const TYPE_NAME: &'static str = $name;
        })*
    };
}

type_names! {
    Options => OPTIONS_TYPE,
    ProcessDetails => "containerd.runhcs.v1.ProcessDetails",
    containerd_shim_protos::shim::oci::ProcessDetails => "containerd.runc.v1.ProcessDetails",
    containerd_shim_protos::cgroups::metrics::Metrics => "io.containerd.cgroups.v1.Metrics",
    containerd_shim_protos::windows::stats::Statistics => "containerd.runhcs.stats.v1.Statistics",
    containerd_shim_protos::events::task::TaskCreate => "containerd.events.TaskCreate",
    containerd_shim_protos::events::task::TaskStart => "containerd.events.TaskStart",
    containerd_shim_protos::events::task::TaskExecAdded => "containerd.events.TaskExecAdded",
    containerd_shim_protos::events::task::TaskExecStarted => "containerd.events.TaskExecStarted",
    containerd_shim_protos::events::task::TaskExit => "containerd.events.TaskExit",
    containerd_shim_protos::events::task::TaskDelete => "containerd.events.TaskDelete",
    containerd_shim_protos::events::task::TaskOOM => "containerd.events.TaskOOM",
}

/// Packs a message into an `Any` with containerd's type URL (the full proto name).
pub fn pack<M: TypeName>(m: &M) -> Result<Any> {
    Ok(Any {
        type_url: M::TYPE_NAME.to_owned(),
        value: m.write_to_bytes().map_err(|source| Error::Protobuf {
            context: format!("encode {}", M::TYPE_NAME),
            source,
        })?,
        ..Default::default()
    })
}

/// The sandbox `sandbox_isolation = HYPERVISOR` asks for: a utility VM, booted by QEMU on
/// Linux and by HCS on Windows.
pub const HYPERVISOR_SANDBOX: &str = if cfg!(windows) { "hcs" } else { "vm" };

/// Applies options onto a spec's annotations without overriding explicit ones
/// (`UpdateSpecFromOptions`): boot files, processor count, memory size, ncproxy and the
/// default container annotations. Sandbox isolation `HYPERVISOR` asks for a VM sandbox.
pub fn apply_to_annotations(options: &Options, annotations_map: &mut HashMap<String, String>) {
    let mut set = |k: &str, v: String| {
        annotations_map.entry(k.to_owned()).or_insert(v);
    };
    if !options.boot_files_root_path.is_empty() {
        set(
            annotations::BOOT_FILES_ROOT_PATH,
            options.boot_files_root_path.clone(),
        );
    }
    if options.vm_processor_count > 0 {
        set(
            annotations::PROCESSOR_COUNT,
            options.vm_processor_count.to_string(),
        );
    }
    if options.vm_memory_size_in_mb > 0 {
        set(
            annotations::MEMORY_SIZE_MB,
            options.vm_memory_size_in_mb.to_string(),
        );
    }
    if !options.NCProxyAddr.is_empty() {
        set(annotations::NCPROXY, options.NCProxyAddr.clone());
    }
    if options.sandbox_isolation.enum_value() == Ok(SandboxIsolation::HYPERVISOR) {
        set(annotations::SANDBOX_KIND, HYPERVISOR_SANDBOX.into());
    }
    for (k, v) in &options.default_container_annotations {
        set(k, v.clone());
    }
}

/// Applies the options' isolation and platform to the spec (§1.4 step 4):
/// `sandbox_isolation = HYPERVISOR` makes a Windows spec Hyper-V isolated (adds
/// `windows.hyperv`); on Windows, options that ask for PROCESS isolation refuse a spec that
/// is isolated; a `sandbox_platform` must agree with the spec (`linux` needs its `linux`
/// section, `windows` must not have one, other systems are refused).
pub fn apply_isolation(options: &Options, spec: &mut serde_json::Value) -> Result<()> {
    let has_linux = spec.get("linux").is_some_and(|l| !l.is_null());
    let isolation = options.sandbox_isolation.enum_value();
    if isolation == Ok(SandboxIsolation::HYPERVISOR) && !has_linux {
        if let Some(w) = spec.get_mut("windows").and_then(|w| w.as_object_mut()) {
            let hyperv = w.entry("hyperv").or_insert_with(|| serde_json::json!({}));
            if hyperv.is_null() {
                *hyperv = serde_json::json!({});
            }
        }
    }
    // Only on Windows, where a Linux spec means a utility VM: Linux containers run
    // process-isolated here (the local sandbox).
    let isolated_windows = spec
        .pointer("/windows/hyperv")
        .is_some_and(|h| !h.is_null());
    if cfg!(windows)
        && *options != Options::default()
        && isolation == Ok(SandboxIsolation::PROCESS)
        && (has_linux || isolated_windows)
    {
        return Err(Error::InvalidArgument(
            "invalid runtime sandbox isolation (PROCESS) for hypervisor isolated OCI spec".into(),
        ));
    }
    if !options.sandbox_platform.is_empty() {
        let os = options
            .sandbox_platform
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match (os.as_str(), has_linux) {
            ("windows", true) => {
                return Err(Error::InvalidArgument(format!(
                    "sandbox platform {:?} for a spec with a linux section",
                    options.sandbox_platform
                )))
            }
            ("linux", false) => {
                return Err(Error::InvalidArgument(format!(
                    "sandbox platform {:?} for a spec without a linux section",
                    options.sandbox_platform
                )))
            }
            ("windows", false) | ("linux", true) => {}
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "sandbox platform {:?}: unsupported operating system",
                    options.sandbox_platform
                )))
            }
        }
    }
    Ok(())
}

/// The log level the options ask for: `log_level` wins over `debug`.
pub fn log_level(options: &Options) -> Option<String> {
    if !options.log_level.is_empty() {
        Some(options.log_level.clone())
    } else if options.debug {
        Some("debug".into())
    } else {
        None
    }
}

/// The redial budget of output pipes (`io_retry_timeout_in_sec`): zero retries forever;
/// a negative value, which stops the reference's backoff at once, dials only once.
pub fn io_retry_timeout(options: &Options) -> std::time::Duration {
    match u64::try_from(options.io_retry_timeout_in_sec) {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => std::time::Duration::from_nanos(1),
    }
}

/// Where the shim's logs go (`debug_type`); `None` for a value this shim does not know.
pub fn debug_type(options: &Options) -> Option<DebugType> {
    options.debug_type.enum_value().ok()
}

#[cfg(test)]
mod tests;

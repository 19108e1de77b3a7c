#[cfg(unix)]
use std::path::Path;

use super::*;

#[cfg(unix)]
fn generate(out: &Path) {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    protobuf_codegen::Codegen::new()
        .pure()
        .include(&proto)
        .inputs([
            proto.join("runhcs.proto"),
            proto.join("runtimeoptions.proto"),
        ])
        .out_dir(out)
        .run()
        .expect("protobuf codegen");
}

/// A check of the build's inputs, run where the tree is built (not in the Windows test
/// binaries run elsewhere).
#[cfg(unix)]
#[test]
fn generated_code_is_current() {
    crate::codegen_check::assert_generated_current(
        "options",
        &["runhcs.rs", "runtimeoptions.rs"],
        generate,
    );
}

#[test]
fn nil_empty_and_cri_generic_options_give_defaults() {
    assert_eq!(decode_any(None).unwrap(), Options::new());
    assert_eq!(decode_any(Some(&Any::new())).unwrap(), Options::new());
    let generic = runtimeoptions::Options {
        type_url: "x".into(),
        config_path: "/etc/runhcs.toml".into(),
        ..Default::default()
    };
    let any = Any {
        type_url: RUNTIME_OPTIONS_TYPE.into(),
        value: generic.write_to_bytes().unwrap(),
        ..Default::default()
    };
    assert_eq!(decode_any(Some(&any)).unwrap(), Options::new());
    assert_eq!(decode_stdin(&[]).unwrap(), Options::new());
}

#[test]
fn runhcs_options_round_trip_through_any_and_stdin() {
    let mut o = Options::new();
    o.debug = true;
    o.log_level = "trace".into();
    o.vm_memory_size_in_mb = 2048;
    o.sandbox_isolation = SandboxIsolation::HYPERVISOR.into();
    o.default_container_annotations
        .insert("a".into(), "b".into());
    let any = to_any(&o).unwrap();
    assert_eq!(decode_any(Some(&any)).unwrap(), o);
    let mut prefixed = any.clone();
    prefixed.type_url = format!("types.googleapis.com/{OPTIONS_TYPE}");
    assert_eq!(decode_any(Some(&prefixed)).unwrap(), o);
    assert_eq!(decode_stdin(&any.write_to_bytes().unwrap()).unwrap(), o);
    assert_eq!(log_level(&o).as_deref(), Some("trace"));
}

#[test]
fn bootstrap_params_extension_is_found() {
    use containerd_shim_protos::bootstrap_api::{BootstrapParams, Extension};
    let mut o = Options::new();
    o.io_retry_timeout_in_sec = 7;
    let mut params = BootstrapParams::new();
    params.instance_id = "c1".into();
    params.namespace = "default".into();
    let mut ext = Extension::new();
    ext.value = protobuf::MessageField::some(to_any(&o).unwrap());
    params.extensions.push(ext);
    assert_eq!(decode_stdin(&params.write_to_bytes().unwrap()).unwrap(), o);
}

#[test]
fn io_retry_timeout_and_debug_type_read_as_the_reference() {
    use std::time::Duration;
    let mut o = Options::new();
    assert_eq!(io_retry_timeout(&o), Duration::ZERO, "0: forever");
    assert_eq!(debug_type(&o), Some(DebugType::NPIPE));
    o.io_retry_timeout_in_sec = 7;
    assert_eq!(io_retry_timeout(&o), Duration::from_secs(7));
    o.io_retry_timeout_in_sec = -1;
    assert_eq!(
        io_retry_timeout(&o),
        Duration::from_nanos(1),
        "one dial only"
    );
    o.debug_type = protobuf::EnumOrUnknown::from_i32(9);
    assert_eq!(debug_type(&o), None);
}

#[test]
fn unknown_types_are_refused_by_name() {
    let any = Any {
        type_url: "io.containerd.runc.v1.Options".into(),
        value: vec![],
        ..Default::default()
    };
    let e = decode_any(Some(&any)).unwrap_err();
    assert!(
        e.to_string().contains("io.containerd.runc.v1.Options"),
        "{e}"
    );
    let garbage = Any {
        type_url: OPTIONS_TYPE.into(),
        value: vec![0xff, 0xff],
        ..Default::default()
    };
    assert!(decode_any(Some(&garbage)).is_err());
}

#[test]
fn options_fill_annotations_without_overriding() {
    let mut o = Options::new();
    o.vm_processor_count = 4;
    o.boot_files_root_path = "/boot".into();
    o.sandbox_isolation = SandboxIsolation::HYPERVISOR.into();
    o.default_container_annotations
        .insert("x".into(), "default".into());
    let mut a = HashMap::from([("x".to_string(), "explicit".to_string())]);
    apply_to_annotations(&o, &mut a);
    assert_eq!(a["x"], "explicit");
    assert_eq!(a[annotations::PROCESSOR_COUNT], "4");
    assert_eq!(a[annotations::BOOT_FILES_ROOT_PATH], "/boot");
    assert_eq!(a[annotations::SANDBOX_KIND], super::HYPERVISOR_SANDBOX);
    assert!(!a.contains_key(annotations::MEMORY_SIZE_MB));
}

#[test]
fn type_names_are_the_descriptors() {
    use containerd_shim_protos::events::task::*;
    use protobuf::MessageFull;
    fn check<M: TypeName + MessageFull>() {
        assert_eq!(M::TYPE_NAME, M::descriptor().full_name());
    }
    check::<Options>();
    check::<ProcessDetails>();
    check::<containerd_shim_protos::shim::oci::ProcessDetails>();
    check::<containerd_shim_protos::cgroups::metrics::Metrics>();
    check::<containerd_shim_protos::windows::stats::Statistics>();
    check::<TaskCreate>();
    check::<TaskStart>();
    check::<TaskExecAdded>();
    check::<TaskExecStarted>();
    check::<TaskExit>();
    check::<TaskDelete>();
    check::<TaskOOM>();
}

#[test]
fn isolation_and_platform_reach_the_spec() {
    let hv = Options {
        sandbox_isolation: SandboxIsolation::HYPERVISOR.into(),
        ..Default::default()
    };
    // HYPERVISOR makes a Windows spec Hyper-V isolated; a Linux spec is left as it is.
    let mut wcow = serde_json::json!({"windows": {"layerFolders": []}});
    apply_isolation(&hv, &mut wcow).unwrap();
    assert_eq!(wcow["windows"]["hyperv"], serde_json::json!({}));
    let mut lcow = serde_json::json!({"linux": {}, "windows": null});
    apply_isolation(&hv, &mut lcow).unwrap();
    assert!(lcow["windows"].is_null());
    // On Windows, options asking for PROCESS isolation refuse a Linux (utility VM) spec;
    // on Linux such a spec runs process-isolated.
    let process = Options {
        log_level: "info".into(),
        ..Default::default()
    };
    let refused = apply_isolation(&process, &mut lcow.clone());
    assert_eq!(refused.is_err(), cfg!(windows), "{refused:?}");
    // The platform must agree with the spec (HYPERVISOR: valid for both kinds of spec on
    // both systems).
    let platform = |p: &str| Options {
        sandbox_platform: p.into(),
        sandbox_isolation: SandboxIsolation::HYPERVISOR.into(),
        ..Default::default()
    };
    apply_isolation(&platform("linux/amd64"), &mut lcow.clone()).unwrap();
    apply_isolation(&platform("windows/amd64"), &mut wcow.clone()).unwrap();
    for (p, spec) in [
        ("windows/amd64", &lcow),
        ("linux/amd64", &wcow),
        ("freebsd/amd64", &lcow),
    ] {
        let e = apply_isolation(&platform(p), &mut spec.clone()).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m.contains(p)),
            "{p}: {e}"
        );
    }
}

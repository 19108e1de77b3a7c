//! Arbitrary bytes into the containerd shim's decoders: runtime options on stdin (a bare
//! `Any` or BootstrapParams) and in Create, the guest's metrics JSON, spec annotations,
//! rootfs mount options, the logging-driver URL, the ShimDiag/ExtendedTask requests, and
//! the process-isolated Windows container's inputs (a spec into its HCS document and
//! process, `windows-layer` mounts, WindowsResources, HCS statistics and times). Each must
//! return an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shim::options;

fuzz_target!(|data: &[u8]| {
    let _ = options::decode_stdin(data);
    {
        use protobuf::Message;
        use shim::diag::{extendedtask, shimdiag};
        let _ = shimdiag::ExecProcessRequest::parse_from_bytes(data);
        let _ = shimdiag::ShareRequest::parse_from_bytes(data);
        let _ = shimdiag::TasksRequest::parse_from_bytes(data);
        let _ = extendedtask::ComputeProcessorInfoRequest::parse_from_bytes(data);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = shim::stats::metrics_from_json(&v);
        let _ = shim::stats::oom_kills(&v);
        let _ = shim::wcow::classify(&v);
        let layers = [shim::wcow::doc::LayerRef {
            id: "00000000-0000-0000-0000-000000000000".into(),
            path: r"C:\layers\base".into(),
        }];
        let _ = shim::wcow::doc::container_document("c", "o", &v, &layers, r"\\?\Volume{x}\");
        if let Some(p) = v.get("process") {
            let _ = shim::wcow::process::process_parameters(p, true, true, true);
        }
        let _ = shim::wcow::process::fix_pause_command(&mut v.clone());
        let _ = shim::wcow::resources::update_requests(&v);
        let _ = shim::wcow::stats::statistics(&v);
        let _ = shim::wcow::layers::from_mounts(&[], &v);
        if let Ok(a) = shim::annotations::of_spec(&v) {
            let _ = shim::annotations::classify(&a);
            let mut a = a;
            let _ = shim::annotations::expand(&mut a);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // A task's stdout: a path or a `binary://` logging-driver URL.
        let _ = shim::logdriver::DriverUrl::parse(text);
        let mut parts = text.split('\n');
        let mount = shim::rootfs::Mount {
            type_: parts.next().unwrap_or_default().to_owned(),
            source: parts.next().unwrap_or_default().to_owned(),
            options: parts.map(str::to_owned).collect(),
            ..Default::default()
        };
        let _ = shim::rootfs::from_mounts(
            std::slice::from_ref(&mount),
            std::path::Path::new("/nonexistent"),
            None,
        );
        let _ = shim::wcow::layers::from_mounts(&[mount], &serde_json::json!({}));
        let _ = shim::wcow::stats::parse_timestamp(text);
    }
});

//! Arbitrary bytes into the containerd shim's decoders: runtime options on stdin (a bare
//! `Any` or BootstrapParams) and in Create, the guest's metrics JSON, spec annotations,
//! rootfs mount options, the logging-driver URL, and the ShimDiag/ExtendedTask requests.
//! Each must return an error, never panic.
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
        let _ = shim::rootfs::from_mounts(&[mount], std::path::Path::new("/nonexistent"), None);
    }
});

//! The gcs's own decoding of request contents: the shell-words split of an external
//! process's `CommandLine`, and the guest-side rewrite of a Create's OCI spec (annotations,
//! mount sources, namespaces), which must reject paths that leave the sandbox instead of
//! panicking or writing outside its bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = gcs::host::split_command_line(text);
    if let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(text) {
        let root = std::env::temp_dir().join(format!("gcs-fuzz-{}", std::process::id()));
        let bundle = root.join("pods").join("c");
        let _ = gcs::spec::prepare("c", &bundle, &mut spec, "");
        let _ = std::fs::remove_dir_all(&root);
    }
});

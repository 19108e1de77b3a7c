//! The gcs's own decoding of request contents: the shell-words split of an external
//! process's `CommandLine`, and the preparation of a Create's bundle from its OCI spec
//! (annotations, mount sources, root path, `process.cwd` created in the rootfs).
//!
//! Besides not panicking, the bundle preparation must keep every write inside the bundle (a
//! workload may also create its sandbox's `sandboxMounts`/`sandboxTmpfsMounts`/`hugepages`/
//! `logs` dirs). Each run prepares a fresh bundle whose rootfs holds symlinks that try to leave it
//! (`up` climbs with `..` to a directory beside the bundle, `abs` names that directory by its
//! absolute path), then compares the whole scratch tree before and after: any new path elsewhere, or anything
//! inside `outside/`, fails the run.
#![no_main]

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// The scratch tree: `<base>/outside` (must stay empty) and `<base>/pods/c` (the bundle).
/// One fixed name, emptied when a run starts, so that runs leave at most one tree behind
/// (libFuzzer has no teardown hook); run one fuzzing process of this target at a time.
fn base() -> &'static PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let b = std::env::temp_dir().join("hcsshim-fuzz-gcs_request_inputs");
        match std::fs::remove_dir_all(&b) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                panic!("cannot empty {}: {e}", b.display())
            }
            _ => {}
        }
        std::fs::create_dir_all(b.join("outside")).expect("create the scratch tree");
        b
    })
}

/// Every path under `dir`, symlinks not followed.
fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.insert(p.clone());
        if is_dir {
            walk(&p, out);
        }
    }
}

/// A new path the preparation may create: inside the bundle, or a workload's sandbox dirs
/// (`pods/<sandbox>`, and anything under its `sandboxMounts`, `sandboxTmpfsMounts`,
/// `hugepages` or `logs`; the hugetlbfs mounts themselves are made by the caller).
fn allowed(pods: &Path, bundle: &Path, p: &Path) -> bool {
    if p.starts_with(bundle) {
        return true;
    }
    let Ok(rel) = p.strip_prefix(pods) else {
        return false;
    };
    let c: Vec<Component> = rel.components().collect();
    match c.as_slice() {
        [Component::Normal(_)] => true,
        [Component::Normal(_), Component::Normal(d), ..] => {
            let dirs = ["sandboxMounts", "sandboxTmpfsMounts", "hugepages", "logs"];
            dirs.contains(&d.to_str().unwrap_or_default())
        }
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = gcs::host::split_command_line(text);
    let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    // root.path comes from the host and is taken as given; keep it on the scratch rootfs so
    // that the run writes nowhere else. The cwd and mounts are what the fuzzer varies.
    if let Some(obj) = spec.as_object_mut() {
        obj.insert("root".into(), serde_json::json!({"path": "rootfs"}));
    }
    let base = base();
    let pods = base.join("pods");
    let bundle = pods.join("c");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).expect("create the rootfs");
    // rootfs -> c -> pods -> base: `up` leads to the decoy when resolved on the host.
    std::os::unix::fs::symlink("../../../outside", rootfs.join("up")).unwrap();
    std::os::unix::fs::symlink(base.join("outside"), rootfs.join("abs")).unwrap();
    std::fs::write(rootfs.join("file"), b"x").unwrap();

    let mut before = BTreeSet::new();
    walk(base, &mut before);
    // Both placements of the container's cgroup (the spec's may be kept in a local sandbox).
    let host_cgroups = data.len() % 2 == 1;
    let _ = gcs::host::prepare_bundle("c", &bundle, &mut spec, "", host_cgroups);
    let mut after = BTreeSet::new();
    walk(base, &mut after);

    let decoy = base.join("outside");
    let outside: Vec<_> = after
        .iter()
        .filter(|p| p.starts_with(&decoy) && **p != decoy)
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the bundle: {outside:?}"
    );
    let stray: Vec<_> = after
        .difference(&before)
        .filter(|p| !allowed(&pods, &bundle, p))
        .collect();
    assert!(stray.is_empty(), "created outside the bundle: {stray:?}");
    std::fs::remove_dir_all(&pods).expect("clean the scratch tree");
});

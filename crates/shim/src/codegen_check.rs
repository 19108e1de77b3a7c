//! Test support: the checked-in generated protobuf/ttrpc code matches its `.proto` files.

use std::path::Path;

/// Runs `generate` into a temporary directory and compares each of `names` with the file of
/// that name in `src/<subdir>`; with `REGENERATE_PROTOS` set, rewrites the checked-in files
/// instead.
pub(crate) fn assert_generated_current(subdir: &str, names: &[&str], generate: impl FnOnce(&Path)) {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(subdir);
    for name in names {
        let fresh = std::fs::read_to_string(tmp.path().join(name)).unwrap();
        let path = dir.join(name);
        if std::env::var_os("REGENERATE_PROTOS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            fresh == checked_in,
            "{} is stale: run `REGENERATE_PROTOS=1 cargo test -p shim generated_code_is_current`",
            path.display()
        );
    }
}

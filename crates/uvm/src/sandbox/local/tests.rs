//! The cgroup bookkeeping of the local sandbox: which directories a recorded entry may
//! name (teardown kills and removes them).

use std::path::Path;

use super::cgroup_dir;

#[test]
fn a_recorded_entry_names_a_pods_cgroup_or_its_host_path_and_nothing_wider() {
    let base = Path::new("/sys/fs/cgroup/memory");
    assert_eq!(cgroup_dir(base, "c1"), Some(base.join("pods/c1")));
    assert_eq!(
        cgroup_dir(base, "/kubepods/pod1/c1"),
        Some(base.join("kubepods/pod1/c1"))
    );
    for bad in ["", "/", "..", "/kubepods/../x", "/a//b", "a/b"] {
        assert_eq!(cgroup_dir(base, bad), None, "{bad:?}");
    }
}

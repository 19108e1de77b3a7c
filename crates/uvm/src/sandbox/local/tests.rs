//! The cgroup bookkeeping of the local sandbox: which host cgroup a container keeps, and
//! which directories a recorded entry may name (teardown kills and removes them).

use std::path::Path;

use super::{cgroup_dir, host_cgroup_path};

#[test]
fn a_spec_keeps_its_host_cgroup_only_when_it_is_the_containers_own() {
    let spec = |p: &str| serde_json::json!({"linux": {"cgroupsPath": p}});
    for ok in ["/kubepods/besteffort/pod1/c1", "/default/c1", "/c1"] {
        assert_eq!(host_cgroup_path("c1", &spec(ok)).as_deref(), Some(ok));
    }
    for bad in [
        "",
        "/",
        "c1",
        "/kubepods/../c1",
        "/kubepods//c1",
        "/kubepods/c1/",
        "/kubepods/c2",
        "/kubepods",
        "kubepods.slice:cri-containerd:c1",
    ] {
        assert_eq!(host_cgroup_path("c1", &spec(bad)), None, "{bad:?}");
    }
    assert_eq!(host_cgroup_path("c1", &serde_json::json!({})), None);
}

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

//! This project's extensions of the host–agent contract, which the reference does not have
//! (both sides must agree on them, so they live here).

/// The cgroup of container `id` in the host's tree that a local-sandbox agent started with
/// `-host-cgroups` keeps from the spec, and the host records for teardown: the spec's
/// `linux.cgroupsPath` when it is absolute, every component is a plain name of at most 128
/// ASCII letters, digits, `-`, `_` and `.` (not `.` or `..`; so not systemd's
/// `slice:prefix:name` form either), and the last one is the id, as containerd builds it
/// (`<cgroup parent>/<id>`, or `/<namespace>/<id>` for `ctr`). Ending in the id keeps it the
/// container's own, never a parent shared with others, which teardown would empty.
pub fn host_cgroup_path(id: &str, spec: &serde_json::Value) -> Option<String> {
    let path = spec.pointer("/linux/cgroupsPath")?.as_str()?;
    let mut parts = path.strip_prefix('/')?.split('/');
    let own = parts.next_back() == Some(id);
    (own && is_cgroup_name(id) && parts.all(is_cgroup_name)).then(|| path.to_owned())
}

/// A component [`host_cgroup_path`] accepts.
pub fn is_cgroup_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_cgroup_path_is_kept_only_when_it_is_the_containers_own() {
        let spec = |p: &str| serde_json::json!({"linux": {"cgroupsPath": p}});
        for ok in ["/kubepods/besteffort/pod1/c1", "/default/c1", "/c1"] {
            assert_eq!(host_cgroup_path("c1", &spec(ok)).as_deref(), Some(ok));
        }
        let long = format!("/{}/c1", "x".repeat(129));
        for bad in [
            "",
            "/",
            "c1",
            "kubepods/c1",
            "/kubepods/../c1",
            "/kubepods//c1",
            "/kubepods/c1/",
            "/kubepods/c2",
            "/kubepods",
            "kubepods.slice:cri-containerd:c1",
            "/kube pods/c1",
            &long,
        ] {
            assert_eq!(host_cgroup_path("c1", &spec(bad)), None, "{bad:?}");
        }
        assert_eq!(
            host_cgroup_path("c1", &serde_json::json!({"linux": {}})),
            None
        );
        let number = serde_json::json!({"linux": {"cgroupsPath": 5}});
        assert_eq!(host_cgroup_path("c1", &number), None);
    }
}

//! Where a shim serves its task API and where its sandbox keeps state.
//!
//! The address is a pure function of (containerd address, namespace, id): a workload
//! container's `start` finds its pod's shim by computing the address of the pod's sandbox
//! id (§1.1 step 4), without any registry.
//!
//! * Windows (the reference): `\\.\pipe\ProtectedPrefix\Administrators\containerd-shim-<ns>-<id>-pipe`,
//!   a pipe only administrators may create.
//! * Linux: containerd's own convention for shim sockets (`shim.SocketAddress`):
//!   `unix:///run/containerd/s/<sha256 of "<containerd address>/<ns>/<id>">`, short
//!   enough for `sun_path` whatever the id, and distinct for two containerds on one host.

use sha2::{Digest, Sha256};

/// The prefix of a Windows named pipe path.
pub const PIPE_PREFIX: &str = r"\\.\pipe\";
/// The admin-only prefix of the reference's shim pipes.
pub const PROTECTED_PIPE_PREFIX: &str = r"\\.\pipe\ProtectedPrefix\Administrators\";
/// Where containerd keeps shim sockets on Linux.
pub const LINUX_SOCKET_DIR: &str = "/run/containerd/s";
/// Where this shim keeps its sandboxes' state on Linux (sockets must stay short).
pub const LINUX_SANDBOX_ROOT: &str = "/run/containerd-runhcs";

fn digest(containerd_address: &str, namespace: &str, id: &str) -> String {
    let d = Sha256::digest(format!("{containerd_address}/{namespace}/{id}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reference's shim pipe for `<ns>/<id>`.
pub fn pipe_address(namespace: &str, id: &str) -> String {
    format!("{PROTECTED_PIPE_PREFIX}containerd-shim-{namespace}-{id}-pipe")
}

/// The pipe the reference's shim serves its log on (not under the protected prefix).
pub fn log_pipe(namespace: &str, id: &str) -> String {
    format!("{PIPE_PREFIX}containerd-shim-{namespace}-{id}-log")
}

/// The Unix socket address (with the `unix://` scheme) of the shim of `<ns>/<id>`.
pub fn unix_address(containerd_address: &str, namespace: &str, id: &str) -> String {
    format!(
        "unix://{LINUX_SOCKET_DIR}/{}",
        digest(containerd_address, namespace, id)
    )
}

/// The address of the shim serving `<ns>/<id>` on this platform.
pub fn shim_address(containerd_address: &str, namespace: &str, id: &str) -> String {
    if cfg!(windows) {
        pipe_address(namespace, id)
    } else {
        unix_address(containerd_address, namespace, id)
    }
}

/// The state dir of the local sandbox of `<ns>/<id>` (short: the bridge and stdio sockets
/// live in it).
pub fn sandbox_state_dir(
    containerd_address: &str,
    namespace: &str,
    id: &str,
) -> std::path::PathBuf {
    let d = digest(containerd_address, namespace, id);
    std::path::Path::new(LINUX_SANDBOX_ROOT).join(&d[..24])
}

/// The filesystem path of a `unix://` address (a bare path is returned as is).
pub fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_names_follow_the_reference() {
        assert_eq!(
            pipe_address("k8s.io", "abc"),
            r"\\.\pipe\ProtectedPrefix\Administrators\containerd-shim-k8s.io-abc-pipe"
        );
        assert_eq!(
            log_pipe("default", "c1"),
            r"\\.\pipe\containerd-shim-default-c1-log"
        );
    }

    #[test]
    fn unix_addresses_are_short_and_deterministic() {
        let id = "f".repeat(64);
        let a = unix_address("/run/containerd/containerd.sock", "k8s.io", &id);
        assert!(a.starts_with("unix:///run/containerd/s/"));
        assert_eq!(a.len(), "unix:///run/containerd/s/".len() + 64);
        assert_eq!(
            a,
            unix_address("/run/containerd/containerd.sock", "k8s.io", &id)
        );
        assert_ne!(a, unix_address("/tmp/other.sock", "k8s.io", &id));
        assert_eq!(socket_path(&a), &a["unix://".len()..]);
        let dir = sandbox_state_dir("/a", "ns", &id);
        // bridge.sock and the stdio sockets must fit in sun_path (108 bytes).
        assert!(dir.join("4294967295.sock").as_os_str().len() < 100);
    }
}

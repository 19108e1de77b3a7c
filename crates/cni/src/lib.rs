//! The Windows CNI plugins `nat`, `sdnbridge` and `sdnoverlay` (spec shim-cni.md Part 2):
//! one core, three binaries whose behaviour follows the configuration's `type`.
//!
//! A pod's endpoint is created in HNS through the [`hcn`] crate and attached to the
//! namespace named by `CNI_NETNS`: HNS on Windows, hnsd on Linux (which realizes it as a
//! veth in the network namespace, a bridge, and nftables rules).
//!
//! * [`skel`]: the CNI protocol (environment, stdin, checks, dispatch, output, exit codes);
//! * [`version`]: the specification versions (0.2.0 through 1.1.0) and their result layouts;
//! * [`config`]: the network configuration, read with Go's case-insensitive keys ([`ci`]);
//! * [`plan`]: what a configuration asks of HCN (documents, policies, DNS) and the result
//!   read back, without calling anything;
//! * [`plugin`]: ADD / DEL / CHECK / GC / STATUS over HCN; [`netns`]: `CNI_NETNS` → HCN
//!   namespace; [`ipam`]: the IPAM delegate;
//! * [`result`]: the result JSON of each version; [`error`]: CNI errors and their codes.
//!
//! The CNI protocol layer is this crate's own small module rather than a library: the
//! maintained Rust CNI crates do not cover the versions these plugins must speak
//! (`cni-plugin` 0.2 accepts only 0.4.0 and 1.x, `rscni-plugin` produces no 0.2.0 result),
//! and both decode configurations case-sensitively.

pub mod ci;
pub mod config;
pub mod error;
pub mod ipam;
pub mod log;
pub mod netns;
pub mod plan;
pub mod plugin;
pub mod result;
pub mod skel;
pub mod version;

pub use error::{CniError, PluginError};
pub use plugin::Plugin;
pub use result::CniResult;

/// The `main` of the three binaries: one invocation with the process's environment and
/// stdio, against this host's HNS. Returns the exit status.
pub fn main() -> i32 {
    log::init();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    // VERSION reads its input only to echo the caller's version; a caller that leaves stdin
    // open and empty (a terminal, an inherited pipe) must not hang the probe.
    let version = std::env::var("CNI_COMMAND").is_ok_and(|c| c == "VERSION");
    let mut input: Box<dyn std::io::Read> = if version && !stdin_ready(&stdin) {
        Box::new(std::io::empty())
    } else {
        Box::new(stdin.lock())
    };
    skel::run(
        &|k| std::env::var(k).ok(),
        &mut input,
        &mut stdout.lock(),
        &mut stderr.lock(),
        Plugin::system,
    )
}

/// How long VERSION waits for its input to become readable.
#[cfg(unix)]
const VERSION_STDIN_WAIT_MS: u16 = 200;

/// Whether stdin has data or its end within [`VERSION_STDIN_WAIT_MS`].
#[cfg(unix)]
fn stdin_ready(stdin: &std::io::Stdin) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(VERSION_STDIN_WAIT_MS)), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
}

/// Whether stdin has data: without a portable poll, VERSION does not read it (as the
/// reference's skel never does).
#[cfg(not(unix))]
fn stdin_ready(_stdin: &std::io::Stdin) -> bool {
    false
}

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
    skel::run(
        &|k| std::env::var(k).ok(),
        &mut stdin.lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
        Plugin::system,
    )
}

//! Host side of LCOW: the GCS bridge client, container and process handles over it, and
//! sandboxes that host a GCS.
//!
//! * [`client`]: the bridge client (negotiation, ids, many calls in flight, responses by id,
//!   exit notifications routed to containers, timeouts).
//! * [`transport`]: where the host listens for the guest's stdio connections.
//! * [`container`], [`process`]: handles over the bridge.
//! * [`sandbox`]: the utility-VM abstraction; on Linux the local sandbox runs `gcs` as a
//!   child process in its own mount and pid namespaces, speaking over Unix sockets; the HCS
//!   sandbox (`sandbox::hcs`) creates an LCOW utility VM through the Host Compute Service.
//! * [`hvsock`]: Hyper-V socket addressing of a utility VM's vsock ports (AF_HYPERV
//!   listeners on Windows).
//! * [`cow`]: the `hcs` crate's `Container` / `Process` traits for these handles.

pub mod client;
pub mod container;
pub mod cow;

pub mod error;
pub mod hvsock;
pub mod process;
pub mod sandbox;
pub mod transport;

pub use client::{BridgeClient, ClientConfig, ContainerState};
pub use container::GcsContainer;
pub use error::{Error, Result};
pub use process::{GcsProcess, ProcessStdio};
pub use sandbox::{Sandbox, SandboxKind};

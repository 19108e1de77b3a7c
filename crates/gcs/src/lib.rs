//! The Linux guest compute service (GCS): the agent inside an LCOW utility VM that serves the
//! bridge protocol (`crates/bridge`), builds container root filesystems and runs containers
//! with an OCI runtime (runc), relaying their stdio over connections it dials to the host.
//!
//! Layout: [`agent`] is the startup sequence and the dial/serve/re-dial loop; [`server`] reads
//! frames and dispatches them to the [`handlers`] (one file per concern), which decode the
//! payload and call plain methods of [`host::Host`]; below it are the container and process
//! state ([`container`], [`process`]), the runtime ([`runc`]), stdio relays ([`stdio`]),
//! storage and network resources, and the agent-wide child [`reaper`].
//!
//! The core is synchronous (threads, blocking I/O): it forks runc and container processes and
//! reaps them with `waitpid(-1)`, which an async runtime's own child handling would race with.

pub mod agent;
pub mod cgroup;
pub mod cli;
pub mod container;
pub mod error;
pub mod exec_fifo;
pub mod handlers;
pub mod host;
pub mod logging;
pub mod memwatch;
pub mod network;
pub mod process;
pub mod reaper;
pub mod rootfs;
pub mod runc;
pub mod server;
pub mod spec;
pub mod stdio;
pub mod storage;
pub mod transport;
pub mod user;

pub use bridge::messages::NULL_CONTAINER_ID;
pub use error::{Error, Result};

//! `containerd-shim-runhcs-v1`: containerd's runtime v2 shim for the LCOW stack and for
//! process-isolated Windows containers (spec shim-cni.md Part 1).
//!
//! containerd runs the binary as the runtime `io.containerd.runhcs.v1`: `start` spawns (or,
//! for a pod's workload container, finds) the shim serving a task and prints its address;
//! `serve` is that long-lived shim: a ttrpc `containerd.task.v2.Task` service over tasks
//! whose containers run in a sandbox (the utility VM: on Linux the local sandbox, a GCS as
//! a host process; on Windows an HCS utility VM); `delete` cleans up after a dead shim.
//!
//! * [`cli`]: flags and sub-commands ([`start`], [`serve`], [`delete`]).
//! * [`service`]: the Task service, thin handlers over [`task`] (tasks, execs, pods).
//! * [`host`]: the sandbox a task runs in, chosen per pod; [`rootfs`] maps containerd's
//!   snapshot mounts onto its layers and scratch.
//! * [`wcow`]: process-isolated Windows containers (Argon), each a compute system of its
//!   own on the host's HCS, with the OS-neutral document, process, signal, update and
//!   statistics logic tested on Linux against the HCS simulators.
//! * [`diag`]: the ShimDiag and ExtendedTask services.
//! * [`stdio`], [`events`], [`options`], [`stats`], [`annotations`], [`address`].
//! * `sys`: the platform layer (FIFOs and Unix sockets; named pipes).

pub mod address;
pub mod annotations;
pub mod cli;
#[cfg(all(test, unix))]
mod codegen_check;
pub mod delete;
pub mod diag;
pub mod error;
pub mod events;
pub mod host;
pub mod logdriver;
pub mod options;
pub mod rootfs;
pub mod serve;
pub mod service;
pub mod start;
pub mod stats;
pub mod stdio;
mod sys;
pub mod task;
pub mod wcow;

pub use error::{Error, Result};

/// The runtime name containerd uses for this shim.
pub const RUNTIME_NAME: &str = "io.containerd.runhcs.v1";

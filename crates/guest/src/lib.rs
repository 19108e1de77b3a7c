//! The utility VM's guest programs and the builder of its boot files (spec ext4-uvm.md §5).
//!
//! * [`init`]: PID 1 of the utility VM (§5.3): mounts, rlimits, cgroups, loopback, kernel
//!   modules, entropy over vsock, then runs its child and reaps every zombie until that
//!   child exits.
//! * [`vsockexec`]: runs a program with its stdio connected to host vsock ports (§5.4),
//!   optionally through a relay that re-dials a lost log connection.
//! * [`vsock`]: dialing the host (CID 2), and a Unix-socket stand-in for tests.
//! * [`bootfiles`]: builds `delta.tar.gz`, `initrd.img`, `rootfs.tar.gz`, `rootfs.vhd` and
//!   the dm-verity variant from a base root filesystem, reproducibly (§5.1). Runs on the
//!   build machine, not in the guest.
//!
//! The guest programs are linked statically (`-C target-feature=+crt-static`, see
//! `scripts/build-bootfiles.sh`) so the root filesystem needs no C library for them.

pub mod bootfiles;
pub mod error;
pub mod init;
pub mod sys;
pub mod vsock;
pub mod vsockexec;

pub use error::{Error, Result};

//! The platform layer: upstream stdio, the ttrpc listener and the `start`/`serve` handshake.
//! Each platform file exposes the same names.

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod imp;

pub use imp::*;

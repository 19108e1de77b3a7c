//! Dialing the host from the guest. The guest always dials; the host always listens
//! (gcs-bridge-protocol.md §1).
//!
//! [`Vsock`] connects `AF_VSOCK` streams to CID 2 (`VMADDR_CID_HOST`), as `init/vsock.c`
//! does. [`UnixDir`] connects to `<dir>/<port>.sock` instead, the layout the local sandbox
//! uses: it lets the tests drive the same code paths without a VM (the reference builds a
//! `USE_TCP` variant for the same purpose).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// The host's vsock CID.
pub const HOST_CID: u32 = 2;

/// Connects a stream to a host port.
pub trait Dialer: Send + Sync {
    /// A connected stream to host port `port`.
    fn dial(&self, port: u32) -> io::Result<OwnedFd>;
}

/// `AF_VSOCK` to the host (CID 2). Only meaningful inside a VM.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vsock;

impl Dialer for Vsock {
    fn dial(&self, port: u32) -> io::Result<OwnedFd> {
        connect_vsock(HOST_CID, port)
    }
}

/// Unix sockets `<dir>/<port>.sock`, for tests.
#[derive(Debug, Clone)]
pub struct UnixDir(pub PathBuf);

impl Dialer for UnixDir {
    fn dial(&self, port: u32) -> io::Result<OwnedFd> {
        UnixStream::connect(self.0.join(format!("{port}.sock"))).map(OwnedFd::from)
    }
}

/// Connects an `AF_VSOCK` stream socket to `cid`:`port`.
pub fn connect_vsock(cid: u32, port: u32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_vm is plain data; all-zero is a valid starting value.
    let mut addr: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    addr.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    addr.svm_cid = cid;
    addr.svm_port = port;
    // SAFETY: `addr` is a valid sockaddr_vm of the given length for the duration of the call.
    let rc = unsafe {
        libc::connect(
            fd,
            &addr as *const libc::sockaddr_vm as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_dir_dials_port_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("109.sock")).unwrap();
        let d = UnixDir(dir.path().to_path_buf());
        let _c = d.dial(109).unwrap();
        l.accept().unwrap();
        assert!(d.dial(110).is_err());
    }
}

//! How the GCS reaches the host. The guest always dials; the host always listens (spec §1).
//!
//! * **vsock** (the reference): CID 2 (`VMADDR_CID_HOST`), the bridge on port 0x40000000 and
//!   each stdio pipe on the port the request names. Only used inside a VM.
//! * **Unix sockets** (the local sandbox): the bridge is `<dir>/bridge.sock` and the stream
//!   for vsock port `P` is `<dir>/<P>.sock`, `P` in decimal (e.g. `<dir>/1073741825.sock`);
//!   a MappedDirectory's 9p port 564 is `<dir>/564.sock`.
//!
//! Dials are retried up to 10 times at 100 ms intervals, like `VsockTransport.Dial` (which
//! retries only on `ETIMEDOUT`; the Unix transport also retries while the listener is not
//! there yet).

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// The vsock port of the bridge (`LinuxGcsVsockPort`).
pub const BRIDGE_PORT: u32 = 0x4000_0000;
/// The host's vsock CID (`VMADDR_CID_HOST`).
pub const HOST_CID: u32 = 2;
/// Attempts per dial.
const DIAL_ATTEMPTS: u32 = 10;
/// Pause between attempts.
const DIAL_RETRY: Duration = Duration::from_millis(100);

/// Where the host listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// AF_VSOCK to CID 2.
    Vsock,
    /// Unix sockets in a directory.
    Unix {
        /// The directory holding `bridge.sock` and `<port>.sock`.
        dir: PathBuf,
    },
}

impl Transport {
    /// The Unix socket path for a port (`bridge.sock` for [`BRIDGE_PORT`]).
    pub fn unix_path(dir: &std::path::Path, port: u32) -> PathBuf {
        if port == BRIDGE_PORT {
            dir.join("bridge.sock")
        } else {
            dir.join(format!("{port}.sock"))
        }
    }

    /// Whether this transport reaches a real host, so the GCS may act on the machine as a
    /// utility VM (power off, cgroup setup). Only vsock does.
    pub fn is_vm(&self) -> bool {
        matches!(self, Transport::Vsock)
    }

    /// Dials `port`, retrying as the reference does.
    pub fn dial(&self, port: u32) -> io::Result<UnixStream> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = match self {
                Transport::Vsock => dial_vsock(port),
                Transport::Unix { dir } => UnixStream::connect(Self::unix_path(dir, port)),
            };
            match r {
                Ok(s) => return Ok(s),
                Err(e) if attempt < DIAL_ATTEMPTS && self.retryable(&e) => {
                    std::thread::sleep(DIAL_RETRY)
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("dial {} port {port}: {e}", self.name()),
                    ))
                }
            }
        }
    }

    fn retryable(&self, e: &io::Error) -> bool {
        let code = e.raw_os_error();
        match self {
            Transport::Vsock => code == Some(libc::ETIMEDOUT),
            Transport::Unix { .. } => matches!(
                code,
                Some(libc::ETIMEDOUT) | Some(libc::ENOENT) | Some(libc::ECONNREFUSED)
            ),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Transport::Vsock => "vsock",
            Transport::Unix { .. } => "unix",
        }
    }
}

/// Connects an AF_VSOCK stream socket to the host. The fd is wrapped in a `UnixStream` only
/// for its generic socket read/write/shutdown.
fn dial_vsock(port: u32) -> io::Result<UnixStream> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, VsockAddr};
    let fd = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), &VsockAddr::new(HOST_CID, port))?;
    Ok(UnixStream::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_naming() {
        let d = std::path::Path::new("/s");
        assert_eq!(
            Transport::unix_path(d, BRIDGE_PORT),
            PathBuf::from("/s/bridge.sock")
        );
        assert_eq!(
            Transport::unix_path(d, 0x4000_0001),
            PathBuf::from("/s/1073741825.sock")
        );
    }

    #[test]
    fn unix_dial_reaches_a_listener() {
        let dir = tempfile::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("7.sock")).unwrap();
        let t = Transport::Unix {
            dir: dir.path().to_path_buf(),
        };
        let _c = t.dial(7).unwrap();
        l.accept().unwrap();
        let e = t.dial(8).unwrap_err();
        assert!(e.to_string().contains("port 8"));
    }
}

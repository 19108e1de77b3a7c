//! Where the host listens for the guest's stdio connections.
//!
//! The guest always dials and the host always listens (spec §1): before sending an
//! ExecuteProcess the host opens one listener per requested pipe, each accepting exactly one
//! connection. On Windows that is an HvSocket service id per vsock port; the local sandbox
//! uses a Unix socket per port, `<dir>/<port>.sock` (the port in decimal), which is what the
//! `gcs -transport unix -socket-dir <dir>` dials. The VM sandbox's guest dials real vsock
//! ports, which `vhost-device-vsock` in hybrid mode turns into connections to
//! `<uds>_<port>` ([`UnixTransport::hybrid_vsock`]).

use std::io;
#[cfg(unix)]
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to the guest (bridge or stdio).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// A listener that accepts exactly one connection.
#[async_trait]
pub trait PortListener: Send {
    /// Accepts the single connection and closes the listener.
    async fn accept(self: Box<Self>) -> io::Result<BoxStream>;
}

/// Opens stdio listeners by vsock port number.
#[async_trait]
pub trait StdioTransport: Send + Sync {
    /// Starts listening on `port`. The listener is ready when this returns.
    async fn listen(&self, port: u32) -> io::Result<Box<dyn PortListener>>;
}

/// The first stdio port (`0x40000001`); the counter increases by one per pipe.
pub const FIRST_STDIO_PORT: u32 = 0x4000_0001;

/// The vsock port of the bridge (`LinuxGcsVsockPort`).
pub const BRIDGE_PORT: u32 = 0x4000_0000;

/// Unix-socket stdio transport: `<dir>/<port>.sock`, or `<uds>_<port>` for hybrid vsock.
#[cfg(unix)]
#[derive(Debug, Clone)]
pub struct UnixTransport {
    dir: PathBuf,
    hybrid: bool,
}

#[cfg(unix)]
impl UnixTransport {
    /// A transport whose sockets live in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            hybrid: false,
        }
    }

    /// The host side of a guest's vsock served by `vhost-device-vsock --uds-path <uds>`:
    /// a guest dial of host port `P` arrives on `<uds>_P`.
    pub fn hybrid_vsock(uds: impl Into<PathBuf>) -> Self {
        Self {
            dir: uds.into(),
            hybrid: true,
        }
    }

    /// The hybrid-vsock listener path for `port` of the backend socket `uds`.
    pub fn hybrid_path(uds: &Path, port: u32) -> PathBuf {
        let mut p = uds.as_os_str().to_owned();
        p.push(format!("_{port}"));
        PathBuf::from(p)
    }

    fn path_for(&self, port: u32) -> PathBuf {
        if self.hybrid {
            Self::hybrid_path(&self.dir, port)
        } else {
            Self::socket_path(&self.dir, port)
        }
    }

    /// The socket path for `port` (`bridge.sock` for the bridge port), as the GCS dials it.
    pub fn socket_path(dir: &Path, port: u32) -> PathBuf {
        if port == BRIDGE_PORT {
            dir.join("bridge.sock")
        } else {
            dir.join(format!("{port}.sock"))
        }
    }
}

#[cfg(unix)]
struct UnixPortListener {
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

#[cfg(unix)]
impl Drop for UnixPortListener {
    fn drop(&mut self) {
        // Accepted or abandoned: the socket file must not outlive the listener.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
#[async_trait]
impl PortListener for UnixPortListener {
    async fn accept(self: Box<Self>) -> io::Result<BoxStream> {
        let (stream, _) = self.listener.accept().await?;
        Ok(Box::new(stream))
    }
}

#[cfg(unix)]
#[async_trait]
impl StdioTransport for UnixTransport {
    async fn listen(&self, port: u32) -> io::Result<Box<dyn PortListener>> {
        let path = self.path_for(port);
        // A stale file from a crashed run would make bind fail with EADDRINUSE.
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("listen on {}: {e}", path.display())))?;
        Ok(Box::new(UnixPortListener { listener, path }))
    }
}

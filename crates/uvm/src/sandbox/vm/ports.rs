//! The host's fixed vsock services for the guest, on hybrid-vsock Unix sockets
//! (`<uds>_<port>`, gcs-bridge-protocol.md §1):
//!
//! * port 1, **entropy**: each connection gets 512 random bytes, then is closed;
//! * port 109, **GCS log**: every connection's bytes (the GCS's JSON log relayed by
//!   `vsockexec -r`, which re-dials after a drop) are appended to `gcs.log`.
//!
//! The first connection on either port tells the sandbox that the guest is running.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::transport::UnixTransport;

/// The entropy port (`LinuxEntropyVsockPort`).
pub const ENTROPY_PORT: u32 = 1;
/// The GCS log port (`LinuxLogVsockPort`).
pub const LOG_PORT: u32 = 109;
/// Bytes of entropy per connection (`LinuxEntropyBytes`).
pub const ENTROPY_BYTES: usize = 512;

/// The running services.
pub struct HostPorts {
    tasks: Vec<JoinHandle<()>>,
    dialed: watch::Receiver<bool>,
    paths: Vec<PathBuf>,
}

impl std::fmt::Debug for HostPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostPorts")
            .field("paths", &self.paths)
            .finish()
    }
}

fn bind(path: &Path) -> Result<UnixListener> {
    UnixListener::bind(path).map_err(|e| Error::io(format!("listen on {}", path.display()), e))
}

/// Random bytes from the kernel.
fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

impl HostPorts {
    /// Listens on the entropy and log ports of backend socket `uds`; the log goes to `log`.
    pub fn listen(uds: &Path, log: &Path) -> Result<Self> {
        let entropy_path = UnixTransport::hybrid_path(uds, ENTROPY_PORT);
        let log_path = UnixTransport::hybrid_path(uds, LOG_PORT);
        let entropy = bind(&entropy_path)?;
        let logs = bind(&log_path)?;
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
        let (tx, dialed) = watch::channel(false);
        let tx_entropy = tx.clone();
        let entropy_task = tokio::spawn(async move {
            while let Ok((mut s, _)) = entropy.accept().await {
                tx_entropy.send_replace(true);
                match random_bytes(ENTROPY_BYTES) {
                    Ok(b) => {
                        if let Err(e) = s.write_all(&b).await {
                            tracing::debug!(error = %e, "entropy connection");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "no entropy for the guest"),
                }
            }
        });
        let log_task = tokio::spawn(async move {
            let file = tokio::fs::File::from_std(log_file);
            let file = std::sync::Arc::new(tokio::sync::Mutex::new(file));
            while let Ok((mut s, _)) = logs.accept().await {
                tx.send_replace(true);
                let file = file.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        use tokio::io::AsyncReadExt;
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let mut f = file.lock().await;
                                if let Err(e) = f.write_all(&buf[..n]).await {
                                    tracing::warn!(error = %e, "GCS log not written");
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        Ok(Self {
            tasks: vec![entropy_task, log_task],
            dialed,
            paths: vec![entropy_path, log_path],
        })
    }

    /// Resolves once the guest has dialed either port.
    pub async fn first_dial(&self) {
        let mut rx = self.dialed.clone();
        // An error means the tasks ended (closed): nothing more will come.
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Stops the services and removes their sockets.
    pub fn close(&self) {
        for t in &self.tasks {
            t.abort();
        }
        for p in &self.paths {
            if let Err(e) = std::fs::remove_file(p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %p.display(), error = %e, "socket not removed");
                }
            }
        }
    }
}

impl Drop for HostPorts {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn entropy_and_log_ports_serve_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let uds = dir.path().join("vsock.sock");
        let log = dir.path().join("gcs.log");
        let ports = HostPorts::listen(&uds, &log).unwrap();
        let mut e = tokio::net::UnixStream::connect(UnixTransport::hybrid_path(&uds, 1))
            .await
            .unwrap();
        let mut got = Vec::new();
        e.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), ENTROPY_BYTES);
        ports.first_dial().await;
        for part in ["{\"msg\":\"a\"}\n", "{\"msg\":\"b\"}\n"] {
            let mut l = tokio::net::UnixStream::connect(dir.path().join("vsock.sock_109"))
                .await
                .unwrap();
            l.write_all(part.as_bytes()).await.unwrap();
        }
        let want = "{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n";
        for _ in 0..100 {
            if std::fs::read_to_string(&log).unwrap() == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(std::fs::read_to_string(&log).unwrap(), want);
        ports.close();
        assert!(!uds.with_file_name("vsock.sock_1").exists());
    }
}

//! Stdio between containerd and a process (spec §1.6).
//!
//! containerd names the upstream ends in Create/Exec: FIFOs it created (Linux) or named
//! pipes it serves (Windows); an empty path means the stream is absent. The outputs are
//! opened when the task or exec is created (before Start), stdin when its writer shows up.
//! After the process exits the output relays get [`DRAIN_GRACE`] to finish, then they are
//! cut. CloseIO (or the end of upstream stdin) closes the process's stdin.
//!
//! A `binary://` URL as stdout starts a logging driver that takes the process's stdout and
//! stderr instead ([`crate::logdriver`]); such a process has no stdin, as in the
//! reference. Any other URL scheme is refused.

use std::sync::Mutex;
use std::time::Duration;

use hcs::cow::{OutputStream, StdinStream, Stdio};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::logdriver::{Driver, DriverUrl, STOP_TIMEOUT};
use crate::sys;

pub mod retry;

/// How long output relays may run after the process exited.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Whether a terminal with a stderr path is refused. containerd on Windows names no stderr
/// pipe for a terminal, and the reference refuses one. containerd's Unix FIFO sets (those
/// of CRI's container and exec IO) always name a stderr FIFO, also with a terminal, and its
/// runc shim leaves that FIFO unused; refusing it would fail every CRI container or exec
/// with `tty: true`. So on Unix the path is accepted and nothing is written to it.
pub const TERMINAL_REFUSES_STDERR: bool = cfg!(windows);

/// Refuses a terminal with a stderr path where containerd never sends one (Windows):
/// FailedPrecondition, as the reference.
pub fn check_terminal_stderr(terminal: bool, stderr: &str) -> Result<()> {
    if TERMINAL_REFUSES_STDERR && terminal && !stderr.is_empty() {
        return Err(Error::FailedPrecondition(
            "if using terminal, stderr must be empty".into(),
        ));
    }
    Ok(())
}

/// The upstream stdio of a task or exec, as containerd named it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoPaths {
    /// stdin path ("" = none).
    pub stdin: String,
    /// stdout path ("" = none).
    pub stdout: String,
    /// stderr path ("" = none; with a terminal, none on Windows and unused on Unix).
    pub stderr: String,
    /// The process has a terminal.
    pub terminal: bool,
    /// The task or exec id, a logging driver's `CONTAINER_ID`.
    pub id: String,
    /// containerd's namespace, a logging driver's `CONTAINER_NAMESPACE`.
    pub namespace: String,
    /// How long an output pipe whose server went away is dialled again (Windows, the
    /// runtime options' `io_retry_timeout_in_sec`; zero: forever). See [`retry`].
    pub retry_timeout: Duration,
}

impl IoPaths {
    /// Validates the paths: a terminal has no stderr on Windows
    /// ([`check_terminal_stderr`]); stdout is a path or a `binary://` URL (returned); stdin
    /// and stderr next to a path stdout must be paths too.
    pub fn validate(&self) -> Result<Option<DriverUrl>> {
        check_terminal_stderr(self.terminal, &self.stderr)?;
        let driver = DriverUrl::parse(&self.stdout)?;
        if driver.is_none() {
            for (name, p) in [("stdin", &self.stdin), ("stderr", &self.stderr)] {
                if !matches!(DriverUrl::parse(p), Ok(None)) {
                    return Err(Error::InvalidArgument(format!(
                        "stdio {name} {p:?} is a URL: only stdout may name a logging driver"
                    )));
                }
            }
        }
        Ok(driver)
    }
}

/// An upstream output: a FIFO, a named pipe, or a logging driver's stream.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;
/// An upstream input (stdin).
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// The upstream ends opened at create time.
pub struct Upstream {
    paths: IoPaths,
    stdout: Option<Writer>,
    stderr: Option<Writer>,
    driver: Option<Driver>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("paths", &self.paths)
            .finish()
    }
}

impl Upstream {
    /// Opens the upstream outputs now (stdin is opened by the relay), or starts the
    /// logging driver that stdout names.
    pub async fn open(paths: &IoPaths) -> Result<Self> {
        if let Some(url) = paths.validate()? {
            if !paths.stdin.is_empty() {
                tracing::warn!(stdin = %paths.stdin, "a process whose output goes to a logging driver has no stdin");
            }
            let (driver, stdout, stderr) =
                sys::start_log_driver(&url, &paths.id, &paths.namespace).await?;
            return Ok(Self {
                paths: paths.clone(),
                stdout: Some(stdout),
                // With a terminal there is one output stream.
                stderr: (!paths.terminal).then_some(stderr),
                driver: Some(driver),
            });
        }
        let stdout = match paths.stdout.as_str() {
            "" => None,
            p => Some(sys::open_output(p, paths.retry_timeout).await?),
        };
        // A terminal has one output stream; a stderr FIFO named with it stays unopened.
        let stderr = match paths.stderr.as_str() {
            _ if paths.terminal => None,
            "" => None,
            p => Some(sys::open_output(p, paths.retry_timeout).await?),
        };
        Ok(Self {
            paths: paths.clone(),
            stdout,
            stderr,
            driver: None,
        })
    }

    /// Which process pipes are needed: (stdin, stdout, stderr).
    pub fn wanted(&self) -> (bool, bool, bool) {
        (
            self.stdin_path().is_some(),
            self.stdout.is_some(),
            self.stderr.is_some(),
        )
    }

    /// The stdin to relay: none when a logging driver takes the output.
    fn stdin_path(&self) -> Option<&str> {
        Some(self.paths.stdin.as_str()).filter(|p| !p.is_empty() && self.driver.is_none())
    }

    /// The paths.
    pub fn paths(&self) -> &IoPaths {
        &self.paths
    }
}

/// The running copies between upstream and a process.
pub struct Relay {
    stdin_path: String,
    driver: tokio::sync::Mutex<Option<Driver>>,
    stdin_stop: Mutex<Option<oneshot::Sender<()>>>,
    stdin_task: Mutex<Option<JoinHandle<()>>>,
    outputs: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("stdin", &self.stdin_path)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn copy_out(mut from: OutputStream, mut to: Writer, what: &'static str) {
    if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
        tracing::debug!(error = %e, "{what} relay ended");
    }
    if let Err(e) = to.shutdown().await {
        tracing::debug!(error = %e, "closing upstream {what}");
    }
}

async fn copy_in(path: String, mut to: StdinStream, stop: oneshot::Receiver<()>) {
    let relay = async {
        let mut from: Reader = match sys::open_input(&path).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "opening upstream stdin");
                return;
            }
        };
        if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
            tracing::debug!(error = %e, "stdin relay ended");
        }
    };
    tokio::select! {
        _ = relay => {}
        _ = stop => {}
    }
    // EOF or CloseIO: the process's stdin is closed either way.
    if let Err(e) = to.shutdown().await {
        tracing::debug!(error = %e, "closing the process's stdin");
    }
}

impl Relay {
    /// Starts copying between `upstream` and the process's `stdio`.
    pub fn start(upstream: Upstream, stdio: Stdio) -> Self {
        let stdin_path = upstream.stdin_path().unwrap_or_default().to_owned();
        let mut outputs = Vec::new();
        if let (Some(from), Some(to)) = (stdio.stdout, upstream.stdout) {
            outputs.push(tokio::spawn(copy_out(from, to, "stdout")));
        }
        if let (Some(from), Some(to)) = (stdio.stderr, upstream.stderr) {
            outputs.push(tokio::spawn(copy_out(from, to, "stderr")));
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        let stdin_task = match stdio.stdin {
            Some(to) if !stdin_path.is_empty() => {
                Some(tokio::spawn(copy_in(stdin_path.clone(), to, stop_rx)))
            }
            _ => None,
        };
        Self {
            stdin_path,
            driver: tokio::sync::Mutex::new(upstream.driver),
            stdin_stop: Mutex::new(Some(stop_tx)),
            stdin_task: Mutex::new(stdin_task),
            outputs: tokio::sync::Mutex::new(outputs),
        }
    }

    /// CloseIO: stops the stdin relay and closes the process's stdin. Idempotent.
    pub fn close_stdin(&self) {
        if let Some(stop) = lock(&self.stdin_stop).take() {
            // The relay may be gone already (EOF); nothing else to stop then.
            let _ = stop.send(());
        }
    }

    /// After the process exited: lets the outputs drain for `grace`, then cuts them; stops
    /// the stdin relay; lets a logging driver finish (see [`crate::logdriver`]).
    pub async fn finish(&self, grace: Duration) {
        let outputs = std::mem::take(&mut *self.outputs.lock().await);
        let deadline = tokio::time::Instant::now() + grace;
        for mut h in outputs {
            let joined = match tokio::time::timeout_at(deadline, &mut h).await {
                Ok(joined) => joined,
                Err(_) => {
                    h.abort();
                    // An aborted copy drops its upstream writer when the task is reaped.
                    h.await
                }
            };
            // Cancelled is the abort above; a panicked copy lost output and says so.
            if let Err(e) = joined.as_ref() {
                if e.is_panic() {
                    tracing::warn!(error = %e, "an output relay panicked");
                }
            }
        }
        if let Some(driver) = self.driver.lock().await.take() {
            driver.stop(STOP_TIMEOUT).await;
        }
        self.close_stdin();
        if let Some(h) = lock(&self.stdin_task).take() {
            h.abort();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, DuplexStream};

    fn mkfifo(path: &std::path::Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    #[test]
    fn terminal_with_stderr_and_urls_are_refused() {
        let p = IoPaths {
            stderr: "/x".into(),
            terminal: true,
            ..Default::default()
        };
        if cfg!(windows) {
            assert!(matches!(p.validate(), Err(Error::FailedPrecondition(_))));
        } else {
            assert_eq!(p.validate().unwrap(), None);
        }
        let f = IoPaths {
            stdout: "file:///var/log/x".into(),
            ..Default::default()
        };
        assert!(matches!(f.validate(), Err(Error::InvalidArgument(m)) if m.contains("'binary'")));
        let e = IoPaths {
            stdout: "/fifo".into(),
            stderr: "binary:///usr/bin/logger".into(),
            ..Default::default()
        };
        assert!(matches!(e.validate(), Err(Error::InvalidArgument(m)) if m.contains("stderr")));
        let b = IoPaths {
            stdout: "binary:///usr/bin/logger?x=1".into(),
            stderr: "binary:///usr/bin/logger?x=1".into(),
            ..Default::default()
        };
        assert_eq!(
            b.validate().unwrap().unwrap().program,
            std::path::Path::new("/usr/bin/logger")
        );
    }

    /// A driver written as containerd's Linux convention has it: fd 3 and 4 in, fd 5
    /// closed when ready. It records its arguments, environment and both streams.
    #[tokio::test]
    async fn binary_logging_driver_gets_both_streams_and_exits() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let script = d.join("driver");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec 5>&-\necho \"$* $CONTAINER_ID $CONTAINER_NAMESPACE\" >{0}/args\ncat <&3 >{0}/out &\ncat <&4 >{0}/err\nwait\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let url = format!("binary://{}?--tag=t1&-v", script.display());
        let paths = IoPaths {
            stdin: "/ignored".into(),
            stdout: url.clone(),
            stderr: url,
            id: "c1".into(),
            namespace: "ns1".into(),
            ..Default::default()
        };
        let upstream = Upstream::open(&paths).await.unwrap();
        assert_eq!(upstream.wanted(), (false, true, true));
        let (proc_out, mut out_w) = tokio::io::duplex(64);
        let (proc_err, mut err_w) = tokio::io::duplex(64);
        let relay = Relay::start(
            upstream,
            Stdio {
                stdin: None,
                stdout: Some(Box::new(proc_out)),
                stderr: Some(Box::new(proc_err)),
            },
        );
        out_w.write_all(b"to stdout").await.unwrap();
        err_w.write_all(b"to stderr").await.unwrap();
        drop((out_w, err_w));
        relay.finish(DRAIN_GRACE).await;
        // finish() returns once the driver has exited: its files are complete.
        let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
        assert_eq!(read("out"), "to stdout");
        assert_eq!(read("err"), "to stderr");
        assert_eq!(read("args"), "--tag t1 -v c1 ns1\n");
    }

    #[tokio::test]
    async fn a_driver_that_cannot_start_is_an_error() {
        let paths = IoPaths {
            stdout: "binary:///nonexistent/driver".into(),
            ..Default::default()
        };
        let e = Upstream::open(&paths).await.unwrap_err();
        assert!(e.to_string().contains("/nonexistent/driver"), "{e}");
    }

    #[tokio::test]
    async fn output_and_stdin_flow_through_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let (i, o) = (dir.path().join("in"), dir.path().join("out"));
        mkfifo(&i);
        mkfifo(&o);
        let paths = IoPaths {
            stdin: i.display().to_string(),
            stdout: o.display().to_string(),
            ..Default::default()
        };
        // containerd's reader of stdout, opened before the shim (as ctr does).
        let out_reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&o)
            .unwrap();
        let upstream = Upstream::open(&paths).await.unwrap();
        let (proc_out, mut proc_out_w): (DuplexStream, DuplexStream) = tokio::io::duplex(64);
        let (mut proc_in_r, proc_in): (DuplexStream, DuplexStream) = tokio::io::duplex(64);
        let relay = Relay::start(
            upstream,
            Stdio {
                stdin: Some(Box::new(proc_in)),
                stdout: Some(Box::new(proc_out)),
                stderr: None,
            },
        );
        // The writer of stdin (containerd's side).
        let in_path = i.clone();
        let writer = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(in_path)
                .unwrap();
            w.write_all(b"hello").unwrap();
        });
        let mut got = [0u8; 5];
        proc_in_r.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        writer.await.unwrap();
        // The writer closed: the process sees EOF on stdin.
        let mut rest = Vec::new();
        proc_in_r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());

        proc_out_w.write_all(b"out!").await.unwrap();
        drop(proc_out_w);
        relay.finish(DRAIN_GRACE).await;
        let mut reader = tokio::net::unix::pipe::Receiver::from_file(out_reader).unwrap();
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"out!");
    }

    #[tokio::test]
    async fn close_io_closes_stdin_without_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let i = dir.path().join("in");
        mkfifo(&i);
        let paths = IoPaths {
            stdin: i.display().to_string(),
            ..Default::default()
        };
        let upstream = Upstream::open(&paths).await.unwrap();
        let (mut proc_in_r, proc_in) = tokio::io::duplex(64);
        let relay = Relay::start(
            upstream,
            Stdio {
                stdin: Some(Box::new(proc_in)),
                ..Default::default()
            },
        );
        relay.close_stdin();
        relay.close_stdin();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), proc_in_r.read_to_end(&mut rest))
            .await
            .expect("stdin closed")
            .unwrap();
    }

    use std::os::unix::fs::OpenOptionsExt;
}

//! Linux/Unix: FIFOs created by containerd, Unix sockets, fd-level handshakes.

use std::os::unix::fs::OpenOptionsExt;

use crate::error::{Error, Result};
use crate::logdriver::{Driver, DriverUrl};
use crate::stdio::{Reader, Writer};

/// Opens an upstream output FIFO for writing. Opened read-write, so the open never waits
/// for a reader and a reader that goes away (containerd restarting) does not break the
/// stream: output waits in the pipe for the next reader (so there is nothing to redial,
/// and `_retry_timeout`, Windows' redial budget, is not used).
pub async fn open_output(path: &str, _retry_timeout: std::time::Duration) -> Result<Writer> {
    let sender = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(path)
        .map_err(|e| Error::io(format!("open {path}"), e))?;
    Ok(Box::new(sender))
}

/// Opens the upstream stdin FIFO for reading, without waiting for containerd's writer:
/// the open is non-blocking, so no thread is held (`tokio::fs` would park a blocking-pool
/// thread in open(2) and then in every read(2) for the life of the stream). The reader
/// waits for readiness before it reads, and a FIFO reports hang-up only once a writer has
/// come and gone, so the stream sees the writer's data and then EOF, as a blocking open
/// would.
pub async fn open_input(path: &str) -> Result<Reader> {
    let receiver = tokio::net::unix::pipe::OpenOptions::new()
        .open_receiver(path)
        .map_err(|e| Error::io(format!("open {path}"), e))?;
    Ok(Box::new(receiver))
}

/// Puts a spawned shim server in its own process group, so signals meant for containerd's
/// group do not reach it.
pub fn detach(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// Binds the ttrpc server on a `unix://` address; a stale socket file (nobody answers) is
/// replaced, a live one is an error.
pub fn bind(address: &str) -> Result<containerd_shim_protos::ttrpc::r#async::Server> {
    use containerd_shim_protos::ttrpc::r#async::{transport::Listener, Server};
    let path = crate::address::socket_path(address);
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    }
    let listener = match std::os::unix::net::UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::AlreadyExists(format!(
                    "a shim already serves {address}"
                )));
            }
            std::fs::remove_file(path).map_err(|e| Error::io(format!("remove stale {path}"), e))?;
            std::os::unix::net::UnixListener::bind(path)
                .map_err(|e| Error::io(format!("listen on {path}"), e))?
        }
        Err(e) => return Err(Error::io(format!("listen on {path}"), e)),
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("set the listener non-blocking", e))?;
    let listener = Listener::try_from(listener).map_err(|e| Error::io("ttrpc listener", e))?;
    Ok(Server::new().add_listener(listener))
}

/// Removes the socket file of `address` (at exit).
pub fn unbind(address: &str) {
    let path = crate::address::socket_path(address);
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path, error = %e, "removing the shim socket");
        }
    }
}

/// Closes stdout (it becomes /dev/null): `start` reads EOF and knows we serve.
pub fn close_stdout() -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open /dev/null", e))?;
    nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), libc::STDOUT_FILENO)
        .map_err(|e| Error::io("close stdout", e.into()))?;
    Ok(())
}

/// Where the shim logs: containerd's `log` FIFO in the bundle (containerd copies it into
/// its own log), opened read-write and non-blocking so that logging never blocks or
/// breaks when containerd is not reading; lines are dropped then. `None` (stderr) when
/// there is none. `namespace`, `id` and `debug_type` name the Windows log pipe.
pub fn log_writer(
    bundle: &std::path::Path,
    _namespace: &str,
    _id: &str,
    _debug_type: Option<crate::options::DebugType>,
) -> Result<Option<tracing_subscriber::fmt::writer::BoxMakeWriter>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(bundle.join("log"))
        .ok();
    Ok(file.map(|f| tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Arc::new(f))))
}

/// Whether process `pid` exists and has not exited (a zombie waiting for its parent to
/// reap it counts as gone).
pub fn process_alive(pid: u32) -> bool {
    let exists = i32::try_from(pid).is_ok_and(|p| {
        p > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok()
    });
    if !exists {
        return false;
    }
    // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Kills process `pid` (SIGKILL) and waits up to `limit` for it to be gone.
pub fn kill_process(pid: u32, limit: std::time::Duration) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    let pid_t = nix::unistd::Pid::from_raw(p);
    if nix::sys::signal::kill(pid_t, nix::sys::signal::Signal::SIGKILL).is_err() {
        return !process_alive(pid);
    }
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        // Reap it if it is our child (it is not, normally: containerd's).
        let _ = nix::sys::wait::waitpid(pid_t, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Starts a binary logging driver with containerd's Linux convention: the process's stdout
/// on fd 3, its stderr on fd 4, and fd 5 the write end of a readiness pipe the driver
/// closes once it is ready (waited for at most `START_TIMEOUT`). Returns the driver and
/// the write ends of its stdout and stderr.
pub async fn start_log_driver(
    url: &DriverUrl,
    id: &str,
    namespace: &str,
) -> Result<(Driver, Writer, Writer)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use tokio::io::AsyncReadExt;
    use tokio::net::unix::pipe;

    let what = || format!("the logging driver {}", url.program.display());
    // Blocking pipes (the driver's ends are plain fds to it), closed on exec in the shim.
    let new_pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io(format!("create a pipe for {}", what()), e.into()))
    };
    let (out_r, out_w) = new_pipe()?;
    let (err_r, err_w) = new_pipe()?;
    let (ready_r, ready_w) = new_pipe()?;
    let child_fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];

    let mut cmd = std::process::Command::new(&url.program);
    cmd.args(&url.args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl(2) and
    // dup2(2), which are async-signal-safe; it allocates nothing and touches no locks. The
    // fds it reads were open in the parent at fork time (they are dropped only after
    // spawn returns).
    unsafe {
        cmd.pre_exec(move || place_fds(&child_fds));
    }
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::io(format!("start {}", what()), e))?;
    // The driver holds its own copies now; ours would keep its inputs from ever ending.
    drop((out_r, err_r, ready_w));

    let ready = async {
        let mut r = pipe::Receiver::from_owned_fd(ready_r)?;
        let mut byte = [0u8; 1];
        r.read(&mut byte).await.map(drop)
    };
    let driver = Driver::started(child, &url.program, ready).await?;
    let writer = |fd| -> Result<Writer> {
        Ok(Box::new(pipe::Sender::from_owned_fd(fd).map_err(|e| {
            Error::io(format!("stream to {}", what()), e)
        })?))
    };
    Ok((driver, writer(out_w)?, writer(err_w)?))
}

/// In the child before exec: puts `fds` on 3, 4, 5, ... First every fd is copied above
/// the target range, so no dup2 overwrites a source still to be placed.
fn place_fds(fds: &[std::os::fd::RawFd]) -> std::io::Result<()> {
    const HIGH: libc::c_int = 64;
    let mut high = [0 as libc::c_int; 8];
    if fds.len() > high.len() {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    for (i, &fd) in fds.iter().enumerate() {
        // SAFETY: fcntl on an fd number; a bad fd is an error return, nothing else.
        let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH) };
        if h < 0 {
            return Err(std::io::Error::last_os_error());
        }
        high[i] = h;
    }
    for (i, &h) in high.iter().take(fds.len()).enumerate() {
        // SAFETY: dup2 onto 3 + i; the copy there is not close-on-exec, the high one is.
        if unsafe { libc::dup2(h, 3 + i as libc::c_int) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

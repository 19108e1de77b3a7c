//! Process stdio: pipes and ptys on the process side, dialed connections on the host side, and
//! the relays between them (spec §6).
//!
//! Half-close protocol: when the host half-closes stdin the relay closes the process's stdin;
//! when the process closes an output stream the relay shuts down the write side of the
//! connection, waits for the host's close (one read that must see EOF) and closes. When the
//! process exits, stdin's connection is shut down for reading so a blocked copy unblocks.
//!
//! On a virtio-vsock host served by `vhost-device-vsock` (the Linux VM sandbox) a write
//! shutdown never reaches the host: the backend acts only on a shutdown of both directions.
//! With [`set_full_close`] on, the closing half therefore shuts both directions down, which
//! the backend turns into EOF on the host's socket once it has delivered every byte.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, PathContext, Result};
use crate::transport::Transport;

mod tee;
pub use tee::{TeeLog, Teed};

/// How much recent output is replayed after an init process's output connection is re-dialed.
const REPLAY_BYTES: usize = 128 * 1024;
/// Pause between re-dials of a broken output connection.
const REDIAL_INTERVAL: Duration = Duration::from_millis(100);

/// Re-dialing of an init process's output connections (spec §6 "Reconnect"): when a write
/// fails with EPIPE, ECONNRESET or ENOTCONN, the same port is dialed again every 100 ms until
/// the container is torn down (`stop`), and the last 128 KiB written are replayed.
#[derive(Clone)]
pub struct Reconnect {
    /// Where to dial.
    pub transport: Transport,
    /// stdout port.
    pub stdout_port: u32,
    /// stderr port.
    pub stderr_port: u32,
    /// Set when the container is torn down.
    pub stop: Arc<AtomicBool>,
}

/// Size of one copy when splice is not available.
const COPY_BUF: usize = 128 * 1024;
/// Bytes moved per splice call.
const SPLICE_LEN: usize = 1 << 20;
/// Pipe capacity asked for (the kernel caps it at `/proc/sys/fs/pipe-max-size`).
const PIPE_SIZE: usize = 1 << 20;

/// Whether output connections end with a shutdown of both directions (see the module docs).
static FULL_CLOSE: AtomicBool = AtomicBool::new(false);
/// How often, and how far apart, the full shutdown is repeated: the backend ignores it
/// while it still holds undelivered bytes for the host, and the guest cannot see whether
/// it was taken (the packets of later repeats are dropped once it has been).
const FULL_CLOSE_REPEATS: u32 = 50;
const FULL_CLOSE_INTERVAL: Duration = Duration::from_millis(100);

/// Makes output connections end with a full shutdown instead of waiting for the host's
/// close after a write shutdown. Set once at startup on a virtio-vsock transport.
pub fn set_full_close(on: bool) {
    FULL_CLOSE.store(on, Ordering::Relaxed);
}

/// The closing half of the protocol after the last byte was written (the write side is
/// already shut down).
fn finish_output(conn: &mut UnixStream) {
    if FULL_CLOSE.load(Ordering::Relaxed) {
        for _ in 0..FULL_CLOSE_REPEATS {
            if let Err(e) = conn.shutdown(std::net::Shutdown::Both) {
                tracing::debug!(error = %e, "output connection shutdown");
                return;
            }
            std::thread::sleep(FULL_CLOSE_INTERVAL);
        }
        return;
    }
    // Wait for the host to finish reading and close its end.
    let mut b = [0u8; 1];
    let _ = conn.read(&mut b);
}

/// The host-side connections of one process, each present only if its `CreateStd*Pipe` was
/// set. Dialed in the order stdin, stdout, stderr.
#[derive(Default)]
pub struct ConnectionSet {
    /// Host → process.
    pub stdin: Option<UnixStream>,
    /// Process → host.
    pub stdout: Option<UnixStream>,
    /// Process → host (unused with a tty).
    pub stderr: Option<UnixStream>,
}

/// Creates a pipe (read end, write end), both close-on-exec, with a large capacity.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("pipe2", io::Error::from(e)))?;
    // A refusal (the system's pipe-max-size is lower) only keeps the default capacity: the
    // relays work either way, with more wake-ups.
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(&w, PIPE_SIZE) {
        tracing::debug!(error = %e, "pipe capacity stays at the default");
    }
    Ok((r, w))
}

/// The process-side ends kept by the GCS for a process started with pipes.
#[derive(Default)]
pub struct PipeEnds {
    /// Write end of the process's stdin.
    pub stdin: Option<OwnedFd>,
    /// Read end of the process's stdout.
    pub stdout: Option<OwnedFd>,
    /// Read end of the process's stderr.
    pub stderr: Option<OwnedFd>,
}

/// The process-side stdio of a process: pipes, or the master of its pty.
pub enum ProcessIo {
    /// Three pipes.
    Pipes(PipeEnds),
    /// The pty master (shared with ResizeConsole).
    Tty(Arc<OwnedFd>),
    /// Nothing to relay (external process that got the sockets directly).
    None,
}

/// Tracks the output relays of a process so exit can wait until they are drained.
#[derive(Default)]
pub struct Drain {
    pending: Mutex<usize>,
    done: Condvar,
}

impl Drain {
    fn add(&self) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn finish(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *p = p.saturating_sub(1);
        self.done.notify_all();
    }

    /// Blocks until every output relay has copied all data and shut its connection.
    pub fn wait(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while *p > 0 {
            p = self.done.wait(p).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The running relays of one process.
pub struct Relays {
    /// Output relays still copying.
    pub drain: Arc<Drain>,
    /// Clone of the stdin connection, shut for reading when the process exits.
    stdin_conn: Option<UnixStream>,
    threads: Vec<JoinHandle<()>>,
}

impl Relays {
    /// No relays.
    pub fn none() -> Self {
        Relays {
            drain: Arc::new(Drain::default()),
            stdin_conn: None,
            threads: Vec::new(),
        }
    }

    /// Called when the process has exited: unblocks the stdin copy.
    pub fn close_stdin(&mut self) {
        if let Some(c) = self.stdin_conn.take() {
            let _ = c.shutdown(std::net::Shutdown::Read);
        }
    }

    /// Forgets the relay threads (they end on their own once their streams close).
    pub fn detach(&mut self) {
        self.threads.clear();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(128 * 1024)
        .spawn(f)
        .map_err(|e| Error::io("spawn relay thread", e))
}

/// Starts relaying between a process's pipes and the host connections. Pipe ends without a
/// connection are closed, so the process sees EOF on stdin or EPIPE on output.
/// `tee`, for a container's init, gets a copy of the output.
pub fn relay_pipes(
    ends: PipeEnds,
    conns: ConnectionSet,
    reconnect: Option<Reconnect>,
    tee: Option<Arc<TeeLog>>,
) -> Result<Relays> {
    let mut relays = Relays::none();
    if let (Some(w), Some(conn)) = (ends.stdin, conns.stdin) {
        relays.stdin_conn = conn.try_clone().ok();
        relays.threads.push(spawn("stdin-relay", move || {
            let mut w = File::from(w);
            // Not splice: splicing from a socket into a pipe holds the pipe's lock while
            // it waits for data, so a process exiting with stdin open (nobody writing)
            // would hang in the kernel closing that pipe.
            let _ = copy_read_write(&conn, &mut w, 0);
            // Dropping `w` closes the process's stdin: it reads EOF.
        })?);
    }
    for (end, conn, name, port) in [
        (
            ends.stdout,
            conns.stdout,
            "stdout-relay",
            reconnect.as_ref().map(|r| r.stdout_port),
        ),
        (
            ends.stderr,
            conns.stderr,
            "stderr-relay",
            reconnect.as_ref().map(|r| r.stderr_port),
        ),
    ] {
        if let (Some(r), Some(conn)) = (end, conn) {
            let drain = Arc::clone(&relays.drain);
            drain.add();
            let redial = reconnect.clone().zip(port);
            let tee = tee.clone();
            relays.threads.push(spawn(name, move || {
                let r = File::from(r);
                let tee = tee.as_deref();
                match redial {
                    Some((rc, port)) => reconnecting_output_relay(r, conn, &rc, port, &drain, tee),
                    None => output_relay(&r, conn, &drain, tee),
                }
            })?);
        }
    }
    Ok(relays)
}

/// Starts relaying between a pty master and the host connections (stderr is not relayed: the
/// pty merges it into stdout); `tee`, for a container's init, gets a copy of the output.
pub fn relay_tty(
    master: Arc<OwnedFd>,
    conns: ConnectionSet,
    tee: Option<Arc<TeeLog>>,
) -> Result<Relays> {
    let mut relays = Relays::none();
    if let Some(conn) = conns.stdin {
        relays.stdin_conn = conn.try_clone().ok();
        let m = dup(&master)?;
        relays.threads.push(spawn("tty-stdin-relay", move || {
            let mut m = File::from(m);
            let _ = copy(&conn, &mut m);
        })?);
    }
    if let Some(conn) = conns.stdout {
        let m = dup(&master)?;
        let drain = Arc::clone(&relays.drain);
        drain.add();
        relays.threads.push(spawn("tty-stdout-relay", move || {
            let m = File::from(m);
            output_relay(&m, conn, &drain, tee.as_deref());
        })?);
    }
    Ok(relays)
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone().map_err(|e| Error::io("dup", e))
}

/// Copies process output to the host, then runs the closing half of the protocol.
fn output_relay(src: &File, mut conn: UnixStream, drain: &Drain, tee: Option<&TeeLog>) {
    let copied = match tee {
        // No splice: the data passes through here to reach the log too.
        Some(log) => copy_read_write(
            src,
            &mut Teed {
                conn: &mut conn,
                log,
            },
            0,
        ),
        None => copy(src, &mut conn),
    };
    if let Err(e) = copied {
        tracing::debug!(error = %e, "output relay ended with an error");
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    drain.finish();
    finish_output(&mut conn);
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPIPE) | Some(libc::ECONNRESET) | Some(libc::ENOTCONN)
    )
}

/// The last [`REPLAY_BYTES`] bytes written.
#[derive(Default)]
struct Replay {
    buf: std::collections::VecDeque<u8>,
}

impl Replay {
    fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(REPLAY_BYTES)..];
        let excess = (self.buf.len() + data.len()).saturating_sub(REPLAY_BYTES);
        self.buf.drain(..excess);
        self.buf.extend(data);
    }

    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let (a, b) = self.buf.as_slices();
        w.write_all(a)?;
        w.write_all(b)
    }
}

/// Re-dials `port` until it answers or the container is torn down.
fn redial(rc: &Reconnect, port: u32) -> Option<UnixStream> {
    loop {
        if rc.stop.load(Ordering::Acquire) {
            return None;
        }
        match rc.transport.dial(port) {
            Ok(c) => return Some(c),
            Err(e) => tracing::debug!(port, error = %e, "stdio re-dial failed"),
        }
        std::thread::sleep(REDIAL_INTERVAL);
    }
}

/// An init process's output relay: read/write (so the replay buffer sees the data), and
/// re-dial on a broken connection.
fn reconnecting_output_relay(
    mut src: File,
    mut conn: UnixStream,
    rc: &Reconnect,
    port: u32,
    drain: &Drain,
    tee: Option<&TeeLog>,
) {
    let mut replay = Replay::default();
    let mut buf = vec![0u8; COPY_BUF];
    'copy: loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        replay.push(&buf[..n]);
        if let Some(log) = tee {
            log.append(&buf[..n]);
        }
        match conn.write_all(&buf[..n]) {
            Ok(()) => {}
            Err(e) if is_disconnect(&e) => loop {
                let Some(mut c) = redial(rc, port) else {
                    break 'copy;
                };
                tracing::info!(port, "stdio connection re-dialed; replaying recent output");
                if replay.write_to(&mut c).is_ok() {
                    conn = c;
                    break;
                }
            },
            Err(_) => break,
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    drain.finish();
    finish_output(&mut conn);
}

/// Copies until EOF, with splice when one side is a pipe, read/write otherwise. A pty's EIO
/// (all slaves closed) counts as EOF.
pub fn copy<R: AsFd, W: AsFd + Write>(src: R, dst: &mut W) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        match nix::fcntl::splice(
            src.as_fd(),
            None,
            dst.as_fd(),
            None,
            SPLICE_LEN,
            nix::fcntl::SpliceFFlags::SPLICE_F_MOVE,
        ) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EINVAL) if total == 0 => break,
            Err(nix::errno::Errno::EIO) => return Ok(total),
            Err(e) => return Err(e.into()),
        }
    }
    copy_read_write(src, dst, total)
}

/// Copies until EOF with read/write, adding to `total` bytes already copied.
pub fn copy_read_write<R: AsFd, W: Write>(src: R, dst: &mut W, mut total: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match rustix::io::read(&src, &mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            // A pty master whose slave side is closed.
            Err(rustix::io::Errno::IO) => return Ok(total),
            Err(e) => return Err(e.into()),
        };
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Listens on a console socket for the pty master runc sends (`--console-socket`).
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds `path`.
    pub fn bind(path: &Path) -> Result<Self> {
        let listener = UnixListener::bind(path).with_path("bind console socket", path)?;
        Ok(ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        })
    }

    /// The socket path to give runc.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receives the master fd. Call only after runc succeeded: it has connected by then.
    pub fn receive(self) -> Result<OwnedFd> {
        self.listener
            .set_nonblocking(true)
            .with_path("console socket", &self.path)?;
        let (conn, _) = self
            .listener
            .accept()
            .with_path("accept console socket", &self.path)?;
        conn.set_nonblocking(false)
            .with_path("console socket", &self.path)?;
        let fd = recv_fd(&conn).with_path("receive pty master from", &self.path)?;
        let _ = std::fs::remove_file(&self.path);
        Ok(fd)
    }
}

/// Receives one file descriptor sent with SCM_RIGHTS (any others sent with it are closed).
fn recv_fd(conn: &UnixStream) -> io::Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        conn,
        &mut [io::IoSliceMut::new(&mut buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut got: Option<OwnedFd> = None;
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for fd in fds {
                got.get_or_insert(fd);
            }
        }
    }
    got.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no file descriptor received"))
}

/// Sets the window size of a pty.
pub fn resize(master: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master, ws).map_err(|e| Error::io("ioctl(TIOCSWINSZ)", e.into()))
}

/// Opens a new pty for an external process: (master, slave), slave mode 0600 owned by root.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::OpenptFlags;
    let pty_err = |what: &'static str| move |e: rustix::io::Errno| Error::io(what, e.into());
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(pty_err("open /dev/ptmx"))?;
    rustix::pty::grantpt(&master).map_err(pty_err("grantpt"))?;
    rustix::pty::unlockpt(&master).map_err(pty_err("unlockpt"))?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(pty_err("ptsname"))?;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&path)
        .with_path("open pty slave", &path)?;
    // The terminal is the process's alone: a mode or owner left as devpts made them would
    // let other users of the guest read it.
    slave
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_path("chmod pty slave", &path)?;
    std::os::unix::fs::fchown(&slave, Some(0), Some(0)).with_path("chown pty slave", &path)?;
    Ok((master, OwnedFd::from(slave)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_moves_everything_through_a_pipe_and_a_socket() {
        let (r, w) = pipe().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            let mut w = File::from(w);
            let data = vec![7u8; 3 << 20];
            w.write_all(&data).unwrap();
        });
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            b.read_to_end(&mut out).unwrap();
            out
        });
        let mut a2 = a;
        let n = copy(File::from(r), &mut a2).unwrap();
        drop(a2);
        writer.join().unwrap();
        let out = reader.join().unwrap();
        assert_eq!(n, 3 << 20);
        assert_eq!(out.len(), 3 << 20);
        assert!(out.iter().all(|b| *b == 7));
    }

    #[test]
    fn replay_keeps_the_last_128k() {
        let mut r = Replay::default();
        r.push(&vec![1u8; 100 * 1024]);
        r.push(&vec![2u8; 100 * 1024]);
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        assert_eq!(out.len(), REPLAY_BYTES);
        assert_eq!(out[REPLAY_BYTES - 1], 2);
        assert_eq!(out[0], 1);
        r.push(&vec![3u8; 300 * 1024]);
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        assert!(out.len() == REPLAY_BYTES && out.iter().all(|b| *b == 3));
    }

    #[test]
    fn output_relay_half_closes_and_drains() {
        let (r, w) = pipe().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let relays = relay_pipes(
            PipeEnds {
                stdout: Some(r),
                ..Default::default()
            },
            ConnectionSet {
                stdout: Some(a),
                ..Default::default()
            },
            None,
            None,
        )
        .unwrap();
        File::from(w).write_all(b"hello").unwrap();
        let mut out = Vec::new();
        b.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        relays.drain.wait();
    }
}

//! `vsockexec [-r] [-i port] [-o port] [-e port] prog args…` (ext4-uvm.md §5.4).
//!
//! * **Default mode**: dial the host for each named port (a port named twice shares one
//!   socket), put the sockets on stdin, stdout and stderr, and exec the program.
//! * **Relay mode** (`-r`): the program's stdout and stderr go into a pipe that this process
//!   forwards to one host port (stdout's, else stderr's). A lost connection is re-dialled
//!   every 100 ms, so the host going away never blocks or kills the program (the GCS, whose
//!   death would panic PID 1). While disconnected the most recent [`RELAY_BACKLOG`] bytes
//!   are kept and sent on reconnect; older output is dropped rather than blocking the
//!   program. stdin is `/dev/null` in this mode.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::vsock::Dialer;

/// Pause between re-dials in relay mode.
pub const REDIAL: Duration = Duration::from_millis(100);
/// Bytes of output kept while the relay is disconnected.
pub const RELAY_BACKLOG: usize = 64 * 1024;

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `-r`: relay stdout/stderr through a re-dialling pipe.
    pub relay: bool,
    /// `-i`: the stdin port.
    pub stdin: Option<u32>,
    /// `-o`: the stdout port.
    pub stdout: Option<u32>,
    /// `-e`: the stderr port.
    pub stderr: Option<u32>,
    /// The program and its arguments.
    pub argv: Vec<String>,
}

const USAGE: &str = "vsockexec [-r] [-i port] [-o port] [-e port] prog args...";

/// Parses the arguments after the program name. Options end at the first word that is not
/// one (or after `--`).
pub fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let slot = match a {
            "-r" => {
                o.relay = true;
                i += 1;
                continue;
            }
            "--" => {
                i += 1;
                break;
            }
            "-i" => &mut o.stdin,
            "-o" => &mut o.stdout,
            "-e" => &mut o.stderr,
            _ if a.starts_with('-') => {
                return Err(Error::Usage(format!("unknown option {a}: {USAGE}")))
            }
            _ => break,
        };
        let v = args
            .get(i + 1)
            .ok_or_else(|| Error::Usage(format!("{a} needs a port: {USAGE}")))?;
        *slot = Some(
            v.parse()
                .map_err(|_| Error::Usage(format!("{a}: bad port {v:?}")))?,
        );
        i += 2;
    }
    o.argv = args[i..].to_vec();
    if o.argv.is_empty() {
        return Err(Error::Usage(format!("no program given: {USAGE}")));
    }
    if o.relay && o.stdout.is_none() && o.stderr.is_none() {
        return Err(Error::Usage("-r needs -o or -e".into()));
    }
    Ok(o)
}

/// Dials the ports of the default mode in stdin, stdout, stderr order; a port named again
/// reuses the first socket. Returns the fds for 0, 1 and 2 (`None`: left as it is).
pub fn connect_stdio(o: &Options, dialer: &dyn Dialer) -> Result<[Option<OwnedFd>; 3]> {
    let ports = [o.stdin, o.stdout, o.stderr];
    let mut fds: [Option<OwnedFd>; 3] = [None, None, None];
    for (i, port) in ports.iter().enumerate() {
        let Some(port) = *port else { continue };
        let earlier = (0..i).find(|&j| ports[j] == Some(port));
        fds[i] = Some(match earlier.and_then(|j| fds[j].as_ref()) {
            Some(fd) => fd.try_clone().map_err(|e| Error::io("dup", e))?,
            None => dialer
                .dial(port)
                .map_err(|e| Error::io(format!("connect to host port {port}"), e))?,
        });
    }
    Ok(fds)
}

/// The default mode: connect, dup onto 0/1/2, exec. Returns only on failure.
pub fn exec(o: &Options, dialer: &dyn Dialer) -> Error {
    let fds = match connect_stdio(o, dialer) {
        Ok(f) => f,
        Err(e) => return e,
    };
    for (target, fd) in fds.iter().enumerate() {
        if let Some(fd) = fd {
            // SAFETY: dup2(2) onto a standard fd; `fd` is open for the call.
            if unsafe { libc::dup2(fd.as_raw_fd(), target as i32) } < 0 {
                return Error::last_os("dup2");
            }
        }
    }
    drop(fds);
    let argv: std::result::Result<Vec<CString>, _> =
        o.argv.iter().map(|a| CString::new(a.as_bytes())).collect();
    let Ok(argv) = argv else {
        return Error::Usage("an argument contains a NUL byte".into());
    };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: signal(2) resets SIGPIPE (ignored by the Rust runtime) so the program gets
    // the default disposition; execvp(3) gets NUL-terminated strings that outlive the call.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execvp(ptrs[0], ptrs.as_ptr());
    }
    Error::last_os(format!("exec {}", o.argv[0]))
}

/// Relay mode: runs the program with its output piped and forwards it to the host,
/// re-dialling as needed. Returns the program's exit code (128 + signal when killed).
pub fn relay(o: &Options, dialer: &dyn Dialer) -> Result<i32> {
    let port = o
        .stdout
        .or(o.stderr)
        .ok_or_else(|| Error::Usage("-r needs -o or -e".into()))?;
    let (reader, writer) = crate::sys::pipe().map_err(|e| Error::io("pipe", e))?;
    let mut child = Command::new(&o.argv[0])
        .args(&o.argv[1..])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(|e| Error::io("dup", e))?)
        .stderr(writer)
        .spawn()
        .map_err(|e| Error::io(format!("start {}", o.argv[0]), e))?;
    let mut relay = Relay::new(dialer, port);
    relay.run(File::from(reader));
    let status = child.wait().map_err(|e| Error::io("wait", e))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The forwarding half of relay mode.
pub struct Relay<'a> {
    dialer: &'a dyn Dialer,
    port: u32,
    conn: Option<File>,
    backlog: Vec<u8>,
    next_dial: Instant,
}

impl<'a> Relay<'a> {
    /// A relay to host `port`; it dials on first use.
    pub fn new(dialer: &'a dyn Dialer, port: u32) -> Self {
        Self {
            dialer,
            port,
            conn: None,
            backlog: Vec::new(),
            next_dial: Instant::now(),
        }
    }

    /// Forwards everything read from `src` until it ends, then makes a last attempt to
    /// deliver what is left.
    pub fn run(&mut self, mut src: impl Read + AsRawFd) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            self.try_connect();
            let timeout = if self.conn.is_some() {
                -1
            } else {
                REDIAL.as_millis() as i32
            };
            let mut pfd = libc::pollfd {
                fd: src.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, timeout) };
            if n == 0
                || (n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted)
            {
                continue;
            }
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.send(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if !self.backlog.is_empty() {
            self.next_dial = Instant::now();
            self.try_connect();
        }
    }

    fn try_connect(&mut self) {
        if self.conn.is_some() || Instant::now() < self.next_dial {
            return;
        }
        match self.dialer.dial(self.port) {
            Ok(fd) => {
                let mut conn = File::from(fd);
                if conn.write_all(&self.backlog).is_ok() {
                    self.backlog.clear();
                    self.conn = Some(conn);
                } else {
                    self.next_dial = Instant::now() + REDIAL;
                }
            }
            Err(_) => self.next_dial = Instant::now() + REDIAL,
        }
    }

    fn send(&mut self, data: &[u8]) {
        if let Some(conn) = &mut self.conn {
            if conn.write_all(data).is_ok() {
                return;
            }
            self.conn = None;
            self.next_dial = Instant::now();
        }
        self.backlog.extend_from_slice(data);
        let excess = self.backlog.len().saturating_sub(RELAY_BACKLOG);
        self.backlog.drain(..excess);
    }

    /// Bytes waiting for a connection.
    pub fn backlog(&self) -> &[u8] {
        &self.backlog
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsock::UnixDir;
    use std::os::unix::net::UnixListener;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_the_reference_command_lines() {
        let o = parse(&args("-e 109 /bin/gcs -v4 -log-format json")).unwrap();
        assert_eq!(o.stderr, Some(109));
        assert!(!o.relay && o.stdout.is_none());
        assert_eq!(o.argv, args("/bin/gcs -v4 -log-format json"));
        let o = parse(&args("-r -o 109 -e 109 /bin/gcs")).unwrap();
        assert!(o.relay);
        assert_eq!((o.stdout, o.stderr), (Some(109), Some(109)));
        assert_eq!(parse(&args("-- -x")).unwrap().argv, args("-x"));
    }

    #[test]
    fn rejects_bad_command_lines() {
        for bad in ["", "-e", "-e x prog", "-q prog", "-i 1", "-r prog"] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn repeated_ports_share_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let l = UnixListener::bind(dir.path().join("109.sock")).unwrap();
        let _l2 = UnixListener::bind(dir.path().join("5.sock")).unwrap();
        let o = parse(&args("-i 5 -o 109 -e 109 prog")).unwrap();
        let fds = connect_stdio(&o, &UnixDir(dir.path().into())).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        l.set_nonblocking(true).unwrap();
        assert!(l.accept().is_err(), "109 was dialled twice");
        let [Some(_i), Some(out), Some(err)] = fds else {
            panic!("missing fds")
        };
        File::from(out).write_all(b"o").unwrap();
        File::from(err).write_all(b"e").unwrap();
        let mut got = [0u8; 2];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"oe");
    }

    #[test]
    fn unreachable_port_fails_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let o = parse(&args("-e 109 prog")).unwrap();
        let e = connect_stdio(&o, &UnixDir(dir.path().into())).unwrap_err();
        assert!(e.to_string().contains("109"), "{e}");
    }

    #[test]
    fn relay_forwards_output_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let l = UnixListener::bind(dir.path().join("109.sock")).unwrap();
        let o = parse(
            &[
                "-r",
                "-e",
                "109",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 7",
            ]
            .map(String::from),
        )
        .unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        });
        let code = relay(&o, &UnixDir(dir.path().into())).unwrap();
        assert_eq!(code, 7);
        assert_eq!(reader.join().unwrap(), "out\nerr\n");
    }

    #[test]
    fn relay_redials_and_keeps_recent_output() {
        let dir = tempfile::tempdir().unwrap();
        let dialer = UnixDir(dir.path().into());
        let (src, w) = crate::sys::pipe().unwrap();
        let (src, mut w) = (File::from(src), File::from(w));
        // Nobody listens yet: output waits in the backlog.
        w.write_all(b"early ").unwrap();
        let l = std::thread::scope(|s| {
            let t = s.spawn(|| {
                let mut r = Relay::new(&dialer, 109);
                r.run(src);
                r.backlog().to_vec()
            });
            std::thread::sleep(Duration::from_millis(250));
            let l = UnixListener::bind(dir.path().join("109.sock")).unwrap();
            w.write_all(b"late").unwrap();
            drop(w);
            let (mut s1, _) = l.accept().unwrap();
            let mut text = String::new();
            s1.read_to_string(&mut text).unwrap();
            assert_eq!(text, "early late");
            assert!(t.join().unwrap().is_empty());
            l
        });
        drop(l);
    }

    #[test]
    fn relay_backlog_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let dialer = UnixDir(dir.path().into());
        let mut r = Relay::new(&dialer, 1);
        r.next_dial = Instant::now() + Duration::from_secs(3600);
        r.send(&vec![b'a'; RELAY_BACKLOG]);
        r.send(b"tail");
        assert_eq!(r.backlog().len(), RELAY_BACKLOG);
        assert!(r.backlog().ends_with(b"atail"));
    }
}

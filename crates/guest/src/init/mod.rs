//! `init`, PID 1 of the utility VM (ext4-uvm.md §5.3).
//!
//! `init [-d shell] [-e port] [-w] [child args…]`; with no child it runs
//! `/bin/gcs -loglevel debug -logfile=/run/gcs/gcs.log`. The sequence: block all signals,
//! raise `RLIMIT_NOFILE`, mount `/dev`, `/proc`, `/run`, `/tmp`, `/dev/shm`, `/dev/pts`,
//! `/sys` (and with `-w` writable overlays over `/etc` and `/var` for a read-only root),
//! mount cgroups (v2, else v1), bring up `lo`, load the kernel modules shipped in the root
//! filesystem, mount the host's 9p shares when the VM has them, seed the entropy pool from the host over vsock, then run the child in its
//! own session with signals unblocked and reap every zombie until the child exits. Its
//! status (or 128 + signal) is init's; PID 1 exiting panics the kernel, and with `panic=-1`
//! on the command line the VM ends.
//!
//! In the VHD boot modes init runs twice: first from the boot initrd, where it mounts the
//! real root and execs the `init` there ([`root`]), then as above.
//!
//! Each step that fails is reported on the console (stderr) and, as in the reference, only
//! a failure of the essential mounts is fatal.

pub mod cgroups;
pub mod dm;
pub mod entropy;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod reap;
pub mod root;

use std::ffi::CString;

use crate::error::{Error, Result};
use crate::vsock::Vsock;

/// The child run when none is given.
pub const DEFAULT_CHILD: [&str; 3] = ["/bin/gcs", "-loglevel", "debug"];
/// The `PATH` the child gets.
pub const CHILD_PATH: &str = "/sbin:/usr/sbin:/bin:/usr/bin";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `-d`: a debug shell started beside the child.
    pub debug_shell: Option<String>,
    /// `-e`: the host vsock port that serves entropy.
    pub entropy_port: Option<u32>,
    /// `-w`: make `/etc` and `/var` writable with overlays (read-only VHD root).
    pub writable_overlays: bool,
    /// The child's argv.
    pub child: Vec<String>,
}

const USAGE: &str = "init [-d shell] [-e port] [-w] [child args...]";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-w" => o.writable_overlays = true,
            "-d" | "-e" => {
                let flag = args[i].clone();
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| Error::Usage(format!("{flag} needs a value: {USAGE}")))?;
                if flag == "-d" {
                    o.debug_shell = Some(v.clone());
                } else {
                    o.entropy_port = Some(
                        v.parse()
                            .map_err(|_| Error::Usage(format!("-e: bad port {v:?}")))?,
                    );
                }
                i += 1;
            }
            "--" => {
                i += 1;
                break;
            }
            a if a.starts_with('-') => {
                return Err(Error::Usage(format!("unknown option {a}: {USAGE}")))
            }
            _ => break,
        }
        i += 1;
    }
    o.child = args[i..].to_vec();
    if o.child.is_empty() {
        o.child = DEFAULT_CHILD.iter().map(|s| s.to_string()).collect();
        o.child.push("-logfile=/run/gcs/gcs.log".into());
    }
    Ok(o)
}

/// Logs a non-fatal failure on the console.
pub fn warn(step: &str, e: &dyn std::fmt::Display) {
    eprintln!("init: {step}: {e}");
}

/// Runs the whole sequence as PID 1 and returns the exit code of the child.
pub fn run(o: &Options) -> Result<i32> {
    reap::block_all_signals()?;
    if let Err(e) = set_nofile() {
        warn("RLIMIT_NOFILE", &e);
    }
    mounts::mount_base()?;
    if o.writable_overlays {
        mounts::writable_overlays()?;
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if let Err(e) = cgroups::mount(cgroups::force_v1(&cmdline)) {
        warn("cgroups", &e);
    }
    if let Err(e) = net::loopback_up() {
        warn("loopback", &e);
    }
    match modules::load_all(&modules::release_dir(), &modules::FinitModule) {
        Ok(r) => {
            for (path, e) in r.failed {
                warn(&format!("load module {}", path.display()), &e);
            }
        }
        Err(e) => warn("kernel modules", &e),
    }
    match mounts::host_shares() {
        Ok(true) => eprintln!("init: host shares mounted at {}", mounts::SHARES_DIR),
        Ok(false) => {}
        Err(e) => warn("host shares", &e),
    }
    if let Some(port) = o.entropy_port {
        match entropy::seed(&Vsock, port) {
            Ok(n) => eprintln!("init: added {n} bytes of entropy from the host"),
            Err(e) => warn("entropy", &e),
        }
    }
    for prog in ["/bin/nvidia-persistenced", "/bin/nv-fabricmanager"] {
        if std::path::Path::new(prog).exists() {
            if let Err(e) = reap::spawn(&[prog.to_string()]) {
                warn(prog, &e);
            }
        }
    }
    if let Some(shell) = &o.debug_shell {
        if let Err(e) = reap::spawn(std::slice::from_ref(shell)) {
            warn("debug shell", &e);
        }
    }
    let child = reap::spawn(&o.child)?;
    Ok(reap::reap_until(child))
}

/// `RLIMIT_NOFILE`: soft 1024, hard 1M.
fn set_nofile() -> Result<()> {
    let lim = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024 * 1024,
    };
    // SAFETY: setrlimit(2) with a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(Error::last_os("setrlimit"));
    }
    Ok(())
}

/// A C string, or a usage error naming the argument with a NUL byte.
pub(crate) fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Usage(format!("{s:?} contains a NUL byte")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_the_kernel_command_line_tail() {
        let o = parse(&args("-e 1 -w /bin/vsockexec -e 109 /bin/gcs -v4")).unwrap();
        assert_eq!(o.entropy_port, Some(1));
        assert!(o.writable_overlays && o.debug_shell.is_none());
        assert_eq!(o.child, args("/bin/vsockexec -e 109 /bin/gcs -v4"));
    }

    #[test]
    fn no_child_runs_the_gcs() {
        let o = parse(&args("-d /bin/sh")).unwrap();
        assert_eq!(o.debug_shell.as_deref(), Some("/bin/sh"));
        assert_eq!(o.child[0], "/bin/gcs");
        assert!(o.child.iter().any(|a| a == "-logfile=/run/gcs/gcs.log"));
    }

    #[test]
    fn bad_options_are_rejected() {
        for bad in ["-e", "-e one x", "-x prog"] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}

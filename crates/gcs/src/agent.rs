//! The GCS startup sequence and its dial / serve / re-dial loop (spec §1, §8).
//!
//! Only with the vsock transport (a real utility VM) does the agent act on the machine as a
//! whole: core pattern, kmsg forwarding, `/pods` and `/gcs` cgroups, chronyd, and powering off
//! when the host shuts the null container down. With `-use-inouterr` or the Unix transport a
//! shutdown ends the agent and its containers instead.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{Options, PolicyStance, TransportKind};
use crate::error::{Error, Result};
use crate::host::{Config, Host};
use crate::reaper::Reaper;
use crate::server::{Bridge, ServeEnd, ServerOptions};
use crate::transport::{Transport, BRIDGE_PORT};

/// Present when the guest's vsock is virtio (QEMU) rather than Hyper-V sockets.
const VIRTIO_VSOCK_DRIVER: &str = "/sys/bus/virtio/drivers/vmw_vsock_virtio_transport";

/// Pause between bridge dials (reference: 100 ms).
const REDIAL: Duration = Duration::from_millis(100);

/// How the agent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The host shut the utility VM down.
    Shutdown,
    /// The stdio bridge ended (`-use-inouterr`): there is nothing to re-dial.
    StdioClosed(String),
}

fn setup_logging(opts: &Options) -> Result<()> {
    let level = crate::logging::parse_level(&opts.loglevel).map_err(Error::Invalid)?;
    let out: Option<Box<dyn Write + Send>> = match opts.initial_policy_stance {
        // Closed door: logs are discarded until a policy allows them.
        PolicyStance::Deny => None,
        PolicyStance::Allow if !opts.logfile.is_empty() => Some(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&opts.logfile)
                .map_err(|e| Error::path("open log file", &opts.logfile, e))?,
        )),
        PolicyStance::Allow => Some(Box::new(std::io::stderr())),
    };
    crate::logging::init(opts.log_format, level, out);
    Ok(())
}

fn transport(opts: &Options) -> Result<Transport> {
    match opts.transport {
        TransportKind::Vsock => Ok(Transport::Vsock),
        TransportKind::Unix => match &opts.socket_dir {
            Some(dir) => Ok(Transport::Unix { dir: dir.clone() }),
            None => Err(Error::Invalid("-transport unix needs -socket-dir".into())),
        },
    }
}

/// Runs the agent until the host shuts it down (or the stdio bridge ends).
pub fn run(opts: Options) -> Result<Exit> {
    setup_logging(&opts)?;
    let transport = transport(&opts)?;
    let vm = transport.is_vm() && !opts.use_inouterr;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        cgroup = if crate::cgroup::is_v2() { "v2" } else { "v1" },
        transport = ?transport,
        "GCS started"
    );
    // vhost-device-vsock (the Linux VM sandbox's host side) drops write shutdowns; a
    // Hyper-V host (hv_sock) gets the reference's half-close.
    if vm && std::path::Path::new(VIRTIO_VSOCK_DRIVER).exists() {
        crate::stdio::set_full_close(true);
    }
    let reaper = Reaper::start()?;
    if vm {
        vm_setup(&opts, &reaper);
    }

    let terminate = termination_pipe()?;
    let bridge = Bridge::new(ServerOptions {
        v4: opts.v4,
        policy: opts.initial_policy_stance,
    });
    let host = Arc::new(Host::new(
        Config {
            state_root: opts.state_root.clone(),
            runc: opts.runtime.clone(),
            runc_root: opts.runtime_root.clone(),
            transport: transport.clone(),
            pods_memory_reserve: vm.then_some(opts.root_mem_reserve_bytes),
            host_cgroups: opts.host_cgroups,
        },
        reaper,
        bridge.clone(),
    )?);
    watch_termination(terminate, Arc::clone(&host))?;

    if opts.use_inouterr {
        let mut stdin = std::io::stdin().lock();
        let end = bridge.serve(&host, &mut stdin, Box::new(std::io::stdout()));
        return Ok(finish(&host, end, vm).unwrap_or_else(|reason| {
            host.teardown();
            Exit::StdioClosed(reason)
        }));
    }
    loop {
        let conn = match transport.dial(BRIDGE_PORT) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "bridge dial failed; retrying");
                std::thread::sleep(REDIAL);
                continue;
            }
        };
        tracing::info!("bridge connected");
        let writer = conn
            .try_clone()
            .map_err(|e| Error::io("clone bridge connection", e))?;
        let mut reader = conn;
        let end = bridge.serve(&host, &mut reader, Box::new(writer));
        let _ = reader.shutdown(std::net::Shutdown::Both);
        match finish(&host, end, vm) {
            Ok(exit) => return Ok(exit),
            Err(reason) => {
                tracing::warn!(reason, "bridge disconnected; re-dialing");
                std::thread::sleep(REDIAL);
            }
        }
    }
}

/// Acts on the end of a connection: `Err(reason)` means re-dial.
fn finish(host: &Host, end: ServeEnd, vm: bool) -> std::result::Result<Exit, String> {
    match end {
        ServeEnd::Disconnected(reason) => Err(reason),
        ServeEnd::Shutdown => {
            tracing::info!("shutdown of the utility VM requested");
            if vm {
                power_off();
            }
            host.teardown();
            Ok(Exit::Shutdown)
        }
    }
}

/// Write end of the self-pipe the SIGTERM/SIGINT handler writes to.
static TERM_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_terminate(_: libc::c_int) {
    let fd = TERM_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// Installs SIGTERM/SIGINT handlers that wake [`watch_termination`]. A handler (unlike a
/// blocked mask) is reset by exec, so runc and container processes are unaffected.
fn termination_pipe() -> Result<std::os::fd::OwnedFd> {
    let (r, w) = crate::stdio::pipe()?;
    TERM_PIPE.store(
        std::os::fd::IntoRawFd::into_raw_fd(w),
        std::sync::atomic::Ordering::Relaxed,
    );
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: sigaction with a zeroed struct and a handler that only calls write(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_terminate as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(Error::io("sigaction", std::io::Error::last_os_error()));
            }
        }
    }
    Ok(r)
}

/// Starts a long-lived background thread; a failure to start it is returned with its name.
fn background(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 * 1024)
        .spawn(f)
        .map(drop)
        .map_err(|e| Error::io(format!("start the {name} thread"), e))
}

/// Starts an optional background thread of the utility VM setup: a failure is logged and the
/// agent goes on without it.
fn background_or_log(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = background(name, f) {
        tracing::error!(error = %e, "background thread not started");
    }
}

/// On SIGTERM/SIGINT: end the containers (and undo mounts), then exit. A utility VM is
/// simply powered off by the host, so this matters for the local sandbox. Without this
/// thread the signal handlers would swallow SIGTERM, so failing to start it is fatal.
fn watch_termination(pipe: std::os::fd::OwnedFd, host: Arc<Host>) -> Result<()> {
    background("terminate", move || {
        use std::io::Read;
        let mut f = std::fs::File::from(pipe);
        let mut b = [0u8; 1];
        // One byte (a signal) or EOF (the write end is gone): either way, terminate.
        match f.read(&mut b).map(drop) {
            Ok(()) => {
                tracing::info!("terminating: ending containers");
                host.teardown();
                std::process::exit(0);
            }
            Err(e) => tracing::error!(error = %e, "termination pipe failed; SIGTERM is ignored"),
        }
    })
}

/// Powers the utility VM off. Reached only with the vsock transport.
fn power_off() {
    nix::unistd::sync();
    let Err(e) = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    tracing::error!(error = %e, "power off failed");
}

/// Machine-wide setup done only inside a utility VM (spec §8 steps 4-11).
fn vm_setup(opts: &Options, reaper: &Arc<Reaper>) {
    if !opts.core_dump_location.is_empty() {
        if let Err(e) = std::fs::write("/proc/sys/kernel/core_pattern", &opts.core_dump_location) {
            tracing::error!(error = %e, "failed to set core_pattern");
        }
    }
    start_kmsg(opts.kmsg_log_level);
    if !crate::cgroup::is_v2() {
        if let Err(e) = std::fs::write("/sys/fs/cgroup/memory/memory.use_hierarchy", "1") {
            tracing::error!(error = %e, "failed to enable memory.use_hierarchy");
        }
    }
    if let Err(e) = crate::cgroup::set_pods_limit(opts.root_mem_reserve_bytes) {
        tracing::error!(error = %e, "failed to set up the /pods cgroup");
    }
    if let Err(e) = crate::cgroup::enter_gcs_cgroup() {
        tracing::error!(error = %e, "failed to set up the /gcs cgroup");
    }
    let pods_limit = crate::cgroup::total_memory()
        .unwrap_or(0)
        .saturating_sub(opts.root_mem_reserve_bytes);
    if let Err(e) = crate::memwatch::start(opts.gcs_mem_limit_bytes, pods_limit) {
        tracing::error!(error = %e, "failed to register the memory notifications");
    }
    let reserve = opts.root_mem_reserve_bytes;
    background_or_log("pods-limit", move || loop {
        std::thread::sleep(Duration::from_secs(60));
        if let Err(e) = crate::cgroup::set_pods_limit(reserve) {
            tracing::warn!(error = %e, "failed to refresh the /pods memory limit");
        }
    });
    if !opts.disable_time_sync {
        start_chronyd(Arc::clone(reaper));
    }
}

/// Forwards `/dev/kmsg` records with priority <= `max_level` to the log.
fn start_kmsg(max_level: u32) {
    background_or_log("kmsg", move || {
        use std::io::Read;
        let mut f = match std::fs::File::open("/dev/kmsg") {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "open /dev/kmsg: kernel messages are not forwarded");
                return;
            }
        };
        let mut buf = vec![0u8; 8192];
        // Each read returns one record: "pri,seq,ts,flags;message\n".
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                // EPIPE: records were overwritten before we read them; the next read goes on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    tracing::warn!("kernel messages were lost (kmsg overrun)");
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(error = %e, "read /dev/kmsg: forwarding stopped");
                    break;
                }
            };
            let rec = String::from_utf8_lossy(&buf[..n]);
            let Some((head, msg)) = rec.split_once(';') else {
                continue;
            };
            let pri: u32 = head
                .split(',')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(7);
            let level = pri & 7;
            if level > max_level {
                continue;
            }
            let msg = msg.trim_end();
            match level {
                0..=3 => tracing::error!(kmsg = msg, "kernel"),
                4 => tracing::warn!(kmsg = msg, "kernel"),
                5 | 6 => tracing::info!(kmsg = msg, "kernel"),
                _ => tracing::debug!(kmsg = msg, "kernel"),
            }
        }
    });
}

/// Starts chronyd on the Hyper-V PTP clock, restarting it with exponential backoff.
fn start_chronyd(reaper: Arc<Reaper>) {
    let ptp = std::fs::read_dir("/sys/class/ptp").ok().and_then(|rd| {
        rd.flatten().find_map(|e| {
            let name = std::fs::read_to_string(e.path().join("clock_name")).ok()?;
            (name.trim() == "hyperv").then(|| PathBuf::from("/dev").join(e.file_name()))
        })
    });
    let Some(ptp) = ptp else {
        tracing::warn!("no Hyper-V PTP clock; time sync not started");
        return;
    };
    let conf = format!(
        "refclock PHC {} poll 3 dpoll -2 offset 0 stratum 2\nmakestep 0.1 -1\n",
        ptp.display()
    );
    if let Err(e) = std::fs::write("/tmp/chronyd.conf", conf) {
        tracing::error!(error = %e, "failed to write chronyd.conf");
        return;
    }
    background_or_log("chronyd", move || {
        let mut backoff = Duration::from_secs(1);
        loop {
            let mut cmd = std::process::Command::new("chronyd");
            cmd.args(["-n", "-f", "/tmp/chronyd.conf"])
                .stdin(std::process::Stdio::null());
            match reaper.spawn(&mut cmd) {
                Ok(child) => {
                    let status = reaper.wait(child.id());
                    tracing::warn!(?status, "chronyd exited; restarting");
                }
                Err(e) => tracing::error!(error = %e, "failed to start chronyd"),
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(600));
        }
    });
}

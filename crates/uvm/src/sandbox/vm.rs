//! The VM sandbox: the GCS inside a real utility VM booted by QEMU (Linux host).
//!
//! * **Boot**: QEMU (Debian's `qemu-system-x86`) boots the project's boot files
//!   (`vmlinux` + `initrd.img`, built by `scripts/build-bootfiles.sh`) with the kernel
//!   command line of ext4-uvm.md §5.2; with [`BootMode::Vhd`] or [`BootMode::VerityVhd`]
//!   the root is `rootfs.vhd` (or its dm-verity variant) on a read-only SCSI disk at LUN 0,
//!   mounted by init from `boot-initrd.img` (see [`boot`]). Then `init` seeds entropy from host port 1 and runs
//!   `vsockexec -r -e 109 gcs -v4 …`, whose log stream lands on host port 109.
//! * **vsock**: the guest has a real virtio-vsock device whose host side is
//!   `vhost-device-vsock` (rust-vmm, from crates.io) in hybrid mode: a guest dial of host
//!   port P arrives on the Unix socket `<state>/vsock.sock_P`. The host listens there before
//!   the VM starts, exactly as it listens on Hyper-V sockets, so the bridge (port
//!   0x40000000) and stdio (the ports the host names) use the same client as the other
//!   sandboxes. The host's own `AF_VSOCK` is never used.
//! * **Acceleration**: KVM when `/dev/kvm` opens and the guest boots on it; with
//!   [`Accel::Auto`] a KVM boot that fails (QEMU reports a KVM error or exits, or the guest
//!   never dials within [`KVM_PROBE`]) is retried under TCG, with a log line saying so.
//!   Under TCG a guest whose first vsock dial never arrives (within [`VSOCK_PROBE`]) is
//!   booted once more with a fresh backend.
//! * **Layers and scratch** reach the guest as SCSI disks (see [`disks`]).
//! * **Teardown** asks the GCS to power the VM off (a null-id shutdown), waits briefly, then
//!   kills QEMU and the backend and removes the state directory (sockets, images, logs).
//!   The same happens when QEMU died (a crash, a guest panic) and from `Drop`. QEMU and the
//!   backend also die with the host process (`PR_SET_PDEATHSIG`).
//!
//! State dir: `vhost.sock` (vhost-user control), `vsock.sock` and `vsock.sock_<port>`
//! (hybrid vsock), `qmp.sock`, `console.log`, `qemu.log`, `backend.log`, `gcs.log` (the
//! GCS's log stream), `disks/` (layer and scratch images).

pub mod boot;
pub mod disks;
mod lifecycle;
pub mod net;
pub mod ports;
pub mod qemu;
pub mod shares;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridge::messages::{
    GcsCapabilities, ModifyRequestType, ModifySettingRequest, ResourceSettings, NULL_CONTAINER_ID,
};

pub use self::boot::BootMode;
use self::disks::Disks;
use self::net::PodNetwork;
use self::ports::HostPorts;
pub use self::qemu::{Accel, Machine};
use self::qemu::{QemuArgs, Qmp};
use self::shares::Shares;
use super::agent::Agent;
use crate::client::{BridgeClient, ClientConfig};
use crate::container::modify_settings;
use crate::error::{Error, Result};
use crate::transport::{UnixTransport, BRIDGE_PORT};

/// Where the boot files are looked for when the config names no directory and
/// `HCSSHIM_UVM_BOOTFILES` is not set. `scripts/build-bootfiles.sh DIR` builds them.
pub const DEFAULT_BOOT_FILES: &str = "/usr/local/share/hcsshim-rs/uvm";
/// How long a KVM boot may take to reach the guest's first vsock dial before
/// [`Accel::Auto`] falls back to TCG.
pub const KVM_PROBE: Duration = Duration::from_secs(20);

/// Under TCG, how long the guest's first vsock dial (init's entropy request, a second or
/// two into the boot) may take before the boot counts as failed and is tried once more.
/// A vsock backend that never serves the guest (seen, rarely, on a loaded machine) would
/// otherwise cost the whole connect timeout and fail the sandbox.
pub const VSOCK_PROBE: Duration = Duration::from_secs(40);

/// Bound of a graceful power-off at teardown.
const POWER_OFF_WAIT: Duration = Duration::from_secs(10);
/// Guest bundle root (`/run/gcs/c/<id>`).
const GUEST_BUNDLES: &str = "/run/gcs/c";

/// How to start a VM sandbox. [`VmSandboxConfig::new`] gives defaults that work on a Debian
/// host with `qemu-system-x86` and `vhost-device-vsock` installed and the boot files built.
#[derive(Debug, Clone)]
pub struct VmSandboxConfig {
    /// The sandbox's state directory; created by start, removed by teardown.
    pub state_dir: PathBuf,
    /// Directory of `vmlinux`, `initrd.img` and the VHD modes' files.
    pub boot_files: PathBuf,
    /// Where the root filesystem comes from (default: the initrd).
    pub boot_mode: BootMode,
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// The `vhost-device-vsock` binary.
    pub vsock_backend: PathBuf,
    /// Guest memory (MiB).
    pub memory_mib: u64,
    /// vCPUs.
    pub cpus: u32,
    /// KVM, TCG or auto.
    pub accel: Accel,
    /// microvm or q35.
    pub machine: Machine,
    /// The guest's vsock CID (each VM has its own backend, so it need not be unique).
    pub guest_cid: u32,
    /// Size of each container's sparse scratch disk (bytes).
    pub scratch_size: u64,
    /// Bound of waiting for the GCS's bridge connection.
    pub connect_timeout: Duration,
    /// The GCS's `-loglevel`.
    pub log_level: String,
    /// Extra kernel arguments (before init's).
    pub kernel_args: String,
    /// Extra GCS flags, appended to its command line (each without spaces, e.g.
    /// `-gcs-mem-limit-bytes=104857600`).
    pub gcs_args: Vec<String>,
    /// Bridge client timeouts.
    pub client: ClientConfig,
    /// The pod's network namespace on the host (CNI's), carried into the VM as a NIC (see
    /// [`net`]); containers whose spec names it get the pod network in the guest.
    pub network_namespace: Option<PathBuf>,
}

impl VmSandboxConfig {
    /// Defaults for a sandbox in `state_dir`: boot files from `HCSSHIM_UVM_BOOTFILES` or
    /// [`DEFAULT_BOOT_FILES`], the initrd boot mode, `qemu-system-x86_64` and `vhost-device-vsock` from `PATH`
    /// (or `~/.cargo/bin`, where `cargo install` puts it), q35, 1 GiB, 2 vCPUs, auto
    /// acceleration, 1 GiB scratch disks.
    ///
    /// q35 rather than microvm: under TCG a Debian kernel on microvm often cannot calibrate
    /// its clock (no HPET or PM timer there) and hangs before init; q35 boots reliably.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let boot_files = std::env::var_os("HCSSHIM_UVM_BOOTFILES")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BOOT_FILES));
        let connect_timeout = std::env::var("HCSSHIM_TIMEOUT_GCSCONNECTION")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(super::local::DEFAULT_CONNECT_TIMEOUT);
        Self {
            state_dir: state_dir.into(),
            boot_files,
            boot_mode: BootMode::Initrd,
            qemu: PathBuf::from("qemu-system-x86_64"),
            vsock_backend: find_program("vhost-device-vsock"),
            memory_mib: 1024,
            cpus: 2,
            accel: Accel::Auto,
            machine: Machine::Q35,
            guest_cid: 3,
            scratch_size: 1 << 30,
            connect_timeout,
            log_level: "info".into(),
            kernel_args: String::new(),
            gcs_args: Vec::new(),
            client: ClientConfig::default(),
            network_namespace: None,
        }
    }

    fn kernel(&self) -> PathBuf {
        self.boot_files.join("vmlinux")
    }
}

/// `name` from `PATH`, else from `~/.cargo/bin`, else the bare name (reported at spawn).
fn find_program(name: &str) -> PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    in_path
        .or_else(|| {
            let home = std::env::var_os("CARGO_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
            Some(home.join("bin").join(name)).filter(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Timings of a start, for logs and benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct StartTimes {
    /// From start to the GCS's bridge connection.
    pub connected: Duration,
    /// From start to a negotiated bridge.
    pub negotiated: Duration,
    /// Whether KVM was used.
    pub kvm: bool,
}

struct Processes {
    qemu: Agent,
    backend: Agent,
}

/// A running VM sandbox.
pub struct VmSandbox {
    config: VmSandboxConfig,
    client: BridgeClient,
    capabilities: GcsCapabilities,
    procs: Processes,
    ports: HostPorts,
    qmp: tokio::sync::Mutex<Qmp>,
    disks: tokio::sync::Mutex<Disks>,
    times: StartTimes,
    torn_down: AtomicBool,
    /// Containers and the (canonical) layer directories each uses.
    containers: Mutex<BTreeMap<String, Vec<PathBuf>>>,
    /// The host paths containers bind-mount, shared over virtio-9p.
    shares: Mutex<Shares>,
    /// The pod network carried into the VM.
    net: Option<PodNetwork>,
}

impl std::fmt::Debug for VmSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmSandbox")
            .field("state_dir", &self.config.state_dir)
            .field("qemu_pid", &self.procs.qemu.pid())
            .field("backend_pid", &self.procs.backend.pid())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("create {}", dir.display()), e))
}

fn open_log(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).map_err(|e| Error::io(format!("create {}", path.display()), e))
}

/// The last lines of a file, or a note that it is empty.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// init's own lines on the console (`init: …`): why a root did not mount or a step failed,
/// which a kernel panic's trace pushes out of the console's tail.
fn init_lines(console: &Path) -> String {
    let text = std::fs::read_to_string(console).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("init: ")).collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl VmSandbox {
    /// Starts the backend and QEMU, waits for the GCS to dial the bridge and negotiates.
    /// On failure everything started is stopped and the state dir removed.
    pub async fn start(config: VmSandboxConfig) -> Result<Self> {
        let dir = config.state_dir.clone();
        if dir.exists() {
            return Err(Error::Sandbox(format!(
                "state dir {} already exists",
                dir.display()
            )));
        }
        // Checks the mode's initrd, root disk and verity description.
        config.boot_mode.files(&config.boot_files)?;
        for f in [config.kernel()] {
            if !f.is_file() {
                return Err(Error::Sandbox(format!(
                    "boot file {} is missing: build the boot files with scripts/build-bootfiles.sh {}",
                    f.display(),
                    config.boot_files.display()
                )));
            }
        }
        create_private_dir(&dir)?;
        create_private_dir(&dir.join("disks"))?;
        create_private_dir(&dir.join(shares::DIR))?;
        match Self::start_in(config).await {
            Ok(s) => Ok(s),
            Err(e) => {
                if let Err(rm) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %rm, "state dir not removed");
                }
                Err(e)
            }
        }
    }

    async fn start_in(config: VmSandboxConfig) -> Result<Self> {
        if let Some(a) = config
            .gcs_args
            .iter()
            .find(|a| a.is_empty() || a.contains(char::is_whitespace))
        {
            return Err(Error::InvalidArgument(format!(
                "GCS argument {a:?} is empty or has spaces"
            )));
        }
        let t0 = Instant::now();
        let kvm = match config.accel {
            Accel::Tcg => false,
            Accel::Kvm => true,
            Accel::Auto if qemu::kvm_available() => true,
            Accel::Auto => {
                tracing::info!(
                    "VM sandbox: /dev/kvm is not usable; running under TCG (emulation, slower)"
                );
                false
            }
        };
        let net = match &config.network_namespace {
            Some(ns) => {
                let ns = ns.clone();
                let id = net::new_namespace_id()?;
                let plumbed =
                    tokio::task::spawn_blocking(move || PodNetwork::plumb(&ns, &id)).await;
                Some(plumbed.map_err(|e| Error::Sandbox(format!("pod network: {e}")))??)
            }
            None => None,
        };
        let mut booted = match Self::boot(&config, kvm, t0, net.as_ref()).await {
            Err(e) if kvm && config.accel == Accel::Auto => {
                tracing::warn!(
                    error = %e,
                    "VM sandbox: the guest did not boot under KVM; falling back to TCG (emulation, slower)"
                );
                match Self::clear_state(&config.state_dir) {
                    Ok(()) => Self::boot(&config, false, t0, net.as_ref()).await,
                    Err(e) => Err(e),
                }
            }
            r => r,
        };
        if let Err(e) = &booted {
            if matches!(e, Error::NoGuestVsock { .. }) {
                // A fresh backend and QEMU, once.
                tracing::warn!(error = %e, "VM sandbox: the guest's vsock never reached the host; booting again");
                booted = match Self::clear_state(&config.state_dir) {
                    Ok(()) => Self::boot(&config, false, t0, net.as_ref()).await,
                    Err(e) => Err(e),
                };
            }
        }
        let mut s = match booted {
            Ok(s) => s,
            Err(e) => {
                if let Some(Err(e2)) = net.as_ref().map(PodNetwork::unplumb) {
                    tracing::warn!(error = %e2, "pod network not restored after a failed boot");
                }
                return Err(e);
            }
        };
        s.net = net;
        if let Some(n) = &s.net {
            // As an LCOW host adds an endpoint to the VM: the GCS finds the NIC and keeps it
            // for the container that names the namespace.
            let add = ModifySettingRequest::new(
                ModifyRequestType::Add,
                ResourceSettings::Network(n.adapter.clone()),
            );
            if let Err(e) = modify_settings(&s.client, NULL_CONTAINER_ID, add).await {
                if let Err(e2) = s.teardown().await {
                    tracing::warn!(error = %e2, "VM sandbox teardown after a failed network add");
                }
                return Err(e);
            }
        }
        Ok(s)
    }

    /// Removes what a failed boot left in the state dir, keeping the dir.
    fn clear_state(dir: &Path) -> Result<()> {
        for e in std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("read {}", dir.display()), e))?
            .flatten()
        {
            if e.file_name() != "disks" && e.file_name() != shares::DIR {
                std::fs::remove_file(e.path())
                    .map_err(|err| Error::io(format!("remove {}", e.path().display()), err))?;
            }
        }
        Ok(())
    }

    async fn boot(
        config: &VmSandboxConfig,
        kvm: bool,
        t0: Instant,
        net: Option<&PodNetwork>,
    ) -> Result<Self> {
        let dir = &config.state_dir;
        let uds = dir.join("vsock.sock");
        let vhost = dir.join("vhost.sock");
        let ports = HostPorts::listen(&uds, &dir.join("gcs.log"))?;
        let bridge_path = UnixTransport::hybrid_path(&uds, BRIDGE_PORT);
        let bridge = tokio::net::UnixListener::bind(&bridge_path)
            .map_err(|e| Error::io(format!("listen on {}", bridge_path.display()), e))?;

        let backend_args: Vec<OsString> = vec![
            "--guest-cid".into(),
            config.guest_cid.to_string().into(),
            "--socket".into(),
            vhost.clone().into(),
            "--uds-path".into(),
            uds.clone().into(),
        ];
        let (backend, _) = Agent::spawn(
            &config.vsock_backend,
            &backend_args,
            open_log(&dir.join("backend.log"))?,
            false,
            false,
            false,
            None,
        )
        .await
        .map_err(|e| {
            Error::io(
                format!(
                    "start {} (cargo install vhost-device-vsock)",
                    config.vsock_backend.display()
                ),
                e,
            )
        })?;
        let started =
            Self::boot_qemu(config, kvm, t0, &ports, bridge, (&backend, &vhost), net).await;
        match started {
            Ok((qemu, client, capabilities, qmp, times)) => {
                tracing::info!(
                    dir = %dir.display(),
                    accel = if kvm { "kvm" } else { "tcg" },
                    boot_mode = %config.boot_mode,
                    connected_ms = times.connected.as_millis() as u64,
                    negotiated_ms = times.negotiated.as_millis() as u64,
                    "VM sandbox started"
                );
                let s = Self {
                    config: config.clone(),
                    client,
                    capabilities,
                    procs: Processes { qemu, backend },
                    ports,
                    qmp: tokio::sync::Mutex::new(qmp),
                    disks: tokio::sync::Mutex::new(if config.boot_mode == BootMode::Initrd {
                        Disks::default()
                    } else {
                        Disks::with_root_disk()
                    }),
                    times,
                    torn_down: AtomicBool::new(false),
                    containers: Mutex::new(BTreeMap::new()),
                    shares: Mutex::new(Shares::new(dir.join(shares::DIR))),
                    net: None,
                };
                s.watch_qemu();
                Ok(s)
            }
            Err(e) => {
                kill(&backend, "vhost-device-vsock").await;
                ports.close();
                Err(e)
            }
        }
    }

    async fn boot_qemu(
        config: &VmSandboxConfig,
        kvm: bool,
        t0: Instant,
        ports: &HostPorts,
        bridge: tokio::net::UnixListener,
        (backend, vhost): (&Agent, &Path),
        net: Option<&PodNetwork>,
    ) -> Result<(Agent, BridgeClient, GcsCapabilities, Qmp, StartTimes)> {
        let dir = &config.state_dir;
        // QEMU connects to the backend's vhost-user socket at once: wait for it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !vhost.exists() {
            if Instant::now() > deadline {
                return Err(Error::Sandbox(format!(
                    "vhost-device-vsock did not create {}: {}",
                    vhost.display(),
                    tail(&dir.join("backend.log"), 10)
                )));
            }
            tokio::select! {
                how = backend.wait() => return Err(Error::Sandbox(format!(
                    "vhost-device-vsock exited ({how}): {}", tail(&dir.join("backend.log"), 10)))),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        let boot = config.boot_mode.files(&config.boot_files)?;
        let args = QemuArgs {
            machine: config.machine,
            kvm,
            memory_mib: config.memory_mib,
            cpus: config.cpus,
            kernel: config.kernel(),
            initrd: boot.initrd,
            root_disk: boot.root_disk,
            append: qemu::kernel_command_line(
                config.machine,
                config.cpus,
                &boot.root_args,
                &config.log_level,
                &config.kernel_args,
                &config.gcs_args,
            ),
            vhost_socket: vhost.to_path_buf(),
            qmp_socket: dir.join("qmp.sock"),
            console_log: dir.join("console.log"),
            shares: dir.join(shares::DIR),
            nic_mac: net.map(|n| n.mac.clone()),
        };
        let qemu_log = dir.join("qemu.log");
        let (qemu, _) = Agent::spawn(
            &config.qemu,
            &args.to_args(),
            open_log(&qemu_log)?,
            false,
            false,
            false,
            net.and_then(PodNetwork::tap_fd),
        )
        .await
        .map_err(|e| {
            Error::io(
                format!(
                    "start {} (apt-get install qemu-system-x86)",
                    config.qemu.display()
                ),
                e,
            )
        })?;
        let r = Self::connect(config, kvm, t0, ports, bridge, &qemu).await;
        match r {
            Ok((client, caps, qmp, times)) => Ok((qemu, client, caps, qmp, times)),
            Err(e) => {
                kill(&qemu, "QEMU").await;
                Err(e)
            }
        }
    }

    async fn connect(
        config: &VmSandboxConfig,
        kvm: bool,
        t0: Instant,
        ports: &HostPorts,
        bridge: tokio::net::UnixListener,
        qemu: &Agent,
    ) -> Result<(BridgeClient, GcsCapabilities, Qmp, StartTimes)> {
        let dir = &config.state_dir;
        let why = |what: &str| {
            format!(
                "{what}\nqemu: {}\ninit:\n{}\nconsole:\n{}\ngcs log:\n{}",
                tail(&dir.join("qemu.log"), 5),
                init_lines(&dir.join("console.log")),
                tail(&dir.join("console.log"), 15),
                tail(&dir.join("gcs.log"), 10)
            )
        };
        let qmp_path = dir.join("qmp.sock");
        let qmp = Qmp::connect(&qmp_path, Duration::from_secs(10));
        let qmp = tokio::select! {
            q = qmp => q?,
            how = qemu.wait() => return Err(Error::Sandbox(why(&format!("QEMU exited at startup ({how})")))),
        };
        // Under KVM the first guest dial (entropy, from init) proves the guest runs; under
        // TCG it proves the vsock path works.
        if kvm && config.accel == Accel::Auto {
            tokio::select! {
                _ = ports.first_dial() => {}
                how = qemu.wait() => return Err(Error::Sandbox(why(&format!("QEMU exited under KVM ({how})")))),
                _ = tokio::time::sleep(KVM_PROBE) => return Err(Error::Sandbox(why("no guest activity under KVM"))),
            }
        } else if !kvm {
            let probe = VSOCK_PROBE.min(config.connect_timeout);
            tokio::select! {
                _ = ports.first_dial() => {}
                how = qemu.wait() => return Err(Error::Sandbox(why(&format!("the VM ended before its first vsock dial ({how})")))),
                _ = tokio::time::sleep(probe) => return Err(Error::NoGuestVsock { after: probe, details: why("the guest's init did not dial") }),
            }
        }
        let timeout = config.connect_timeout;
        let stream = tokio::select! {
            r = bridge.accept() => r.map_err(|e| Error::io("accept the GCS's bridge connection", e))?.0,
            how = qemu.wait() => return Err(Error::Sandbox(why(&format!("the VM ended before the GCS connected ({how})")))),
            _ = tokio::time::sleep(timeout) => return Err(Error::Timeout { op: why("the GCS's bridge connection"), after: timeout }),
        };
        let connected = t0.elapsed();
        // One connection only, as the reference: a re-dial finds nothing.
        drop(bridge);
        let bridge_path = UnixTransport::hybrid_path(&dir.join("vsock.sock"), BRIDGE_PORT);
        if let Err(e) = std::fs::remove_file(&bridge_path) {
            tracing::debug!(error = %e, "bridge listener socket");
        }
        let transport = Arc::new(UnixTransport::hybrid_vsock(dir.join("vsock.sock")));
        let (client, caps) = tokio::select! {
            r = BridgeClient::connect(Box::new(stream), transport, config.client.clone()) => r?,
            how = qemu.wait() => return Err(Error::Sandbox(why(&format!("the VM ended during negotiation ({how})")))),
        };
        let times = StartTimes {
            connected,
            negotiated: t0.elapsed(),
            kvm,
        };
        Ok((client, caps, qmp, times))
    }

    /// Closes the bridge as soon as QEMU exits, so calls fail at once with the reason.
    fn watch_qemu(&self) {
        let client = self.client.clone();
        let exit = self.procs.qemu.exit_watch();
        let console = self.config.state_dir.join("console.log");
        tokio::spawn(async move {
            let how = super::agent::wait_watch(exit).await;
            client
                .close(&format!(
                    "the utility VM ended ({how}): {}",
                    tail(&console, 5)
                ))
                .await;
        });
    }

    /// The bridge to the GCS.
    pub fn client(&self) -> &BridgeClient {
        &self.client
    }

    /// What the GCS announced.
    pub fn capabilities(&self) -> &GcsCapabilities {
        &self.capabilities
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.config.state_dir.clone()
    }

    /// How the start went.
    pub fn start_times(&self) -> StartTimes {
        self.times
    }

    /// Host pids of QEMU and the vsock backend.
    pub fn pids(&self) -> (u32, u32) {
        (self.procs.qemu.pid(), self.procs.backend.pid())
    }

    /// The last lines of the GCS's log and of the VM console.
    pub fn log_tail(&self) -> String {
        let dir = &self.config.state_dir;
        format!(
            "gcs log:\n{}\nconsole:\n{}",
            tail(&dir.join("gcs.log"), 20),
            tail(&dir.join("console.log"), 10)
        )
    }
}

/// Kills `agent` and waits for it.
async fn kill(agent: &Agent, name: &str) {
    if !agent.kill_and_wait(Duration::from_secs(15)).await {
        tracing::warn!(pid = agent.pid(), "{name} did not end after SIGKILL");
    }
}

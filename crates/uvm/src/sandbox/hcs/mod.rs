//! The HCS sandbox: an LCOW utility VM created through the Host Compute Service (Windows),
//! its GCS reached over Hyper-V sockets, container layers attached as SCSI VHDs.
//!
//! The reference's `internal/uvm` (`CreateLCOW`, `Start`, the SCSI manager), in order:
//!
//! 1. the compute-system document ([`doc`]) is created with `HcsCreateComputeSystem`;
//! 2. the VM's `RuntimeId` (its Hyper-V VM id) is read from its properties;
//! 3. the host listens on the VM's entropy port (1), log port (109, when output is
//!    forwarded) and bridge port (`0x40000000`) before the VM starts (the guest always
//!    dials, gcs-bridge-protocol.md §1);
//! 4. the VM is started; entropy (512 random bytes) and the GCS's log stream are served;
//!    the GCS's bridge connection is accepted within the GCS connection timeout and
//!    negotiated by the [`BridgeClient`]; stdio listeners use the same VM sockets;
//! 5. containers: the pod network their spec names is plugged in once ([`network`]), their
//!    layer VHDs and scratch VHD are attached and mounted ([`scsi`]), `CombinedLayers`
//!    builds the root file system, and the container is created.
//!
//! Everything here is OS-neutral and runs against any [`HcsApi`], [`VmcomputeApi`] and
//! [`VmSockets`] (the tests use the `hcs` crate's simulators and in-memory sockets); on
//! Windows [`HcsBackends::host`] gives computecore.dll, vmcompute.dll and AF_HYPERV
//! sockets. **It has never run against a real HCS**: no Windows machine was available.

pub mod doc;
pub mod network;
pub mod scsi;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bridge::hresult::Hresult;
use bridge::messages::{
    CombinedLayers, GcsCapabilities, ModifyRequestType, ModifySettingRequest, ResourceSettings,
    NULL_CONTAINER_ID,
};
use hcs::api::HcsApi;
use hcs::vmcompute::VmcomputeApi;
use hcs::wclayer::Wclayer;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use self::doc::LcowOptions;
use self::scsi::{DetachStep, LayerFiles, ScsiDisks, Slot};
use super::{
    prepare_spec, validate_container_id, ContainerPaths, Sandbox, SandboxKind, VmResources,
};
use crate::client::{BridgeClient, ClientConfig};
use crate::container::{modify_settings, GcsContainer};
use crate::error::{Error, Result};
use crate::hvsock::{Guid, VmSockets, VmStdio, ENTROPY_BYTES, ENTROPY_PORT, LOG_PORT};
use crate::transport::{BoxStream, PortListener, BRIDGE_PORT};

/// Default bound of waiting for the GCS to connect (`GCSConnectionTimeout`, 2 minutes);
/// `HCSSHIM_TIMEOUT_GCSCONNECTION` (seconds) overrides it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long teardown waits for the VM to stop after terminating it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the GCS log shown in errors.
const LOG_TAIL_LINES: usize = 20;

/// What an HCS sandbox talks to.
#[derive(Clone)]
pub struct HcsBackends {
    /// computecore.dll (compute systems).
    pub hcs: Arc<dyn HcsApi>,
    /// vmcompute.dll (`GrantVmAccess` for the VHDs).
    pub vmcompute: Arc<dyn VmcomputeApi>,
    /// Where the host listens for the guest's connections.
    pub sockets: Arc<dyn VmSockets>,
    /// HNS, for the pod networks containers name; `None`: a container naming one fails.
    pub hcn: Option<hcn::Hcn>,
}

impl std::fmt::Debug for HcsBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HcsBackends")
            .field("hcs", &self.hcs)
            .field("sockets", &self.sockets)
            .finish_non_exhaustive()
    }
}

impl HcsBackends {
    /// This host's HCS: computecore.dll, vmcompute.dll and AF_HYPERV sockets. Fails with
    /// a clear error where HCS is not available.
    #[cfg(windows)]
    pub fn host() -> Result<Self> {
        Ok(Self {
            hcs: hcs::sys::default_api()?,
            vmcompute: hcs::sys::default_vmcompute()?,
            sockets: Arc::new(
                crate::hvsock::windows::HvSockets::new()
                    .map_err(|e| Error::io("initialize Winsock for Hyper-V sockets", e))?,
            ),
            // computenetwork.dll is loaded on first use: a host without HNS fails only
            // when a container names a pod network.
            hcn: hcn::Hcn::system().ok(),
        })
    }
}

/// How to start an HCS sandbox.
#[derive(Debug, Clone)]
pub struct HcsSandboxConfig {
    /// The compute system's id (the reference uses the pod or container id, or a GUID).
    pub id: String,
    /// A host directory for the sandbox's files (the GCS log); created by
    /// [`HcsSandbox::start`] and removed by teardown.
    pub state_dir: PathBuf,
    /// The utility VM.
    pub options: LcowOptions,
    /// Bound of waiting for the GCS's bridge connection after the VM started.
    pub connect_timeout: Duration,
    /// HCS call timeouts.
    pub timeouts: hcs::Timeouts,
    /// Bridge client timeouts.
    pub client: ClientConfig,
}

impl HcsSandboxConfig {
    /// Defaults for VM `id` with boot files in `boot_files_path`, the environment's HCS
    /// timeouts and GCS connection timeout.
    pub fn new(
        id: &str,
        state_dir: impl Into<PathBuf>,
        owner: &str,
        boot_files_path: &str,
    ) -> Self {
        let connect_timeout = std::env::var("HCSSHIM_TIMEOUT_GCSCONNECTION")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&s| s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        Self {
            id: id.to_owned(),
            state_dir: state_dir.into(),
            options: LcowOptions::new(owner, boot_files_path, "info"),
            connect_timeout,
            timeouts: hcs::env_timeouts(),
            client: ClientConfig::default(),
        }
    }
}

/// A running LCOW utility VM.
pub struct HcsSandbox {
    config: HcsSandboxConfig,
    system: hcs::System,
    vm_id: Guid,
    client: BridgeClient,
    capabilities: GcsCapabilities,
    wclayer: Wclayer,
    hcn: Option<hcn::Hcn>,
    /// The pod networks plugged in, by HCN namespace id (lowercased), with their NICs.
    networks: tokio::sync::Mutex<Vec<(String, Vec<String>)>>,
    disks: Mutex<ScsiDisks>,
    /// The entropy and log servers.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    torn_down: AtomicBool,
}

impl std::fmt::Debug for HcsSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HcsSandbox")
            .field("id", &self.config.id)
            .field("vm_id", &self.vm_id.to_string())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the host started before the GCS connected; dropped (stopped) on failure.
struct Servers(Vec<JoinHandle<()>>);

impl Drop for Servers {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl HcsSandbox {
    /// Creates and starts the utility VM, serves entropy and the GCS log, accepts the GCS's
    /// bridge connection and negotiates. On failure the VM is terminated and the state dir
    /// removed.
    pub async fn start(config: HcsSandboxConfig, backends: HcsBackends) -> Result<Self> {
        validate_system_id(&config.id)?;
        let document = doc::lcow_document(&config.options)?;
        for file in [config.options.kernel_path(), config.options.root_fs_path()] {
            if !Path::new(&file).is_file() {
                return Err(Error::InvalidArgument(format!(
                    "utility VM boot file {file} does not exist"
                )));
            }
        }
        let dir = config.state_dir.clone();
        if dir.exists() {
            return Err(Error::Sandbox(format!(
                "state dir {} already exists",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let system =
            match hcs::System::create(backends.hcs.clone(), &config.id, &document, config.timeouts)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    remove_dir(&dir);
                    return Err(e.into());
                }
            };
        match Self::start_created(config, backends, &system).await {
            Ok(sandbox) => Ok(sandbox),
            Err(e) => {
                stop_system(&system).await;
                remove_dir(&dir);
                Err(e)
            }
        }
    }

    async fn start_created(
        config: HcsSandboxConfig,
        backends: HcsBackends,
        system: &hcs::System,
    ) -> Result<Self> {
        let props = system.properties_v1(&[]).await?;
        let vm_id = Guid::parse(props.runtime_id.as_str()).ok_or_else(|| {
            Error::Sandbox(format!(
                "HCS reported an invalid RuntimeId {:?} for {}",
                props.runtime_id.as_str(),
                config.id
            ))
        })?;
        tracing::debug!(id = %config.id, %vm_id, "utility VM created");
        let sockets = &backends.sockets;
        let entropy = sockets
            .listen(vm_id, ENTROPY_PORT)
            .await
            .map_err(|e| Error::io(format!("listen on the VM's entropy port {ENTROPY_PORT}"), e))?;
        let log = if config.options.service_ports().contains(&LOG_PORT) {
            Some(
                sockets
                    .listen(vm_id, LOG_PORT)
                    .await
                    .map_err(|e| Error::io(format!("listen on the VM's log port {LOG_PORT}"), e))?,
            )
        } else {
            None
        };
        let bridge = sockets
            .listen(vm_id, BRIDGE_PORT)
            .await
            .map_err(|e| Error::io("listen on the VM's bridge port", e))?;

        let timeout = config.connect_timeout;
        let mut servers = Servers(vec![tokio::spawn(serve_entropy(entropy, timeout))]);
        if let Some(log) = log {
            let path = config.state_dir.join("gcs.log");
            servers.0.push(tokio::spawn(serve_log(log, path, timeout)));
        }
        system.start().await?;

        let log_path = config.state_dir.join("gcs.log");
        let stream: BoxStream = tokio::select! {
            r = bridge.accept() => r.map_err(|e| Error::io("accept the GCS's bridge connection", e))?,
            _ = system.wait() => return Err(Error::Sandbox(format!(
                "the utility VM stopped before its GCS connected ({}): {}",
                exit_reason(system),
                log_tail(&log_path)
            ))),
            _ = tokio::time::sleep(timeout) => return Err(Error::Timeout {
                op: "the GCS's bridge connection".into(),
                after: timeout,
            }),
        };
        let transport = Arc::new(VmStdio::new(backends.sockets.clone(), vm_id));
        let (client, capabilities) = tokio::select! {
            r = BridgeClient::connect(stream, transport, config.client.clone()) => r?,
            _ = system.wait() => return Err(Error::Sandbox(format!(
                "the utility VM stopped during negotiation ({}): {}",
                exit_reason(system),
                log_tail(&log_path)
            ))),
        };
        let reserved: Vec<Slot> = if config.options.root_on_scsi() {
            vec![Slot {
                controller: 0,
                lun: 0,
            }]
        } else {
            Vec::new()
        };
        let disks = ScsiDisks::new(config.options.scsi_controller_count, &reserved);
        let tasks = std::mem::take(&mut servers.0);
        Ok(Self {
            wclayer: Wclayer::new(backends.vmcompute.clone()),
            hcn: backends.hcn.clone(),
            networks: tokio::sync::Mutex::new(Vec::new()),
            system: system.clone(),
            vm_id,
            client,
            capabilities,
            disks: Mutex::new(disks),
            tasks: Mutex::new(tasks),
            torn_down: AtomicBool::new(false),
            config,
        })
    }

    /// The pod networks plugged in: each HCN namespace id (lowercased) with its NIC ids.
    pub async fn pod_networks(&self) -> Vec<(String, Vec<String>)> {
        self.networks.lock().await.clone()
    }

    /// The utility VM's Hyper-V VM id (its `RuntimeId`).
    pub fn vm_id(&self) -> Guid {
        self.vm_id
    }

    /// The compute system.
    pub fn system(&self) -> &hcs::System {
        &self.system
    }

    /// The SCSI disks attached for containers: host path and slot.
    pub fn attached_disks(&self) -> Vec<(String, Slot)> {
        lock(&self.disks).attached()
    }

    /// Attaches the container's VHDs, builds its root file system and creates it.
    /// `layers`: the layer VHDs base first, then the scratch VHD (see
    /// [`LayerFiles::from_paths`]).
    pub async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
    ) -> Result<GcsContainer> {
        validate_container_id(id)?;
        let files = LayerFiles::from_paths(layers)?;
        for f in files.layers.iter().chain([&files.scratch]) {
            if !f.is_file() {
                return Err(Error::InvalidArgument(format!(
                    "layer VHD {} does not exist",
                    f.display()
                )));
            }
        }
        if let Some(namespace) = network::spec_namespace(&spec) {
            self.plug_network(&namespace).await?;
        }
        let plan = lock(&self.disks).add(id, &files)?;
        let paths = ContainerPaths {
            bundle: PathBuf::from(format!("/run/gcs/c/{id}")),
            rootfs: PathBuf::from(&plan.combined_layers.container_root_path),
            scratch: PathBuf::from(&plan.scratch_dir),
        };
        let created = async {
            let config = prepare_spec(spec, &paths, None)?;
            for step in &plan.attach {
                self.wclayer
                    .grant_vm_access(&self.config.id, &step.host_path)
                    .await?;
                self.system.modify(&step.host_request).await?;
                modify_settings(&self.client, NULL_CONTAINER_ID, step.guest_request.clone())
                    .await?;
            }
            let layers = ModifySettingRequest::new(
                ModifyRequestType::Add,
                ResourceSettings::CombinedLayers(plan.combined_layers.clone()),
            );
            modify_settings(&self.client, NULL_CONTAINER_ID, layers).await?;
            match GcsContainer::create(&self.client, id, config).await {
                Ok(c) => Ok(c),
                Err(e) => {
                    if let Err(undo) = self.remove_root(&paths).await {
                        tracing::warn!(id, error = %undo, "remove the root of a failed container");
                    }
                    Err(e)
                }
            }
        }
        .await;
        match created {
            Ok(c) => Ok(c),
            Err(e) => {
                let steps = lock(&self.disks).abandon(id);
                if let Err(undo) = self.detach(steps).await {
                    tracing::warn!(id, error = %undo, "detach the disks of a failed container");
                }
                Err(e)
            }
        }
    }

    /// Plugs the endpoints of HCN namespace `namespace` into the VM as NICs and tells the
    /// GCS, once per namespace (the pod's sandbox container names it first, its workloads
    /// after). NICs stay until the VM goes; a failure leaves the namespace unplugged, to be
    /// tried again by the next container naming it.
    async fn plug_network(&self, namespace: &str) -> Result<()> {
        let key = namespace.to_lowercase();
        let mut networks = self.networks.lock().await;
        if networks.iter().any(|(ns, _)| *ns == key) {
            return Ok(());
        }
        let hcn = self.hcn.clone().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "pod network namespace {namespace}: this sandbox has no HNS to read it from"
            ))
        })?;
        let ns = namespace.to_owned();
        let endpoints =
            tokio::task::spawn_blocking(move || network::namespace_endpoints(&hcn, &ns))
                .await
                .map_err(|e| Error::Sandbox(format!("reading pod network {namespace}: {e}")))??;
        let mut nics = Vec::new();
        for ep in &endpoints {
            let nic = network::new_nic_id()?;
            self.system
                .modify(&network::add_nic_request(&nic, ep))
                .await?;
            // A GCS that cannot take adapters gets none (the reference's check).
            let hot_add = self
                .capabilities
                .guest_defined_capabilities
                .is_some_and(|c| c.namespace_add_request_supported);
            if hot_add {
                let adapter = network::guest_adapter(namespace, &nic, ep);
                let request = ModifySettingRequest::new(
                    ModifyRequestType::Add,
                    ResourceSettings::Network(adapter),
                );
                modify_settings(&self.client, NULL_CONTAINER_ID, request).await?;
            }
            tracing::debug!(namespace, endpoint = %ep.id, nic, "pod network endpoint plugged in");
            nics.push(nic);
        }
        networks.push((key, nics));
        Ok(())
    }

    async fn remove_root(&self, paths: &ContainerPaths) -> Result<()> {
        let remove = ModifySettingRequest::new(
            ModifyRequestType::Remove,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_root_path: paths.rootfs.display().to_string(),
                ..Default::default()
            }),
        );
        modify_settings(&self.client, NULL_CONTAINER_ID, remove).await
    }

    /// Unmounts, unplugs and detaches `steps`, all of them; returns the first failure.
    async fn detach(&self, steps: Vec<DetachStep>) -> Result<()> {
        let mut first = None;
        for step in steps {
            let r = async {
                modify_settings(&self.client, NULL_CONTAINER_ID, step.unmount.clone()).await?;
                modify_settings(&self.client, NULL_CONTAINER_ID, step.unplug.clone()).await?;
                self.system.modify(&step.host_request).await?;
                Ok::<(), Error>(())
            }
            .await;
            if let Err(e) = r {
                tracing::warn!(path = %step.host_path, error = %e, "detach a SCSI disk");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Removes a container: its guest state, its root file system, then the disks no other
    /// container uses.
    pub async fn remove_container(&self, container: &GcsContainer) -> Result<()> {
        let id = container.id();
        match container.delete_state().await {
            Err(e) if e.hresult() != Some(Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND) => return Err(e),
            _ => {}
        }
        let paths = ContainerPaths {
            bundle: PathBuf::from(format!("/run/gcs/c/{id}")),
            rootfs: PathBuf::from(format!("/run/gcs/c/{id}/rootfs")),
            scratch: PathBuf::new(),
        };
        self.remove_root(&paths).await?;
        let steps = lock(&self.disks).release(id);
        self.detach(steps).await
    }

    /// Closes the bridge, terminates the VM (which drops every attachment with it), waits
    /// for it to stop, closes the handle and removes the state dir. Safe to call again.
    pub async fn teardown(&self) -> Result<()> {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.client.close("the sandbox is being torn down").await;
        let result = terminate_and_close(&self.system).await;
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        for t in tasks {
            t.abort();
            // Until the task is gone it may hold the GCS log open, and Windows will not
            // remove a directory with an open file in it.
            if let Err(e) = t.await {
                if e.is_panic() {
                    tracing::warn!(error = %e, "a utility VM port server panicked");
                }
            }
        }
        let removed = match std::fs::remove_dir_all(&self.config.state_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
                format!("remove {}", self.config.state_dir.display()),
                e,
            )),
            _ => Ok(()),
        };
        result.and(removed)
    }
}

/// The HCS modifies that resize a utility VM (the reference's `UpdateMemory`, rounded up to
/// an even number of MiB as it does; `UpdateCPULimits`, which its `Update` never reaches
/// for a shadowed variable, applied here; `SetCPUGroup`).
pub fn vm_update_requests(r: &VmResources) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    if let Some(bytes) = r.memory_bytes {
        let mb = (bytes / (1 << 20) + 1) & !1;
        out.push(serde_json::json!({
            "ResourcePath": "VirtualMachine/ComputeTopology/Memory/SizeInMB",
            "Settings": mb,
        }));
    }
    if r.processor_limit.is_some() || r.processor_weight.is_some() {
        let mut limits = serde_json::Map::new();
        if let Some(l) = r.processor_limit {
            limits.insert("Limit".into(), l.into());
        }
        if let Some(w) = r.processor_weight {
            limits.insert("Weight".into(), w.into());
        }
        out.push(serde_json::json!({
            "ResourcePath": "VirtualMachine/ComputeTopology/Processor/Limits",
            "Settings": limits,
        }));
    }
    if let Some(id) = &r.cpu_group {
        out.push(serde_json::json!({
            "ResourcePath": "VirtualMachine/ComputeTopology/Processor/CpuGroup",
            "Settings": {"Id": id},
        }));
    }
    out
}

/// A compute-system id HCS accepts: 1 to 256 printable characters (the reference names a
/// container's utility VM `<id>@vm`).
fn validate_system_id(id: &str) -> Result<()> {
    if id.is_empty() || id.chars().count() > 256 || id.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "invalid compute system id {id:?}: use 1 to 256 printable characters"
        )));
    }
    Ok(())
}

/// Terminates `system` (already stopped or gone is fine), waits up to [`STOP_TIMEOUT`] and
/// closes the handle.
async fn terminate_and_close(system: &hcs::System) -> Result<()> {
    let mut result = Ok(());
    if let Err(e) = system.terminate().await {
        if !(hcs::error::is_already_stopped(&e) || hcs::error::is_not_exist(&e)) {
            result = Err(e.into());
        }
    }
    if result.is_ok()
        && tokio::time::timeout(STOP_TIMEOUT, system.wait())
            .await
            .is_err()
    {
        result = Err(Error::Timeout {
            op: "the utility VM's stop".into(),
            after: STOP_TIMEOUT,
        });
    }
    let closed = system.close().await.map_err(Error::from);
    result.and(closed)
}

/// [`terminate_and_close`] on a failed start, where the start's error is what matters.
async fn stop_system(system: &hcs::System) {
    if let Err(e) = terminate_and_close(system).await {
        tracing::warn!(id = system.id(), error = %e, "stop the utility VM of a failed start");
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "remove the state dir of a failed start");
    }
}

fn exit_reason(system: &hcs::System) -> String {
    system
        .exit_error()
        .map_or_else(|| "no error reported".into(), |e| e.to_string())
}

/// Accepts the guest init's entropy connection and sends it [`ENTROPY_BYTES`] random bytes.
async fn serve_entropy(listener: Box<dyn PortListener>, timeout: Duration) {
    let r = async {
        let mut stream = tokio::time::timeout(timeout, listener.accept())
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let mut seed = [0u8; ENTROPY_BYTES];
        getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
        stream.write_all(&seed).await?;
        stream.shutdown().await
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "serve entropy to the utility VM");
    }
}

/// Accepts the GCS's log connection and appends what it sends to `path`.
async fn serve_log(listener: Box<dyn PortListener>, path: PathBuf, timeout: Duration) {
    let r = async {
        let mut stream = tokio::time::timeout(timeout, listener.accept())
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        tokio::io::copy(&mut stream, &mut file).await?;
        file.flush().await
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "relay the GCS log");
    }
}

/// The last lines of the GCS log.
fn log_tail(path: &Path) -> String {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return format!("(the GCS log {} is unreadable: {e})", path.display()),
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    if tail.is_empty() {
        "(the GCS log is empty)".into()
    } else {
        format!("GCS log:\n{tail}")
    }
}

#[async_trait]
impl Sandbox for HcsSandbox {
    fn kind(&self) -> SandboxKind {
        SandboxKind::Hcs
    }

    fn client(&self) -> &BridgeClient {
        &self.client
    }

    fn capabilities(&self) -> &GcsCapabilities {
        &self.capabilities
    }

    fn state_dir(&self) -> PathBuf {
        self.config.state_dir.clone()
    }

    fn log_tail(&self) -> String {
        log_tail(&self.config.state_dir.join("gcs.log"))
    }

    async fn create_container(
        &self,
        id: &str,
        spec: serde_json::Value,
        layers: &[PathBuf],
    ) -> Result<GcsContainer> {
        HcsSandbox::create_container(self, id, spec, layers).await
    }

    async fn remove_container(&self, container: &GcsContainer) -> Result<()> {
        HcsSandbox::remove_container(self, container).await
    }

    async fn update_vm(&self, resources: &VmResources) -> Result<()> {
        for request in vm_update_requests(resources) {
            self.system.modify(&request).await?;
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<()> {
        HcsSandbox::teardown(self).await
    }
}

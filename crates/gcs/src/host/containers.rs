//! Container operations: Create, Shutdown, GetProperties, DeleteContainerState, constraints.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use serde_json::Value;

use super::{Host, Slot};
use crate::container::{Container, ContainerInfo, ExitType, Status};
use crate::error::{hr, Error, PathContext, Result};
use crate::network::join_network_namespace;
use crate::process::{Process, ProcessKind};
use crate::runc::RuncStdio;
use crate::stdio::{self, ConsoleSocket, PipeEnds, ProcessIo};

/// A Create request in internal form.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Container id.
    pub id: String,
    /// ActivityId of the request.
    pub activity_id: String,
    /// `OciBundlePath`.
    pub bundle: PathBuf,
    /// `OciSpecification`.
    pub spec: Value,
    /// `ScratchDirPath`.
    pub scratch: Option<PathBuf>,
}

/// Removes a placeholder slot if creation fails.
struct CreatingGuard<'a> {
    host: &'a Host,
    id: String,
    armed: bool,
}

impl Drop for CreatingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.host
                .containers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
        }
    }
}

impl Host {
    /// Create: registers the container, prepares the bundle and runs `runc create`.
    pub fn create_container(self: &Arc<Self>, req: CreateRequest) -> Result<u32> {
        {
            let mut t = self.containers.lock().unwrap_or_else(|p| p.into_inner());
            if t.contains_key(&req.id) {
                return Err(Error::Hresult(hr::SYSTEM_ALREADY_EXISTS));
            }
            t.insert(req.id.clone(), Slot::Creating);
        }
        let mut guard = CreatingGuard {
            host: self,
            id: req.id.clone(),
            armed: true,
        };
        validate_id(&req.id)?;
        let container = self.do_create(req)?;
        let pid = container.init().pid();
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                container.id().to_string(),
                Slot::Ready(Arc::clone(&container)),
            );
        guard.armed = false;
        self.watch_init(container)?;
        Ok(pid)
    }

    fn do_create(&self, req: CreateRequest) -> Result<Arc<Container>> {
        // A scratch outside the bundle (shared sandbox scratch): make the bundle disk-backed
        // by binding `<scratch>/bundle` onto it (`bundleNeedsScratchBind`).
        let bundle_bind = match &req.scratch {
            Some(s) if !s.starts_with(&req.bundle) => {
                crate::storage::bind_scratch_bundle(s, &req.bundle)?;
                true
            }
            _ => false,
        };
        let bundle = req.bundle.clone();
        let r = self.do_create_bound(req, bundle_bind);
        if r.is_err() {
            // What the create wrote there goes, as the reference removes the bundle of a
            // failed create; mounts in it (the host's rootfs) stay for the host to remove.
            if let Err(e) = crate::storage::remove_tree_same_fs(&bundle) {
                tracing::warn!(bundle = %bundle.display(), error = %e, "the bundle of a failed create was not removed");
            }
            if bundle_bind {
                let _ = crate::storage::unmount_all(&bundle);
            }
        }
        r
    }

    fn do_create_bound(&self, req: CreateRequest, bundle_bind: bool) -> Result<Arc<Container>> {
        let CreateRequest {
            id,
            activity_id,
            bundle,
            mut spec,
            scratch,
        } = req;
        let namespace = spec
            .pointer("/windows/network/networkNamespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let resolv = namespace
            .as_deref()
            .map(|ns| self.networks.resolv_conf(ns))
            .unwrap_or_default();
        // A namespace another container owns (the pod's sandbox): join its network
        // namespace rather than getting a new one.
        let owner = namespace.as_deref().and_then(|ns| self.networks.owner(ns));
        if let Some(pid) = owner {
            join_network_namespace(&mut spec, pid)?;
        }
        let prepared = prepare_bundle(&id, &bundle, &mut spec, &resolv, self.host_cgroups)?;
        // They belong to the sandbox (other workloads may share them): removed with it.
        for h in &prepared.hugepages {
            crate::storage::mount_hugetlbfs(&h.path, &h.page_size).map_err(|e| Error::Wrapped {
                hresult: hr::FAIL,
                message: format!("failed to update hugepages mounts for container {id}: {e}"),
            })?;
        }
        let poststart_hooks = spec
            .pointer("/hooks/poststart")
            .and_then(Value::as_array)
            .is_some_and(|h| !h.is_empty());

        let state_dir = self.runc_state.join(&id);
        std::fs::create_dir_all(&state_dir).with_path("mkdir", &state_dir)?;
        let result = self.runc_create(&id, &bundle, &state_dir, prepared.terminal);
        let (pid, io) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&state_dir);
                return Err(e);
            }
        };
        let init = Process::new(pid, ProcessKind::Init);
        init.set_pending_io(io);
        let initpid = state_dir.join("initpid");
        std::fs::write(&initpid, pid.to_string()).with_path("write", &initpid)?;

        let attached = match owner {
            Some(_) => Ok(()),
            None => self.attach_network(&prepared, &spec, pid),
        };
        if let Err(e) = attached {
            let _ = self.runc.delete(&id, true);
            let _ = std::fs::remove_dir_all(&state_dir);
            return Err(e);
        }
        Ok(Container::new(
            ContainerInfo {
                id,
                activity_id,
                bundle,
                scratch,
                bundle_bind,
                state_dir,
                role: prepared.role,
                cgroups_path: prepared.cgroups_path,
                owns_pid_ns: prepared.owns_pid_ns,
                poststart_hooks,
                tee_log: prepared.tee_log,
            },
            init,
        ))
    }

    /// Gives a sandbox's or standalone container's network namespace (its NICs) to its
    /// init `pid`. A CRI sandbox needs one the GCS knows, unless its spec says
    /// `io.microsoft.cri.skip-pod-networking: true`; a standalone container may have none.
    fn attach_network(
        &self,
        prepared: &crate::spec::Prepared,
        spec: &Value,
        pid: u32,
    ) -> Result<()> {
        let ns = prepared.network_namespace.as_deref();
        if prepared.role == crate::spec::Role::Sandbox
            && !ns.is_some_and(|n| self.networks.exists(n))
        {
            let skip = spec
                .pointer("/annotations/io.microsoft.cri.skip-pod-networking")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if skip {
                return Ok(());
            }
            return Err(Error::Wrapped {
                hresult: hr::NOT_FOUND,
                message: format!("namespace '{}' not found", ns.unwrap_or_default()),
            });
        }
        match ns {
            Some(ns) => self.networks.attach(&self.reaper, ns, pid),
            None => Ok(()),
        }
    }

    /// Runs `runc create` with pipes or a console socket; returns the init pid and its
    /// process-side stdio.
    fn runc_create(
        &self,
        id: &str,
        bundle: &Path,
        state_dir: &Path,
        terminal: bool,
    ) -> Result<(u32, ProcessIo)> {
        let tmp = state_dir.join(format!("tmp-{}", self.unique()));
        std::fs::create_dir_all(&tmp).with_path("mkdir", &tmp)?;
        let pid_file = tmp.join("pid");
        let outcome = if terminal {
            let sock_path = self.console_socket_path();
            let console = ConsoleSocket::bind(&sock_path)?;
            let r = self.runc.create(
                id,
                bundle,
                &pid_file,
                Some(console.path()),
                RuncStdio::null(),
            );
            let r = r.map_err(Error::from).and_then(|()| {
                let master = console.receive()?;
                Ok(ProcessIo::Tty(Arc::new(master)))
            });
            let _ = std::fs::remove_file(&sock_path);
            r
        } else {
            let (in_r, in_w) = stdio::pipe()?;
            let (out_r, out_w) = stdio::pipe()?;
            let (err_r, err_w) = stdio::pipe()?;
            let rs = RuncStdio {
                stdin: Stdio::from(in_r),
                stdout: Stdio::from(out_w),
                stderr: Stdio::from(err_w),
            };
            self.runc
                .create(id, bundle, &pid_file, None, rs)
                .map(|()| {
                    ProcessIo::Pipes(PipeEnds {
                        stdin: Some(in_w),
                        stdout: Some(out_r),
                        stderr: Some(err_r),
                    })
                })
                .map_err(Error::from)
        };
        let io = match outcome {
            Ok(io) => io,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let pid = read_pid(&pid_file)?;
        let dir = state_dir.join(pid.to_string());
        std::fs::rename(&tmp, &dir).with_path("rename", &tmp)?;
        Ok((pid, io))
    }

    /// A short path for a console socket (sun_path is limited to 108 bytes).
    pub(super) fn console_socket_path(&self) -> PathBuf {
        self.runc_state.join(format!("c{}.sock", self.unique()))
    }

    /// Starts the thread that handles the init process's exit and sends the notification.
    fn watch_init(self: &Arc<Self>, container: Arc<Container>) -> Result<()> {
        let host = Arc::clone(self);
        std::thread::Builder::new()
            .name("init-exit".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let init = Arc::clone(container.init());
                let status = host.reaper.wait(init.pid());
                tracing::debug!(id = container.id(), ?status, "container init exited");
                if !container.owns_pid_ns() {
                    // The container's other processes share a pid namespace that outlives
                    // init; a failure leaves them running, which the log must show.
                    if let Err(e) = host.runc.kill(container.id(), libc::SIGKILL, true) {
                        tracing::error!(id = container.id(), error = %e, "kill the container's remaining processes");
                    }
                }
                init.finish(status.container_code());
                container.mark_terminated();
                init.wait_answered();
                host.notifier.container_exited(
                    container.id(),
                    container.activity_id(),
                    container.exit_type(),
                );
            })
            .map_err(|e| Error::io("spawn init watcher", e))?;
        Ok(())
    }

    /// ShutdownGraceful / ShutdownForced of a container: `runc kill <id> 15|9`.
    pub fn shutdown_container(&self, id: &str, forced: bool) -> Result<()> {
        let c = self.container(id)?;
        let (signal, exit_type) = if forced {
            (libc::SIGKILL, ExitType::Forced)
        } else {
            (libc::SIGTERM, ExitType::Graceful)
        };
        // A container whose init has exited cannot be shut down: SystemAlreadyStopped. If
        // init exits between this check and the kill, runc's "container not running" is
        // E_FAIL, as the reference's parseRuncError makes it.
        if c.status() == Status::Terminated {
            return Err(Error::Context {
                context: format!("container {id} is not running"),
                hresult: hr::SYSTEM_ALREADY_STOPPED,
            });
        }
        // The exit type is recorded before the signal (the exit notification must see it)
        // and restored if the signal was not delivered.
        let previous = c.exit_type();
        c.set_exit_type(exit_type);
        if let Err(e) = self.runc.kill(id, signal, false) {
            c.set_exit_type(previous);
            return Err(e.into());
        }
        c.stop_stdio_reconnect();
        Ok(())
    }

    /// DeleteContainerState: `runc delete`, removes the wrapper state, the scratch and the
    /// bundle (without crossing into mounts such as the rootfs overlay), and drops the
    /// container from the table in every case.
    pub fn delete_container_state(&self, id: &str) -> Result<()> {
        let c = self.container(id)?;
        c.stop_stdio_reconnect();
        let mut first_err: Option<Error> = None;
        if let Err(e) = self.runc.delete(id, false) {
            first_err.get_or_insert(e.into());
        }
        match std::fs::remove_dir_all(c.state_dir()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                first_err.get_or_insert(Error::path("remove", c.state_dir(), e));
            }
            _ => {}
        }
        if c.bundle_bind() {
            if let Err(e) = crate::storage::unmount_all(c.bundle()) {
                first_err.get_or_insert(e);
            }
        }
        if *c.role() == crate::spec::Role::Sandbox {
            // Its workloads' hugetlbfs mounts, and what the host mounted in sandboxMounts.
            for dir in ["hugepages", "sandboxMounts"] {
                if let Err(e) = crate::storage::unmount_below(&c.bundle().join(dir)) {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(s) = c.scratch() {
            if let Err(e) = crate::storage::remove_tree_same_fs(s) {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = crate::storage::remove_tree_same_fs(c.bundle()) {
            first_err.get_or_insert(e);
        }
        self.containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(ns) = self.networks.namespace_of_pid(c.init().pid()) {
            self.networks.detach(&ns);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// GetProperties of a container: the requested property types, as the JSON object put
    /// in `Properties`.
    pub fn container_properties(&self, id: &str, types: &[String]) -> Result<Value> {
        let c = self.container(id)?;
        let mut props = serde_json::Map::new();
        for t in types {
            match t.as_str() {
                "ProcessList" => {
                    let mut pids = if c.status() == Status::Terminated {
                        Vec::new()
                    } else {
                        self.runc.ps(id)?
                    };
                    for p in c.exec_pids() {
                        if !pids.contains(&p) {
                            pids.push(p);
                        }
                    }
                    let list: Vec<Value> = pids
                        .into_iter()
                        .map(|p| serde_json::json!({ "ProcessId": p }))
                        .collect();
                    props.insert("ProcessList".into(), Value::Array(list));
                }
                "Statistics" => {
                    props.insert(
                        "LCOWMetrics".into(),
                        crate::cgroup::metrics(c.cgroups_path())?,
                    );
                }
                other => tracing::warn!(property = other, "unknown property type ignored"),
            }
        }
        Ok(Value::Object(props))
    }

    /// ModifySettings ContainerConstraints: `runc update --resources - <id>`.
    pub fn update_constraints(&self, id: &str, linux: &Value) -> Result<()> {
        self.container(id)?;
        let body = serde_json::to_vec(linux)
            .map_err(|e| Error::Invalid(format!("encode resources: {e}")))?;
        self.runc.update(id, &body)?;
        Ok(())
    }
}

/// Prepares container `id`'s bundle from the Create's OCI spec (spec §4 steps 3-9): rewrites
/// the spec, writes the bundle dir (mode 0700) with its `config.json`, and creates
/// `process.cwd` in the rootfs, confined to it. Everything it writes is under `bundle` or the
/// rootfs (`root.path`), and for a workload under its sandbox's
/// `sandboxMounts`/`sandboxTmpfsMounts`. With `host_cgroups`, a host cgroup path the spec
/// gives for the container is kept ([`bridge::ext::host_cgroup_path`]).
pub fn prepare_bundle(
    id: &str,
    bundle: &Path,
    spec: &mut Value,
    resolv: &str,
    host_cgroups: bool,
) -> Result<crate::spec::Prepared> {
    let given = host_cgroups
        .then(|| bridge::ext::host_cgroup_path(id, spec))
        .flatten();
    let mut prepared = crate::spec::prepare(id, bundle, spec, resolv)?;
    if let Some(path) = given {
        spec["linux"]["cgroupsPath"] = Value::String(path.clone());
        prepared.cgroups_path = path;
    }
    // Normally `<bundle>/rootfs` (spec §4); the host may put it elsewhere (a bundle bound
    // from a shared scratch would hide it), so it is taken as given: it comes from the host,
    // while `process.cwd` comes from the untrusted image.
    let root = spec.pointer("/root/path").and_then(Value::as_str).map(|r| {
        if Path::new(r).is_absolute() {
            PathBuf::from(r)
        } else {
            bundle.join(r)
        }
    });
    std::fs::create_dir_all(bundle).with_path("mkdir", bundle)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bundle, std::fs::Permissions::from_mode(0o700))
        .with_path("chmod", bundle)?;
    let config = bundle.join("config.json");
    let mut doc = serde_json::to_vec(&spec)
        .map_err(|e| Error::Invalid(format!("encode config.json: {e}")))?;
    doc.push(b'\n');
    std::fs::write(&config, doc).with_path("write", &config)?;
    if let (Some(root), true) = (&root, prepared.cwd != "/") {
        // Confined: a `..` or a symlink in the image cannot lead outside the rootfs.
        crate::rootfs::mkdir_all(root, &prepared.cwd)?;
    }
    Ok(prepared)
}

/// Container ids become file names and runc arguments: refuse anything that is not a plain
/// name.
fn validate_id(id: &str) -> Result<()> {
    if crate::spec::is_plain_name(id) {
        Ok(())
    } else {
        // The reference checks ids only in confidential mode, with a plain error (E_FAIL).
        Err(Error::Invalid(format!(
            "invalid container id: {id} (must be a plain file name)"
        )))
    }
}

pub(super) fn read_pid(path: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(path).with_path("read pid file", path)?;
    text.trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("bad pid in {}: {text:?}", path.display())))
}

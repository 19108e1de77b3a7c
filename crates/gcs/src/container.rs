//! One container: its identity, lifecycle state and process table, under its own lock.
//!
//! Status moves Created → Running (after `runc start`) → Terminated (init exited). The host
//! table holds a separate "creating" placeholder while `runc create` runs, so lookups during
//! creation answer `InvalidState` as the reference does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{hr, Error, Result};
use crate::process::Process;
use crate::spec::Role;

/// Lifecycle status of a created container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `runc create` done, init not started.
    Created,
    /// `runc start` done.
    Running,
    /// The init process has exited.
    Terminated,
}

/// How the container ended, reported in the exit notification's `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitType {
    /// After SIGTERM.
    Graceful,
    /// After SIGKILL.
    Forced,
    /// Anything else.
    Unexpected,
}

impl ExitType {
    /// The notification `Type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitType::Graceful => "GracefulExit",
            ExitType::Forced => "ForcedExit",
            ExitType::Unexpected => "UnexpectedExit",
        }
    }

    /// The exit type a signal to the init process implies, if any.
    pub fn for_signal(signal: i32) -> Option<Self> {
        match signal {
            libc::SIGTERM => Some(ExitType::Graceful),
            libc::SIGKILL => Some(ExitType::Forced),
            _ => None,
        }
    }
}

struct Inner {
    status: Status,
    exit_type: ExitType,
    execs: HashMap<u32, Arc<Process>>,
}

/// A created container.
pub struct Container {
    id: String,
    activity_id: String,
    bundle: PathBuf,
    scratch: Option<PathBuf>,
    bundle_bind: bool,
    /// `<state>/gcsrunc/<id>`: initpid and one dir per process.
    state_dir: PathBuf,
    role: Role,
    cgroups_path: String,
    owns_pid_ns: bool,
    poststart_hooks: bool,
    tee_log: Option<PathBuf>,
    init: Arc<Process>,
    /// Stops re-dialing of the init's stdio once the container is torn down.
    stdio_stop: Arc<std::sync::atomic::AtomicBool>,
    inner: Mutex<Inner>,
}

/// Everything known about a container once `runc create` succeeded.
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// ActivityId of the Create request (echoed in the exit notification).
    pub activity_id: String,
    /// OCI bundle.
    pub bundle: PathBuf,
    /// Scratch dir, if any.
    pub scratch: Option<PathBuf>,
    /// `<scratch>/bundle` is bind-mounted on the bundle.
    pub bundle_bind: bool,
    /// Wrapper state dir.
    pub state_dir: PathBuf,
    /// Pod role.
    pub role: Role,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// Whether it owns its pid namespace.
    pub owns_pid_ns: bool,
    /// Whether the spec has `hooks.poststart` (which only `runc start` runs).
    pub poststart_hooks: bool,
    /// Where the init's output is also appended (the tee-log annotations).
    pub tee_log: Option<PathBuf>,
}

impl Container {
    /// A container in status Created with its init process.
    pub fn new(info: ContainerInfo, init: Arc<Process>) -> Arc<Self> {
        Arc::new(Container {
            id: info.id,
            activity_id: info.activity_id,
            bundle: info.bundle,
            scratch: info.scratch,
            bundle_bind: info.bundle_bind,
            state_dir: info.state_dir,
            role: info.role,
            cgroups_path: info.cgroups_path,
            owns_pid_ns: info.owns_pid_ns,
            poststart_hooks: info.poststart_hooks,
            tee_log: info.tee_log,
            init,
            stdio_stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            inner: Mutex::new(Inner {
                status: Status::Created,
                exit_type: ExitType::Unexpected,
                execs: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Container id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// ActivityId of the Create request.
    pub fn activity_id(&self) -> &str {
        &self.activity_id
    }
    /// OCI bundle dir.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }
    /// Scratch dir.
    pub fn scratch(&self) -> Option<&Path> {
        self.scratch.as_deref()
    }
    /// Whether the bundle is a bind of `<scratch>/bundle`.
    pub fn bundle_bind(&self) -> bool {
        self.bundle_bind
    }
    /// Wrapper state dir.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    /// Pod role.
    pub fn role(&self) -> &Role {
        &self.role
    }
    /// `linux.cgroupsPath`.
    pub fn cgroups_path(&self) -> &str {
        &self.cgroups_path
    }
    /// Whether the container has its own pid namespace.
    pub fn owns_pid_ns(&self) -> bool {
        self.owns_pid_ns
    }

    /// Whether the spec has poststart hooks.
    pub fn has_poststart_hooks(&self) -> bool {
        self.poststart_hooks
    }

    /// Where the init's output is also appended, if anywhere.
    pub fn tee_log(&self) -> Option<&Path> {
        self.tee_log.as_deref()
    }

    /// The init process.
    pub fn init(&self) -> &Arc<Process> {
        &self.init
    }

    /// The flag that stops the init's stdio re-dial.
    pub fn stdio_stop(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.stdio_stop)
    }

    /// Stops stdio re-dialing (shutdown, delete).
    pub fn stop_stdio_reconnect(&self) {
        self.stdio_stop
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Current status.
    pub fn status(&self) -> Status {
        self.lock().status
    }

    /// Moves Created → Running; any other move is refused.
    pub fn mark_running(&self) -> Result<()> {
        let mut s = self.lock();
        match s.status {
            Status::Created => {
                s.status = Status::Running;
                Ok(())
            }
            Status::Running => Err(Error::Invalid(format!(
                "container {} is already started",
                self.id
            ))),
            Status::Terminated => Err(Error::Hresult(hr::SYSTEM_ALREADY_STOPPED)),
        }
    }

    /// Init exited.
    pub fn mark_terminated(&self) {
        self.lock().status = Status::Terminated;
    }

    /// Records why the container is going to exit.
    pub fn set_exit_type(&self, t: ExitType) {
        self.lock().exit_type = t;
    }

    /// The recorded exit type.
    pub fn exit_type(&self) -> ExitType {
        self.lock().exit_type
    }

    /// Adds an exec'd process.
    pub fn add_exec(&self, p: Arc<Process>) {
        self.lock().execs.insert(p.pid(), p);
    }

    /// The init or exec process with this pid (`ErrNotFound` otherwise).
    pub fn process(&self, pid: u32) -> Result<Arc<Process>> {
        if pid == self.init.pid() {
            return Ok(Arc::clone(&self.init));
        }
        self.lock()
            .execs
            .get(&pid)
            .cloned()
            .ok_or(Error::Hresult(hr::NOT_FOUND))
    }

    /// Drops an exec'd process record once it is done, with its state dir.
    pub fn forget_if_done(&self, pid: u32) {
        let mut s = self.lock();
        if s.execs.get(&pid).is_some_and(|p| p.is_done()) {
            s.execs.remove(&pid);
            let _ = std::fs::remove_dir_all(self.state_dir.join(pid.to_string()));
        }
    }

    /// Pids of exec'd processes that runc started and that are now zombies or exited but
    /// not yet waited: reported with the process list like the reference.
    pub fn exec_pids(&self) -> Vec<u32> {
        self.lock().execs.keys().copied().collect()
    }
}

//! The processes a runhcs shim tracks for its one container: init once started, and the
//! execs by pid. Shared by the Linux and the Windows shim, which differ in sandbox and
//! stdio only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use uvm::{GcsContainer, GcsProcess};

use crate::error::{Error, Result};
use crate::state::Status;

/// Init and the exec processes of a shim's container.
#[derive(Default)]
pub(crate) struct Processes {
    init: Mutex<Option<Arc<GcsProcess>>>,
    execs: Mutex<HashMap<u32, Arc<GcsProcess>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Processes {
    /// `runhcs start` of `container` in `status`: starts it and its init process (with a
    /// TTY when `terminal`), and records init.
    pub(crate) async fn start(
        &self,
        status: Status,
        container: &GcsContainer,
        terminal: bool,
    ) -> Result<Arc<GcsProcess>> {
        match status {
            Status::Created => {}
            Status::Running => {
                return Err(Error::State(
                    "cannot start an already running container".into(),
                ))
            }
            Status::Stopped => {
                return Err(Error::State(
                    "cannot start a container that has stopped".into(),
                ))
            }
        }
        container.start().await?;
        let init = Arc::new(container.start_init(true, true, !terminal).await?);
        *lock(&self.init) = Some(init.clone());
        Ok(init)
    }

    /// Records a started exec process.
    pub(crate) fn add_exec(&self, p: Arc<GcsProcess>) {
        lock(&self.execs).insert(p.pid(), p);
    }

    /// Forgets an exec process that has exited.
    pub(crate) fn remove_exec(&self, pid: u32) {
        lock(&self.execs).remove(&pid);
    }

    /// Init (`None`) or the process with `pid`.
    pub(crate) fn get(&self, pid: Option<u32>) -> Result<Arc<GcsProcess>> {
        let init = lock(&self.init).clone();
        match pid {
            None => init.ok_or_else(|| Error::State("the container is not running".into())),
            Some(pid) => {
                if let Some(i) = init.filter(|i| i.pid() == pid) {
                    return Ok(i);
                }
                lock(&self.execs)
                    .get(&pid)
                    .cloned()
                    .ok_or_else(|| Error::Invalid(format!("no process with pid {pid}")))
            }
        }
    }

    /// `runhcs kill` of `container` in `status`: init gets `signal` (with `all`, every exec
    /// first); a created container without init is taken down the way ShutdownForced does.
    pub(crate) async fn kill(
        &self,
        status: Status,
        container: &GcsContainer,
        signal: i32,
        all: bool,
    ) -> Result<()> {
        match status {
            Status::Stopped => Err(Error::State("container not running".into())),
            Status::Created => {
                container.terminate().await?;
                Ok(())
            }
            Status::Running => {
                if all {
                    let execs: Vec<_> = lock(&self.execs).values().cloned().collect();
                    for p in execs {
                        // One exec that is already gone must not keep init from the signal.
                        if let Err(e) = p.signal(Some(signal)).await {
                            tracing::warn!(pid = p.pid(), error = %e, "signal an exec process");
                        }
                    }
                }
                self.get(None)?.signal(Some(signal)).await?;
                Ok(())
            }
        }
    }
}

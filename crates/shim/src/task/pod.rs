//! A pod: the sandbox (pause) task, which owns the pod's one sandbox, and the workload
//! tasks created in it (spec §1.3 "Pod", §1.4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{ExecState, Task};
use crate::error::{Error, Result};
use crate::host::TaskHost;

/// A pod hosted by a sandbox shim.
#[derive(Debug)]
pub struct Pod {
    id: String,
    host: Arc<dyn TaskHost>,
    sandbox: Arc<Task>,
    workloads: Mutex<HashMap<String, Arc<Task>>>,
    /// Ids being created, so that two Creates of one id cannot race.
    creating: Mutex<std::collections::HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pod {
    /// A pod whose sandbox task is `sandbox` (it owns `host`).
    pub fn new(id: &str, host: Arc<dyn TaskHost>, sandbox: Arc<Task>) -> Self {
        Self {
            id: id.to_owned(),
            host,
            sandbox,
            workloads: Mutex::new(HashMap::new()),
            creating: Mutex::new(Default::default()),
        }
    }

    /// The pod (sandbox) id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pod's sandbox host, where workloads are created.
    pub fn host(&self) -> &Arc<dyn TaskHost> {
        &self.host
    }

    /// The sandbox task.
    pub fn sandbox(&self) -> &Arc<Task> {
        &self.sandbox
    }

    /// Checks a new workload (§1.3 CreateTask) and reserves its id; call
    /// [`Pod::finish_create`] with the outcome.
    pub async fn begin_create(&self, id: &str, sandbox_annotation: Option<&str>) -> Result<()> {
        if id == self.id {
            return Err(Error::AlreadyExists(format!(
                "task with id: '{id}' already exists"
            )));
        }
        if self.sandbox.init().state().await != ExecState::Running {
            return Err(Error::FailedPrecondition(format!(
                "task with id: '{id}' cannot be created in pod: '{}' which is not running",
                self.id
            )));
        }
        match sandbox_annotation {
            Some(sb) if sb == self.id => {}
            other => {
                return Err(Error::FailedPrecondition(format!(
                    "task with id: '{id}' has sandbox id {other:?}, not the pod's '{}'",
                    self.id
                )))
            }
        }
        if lock(&self.workloads).contains_key(id) || !lock(&self.creating).insert(id.to_owned()) {
            return Err(Error::AlreadyExists(format!(
                "task with id: '{id}' already exists"
            )));
        }
        Ok(())
    }

    /// Ends a create begun with [`Pod::begin_create`]: stores the task if it was made.
    pub fn finish_create(&self, id: &str, task: Option<Arc<Task>>) {
        lock(&self.creating).remove(id);
        if let Some(t) = task {
            lock(&self.workloads).insert(id.to_owned(), t);
        }
    }

    /// The sandbox task or a workload; NotFound otherwise.
    pub fn get_task(&self, id: &str) -> Result<Arc<Task>> {
        if id == self.id {
            return Ok(self.sandbox.clone());
        }
        lock(&self.workloads)
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("task with id: '{id}' not found")))
    }

    /// Every task, the sandbox first.
    pub fn tasks(&self) -> Vec<Arc<Task>> {
        let mut v = vec![self.sandbox.clone()];
        v.extend(lock(&self.workloads).values().cloned());
        v
    }

    /// KillTask: `all` on the sandbox kills every workload and the sandbox at once.
    pub async fn kill_task(&self, id: &str, eid: &str, signal: u32, all: bool) -> Result<()> {
        let task = self.get_task(id)?;
        if all && !eid.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "cannot signal all with non empty ExecID: '{eid}'"
            )));
        }
        if all && id == self.id {
            let mut handles = Vec::new();
            for t in self.tasks() {
                handles.push(tokio::spawn(async move { t.kill("", signal, true).await }));
            }
            let mut first = None;
            for h in handles {
                let r = h
                    .await
                    .map_err(|e| Error::Other(format!("kill task: {e}")))
                    .and_then(|r| r);
                if let Err(e) = r {
                    first.get_or_insert(e);
                }
            }
            return first.map_or(Ok(()), Err);
        }
        task.kill(eid, signal, all).await
    }

    /// DeleteTask: a workload whose init runs cannot go; a workload is removed from the
    /// pod; the sandbox stays (its Delete is the pod's end, handled by its task).
    pub async fn delete_task(&self, id: &str) -> Result<()> {
        let task = self.get_task(id)?;
        if task.init().state().await == ExecState::Running {
            return Err(Error::FailedPrecondition(
                "cannot delete task with running exec".into(),
            ));
        }
        if id != self.id {
            lock(&self.workloads).remove(id);
        }
        Ok(())
    }
}

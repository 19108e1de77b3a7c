//! An in-memory vmcompute.dll for tests (feature `fake`): the v1 compute calls with the
//! pending/notification model, the service calls, `HNSCall` and the layer exports.
//!
//! Lifecycle calls (create, start, pause, resume, save) behave according to [`Completion`]:
//! synchronously, or "pending" with the completion notification delivered later from
//! another thread (as HCS does from its worker threads), or pending forever. A notification
//! for a handle without a registered callback is queued and delivered on registration.
//!
//! This module holds the simulated state, the test controls and the notification and
//! lifecycle machinery; `exports` answers the `VmcomputeApi` calls.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::io::DuplexStream;

use crate::api::{RawProcess, RawSystem};
use crate::fake::{error_document, GuestStdio};
use crate::hresult::HResult;
use crate::v1::notification as n;
use crate::vmcompute::{NotificationSink, V1Notification, V1Output};

mod exports;

/// `HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)`.
const E_INVALID_HANDLE: i32 = 0x8007_0006_u32 as i32;
/// `HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND)`.
const E_PROC_NOT_FOUND: i32 = 0x8007_007F_u32 as i32;

pub use crate::fake_calls::Call;
use crate::fake_calls::CallLog;

/// How lifecycle calls complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Completion {
    /// The call returns S_OK at once.
    #[default]
    Sync,
    /// The call returns `ERROR_VMCOMPUTE_OPERATION_PENDING`; the completion notification
    /// follows from another thread.
    Async,
    /// The call returns pending and no notification ever comes.
    Never,
}

#[derive(Debug, Default)]
struct SimSystem {
    state: &'static str,
}

#[derive(Debug)]
struct SimProcess {
    system_id: String,
    pid: u32,
}

enum HostEnd {
    Stdin(DuplexStream),
    Output(DuplexStream),
}

#[derive(Default)]
struct State {
    processes: HashMap<usize, SimProcess>,
    exited: HashMap<(String, u32), u32>,
    running: BTreeSet<(String, u32)>,
    next_pid: u32,
    host_stdio: HashMap<usize, HostEnd>,
    guest_stdio: HashMap<(String, u32), GuestStdio>,
    next: usize,
    calls: CallLog,
    completion: Completion,
    fail_next: HashMap<&'static str, i32>,
    status_next: HashMap<&'static str, i32>,
    systems: HashMap<String, SimSystem>,
    handles: HashMap<usize, String>,
    callbacks: HashMap<usize, (usize, NotificationSink)>,
    queued: HashMap<usize, Vec<V1Notification>>,
    layers: BTreeSet<String>,
    active: BTreeSet<String>,
    hns_response: Option<String>,
}

/// The simulator.
#[derive(Default)]
pub struct FakeVmcompute {
    st: Mutex<State>,
}

impl std::fmt::Debug for FakeVmcompute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeVmcompute")
    }
}

impl FakeVmcompute {
    /// A simulator with no systems and synchronous completion.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets how lifecycle calls complete.
    pub fn set_completion(&self, completion: Completion) {
        self.st().completion = completion;
    }

    /// The next call of `export` fails with `hr` (and an error document).
    pub fn fail_next(&self, export: &'static str, hr: i32) {
        self.st().fail_next.insert(export, hr);
    }

    /// The next pending completion of `export` carries this status.
    pub fn complete_next_with(&self, export: &'static str, status: i32) {
        self.st().status_next.insert(export, status);
    }

    /// The next `HcsGetProcessProperties` reports this `LastWaitResult`.
    pub fn next_last_wait_result(&self, last_wait_result: i32) {
        self.st()
            .status_next
            .insert("LastWaitResult", last_wait_result);
    }

    /// The response `HNSCall` returns.
    pub fn set_hns_response(&self, response: &str) {
        self.st().hns_response = Some(response.to_string());
    }

    /// Marks a layer as existing.
    pub fn add_layer(&self, path: &str) {
        self.st().layers.insert(path.to_string());
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.st().calls.all()
    }

    /// The export names called so far.
    pub fn exports(&self) -> Vec<&'static str> {
        self.st().calls.exports()
    }

    /// The calls of one export.
    pub fn calls_of(&self, export: &str) -> Vec<Call> {
        self.st().calls.of(export)
    }

    /// Open (system handles, process handles, callback registrations).
    pub fn open_handles(&self) -> (usize, usize, usize) {
        let s = self.st();
        (s.handles.len(), s.processes.len(), s.callbacks.len())
    }

    /// The guest ends of a process's stdio (taken once).
    pub fn guest_stdio(&self, id: &str, pid: u32) -> Option<GuestStdio> {
        self.st().guest_stdio.remove(&(id.to_string(), pid))
    }

    /// The process exits with `code`; its handles get `ProcessExited`.
    pub fn exit_process(&self, id: &str, pid: u32, code: u32) {
        let handles = Self::mark_exited(&mut self.st(), id, pid, code);
        for h in handles {
            self.notify(h, n::PROCESS_EXITED, 0, false);
        }
    }

    fn mark_exited(s: &mut State, id: &str, pid: u32, code: u32) -> Vec<usize> {
        let key = (id.to_string(), pid);
        if !s.running.remove(&key) {
            return Vec::new();
        }
        s.exited.insert(key, code);
        s.processes
            .iter()
            .filter(|(_, p)| p.system_id == id && p.pid == pid)
            .map(|(h, _)| *h)
            .collect()
    }

    fn process_of(s: &State, process: RawProcess) -> Option<(String, u32)> {
        s.processes
            .get(&process.0)
            .map(|p| (p.system_id.clone(), p.pid))
    }

    /// The simulated state of a system (`Created`, `Running`, `Paused`, `Stopped`).
    pub fn system_state(&self, id: &str) -> Option<&'static str> {
        self.st().systems.get(id).map(|s| s.state)
    }

    /// The system exits with this notification status (0, or e.g. `0xC0370106`).
    pub fn exit_system(&self, id: &str, status: i32) {
        let handles: Vec<usize> = {
            let mut s = self.st();
            if let Some(sys) = s.systems.get_mut(id) {
                sys.state = "Stopped";
            }
            s.handles
                .iter()
                .filter(|(_, i)| *i == id)
                .map(|(h, _)| *h)
                .collect()
        };
        for h in handles {
            self.notify(h, n::SYSTEM_EXITED, status, false);
        }
    }

    /// Every registered callback receives `ServiceDisconnect`.
    pub fn disconnect_service(&self) {
        let handles: Vec<usize> = self.st().callbacks.values().map(|(h, _)| *h).collect();
        for h in handles {
            self.notify(h, n::SERVICE_DISCONNECT, 0, false);
        }
    }

    /// Delivers a notification to `handle`'s callback (from another thread when `spawn`), or
    /// queues it until one is registered.
    fn notify(&self, handle: usize, notification_type: u32, status: i32, spawn: bool) {
        let notification = V1Notification {
            notification_type,
            status,
            data: None,
        };
        let sink = {
            let mut s = self.st();
            let sink = s
                .callbacks
                .values()
                .find(|(h, _)| *h == handle)
                .map(|(_, k)| k.clone());
            if sink.is_none() {
                s.queued
                    .entry(handle)
                    .or_default()
                    .push(notification.clone());
            }
            sink
        };
        if let Some(sink) = sink {
            if spawn {
                std::thread::spawn(move || sink(notification));
            } else {
                sink(notification);
            }
        }
    }

    fn record(s: &mut State, export: &'static str, handle: usize, arg: impl Into<String>) {
        s.calls.record(export, handle, arg);
    }

    fn injected(s: &mut State, export: &'static str) -> Option<V1Output> {
        s.fail_next.remove(export).map(|hr| V1Output {
            hr,
            output: None,
            result: Some(error_document(HResult::from_i32(hr), "injected failure")),
        })
    }

    /// Completes a lifecycle call on `handle` according to the completion mode.
    fn lifecycle(&self, export: &'static str, handle: usize, done: u32) -> V1Output {
        let (mode, status) = {
            let mut s = self.st();
            (s.completion, s.status_next.remove(export).unwrap_or(0))
        };
        match mode {
            Completion::Sync if status < 0 => V1Output::hr(status),
            Completion::Sync => V1Output::hr(0),
            Completion::Async => {
                self.notify(handle, done, status, true);
                V1Output::hr(HResult::ERROR_VMCOMPUTE_OPERATION_PENDING.as_i32())
            }
            Completion::Never => V1Output::hr(HResult::ERROR_VMCOMPUTE_OPERATION_PENDING.as_i32()),
        }
    }

    fn process_doc_call(&self, export: &'static str, process: RawProcess, doc: &str) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, export, process.0, doc);
        if let Some(out) = Self::injected(&mut s, export) {
            return out;
        }
        match Self::process_of(&s, process) {
            None => V1Output::hr(E_INVALID_HANDLE),
            Some(key) if s.exited.contains_key(&key) => {
                V1Output::hr(HResult::HRESULT_ERROR_NOT_FOUND.as_i32())
            }
            Some(_) => V1Output::hr(0),
        }
    }

    fn system_id(s: &State, system: RawSystem) -> Option<String> {
        s.handles.get(&system.0).cloned()
    }
}

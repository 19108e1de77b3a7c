//! An in-memory HCS for tests: implements [`HcsApi`] with a small simulation of compute
//! systems and processes, records every call, and lets a test inject failures.
//!
//! Documents it returns are shaped as HCS returns them (hcs-hcn-api.md §2.3 result
//! documents, §3.2 v1 `ContainerProperties`, §3.3 `ProcessStatus`, §1.7 exit data), so the
//! platform-neutral backend above [`HcsApi`] is exercised on Linux the way computecore would
//! drive it. Events are delivered synchronously from the call that causes them (HCS delivers
//! them on its own threads), never while the simulator's lock is held.
//!
//! This module holds the simulated state and what a test drives it with (injections, gates,
//! exits, events); `exports` answers the `HcsApi` calls and `sim` is the core both
//! share (the operation-call path, exit bookkeeping, property documents).
//!
//! [`HcsApi`]: crate::api::HcsApi

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::DuplexStream;

use crate::api::{EventSink, OperationResult, ProcessInformation, RawEvent};
use crate::hresult::HResult;
use crate::notification::event_type;

pub use crate::fake_calls::Call;
use crate::fake_calls::CallLog;

mod exports;
mod sim;

use sim::fire;

/// A failure (or odd answer) injected into the next call of one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// The call itself fails with `hr`; `HcsGetOperationResult` then returns `document`.
    CallFails {
        /// The HRESULT.
        hr: i32,
        /// The error document.
        document: Option<String>,
    },
    /// The call is accepted, but the operation completes with `hr` and `document`.
    ResultFails {
        /// The HRESULT.
        hr: i32,
        /// The error document.
        document: Option<String>,
    },
    /// The simulation runs (handles are handed out, state changes), but the operation then
    /// completes with `hr` and `document` and no process information.
    SimulatedThenFails {
        /// The HRESULT.
        hr: i32,
        /// The error document.
        document: Option<String>,
    },
    /// The wait elapses with `HCS_E_OPERATION_TIMEOUT` (nothing happens to the system).
    WaitTimesOut,
    /// The call succeeds with this result document instead of the simulated one.
    Document(Option<String>),
}

/// Holds one call inside the simulator until opened, to test what happens while HCS is busy.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<(bool, bool)>, // (entered, open)
    changed: std::sync::Condvar,
}

impl Gate {
    /// True once the held call has entered the simulator.
    pub fn entered(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Lets the held call continue.
    pub fn open(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 = true;
        self.changed.notify_all();
        while !st.1 {
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Lifecycle state of a simulated system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Stopped.
    Stopped,
}

/// The guest ends of a simulated process's stdio.
#[derive(Debug, Default)]
pub struct GuestStdio {
    /// Reads what the host writes to stdin.
    pub stdin: Option<DuplexStream>,
    /// Writes what the host reads from stdout.
    pub stdout: Option<DuplexStream>,
    /// Writes what the host reads from stderr.
    pub stderr: Option<DuplexStream>,
}

#[derive(Debug)]
struct SimProcess {
    exit_code: Option<u32>,
    guest: GuestStdio,
}

#[derive(Debug)]
struct SimSystem {
    state: SimState,
    system_type: String,
    os: String,
    owner: String,
    runtime_id: String,
    processes: BTreeMap<u32, SimProcess>,
}

#[derive(Debug, Default)]
struct OpState {
    result: Option<OperationResult>,
    wait_times_out: bool,
}

#[derive(Default)]
struct State {
    next_handle: usize,
    next_pid: u32,
    systems: BTreeMap<String, SimSystem>,
    system_handles: HashMap<usize, String>,
    process_handles: HashMap<usize, (String, u32)>,
    operations: HashMap<usize, OpState>,
    system_callbacks: HashMap<usize, EventSink>,
    process_callbacks: HashMap<usize, EventSink>,
    host_stdio: HashMap<usize, HostEnd>,
    calls: CallLog,
    injections: HashMap<&'static str, VecDeque<Injection>>,
    runtime_os: HashMap<String, String>,
    runtime_ids: HashMap<String, String>,
    gates: HashMap<&'static str, Arc<Gate>>,
}

enum HostEnd {
    Stdin(DuplexStream),
    Output(DuplexStream),
}

/// The simulator. Share it as `Arc<FakeHcs>`; it is an `Arc<dyn HcsApi>` for the backend.
#[derive(Default)]
pub struct FakeHcs {
    state: Mutex<State>,
}

impl std::fmt::Debug for FakeHcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeHcs")
    }
}

/// A result document as HCS writes it on failure.
pub fn error_document(hr: HResult, message: &str) -> String {
    json!({
        "Error": hr.as_i32(),
        "ErrorMessage": hr.message().unwrap_or_default(),
        "ErrorEvents": [{
            "Message": message,
            "Provider": "17103e3f-3c6e-4677-bb17-3b267eb5be57",
            "EventId": 11164,
            "Source": "onecore\\vm\\compute\\management\\orchestration\\vmhostedcontainer\\processutilities.cpp",
        }]
    })
    .to_string()
}

fn ok_result(
    document: Option<String>,
    process_info: Option<ProcessInformation>,
) -> OperationResult {
    OperationResult {
        hr: 0,
        document,
        process_info,
    }
}

fn failed(hr: HResult, message: &str) -> OperationResult {
    OperationResult {
        hr: hr.as_i32(),
        document: Some(error_document(hr, message)),
        process_info: None,
    }
}

impl FakeHcs {
    /// A new, empty simulator.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Injects `injection` into the next call of `export` (FIFO per export).
    pub fn inject(&self, export: &'static str, injection: Injection) {
        self.st()
            .injections
            .entry(export)
            .or_default()
            .push_back(injection);
    }

    /// Holds the next call of `export` (an operation-based call) until the returned gate is
    /// opened; the call blocks its thread, as a slow HCS call does.
    pub fn hold_next(&self, export: &'static str) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        self.st().gates.insert(export, gate.clone());
        gate
    }

    /// Sets the `RuntimeOsType` a system created with `id` will report (default `Windows`).
    pub fn set_runtime_os(&self, id: &str, os: &str) {
        self.st().runtime_os.insert(id.to_string(), os.to_string());
    }

    /// Sets the `RuntimeId` (a VM's Hyper-V id) a system created with `id` will report
    /// (default the nil GUID).
    pub fn set_runtime_id(&self, id: &str, runtime_id: &str) {
        self.st()
            .runtime_ids
            .insert(id.to_string(), runtime_id.to_string());
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.st().calls.all()
    }

    /// The exports called so far, in order.
    pub fn exports(&self) -> Vec<&'static str> {
        self.st().calls.exports()
    }

    /// The recorded calls of one export.
    pub fn calls_of(&self, export: &str) -> Vec<Call> {
        self.st().calls.of(export)
    }

    /// Open (systems, processes, operations) handles: all zero when nothing leaked.
    pub fn open_handles(&self) -> (usize, usize, usize) {
        let s = self.st();
        (
            s.system_handles.len(),
            s.process_handles.len(),
            s.operations.len(),
        )
    }

    /// The state of system `id`.
    pub fn system_state(&self, id: &str) -> Option<SimState> {
        self.st().systems.get(id).map(|s| s.state)
    }

    /// Takes the guest ends of the stdio of process `pid` in `id`.
    pub fn guest_stdio(&self, id: &str, pid: u32) -> Option<GuestStdio> {
        let mut s = self.st();
        let p = s.systems.get_mut(id)?.processes.get_mut(&pid)?;
        Some(std::mem::take(&mut p.guest))
    }

    /// Makes process `pid` of `id` exit with `code`, delivering `ProcessExited`.
    pub fn exit_process(&self, id: &str, pid: u32, code: u32) {
        let sinks = {
            let mut s = self.st();
            Self::mark_process_exited(&mut s, id, pid, code)
        };
        fire(sinks);
    }

    /// Makes system `id` exit with `exit_type` (`"GracefulExit"`, `"UnexpectedExit"`, ...),
    /// delivering `ProcessExited` for its processes and `SystemExited`.
    pub fn exit_system(&self, id: &str, exit_type: &str) {
        let sinks = {
            let mut s = self.st();
            Self::mark_system_exited(&mut s, id, exit_type)
        };
        fire(sinks);
    }

    /// Delivers `ServiceDisconnect` to every registered callback.
    pub fn disconnect_service(&self) {
        let sinks: Vec<(EventSink, RawEvent)> = {
            let s = self.st();
            s.system_callbacks
                .values()
                .chain(s.process_callbacks.values())
                .map(|sink| {
                    (
                        sink.clone(),
                        RawEvent {
                            event_type: event_type::SERVICE_DISCONNECT,
                            data: None,
                        },
                    )
                })
                .collect()
        };
        fire(sinks);
    }

    /// Delivers a raw event to the callbacks of every handle of system `id`.
    pub fn send_system_event(&self, id: &str, event: RawEvent) {
        let sinks: Vec<_> = {
            let s = self.st();
            s.system_handles
                .iter()
                .filter(|(_, sid)| *sid == id)
                .filter_map(|(h, _)| s.system_callbacks.get(h).cloned())
                .map(|sink| (sink, event.clone()))
                .collect()
        };
        fire(sinks);
    }

    /// Delivers a raw event to the callbacks of every handle of process `pid` in `id`.
    pub fn send_process_event(&self, id: &str, pid: u32, event: RawEvent) {
        let sinks: Vec<_> = {
            let s = self.st();
            s.process_handles
                .iter()
                .filter(|(_, (sid, ppid))| sid == id && *ppid == pid)
                .filter_map(|(h, _)| s.process_callbacks.get(h).cloned())
                .map(|sink| (sink, event.clone()))
                .collect()
        };
        fire(sinks);
    }
}

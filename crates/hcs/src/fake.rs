//! An in-memory HCS for tests: implements [`HcsApi`] with a small simulation of compute
//! systems and processes, records every call, and lets a test inject failures.
//!
//! Documents it returns are shaped as HCS returns them (hcs-hcn-api.md §2.3 result
//! documents, §3.2 v1 `ContainerProperties`, §3.3 `ProcessStatus`, §1.7 exit data), so the
//! platform-neutral backend above [`HcsApi`] is exercised on Linux the way computecore would
//! drive it. Events are delivered synchronously from the call that causes them (HCS delivers
//! them on its own threads), never while the simulator's lock is held.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::DuplexStream;

use crate::api::{
    EventSink, HcsApi, OperationResult, ProcessCall, ProcessInformation, RawEvent, RawHandle,
    RawOperation, RawProcess, RawSystem, SystemCall,
};
use crate::cow::Stdio;
use crate::hresult::HResult;
use crate::notification::event_type;

pub use crate::fake_calls::Call;
use crate::fake_calls::CallLog;

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

    fn mark_process_exited(
        s: &mut State,
        id: &str,
        pid: u32,
        code: u32,
    ) -> Vec<(EventSink, RawEvent)> {
        let Some(p) = s
            .systems
            .get_mut(id)
            .and_then(|sys| sys.processes.get_mut(&pid))
        else {
            return Vec::new();
        };
        if p.exit_code.is_some() {
            return Vec::new();
        }
        p.exit_code = Some(code);
        // The process's pipes close with it.
        p.guest = GuestStdio::default();
        let data = json!({
            "ProcessId": pid, "Exited": true, "ExitCode": code, "LastWaitResult": 0
        })
        .to_string();
        s.process_handles
            .iter()
            .filter(|(_, (sid, ppid))| sid == id && *ppid == pid)
            .filter_map(|(h, _)| s.process_callbacks.get(h).cloned())
            .map(|sink| {
                (
                    sink,
                    RawEvent {
                        event_type: event_type::PROCESS_EXITED,
                        data: Some(data.clone()),
                    },
                )
            })
            .collect()
    }

    fn mark_system_exited(s: &mut State, id: &str, exit_type: &str) -> Vec<(EventSink, RawEvent)> {
        let pids: Vec<u32> = match s.systems.get_mut(id) {
            Some(sys) if sys.state != SimState::Stopped => {
                sys.state = SimState::Stopped;
                sys.processes.keys().copied().collect()
            }
            _ => return Vec::new(),
        };
        let mut sinks = Vec::new();
        for pid in pids {
            sinks.extend(Self::mark_process_exited(s, id, pid, 1));
        }
        let data = json!({ "Status": 0, "ExitType": exit_type }).to_string();
        sinks.extend(
            s.system_handles
                .iter()
                .filter(|(_, sid)| *sid == id)
                .filter_map(|(h, _)| s.system_callbacks.get(h).cloned())
                .map(|sink| {
                    (
                        sink,
                        RawEvent {
                            event_type: event_type::SYSTEM_EXITED,
                            data: Some(data.clone()),
                        },
                    )
                }),
        );
        sinks
    }

    fn alloc(s: &mut State) -> usize {
        s.next_handle += 1;
        s.next_handle
    }

    fn record(s: &mut State, export: &'static str, handle: usize, arg: impl Into<String>) {
        s.calls.record(export, handle, arg);
    }

    fn take_injection(s: &mut State, export: &'static str) -> Option<Injection> {
        s.injections.get_mut(export).and_then(VecDeque::pop_front)
    }

    /// Common path of every operation-based call: record, apply an injection, or run the
    /// simulation `sim`, then store the operation result.
    fn op_call(
        &self,
        export: &'static str,
        handle: usize,
        arg: &str,
        op: RawOperation,
        sim: impl FnOnce(&mut State) -> (OperationResult, Vec<(EventSink, RawEvent)>),
    ) -> i32 {
        let gate = self.st().gates.remove(export);
        if let Some(gate) = gate {
            gate.pass();
        }
        let (hr, sinks) = {
            let mut s = self.st();
            Self::record(&mut s, export, handle, arg);
            if !s.operations.contains_key(&op.0) {
                return HResult::ERROR_INVALID_HANDLE.as_i32();
            }
            let (hr, result, sinks) = match Self::take_injection(&mut s, export) {
                Some(Injection::CallFails { hr, document }) => {
                    let r = OperationResult {
                        hr,
                        document,
                        process_info: None,
                    };
                    (hr, Some(r), Vec::new())
                }
                Some(Injection::ResultFails { hr, document }) => {
                    let r = OperationResult {
                        hr,
                        document,
                        process_info: None,
                    };
                    (0, Some(r), Vec::new())
                }
                Some(Injection::SimulatedThenFails { hr, document }) => {
                    let (_, sinks) = sim(&mut s);
                    let r = OperationResult {
                        hr,
                        document,
                        process_info: None,
                    };
                    (0, Some(r), sinks)
                }
                Some(Injection::WaitTimesOut) => {
                    if let Some(o) = s.operations.get_mut(&op.0) {
                        o.wait_times_out = true;
                    }
                    (0, None, Vec::new())
                }
                Some(Injection::Document(document)) => {
                    let (mut r, sinks) = sim(&mut s);
                    r.document = document;
                    (0, Some(r), sinks)
                }
                None => {
                    let (r, sinks) = sim(&mut s);
                    (0, Some(r), sinks)
                }
            };
            if let Some(o) = s.operations.get_mut(&op.0) {
                if result.is_some() {
                    o.result = result;
                }
            }
            (hr, sinks)
        };
        fire(sinks);
        hr
    }

    fn properties_document(id: &str, sys: &SimSystem, query: &Value) -> Value {
        let mut props = json!({
            "Id": id,
            "State": match sys.state {
                SimState::Created => "Created",
                SimState::Running => "Running",
                SimState::Paused => "Paused",
                SimState::Stopped => "Stopped",
            },
            "Name": id,
            "SystemType": sys.system_type,
            "RuntimeOsType": sys.os,
            "Owner": sys.owner,
            "RuntimeId": sys.runtime_id,
        });
        if sys.state == SimState::Stopped {
            props["Stopped"] = json!(true);
        }
        let types: Vec<&str> = query["PropertyTypes"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for t in types {
            match t {
                "Statistics" => {
                    props["Statistics"] = json!({
                        "Timestamp": "2026-01-02T03:04:05.5Z",
                        "ContainerStartTime": "2026-01-02T03:00:00Z",
                        "Uptime100ns": 2_450_000_000_u64,
                        "Memory": {
                            "MemoryUsageCommitBytes": 104_857_600_u64,
                            "MemoryUsageCommitPeakBytes": 209_715_200_u64,
                            "MemoryUsagePrivateWorkingSetBytes": 52_428_800_u64
                        },
                        "Processor": {
                            "TotalRuntime100ns": 1_000_000_u64,
                            "RuntimeUser100ns": 600_000_u64,
                            "RuntimeKernel100ns": 400_000_u64
                        },
                        "Storage": {
                            "ReadCountNormalized": 10, "ReadSizeBytes": 4096,
                            "WriteCountNormalized": 5, "WriteSizeBytes": 2048
                        }
                    });
                }
                "ProcessList" => {
                    let list: Vec<Value> = sys
                        .processes
                        .iter()
                        .filter(|(_, p)| p.exit_code.is_none())
                        .map(|(pid, _)| {
                            json!({
                                "CreateTimestamp": "2026-01-02T03:00:01Z",
                                "ImageName": "cmd.exe",
                                "KernelTime100ns": 100,
                                "MemoryCommitBytes": 1_048_576,
                                "MemoryWorkingSetPrivateBytes": 524_288,
                                "MemoryWorkingSetSharedBytes": 262_144,
                                "ProcessId": pid,
                                "UserTime100ns": 200
                            })
                        })
                        .collect();
                    props["ProcessList"] = Value::Array(list);
                }
                _ => {}
            }
        }
        props
    }

    fn system_of(s: &State, handle: RawSystem) -> Option<String> {
        s.system_handles.get(&handle.0).cloned()
    }
}

fn fire(sinks: Vec<(EventSink, RawEvent)>) {
    for (sink, event) in sinks {
        sink(event);
    }
}

fn host_pipe(s: &mut State, output: bool) -> (RawHandle, DuplexStream) {
    let (host, guest) = tokio::io::duplex(64 * 1024);
    let h = FakeHcs::alloc(s);
    s.host_stdio.insert(
        h,
        if output {
            HostEnd::Output(host)
        } else {
            HostEnd::Stdin(host)
        },
    );
    (RawHandle(h), guest)
}

impl HcsApi for FakeHcs {
    fn create_operation(&self) -> Result<RawOperation, i32> {
        let mut s = self.st();
        Self::record(&mut s, "HcsCreateOperation", 0, "");
        if let Some(Injection::CallFails { hr, .. }) =
            Self::take_injection(&mut s, "HcsCreateOperation")
        {
            return Err(hr);
        }
        let h = Self::alloc(&mut s);
        s.operations.insert(h, OpState::default());
        Ok(RawOperation(h))
    }

    fn close_operation(&self, op: RawOperation) {
        let mut s = self.st();
        Self::record(&mut s, "HcsCloseOperation", op.0, "");
        s.operations.remove(&op.0);
    }

    fn cancel_operation(&self, op: RawOperation) -> i32 {
        let mut s = self.st();
        Self::record(&mut s, "HcsCancelOperation", op.0, "");
        0
    }

    fn get_operation_result(&self, op: RawOperation, with_process_info: bool) -> OperationResult {
        let mut s = self.st();
        let export = if with_process_info {
            "HcsGetOperationResultAndProcessInfo"
        } else {
            "HcsGetOperationResult"
        };
        Self::record(&mut s, export, op.0, "");
        match s.operations.get(&op.0) {
            None => failed(HResult::ERROR_INVALID_HANDLE, "no such operation"),
            Some(o) => o.result.clone().unwrap_or(OperationResult {
                hr: HResult::HCS_E_OPERATION_NOT_STARTED.as_i32(),
                document: None,
                process_info: None,
            }),
        }
    }

    fn wait_for_operation_result(
        &self,
        op: RawOperation,
        timeout_ms: u32,
        with_process_info: bool,
    ) -> OperationResult {
        let mut s = self.st();
        let export = if with_process_info {
            "HcsWaitForOperationResultAndProcessInfo"
        } else {
            "HcsWaitForOperationResult"
        };
        Self::record(&mut s, export, op.0, timeout_ms.to_string());
        match s.operations.get(&op.0) {
            None => failed(HResult::ERROR_INVALID_HANDLE, "no such operation"),
            Some(o) if o.wait_times_out => OperationResult {
                hr: HResult::HCS_E_OPERATION_TIMEOUT.as_i32(),
                document: None,
                process_info: None,
            },
            Some(o) => o.result.clone().unwrap_or(OperationResult {
                hr: HResult::HCS_E_OPERATION_NOT_STARTED.as_i32(),
                document: None,
                process_info: None,
            }),
        }
    }

    fn enumerate_compute_systems(&self, query: &str, op: RawOperation) -> i32 {
        let q: Value = serde_json::from_str(query).unwrap_or(Value::Null);
        self.op_call("HcsEnumerateComputeSystems", 0, query, op, |s| {
            let matches = |key: &str, value: &str| match q[key].as_array() {
                Some(list) if !list.is_empty() => list.iter().any(|v| v.as_str() == Some(value)),
                _ => true,
            };
            let list: Vec<Value> = s
                .systems
                .iter()
                .filter(|(id, sys)| {
                    matches("Ids", id)
                        && matches("Names", id)
                        && matches("Types", &sys.system_type)
                        && matches("Owners", &sys.owner)
                })
                .map(|(id, sys)| Self::properties_document(id, sys, &Value::Null))
                .collect();
            (
                ok_result(Some(Value::Array(list).to_string()), None),
                Vec::new(),
            )
        })
    }

    fn create_compute_system(
        &self,
        id: &str,
        configuration: &str,
        op: RawOperation,
    ) -> (i32, Option<RawSystem>) {
        let mut handle = None;
        let hr = self.op_call("HcsCreateComputeSystem", 0, configuration, op, |s| {
            let config: Value = match serde_json::from_str(configuration) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return (
                        failed(HResult::HCS_E_INVALID_JSON, "The JSON document is invalid."),
                        Vec::new(),
                    )
                }
            };
            if s.systems.contains_key(id) {
                return (
                    failed(HResult::HCS_E_SYSTEM_ALREADY_EXISTS, "already exists"),
                    Vec::new(),
                );
            }
            let system_type = if config.get("VirtualMachine").is_some() {
                "VirtualMachine"
            } else {
                "Container"
            };
            let os = s
                .runtime_os
                .get(id)
                .cloned()
                .unwrap_or_else(|| "Windows".into());
            s.systems.insert(
                id.to_string(),
                SimSystem {
                    state: SimState::Created,
                    system_type: system_type.into(),
                    os,
                    owner: config["Owner"].as_str().unwrap_or_default().to_string(),
                    runtime_id: s
                        .runtime_ids
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
                    processes: BTreeMap::new(),
                },
            );
            let h = Self::alloc(s);
            s.system_handles.insert(h, id.to_string());
            handle = Some(RawSystem(h));
            (ok_result(None, None), Vec::new())
        });
        (hr, handle)
    }

    fn open_compute_system(&self, id: &str, _access: u32) -> Result<RawSystem, i32> {
        let mut s = self.st();
        Self::record(&mut s, "HcsOpenComputeSystem", 0, id);
        if let Some(Injection::CallFails { hr, .. }) =
            Self::take_injection(&mut s, "HcsOpenComputeSystem")
        {
            return Err(hr);
        }
        if !s.systems.contains_key(id) {
            return Err(HResult::HCS_E_SYSTEM_NOT_FOUND.as_i32());
        }
        let h = Self::alloc(&mut s);
        s.system_handles.insert(h, id.to_string());
        Ok(RawSystem(h))
    }

    fn close_compute_system(&self, system: RawSystem) {
        let mut s = self.st();
        Self::record(&mut s, "HcsCloseComputeSystem", system.0, "");
        s.system_callbacks.remove(&system.0);
        if let Some(id) = s.system_handles.remove(&system.0) {
            // A stopped system disappears with its last handle.
            let still_open = s.system_handles.values().any(|v| *v == id);
            if !still_open && s.systems.get(&id).map(|x| x.state) == Some(SimState::Stopped) {
                s.systems.remove(&id);
            }
        }
    }

    fn system_call(
        &self,
        call: SystemCall,
        system: RawSystem,
        op: RawOperation,
        options: &str,
    ) -> i32 {
        self.op_call(call.export(), system.0, options, op, |s| {
            let Some(id) = Self::system_of(s, system) else {
                return (
                    failed(HResult::ERROR_INVALID_HANDLE, "bad handle"),
                    Vec::new(),
                );
            };
            let state = s.systems.get(&id).map(|x| x.state);
            let invalid = || failed(HResult::HCS_E_INVALID_STATE, "invalid state");
            let set = |s: &mut State, st: SimState| {
                if let Some(x) = s.systems.get_mut(&id) {
                    x.state = st;
                }
            };
            match (call, state) {
                (_, None) => (failed(HResult::HCS_E_SYSTEM_NOT_FOUND, "gone"), Vec::new()),
                (
                    SystemCall::Shutdown | SystemCall::Terminate | SystemCall::Crash,
                    Some(SimState::Stopped),
                ) => (
                    failed(HResult::HCS_E_SYSTEM_ALREADY_STOPPED, "not running"),
                    Vec::new(),
                ),
                (SystemCall::Shutdown, _) => {
                    let sinks = Self::mark_system_exited(s, &id, "GracefulExit");
                    (ok_result(None, None), sinks)
                }
                (SystemCall::Terminate, _) => {
                    let sinks = Self::mark_system_exited(s, &id, "ForcedExit");
                    (ok_result(None, None), sinks)
                }
                (SystemCall::Crash, _) => {
                    let sinks = Self::mark_system_exited(s, &id, "UnexpectedExit");
                    (ok_result(None, None), sinks)
                }
                (SystemCall::Start, Some(SimState::Created)) => {
                    set(s, SimState::Running);
                    (ok_result(None, None), Vec::new())
                }
                (SystemCall::Pause, Some(SimState::Running)) => {
                    set(s, SimState::Paused);
                    (ok_result(None, None), Vec::new())
                }
                (SystemCall::Resume, Some(SimState::Paused)) => {
                    set(s, SimState::Running);
                    (ok_result(None, None), Vec::new())
                }
                (SystemCall::Save, Some(SimState::Paused)) => (ok_result(None, None), Vec::new()),
                _ => (invalid(), Vec::new()),
            }
        })
    }

    fn get_compute_system_properties(
        &self,
        system: RawSystem,
        op: RawOperation,
        query: &str,
    ) -> i32 {
        self.op_call("HcsGetComputeSystemProperties", system.0, query, op, |s| {
            let q: Value = serde_json::from_str(query).unwrap_or(Value::Null);
            match Self::system_of(s, system).and_then(|id| s.systems.get(&id).map(|x| (id, x))) {
                Some((id, sys)) => (
                    ok_result(
                        Some(Self::properties_document(&id, sys, &q).to_string()),
                        None,
                    ),
                    Vec::new(),
                ),
                None => (
                    failed(HResult::ERROR_INVALID_HANDLE, "bad handle"),
                    Vec::new(),
                ),
            }
        })
    }

    fn modify_compute_system(
        &self,
        system: RawSystem,
        op: RawOperation,
        configuration: &str,
    ) -> i32 {
        self.op_call("HcsModifyComputeSystem", system.0, configuration, op, |s| {
            match Self::system_of(s, system).and_then(|id| s.systems.get(&id)) {
                Some(sys) if sys.state == SimState::Stopped => {
                    (failed(HResult::HCS_E_INVALID_STATE, "stopped"), Vec::new())
                }
                Some(_) => (ok_result(None, None), Vec::new()),
                None => (
                    failed(HResult::ERROR_INVALID_HANDLE, "bad handle"),
                    Vec::new(),
                ),
            }
        })
    }

    fn set_compute_system_callback(&self, system: RawSystem, options: u32, sink: EventSink) -> i32 {
        let mut s = self.st();
        Self::record(
            &mut s,
            "HcsSetComputeSystemCallback",
            system.0,
            options.to_string(),
        );
        if let Some(Injection::CallFails { hr, .. }) =
            Self::take_injection(&mut s, "HcsSetComputeSystemCallback")
        {
            return hr;
        }
        if !s.system_handles.contains_key(&system.0) {
            return HResult::ERROR_INVALID_HANDLE.as_i32();
        }
        if s.system_callbacks.contains_key(&system.0) {
            return HResult::HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET.as_i32();
        }
        s.system_callbacks.insert(system.0, sink);
        0
    }

    fn create_process(
        &self,
        system: RawSystem,
        parameters: &str,
        op: RawOperation,
    ) -> (i32, Option<RawProcess>) {
        let mut handle = None;
        let hr = self.op_call("HcsCreateProcess", system.0, parameters, op, |s| {
            let Ok(params @ Value::Object(_)) = serde_json::from_str::<Value>(parameters) else {
                return (
                    failed(HResult::HCS_E_INVALID_JSON, "The JSON document is invalid."),
                    Vec::new(),
                );
            };
            let Some(id) = Self::system_of(s, system) else {
                return (
                    failed(HResult::ERROR_INVALID_HANDLE, "bad handle"),
                    Vec::new(),
                );
            };
            if s.systems.get(&id).map(|x| x.state) != Some(SimState::Running) {
                return (
                    failed(HResult::HCS_E_INVALID_STATE, "system not running"),
                    Vec::new(),
                );
            }
            let want = |k: &str| params[k].as_bool().unwrap_or(false);
            let mut guest = GuestStdio::default();
            let mut info = ProcessInformation {
                process_id: 0,
                std_input: RawHandle(0),
                std_output: RawHandle(0),
                std_error: RawHandle(0),
            };
            if want("CreateStdInPipe") {
                let (h, g) = host_pipe(s, false);
                info.std_input = h;
                guest.stdin = Some(g);
            }
            if want("CreateStdOutPipe") {
                let (h, g) = host_pipe(s, true);
                info.std_output = h;
                guest.stdout = Some(g);
            }
            if want("CreateStdErrPipe") {
                let (h, g) = host_pipe(s, true);
                info.std_error = h;
                guest.stderr = Some(g);
            }
            s.next_pid += 4;
            let pid = 1000 + s.next_pid;
            info.process_id = pid;
            if let Some(sys) = s.systems.get_mut(&id) {
                sys.processes.insert(
                    pid,
                    SimProcess {
                        exit_code: None,
                        guest,
                    },
                );
            }
            let h = Self::alloc(s);
            s.process_handles.insert(h, (id, pid));
            handle = Some(RawProcess(h));
            (ok_result(None, Some(info)), Vec::new())
        });
        (hr, handle)
    }

    fn open_process(&self, system: RawSystem, pid: u32, _access: u32) -> Result<RawProcess, i32> {
        let mut s = self.st();
        Self::record(&mut s, "HcsOpenProcess", system.0, pid.to_string());
        if let Some(Injection::CallFails { hr, .. }) =
            Self::take_injection(&mut s, "HcsOpenProcess")
        {
            return Err(hr);
        }
        let Some(id) = Self::system_of(&s, system) else {
            return Err(HResult::ERROR_INVALID_HANDLE.as_i32());
        };
        let running = s
            .systems
            .get(&id)
            .and_then(|x| x.processes.get(&pid))
            .is_some_and(|p| p.exit_code.is_none());
        if !running {
            return Err(HResult::HRESULT_ERROR_NOT_FOUND.as_i32());
        }
        let h = Self::alloc(&mut s);
        s.process_handles.insert(h, (id, pid));
        Ok(RawProcess(h))
    }

    fn close_process(&self, process: RawProcess) {
        let mut s = self.st();
        Self::record(&mut s, "HcsCloseProcess", process.0, "");
        s.process_callbacks.remove(&process.0);
        s.process_handles.remove(&process.0);
    }

    fn get_process_info(&self, process: RawProcess, op: RawOperation) -> i32 {
        self.op_call("HcsGetProcessInfo", process.0, "", op, |s| {
            match s.process_handles.get(&process.0) {
                // The pipes were handed out at creation; a second request gets none.
                Some((_, pid)) => (
                    ok_result(
                        None,
                        Some(ProcessInformation {
                            process_id: *pid,
                            std_input: RawHandle(0),
                            std_output: RawHandle(0),
                            std_error: RawHandle(0),
                        }),
                    ),
                    Vec::new(),
                ),
                None => (
                    failed(HResult::ERROR_INVALID_HANDLE, "bad handle"),
                    Vec::new(),
                ),
            }
        })
    }

    fn process_call(
        &self,
        call: ProcessCall,
        process: RawProcess,
        op: RawOperation,
        document: &str,
    ) -> i32 {
        self.op_call(call.export(), process.0, document, op, |s| {
            let Some((id, pid)) = s.process_handles.get(&process.0).cloned() else {
                return (
                    failed(HResult::ERROR_INVALID_HANDLE, "bad handle"),
                    Vec::new(),
                );
            };
            let Some(exit_code) = s
                .systems
                .get(&id)
                .and_then(|x| x.processes.get(&pid))
                .map(|p| p.exit_code)
            else {
                return (
                    failed(HResult::HRESULT_ERROR_NOT_FOUND, "no process"),
                    Vec::new(),
                );
            };
            match call {
                ProcessCall::GetProperties => (
                    ok_result(
                        Some(
                            json!({
                                "ProcessId": pid,
                                "Exited": exit_code.is_some(),
                                "ExitCode": exit_code.unwrap_or(0),
                                "LastWaitResult": 0
                            })
                            .to_string(),
                        ),
                        None,
                    ),
                    Vec::new(),
                ),
                ProcessCall::Terminate if exit_code.is_some() => (
                    failed(HResult::HCS_E_PROCESS_ALREADY_STOPPED, "already exited"),
                    Vec::new(),
                ),
                ProcessCall::Terminate => {
                    let sinks = Self::mark_process_exited(s, &id, pid, 1);
                    (ok_result(None, None), sinks)
                }
                _ if exit_code.is_some() => (
                    failed(HResult::HRESULT_ERROR_NOT_FOUND, "process exited"),
                    Vec::new(),
                ),
                ProcessCall::Modify => (ok_result(None, None), Vec::new()),
                ProcessCall::Signal => (ok_result(None, None), Vec::new()),
            }
        })
    }

    fn set_process_callback(&self, process: RawProcess, options: u32, sink: EventSink) -> i32 {
        let mut s = self.st();
        Self::record(
            &mut s,
            "HcsSetProcessCallback",
            process.0,
            options.to_string(),
        );
        if let Some(Injection::CallFails { hr, .. }) =
            Self::take_injection(&mut s, "HcsSetProcessCallback")
        {
            return hr;
        }
        if !s.process_handles.contains_key(&process.0) {
            return HResult::ERROR_INVALID_HANDLE.as_i32();
        }
        s.process_callbacks.insert(process.0, sink);
        0
    }

    fn get_service_properties(&self, query: &str) -> OperationResult {
        let mut s = self.st();
        Self::record(&mut s, "HcsGetServiceProperties", 0, query);
        ok_result(
            Some(
                json!({"Properties": [{"SupportedSchemaVersions": [
                    {"Major": 2, "Minor": 1}, {"Major": 2, "Minor": 5}
                ]}]})
                .to_string(),
            ),
            None,
        )
    }

    fn modify_service_settings(&self, settings: &str) -> OperationResult {
        let mut s = self.st();
        Self::record(&mut s, "HcsModifyServiceSettings", 0, settings);
        ok_result(None, None)
    }

    fn stdio_from_info(&self, info: ProcessInformation) -> std::io::Result<Stdio> {
        let mut s = self.st();
        let mut take = |h: RawHandle| -> std::io::Result<Option<HostEnd>> {
            if h.is_none() {
                return Ok(None);
            }
            s.host_stdio.remove(&h.0).map(Some).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "unknown stdio handle")
            })
        };
        let stdin = take(info.std_input)?;
        let stdout = take(info.std_output)?;
        let stderr = take(info.std_error)?;
        Ok(Stdio {
            stdin: match stdin {
                Some(HostEnd::Stdin(d)) => Some(Box::new(d)),
                _ => None,
            },
            stdout: match stdout {
                Some(HostEnd::Output(d)) => Some(Box::new(d)),
                _ => None,
            },
            stderr: match stderr {
                Some(HostEnd::Output(d)) => Some(Box::new(d)),
                _ => None,
            },
        })
    }
}

//! An in-memory vmcompute.dll for tests (feature `fake`): the v1 compute calls with the
//! pending/notification model, the service calls, `HNSCall` and the layer exports.
//!
//! Lifecycle calls (create, start, pause, resume, save) behave according to [`Completion`]:
//! synchronously, or "pending" with the completion notification delivered later from
//! another thread (as HCS does from its worker threads), or pending forever. A notification
//! for a handle without a registered callback is queued and delivered on registration.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::io::DuplexStream;

use crate::api::{ProcessInformation, RawHandle, RawProcess, RawSystem};
use crate::cow::Stdio;
use crate::fake::{error_document, GuestStdio};
use crate::hresult::HResult;
use crate::v1::notification as n;
use crate::vmcompute::{
    LayerCall, LayerGuid, LayerOutput, NotificationSink, RawCallback, SystemCall, V1Notification,
    V1Output, VmcomputeApi,
};

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

fn name_guid(name: &str) -> LayerGuid {
    // FNV-1a over the name, spread over the GUID fields: deterministic and distinct.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    LayerGuid {
        data1: (h >> 32) as u32,
        data2: (h >> 16) as u16,
        data3: h as u16,
        data4: h.to_le_bytes(),
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

fn not_found() -> V1Output {
    V1Output {
        hr: HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND.as_i32(),
        output: None,
        result: Some(error_document(
            HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND,
            "not found",
        )),
    }
}

impl VmcomputeApi for FakeVmcompute {
    fn enumerate_compute_systems(&self, query: &str) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, "HcsEnumerateComputeSystems", 0, query);
        if let Some(out) = Self::injected(&mut s, "HcsEnumerateComputeSystems") {
            return out;
        }
        let list: Vec<serde_json::Value> = s
            .systems
            .iter()
            .map(|(id, sys)| {
                serde_json::json!({"Id": id, "Name": id, "State": sys.state, "SystemType": "Container"})
            })
            .collect();
        V1Output {
            hr: 0,
            output: Some(serde_json::Value::Array(list).to_string()),
            result: None,
        }
    }

    fn create_compute_system(
        &self,
        id: &str,
        configuration: &str,
    ) -> (V1Output, Option<RawSystem>) {
        let handle = {
            let mut s = self.st();
            Self::record(&mut s, "HcsCreateComputeSystem", 0, configuration);
            if let Some(out) = Self::injected(&mut s, "HcsCreateComputeSystem") {
                return (out, None);
            }
            if s.systems.contains_key(id) {
                let hr = HResult::HCS_E_SYSTEM_ALREADY_EXISTS;
                return (
                    V1Output {
                        hr: hr.as_i32(),
                        output: None,
                        result: Some(error_document(hr, "exists")),
                    },
                    None,
                );
            }
            s.next += 1;
            let h = s.next;
            s.systems
                .insert(id.to_string(), SimSystem { state: "Created" });
            s.handles.insert(h, id.to_string());
            h
        };
        let out = self.lifecycle("HcsCreateComputeSystem", handle, n::SYSTEM_CREATE_COMPLETED);
        (out, Some(RawSystem(handle)))
    }

    fn open_compute_system(&self, id: &str) -> (V1Output, Option<RawSystem>) {
        let mut s = self.st();
        Self::record(&mut s, "HcsOpenComputeSystem", 0, id);
        if let Some(out) = Self::injected(&mut s, "HcsOpenComputeSystem") {
            return (out, None);
        }
        if !s.systems.contains_key(id) {
            return (not_found(), None);
        }
        s.next += 1;
        let h = s.next;
        s.handles.insert(h, id.to_string());
        (V1Output::hr(0), Some(RawSystem(h)))
    }

    fn close_compute_system(&self, system: RawSystem) -> i32 {
        let mut s = self.st();
        Self::record(&mut s, "HcsCloseComputeSystem", system.0, "");
        match s.handles.remove(&system.0) {
            Some(_) => 0,
            None => E_INVALID_HANDLE,
        }
    }

    fn system_call(&self, call: SystemCall, system: RawSystem, options: &str) -> V1Output {
        let export = match call {
            SystemCall::Start => "HcsStartComputeSystem",
            SystemCall::Shutdown => "HcsShutdownComputeSystem",
            SystemCall::Terminate => "HcsTerminateComputeSystem",
            SystemCall::Crash => "HcsCrashComputeSystem",
            SystemCall::Pause => "HcsPauseComputeSystem",
            SystemCall::Resume => "HcsResumeComputeSystem",
            SystemCall::Save => "HcsSaveComputeSystem",
        };
        let (id, done) = {
            let mut s = self.st();
            Self::record(&mut s, export, system.0, options);
            if let Some(out) = Self::injected(&mut s, export) {
                return out;
            }
            let Some(id) = Self::system_id(&s, system) else {
                return V1Output::hr(E_INVALID_HANDLE);
            };
            let state = s.systems.get(&id).map_or("Stopped", |x| x.state);
            let (next, done) = match call {
                SystemCall::Crash => return V1Output::hr(E_PROC_NOT_FOUND),
                SystemCall::Shutdown | SystemCall::Terminate if state == "Stopped" => {
                    return V1Output::hr(HResult::ERROR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED.as_i32())
                }
                SystemCall::Shutdown | SystemCall::Terminate => ("Stopped", None),
                SystemCall::Start => ("Running", Some(n::SYSTEM_START_COMPLETED)),
                SystemCall::Pause => ("Paused", Some(n::SYSTEM_PAUSE_COMPLETED)),
                SystemCall::Resume => ("Running", Some(n::SYSTEM_RESUME_COMPLETED)),
                SystemCall::Save => (state, Some(n::SYSTEM_SAVE_COMPLETED)),
            };
            if let Some(sys) = s.systems.get_mut(&id) {
                sys.state = next;
            }
            (id, done)
        };
        match done {
            Some(done) => self.lifecycle(export, system.0, done),
            None => {
                // Shutdown/terminate: the exit follows as a notification.
                self.exit_system(&id, 0);
                V1Output::hr(HResult::ERROR_VMCOMPUTE_OPERATION_PENDING.as_i32())
            }
        }
    }

    fn get_compute_system_properties(&self, system: RawSystem, query: &str) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, "HcsGetComputeSystemProperties", system.0, query);
        if let Some(out) = Self::injected(&mut s, "HcsGetComputeSystemProperties") {
            return out;
        }
        let Some(id) = Self::system_id(&s, system) else {
            return V1Output::hr(E_INVALID_HANDLE);
        };
        let state = s.systems.get(&id).map_or("Stopped", |x| x.state);
        V1Output {
            hr: 0,
            output: Some(
                serde_json::json!({"Id": id, "State": state, "SystemType": "Container"})
                    .to_string(),
            ),
            result: None,
        }
    }

    fn modify_compute_system(&self, system: RawSystem, configuration: &str) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, "HcsModifyComputeSystem", system.0, configuration);
        Self::injected(&mut s, "HcsModifyComputeSystem").unwrap_or_else(|| V1Output::hr(0))
    }

    fn register_compute_system_callback(
        &self,
        system: RawSystem,
        sink: NotificationSink,
    ) -> Result<RawCallback, i32> {
        let queued = {
            let mut s = self.st();
            Self::record(&mut s, "HcsRegisterComputeSystemCallback", system.0, "");
            if let Some(out) = Self::injected(&mut s, "HcsRegisterComputeSystemCallback") {
                return Err(out.hr);
            }
            s.next += 1;
            let cb = s.next;
            s.callbacks.insert(cb, (system.0, sink.clone()));
            (cb, s.queued.remove(&system.0).unwrap_or_default())
        };
        let (cb, queued) = queued;
        if !queued.is_empty() {
            std::thread::spawn(move || queued.into_iter().for_each(|q| sink(q)));
        }
        Ok(RawCallback(cb))
    }

    fn unregister_compute_system_callback(&self, callback: RawCallback) -> i32 {
        let mut s = self.st();
        Self::record(&mut s, "HcsUnregisterComputeSystemCallback", callback.0, "");
        match s.callbacks.remove(&callback.0) {
            Some(_) => 0,
            None => E_INVALID_HANDLE,
        }
    }

    fn create_process(
        &self,
        system: RawSystem,
        parameters: &str,
    ) -> (V1Output, Option<(RawProcess, ProcessInformation)>) {
        let mut s = self.st();
        Self::record(&mut s, "HcsCreateProcess", system.0, parameters);
        if let Some(out) = Self::injected(&mut s, "HcsCreateProcess") {
            return (out, None);
        }
        let Some(id) = Self::system_id(&s, system) else {
            return (V1Output::hr(E_INVALID_HANDLE), None);
        };
        if s.systems.get(&id).map(|x| x.state) != Some("Running") {
            let hr = HResult::ERROR_VMCOMPUTE_INVALID_STATE;
            return (
                V1Output {
                    hr: hr.as_i32(),
                    output: None,
                    result: Some(error_document(hr, "not running")),
                },
                None,
            );
        }
        let p: serde_json::Value = serde_json::from_str(parameters).unwrap_or_default();
        s.next_pid += 1;
        let pid = 2000 + s.next_pid;
        let mut guest = GuestStdio {
            stdin: None,
            stdout: None,
            stderr: None,
        };
        let pipe = |s: &mut State, key: &str, output: bool| -> (RawHandle, Option<DuplexStream>) {
            if p[key] != serde_json::Value::Bool(true) {
                return (RawHandle(0), None);
            }
            let (host, g) = tokio::io::duplex(64 * 1024);
            s.next += 1;
            let h = s.next;
            s.host_stdio.insert(
                h,
                if output {
                    HostEnd::Output(host)
                } else {
                    HostEnd::Stdin(host)
                },
            );
            (RawHandle(h), Some(g))
        };
        let (std_input, g) = pipe(&mut s, "CreateStdInPipe", false);
        guest.stdin = g;
        let (std_output, g) = pipe(&mut s, "CreateStdOutPipe", true);
        guest.stdout = g;
        let (std_error, g) = pipe(&mut s, "CreateStdErrPipe", true);
        guest.stderr = g;
        s.guest_stdio.insert((id.clone(), pid), guest);
        s.running.insert((id.clone(), pid));
        s.next += 1;
        let h = s.next;
        s.processes.insert(h, SimProcess { system_id: id, pid });
        let info = ProcessInformation {
            process_id: pid,
            std_input,
            std_output,
            std_error,
        };
        (V1Output::hr(0), Some((RawProcess(h), info)))
    }

    fn open_process(&self, system: RawSystem, pid: u32) -> (V1Output, Option<RawProcess>) {
        let mut s = self.st();
        Self::record(&mut s, "HcsOpenProcess", system.0, pid.to_string());
        let Some(id) = Self::system_id(&s, system) else {
            return (V1Output::hr(E_INVALID_HANDLE), None);
        };
        if !s.running.contains(&(id.clone(), pid)) {
            return (
                V1Output::hr(HResult::HRESULT_ERROR_NOT_FOUND.as_i32()),
                None,
            );
        }
        s.next += 1;
        let h = s.next;
        s.processes.insert(h, SimProcess { system_id: id, pid });
        (V1Output::hr(0), Some(RawProcess(h)))
    }

    fn close_process(&self, process: RawProcess) -> i32 {
        let mut s = self.st();
        Self::record(&mut s, "HcsCloseProcess", process.0, "");
        match s.processes.remove(&process.0) {
            Some(_) => 0,
            None => E_INVALID_HANDLE,
        }
    }

    fn terminate_process(&self, process: RawProcess) -> V1Output {
        let handles = {
            let mut s = self.st();
            Self::record(&mut s, "HcsTerminateProcess", process.0, "");
            if let Some(out) = Self::injected(&mut s, "HcsTerminateProcess") {
                return out;
            }
            let Some((id, pid)) = Self::process_of(&s, process) else {
                return V1Output::hr(E_INVALID_HANDLE);
            };
            if s.exited.contains_key(&(id.clone(), pid)) {
                return V1Output::hr(HResult::HCS_E_PROCESS_ALREADY_STOPPED.as_i32());
            }
            Self::mark_exited(&mut s, &id, pid, 1)
        };
        for h in handles {
            self.notify(h, n::PROCESS_EXITED, 0, true);
        }
        V1Output::hr(0)
    }

    fn signal_process(&self, process: RawProcess, options: &str) -> V1Output {
        self.process_doc_call("HcsSignalProcess", process, options)
    }

    fn get_process_info(&self, process: RawProcess) -> (V1Output, Option<ProcessInformation>) {
        let mut s = self.st();
        Self::record(&mut s, "HcsGetProcessInfo", process.0, "");
        match Self::process_of(&s, process) {
            // New pipes are not simulated: the information names none.
            Some((_, pid)) => (
                V1Output::hr(0),
                Some(ProcessInformation {
                    process_id: pid,
                    std_input: RawHandle(0),
                    std_output: RawHandle(0),
                    std_error: RawHandle(0),
                }),
            ),
            None => (V1Output::hr(E_INVALID_HANDLE), None),
        }
    }

    fn get_process_properties(&self, process: RawProcess) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, "HcsGetProcessProperties", process.0, "");
        if let Some(out) = Self::injected(&mut s, "HcsGetProcessProperties") {
            return out;
        }
        let Some((id, pid)) = Self::process_of(&s, process) else {
            return V1Output::hr(E_INVALID_HANDLE);
        };
        let exit = s.exited.get(&(id, pid)).copied();
        let last_wait = s.status_next.remove("LastWaitResult").unwrap_or(0);
        V1Output {
            hr: 0,
            output: Some(
                serde_json::json!({
                    "ProcessId": pid,
                    "Exited": exit.is_some(),
                    "ExitCode": exit.unwrap_or(0),
                    "LastWaitResult": last_wait
                })
                .to_string(),
            ),
            result: None,
        }
    }

    fn modify_process(&self, process: RawProcess, settings: &str) -> V1Output {
        self.process_doc_call("HcsModifyProcess", process, settings)
    }

    fn register_process_callback(
        &self,
        process: RawProcess,
        sink: NotificationSink,
    ) -> Result<RawCallback, i32> {
        let mut s = self.st();
        Self::record(&mut s, "HcsRegisterProcessCallback", process.0, "");
        s.next += 1;
        let cb = s.next;
        s.callbacks.insert(cb, (process.0, sink));
        Ok(RawCallback(cb))
    }

    fn unregister_process_callback(&self, callback: RawCallback) -> i32 {
        let mut s = self.st();
        Self::record(&mut s, "HcsUnregisterProcessCallback", callback.0, "");
        match s.callbacks.remove(&callback.0) {
            Some(_) => 0,
            None => E_INVALID_HANDLE,
        }
    }

    fn stdio_from_info(&self, info: ProcessInformation) -> std::io::Result<Stdio> {
        let mut s = self.st();
        let mut take = |h: RawHandle| {
            if h.is_none() {
                None
            } else {
                s.host_stdio.remove(&h.0)
            }
        };
        let (i, o, e) = (
            take(info.std_input),
            take(info.std_output),
            take(info.std_error),
        );
        Ok(Stdio {
            stdin: match i {
                Some(HostEnd::Stdin(d)) => Some(Box::new(d)),
                _ => None,
            },
            stdout: match o {
                Some(HostEnd::Output(d)) => Some(Box::new(d)),
                _ => None,
            },
            stderr: match e {
                Some(HostEnd::Output(d)) => Some(Box::new(d)),
                _ => None,
            },
        })
    }

    fn get_service_properties(&self, query: &str) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, "HcsGetServiceProperties", 0, query);
        Self::injected(&mut s, "HcsGetServiceProperties").unwrap_or_else(|| V1Output {
            hr: 0,
            output: Some(
                r#"{"Properties":[{"SupportedSchemaVersions":[{"Major":2,"Minor":1}]}]}"#.into(),
            ),
            result: None,
        })
    }

    fn modify_service_settings(&self, settings: &str) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, "HcsModifyServiceSettings", 0, settings);
        Self::injected(&mut s, "HcsModifyServiceSettings").unwrap_or_else(|| V1Output::hr(0))
    }

    fn hns_call(&self, method: &str, path: &str, request: &str) -> V1Output {
        let mut s = self.st();
        Self::record(&mut s, "HNSCall", 0, format!("{method} {path} {request}"));
        if let Some(out) = Self::injected(&mut s, "HNSCall") {
            return out;
        }
        V1Output {
            hr: 0,
            output: s.hns_response.clone(),
            result: None,
        }
    }

    fn layer_call(&self, call: LayerCall<'_>) -> Result<LayerOutput, i32> {
        let export = call.export();
        let mut s = self.st();
        let render = |parents: &[crate::vmcompute::LayerDescriptor]| {
            parents
                .iter()
                .map(|d| format!("{}@{}", d.path, d.layer_id))
                .collect::<Vec<_>>()
                .join(",")
        };
        let arg = match &call {
            LayerCall::Activate { id }
            | LayerCall::Deactivate { id }
            | LayerCall::Destroy { id }
            | LayerCall::GetMountPath { id }
            | LayerCall::Exists { id }
            | LayerCall::Unprepare { id } => id.to_string(),
            LayerCall::Create { id, parent } => format!("{id} {parent}"),
            LayerCall::CreateSandbox { id, parents } | LayerCall::Prepare { id, parents } => {
                format!("{id} [{}]", render(parents))
            }
            LayerCall::ExpandSandboxSize { id, size } => format!("{id} {size}"),
            LayerCall::Export { id, path, parents } | LayerCall::Import { id, path, parents } => {
                format!("{id} {path} [{}]", render(parents))
            }
            LayerCall::GetBaseImages => String::new(),
            LayerCall::NameToGuid { name } => name.to_string(),
            LayerCall::ProcessBaseImage { path } | LayerCall::ProcessUtilityImage { path } => {
                path.to_string()
            }
            LayerCall::GrantVmAccess { vm_id, path } => format!("{vm_id} {path}"),
        };
        Self::record(&mut s, export, 0, arg);
        if let Some(out) = Self::injected(&mut s, export) {
            return Err(out.hr);
        }
        let missing = HResult::HRESULT_ERROR_NOT_FOUND.as_i32();
        Ok(match call {
            LayerCall::NameToGuid { name } => LayerOutput::Guid(name_guid(name)),
            LayerCall::Exists { id } => LayerOutput::Exists(s.layers.contains(id)),
            LayerCall::Create { id, .. }
            | LayerCall::CreateSandbox { id, .. }
            | LayerCall::Import { id, .. } => {
                s.layers.insert(id.to_string());
                LayerOutput::None
            }
            LayerCall::Destroy { id } => {
                s.layers.remove(id);
                s.active.remove(id);
                LayerOutput::None
            }
            LayerCall::Activate { id } if !s.layers.contains(id) => return Err(missing),
            LayerCall::Activate { id } => {
                s.active.insert(id.to_string());
                LayerOutput::None
            }
            LayerCall::Deactivate { id } => {
                s.active.remove(id);
                LayerOutput::None
            }
            LayerCall::GetMountPath { id } if s.active.contains(id) => {
                LayerOutput::Text(format!("\\\\?\\Volume{{{}}}\\", name_guid(id)))
            }
            LayerCall::GetMountPath { .. } => LayerOutput::None,
            LayerCall::GetBaseImages => LayerOutput::Text(r#"{"Images":[]}"#.into()),
            _ => LayerOutput::None,
        })
    }
}

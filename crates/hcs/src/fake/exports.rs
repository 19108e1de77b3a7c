//! The [`HcsApi`] exports of the simulator: operations, compute systems, processes, the
//! service calls and stdio, each answering as computecore does.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::sim::host_pipe;
use super::{
    failed, ok_result, FakeHcs, GuestStdio, HostEnd, Injection, OpState, SimProcess, SimState,
    SimSystem, State,
};
use crate::api::{
    EventSink, HcsApi, OperationResult, ProcessCall, ProcessInformation, RawHandle, RawOperation,
    RawProcess, RawSystem, SystemCall,
};
use crate::cow::Stdio;
use crate::hresult::HResult;

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

//! The [`VmcomputeApi`] exports of the simulator: the v1 compute-system and process calls,
//! the service calls, `HNSCall` and the graph-driver layer exports.

use tokio::io::DuplexStream;

use super::{
    FakeVmcompute, HostEnd, SimProcess, SimSystem, State, E_INVALID_HANDLE, E_PROC_NOT_FOUND,
};
use crate::api::{ProcessInformation, RawHandle, RawProcess, RawSystem};
use crate::cow::Stdio;
use crate::fake::{error_document, GuestStdio};
use crate::hresult::HResult;
use crate::v1::notification as n;
use crate::vmcompute::{
    LayerCall, LayerGuid, LayerOutput, NotificationSink, RawCallback, SystemCall, V1Output,
    VmcomputeApi,
};

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

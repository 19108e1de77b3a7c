//! The simulator's core: the operation-call path (record, injections, gates), exit
//! bookkeeping and event fan-out, and the documents HCS returns for a system.
//!
//! Shared by the exports (`exports`) and the test controls (the parent module); kept apart
//! so the export table reads as the HCS surface alone.

use std::collections::VecDeque;

use serde_json::{json, Value};
use tokio::io::DuplexStream;

use super::{FakeHcs, GuestStdio, HostEnd, Injection, SimState, SimSystem, State};
use crate::api::{EventSink, OperationResult, RawEvent, RawHandle, RawOperation, RawSystem};
use crate::hresult::HResult;
use crate::notification::event_type;

impl FakeHcs {
    pub(super) fn mark_process_exited(
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

    pub(super) fn mark_system_exited(
        s: &mut State,
        id: &str,
        exit_type: &str,
    ) -> Vec<(EventSink, RawEvent)> {
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

    pub(super) fn alloc(s: &mut State) -> usize {
        s.next_handle += 1;
        s.next_handle
    }

    pub(super) fn record(
        s: &mut State,
        export: &'static str,
        handle: usize,
        arg: impl Into<String>,
    ) {
        s.calls.record(export, handle, arg);
    }

    pub(super) fn take_injection(s: &mut State, export: &'static str) -> Option<Injection> {
        s.injections.get_mut(export).and_then(VecDeque::pop_front)
    }

    /// Common path of every operation-based call: record, apply an injection, or run the
    /// simulation `sim`, then store the operation result.
    pub(super) fn op_call(
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

    pub(super) fn properties_document(id: &str, sys: &SimSystem, query: &Value) -> Value {
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

    pub(super) fn system_of(s: &State, handle: RawSystem) -> Option<String> {
        s.system_handles.get(&handle.0).cloned()
    }
}

pub(super) fn fire(sinks: Vec<(EventSink, RawEvent)>) {
    for (sink, event) in sinks {
        sink(event);
    }
}

pub(super) fn host_pipe(s: &mut State, output: bool) -> (RawHandle, DuplexStream) {
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

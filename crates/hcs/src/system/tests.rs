//! The computecore backend driven against the HCS simulator: the shared fixtures, and call
//! sequences, documents, error mapping, timeouts, events and enumeration of compute systems.
//! Processes are tested in `process`, handle hygiene (close, drop, calls in flight) in
//! `handles`.

use std::sync::Arc;
use std::time::Duration;

use hcs_schema::v1::{ComputeSystemQuery, PropertyType};
use serde_json::json;

use super::*;
use crate::api::RawEvent;
use crate::error::Target;
use crate::error::{is_not_exist, is_timeout};
use crate::fake::{error_document, FakeHcs, Injection, SimState};

mod handles;
mod process;

const ID: &str = "c0ffee";

fn container_doc() -> serde_json::Value {
    json!({
        "Owner": "containerd-shim",
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Container": {"Storage": {"Layers": []}},
        "ShouldTerminateOnLastHandleClosed": true
    })
}

async fn started(fake: &Arc<FakeHcs>) -> System {
    let system = System::create(fake.clone(), ID, &container_doc(), Timeouts::default())
        .await
        .unwrap();
    system.start().await.unwrap();
    system
}

fn params(cmd: &str) -> serde_json::Value {
    json!({
        "CommandLine": cmd,
        "WorkingDirectory": "C:\\",
        "CreateStdInPipe": true,
        "CreateStdOutPipe": true,
        "CreateStdErrPipe": false
    })
}

#[tokio::test]
async fn lifecycle_calls_and_documents() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    assert_eq!(fake.system_state(ID), Some(SimState::Running));
    assert!(system.start_time().is_some());
    assert_eq!(system.system_type(), "container");
    assert_eq!(system.owner(), "containerd-shim");
    assert_eq!(cow::ProcessHost::os(&system), Os::Windows);
    assert!(!cow::ProcessHost::is_oci(&system));

    assert_eq!(
        fake.exports(),
        [
            "HcsCreateOperation",
            "HcsCreateComputeSystem",
            "HcsWaitForOperationResult",
            "HcsCloseOperation",
            "HcsSetComputeSystemCallback",
            "HcsCreateOperation",
            "HcsGetComputeSystemProperties",
            "HcsWaitForOperationResult",
            "HcsCloseOperation",
            "HcsCreateOperation",
            "HcsStartComputeSystem",
            "HcsWaitForOperationResult",
            "HcsCloseOperation",
        ]
    );
    let create = &fake.calls_of("HcsCreateComputeSystem")[0];
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&create.arg).unwrap(),
        container_doc()
    );
    // Callback registered with EnableLiveMigrationEvents (4), as hcsshim v2 does.
    assert_eq!(fake.calls_of("HcsSetComputeSystemCallback")[0].arg, "4");
    // The cached-properties query asks for no property types.
    assert_eq!(fake.calls_of("HcsGetComputeSystemProperties")[0].arg, "{}");
    // Start is bounded by SystemStart (4 min): a finite wait, at most 240000 ms.
    let waits = fake.calls_of("HcsWaitForOperationResult");
    let start_wait: u32 = waits[2].arg.parse().unwrap();
    assert!(
        start_wait <= 240_000 && start_wait > 200_000,
        "{start_wait}"
    );
    // Property queries have no deadline: INFINITE.
    assert_eq!(waits[1].arg, u32::MAX.to_string());

    let stats = system.statistics().await.unwrap();
    assert_eq!(stats.uptime_100ns, 2_450_000_000);
    let list = system.process_list().await.unwrap();
    assert!(list.is_empty());
    assert_eq!(
        fake.calls_of("HcsGetComputeSystemProperties")[1].arg,
        r#"{"PropertyTypes":["Statistics"]}"#
    );
    let v2 = system.properties_v2(&["Memory"]).await.unwrap();
    assert_eq!(v2["Id"], ID);
    assert_eq!(
        fake.calls_of("HcsGetComputeSystemProperties")[3].arg,
        r#"{"PropertyTypes":["Memory"]}"#
    );

    let modify = json!({"ResourcePath": "Container/Memory/SizeInMB", "Settings": 512});
    system.modify(&modify).await.unwrap();
    assert_eq!(
        fake.calls_of("HcsModifyComputeSystem")[0].arg,
        modify.to_string()
    );

    system.pause().await.unwrap();
    assert_eq!(fake.system_state(ID), Some(SimState::Paused));
    let save = json!({"SaveType": "ToFile", "SaveStateFilePath": "C:\\state.vmrs"});
    system.save(&save).await.unwrap();
    assert_eq!(
        fake.calls_of("HcsSaveComputeSystem")[0].arg,
        save.to_string()
    );
    system.resume().await.unwrap();
    assert_eq!(fake.system_state(ID), Some(SimState::Running));

    system.shutdown().await.unwrap();
    system.wait().await.unwrap();
    assert!(system.stopped());
    assert!(system.exit_error().is_none());
    // Shutdown is submitted: the operation is closed without waiting.
    let exports = fake.exports();
    let i = exports
        .iter()
        .position(|e| *e == "HcsShutDownComputeSystem")
        .unwrap();
    assert_eq!(exports[i + 1], "HcsCloseOperation");

    // Once stopped, shutdown and terminate do nothing.
    let n = fake.calls().len();
    system.shutdown().await.unwrap();
    system.terminate().await.unwrap();
    assert_eq!(fake.calls().len(), n);

    system.close().await.unwrap();
    system.close().await.unwrap();
    assert_eq!(fake.calls_of("HcsCloseComputeSystem").len(), 1);
    assert_eq!(fake.open_handles(), (0, 0, 0));
    // A stopped system disappears with its last handle.
    assert_eq!(fake.system_state(ID), None);
}

#[tokio::test]
async fn create_failure_keeps_hresult_and_events_and_cleans_up() {
    let fake = FakeHcs::new();
    let doc = error_document(HResult::HCS_E_INVALID_LAYER, "layer.vhdx is not a layer");
    fake.inject(
        "HcsCreateComputeSystem",
        Injection::SimulatedThenFails {
            hr: HResult::HCS_E_INVALID_LAYER.as_i32(),
            document: Some(doc),
        },
    );
    let err = System::create(fake.clone(), ID, &container_doc(), Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.hresult(), Some(HResult::HCS_E_INVALID_LAYER));
    assert_eq!(err.operation(), "hcs::CreateComputeSystem");
    assert_eq!(err.target(), &Target::System { id: ID.into() });
    assert_eq!(err.events().len(), 1);
    assert_eq!(err.events()[0].message, "layer.vhdx is not a layer");
    assert_eq!(err.events()[0].event_id, 11164);
    let text = err.to_string();
    assert!(
        text.starts_with("hcs::CreateComputeSystem c0ffee: HCS_E_INVALID_LAYER (0x80370112)"),
        "{text}"
    );
    assert!(text.contains("\n[Event Detail: layer.vhdx is not a layer Provider: "));
    // HCS returned a handle: the system is terminated and the handle closed.
    assert_eq!(fake.calls_of("HcsTerminateComputeSystem").len(), 1);
    assert_eq!(fake.calls_of("HcsCloseComputeSystem").len(), 1);
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn synchronous_call_failure_reads_the_operation_result() {
    let fake = FakeHcs::new();
    let doc = error_document(HResult::HCS_E_INVALID_JSON, "bad document");
    fake.inject(
        "HcsCreateComputeSystem",
        Injection::CallFails {
            hr: HResult::HCS_E_INVALID_JSON.as_i32(),
            document: Some(doc),
        },
    );
    let err = System::create(fake.clone(), ID, &container_doc(), Timeouts::default())
        .await
        .unwrap_err();
    assert!(crate::error::is_not_supported(&err));
    assert_eq!(err.events()[0].message, "bad document");
    assert_eq!(
        fake.exports(),
        [
            "HcsCreateOperation",
            "HcsCreateComputeSystem",
            "HcsGetOperationResult",
            "HcsCloseOperation"
        ]
    );
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn operation_handle_failure_is_reported() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    fake.inject(
        "HcsCreateOperation",
        Injection::CallFails {
            hr: 0x8007_000E_u32 as i32, // E_OUTOFMEMORY
            document: None,
        },
    );
    let err = system.pause().await.unwrap_err();
    assert_eq!(err.hresult(), Some(HResult::new(0xE)));
    assert_eq!(err.operation(), "hcs::System::Pause");
    system.close().await.unwrap();
}

#[tokio::test]
async fn wait_timeout_cancels_the_operation() {
    let fake = FakeHcs::new();
    let timeouts = Timeouts {
        system_start: Duration::from_secs(10),
        ..Timeouts::default()
    };
    let system = System::create(fake.clone(), ID, &container_doc(), timeouts)
        .await
        .unwrap();
    fake.inject("HcsStartComputeSystem", Injection::WaitTimesOut);
    let err = system.start().await.unwrap_err();
    assert!(is_timeout(&err), "{err}");
    assert_eq!(err.hresult(), Some(HResult::HCS_E_OPERATION_TIMEOUT));
    let exports = fake.exports();
    let n = exports.len();
    assert_eq!(
        &exports[n - 4..],
        [
            "HcsStartComputeSystem",
            "HcsWaitForOperationResult",
            "HcsCancelOperation",
            "HcsCloseOperation"
        ]
    );
    let wait: u32 = fake
        .calls_of("HcsWaitForOperationResult")
        .last()
        .unwrap()
        .arg
        .parse()
        .unwrap();
    assert!(wait <= 10_000 && wait > 5_000, "{wait}");
    system.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn stop_errors_that_mean_done_are_success() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    for hr in [
        0xC037_0110_u32,
        0x8037_0110,
        0xC037_010E,
        0x8037_010E,
        0xC037_0103,
    ] {
        fake.inject(
            "HcsTerminateComputeSystem",
            Injection::CallFails {
                hr: hr as i32,
                document: None,
            },
        );
        system.terminate().await.unwrap();
    }
    fake.inject(
        "HcsShutDownComputeSystem",
        Injection::CallFails {
            hr: 0x8007_0005_u32 as i32, // E_ACCESSDENIED, normalised to 0x5
            document: None,
        },
    );
    let err = system.shutdown().await.unwrap_err();
    assert_eq!(err.operation(), "hcs::System::Shutdown");
    assert!(crate::error::is_access_is_denied(&err));
    system.close().await.unwrap();
}

#[tokio::test]
async fn unexpected_exit_and_service_disconnect() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    fake.exit_system(ID, "UnexpectedExit");
    system.wait().await.unwrap();
    let exit = system.exit_error().unwrap();
    assert_eq!(
        exit.hresult(),
        Some(HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT)
    );
    // A later event does not override the first exit.
    fake.disconnect_service();
    system.wait().await.unwrap();
    system.close().await.unwrap();

    let fake = FakeHcs::new();
    let system = started(&fake).await;
    fake.send_system_event(
        ID,
        RawEvent {
            event_type: crate::notification::event_type::SYSTEM_CRASH_INITIATED,
            data: None,
        },
    );
    assert!(!system.stopped(), "unrelated events are ignored");
    fake.disconnect_service();
    let err = system.wait().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedProcessAbort));
    assert_eq!(system.exit_error().unwrap().to_string(), err.to_string());
    system.close().await.unwrap();
}

#[tokio::test]
async fn open_and_enumerate() {
    let fake = FakeHcs::new();
    let err = System::open(fake.clone(), "nope", Timeouts::default())
        .await
        .unwrap_err();
    assert!(
        is_not_exist(&err),
        "HCS_E_SYSTEM_NOT_FOUND is not-exist: {err}"
    );
    assert_eq!(err.operation(), "hcs::OpenComputeSystem");

    fake.set_runtime_os("lcow", "Linux");
    let a = System::create(fake.clone(), "lcow", &container_doc(), Timeouts::default())
        .await
        .unwrap();
    let b = System::create(
        fake.clone(),
        "uvm",
        &json!({"Owner": "other", "VirtualMachine": {}}),
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(cow::ProcessHost::os(&a), Os::Linux);
    assert!(cow::ProcessHost::is_oci(&a));
    assert!(!cow::ProcessHost::is_oci(&b));

    let opened = System::open(fake.clone(), "lcow", Timeouts::default())
        .await
        .unwrap();
    assert!(cow::ProcessHost::is_oci(&opened));

    let all = System::enumerate(fake.clone(), &ComputeSystemQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(fake.calls_of("HcsEnumerateComputeSystems")[0].arg, "{}");
    let q = ComputeSystemQuery {
        owners: vec!["other".into()],
        ..Default::default()
    };
    let some = System::enumerate(fake.clone(), &q).await.unwrap();
    assert_eq!(some.len(), 1);
    assert_eq!(some[0].id, "uvm");
    assert_eq!(some[0].system_type, "VirtualMachine");

    fake.inject("HcsEnumerateComputeSystems", Injection::Document(None));
    let err = System::enumerate(fake.clone(), &q).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedValue));
    fake.inject(
        "HcsEnumerateComputeSystems",
        Injection::Document(Some("{not json".into())),
    );
    let err = System::enumerate(fake.clone(), &q).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidResponse(_)));

    for s in [a, b, opened] {
        s.close().await.unwrap();
    }
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn service_calls() {
    let fake = FakeHcs::new();
    let props = get_service_properties(fake.clone(), &json!({"PropertyTypes": ["Basic"]}))
        .await
        .unwrap();
    assert_eq!(
        props["Properties"][0]["SupportedSchemaVersions"][1]["Minor"],
        5
    );
    modify_service_settings(
        fake.clone(),
        &json!({"PropertyType": "CpuGroup", "Settings": {}}),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.exports(),
        ["HcsGetServiceProperties", "HcsModifyServiceSettings"]
    );
}

#[tokio::test]
async fn backend_through_the_cow_traits() {
    let fake = FakeHcs::new();
    fake.set_runtime_os(ID, "Linux");
    let system = System::create(fake.clone(), ID, &container_doc(), Timeouts::default())
        .await
        .unwrap();
    let c: Box<dyn cow::Container> = Box::new(system);
    assert_eq!(c.id(), ID);
    assert!(c.is_oci());
    c.start().await.unwrap();
    let props = c.properties(&["ProcessList"]).await.unwrap();
    assert!(
        props.get("ProcessList").is_none(),
        "an empty list is omitted (omitempty)"
    );
    let p = c.create_process(&params("sh")).await.unwrap();
    let props = c.properties(&["ProcessList"]).await.unwrap();
    assert_eq!(props["ProcessList"][0]["ProcessId"], p.pid());
    assert!(matches!(
        c.set_cpu_group_affinities(&[]).await.unwrap_err().kind(),
        ErrorKind::NotImplemented
    ));
    assert!(p.kill().await.unwrap());
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 1);
    p.close().await.unwrap();
    c.terminate().await.unwrap();
    c.wait().await.unwrap();
    c.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn properties_v1_typed() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    let props = system
        .properties_v1(&[PropertyType::Statistics, PropertyType::ProcessList])
        .await
        .unwrap();
    assert_eq!(props.id, ID);
    assert_eq!(props.state, "Running");
    assert_eq!(props.statistics.memory.usage_commit_bytes, 104_857_600);
    fake.inject(
        "HcsGetComputeSystemProperties",
        Injection::Document(Some(String::new())),
    );
    let err = system.statistics().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedValue));
    system.close().await.unwrap();
}

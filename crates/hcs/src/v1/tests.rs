//! The v1 notification model and the vmcompute engine against the simulator.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::error::{is_already_closed, is_not_exist, is_timeout};
use crate::fake_vmcompute::{Completion, FakeVmcompute};
use crate::vmcompute::V1Notification;

const ID: &str = "v1-sys";

fn doc() -> serde_json::Value {
    json!({"SystemType": "Container", "Name": ID, "Layers": [], "HvPartition": false})
}

fn note(t: u32, status: i32) -> V1Notification {
    V1Notification {
        notification_type: t,
        status,
        data: None,
    }
}

const PENDING: i32 = HResult::ERROR_VMCOMPUTE_OPERATION_PENDING.as_i32();

#[tokio::test]
async fn watcher_routes_completions_exits_and_timeouts() {
    let w = Watcher::for_system();
    // A completion delivered before the wait is kept (buffer of one).
    w.deliver(note(n::SYSTEM_START_COMPLETED, 0));
    w.wait_for(n::SYSTEM_START_COMPLETED, Some(Duration::from_secs(1)))
        .await
        .unwrap();
    // A failing status is normalised and returned.
    w.deliver(note(n::SYSTEM_PAUSE_COMPLETED, 0x8007_0490_u32 as i32));
    let err = w
        .wait_for(n::SYSTEM_PAUSE_COMPLETED, None)
        .await
        .unwrap_err();
    assert_eq!(err.hresult(), Some(HResult::ERROR_NOT_FOUND));
    // Nothing comes: ErrTimeout.
    let err = w
        .wait_for(n::SYSTEM_RESUME_COMPLETED, Some(Duration::from_millis(10)))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout));
    // A type without a channel: ErrInvalidNotificationType.
    let err = w
        .wait_for(n::SYSTEM_MODIFY_COMPLETED, None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidNotificationType));
    // Unknown notifications are dropped without effect.
    w.deliver(note(n::SYSTEM_CRASH_REPORT, 0));
    // A second unread completion is dropped, not blocking the sender.
    w.deliver(note(n::SYSTEM_SAVE_COMPLETED, 0));
    w.deliver(note(n::SYSTEM_SAVE_COMPLETED, -1));
    w.wait_for(n::SYSTEM_SAVE_COMPLETED, None).await.unwrap();
}

#[tokio::test]
async fn exit_while_waiting_is_an_unexpected_container_exit() {
    let w = Watcher::for_system();
    let waiter = {
        let w = w.clone();
        tokio::spawn(async move { w.wait_for(n::SYSTEM_START_COMPLETED, None).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    w.deliver(note(
        n::SYSTEM_EXITED,
        HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT.as_i32(),
    ));
    let err = waiter.await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedContainerExit));
    // Waiting for the exit itself gives its status; it is sticky.
    let err = w.wait_for(n::SYSTEM_EXITED, None).await.unwrap_err();
    assert_eq!(
        err.hresult(),
        Some(HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT)
    );
    assert!(w.exit_error().is_some());
    // Later exits do not replace the first.
    w.deliver(note(n::SERVICE_DISCONNECT, 0));
    assert!(w.wait_for(n::SYSTEM_EXITED, None).await.is_err());
    assert!(w.exit_error().is_some());
}

#[tokio::test]
async fn disconnect_and_close_release_waiters() {
    let w = Watcher::for_system();
    w.deliver(note(n::SERVICE_DISCONNECT, 0));
    let err = w
        .wait_for(n::SYSTEM_CREATE_COMPLETED, None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedProcessAbort));
    let err = w.wait_for(n::SYSTEM_EXITED, None).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedProcessAbort));

    let w = Watcher::for_process();
    let waiter = {
        let w = w.clone();
        tokio::spawn(async move { w.wait_for(n::PROCESS_EXITED, None).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    w.close();
    let err = waiter.await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::HandleClose));
}

#[tokio::test]
async fn process_async_result_waits_only_when_pending() {
    let w = Watcher::for_system();
    // Synchronous success.
    w.process_async_result(V1Output::hr(0), n::SYSTEM_START_COMPLETED, None)
        .await
        .unwrap();
    // Synchronous failure: the result document's records come with the HRESULT.
    let out = V1Output {
        hr: HResult::ERROR_VMCOMPUTE_INVALID_JSON.as_i32(),
        output: None,
        result: Some(
            json!({"Error": -1070137075, "ErrorMessage": "bad",
                   "ErrorEvents": [{"Message": "unknown key", "EventId": 7}]})
            .to_string(),
        ),
    };
    let err = w
        .process_async_result(out, n::SYSTEM_START_COMPLETED, None)
        .await
        .unwrap_err();
    assert_eq!(err.hresult(), Some(HResult::ERROR_VMCOMPUTE_INVALID_JSON));
    assert_eq!(err.events()[0].message, "unknown key");
    // Pending: the notification decides, from another thread.
    let sink = w.sink();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        sink(note(n::SYSTEM_START_COMPLETED, 0));
    });
    w.process_async_result(V1Output::hr(PENDING), n::SYSTEM_START_COMPLETED, None)
        .await
        .unwrap();
    // Pending and nothing comes: timeout.
    let err = w
        .process_async_result(
            V1Output::hr(PENDING),
            n::SYSTEM_START_COMPLETED,
            Some(Duration::from_millis(10)),
        )
        .await
        .unwrap_err();
    assert!(is_timeout(&err));
}

#[tokio::test]
async fn system_lifecycle_synchronous_and_pending() {
    for completion in [Completion::Sync, Completion::Async] {
        let fake = FakeVmcompute::new();
        fake.set_completion(completion);
        let system = V1System::create(fake.clone(), ID, &doc(), Timeouts::default())
            .await
            .unwrap();
        system.start().await.unwrap();
        assert_eq!(fake.system_state(ID), Some("Running"));
        system.pause().await.unwrap();
        assert_eq!(fake.system_state(ID), Some("Paused"));
        system.resume().await.unwrap();
        system
            .save(&json!({"SaveType": "ToFile", "SaveStateFilePath": "C:\\s.vmrs"}))
            .await
            .unwrap();
        let props = system
            .properties(&json!({"PropertyTypes": ["Statistics"]}))
            .await
            .unwrap();
        assert_eq!(props["State"], "Running");
        system
            .modify(&json!({"ResourceType": "Network", "RequestType": "Add", "Settings": "e1"}))
            .await
            .unwrap();
        // Shutdown returns at once ("pending" is success); the exit comes as a notification.
        system.shutdown().await.unwrap();
        system.wait().await.unwrap();
        assert!(system.exit_error().is_none());
        // Stopped: terminate does nothing.
        system.terminate().await.unwrap();
        system.close().await.unwrap();
        system.close().await.unwrap();
        assert!(is_already_closed(&system.start().await.unwrap_err()));
        assert_eq!(fake.open_handles(), (0, 0, 0), "{completion:?}");
        let exports = fake.exports();
        assert_eq!(
            &exports[..2],
            ["HcsCreateComputeSystem", "HcsRegisterComputeSystemCallback"]
        );
        assert_eq!(
            &exports[exports.len() - 2..],
            [
                "HcsUnregisterComputeSystemCallback",
                "HcsCloseComputeSystem"
            ]
        );
        let save = &fake.calls_of("HcsSaveComputeSystem")[0];
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&save.arg).unwrap()["SaveType"],
            "ToFile"
        );
        assert_eq!(fake.calls_of("HcsStartComputeSystem")[0].arg, "");
    }
}

#[tokio::test]
async fn failed_pending_start_and_create_timeout() {
    let fake = FakeVmcompute::new();
    fake.set_completion(Completion::Async);
    let system = V1System::create(fake.clone(), ID, &doc(), Timeouts::default())
        .await
        .unwrap();
    fake.complete_next_with(
        "HcsStartComputeSystem",
        HResult::ERROR_VMCOMPUTE_INVALID_STATE.as_i32(),
    );
    let err = system.start().await.unwrap_err();
    assert!(crate::error::is_operation_invalid_state(&err));
    assert_eq!(err.operation(), "hcs::System::Start");
    assert_eq!(
        err.target(),
        &crate::error::Target::System { id: ID.into() }
    );
    system.close().await.unwrap();

    // A create whose completion never comes times out after SystemCreate; the system is
    // terminated and closed.
    let fake = FakeVmcompute::new();
    fake.set_completion(Completion::Never);
    let timeouts = Timeouts {
        system_create: Duration::from_millis(20),
        ..Timeouts::default()
    };
    let err = V1System::create(fake.clone(), ID, &doc(), timeouts)
        .await
        .unwrap_err();
    assert!(is_timeout(&err));
    assert_eq!(err.operation(), "hcs::CreateComputeSystem");
    assert_eq!(fake.calls_of("HcsTerminateComputeSystem").len(), 1);
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn unexpected_exit_open_enumerate_and_errors() {
    let fake = FakeVmcompute::new();
    let system = V1System::create(fake.clone(), ID, &doc(), Timeouts::default())
        .await
        .unwrap();
    system.start().await.unwrap();
    let opened = V1System::open(fake.clone(), ID, Timeouts::default())
        .await
        .unwrap();
    assert_eq!(opened.id(), ID);
    let list = V1System::enumerate(fake.clone(), &Default::default())
        .await
        .unwrap();
    assert_eq!(list[0].id, ID);

    fake.exit_system(ID, HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT.as_i32());
    system.wait().await.unwrap();
    opened.wait().await.unwrap();
    let exit = system.exit_error().unwrap();
    assert_eq!(
        exit.hresult(),
        Some(HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT)
    );
    opened.close().await.unwrap();
    system.close().await.unwrap();

    let err = V1System::open(fake.clone(), "nope", Timeouts::default())
        .await
        .unwrap_err();
    assert!(is_not_exist(&err));
    assert_eq!(err.operation(), "hcs::OpenComputeSystem");

    fake.fail_next(
        "HcsCreateComputeSystem",
        HResult::ERROR_VMCOMPUTE_INVALID_JSON.as_i32(),
    );
    let err = V1System::create(fake.clone(), "x", &doc(), Timeouts::default())
        .await
        .unwrap_err();
    assert!(crate::error::is_not_supported(&err));
    assert_eq!(err.events().len(), 1);

    fake.fail_next("HcsEnumerateComputeSystems", 0);
    // S_OK with no list is UnexpectedValue.
    let err = V1System::enumerate(fake.clone(), &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedValue));
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn wait_after_close_and_service_disconnect() {
    let fake = FakeVmcompute::new();
    let system = V1System::create(fake.clone(), ID, &doc(), Timeouts::default())
        .await
        .unwrap();
    let waiter = {
        let s = system.clone();
        tokio::spawn(async move { s.wait().await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    system.close().await.unwrap();
    assert!(is_already_closed(&waiter.await.unwrap().unwrap_err()));

    let system = V1System::create(fake.clone(), "other", &doc(), Timeouts::default())
        .await
        .unwrap();
    fake.disconnect_service();
    let err = system.wait().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::UnexpectedProcessAbort));
    system.close().await.unwrap();
}

#[tokio::test]
async fn service_calls() {
    let fake = FakeVmcompute::new();
    let props = get_service_properties(fake.clone(), &json!({"PropertyTypes": ["Basic"]}))
        .await
        .unwrap();
    assert_eq!(
        props["Properties"][0]["SupportedSchemaVersions"][0]["Major"],
        2
    );
    modify_service_settings(
        fake.clone(),
        &json!({"PropertyType": "CpuGroup", "Settings": {}}),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.calls_of("HcsModifyServiceSettings")[0].arg,
        r#"{"PropertyType":"CpuGroup","Settings":{}}"#
    );
    fake.fail_next("HcsGetServiceProperties", 0x8007_0005_u32 as i32);
    let err = get_service_properties(fake.clone(), &json!({}))
        .await
        .unwrap_err();
    assert!(crate::error::is_access_is_denied(&err));
    assert_eq!(err.target(), &crate::error::Target::None);
}

async fn running(fake: &Arc<FakeVmcompute>) -> V1System {
    let system = V1System::create(fake.clone(), ID, &doc(), Timeouts::default())
        .await
        .unwrap();
    system.start().await.unwrap();
    system
}

#[tokio::test]
async fn process_exit_code_from_process_status() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeVmcompute::new();
    let system = running(&fake).await;
    let p = system
        .create_process(&json!({
            "CommandLine": "cmd /c echo hi",
            "CreateStdInPipe": true,
            "CreateStdOutPipe": true
        }))
        .await
        .unwrap();
    assert!(!p.stopped());
    assert!(matches!(
        p.exit_code().unwrap_err().kind(),
        ErrorKind::InvalidProcessState
    ));
    let mut stdio = p.take_stdio();
    assert!(stdio.stdin.is_some() && stdio.stdout.is_some() && stdio.stderr.is_none());
    let mut guest = fake.guest_stdio(ID, p.pid()).unwrap();
    stdio
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"in")
        .await
        .unwrap();
    let mut buf = [0u8; 2];
    guest
        .stdin
        .as_mut()
        .unwrap()
        .read_exact(&mut buf)
        .await
        .unwrap();
    assert_eq!(&buf, b"in");
    guest.stdout.take().unwrap().write_all(b"hi").await.unwrap();
    let mut text = String::new();
    stdio
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut text)
        .await
        .unwrap();
    assert_eq!(text, "hi");

    p.resize_console(120, 30).await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&fake.calls_of("HcsModifyProcess")[0].arg)
            .unwrap(),
        json!({"Operation": "ConsoleSize", "ConsoleSize": {"Height": 30, "Width": 120}})
    );
    p.close_stdin().await.unwrap();
    fake.exit_process(ID, p.pid(), 7);
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 7);
    // After the exit, ProcessExited was followed by HcsGetProcessProperties.
    assert_eq!(fake.calls_of("HcsGetProcessProperties").len(), 1);
    // Kill of an exited process: already stopped.
    let err = p.kill().await.unwrap_err();
    assert!(crate::error::is_already_stopped(&err));
    p.close().await.unwrap();
    system.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn process_kill_signal_close_and_errors() {
    let fake = FakeVmcompute::new();
    let system = running(&fake).await;
    let p = system
        .create_process(&json!({"CommandLine": "ping -t localhost"}))
        .await
        .unwrap();
    // A failed wait result leaves the exit code at -1.
    fake.next_last_wait_result(0x8007_0005_u32 as i32);
    assert!(p.signal(&json!({"Signal": "CtrlC"})).await.unwrap());
    assert!(p.kill().await.unwrap());
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), -1);
    // A signal to an exited process is "not delivered", without error.
    assert!(!p.signal(&json!({"Signal": "CtrlC"})).await.unwrap());

    // Opening by pid; unknown pids are "not found".
    let q = system
        .create_process(&json!({"CommandLine": "cmd"}))
        .await
        .unwrap();
    let again = system.open_process(q.pid()).await.unwrap();
    let err = system.open_process(99).await.unwrap_err();
    assert!(is_not_exist(&err));
    assert_eq!(
        err.target(),
        &crate::error::Target::Process {
            system_id: ID.into(),
            pid: 99
        }
    );
    // Close releases waiters with AlreadyClosed and exit code -1 semantics.
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.wait().await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    q.close().await.unwrap();
    assert!(is_already_closed(&waiter.await.unwrap().unwrap_err()));
    assert!(is_already_closed(&q.kill().await.unwrap_err()));
    again.close().await.unwrap();

    // Create failures carry the command line.
    fake.fail_next(
        "HcsCreateProcess",
        HResult::ERROR_VMCOMPUTE_INVALID_JSON.as_i32(),
    );
    let err = system
        .create_process(&json!({"CommandLine": "bad.exe"}))
        .await
        .unwrap_err();
    assert_eq!(err.extra(), Some("bad.exe"));
    assert_eq!(err.operation(), "hcs::System::CreateProcess");
    p.close().await.unwrap();
    system.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn v1_engine_behind_the_cow_traits() {
    use crate::cow::{Container, Os, Process};
    let fake = FakeVmcompute::new();
    let system = V1System::create(fake.clone(), ID, &doc(), Timeouts::default())
        .await
        .unwrap();
    // The cached properties come from an empty v1 query.
    assert_eq!(fake.calls_of("HcsGetComputeSystemProperties")[0].arg, "{}");
    assert_eq!(system.system_type(), "container");
    let c: Box<dyn Container> = Box::new(system.clone());
    assert_eq!(c.os(), Os::Windows);
    assert!(!c.is_oci());
    assert_eq!(c.id(), ID);
    c.start().await.unwrap();
    let props = c.properties(&["Statistics"]).await.unwrap();
    assert_eq!(props["Id"], ID);
    let p: Box<dyn Process> = c
        .create_process(&json!({"CommandLine": "cmd", "CreateStdOutPipe": true}))
        .await
        .unwrap();
    assert_eq!(p.migration_state(), Default::default());
    p.close_stdout().await.unwrap();
    assert!(p.take_stdio().stdout.is_none());
    assert!(p.signal(None).await.unwrap());
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 1);
    p.close().await.unwrap();
    assert!(matches!(
        c.set_cpu_group_affinities(&[]).await.unwrap_err().kind(),
        ErrorKind::NotImplemented
    ));
    c.terminate().await.unwrap();
    c.wait().await.unwrap();
    c.close().await.unwrap();
    drop(c);
    drop(system);
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn dropping_without_close_releases_handles() {
    let fake = FakeVmcompute::new();
    {
        let system = running(&fake).await;
        let _p = system
            .create_process(&json!({"CommandLine": "cmd"}))
            .await
            .unwrap();
        let q = system
            .create_process(&json!({"CommandLine": "cmd"}))
            .await
            .unwrap();
        // An exited process is released by its waiter once the last handle goes.
        fake.exit_process(ID, q.pid(), 0);
        q.wait().await.unwrap();
    }
    // The running process `_p` is still held by its exit waiter; the system and `q` are gone.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (systems, processes, _) = fake.open_handles();
    assert_eq!(systems, 0);
    assert_eq!(processes, 1);
}

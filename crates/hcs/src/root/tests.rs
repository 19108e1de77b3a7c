//! The root facade driven against the HCS simulator: its quirks (pending on success, wait
//! reporting the exit error, kill "not found", timeouts), error conversion and the
//! additional-JSON merge.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;

use super::*;
use crate::fake::{FakeHcs, Injection, SimState};

const ID: &str = "legacy-1";

fn config() -> ContainerConfig {
    serde_json::from_value(json!({
        "SystemType": "Container",
        "Name": ID,
        "Owner": "docker",
        "LayerFolderPath": "C:\\layers\\sandbox",
        "Layers": [{"ID": "8c1f7d2a-5b6e-5f0a-9d3c-2e4b6a8c0d1e", "Path": "C:\\layers\\base"}],
        "HvPartition": false
    }))
    .unwrap()
}

async fn created(fake: &Arc<FakeHcs>) -> Container {
    create_container_with(fake.clone(), ID, &config(), "", Timeouts::default())
        .await
        .unwrap()
}

#[test]
fn merge_follows_mergemaps() {
    let mut to = json!({"A": 1, "B": {"X": 1, "Y": 2}, "C": [1]});
    merge_json(
        &mut to,
        json!({"B": {"Y": 3, "Z": 4}, "C": [2, 3], "D": "new"}),
    );
    assert_eq!(
        to,
        json!({"A": 1, "B": {"X": 1, "Y": 3, "Z": 4}, "C": [2, 3], "D": "new"})
    );
    // A scalar replaces an object and the other way round.
    let mut to = json!({"B": {"X": 1}});
    merge_json(&mut to, json!({"B": 5}));
    assert_eq!(to, json!({"B": 5}));
}

#[test]
fn create_document_merges_the_additional_json() {
    let doc = create_document(&config(), "").unwrap();
    assert_eq!(doc, serde_json::to_value(config()).unwrap());
    let doc = create_document(&config(), r#"{"HostName":"h","Owner":"ops"}"#).unwrap();
    assert_eq!(doc["HostName"], "h");
    assert_eq!(doc["Owner"], "ops");
    assert_eq!(doc["SystemType"], "Container");
    for bad in ["{not json", "[1,2]"] {
        let err = create_document(&config(), bad).unwrap_err();
        assert!(matches!(err, RootError::AdditionalJson { .. }), "{bad}");
        assert!(err
            .to_string()
            .starts_with("failed to merge additional JSON"));
        assert!(err.inner().is_none());
    }
}

#[tokio::test]
async fn create_sends_the_merged_schema1_document() {
    let fake = FakeHcs::new();
    let c = create_container_with(
        fake.clone(),
        ID,
        &config(),
        r#"{"HostName":"merged"}"#,
        Timeouts::default(),
    )
    .await
    .unwrap();
    let sent: serde_json::Value =
        serde_json::from_str(&fake.calls_of("HcsCreateComputeSystem")[0].arg).unwrap();
    assert_eq!(sent["HostName"], "merged");
    assert_eq!(sent["SystemType"], "Container");
    assert_eq!(
        sent["Layers"][0]["ID"],
        "8c1f7d2a-5b6e-5f0a-9d3c-2e4b6a8c0d1e"
    );
    assert_eq!(c.id(), ID);
    c.close().await.unwrap();
}

#[tokio::test]
async fn shutdown_and_terminate_return_pending_on_success() {
    let fake = FakeHcs::new();
    let c = created(&fake).await;
    c.start().await.unwrap();
    let err = c.shutdown().await.unwrap_err();
    assert!(is_pending(&err), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "container {ID} encountered an error during hcsshim::ComputeSystem::Shutdown: \
             failure in a Windows system call: {} (0xc0370103)",
            HResult::ERROR_VMCOMPUTE_OPERATION_PENDING
                .message()
                .unwrap()
        )
    );
    c.wait_timeout(Duration::from_secs(5)).await.unwrap();
    // Terminate on a stopped container does nothing, and still says "pending".
    let err = c.terminate().await.unwrap_err();
    assert!(is_pending(&err));
    assert!(
        matches!(&err, RootError::Container(e) if e.inner().operation()
        == "hcsshim::ComputeSystem::Terminate")
    );
    c.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn wait_reports_an_unexpected_exit_and_wait_timeout_times_out() {
    let fake = FakeHcs::new();
    let c = created(&fake).await;
    c.start().await.unwrap();
    let err = c.wait_timeout(Duration::from_millis(20)).await.unwrap_err();
    assert!(is_timeout(&err));
    assert!(matches!(&err, RootError::Container(e)
        if e.inner().operation() == "hcsshim::ComputeSystem::Wait"));
    fake.exit_system(ID, "UnexpectedExit");
    let err = c.wait().await.unwrap_err();
    assert_eq!(
        err.inner().and_then(Error::hresult),
        Some(HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT)
    );
    c.close().await.unwrap();
    // After close the handle is gone.
    assert!(is_already_closed(&c.start().await.unwrap_err()));
}

#[tokio::test]
async fn properties_pause_resume_modify_and_pending_updates() {
    let fake = FakeHcs::new();
    let c = created(&fake).await;
    c.start().await.unwrap();
    c.pause().await.unwrap();
    assert_eq!(fake.system_state(ID), Some(SimState::Paused));
    c.resume().await.unwrap();
    assert_eq!(fake.system_state(ID), Some(SimState::Running));
    assert!(!c.has_pending_updates().await.unwrap());
    let stats = c.statistics().await.unwrap();
    assert_eq!(stats.uptime_100ns, 2_450_000_000);
    let p = c
        .create_process(&ProcessConfig {
            command_line: "cmd".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let list = c.process_list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].process_id, p.pid());
    assert!(c.mapped_virtual_disks().await.unwrap().is_empty());
    let queries: Vec<String> = fake
        .calls_of("HcsGetComputeSystemProperties")
        .into_iter()
        .map(|c| c.arg)
        .collect();
    assert!(queries.contains(&r#"{"PropertyTypes":["MappedVirtualDisk"]}"#.to_string()));

    let request: ResourceModificationRequestResponse = serde_json::from_value(json!({
        "ResourceType": "Network",
        "RequestType": "Add",
        "Settings": "5f7c-endpoint"
    }))
    .unwrap();
    c.modify(&request).await.unwrap();
    let sent: serde_json::Value =
        serde_json::from_str(&fake.calls_of("HcsModifyComputeSystem")[0].arg).unwrap();
    assert_eq!(
        sent,
        json!({"ResourceType": "Network", "RequestType": "Add", "Settings": "5f7c-endpoint"})
    );
    p.close().await.unwrap();
    c.close().await.unwrap();
}

#[tokio::test]
async fn process_facade() {
    let fake = FakeHcs::new();
    let c = created(&fake).await;
    c.start().await.unwrap();
    let p = c
        .create_process(&ProcessConfig {
            command_line: "cmd /c echo hi".into(),
            create_std_out_pipe: true,
            ..Default::default()
        })
        .await
        .unwrap();
    // Stdio: the pipes created with the process.
    let mut stdio = p.stdio().await.unwrap();
    assert!(stdio.stdout.is_some() && stdio.stdin.is_none());
    let guest = fake.guest_stdio(ID, p.pid()).unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut out = guest.stdout.unwrap();
        out.write_all(b"hi\r\n").await.unwrap();
    }
    let mut text = String::new();
    stdio
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut text)
        .await
        .unwrap();
    assert_eq!(text, "hi\r\n");

    assert!(matches!(&p.exit_code().unwrap_err(), RootError::Process(e)
        if matches!(e.inner().kind(), ErrorKind::InvalidProcessState)));
    let err = p.wait_timeout(Duration::from_millis(10)).await.unwrap_err();
    assert!(is_timeout(&err));
    assert!(err.to_string().starts_with(&format!(
        "process {} in container {ID} encountered an error during hcsshim::Process::Wait",
        p.pid()
    )));
    p.resize_console(80, 25).await.unwrap();

    // A kill HCS refuses as "invalid state" is not delivered: ErrElementNotFound.
    fake.inject(
        "HcsTerminateProcess",
        Injection::ResultFails {
            hr: HResult::ERROR_VMCOMPUTE_INVALID_STATE.as_i32(),
            document: None,
        },
    );
    let err = p.kill().await.unwrap_err();
    assert!(is_not_exist(&err) && is_already_stopped(&err));
    assert!(matches!(&err, RootError::Process(e)
        if e.inner().operation() == "hcsshim::Process::Kill"));

    // Reopen by pid while it runs.
    let again = c.open_process(p.pid()).await.unwrap();
    again.close().await.unwrap();
    fake.exit_process(ID, p.pid(), 3);
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 3);
    p.close().await.unwrap();
    c.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn open_and_enumerate_return_engine_errors_unconverted() {
    let fake = FakeHcs::new();
    let c = created(&fake).await;
    let opened = open_container_with(fake.clone(), ID, Timeouts::default())
        .await
        .unwrap();
    assert_eq!(opened.id(), ID);
    let all = get_containers_with(fake.clone(), &ComputeSystemQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, ID);
    let err = open_container_with(fake.clone(), "missing", Timeouts::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RootError::Hcs(_)));
    assert!(is_not_exist(&err));
    opened.close().await.unwrap();
    c.close().await.unwrap();
}

#[cfg(not(windows))]
#[tokio::test]
async fn host_entry_points_are_not_available_off_windows() {
    let err = create_container(ID, &config()).await.unwrap_err();
    assert!(matches!(&err, RootError::Hcs(e) if matches!(e.kind(), ErrorKind::NotAvailable(_))));
    assert!(open_container(ID).await.is_err());
    assert!(get_containers(&ComputeSystemQuery::default())
        .await
        .is_err());
    assert!(matches!(
        set_current_thread_compartment_id(1).unwrap_err(),
        RootError::Hcs(e) if matches!(e.kind(), ErrorKind::NotAvailable(_))
    ));
}

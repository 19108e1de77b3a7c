//! The process-isolated host and a Windows task through it, against the in-memory HCS and
//! vmcompute simulators: the layer calls and their undoing, the compute system's document,
//! and the WCOW process parameters and signals the task layer sends.

use std::sync::Arc;

use hcs::fake::{FakeHcs, Injection};
use hcs::fake_vmcompute::FakeVmcompute;
use hcs::HResult;

use super::*;
use crate::events::{Publisher, RecordingSink};
use crate::rootfs::Rootfs;
use crate::stdio::IoPaths;
use crate::task::{Task, TaskSpec};

const SCRATCH: &str = r"C:\snapshots\3";
const PARENTS: [&str; 2] = [r"C:\snapshots\2", r"C:\snapshots\1"];

fn fakes() -> (Arc<FakeHcs>, Arc<FakeVmcompute>, ProcessIsolatedHost) {
    let hcs = FakeHcs::new();
    let vmcompute = FakeVmcompute::new();
    vmcompute.add_layer(SCRATCH);
    let host = ProcessIsolatedHost::new(hcs.clone(), vmcompute.clone(), "shim-test");
    (hcs, vmcompute, host)
}

fn layers() -> TaskRootfs {
    TaskRootfs::Windows(WcowLayers {
        parents: PARENTS.iter().map(|p| p.to_string()).collect(),
        scratch: SCRATCH.into(),
    })
}

fn spec() -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.1.0",
        "hostname": "wcow",
        "process": {"args": ["cmd", "/c", "echo hi"], "cwd": "C:\\"},
        "windows": {"layerFolders": []}
    })
}

/// The error of a create that must fail.
async fn create_err(host: &ProcessIsolatedHost, id: &str, rootfs: &TaskRootfs) -> Error {
    match host
        .create_container(id, spec(), rootfs, Path::new("/b"))
        .await
    {
        Ok(_) => panic!("create of {id} succeeded"),
        Err(e) => e,
    }
}

fn exports(vmcompute: &FakeVmcompute) -> Vec<(&'static str, String)> {
    vmcompute
        .calls()
        .into_iter()
        .map(|c| (c.export, c.arg))
        .collect()
}

#[tokio::test]
async fn a_container_mounts_its_layers_and_gets_a_compute_system_over_the_volume() {
    let (hcs, vmcompute, host) = fakes();
    let c = host
        .create_container("c1", spec(), &layers(), Path::new("/b"))
        .await
        .unwrap();
    assert_eq!(c.id(), "c1");
    let calls = exports(&vmcompute);
    let names: Vec<&str> = calls.iter().map(|(e, _)| *e).collect();
    assert_eq!(
        names,
        [
            // The document's layer ids, then PrepareLayer's own descriptors (the reference
            // asks vmcompute for both too).
            "NameToGuid",
            "NameToGuid",
            "ActivateLayer",
            "NameToGuid",
            "NameToGuid",
            "PrepareLayer",
            "GetLayerMountPath"
        ]
    );
    assert_eq!(
        calls[0].1, "2",
        "the GUID comes from the folder's base name"
    );
    assert_eq!(calls[2].1, SCRATCH);
    assert!(calls[5].1.starts_with(SCRATCH), "{:?}", calls[5]);

    let created = hcs.calls_of("HcsCreateComputeSystem");
    assert_eq!(created.len(), 1);
    let doc: serde_json::Value = serde_json::from_str(&created[0].arg).unwrap();
    assert_eq!(doc["Owner"], "shim-test");
    let storage = &doc["Container"]["Storage"];
    let volume = storage["Path"].as_str().unwrap();
    assert!(volume.starts_with(r"\\?\Volume{"), "{doc}");
    let paths: Vec<&str> = storage["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["Path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, PARENTS);

    host.remove_container("c1").await.unwrap();
    let tail: Vec<(&str, String)> = exports(&vmcompute).split_off(7);
    assert_eq!(
        tail,
        [
            ("UnprepareLayer", SCRATCH.to_string()),
            ("DeactivateLayer", SCRATCH.to_string())
        ]
    );
    assert_eq!(hcs.open_handles(), (0, 0, 0), "the system handle is closed");
    // Removing again is a no-op.
    host.remove_container("c1").await.unwrap();
    assert_eq!(exports(&vmcompute).len(), 9);
}

#[tokio::test]
async fn a_failed_create_unmounts_what_it_mounted() {
    let (hcs, vmcompute, host) = fakes();
    hcs.inject(
        "HcsCreateComputeSystem",
        Injection::CallFails {
            hr: HResult::HCS_E_INVALID_JSON.as_i32(),
            document: None,
        },
    );
    let err = create_err(&host, "c1", &layers()).await;
    assert!(err.to_string().contains("create container c1"), "{err}");
    let names: Vec<&str> = exports(&vmcompute).iter().map(|(e, _)| *e).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["UnprepareLayer", "DeactivateLayer"]
    );
    // Nothing is left to tear down.
    host.teardown().await.unwrap();
    assert_eq!(exports(&vmcompute).len(), names.len());
}

#[tokio::test]
async fn a_layer_that_cannot_be_activated_is_an_error_and_nothing_is_prepared() {
    let (_hcs, vmcompute, host) = fakes();
    let missing = TaskRootfs::Windows(WcowLayers {
        parents: vec![],
        scratch: r"C:\snapshots\missing".into(),
    });
    let err = create_err(&host, "c1", &missing).await;
    assert!(err.to_string().contains("activate layer"), "{err}");
    assert!(vmcompute.calls_of("PrepareLayer").is_empty());
}

#[tokio::test]
async fn a_failed_prepare_deactivates_the_scratch() {
    let (_hcs, vmcompute, host) = fakes();
    vmcompute.fail_next("PrepareLayer", HResult::HCS_E_INVALID_LAYER.as_i32());
    let err = create_err(&host, "c1", &layers()).await;
    assert!(err.to_string().contains("prepare layer"), "{err}");
    let names: Vec<&str> = exports(&vmcompute).iter().map(|(e, _)| *e).collect();
    assert_eq!(names.last(), Some(&"DeactivateLayer"));
    assert!(vmcompute.calls_of("GetLayerMountPath").is_empty());
}

#[tokio::test]
async fn a_linux_rootfs_or_a_duplicate_id_is_refused() {
    let (_hcs, _vmcompute, host) = fakes();
    let linux = TaskRootfs::Linux(Rootfs {
        layers: vec!["/l".into()],
        writable: None,
    });
    let err = create_err(&host, "c1", &linux).await;
    assert_eq!(
        err.code(),
        containerd_shim_protos::ttrpc::Code::FAILED_PRECONDITION
    );
    host.create_container("c1", spec(), &layers(), Path::new("/b"))
        .await
        .unwrap();
    let err = create_err(&host, "c1", &layers()).await;
    assert_eq!(
        err.code(),
        containerd_shim_protos::ttrpc::Code::ALREADY_EXISTS
    );
    host.teardown().await.unwrap();
}

#[tokio::test]
async fn teardown_stops_and_unmounts_every_container() {
    let (hcs, vmcompute, host) = fakes();
    vmcompute.add_layer(r"C:\snapshots\4");
    host.create_container("a", spec(), &layers(), Path::new("/b"))
        .await
        .unwrap();
    let other = TaskRootfs::Windows(WcowLayers {
        parents: vec![],
        scratch: r"C:\snapshots\4".into(),
    });
    let b = host
        .create_container("b", spec(), &other, Path::new("/b"))
        .await
        .unwrap();
    b.start().await.unwrap();
    host.teardown().await.unwrap();
    assert_eq!(vmcompute.calls_of("DeactivateLayer").len(), 2);
    assert_eq!(vmcompute.calls_of("UnprepareLayer").len(), 2);
    // A system that never started is terminated too: HCS holds it until then.
    assert_eq!(hcs.calls_of("HcsTerminateComputeSystem").len(), 2);
    assert_eq!(hcs.open_handles(), (0, 0, 0));
}

/// A standalone Windows task `id` (owning `host`) over the test layers.
async fn windows_task(host: ProcessIsolatedHost, id: &str, sink: Arc<RecordingSink>) -> Arc<Task> {
    Task::create(
        Arc::new(host),
        true,
        Publisher::new("ns", sink),
        TaskSpec {
            id: id.into(),
            bundle: "/b".into(),
            spec: spec(),
            rootfs: layers(),
            io: IoPaths::default(),
        },
    )
    .await
    .unwrap()
}

/// A Windows task end to end over the simulators: the init is an HCS process made from the
/// spec's process, signals become console events or a terminate, and its exit is the
/// task's.
#[tokio::test]
async fn a_windows_task_runs_its_init_from_the_spec_and_maps_signals() {
    let (hcs, vmcompute, host) = fakes();
    let sink = Arc::new(RecordingSink::default());
    let task = windows_task(host, "w1", sink.clone()).await;
    let pid = task.start("").await.unwrap();
    let created = hcs.calls_of("HcsCreateProcess");
    assert_eq!(created.len(), 1);
    let params: serde_json::Value = serde_json::from_str(&created[0].arg).unwrap();
    assert_eq!(params["CommandLine"], r#"cmd /c "echo hi""#, "{params}");
    assert!(params.get("OciProcess").is_none(), "{params}");

    // SIGTERM is CtrlShutdown, sent in the background; an unknown signal is refused.
    task.kill("", 15, false).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while hcs.calls_of("HcsSignalProcess").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no signal sent");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        hcs.calls_of("HcsSignalProcess")[0]
            .arg
            .contains("CtrlShutdown"),
        "{:?}",
        hcs.calls_of("HcsSignalProcess")
    );
    let err = task.kill("", 3, false).await.unwrap_err();
    assert_eq!(
        err.code(),
        containerd_shim_protos::ttrpc::Code::FAILED_PRECONDITION
    );

    // The init in HCS's process list is the task's.
    let pids = task.pids().await.unwrap();
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert_eq!((pids[0].pid, pids[0].exec_id.as_str()), (pid, "w1"));

    // Stats in the type containerd's Windows CRI decodes; an update reaches HCS as a
    // modify of the silo's memory.
    let stats = task.stats().await.unwrap();
    assert!(
        stats
            .type_url
            .ends_with("containerd.runhcs.stats.v1.Statistics"),
        "{}",
        stats.type_url
    );
    task.update(
        crate::task::Resources::Windows(serde_json::json!({"memory": {"limit": 512u64 << 20}})),
        None,
    )
    .await
    .unwrap();
    let modified = hcs.calls_of("HcsModifyComputeSystem");
    assert_eq!(modified.len(), 1);
    assert!(
        modified[0].arg.contains("Container/Memory/SizeInMB") && modified[0].arg.contains("512"),
        "{modified:?}"
    );
    let err = task
        .update(crate::task::Resources::Linux(serde_json::json!({})), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        containerd_shim_protos::ttrpc::Code::INVALID_ARGUMENT
    );

    hcs.exit_process("w1", pid, 7);
    let exit = tokio::time::timeout(std::time::Duration::from_secs(10), task.wait(""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.status, 7);
    assert_eq!(
        sink.topics(),
        ["/tasks/start", "/tasks/exit"],
        "TaskCreate is the service's to publish"
    );
    // The teardown unmounted the layers and closed every handle.
    assert_eq!(vmcompute.calls_of("DeactivateLayer").len(), 1);
    assert_eq!(hcs.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn sigkill_terminates_a_windows_process() {
    let (hcs, _vmcompute, host) = fakes();
    let task = windows_task(host, "w2", Arc::new(RecordingSink::default())).await;
    task.start("").await.unwrap();
    task.kill("", 9, false).await.unwrap();
    assert_eq!(hcs.calls_of("HcsTerminateProcess").len(), 1);
    assert!(hcs.calls_of("HcsSignalProcess").is_empty());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(10), task.wait(""))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(exit.status, 0);
}

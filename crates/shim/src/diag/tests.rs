#[cfg(unix)]
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::events::RecordingSink;
use crate::task::tests::new_task;

#[cfg(unix)]
/// Runs the generator into `out`: messages (rust-protobuf) and async ttrpc services.
fn generate(out: &Path) {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    ttrpc_codegen::Codegen::new()
        .include(&proto)
        .inputs([
            proto.join("shimdiag.proto"),
            proto.join("extendedtask.proto"),
        ])
        .rust_protobuf()
        .customize(ttrpc_codegen::Customize {
            async_all: true,
            ..Default::default()
        })
        .out_dir(out)
        .run()
        .expect("ttrpc codegen");
}

/// The checked-in generated code matches the `.proto` files (run where the tree is built,
/// not in the Windows test binaries run elsewhere).
#[cfg(unix)]
#[test]
fn generated_code_is_current() {
    crate::codegen_check::assert_generated_current(
        "diag",
        &[
            "shimdiag.rs",
            "shimdiag_ttrpc.rs",
            "extendedtask.rs",
            "extendedtask_ttrpc.rs",
        ],
        generate,
    );
}

#[tokio::test]
async fn exec_in_host_runs_the_args_outside_the_containers_and_returns_the_exit() {
    let (task, host) = new_task(Arc::new(RecordingSink::default())).await;
    let req = ExecProcessRequest {
        args: vec!["ps".into(), "-ef".into()],
        ..Default::default()
    };
    let host_dyn = task.host().clone();
    let run = tokio::spawn(async move { exec_in_host(host_dyn.as_ref(), &req).await });
    let p = loop {
        if let Some((params, p)) = host.host_execs.lock().unwrap().first().cloned() {
            assert_eq!(params["CommandArgs"], serde_json::json!(["ps", "-ef"]));
            assert_eq!(params["CreateInUtilityVM"], true);
            assert_eq!(params["WorkingDirectory"], "/");
            assert!(params.get("CreateStdOutPipe").is_none(), "{params}");
            break p;
        }
        tokio::task::yield_now().await;
    };
    p.exit_with(3);
    assert_eq!(run.await.unwrap().unwrap(), 3);

    let empty = ExecProcessRequest::default();
    let e = exec_in_host(task.host().as_ref(), &empty)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[tokio::test]
async fn tasks_list_execs_with_states_and_the_init_under_the_task_id() {
    let (task, _host) = new_task(Arc::new(RecordingSink::default())).await;
    let r = tasks(std::slice::from_ref(&task), false).await;
    assert_eq!(r.tasks.len(), 1);
    assert_eq!(r.tasks[0].id, "t");
    assert!(r.tasks[0].execs.is_empty());
    task.start("").await.unwrap();
    task.create_exec(
        "e1",
        &crate::stdio::IoPaths::default(),
        serde_json::json!({"args": ["sh"]}),
    )
    .await
    .unwrap();
    let r = tasks(std::slice::from_ref(&task), true).await;
    let execs: Vec<(String, String)> = r.tasks[0]
        .execs
        .iter()
        .map(|e| (e.id.clone(), e.state.clone()))
        .collect();
    assert_eq!(
        execs,
        [
            ("t".to_string(), "running".to_string()),
            ("e1".to_string(), "created".to_string())
        ]
    );
}

#[tokio::test]
async fn processor_info_is_the_vms_and_stacks_name_the_shim() {
    let (task, _host) = new_task(Arc::new(RecordingSink::default())).await;
    assert_eq!(processor_info(&task).unwrap(), 3);
    let s = host_stacks();
    assert!(
        s.starts_with(&format!(
            "containerd-shim-runhcs-v1 pid {}",
            std::process::id()
        )),
        "{s}"
    );
    if cfg!(target_os = "linux") {
        assert!(s.contains("\nthread "), "{s}");
    }
}

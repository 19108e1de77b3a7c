//! critest's security context, seccomp, container log, container status and OOM specs that the
//! shim's path could break (the host's spec preparation and the guest's spec rewrite sit
//! between containerd and runc; the exit status and the container's output come back through
//! the shim), run in a pod the caller made.

use std::path::Path;

use super::*;

fn out(r: &ExecSyncResponse) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_owned()
}

/// Waits for `path` to hold `needle`; returns the text.
async fn wait_for_log(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not in log {}: {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for container `id` to exit; returns its status.
async fn exited(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = super::container_status(rt, id).await;
        if st.state == ContainerState::ContainerExited as i32 {
            return st;
        }
        assert!(Instant::now() < deadline, "{id} did not exit: {st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the checks in `pod` (whose log directory is `logs`), removing the containers made.
pub async fn security_logs_and_status(
    rt: &mut RuntimeServiceClient<Channel>,
    c: &Containerd,
    pod: &str,
    sandbox_config: &PodSandboxConfig,
    logs: &Path,
) {
    // A seccomp profile of the node's (critest's "localhost/" profile blocks chmod, which
    // would fail for this non-root user anyway; uname(2) would not).
    let profile = c.dir.join("block-uname.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let mut s1 = container_config("s1", "while true; do echo tick; sleep 0.2; done");
    s1.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 1001 }),
            run_as_group: Some(Int64Value { value: 2002 }),
            supplemental_groups: vec![1234, 5678],
            no_new_privs: true,
            readonly_paths: vec!["/tmp".into()],
            masked_paths: vec!["/etc/hostname".into()],
            seccomp: Some(SecurityProfile {
                profile_type: security_profile::ProfileType::Localhost as i32,
                localhost_ref: profile.display().to_string(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let s1 = run_container(rt, c, pod, sandbox_config, s1).await;
    // s2 exits by itself with a code of its own.
    let s2 = run_container(
        rt,
        c,
        pod,
        sandbox_config,
        container_config("s2", "echo bye; exit 3"),
    )
    .await;

    // s3 needs more memory than its limit (critest's "Container OOM").
    let mut s3 = container_config("s3", "dd if=/dev/zero of=/dev/null bs=20M");
    s3.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 15 << 20,
            memory_swap_limit_in_bytes: 15 << 20,
            ..Default::default()
        }),
        ..Default::default()
    });
    let s3 = run_container(rt, c, pod, sandbox_config, s3).await;

    // s4 asks for the runtime's default seccomp profile (critest's "RuntimeDefault").
    let mut s4 = container_config("s4", "while true; do sleep 1; done");
    s4.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            seccomp: Some(SecurityProfile {
                profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let s4 = run_container(rt, c, pod, sandbox_config, s4).await;
    let seccomp = out(&exec(rt, &s4, &["grep", "^Seccomp:", "/proc/self/status"]).await);
    assert_eq!(seccomp.split_whitespace().last(), Some("2"), "{seccomp:?}");

    // RunAsUser, RunAsGroup, SupplementalGroups, NoNewPrivs.
    assert_eq!(out(&exec(rt, &s1, &["id", "-u"]).await), "1001");
    assert_eq!(out(&exec(rt, &s1, &["id", "-g"]).await), "2002");
    let groups = out(&exec(rt, &s1, &["id", "-G"]).await);
    for g in ["1234", "5678"] {
        assert!(groups.split(' ').any(|x| x == g), "{g} not in {groups:?}");
    }
    let status = out(&exec(rt, &s1, &["cat", "/proc/self/status"]).await);
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    // A seccomp filter is on: the localhost profile.
    assert_eq!(field("Seccomp:"), "2", "{status}");
    // (Busybox's uname ignores the error and prints what its buffer held.)
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let uname = exec(rt, &s1, &["uname", "-r"]).await;
    assert_ne!(
        out(&uname),
        release.trim(),
        "uname(2) was not blocked: {uname:?}"
    );
    // ReadonlyPaths and MaskedPaths.
    let ro = exec(rt, &s1, &["sh", "-c", "touch /tmp/x 2>&1"]).await;
    assert!(out(&ro).contains("Read-only file system"), "{ro:?}");
    let masked = exec(rt, &s1, &["cat", "/etc/hostname"]).await;
    assert_eq!(
        (masked.exit_code, out(&masked)),
        (0, String::new()),
        "{masked:?}"
    );

    // The container's log, and ReopenContainerLog after the log was moved away (as a log
    // rotation does).
    let log = logs.join("s1.log");
    wait_for_log(&log, " stdout F tick").await;
    let rotated = logs.join("s1.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    rt.reopen_container_log(ReopenContainerLogRequest {
        container_id: s1.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("ReopenContainerLog: {e}\n{}", c.log_tail()));
    wait_for_log(&log, " stdout F tick").await;
    // ... and the moved-away log no longer grows.
    let before = std::fs::read(&rotated).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        std::fs::read(&rotated).unwrap(),
        before,
        "the old log still grows"
    );

    // Status of a container that exited by itself: code, reason, times, image; its output.
    let st = exited(rt, &s2).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (3, "Error"), "{st:?}");
    assert!(
        0 < st.created_at && st.created_at <= st.started_at && st.started_at <= st.finished_at,
        "{st:?}"
    );
    assert_eq!(st.image.as_ref().map(|i| i.image.as_str()), Some(IMAGE));
    wait_for_log(&logs.join("s2.log"), " stdout F bye").await;
    // The kernel killed s3 (SIGKILL: 137); the shim's /tasks/oom makes containerd say why.
    let st = exited(rt, &s3).await;
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (137, "OOMKilled"),
        "{st:?}"
    );

    for id in [&s1, &s2, &s3, &s4] {
        rt.stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 2,
        })
        .await
        .unwrap_or_else(|e| panic!("StopContainer: {e}\n{}", c.log_tail()));
        rt.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("RemoveContainer: {e}\n{}", c.log_tail()));
    }
}

//! Real containers over the bridge: create, start, exec, wait, signal, properties, shutdown,
//! delete; and that nothing is left behind. Runs as root with runc and busybox-static.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use bridge::messages::*;
use bridge::{AnyInString, MessageType};
use common::*;

/// Asserts that a deleted container left no mounts, cgroups, processes or state.
fn assert_clean(g: &Gcs, id: &str) {
    assert!(
        mounts_under(&g.bundle(id)).is_empty(),
        "leftover mounts: {:?}",
        mounts_under(&g.bundle(id))
    );
    assert!(
        cgroups_of(id).is_empty(),
        "leftover cgroups: {:?}",
        cgroups_of(id)
    );
    assert!(
        !g.bundle(id).join("config.json").exists(),
        "bundle not removed"
    );
    assert!(
        !g.sb.state_root.join("gcsrunc").join(id).exists(),
        "state not removed"
    );
    assert!(!g.sb.runc_root.join(id).exists(), "runc state not removed");
}

fn delete(g: &Gcs, id: &str) {
    let r = g.simple(MessageType::DeleteContainerState, id);
    assert_eq!(result_of(&r), 0, "delete: {}", body(&r));
    let r = g.remove_rootfs(id);
    assert_eq!(result_of(&r), 0, "remove rootfs: {}", body(&r));
}

/// Forces the container down while its init is waited on, then deletes it and checks that
/// nothing is left behind.
fn force_stop_and_delete(g: &Gcs, id: &str, init: u32) {
    let wait = g.wait_async(id, init, u32::MAX);
    assert_eq!(result_of(&g.simple(MessageType::ShutdownForced, id)), 0);
    wait_response(&wait);
    g.next_notification(TIMEOUT).expect("exit notification");
    delete(g, id);
    assert_clean(g, id);
}

/// Creates a container whose init (`sleep`) is running; returns its id and the init's pid.
fn running_sleeper(g: &Gcs) -> (String, u32) {
    let id = unique("c");
    g.add_rootfs(&id);
    assert_eq!(result_of(&g.create(&id, &["sleep", "100000"], false)), 0);
    let (r, _) = g.execute(&id, None, [false, false, false]);
    (id, pid_of(&r))
}

fn pid_of(f: &bridge::Frame) -> u32 {
    let r: ExecuteProcessResponse = f.decode().unwrap();
    assert_eq!(r.base.result.0, 0, "execute: {}", body(f));
    r.process_id
}

#[test]
fn init_process_output_exit_code_and_notification() {
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    let r = g.create(&id, &["sh", "-c", "echo out; echo err >&2; exit 3"], false);
    assert_eq!(result_of(&r), 0, "create: {}", body(&r));
    assert_eq!(
        body(&r),
        r#"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","SelectedProtocolVersion":0}"#
    );
    assert_eq!(result_of(&g.simple(MessageType::Start, &id)), 0);

    let (r, [_, out, err]) = g.execute(&id, None, [false, true, true]);
    let pid = pid_of(&r);
    let wait = g.wait_async(&id, pid, u32::MAX);
    let stdout = read_all(out.unwrap());
    let stderr = read_all(err.unwrap());
    let w: WaitForProcessResponse = wait_response(&wait).decode().unwrap();
    assert_eq!((w.base.result.0, w.exit_code), (0, 3));
    assert_eq!(stdout, b"out\n");
    assert_eq!(stderr, b"err\n");

    let n = g.next_notification(TIMEOUT).expect("exit notification");
    assert_eq!(n.base.container_id, id);
    assert_eq!(n.notification_type, NotificationType::UnexpectedExit);
    assert_eq!(n.operation, ActiveOperation::None);
    assert!(
        g.next_notification(Duration::from_millis(300)).is_none(),
        "one notification only"
    );

    // A second wait after the first completed may find the record gone; never hangs.
    delete(&g, &id);
    assert_clean(&g, &id);
    let r = g.simple(MessageType::DeleteContainerState, &id);
    assert_eq!(result_of(&r), hr(0xC037010E));
}

#[test]
fn the_wait_response_goes_out_before_the_exit_notification() {
    // Spec §10: when the init exits, the WaitForProcess response, then the Notification.
    let g = Gcs::negotiated();
    for _ in 0..3 {
        let id = unique("c");
        g.add_rootfs(&id);
        assert_eq!(result_of(&g.create(&id, &["true"], false)), 0);
        let (r, _) = g.execute(&id, None, [false, false, false]);
        let wait = g.wait_async(&id, pid_of(&r), u32::MAX);
        let w = wait_response(&wait);
        assert_eq!(result_of(&w), 0, "wait: {}", body(&w));
        g.next_notification(TIMEOUT).expect("exit notification");
        let response = g.arrival_index(w.header.message_type, w.header.id).unwrap();
        let notification = g
            .arrival_index(MessageType::ContainerNotification.as_u32(), 0)
            .unwrap();
        assert!(response < notification, "{response} !< {notification}");
        delete(&g, &id);
        assert_clean(&g, &id);
    }
}

#[test]
fn poststart_hooks_run_when_the_container_starts() {
    // Only `runc start` runs poststart hooks: a spec with one is started through runc, one
    // without is started by reading runc's exec FIFO (every other test).
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut spec = oci_spec(&g.bundle(&id), &["true"], false);
    spec["hooks"] = serde_json::json!({"poststart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", out.path().display())],
    }]});
    let r = g.create_spec(&id, spec);
    assert_eq!(result_of(&r), 0, "create: {}", body(&r));
    assert_eq!(result_of(&g.simple(MessageType::Start, &id)), 0);
    let (r, _) = g.execute(&id, None, [false, false, false]);
    let pid = pid_of(&r);
    let w: WaitForProcessResponse = wait_response(&g.wait_async(&id, pid, u32::MAX))
        .decode()
        .unwrap();
    assert_eq!((w.base.result.0, w.exit_code), (0, 0));
    // The hook got the container's state on its stdin, as the OCI runtime spec says.
    let state = std::fs::read_to_string(out.path()).unwrap();
    assert!(state.contains(&format!("\"id\":\"{id}\"")), "{state:?}");
    g.next_notification(TIMEOUT).expect("exit notification");
    delete(&g, &id);
    assert_clean(&g, &id);
}

#[test]
fn the_tee_log_gets_a_copy_of_the_init_output() {
    // Spec §4 step 6 and §6: the init's output also goes to a file under `logs/` of the
    // sandbox root (a standalone container's own bundle), which it may mount.
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    let script = "echo to-stdout; echo to-stderr >&2; ls /plogs";
    let mut spec = oci_spec(&g.bundle(&id), &["sh", "-c", script], false);
    spec["annotations"] = serde_json::json!({
        "io.microsoft.container.lcow.tee-log-path": "app/init.log",
        "io.microsoft.container.lcow.tee-log-dir-mount": "/plogs",
    });
    let r = g.create_spec(&id, spec);
    assert_eq!(result_of(&r), 0, "create: {}", body(&r));
    let (r, [_, out, err]) = g.execute(&id, None, [false, true, true]);
    let pid = pid_of(&r);
    let out = String::from_utf8(read_all(out.unwrap())).unwrap();
    let err = String::from_utf8(read_all(err.unwrap())).unwrap();
    assert_eq!(out, "to-stdout\napp\n");
    assert_eq!(err, "to-stderr\n");
    assert_eq!(g.wait(&id, pid), (0, 0));
    g.next_notification(TIMEOUT).expect("exit notification");
    let log = std::fs::read_to_string(g.bundle(&id).join("logs/app/init.log")).unwrap();
    for line in ["to-stdout\n", "to-stderr\n", "app\n"] {
        assert!(log.contains(line), "{log:?}");
    }
    assert_eq!(log.len(), out.len() + err.len(), "{log:?}");
    delete(&g, &id);
    assert_clean(&g, &id);
}

#[test]
fn exec_signal_process_list_and_forced_shutdown() {
    let g = Gcs::negotiated();
    let (id, init) = running_sleeper(&g);
    let init_wait = g.wait_async(&id, init, u32::MAX);

    // stdin echoed back by cat, then EOF after the host half-closes.
    let (r, [inp, out, _]) =
        g.execute(&id, Some(oci_process(&["cat"], false)), [true, true, false]);
    let cat = pid_of(&r);
    let mut inp = inp.unwrap();
    inp.write_all(b"hello through the relay\n").unwrap();
    inp.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_all(out.unwrap()), b"hello through the relay\n");
    assert_eq!(g.wait(&id, cat), (0, 0));
    // The record is gone once waited.
    assert_eq!(g.wait(&id, cat).0, hr(0x80070490));

    // A signalled exec: 128 + SIGTERM.
    let (r, _) = g.execute(
        &id,
        Some(oci_process(&["sleep", "100000"], false)),
        [false, false, false],
    );
    let sleeper = pid_of(&r);
    let q = GetPropertiesRequest {
        base: RequestBase::new(&id),
        query: AnyInString(PropertyQuery {
            property_types: vec![PropertyType::ProcessList, PropertyType::Statistics],
        }),
    };
    let props: GetPropertiesResponse = g.request(MessageType::GetProperties, &q).decode().unwrap();
    assert_eq!(props.base.result.0, 0);
    let pids: Vec<u32> = props
        .properties
        .process_list
        .iter()
        .map(|p| p.process_id)
        .collect();
    assert!(
        pids.contains(&init) && pids.contains(&sleeper),
        "{pids:?} lacks {init}/{sleeper}"
    );
    let metrics = props.properties.lcow_metrics.clone().expect("Statistics");
    assert!(
        metrics["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{metrics}"
    );
    assert!(
        metrics["pids"]["current"].as_u64().unwrap() >= 2,
        "{metrics}"
    );
    // No OOM kill: 0, which the reference's omitempty JSON leaves out.
    assert!(metrics["memory_oom_control"].is_object(), "{metrics}");
    assert_eq!(
        metrics["memory_oom_control"].get("oom_kill"),
        None,
        "{metrics}"
    );

    assert_eq!(result_of(&g.signal(&id, sleeper, Some(15))), 0);
    assert_eq!(g.wait(&id, sleeper), (0, 143));
    // Unknown pid.
    assert_eq!(result_of(&g.signal(&id, 999_999, Some(15))), hr(0x80070490));

    // ShutdownForced: the init dies of SIGKILL, the notification says ForcedExit.
    assert_eq!(result_of(&g.simple(MessageType::ShutdownForced, &id)), 0);
    let w: WaitForProcessResponse = wait_response(&init_wait).decode().unwrap();
    assert_eq!((w.base.result.0, w.exit_code), (0, 137));
    let n = g.next_notification(TIMEOUT).expect("exit notification");
    assert_eq!(n.notification_type, NotificationType::ForcedExit);
    delete(&g, &id);
    assert_clean(&g, &id);
    // Only gcs itself mentions the sandbox dir; the container's processes are gone.
    assert_eq!(
        processes_with(&g.sb.dir.to_string_lossy()),
        vec![g.pid().unwrap()]
    );
    for p in [init, cat, sleeper] {
        assert!(
            !std::path::Path::new(&format!("/proc/{p}")).exists(),
            "pid {p} left"
        );
    }
}

#[test]
fn kill_without_options_is_sigkill_and_wait_times_out() {
    let g = Gcs::negotiated();
    let (id, init) = running_sleeper(&g);
    let f = wait_response(&g.wait_async(&id, init, 50));
    assert_eq!(result_of(&f), hr(0xC0370109), "{}", body(&f));
    let wait = g.wait_async(&id, init, u32::MAX);
    assert_eq!(result_of(&g.signal(&id, init, None)), 0);
    let w: WaitForProcessResponse = wait_response(&wait).decode().unwrap();
    assert_eq!(w.exit_code, 137);
    let n = g.next_notification(TIMEOUT).expect("exit notification");
    assert_eq!(n.notification_type, NotificationType::ForcedExit);
    delete(&g, &id);
    assert_clean(&g, &id);
}

#[test]
fn large_output_and_closed_stdin() {
    let g = Gcs::negotiated();
    let (id, init) = running_sleeper(&g);

    let size = 3 * 1024 * 1024 + 17;
    let cmd = format!("head -c {size} /dev/zero | tr '\\000' x");
    let (r, [_, out, _]) = g.execute(
        &id,
        Some(oci_process(&["sh", "-c", &cmd], false)),
        [false, true, false],
    );
    let p = pid_of(&r);
    let data = read_all(out.unwrap());
    assert_eq!(data.len(), size);
    assert!(data.iter().all(|b| *b == b'x'));
    assert_eq!(g.wait(&id, p), (0, 0));

    // stdin connected but closed at once: cat sees EOF.
    let (r, [inp, out, _]) =
        g.execute(&id, Some(oci_process(&["cat"], false)), [true, true, false]);
    let p = pid_of(&r);
    drop(inp);
    assert_eq!(read_all(out.unwrap()), b"");
    assert_eq!(g.wait(&id, p), (0, 0));

    // No stdin at all: cat reads /dev/null.
    let (r, [_, out, _]) = g.execute(
        &id,
        Some(oci_process(&["cat"], false)),
        [false, true, false],
    );
    let p = pid_of(&r);
    assert_eq!(read_all(out.unwrap()), b"");
    assert_eq!(g.wait(&id, p), (0, 0));

    force_stop_and_delete(&g, &id, init);
}

#[test]
fn tty_process_with_resize() {
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    // A tty init process too.
    assert_eq!(
        result_of(&g.create(
            &id,
            &[
                "sh",
                "-c",
                "test -t 0 && test -t 1 && echo is-a-tty; exit 4"
            ],
            true
        )),
        0
    );
    let (r, [_, out, _]) = g.execute(&id, None, [false, true, false]);
    let init = pid_of(&r);
    let text = String::from_utf8_lossy(&read_all(out.unwrap())).into_owned();
    assert_eq!(text, "is-a-tty\r\n", "tty init output");
    assert_eq!(g.wait(&id, init), (0, 4));
    g.next_notification(TIMEOUT).expect("exit notification");
    delete(&g, &id);

    let (id, init) = running_sleeper(&g);
    let (r, [inp, out, _]) = g.execute(&id, Some(oci_process(&["sh"], true)), [true, true, false]);
    let sh = pid_of(&r);
    let rs = ResizeConsoleRequest {
        base: RequestBase::new(&id),
        process_id: sh,
        height: 40,
        width: 120,
    };
    assert_eq!(result_of(&g.request(MessageType::ResizeConsole, &rs)), 0);
    // Resize of a process without a tty is an error.
    let rs2 = ResizeConsoleRequest {
        process_id: init,
        ..rs.clone()
    };
    assert_ne!(result_of(&g.request(MessageType::ResizeConsole, &rs2)), 0);
    let mut inp = inp.unwrap();
    inp.write_all(b"stty size; exit 5\n").unwrap();
    let mut out = out.unwrap();
    out.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut text = Vec::new();
    let _ = out.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("40 120"), "tty output {text:?}");
    assert_eq!(g.wait(&id, sh), (0, 5));

    force_stop_and_delete(&g, &id, init);
}

#[test]
fn external_process_in_the_utility_vm() {
    let g = Gcs::negotiated();
    let (r, [_, out, _]) = g.execute_params(NULL_CONTAINER_ID, None, [false, true, false], |p| {
        p.command_args = vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo ext $GREETING; exit 7".into(),
        ];
        p.environment.insert("GREETING".into(), "hi".into());
    });
    let pid = pid_of(&r);
    assert_eq!(read_all(out.unwrap()), b"ext hi\n");
    assert_eq!(g.wait(NULL_CONTAINER_ID, pid), (0, 7));

    let (r, _) = g.execute_params(NULL_CONTAINER_ID, None, [false, false, false], |p| {
        p.command_line = "/bin/sh -c 'kill -9 $$'".into();
    });
    let pid = pid_of(&r);
    // Go's ExitCode() of a signalled process: -1.
    assert_eq!(g.wait(NULL_CONTAINER_ID, pid), (0, u32::MAX));
    // EmulateConsole: a pty as the controlling terminal, stdin and stdout relayed.
    let (r, [inp, out, _]) = g.execute_params(NULL_CONTAINER_ID, None, [true, true, false], |p| {
        p.emulate_console = true;
        p.command_args = vec![
            "/bin/sh".into(),
            "-c".into(),
            "read x; tty; echo got $x; exit 2".into(),
        ];
    });
    let pid = pid_of(&r);
    let mut inp = inp.unwrap();
    inp.write_all(b"ping\n").unwrap();
    let text = String::from_utf8_lossy(&read_all(out.unwrap())).into_owned();
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("got ping"), "{text:?}");
    assert_eq!(g.wait(NULL_CONTAINER_ID, pid), (0, 2));
    // Signal and resize are container-only.
    assert_eq!(
        result_of(&g.signal(NULL_CONTAINER_ID, pid, Some(9))),
        hr(0xC037010E)
    );
}

#[test]
fn shutdown_of_the_utility_vm_ends_gcs_and_its_containers() {
    let mut g = Gcs::negotiated();
    let (id, init) = running_sleeper(&g);
    assert!(std::path::Path::new(&format!("/proc/{init}")).exists());
    let _ = g.send(MessageType::ShutdownGraceful, &RequestBase::null());
    let st = g.wait_exit(TIMEOUT).expect("gcs exits after the shutdown");
    assert!(st.success(), "{st:?}");
    assert_clean(&g, &id);
    assert!(
        mounts_under(&g.sb.dir).is_empty(),
        "{:?}",
        mounts_under(&g.sb.dir)
    );
}

#[test]
fn init_output_is_redialed_after_the_host_drops_it() {
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    let script = "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); sleep 0.01; done";
    assert_eq!(result_of(&g.create(&id, &["sh", "-c", script], false)), 0);
    let (r, [_, out, _]) = g.execute(&id, None, [false, true, false]);
    let init = pid_of(&r);
    let port = g.last_port();
    let wait = g.wait_async(&id, init, u32::MAX);
    let mut out = out.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("line3\n") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "output ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    // The host side goes away; the guest re-dials the same port and replays recent output.
    let listener = g.relisten(port);
    drop(out);
    let again = accept_timeout(&listener, TIMEOUT).expect("the guest re-dials stdout");
    let text = String::from_utf8_lossy(&read_all(again)).into_owned();
    assert!(text.contains("line299\n"), "{text:?}");
    let w: WaitForProcessResponse = wait_response(&wait).decode().unwrap();
    assert_eq!(w.exit_code, 0);
    g.next_notification(TIMEOUT).expect("exit notification");
    delete(&g, &id);
    assert_clean(&g, &id);
}

#[test]
fn sandbox_and_workload_share_hostname_files_and_pod_cgroup() {
    let g = Gcs::negotiated();
    let sb = unique("sb");
    let w = unique("w");
    g.add_rootfs(&sb);
    g.add_rootfs(&w);
    let mut spec = oci_spec(&g.bundle(&sb), &["sleep", "100000"], false);
    spec["hostname"] = "podhost".into();
    // A CRI sandbox needs a network namespace the GCS knows (a Network Add), as in the
    // reference: without one it fails as not found, leaving no container behind...
    spec["annotations"] = serde_json::json!({"io.kubernetes.cri.container-type": "sandbox"});
    let r = g.create_spec(&sb, spec.clone());
    assert_eq!(result_of(&r), hr(0x80070490), "{}", body(&r));
    assert!(body(&r).contains("namespace '' not found"), "{}", body(&r));
    // (The rootfs the host added stays, as for any failed create.)
    assert!(cgroups_of(&sb).is_empty(), "{:?}", cgroups_of(&sb));
    assert!(!g.bundle(&sb).join("config.json").exists());
    assert!(!g.sb.runc_root.join(&sb).exists(), "runc state not removed");
    // ... unless it asks to go without pod networking.
    spec["annotations"]["io.microsoft.cri.skip-pod-networking"] = "True".into();
    let r = g.create_spec(&sb, spec);
    assert_eq!(result_of(&r), 0, "{}", body(&r));
    let (r, _) = g.execute(&sb, None, [false, false, false]);
    let sb_init = pid_of(&r);

    let mut spec = oci_spec(
        &g.bundle(&w),
        &["cat", "/etc/hostname", "/etc/hosts", "/proc/self/mounts"],
        false,
    );
    spec.as_object_mut().unwrap().remove("hostname");
    // A hugetlbfs of 2 MiB pages, made in the sandbox's `hugepages/` (spec §4 step 4).
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "destination": "/hp", "type": "bind", "source": "hugepages://2M/hp",
            "options": ["rbind", "rw"]
        }));
    spec["annotations"] = serde_json::json!({
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.sandbox-id": sb,
    });
    let r = g.create_spec(&w, spec.clone());
    assert_eq!(result_of(&r), 0, "{}", body(&r));
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.bundle(&w).join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["linux"]["cgroupsPath"], format!("/pods/{sb}/{w}"));
    assert_eq!(cfg["windows"], serde_json::Value::Null);
    let (r, [_, out, _]) = g.execute(&w, None, [false, true, false]);
    let wpid = pid_of(&r);
    let text = String::from_utf8_lossy(&read_all(out.unwrap())).into_owned();
    assert!(text.starts_with("podhost\n"), "{text:?}");
    assert!(text.contains("127.0.0.1 localhost"), "{text:?}");
    assert!(text.contains(" /hp hugetlbfs "), "{text:?}");
    assert!(text.contains("pagesize=2M"), "{text:?}");
    let hp = g.bundle(&sb).join("hugepages");
    assert_eq!(mounts_under(&hp), [hp.join("2M/hp")]);
    assert_eq!(g.wait(&w, wpid), (0, 0));
    g.next_notification(TIMEOUT).expect("workload exit");

    // A workload may not set its own hostname.
    let mut bad = spec;
    bad["hostname"] = "nope".into();
    let other = unique("w");
    g.add_rootfs(&other);
    assert_ne!(result_of(&g.create_spec(&other, bad)), 0);
    assert_eq!(result_of(&g.remove_rootfs(&other)), 0);

    delete(&g, &w);
    assert_clean(&g, &w);
    let wait = g.wait_async(&sb, sb_init, u32::MAX);
    assert_eq!(result_of(&g.simple(MessageType::ShutdownForced, &sb)), 0);
    wait_response(&wait);
    g.next_notification(TIMEOUT).expect("sandbox exit");
    delete(&g, &sb);
    assert_clean(&g, &sb);
}

#[test]
fn modify_settings_errors_and_constraints() {
    let g = Gcs::negotiated();
    let (id, init) = running_sleeper(&g);

    // ContainerConstraints: runc update of the container's memory limit.
    let req = ModifySettingsRequest {
        base: RequestBase::new(&id),
        request: ModifySettingRequest::new(
            ModifyRequestType::Update,
            ResourceSettings::ContainerConstraints(ContainerConstraints {
                windows: serde_json::json!({}),
                linux: serde_json::json!({"memory": {"limit": 268435456}}),
            }),
        ),
    };
    let r = g.request(MessageType::ModifySettings, &req);
    assert_eq!(result_of(&r), 0, "{}", body(&r));
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/pods/{id}/memory.limit_in_bytes"
    ))
    .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/pods/{id}/memory.max")))
    .unwrap();
    assert_eq!(limit.trim(), "268435456");

    // Anything else on a container id is refused.
    let req = ModifySettingsRequest {
        base: RequestBase::new(&id),
        request: ModifySettingRequest::new(
            ModifyRequestType::Remove,
            ResourceSettings::ScsiDevice(ScsiDevice {
                controller: 0,
                lun: 1,
            }),
        ),
    };
    let r = g.request(MessageType::ModifySettings, &req);
    assert_eq!(result_of(&r), hr(0x80004005));
    assert!(
        body(&r).contains("not supported for containers"),
        "{}",
        body(&r)
    );

    // Null-container resources that cannot exist here fail clearly, without hanging.
    for settings in [
        ResourceSettings::VPMemDevice(VPMemDevice {
            device_number: 77,
            mount_path: g.sb.dir.join("pmem").to_string_lossy().into(),
            mapping_info: None,
        }),
        ResourceSettings::MappedVirtualDisk(MappedVirtualDisk {
            mount_path: g.sb.dir.join("disk").to_string_lossy().into(),
            controller: 9,
            ..Default::default()
        }),
        ResourceSettings::SecurityPolicy(SecurityPolicy::default()),
    ] {
        let req = ModifySettingsRequest {
            base: RequestBase::null(),
            request: ModifySettingRequest::new(ModifyRequestType::Add, settings),
        };
        let r = g.request(MessageType::ModifySettings, &req);
        assert_ne!(result_of(&r), 0, "{}", body(&r));
    }
    assert!(
        !g.sb.dir.join("pmem").exists(),
        "failed mount leaves no directory"
    );
    // A read-only overlay (no scratch; overlayfs then needs two lower layers).
    let ro = g.sb.dir.join("ro-root");
    let top = g.sb.dir.join("top-layer");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/motd"), "top\n").unwrap();
    let req = ModifySettingsRequest {
        base: RequestBase::null(),
        request: ModifySettingRequest::new(
            ModifyRequestType::Add,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_root_path: ro.to_string_lossy().into(),
                layers: vec![
                    Layer {
                        path: top.to_string_lossy().into(),
                        ..Default::default()
                    },
                    Layer {
                        path: g.sb.base_rootfs.to_string_lossy().into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        ),
    };
    assert_eq!(result_of(&g.request(MessageType::ModifySettings, &req)), 0);
    assert!(ro.join("bin/busybox").exists());
    assert_eq!(
        std::fs::read_to_string(ro.join("etc/motd")).unwrap(),
        "top\n"
    );
    assert!(
        std::fs::write(ro.join("x"), "1").is_err(),
        "read-only overlay"
    );
    let req = ModifySettingsRequest {
        base: RequestBase::null(),
        request: ModifySettingRequest::new(
            ModifyRequestType::Remove,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_root_path: ro.to_string_lossy().into(),
                ..Default::default()
            }),
        ),
    };
    assert_eq!(result_of(&g.request(MessageType::ModifySettings, &req)), 0);
    assert!(!ro.exists());

    force_stop_and_delete(&g, &id, init);
}

#[test]
fn sigterm_ends_gcs_and_its_containers() {
    let mut g = Gcs::negotiated();
    let (id, init) = running_sleeper(&g);
    // SAFETY: signalling the gcs child this test started.
    unsafe { libc::kill(g.pid().unwrap() as i32, libc::SIGTERM) };
    let st = g.wait_exit(TIMEOUT).expect("gcs exits on SIGTERM");
    assert!(st.success(), "{st:?}");
    assert_clean(&g, &id);
    assert!(
        mounts_under(&g.sb.dir).is_empty(),
        "{:?}",
        mounts_under(&g.sb.dir)
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{init}/cmdline")).exists()
            || std::fs::read(format!("/proc/{init}/cmdline"))
                .unwrap()
                .is_empty()
    );
}

#[test]
fn scratch_outside_the_bundle_is_bound_onto_it() {
    let g = Gcs::negotiated();
    let id = unique("c");
    // The bind hides whatever is under the bundle: put the rootfs elsewhere.
    let root = g.sb.dir.join("roots").join(&id);
    let req = ModifySettingsRequest {
        base: RequestBase::null(),
        request: ModifySettingRequest::new(
            ModifyRequestType::Add,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_root_path: root.to_string_lossy().into(),
                layers: vec![Layer {
                    path: g.sb.base_rootfs.to_string_lossy().into(),
                    ..Default::default()
                }],
                scratch_path: g.sb.dir.join("rw").join(&id).to_string_lossy().into(),
                ..Default::default()
            }),
        ),
    };
    assert_eq!(result_of(&g.request(MessageType::ModifySettings, &req)), 0);
    let scratch = g.sb.dir.join("shared-scratch").join(&id);
    let mut spec = oci_spec(&g.bundle(&id), &["sh", "-c", "exit 0"], false);
    spec["root"]["path"] = root.to_string_lossy().into();
    let r = g.create_full(&id, spec, &scratch);
    assert_eq!(result_of(&r), 0, "{}", body(&r));
    assert!(
        scratch.join("bundle/config.json").exists(),
        "bundle is on the scratch"
    );
    let (r, _) = g.execute(&id, None, [false, false, false]);
    let init = pid_of(&r);
    assert_eq!(g.wait(&id, init), (0, 0));
    g.next_notification(TIMEOUT).expect("exit");
    assert_eq!(
        result_of(&g.simple(MessageType::DeleteContainerState, &id)),
        0
    );
    assert!(!scratch.exists(), "scratch removed");
    assert!(
        mounts_under(&g.bundle(&id)).is_empty(),
        "bundle bind undone"
    );
    let req = ModifySettingsRequest {
        base: RequestBase::null(),
        request: ModifySettingRequest::new(
            ModifyRequestType::Remove,
            ResourceSettings::CombinedLayers(CombinedLayers {
                container_root_path: root.to_string_lossy().into(),
                ..Default::default()
            }),
        ),
    };
    assert_eq!(result_of(&g.request(MessageType::ModifySettings, &req)), 0);
    assert_clean(&g, &id);
}

#[test]
fn failed_create_rolls_back_and_duplicates_are_refused() {
    let g = Gcs::negotiated();
    let id = unique("c");
    // No rootfs yet: runc create fails with its own message, nothing is left registered.
    let r = g.create(&id, &["true"], false);
    assert_eq!(result_of(&r), hr(0x80004005));
    assert!(body(&r).contains("rootfs"), "{}", body(&r));
    assert!(!g.sb.state_root.join("gcsrunc").join(&id).exists());
    assert_eq!(
        result_of(&g.simple(MessageType::DeleteContainerState, &id)),
        hr(0xC037010E)
    );
    // Invalid ids never reach runc or the file system (E_FAIL, as the reference's check).
    let r = g.create("../escape", &["true"], false);
    assert_eq!(result_of(&r), hr(0x80004005), "{}", body(&r));

    g.add_rootfs(&id);
    assert_eq!(result_of(&g.create(&id, &["true"], false)), 0);
    assert_eq!(result_of(&g.create(&id, &["true"], false)), hr(0xC037010F));
    // A process that cannot be started: runc refuses at create, with its reason.
    let other = unique("c");
    g.add_rootfs(&other);
    let r = g.create(&other, &["/no/such/binary"], false);
    assert_eq!(result_of(&r), hr(0x80004005));
    assert!(body(&r).contains("/no/such/binary"), "{}", body(&r));
    // What the failed create wrote in the bundle is gone; the host's rootfs stays.
    assert!(!g.bundle(&other).join("config.json").exists());
    assert_eq!(
        mounts_under(&g.bundle(&other)),
        [g.bundle(&other).join("rootfs")]
    );

    for c in [&id, &other] {
        let _ = g.simple(MessageType::ShutdownForced, c);
        // The init never ran or is killed; deleting cleans up either way.
        let _ = g.simple(MessageType::DeleteContainerState, c);
        let r = g.remove_rootfs(c);
        assert_eq!(result_of(&r), 0, "{}", body(&r));
        assert!(mounts_under(&g.bundle(c)).is_empty());
        assert!(!g.sb.state_root.join("gcsrunc").join(c).exists());
    }
}

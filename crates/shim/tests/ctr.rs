//! The shim run by a real containerd (Debian's 1.6), driven with `ctr`: run, exec with and
//! without a terminal, kill, ps, metrics, delete, the snapshot as the writable layer, a
//! containerd restart, a killed shim, and 100 create/delete cycles that must leave nothing;
//! one `ctr run` in the VM sandbox (one QEMU boot; needs the boot files of
//! scripts/build-bootfiles.sh). Root only.

#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::diag::{status, DiagClient};
use common::{Containerd, IMAGE, RUNTIME};

const NS: &str = "default";

/// A container id unique to this test process: cgroups (`pods/<id>`) are host-wide.
fn uid(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn task_status(c: &Containerd, id: &str) -> Option<String> {
    let out = c.ctr_ok(&["t", "ls"]);
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
}

fn run_detached(c: &Containerd, id: &str, script: &str) {
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        id,
        "sh",
        "-c",
        script,
    ]);
    wait_for("the task to run", Duration::from_secs(30), || {
        task_status(c, id).as_deref() == Some("RUNNING")
    });
}

/// Nothing of task `id` is left on the host: no sandbox dir, shim socket, agent or shim
/// process, cgroup.
fn assert_gone(c: &Containerd, id: &str) {
    let sb = c.sandbox_dir(NS, id);
    wait_for("the sandbox dir to go", Duration::from_secs(20), || {
        !sb.exists()
    });
    assert!(!c.shim_socket(NS, id).exists(), "shim socket of {id} left");
    let agents = common::processes_with_arg(sb.to_str().unwrap(), "gcs");
    assert!(agents.is_empty(), "gcs of {id} still runs: {agents:?}");
    // The agent's `pods/<id>`, or the cgroup containerd names (`/<namespace>/<id>`).
    for base in common::cgroup_bases() {
        for cg in [base.join("pods").join(id), base.join(NS).join(id)] {
            assert!(!cg.exists(), "cgroup {} left", cg.display());
        }
    }
}

#[test]
fn ctr_run_prints_the_output_and_keeps_the_exit_code() {
    let c = Containerd::start(false);
    c.import_images(NS);
    let id = uid("r1");
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        &id,
        "sh",
        "-c",
        "echo hello from runhcs; echo to-stderr >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", c.log_tail());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from runhcs\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("to-stderr"));
    assert_gone(&c, &id);
    assert!(c.ctr_ok(&["c", "ls", "-q"]).trim().is_empty());

    // `--privileged`: every capability and the host's devices, usable (runc's device
    // cgroup would deny them if the allow-all rule were lost on the way to the guest).
    let id = uid("priv1");
    let o = c.ctr(&[
        "run",
        "--rm",
        "--privileged",
        "--runtime",
        RUNTIME,
        IMAGE,
        &id,
        "sh",
        "-c",
        "grep CapEff /proc/self/status; head -c 4 /dev/zero | wc -c; test -c /dev/full && echo full",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("CapEff:\t000001ffffffffff") || out.contains("CapEff:\t000001fffeffffff"),
        "{out}"
    );
    assert!(out.contains("4\nfull\n"), "{out}");
    assert_gone(&c, &id);

    // `--log-uri binary://…`: the shim starts the logging driver (containerd's Linux
    // convention: stdout on fd 3, stderr on fd 4, fd 5 closed when ready) and the
    // container's output goes to it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let driver = d.join("driver");
    std::fs::write(
        &driver,
        format!(
            "#!/bin/sh\nexec 5>&-\necho \"$* $CONTAINER_ID $CONTAINER_NAMESPACE\" >{0}/args\ncat <&3 >{0}/out &\ncat <&4 >{0}/err\nwait\ntouch {0}/done\n",
            d.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&driver, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let id = uid("log1");
    let uri = format!("binary://{}?--tag=t1", driver.display());
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--log-uri",
        &uri,
        IMAGE,
        &id,
        "sh",
        "-c",
        "echo logged; echo logged-err >&2",
    ]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        c.log_tail()
    );
    wait_for(
        "the logging driver to finish",
        Duration::from_secs(20),
        || d.join("done").exists(),
    );
    let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
    assert_eq!(read("out"), "logged\n");
    assert_eq!(read("err"), "logged-err\n");
    assert_eq!(read("args"), format!("--tag t1 {id} {NS}\n"));
    assert_gone(&c, &id);
}

/// The container's stdin is containerd's FIFO, opened before containerd's writer comes: the
/// data arrives, and the writer's close is the container's EOF (`cat` ends).
#[test]
fn ctr_run_relays_stdin_until_eof() {
    let c = Containerd::start(false);
    c.import_images(NS);
    let id = uid("in1");
    let o = c.ctr_with_stdin(
        &[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            IMAGE,
            &id,
            "sh",
            "-c",
            // Without EOF, `timeout` ends `cat` and the exit code says so.
            "read first; echo got:$first; timeout 60 cat || exit 9; echo eof",
        ],
        b"one\ntwo\nthree\n",
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        c.log_tail()
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "got:one\ntwo\nthree\neof\n"
    );
    assert_gone(&c, &id);
}

/// A Windows spec reaches the shim's Windows paths, which say plainly what this host lacks:
/// a process-isolated one needs the host's HCS, a Hyper-V isolated one is not supported.
/// Nothing is left behind.
#[test]
fn windows_specs_get_a_clear_error_on_linux() {
    let c = Containerd::start(false);
    let rootfs = c.dir.join("wcow-rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let cases = [
        ("wcow1", false, "need this host's HCS"),
        ("wcow2", true, "Hyper-V isolated Windows containers"),
    ];
    for (name, hyperv, want) in cases {
        let id = uid(name);
        let mut windows = serde_json::json!({
            "layerFolders": [r"C:\layers\base", r"C:\layers\scratch"]
        });
        if hyperv {
            windows["hyperv"] = serde_json::json!({});
        }
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["cmd", "/c", "echo hi"], "cwd": r"C:\"},
            "root": {"path": rootfs.display().to_string()},
            "windows": windows,
        });
        let file = c.dir.join(format!("{name}.json"));
        std::fs::write(&file, spec.to_string()).unwrap();
        let o = c.ctr(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            "--config",
            file.to_str().unwrap(),
            &id,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name} ran: {err}");
        assert!(err.contains(want), "{name}: {err}\n{}", c.log_tail());
        assert_gone(&c, &id);
    }
}

#[test]
fn ctr_run_in_the_vm_sandbox() {
    let boot = common::boot_files();
    let c = Containerd::start(false);
    c.import_images(NS);
    let id = uid("vm1");
    let t0 = Instant::now();
    let boot_annotation = format!(
        "io.microsoft.virtualmachine.bootfilesrootpath={}",
        boot.display()
    );
    // The container waits for /tmp/go, which an exec creates once the diagnostics ran.
    let run = std::thread::scope(|s| {
        let run = s.spawn(|| {
            c.ctr(&[
                "run",
                "--rm",
                "--runtime",
                RUNTIME,
                "--annotation",
                "io.hcsshim-rs.sandbox=vm",
                "--annotation",
                &boot_annotation,
                "--annotation",
                "io.microsoft.virtualmachine.computetopology.memory.sizeinmb=512",
                "--annotation",
                "io.microsoft.virtualmachine.computetopology.processor.count=1",
                // The VHD root (the uvm crate's own tests boot the initrd and verity-vhd).
                "--annotation",
                "io.microsoft.virtualmachine.lcow.preferredrootfstype=vhd",
                IMAGE,
                &id,
                "sh",
                "-c",
                "echo hello from the vm; cat /proc/cmdline; \
                 while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 4",
            ])
        });
        let running = Instant::now() + Duration::from_secs(120);
        while task_status(&c, &id).as_deref() != Some("RUNNING") {
            if run.is_finished() || Instant::now() > running {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if task_status(&c, &id).as_deref() == Some("RUNNING") {
            eprintln!("VM sandbox task running after {:?}", t0.elapsed());
            vm_diag_checks(&c, &id);
            c.ctr_ok(&["t", "exec", "--exec-id", "go", &id, "touch", "/tmp/go"]);
        }
        run.join().unwrap()
    });
    eprintln!("ctr run in a VM sandbox took {:?}", t0.elapsed());
    let out = String::from_utf8_lossy(&run.stdout);
    eprintln!("{out}");
    assert_eq!(
        run.status.code(),
        Some(4),
        "{}\n{}",
        String::from_utf8_lossy(&run.stderr),
        c.log_tail()
    );
    assert!(out.starts_with("hello from the vm\n"), "{out}");
    // The kernel the container sees is the utility VM's: booted with the GCS as init's
    // command.
    assert!(out.contains("/bin/vsockexec"), "not in the VM: {out}");
    assert!(
        out.contains("root=/dev/sda"),
        "not booted from the VHD: {out}"
    );
    let sb = c.sandbox_dir(NS, &id);
    wait_for("the VM sandbox to go", Duration::from_secs(30), || {
        !sb.exists()
    });
    let qemus = common::processes_with_arg(sb.to_str().unwrap(), "qemu-system-x86_64");
    assert!(qemus.is_empty(), "QEMU of {id} still runs: {qemus:?}");
    assert!(c.shim_pids().is_empty(), "shims left: {:?}", c.shim_pids());
    assert!(c.ctr_ok(&["c", "ls", "-q"]).trim().is_empty());
}

/// ExtendedTask and DiagExecInHost against a VM sandbox: the VM's processor count, and a
/// process in the VM outside the container.
fn vm_diag_checks(c: &Containerd, id: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let d = DiagClient::connect(&c.bundle(NS, id)).await;
        assert_eq!(d.processor_count(id).await.unwrap(), 1);
        let (code, out) = d
            .exec_in_host(&c.dir, &["sh", "-c", "cat /proc/cmdline; exit 2"])
            .await;
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("/bin/vsockexec"), "not run in the VM: {out}");
    });
}

#[test]
fn exec_kill_ps_metrics_delete_and_the_snapshot_upper() {
    let c = Containerd::start(false);
    c.import_images(NS);
    let t1 = uid("t1");
    let t1 = t1.as_str();
    run_detached(&c, t1, "echo data > /written; exec sleep 1000");

    // exec without a terminal: output and exit code.
    let o = c.ctr(&[
        "t",
        "exec",
        "--exec-id",
        "e1",
        t1,
        "sh",
        "-c",
        "cat /written; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "data\n");

    // exec with a terminal (ctr needs one: script(1) provides it).
    let cmd = format!(
        "ctr -a {} t exec -t --exec-id e2 {t1} sh -c 'tty; exit 6'",
        c.socket().display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("/dev/pts/"));

    // ps: the container's processes.
    let ps = c.ctr_ok(&["t", "ps", t1]);
    assert!(ps.lines().count() >= 2, "{ps}");

    // metrics: cgroup statistics decoded by ctr.
    let m = c.ctr_ok(&["t", "metrics", t1]);
    assert!(
        m.contains("memory.usage_in_bytes") && m.contains("pids.current"),
        "{m}"
    );

    // The file the container wrote is in containerd's snapshot (its upperdir).
    let snaps = c
        .dir
        .join("root/io.containerd.snapshotter.v1.overlayfs/snapshots");
    let found = std::fs::read_dir(&snaps)
        .unwrap()
        .flatten()
        .any(|s| s.path().join("fs/written").is_file());
    assert!(found, "/written is not in any snapshot upperdir");

    // The shim's ShimDiag and ExtendedTask services.
    diag_checks(&c, t1);

    // kill, then delete.
    c.ctr_ok(&["t", "kill", "-s", "SIGKILL", t1]);
    wait_for("the task to stop", Duration::from_secs(30), || {
        task_status(&c, t1).as_deref() == Some("STOPPED")
    });
    c.ctr_ok(&["t", "delete", t1]);
    c.ctr_ok(&["c", "rm", t1]);
    assert_gone(&c, t1);
}

/// ShimDiag and ExtendedTask against the shim of running task `id` (local sandbox).
fn diag_checks(c: &Containerd, id: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let d = DiagClient::connect(&c.bundle(NS, id)).await;
        let pid: i32 = std::fs::read_to_string(c.bundle(NS, id).join("shim.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(d.pid().await, pid);
        let tasks = d.tasks().await;
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        assert_eq!(tasks[0].0, id);
        assert!(
            tasks[0]
                .1
                .contains(&(id.to_string(), "running".to_string())),
            "{tasks:?}"
        );
        let (stacks, guest) = d.stacks().await;
        assert!(stacks.contains(&format!("pid {pid}")) && stacks.contains("\nthread "));
        assert!(guest.contains("thread "), "{guest}");
        // In the sandbox, outside the container: the GCS's pid namespace, where the
        // agent is pid 1.
        let (code, out) = d
            .exec_in_host(
                &c.dir,
                &["sh", "-c", "cat /proc/1/comm; echo pid1-of-sandbox; exit 9"],
            )
            .await;
        assert_eq!(code, 9, "{out}");
        assert_eq!(out, "gcs\npid1-of-sandbox\n");
        let (code, msg) = status(&d.processor_count(id).await.unwrap_err());
        assert_eq!(code, ttrpc::Code::UNKNOWN);
        assert_eq!(msg, "task is not isolated");
        let (code, _) = status(&d.processor_count("nope").await.unwrap_err());
        assert_eq!(code, ttrpc::Code::NOT_FOUND);
        let (code, msg) = status(&d.share_error().await);
        assert_eq!(code, ttrpc::Code::UNIMPLEMENTED, "{msg}");
    });
}

#[test]
fn tasks_survive_a_containerd_restart() {
    let mut c = Containerd::start(false);
    c.import_images(NS);
    let k1 = uid("k1");
    let k1 = k1.as_str();
    run_detached(&c, k1, "exec sleep 1000");
    c.stop();
    c.launch();
    assert_eq!(task_status(&c, k1).as_deref(), Some("RUNNING"));
    let o = c.ctr(&[
        "t",
        "exec",
        "--exec-id",
        "after",
        k1,
        "sh",
        "-c",
        "echo still here",
    ]);
    assert!(o.status.success(), "{}", c.log_tail());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "still here\n");
    c.ctr_ok(&["t", "kill", "-s", "SIGKILL", k1]);
    wait_for("the task to stop", Duration::from_secs(30), || {
        task_status(&c, k1).as_deref() == Some("STOPPED")
    });
    c.ctr_ok(&["t", "delete", k1]);
    c.ctr_ok(&["c", "rm", k1]);
    assert_gone(&c, k1);
}

#[test]
fn a_killed_shim_is_cleaned_up_by_containerds_delete() {
    let c = Containerd::start(false);
    c.import_images(NS);
    let d1 = uid("d1");
    let d1 = d1.as_str();
    run_detached(&c, d1, "exec sleep 1000");
    let pid: i32 = std::fs::read_to_string(c.bundle(NS, d1).join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // containerd notices the shim is gone, runs `delete` and marks the task stopped.
    wait_for("containerd to clean up", Duration::from_secs(30), || {
        task_status(&c, d1).as_deref() != Some("RUNNING")
    });
    let o = c.ctr(&["t", "delete", d1]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() || err.contains("not found"), "{err}");
    c.ctr_ok(&["c", "rm", d1]);
    assert_gone(&c, d1);
}

#[test]
fn a_hundred_create_delete_cycles_leave_nothing_behind() {
    let c = Containerd::start(false);
    c.import_images(NS);
    let ids: Vec<String> = (0..100).map(|i| uid(&format!("cy{i}"))).collect();
    std::thread::scope(|s| {
        for chunk in ids.chunks(25) {
            let c = &c;
            s.spawn(move || {
                for id in chunk {
                    let o = c.ctr(&["run", "--rm", "--runtime", RUNTIME, IMAGE, id, "true"]);
                    assert!(
                        o.status.success(),
                        "{id}: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            });
        }
    });
    for id in &ids {
        assert_gone(&c, id);
    }
    assert!(c.shim_pids().is_empty(), "shims left: {:?}", c.shim_pids());
    // Only this test's sandboxes: the other tests, running meanwhile, have theirs (each with
    // its private `c` mount point) in the same root.
    let mounts: Vec<String> = ids
        .iter()
        .flat_map(|id| common::mounts_under(&c.sandbox_dir(NS, id)))
        .chain(common::mounts_under(&c.dir.join("state")))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    assert!(c.ctr_ok(&["c", "ls", "-q"]).trim().is_empty());
}

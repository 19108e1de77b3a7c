//! The local sandbox with the real `gcs` and runc (as root).

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use bridge::messages::{NotificationType, ProcessParameters};
use bridge::RawJson;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(60);

async fn read_all(s: Option<uvm::transport::BoxStream>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(mut s) = s {
        s.read_to_end(&mut out).await.expect("read stdio");
    }
    out
}

#[tokio::test]
async fn init_process_output_and_exit_code() {
    let sb = sandbox("init").await;
    let c = sb
        .create_container(
            &uid("c1"),
            spec(
                &["/bin/sh", "-c", "echo hello; echo err >&2; exit 3"],
                false,
            ),
            &[busybox_rootfs()],
        )
        .await
        .expect("create");
    c.start().await.unwrap();
    let p = c.start_init(false, true, true).await.expect("init");
    let stdio = p.take_stdio();
    let (out, err) = tokio::join!(read_all(stdio.stdout), read_all(stdio.stderr));
    assert_eq!(p.wait_timeout(T).await.unwrap(), 3);
    assert_eq!(String::from_utf8_lossy(&out), "hello\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(
        c.wait_timeout(T).await.unwrap(),
        NotificationType::UnexpectedExit
    );
    sb.remove_container(&c).await.expect("remove");
    teardown_and_check(sb).await;
}

#[tokio::test]
async fn stdin_and_large_output_through_exec() {
    let sb = sandbox("exec").await;
    let c = sleeper(&sb, &uid("c1")).await;
    let init = c.start_init(false, false, false).await.unwrap();
    // 4 MiB through stdin, back through stdout (cat), checked byte for byte.
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let params = ProcessParameters {
        create_std_in_pipe: true,
        create_std_out_pipe: true,
        oci_process: Some(RawJson::from_value(&process(&["/bin/cat"], false)).unwrap()),
        ..Default::default()
    };
    let p = c.exec(params).await.expect("exec");
    let stdio = p.take_stdio();
    let mut stdin = stdio.stdin.unwrap();
    let input = data.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let out = read_all(stdio.stdout).await;
    writer.await.unwrap();
    assert_eq!(p.wait_timeout(T).await.unwrap(), 0);
    assert_eq!(out.len(), data.len());
    assert!(out == data, "output differs from input");

    let pids = c.process_list().await.unwrap();
    assert!(
        pids.contains(&init.pid()),
        "{pids:?} lacks init {}",
        init.pid()
    );
    // sleep is pid 1 of its pid namespace: SIGTERM has no default action there, SIGKILL does.
    assert!(init.signal(Some(9)).await.unwrap());
    assert_eq!(init.wait_timeout(T).await.unwrap(), 128 + 9);
    assert_eq!(
        c.wait_timeout(T).await.unwrap(),
        NotificationType::ForcedExit
    );
    // Signalling a process that is gone reports "not delivered".
    assert!(!init.signal(Some(9)).await.unwrap());
    sb.remove_container(&c).await.unwrap();
    sb.teardown().await.unwrap();
}

#[tokio::test]
async fn many_containers_in_one_sandbox() {
    let sb = sandbox("many").await;
    let mut handles = Vec::new();
    for i in 0..5 {
        let id = uid(&format!("m{i}"));
        let c = sb
            .create_container(
                &id,
                spec(&["/bin/sh", "-c", &format!("echo {id}; exit {i}")], false),
                &[busybox_rootfs()],
            )
            .await
            .unwrap();
        handles.push(c);
    }
    let mut running = Vec::new();
    for c in &handles {
        let p = c.start_init(false, true, false).await.unwrap();
        running.push(p);
    }
    for (i, (c, p)) in handles.iter().zip(&running).enumerate() {
        let out = read_all(p.take_stdio().stdout).await;
        assert_eq!(String::from_utf8_lossy(&out), format!("{}\n", c.id()));
        assert_eq!(p.wait_timeout(T).await.unwrap(), i as i32);
        c.wait_timeout(T).await.unwrap();
        sb.remove_container(c).await.unwrap();
    }
    sb.teardown().await.unwrap();
}

/// The "20 containers at once in one sandbox": all twenty are created
/// concurrently, all run at the same time (each waits for a line on stdin until all are
/// up), and each one's stdout, stderr and exit code are its own. Teardown leaves nothing:
/// no state dir, no mount, no process, no cgroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_containers_at_once_in_one_sandbox() {
    assert!(
        is_root(),
        "the local sandbox tests run as root (as CI does)"
    );
    const N: usize = 20;
    let sb = std::sync::Arc::new(sandbox("twenty").await);
    let id = |i: usize| format!("twenty-{}-{i}", std::process::id());
    let mut set = tokio::task::JoinSet::new();
    for i in 0..N {
        let (sb, id) = (sb.clone(), id(i));
        set.spawn(async move {
            let script =
                format!("read go; echo \"$go $(hostname) {i}\"; echo err-{i} >&2; exit {i}");
            let mut spec = spec(&["/bin/sh", "-c", &script], false);
            spec["hostname"] = serde_json::json!(id);
            let c = sb
                .create_container(&id, spec, &[busybox_rootfs()])
                .await
                .unwrap_or_else(|e| panic!("create {id}: {e}"));
            let p = c
                .start_init(true, true, true)
                .await
                .unwrap_or_else(|e| panic!("start {id}: {e}"));
            (i, c, p)
        });
    }
    let mut all: Vec<_> = set.join_all().await;
    all.sort_by_key(|(i, _, _)| *i);
    assert_eq!(all.len(), N);

    // All twenty are running at once: each init is alive, blocked on its stdin.
    let pids: std::collections::HashSet<u32> = all.iter().map(|(_, _, p)| p.pid()).collect();
    assert_eq!(pids.len(), N, "every init has its own pid");
    for (i, c, p) in &all {
        assert!(p.try_exit_code().is_none(), "container {i} ended early");
        let listed = c.process_list().await.unwrap();
        assert!(
            listed.contains(&p.pid()),
            "{i}: {listed:?} lacks {}",
            p.pid()
        );
    }

    let mut set = tokio::task::JoinSet::new();
    for (i, c, p) in all {
        let sb = sb.clone();
        set.spawn(async move {
            let stdio = p.take_stdio();
            let mut stdin = stdio.stdin.unwrap();
            stdin.write_all(b"go\n").await.unwrap();
            stdin.shutdown().await.unwrap();
            let (out, err) = tokio::join!(read_all(stdio.stdout), read_all(stdio.stderr));
            let code = p.wait_timeout(T).await.unwrap();
            c.wait_timeout(T).await.unwrap();
            sb.remove_container(&c).await.unwrap();
            (i, code, out, err, c.id().to_owned())
        });
    }
    for (i, code, out, err, cid) in set.join_all().await {
        assert_eq!(code, i as i32, "exit code of {cid}");
        assert_eq!(String::from_utf8_lossy(&out), format!("go {cid} {i}\n"));
        assert_eq!(String::from_utf8_lossy(&err), format!("err-{i}\n"));
    }

    let dir = sb.state_dir();
    let agent = sb.agent_pid().unwrap();
    sb.teardown().await.unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.to_str().unwrap()), "{mounts}");
    assert!(
        !std::path::Path::new(&format!("/proc/{agent}")).exists(),
        "the agent is still there"
    );
    for base in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for i in 0..N {
            let cg = base.path().join("pods").join(id(i));
            assert!(!cg.exists(), "{} left behind", cg.display());
        }
    }
}

#[tokio::test]
async fn tty_exec() {
    let sb = sandbox("tty").await;
    let c = sleeper(&sb, &uid("t1")).await;
    let _init = c.start_init(false, false, false).await.unwrap();
    let params = ProcessParameters {
        create_std_in_pipe: true,
        create_std_out_pipe: true,
        oci_process: Some(RawJson::from_value(&process(&["/bin/sh"], true)).unwrap()),
        ..Default::default()
    };
    let p = c.exec(params).await.unwrap();
    p.resize_console(100, 30).await.unwrap();
    let stdio = p.take_stdio();
    let mut stdin = stdio.stdin.unwrap();
    stdin
        .write_all(b"tty -s && echo IS-A-TTY; stty size; exit 7\n")
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&read_all(stdio.stdout).await).replace('\r', "");
    assert_eq!(p.wait_timeout(T).await.unwrap(), 7);
    // Whole lines: the terminal's echo of the typed command contains the words too.
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"IS-A-TTY"), "{out}");
    assert!(lines.contains(&"30 100"), "{out}");
    c.terminate().await.unwrap();
    c.wait_timeout(T).await.unwrap();
    sb.remove_container(&c).await.unwrap();
    sb.teardown().await.unwrap();
}

#[tokio::test]
async fn agent_killed_mid_run_fails_pending_calls_and_teardown_cleans_up() {
    let sb = sandbox("crash").await;
    let c = sleeper(&sb, &uid("k1")).await;
    let init = c.start_init(false, false, false).await.unwrap();
    // The agent is pid 1 of the sandbox's pid namespace, with a /proc of its own.
    let gcs = sb.agent_pid().unwrap() as i32;
    let status = std::fs::read_to_string(format!("/proc/{gcs}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.ends_with("\t1"), "{nspid}");
    // Its mounts (the container's rootfs overlay) are its own, not the host's: the host
    // has one mount point in the state dir, the private `c` the overlays are under.
    let dir = sb.state_dir();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let under: Vec<&str> = host_mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(dir.to_str().unwrap()))
        .collect();
    assert_eq!(under, [dir.join("c").to_str().unwrap()], "{host_mounts}");
    let agent_mounts = std::fs::read_to_string(format!("/proc/{gcs}/mountinfo")).unwrap();
    assert!(
        agent_mounts.contains(dir.to_str().unwrap()),
        "{agent_mounts}"
    );
    // This sandbox's own processes (the container's sleep among them), as the host sees
    // them: other tests run sandboxes of their own at the same time. `runc start` returns
    // before its init has exec'd the command: wait for the sleep to show.
    let deadline = std::time::Instant::now() + T;
    let ours = loop {
        let ours = descendants(gcs);
        if ours.iter().any(|p| p.comm == "sleep") {
            break ours;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sleep under the agent: {ours:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // SAFETY: kill(2) on the agent we started.
    unsafe { libc::kill(gcs, libc::SIGKILL) };
    let err = init.wait_timeout(T).await.unwrap_err();
    assert!(matches!(err, uvm::Error::BridgeClosed(_)), "{err}");
    let err = c.wait_timeout(T).await.unwrap_err();
    assert!(matches!(err, uvm::Error::BridgeClosed(_)), "{err}");
    let err = c.process_list().await.unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    sb.teardown().await.unwrap();
    assert!(!dir.exists());
    // Nothing of the sandbox is left: none of its processes still runs.
    let alive: Vec<_> = ours.iter().filter(|p| p.still_running()).collect();
    assert!(alive.is_empty(), "left running: {alive:?}");
}

/// A process as the host's /proc shows it; `start` (clock ticks since boot) tells it apart
/// from a later process that got the same pid.
#[derive(Debug)]
struct Proc {
    pid: i32,
    start: u64,
    comm: String,
}

impl Proc {
    /// Reads `/proc/<pid>/stat`: (process, parent pid, state), or `None` once it is gone.
    fn read(pid: i32) -> Option<(Proc, i32, char)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_owned();
        // Fields after the command: state (3), ppid (4), ..., starttime (22).
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let state = rest.first()?.chars().next()?;
        let ppid = rest.get(1)?.parse().ok()?;
        let start = rest.get(19)?.parse().ok()?;
        Some((Proc { pid, start, comm }, ppid, state))
    }

    /// The same process still exists and is not a zombie.
    fn still_running(&self) -> bool {
        Proc::read(self.pid).is_some_and(|(p, _, state)| p.start == self.start && state != 'Z')
    }
}

/// Every live descendant of `root` (not `root` itself).
fn descendants(root: i32) -> Vec<Proc> {
    let mut all = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((p, ppid, state)) = Proc::read(pid) {
            if state != 'Z' {
                all.push((p, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut out = Vec::new();
    // Parents are found before their children after at most as many passes as levels.
    loop {
        let (next, rest): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|(_, ppid)| found.contains(ppid));
        all = rest;
        if next.is_empty() {
            return out;
        }
        for (p, _) in next {
            found.push(p.pid);
            out.push(p);
        }
    }
}

#[tokio::test]
async fn bad_spec_gives_a_clear_error_and_leaves_nothing() {
    let sb = sandbox("bad").await;
    let err = sb
        .create_container(
            &uid("b1"),
            spec(&["/does/not/exist"], false),
            &[busybox_rootfs()],
        )
        .await;
    // runc create succeeds for a missing binary only at start; accept either failure point.
    match err {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(c) => {
            let r = c.start_init(false, false, false).await;
            assert!(r.is_err(), "exec of a missing binary succeeded");
            let _ = sb.remove_container(&c).await;
        }
    }
    let err = sb
        .create_container(
            &uid("b2"),
            serde_json::json!({"ociVersion": "1"}),
            &[busybox_rootfs()],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no process"), "{err}");
    assert!(!sb.container_paths(&uid("b2")).bundle.exists());
    teardown_and_check(sb).await;
}

#[tokio::test]
async fn driven_through_the_hcs_cow_traits() {
    let sb = sandbox("cow").await;
    let c = sleeper(&sb, &uid("w1")).await;
    let init = c.start_init(false, false, false).await.unwrap();
    let container: &dyn hcs::cow::Container = &c;
    assert_eq!(container.id(), uid("w1"));
    assert_eq!(container.os(), hcs::Os::Linux);
    // lcowProcessParameters: schema2 ProcessParameters plus OciProcess.
    let config = serde_json::json!({
        "CreateStdOutPipe": true,
        "OciProcess": process(&["/bin/sh", "-c", "echo via-cow; exit 9"], false),
    });
    let p = container.create_process(&config).await.unwrap();
    let mut out = String::new();
    p.take_stdio()
        .stdout
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 9);
    assert_eq!(out, "via-cow\n");
    let props = container.properties(&["ProcessList"]).await.unwrap();
    assert!(
        props["ProcessList"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{props}"
    );
    container.terminate().await.unwrap();
    container.wait().await.unwrap();
    assert!(!init.kill().await.unwrap());
    sb.remove_container(&c).await.unwrap();
    sb.teardown().await.unwrap();
}

#[tokio::test]
async fn agent_on_stdin_stdout() {
    assert!(
        is_root(),
        "the local sandbox tests run as root (as CI does)"
    );
    let mut cfg = uvm::sandbox::local::LocalSandboxConfig::new(state_dir("inouterr"));
    cfg.agent = gcs_binary();
    cfg.use_inouterr = true;
    let (_, args) = cfg.command_line();
    assert!(args.iter().any(|a| a == "-use-inouterr"));
    let sb = uvm::sandbox::local::LocalSandbox::start(cfg).await.unwrap();
    let c = sb
        .create_container(
            &uid("io1"),
            spec(&["/bin/echo", "over-stdio"], false),
            &[busybox_rootfs()],
        )
        .await
        .unwrap();
    let p = c.start_init(false, true, false).await.unwrap();
    let out = read_all(p.take_stdio().stdout).await;
    assert_eq!(p.wait_timeout(T).await.unwrap(), 0);
    assert_eq!(String::from_utf8_lossy(&out), "over-stdio\n");
    c.wait_timeout(T).await.unwrap();
    sb.remove_container(&c).await.unwrap();
    teardown_and_check(sb).await;
}

#[tokio::test]
async fn release_names_frees_the_dir_and_cgroups_before_teardown() {
    let sb = sandbox("release").await;
    let c = sb
        .create_container(
            &uid("rel1"),
            spec(&["/bin/sh", "-c", "echo done"], false),
            &[busybox_rootfs()],
        )
        .await
        .unwrap();
    let p = c.start_init(false, true, false).await.unwrap();
    let out = read_all(p.take_stdio().stdout).await;
    assert_eq!(p.wait_timeout(T).await.unwrap(), 0);
    assert_eq!(String::from_utf8_lossy(&out), "done\n");
    let old = sb.state_dir();
    let parked = old.with_file_name(format!(
        "{}~parked",
        old.file_name().unwrap().to_string_lossy()
    ));
    sb.release_names(&parked).await.unwrap();
    assert!(!old.exists(), "the old state dir name is free");
    assert_eq!(sb.state_dir(), parked);
    // The name can be taken again at once, while the old sandbox is still going away.
    std::fs::create_dir(&old).unwrap();
    std::fs::remove_dir(&old).unwrap();
    for base in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let cg = base.path().join("pods").join(uid("rel1"));
        assert!(!cg.exists(), "{} left behind", cg.display());
    }
    // The bridge is closed: calls fail rather than hang.
    assert!(c.process_list().await.is_err());
    sb.teardown().await.unwrap();
    assert!(!parked.exists());
}

/// Unmounts a test's mount point on drop, also when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[tokio::test]
async fn a_volume_shows_host_mounts_made_after_the_sandbox_started() {
    let sb = sandbox("volume").await;
    // A host directory that gains a tmpfs once the agent's namespace exists: the container
    // binds what the host has at its creation, as runc on the host would.
    let vol = tempfile::tempdir().unwrap();
    let sub = vol.path().join("tmpfs");
    std::fs::create_dir(&sub).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let _unmount = Unmount(sub.clone());
    std::fs::write(sub.join("marker"), "on-the-tmpfs\n").unwrap();
    let mut s = spec(
        &[
            "/bin/sh",
            "-c",
            "cat /v/tmpfs/marker && touch /v/tmpfs/w && ! touch /v/x 2>/dev/null",
        ],
        false,
    );
    s["mounts"].as_array_mut().unwrap().push(serde_json::json!(
        {"destination": "/v", "type": "bind", "source": vol.path(), "options": ["rbind", "ro"]}
    ));
    let id = uid("c1");
    let c = sb
        .create_container(&id, s, &[busybox_rootfs()])
        .await
        .expect("create");
    c.start().await.unwrap();
    let p = c.start_init(false, true, false).await.expect("init");
    let out = read_all(p.take_stdio().stdout).await;
    assert_eq!(p.wait_timeout(T).await.unwrap(), 0, "{}", sb.log_tail());
    assert_eq!(String::from_utf8_lossy(&out), "on-the-tmpfs\n");
    assert!(sub.join("w").exists(), "the write went elsewhere");
    c.wait_timeout(T).await.unwrap();
    // The copy lives in the agent's namespace only, and goes with the container.
    let copies = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(uvm::sandbox::host_mounts::HOST_MOUNTS_DIR))
            .count()
    };
    let agent = sb.agent_pid().expect("agent pid");
    assert!(copies(agent) > 0);
    assert_eq!(copies(std::process::id()), 0, "a copy leaked to the host");
    sb.remove_container(&c).await.expect("remove");
    assert_eq!(copies(agent), 0, "the copies outlived the container");
    teardown_and_check(sb).await;
}

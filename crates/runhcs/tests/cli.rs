//! runhcs end to end with the real gcs and runc (as root, as CI runs): run, create/start,
//! exec, kill, delete, ps, state, list, stdio, TTY, failures and cleanup.
//! Linux only: the local sandbox.

#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The gcs binary beside runhcs (built on first use).
fn gcs() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let runhcs = PathBuf::from(env!("CARGO_BIN_EXE_runhcs"));
        let dir = runhcs.parent().unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "-p", "gcs", "--bin", "gcs"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "cargo build -p gcs failed");
        dir.join("gcs")
    })
    .clone()
}

fn rootfs() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("runhcs-test-busybox-rootfs");
        if dir.join("bin/busybox").exists() {
            return dir;
        }
        let tmp =
            std::env::temp_dir().join(format!("runhcs-test-busybox-rootfs.{}", std::process::id()));
        let ok = Command::new("sh")
            .arg(workspace_root().join("scripts/busybox-rootfs.sh"))
            .arg(&tmp)
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "busybox-rootfs.sh failed (is busybox-static installed?)"
        );
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
    .clone()
}

/// A container id unique to this test run: container cgroups are host-wide (`/pods/<id>`),
/// and other test processes run containers at the same time.
fn uid(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// A test's own state root and bundle dir; removed on drop.
struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(tag: &str) -> Self {
        assert!(is_root(), "the runhcs tests run as root (as CI does)");
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("runhcs-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Env { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// A bundle running `script` with sh -c.
    fn bundle(&self, name: &str, script: &str, terminal: bool) -> PathBuf {
        let b = self.dir.join(name);
        std::fs::create_dir_all(&b).unwrap();
        let _ = std::os::unix::fs::symlink(rootfs(), b.join("rootfs"));
        let spec = serde_json::json!({
            "ociVersion": "1.1.0",
            "process": {
                "terminal": terminal,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/sh", "-c", script],
                "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/"
            },
            "root": {"path": "rootfs"},
            "hostname": "t",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
            ],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
        });
        std::fs::write(
            b.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        b
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_runhcs"));
        c.arg("--root")
            .arg(self.root())
            .arg("--gcs")
            .arg(gcs())
            .args(args);
        c
    }

    /// Runs runhcs with its output in files, not pipes: a detached container's shim keeps
    /// the stdio it inherited, so waiting for pipes to close would wait for the container.
    fn run(&self, args: &[&str]) -> Output {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.dir.join(format!("out.{n}"));
        let err = self.dir.join(format!("err.{n}"));
        let status = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "runhcs {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn status(&self, id: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["state", id])).unwrap();
        v["status"].as_str().unwrap().to_owned()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.status(id) != want {
            assert!(Instant::now() < deadline, "{id} never became {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Nothing is left under the root: no container, and no sandbox still being torn down
    /// (after `run` returns its shim finishes the teardown by itself, under a name no
    /// container id can take).
    fn assert_empty(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left: Vec<_> = std::fs::read_dir(self.root())
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            let parked = left
                .iter()
                .all(|n| n.to_string_lossy().ends_with("~deleting"));
            if left.is_empty() {
                return;
            }
            assert!(parked && Instant::now() < deadline, "left behind: {left:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(d) = std::fs::read_dir(self.root()) {
            for e in d.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn run_reports_output_and_exit_code() {
    let env = Env::new("run");
    let r1 = uid("r1");
    let b = env.bundle("b", "echo hello; echo oops >&2; exit 3", false);
    let o = env.run(&["run", "--bundle", b.to_str().unwrap(), &r1]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
    env.assert_empty();
    assert_no_cgroup(&r1);
}

/// `run` returns the exit code before the sandbox's teardown has finished: by then the id
/// is free again, and the caller's pipes have reached their end (as `$(runhcs run ..)`
/// needs). The teardown then finishes by itself and leaves nothing behind.
#[test]
fn run_frees_the_id_and_the_pipes_before_returning() {
    let env = Env::new("rerun");
    let same = uid("same");
    let b = env.bundle("b", "echo hello; echo oops >&2; exit 3", false);
    for _ in 0..3 {
        // Pipes, not files: `output` reads them to their end.
        let o = env
            .cmd(&["run", "--bundle", b.to_str().unwrap(), &same])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
        assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
        let o = env.run(&["state", &same]);
        assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    }
    env.assert_empty();
    assert_no_cgroup(&same);
}

/// No cgroup of container `id` is left in any hierarchy.
fn assert_no_cgroup(id: &str) {
    let mut bases = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(d) = std::fs::read_dir("/sys/fs/cgroup") {
        bases.extend(d.flatten().map(|e| e.path()));
    }
    for base in bases {
        let p = base.join("pods").join(id);
        assert!(!p.exists(), "cgroup {} left behind", p.display());
    }
}

#[test]
fn lifecycle_create_start_exec_ps_state_list_kill_delete() {
    let env = Env::new("life");
    let c1 = uid("c1");
    let b = env.bundle("b", "sleep 1000", false);
    let b = b.to_str().unwrap();
    env.ok(&["create", "-b", b, &c1]);
    assert_eq!(env.status(&c1), "created");
    let o = env.run(&["create", "-b", b, &c1]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));

    env.ok(&["start", &c1]);
    assert_eq!(env.status(&c1), "running");
    let o = env.run(&["start", &c1]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already running"));

    let list = env.ok(&["list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(list.contains(&c1) && list.contains("running"), "{list}");
    assert_eq!(env.ok(&["list", "-q"]), format!("{c1}\n"));
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], c1.as_str());

    let o = env.run(&["exec", &c1, "/bin/sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "in-exec\n");

    let pids: Vec<u32> = serde_json::from_str(&env.ok(&["ps", "--format", "json", &c1])).unwrap();
    assert!(!pids.is_empty());

    let o = env.run(&["delete", &c1]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not stopped"));

    // sleep is pid 1 in its namespace: TERM is ignored there, KILL is not.
    env.ok(&["kill", &c1, "KILL"]);
    env.wait_status(&c1, "stopped");
    let o = env.run(&["exec", &c1, "true"]);
    assert!(!o.status.success());
    env.ok(&["delete", &c1]);
    let o = env.run(&["state", &c1]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    env.ok(&["delete", "--force", &c1]);
    env.assert_empty();
}

#[test]
fn delete_force_of_a_running_container() {
    let env = Env::new("force");
    let f1 = uid("f1");
    let b = env.bundle("b", "sleep 1000", false);
    env.ok(&["run", "-d", "-b", b.to_str().unwrap(), &f1]);
    assert_eq!(env.status(&f1), "running");
    env.ok(&["delete", "--force", &f1]);
    env.assert_empty();
}

/// Makes a file immutable (`chattr +i`, so that even root cannot unlink it) until dropped.
struct Immutable(PathBuf);

impl Immutable {
    fn new(path: PathBuf) -> Self {
        std::fs::write(&path, b"pinned").unwrap();
        let st = Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .unwrap();
        assert!(st.success(), "chattr +i {}", path.display());
        Immutable(path)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        match Command::new("chattr").arg("-i").arg(&self.0).status() {
            Ok(st) if st.success() => {}
            other => eprintln!("chattr -i {} failed: {other:?}", self.0.display()),
        }
    }
}

/// A teardown that cannot remove the sandbox's files makes `delete` fail with the reason
/// (for a running container through its shim, for a stopped one by itself), and the state
/// stays so that a later `delete` can finish the job.
#[test]
fn delete_fails_with_the_reason_when_teardown_fails() {
    let env = Env::new("delfail");
    let d1 = uid("d1");
    let b = env.bundle("b", "sleep 1000", false);
    env.ok(&["run", "-d", "-b", b.to_str().unwrap(), &d1]);
    let pinned = Immutable::new(env.root().join(&d1).join("sandbox/pinned"));

    let o = env.run(&["delete", "--force", &d1]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "delete succeeded: {err}");
    assert!(err.contains("sandbox teardown failed"), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(env.status(&d1), "stopped");

    // The shim is gone now; a plain delete removes the state dir itself and reports why
    // it cannot.
    let o = env.run(&["delete", &d1]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "delete succeeded: {err}");
    assert!(err.contains("remove ") && err.contains(&d1), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");

    drop(pinned);
    env.ok(&["delete", &d1]);
    env.assert_empty();
    assert_no_cgroup(&d1);
}

#[test]
fn stdin_is_piped_and_mebibytes_of_output_arrive_intact() {
    let env = Env::new("stdio");
    let p1 = uid("p1");
    let b = env.bundle("b", "cat", false);
    let data: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    let mut child = env
        .cmd(&["run", "-b", b.to_str().unwrap(), &p1])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "output differs from input");
    env.assert_empty();
}

#[test]
fn tty_exec_session() {
    let env = Env::new("tty");
    let t1 = uid("t1");
    let b = env.bundle("b", "sleep 1000", false);
    env.ok(&["run", "-d", "-b", b.to_str().unwrap(), &t1]);
    // script(1) gives runhcs a terminal of 77x22; the shell inside must see a terminal of
    // that size.
    let runhcs = format!(
        "stty cols 77 rows 22; {} --root {} --gcs {} exec -t {t1} /bin/sh",
        env!("CARGO_BIN_EXE_runhcs"),
        env.root().display(),
        gcs().display()
    );
    let text = in_terminal(&runhcs, b"tty -s && echo IS-A-TTY; stty size; exit 6\n");
    assert_has_line(&text, "IS-A-TTY");
    assert_has_line(&text, "22 77");
    env.ok(&["delete", "--force", &t1]);
    env.assert_empty();
}

#[test]
fn bad_bundles_fail_clearly_and_leave_nothing() {
    let env = Env::new("bad");
    let x1 = uid("x1");
    let x2 = uid("x2");
    let x3 = uid("x3");
    let x4 = uid("x4");
    let missing = env.dir.join("nope");
    let o = env.run(&["create", "-b", missing.to_str().unwrap(), &x1]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bundle"),
        "{o:?}"
    );

    let b = env.bundle("b", "true", false);
    std::fs::write(b.join("config.json"), "{not json").unwrap();
    let o = env.run(&["create", "-b", b.to_str().unwrap(), &x2]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not valid JSON"),
        "{o:?}"
    );

    let b = env.bundle("c", "true", false);
    std::fs::remove_file(b.join("rootfs")).unwrap();
    let o = env.run(&["create", "-b", b.to_str().unwrap(), &x3]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rootfs"),
        "{o:?}"
    );

    // A spec runc refuses (a mount of an unknown type) fails in the guest, and the error
    // reaches the caller; the sandbox is torn down.
    let b = env.bundle("d", "true", false);
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    let o = env.run(&["run", "-b", b.to_str().unwrap(), &x4]);
    assert!(!o.status.success());
    assert!(!o.stderr.is_empty());

    let o = env.run(&["create", "-b", b.to_str().unwrap(), "../evil"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid container id"),
        "{o:?}"
    );
    env.assert_empty();
}

#[test]
fn gcs_killed_mid_run_stops_the_container_and_delete_cleans_up() {
    let env = Env::new("crash");
    let k1 = uid("k1");
    let b = env.bundle("b", "sleep 1000", false);
    env.ok(&["run", "-d", "-b", b.to_str().unwrap(), &k1]);
    let state: serde_json::Value = serde_json::from_str(&env.ok(&["state", &k1])).unwrap();
    let shim = state["pid"].as_u64().unwrap();
    // The gcs is the shim's only child, forked by one of its threads.
    let mut children = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{shim}/task"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(
            text.split_whitespace()
                .filter_map(|s| s.parse::<i32>().ok()),
        );
    }
    assert_eq!(children.len(), 1, "{children:?}");
    let gcs = children[0];
    let comm = std::fs::read_to_string(format!("/proc/{gcs}/comm")).unwrap();
    assert_eq!(comm.trim(), "gcs");
    // SAFETY: kill(2) of the gcs this test started.
    unsafe { libc::kill(gcs, libc::SIGKILL) };
    env.wait_status(&k1, "stopped");
    env.ok(&["delete", &k1]);
    env.assert_empty();
    let sandbox = env.root().join(&k1);
    assert!(!sandbox.exists());
}

/// A shim killed outright takes its sandbox with it (the agent dies with the thread that
/// forked it, the kernel kills the container with the agent's pid namespace), and `delete`
/// then removes what is left, cgroups included.
#[test]
fn shim_killed_outright_takes_the_sandbox_along_and_delete_cleans_up() {
    let env = Env::new("shimkill");
    let b = env.bundle("b", "sleep 1000", false);
    let id = format!("shimkill-{}", std::process::id());
    env.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let state: serde_json::Value = serde_json::from_str(&env.ok(&["state", &id])).unwrap();
    let shim = state["pid"].as_u64().unwrap() as i32;
    let mut children = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{shim}/task"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(
            text.split_whitespace()
                .filter_map(|s| s.parse::<i32>().ok()),
        );
    }
    let gcs = children[0];
    // SAFETY: kill(2) of the shim this test started.
    unsafe { libc::kill(shim, libc::SIGKILL) };
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gone(gcs) {
        assert!(Instant::now() < deadline, "the gcs outlived its shim");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.status(&id), "stopped");
    env.ok(&["delete", &id]);
    env.assert_empty();
    assert_no_cgroup(&id);
}

#[test]
fn tty_run_session_returns_the_exit_code() {
    let env = Env::new("ttyrun");
    let tr1 = uid("tr1");
    let b = env.bundle("b", "exec /bin/sh", true);
    let runhcs = format!(
        "stty cols 81 rows 23; {} --root {} --gcs {} run -b {} {tr1}; echo code=$?",
        env!("CARGO_BIN_EXE_runhcs"),
        env.root().display(),
        gcs().display(),
        b.display()
    );
    let text = in_terminal(&runhcs, b"tty -s && echo IS-A-TTY; stty size; exit 5\n");
    assert_has_line(&text, "IS-A-TTY");
    assert_has_line(&text, "23 81");
    assert_has_line(&text, "code=5");
    env.assert_empty();
}

/// `text` has `line` as a whole line: the terminal's echo of the typed command holds the
/// same words, so a substring match would pass without the command's output.
fn assert_has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

/// Runs `command` in a pseudo-terminal (`script`), types `input` after half a second, and
/// returns what the terminal showed, with carriage returns removed.
fn in_terminal(command: &str, input: &[u8]) -> String {
    let mut child = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

//! The task and exec state machines (spec §1.3) against a fake container, with the gRPC
//! error kinds containerd branches on and the order of the events.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hcs::cow::{
    Container, GroupAffinity, MigrationState, Os, Process, ProcessHost, SignalOptions, Stdio,
};
use tokio::sync::watch;

use super::*;
use crate::events::RecordingSink;
use crate::rootfs::{Rootfs, TaskRootfs};

impl std::fmt::Debug for FakeProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProcess")
            .field("pid", &self.pid)
            .finish()
    }
}

pub(crate) struct FakeProcess {
    pid: u32,
    exit: watch::Sender<Option<i64>>,
    signals: Mutex<Vec<i32>>,
    /// Signals are recorded but do nothing (a hung guest).
    deaf: std::sync::atomic::AtomicBool,
    /// The process's stdin, handed to the shim by `take_stdio`...
    stdin: Mutex<Option<tokio::io::DuplexStream>>,
    /// ... and what the process reads from it.
    pub(crate) stdin_reader: Mutex<Option<tokio::io::DuplexStream>>,
}

impl FakeProcess {
    fn new(pid: u32) -> Arc<Self> {
        let (reader, stdin) = tokio::io::duplex(64);
        Arc::new(Self {
            pid,
            exit: watch::channel(None).0,
            signals: Mutex::new(Vec::new()),
            deaf: Default::default(),
            stdin: Mutex::new(Some(stdin)),
            stdin_reader: Mutex::new(Some(reader)),
        })
    }
}

#[async_trait]
impl Process for FakeProcess {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn take_stdio(&self) -> Stdio {
        Stdio {
            stdin: self.stdin.lock().unwrap().take().map(|s| Box::new(s) as _),
            ..Default::default()
        }
    }
    fn migration_state(&self) -> MigrationState {
        MigrationState::default()
    }
    async fn close_stdin(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn close_stdout(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn close_stderr(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn resize_console(&self, _: u16, _: u16) -> hcs::Result<()> {
        Ok(())
    }
    async fn kill(&self) -> hcs::Result<bool> {
        self.exit.send_replace(Some(137));
        Ok(true)
    }
    async fn signal(&self, o: Option<&SignalOptions>) -> hcs::Result<bool> {
        if let Some(SignalOptions::Linux { signal }) = o {
            self.signals.lock().unwrap().push(*signal);
            if !self.deaf.load(std::sync::atomic::Ordering::SeqCst) {
                self.exit.send_replace(Some(128 + *signal as i64));
            }
        }
        Ok(true)
    }
    async fn wait(&self) -> hcs::Result<()> {
        let mut rx = self.exit.subscribe();
        while rx.borrow_and_update().is_none() {
            if rx.changed().await.is_err() {
                break;
            }
        }
        Ok(())
    }
    fn exit_code(&self) -> hcs::Result<i64> {
        self.exit
            .borrow()
            .ok_or_else(|| hcs::Error::new(hcs::ErrorKind::InvalidProcessState))
    }
    async fn close(&self) -> hcs::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct FakeContainer {
    processes: Mutex<Vec<Arc<FakeProcess>>>,
    started: std::sync::atomic::AtomicBool,
    /// What the guest's statistics say the OOM killer did.
    oom_kills: std::sync::atomic::AtomicU64,
    /// The modify requests the container got.
    modified: Mutex<Vec<serde_json::Value>>,
}

struct Shared(Arc<FakeProcess>);

#[async_trait]
impl Process for Shared {
    fn pid(&self) -> u32 {
        self.0.pid()
    }
    fn take_stdio(&self) -> Stdio {
        self.0.take_stdio()
    }
    fn migration_state(&self) -> MigrationState {
        self.0.migration_state()
    }
    async fn close_stdin(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn close_stdout(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn close_stderr(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn resize_console(&self, w: u16, h: u16) -> hcs::Result<()> {
        self.0.resize_console(w, h).await
    }
    async fn kill(&self) -> hcs::Result<bool> {
        self.0.kill().await
    }
    async fn signal(&self, o: Option<&SignalOptions>) -> hcs::Result<bool> {
        self.0.signal(o).await
    }
    async fn wait(&self) -> hcs::Result<()> {
        self.0.wait().await
    }
    fn exit_code(&self) -> hcs::Result<i64> {
        self.0.exit_code()
    }
    async fn close(&self) -> hcs::Result<()> {
        Ok(())
    }
}

#[async_trait]
impl ProcessHost for FakeContainer {
    async fn create_process(&self, _: &serde_json::Value) -> hcs::Result<Box<dyn Process>> {
        let mut ps = self.processes.lock().unwrap();
        let p = FakeProcess::new(100 + ps.len() as u32);
        ps.push(p.clone());
        Ok(Box::new(Shared(p)))
    }
    fn os(&self) -> Os {
        Os::Linux
    }
    fn is_oci(&self) -> bool {
        false
    }
}

#[async_trait]
impl Container for FakeContainer {
    fn id(&self) -> &str {
        "fake"
    }
    async fn properties(&self, t: &[&str]) -> hcs::Result<serde_json::Value> {
        if t == ["Statistics"] {
            let kills = self.oom_kills.load(std::sync::atomic::Ordering::SeqCst);
            return Ok(
                serde_json::json!({"LCOWMetrics": {"memory_oom_control": {"oom_kill": kills}}}),
            );
        }
        let list: Vec<_> = self
            .processes
            .lock()
            .unwrap()
            .iter()
            .map(|p| serde_json::json!({"ProcessId": p.pid}))
            .collect();
        Ok(serde_json::json!({"ProcessList": list}))
    }
    async fn properties_v2(&self, t: &[&str]) -> hcs::Result<serde_json::Value> {
        self.properties(t).await
    }
    async fn start(&self) -> hcs::Result<()> {
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn shutdown(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn terminate(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn wait(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn modify(&self, r: &serde_json::Value) -> hcs::Result<()> {
        self.modified.lock().unwrap().push(r.clone());
        Ok(())
    }
    async fn set_cpu_group_affinities(&self, _: &[GroupAffinity]) -> hcs::Result<()> {
        Ok(())
    }
    async fn close(&self) -> hcs::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(crate) struct FakeHost {
    torn_down: std::sync::atomic::AtomicBool,
    container: Mutex<Option<Arc<FakeContainerHandle>>>,
    /// Processes started by `exec_in_host`, with the parameters each got.
    pub(crate) host_execs: Mutex<Vec<(serde_json::Value, Arc<FakeProcess>)>>,
    /// The host is a utility VM (that cannot be resized), and the resizes asked of it.
    vm: std::sync::atomic::AtomicBool,
    vm_fixed: std::sync::atomic::AtomicBool,
    vm_updates: Mutex<Vec<uvm::sandbox::VmResources>>,
}

#[derive(Default)]
struct FakeContainerHandle(FakeContainer);

impl std::fmt::Debug for FakeContainerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeContainerHandle")
    }
}

#[async_trait]
impl TaskHost for FakeHost {
    fn kind(&self) -> String {
        "fake".into()
    }
    async fn create_container(
        &self,
        _: &str,
        _: serde_json::Value,
        _: &TaskRootfs,
        _: &std::path::Path,
    ) -> Result<Arc<dyn Container>> {
        let c = Arc::new(FakeContainerHandle::default());
        *self.container.lock().unwrap() = Some(c.clone());
        Ok(Arc::new(Forward(c)))
    }
    async fn remove_container(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn teardown(&self) -> Result<()> {
        self.torn_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn exec_in_host(
        &self,
        params: bridge::messages::ProcessParameters,
    ) -> Result<Box<dyn Process>> {
        let mut execs = self.host_execs.lock().unwrap();
        let p = FakeProcess::new(900 + execs.len() as u32);
        execs.push((serde_json::to_value(params).unwrap(), p.clone()));
        Ok(Box::new(Shared(p)))
    }
    async fn guest_stacks(&self) -> Result<String> {
        Ok("guest thread 1".into())
    }
    fn processor_count(&self) -> Option<u32> {
        Some(3)
    }
    async fn update_vm(&self, r: &uvm::sandbox::VmResources) -> Option<Result<()>> {
        if !self.vm.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        if self.vm_fixed.load(std::sync::atomic::Ordering::SeqCst) {
            let e = uvm::Error::Unsupported("no balloon".into());
            return Some(Err(Error::sandbox("update the utility VM", e)));
        }
        self.vm_updates.lock().unwrap().push(r.clone());
        Some(Ok(()))
    }
}

impl FakeProcess {
    /// Makes the process exit with `code`.
    pub(crate) fn exit_with(&self, code: i64) {
        self.exit.send_replace(Some(code));
    }
}

struct Forward(Arc<FakeContainerHandle>);

#[async_trait]
impl ProcessHost for Forward {
    async fn create_process(&self, c: &serde_json::Value) -> hcs::Result<Box<dyn Process>> {
        self.0 .0.create_process(c).await
    }
    fn os(&self) -> Os {
        Os::Linux
    }
    fn is_oci(&self) -> bool {
        false
    }
}

#[async_trait]
impl Container for Forward {
    fn id(&self) -> &str {
        "fake"
    }
    async fn properties(&self, t: &[&str]) -> hcs::Result<serde_json::Value> {
        self.0 .0.properties(t).await
    }
    async fn properties_v2(&self, t: &[&str]) -> hcs::Result<serde_json::Value> {
        self.0 .0.properties(t).await
    }
    async fn start(&self) -> hcs::Result<()> {
        self.0 .0.start().await
    }
    async fn shutdown(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn terminate(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn wait(&self) -> hcs::Result<()> {
        Ok(())
    }
    async fn modify(&self, r: &serde_json::Value) -> hcs::Result<()> {
        self.0 .0.modify(r).await
    }
    async fn set_cpu_group_affinities(&self, _: &[GroupAffinity]) -> hcs::Result<()> {
        Ok(())
    }
    async fn close(&self) -> hcs::Result<()> {
        Ok(())
    }
}

pub(crate) async fn new_task(sink: Arc<RecordingSink>) -> (Arc<Task>, Arc<FakeHost>) {
    new_task_with_io(sink, IoPaths::default()).await
}

async fn new_task_with_io(sink: Arc<RecordingSink>, io: IoPaths) -> (Arc<Task>, Arc<FakeHost>) {
    let host = Arc::new(FakeHost::default());
    let task = Task::create(
        host.clone(),
        true,
        Publisher::new("ns", sink),
        TaskSpec {
            id: "t".into(),
            bundle: "/b".into(),
            spec: serde_json::json!({}),
            rootfs: TaskRootfs::Linux(Rootfs {
                layers: vec!["/l".into()],
                writable: None,
            }),
            io,
        },
    )
    .await
    .unwrap();
    (task, host)
}

fn container_of(host: &FakeHost) -> Arc<FakeContainerHandle> {
    host.container.lock().unwrap().as_ref().unwrap().clone()
}

fn process(host: &FakeHost, i: usize) -> Arc<FakeProcess> {
    host.container
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .0
        .processes
        .lock()
        .unwrap()[i]
        .clone()
}

#[tokio::test]
async fn execs_follow_the_state_machine_with_the_reference_codes() {
    let sink = Arc::new(RecordingSink::default());
    let (task, host) = new_task(sink.clone()).await;
    let io = IoPaths::default();
    // An exec before the init runs: FailedPrecondition; unknown exec: NotFound.
    assert!(matches!(
        task.create_exec("e1", &io, serde_json::json!({})).await,
        Err(Error::FailedPrecondition(_))
    ));
    assert!(matches!(task.get_exec("nope"), Err(Error::NotFound(_))));
    assert_eq!(task.start("").await.unwrap(), 100);
    // Start twice: FailedPrecondition naming the state.
    match task.start("").await {
        Err(Error::FailedPrecondition(m)) => assert!(m.contains("'running' for start"), "{m}"),
        other => panic!("{other:?}"),
    }
    task.create_exec("e1", &io, serde_json::json!({"args": ["sh"]}))
        .await
        .unwrap();
    assert!(matches!(
        task.create_exec("e1", &io, serde_json::json!({})).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        task.create_exec("", &io, serde_json::json!({})).await,
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(task.start("e1").await.unwrap(), 101);
    // A signal Linux has not: FailedPrecondition naming the number.
    match task.kill("e1", 200, false).await {
        Err(Error::FailedPrecondition(m)) => {
            assert_eq!(m, "signal 200: invalid signal value")
        }
        other => panic!("{other:?}"),
    }
    let pids: Vec<(u32, String)> = task
        .pids()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.pid, p.exec_id))
        .collect();
    // The init is reported under the task id, as the reference and runc's shim do.
    assert_eq!(pids, [(100, "t".to_owned()), (101, "e1".to_owned())]);
    // Delete of a running exec: FailedPrecondition; signal all with an exec id too.
    assert!(matches!(
        task.delete_exec("e1").await,
        Err(Error::FailedPrecondition(_))
    ));
    assert!(matches!(
        task.kill("e1", 9, true).await,
        Err(Error::FailedPrecondition(_))
    ));
    // The exec exits: Wait gets the status, Kill is then NotFound, Delete works.
    process(&host, 1).exit.send_replace(Some(3));
    assert_eq!(task.wait("e1").await.unwrap().status, 3);
    assert!(matches!(
        task.kill("e1", 15, false).await,
        Err(Error::NotFound(_))
    ));
    let (pid, exit) = task.delete_exec("e1").await.unwrap();
    assert_eq!((pid, exit.status), (101, 3));
    assert!(matches!(task.get_exec("e1"), Err(Error::NotFound(_))));
    // SIGTERM to the init: delivered, the task is torn down, TaskExit comes last.
    task.kill("", 15, false).await.unwrap();
    assert_eq!(process(&host, 0).signals.lock().unwrap().as_slice(), [15]);
    assert_eq!(task.wait("").await.unwrap().status, 128 + 15);
    assert!(host.torn_down.load(std::sync::atomic::Ordering::SeqCst));
    // A stopped task has no processes (the guest is not asked: it may be gone).
    assert_eq!(task.pids().await.unwrap(), []);
    assert_eq!(
        sink.topics(),
        [
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exit"
        ]
    );
    let (_, exit) = task.delete_exec("").await.unwrap();
    assert_eq!(exit.status, 143);
}

/// Reads the process's stdin to its end; fails the test if it stays open.
async fn stdin_of(host: &FakeHost, i: usize) -> Vec<u8> {
    let mut reader = process(host, i)
        .stdin_reader
        .lock()
        .unwrap()
        .take()
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut rest),
    )
    .await
    .expect("the process's stdin is closed")
    .unwrap();
    rest
}

#[tokio::test]
async fn a_process_without_upstream_stdin_reads_eof() {
    let (task, host) = new_task(Arc::new(RecordingSink::default())).await;
    task.start("").await.unwrap();
    assert!(stdin_of(&host, 0).await.is_empty());
}

// A FIFO as containerd's stdin (the Windows path is a named pipe).
#[cfg(unix)]
#[tokio::test]
async fn close_io_before_start_closes_stdin_once_the_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stdin");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let io = IoPaths {
        stdin: fifo.display().to_string(),
        ..Default::default()
    };
    let (task, host) = new_task_with_io(Arc::new(RecordingSink::default()), io).await;
    // containerd's attach with StdinOnce may close stdin before the task starts; nobody
    // ever opens the FIFO's write end.
    task.init().close_io().await;
    task.start("").await.unwrap();
    assert!(stdin_of(&host, 0).await.is_empty());
    process(&host, 0).exit_with(0);
    task.wait("").await.unwrap();
}

#[tokio::test]
async fn an_update_of_a_task_owning_a_vm_resizes_the_vm() {
    let (task, host) = new_task(Arc::new(RecordingSink::default())).await;
    let linux = Resources::Linux(serde_json::json!({
        "memory": {"limit": 536870912_i64},
        "cpu": {"quota": 50000, "shares": 512, "period": 100000}
    }));
    let modified = || container_of(&host).0.modified.lock().unwrap().len();
    // Not a VM (the local sandbox): the container is updated, the host is not asked.
    task.update(linux.clone(), None).await.unwrap();
    assert!(host.vm_updates.lock().unwrap().is_empty());
    assert_eq!(modified(), 1);
    host.vm.store(true, std::sync::atomic::Ordering::SeqCst);
    task.update(linux.clone(), None).await.unwrap();
    assert_eq!(modified(), 1, "the VM is resized, not the container");
    // A VM that cannot be resized: the container's limits are updated instead.
    host.vm_fixed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    task.update(linux, None).await.unwrap();
    assert_eq!(modified(), 2);
    host.vm_fixed
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let windows = Resources::Windows(serde_json::json!({
        "memory": {"limit": 1073741824_u64}, "cpu": {"maximum": 2500}
    }));
    task.update(windows, Some("g1".into())).await.unwrap();
    // Zero or negative values (CRI's "unset") leave the VM's as they are.
    let unset = Resources::Linux(serde_json::json!({"memory": {"limit": -1}, "cpu": {"quota": 0}}));
    task.update(unset, None).await.unwrap();
    let vm = |m: Option<u64>, l: Option<u64>, w: Option<u64>| uvm::sandbox::VmResources {
        memory_bytes: m,
        processor_limit: l,
        processor_weight: w,
        cpu_group: None,
    };
    assert_eq!(
        *host.vm_updates.lock().unwrap(),
        [
            vm(Some(536870912), Some(50000), Some(512)),
            uvm::sandbox::VmResources {
                cpu_group: Some("g1".into()),
                ..vm(Some(1073741824), Some(2500), None)
            },
            vm(None, None, None),
        ]
    );
}

#[tokio::test]
async fn an_oom_killed_container_publishes_task_oom_before_its_exit() {
    for kills in [0, 1] {
        let sink = Arc::new(RecordingSink::default());
        let (task, host) = new_task(sink.clone()).await;
        task.start("").await.unwrap();
        host.container
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .0
            .oom_kills
            .store(kills, std::sync::atomic::Ordering::SeqCst);
        process(&host, 0).exit_with(137);
        assert_eq!(task.wait("").await.unwrap().status, 137);
        task.wait_closed().await;
        let want: &[&str] = if kills == 0 {
            &["/tasks/start", "/tasks/exit"]
        } else {
            &["/tasks/start", "/tasks/oom", "/tasks/exit"]
        };
        assert_eq!(sink.topics(), want);
    }
}

#[tokio::test]
async fn a_created_init_is_killed_or_deleted_without_running() {
    let sink = Arc::new(RecordingSink::default());
    let (task, host) = new_task(sink.clone()).await;
    // Kill while created: exits with status 1, no process was ever made, and the task
    // is over without a Delete: Wait returns and TaskExit is out (containerd's
    // WithProcessKill waits for that after a failed start).
    task.kill("", 9, false).await.unwrap();
    assert_eq!(task.init().exit().unwrap().status, 1);
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), task.wait(""))
        .await
        .expect("Wait returns after Kill of a created task")
        .unwrap();
    assert_eq!(waited.status, 1);
    assert_eq!(sink.topics(), ["/tasks/exit"]);
    assert!(host
        .container
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .0
        .processes
        .lock()
        .unwrap()
        .is_empty());
    let (pid, exit) = task.delete_exec("").await.unwrap();
    assert_eq!((pid, exit.status), (0, 1));
    assert!(task.is_closed());
    assert_eq!(sink.topics(), ["/tasks/exit"]);
}

#[tokio::test(start_paused = true)]
async fn the_init_exiting_keeps_the_exit_codes_of_running_execs() {
    let sink = Arc::new(RecordingSink::default());
    let (task, host) = new_task(sink.clone()).await;
    let io = IoPaths::default();
    task.start("").await.unwrap();
    for eid in ["e1", "e2", "e3"] {
        task.create_exec(eid, &io, serde_json::json!({"args": ["sh"]}))
            .await
            .unwrap();
    }
    task.start("e1").await.unwrap();
    task.start("e2").await.unwrap();
    // The init exits; e1's own exit arrives a moment later (it died with the container),
    // e2's never does (its sandbox went away), e3 never started.
    process(&host, 0).exit.send_replace(Some(4));
    let e1 = process(&host, 1);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        e1.exit.send_replace(Some(7));
    });
    assert_eq!(task.wait("").await.unwrap().status, 4);
    let status = |eid: &str| task.get_exec(eid).unwrap().exit().unwrap().status;
    assert_eq!(
        status("e1"),
        7,
        "a running exec keeps its process's exit code"
    );
    assert_eq!(
        status("e2"),
        1,
        "an exec whose exit cannot come is forced out"
    );
    assert_eq!(status("e3"), 1, "a created exec exits with 1");
    // The init's TaskExit comes last, after e1's.
    let topics = sink.topics();
    assert_eq!(topics.last().map(String::as_str), Some("/tasks/exit"));
    assert_eq!(topics.iter().filter(|t| *t == "/tasks/exit").count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_sigkill_the_guest_ignores_tears_the_owned_sandbox_down() {
    let sink = Arc::new(RecordingSink::default());
    let (task, host) = new_task(sink.clone()).await;
    task.start("").await.unwrap();
    let init = process(&host, 0);
    init.deaf.store(true, std::sync::atomic::Ordering::SeqCst);
    task.kill("", 9, false).await.unwrap();
    let torn = || host.torn_down.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(KILL_WATCHDOG - Duration::from_secs(1)).await;
    assert!(!torn(), "torn down before the watchdog");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(torn(), "the watchdog did not tear the sandbox down");
    // The sandbox gone, the init's wait ends and the task closes.
    init.exit_with(137);
    tokio::time::timeout(Duration::from_secs(60), task.wait(""))
        .await
        .unwrap()
        .unwrap();
}

//! An in-memory container/process pair used only through `dyn Container` / `dyn Process`,
//! proving the interface can be implemented and driven by backend-agnostic code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::*;
use crate::error::{is_already_closed, Error, ErrorKind};

/// The exit slot: `None` while running, then the wait result.
type ExitSlot = watch::Sender<Option<Result<()>>>;

async fn wait_slot(slot: &ExitSlot) -> Result<()> {
    let mut rx = slot.subscribe();
    let value = rx
        .wait_for(Option::is_some)
        .await
        .map_err(|_| Error::new(ErrorKind::HandleClose))?;
    value.clone().unwrap_or(Ok(()))
}

struct FakeProcess {
    pid: u32,
    stdio: Mutex<Stdio>,
    exit: Arc<ExitSlot>,
    code: Arc<Mutex<Option<i64>>>,
}

impl FakeProcess {
    /// A process that copies stdin to stdout and exits 0 at end of input, 137 when killed.
    fn cat(pid: u32) -> Self {
        let (host_in, mut guest_in) = tokio::io::duplex(64);
        let (mut guest_out, host_out) = tokio::io::duplex(64);
        let exit = Arc::new(watch::channel(None).0);
        let code = Arc::new(Mutex::new(None));
        let (e, c) = (exit.clone(), code.clone());
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut guest_in, &mut guest_out).await;
            drop(guest_out);
            c.lock().unwrap().get_or_insert(0);
            e.send_if_modified(|v| v.is_none() && v.replace(Ok(())).is_none());
        });
        Self {
            pid,
            stdio: Mutex::new(Stdio {
                stdin: Some(Box::new(host_in)),
                stdout: Some(Box::new(host_out)),
                stderr: None,
            }),
            exit,
            code,
        }
    }

    fn finish(&self, code: i64, result: Result<()>) -> bool {
        self.code.lock().unwrap().get_or_insert(code);
        self.exit
            .send_if_modified(|v| v.is_none() && v.replace(result).is_none())
    }
}

#[async_trait]
impl Process for FakeProcess {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn take_stdio(&self) -> Stdio {
        std::mem::take(&mut *self.stdio.lock().unwrap())
    }
    fn migration_state(&self) -> MigrationState {
        MigrationState::default()
    }
    async fn close_stdin(&self) -> Result<()> {
        self.stdio.lock().unwrap().stdin = None;
        Ok(())
    }
    async fn close_stdout(&self) -> Result<()> {
        self.stdio.lock().unwrap().stdout = None;
        Ok(())
    }
    async fn close_stderr(&self) -> Result<()> {
        self.stdio.lock().unwrap().stderr = None;
        Ok(())
    }
    async fn resize_console(&self, _w: u16, _h: u16) -> Result<()> {
        Err(Error::op(
            "fake::Process::ResizeConsole",
            ErrorKind::NotImplemented,
        ))
    }
    async fn kill(&self) -> Result<bool> {
        Ok(self.finish(137, Ok(())))
    }
    async fn signal(&self, options: Option<&SignalOptions>) -> Result<bool> {
        match options {
            None | Some(SignalOptions::Linux { signal: 9 }) => self.kill().await,
            Some(_) => Ok(false),
        }
    }
    async fn wait(&self) -> Result<()> {
        wait_slot(&self.exit).await
    }
    fn exit_code(&self) -> Result<i64> {
        match &*self.exit.borrow() {
            None => Err(Error::new(ErrorKind::InvalidProcessState)),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(())) => Ok(self.code.lock().unwrap().unwrap_or(-1)),
        }
    }
    async fn close(&self) -> Result<()> {
        self.finish(-1, Err(Error::new(ErrorKind::AlreadyClosed)));
        Ok(())
    }
}

struct FakeContainer {
    id: String,
    started: Mutex<bool>,
    next_pid: Mutex<u32>,
    exit: ExitSlot,
    modifications: Mutex<Vec<serde_json::Value>>,
}

impl FakeContainer {
    fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            started: Mutex::new(false),
            next_pid: Mutex::new(100),
            exit: watch::channel(None).0,
            modifications: Mutex::new(Vec::new()),
        }
    }
    fn stop(&self, result: Result<()>) {
        self.exit
            .send_if_modified(|v| v.is_none() && v.replace(result).is_none());
    }
}

#[async_trait]
impl ProcessHost for FakeContainer {
    async fn create_process(&self, config: &serde_json::Value) -> Result<Box<dyn Process>> {
        if !*self.started.lock().unwrap() {
            return Err(Error::op(
                "fake::Container::CreateProcess",
                crate::HResult::ERROR_VMCOMPUTE_INVALID_STATE,
            )
            .with_system(&self.id));
        }
        if config.get("CommandLine").is_none() {
            return Err(Error::new(ErrorKind::InvalidArgument(
                "no CommandLine".into(),
            )));
        }
        let mut pid = self.next_pid.lock().unwrap();
        *pid += 1;
        Ok(Box::new(FakeProcess::cat(*pid)))
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
        &self.id
    }
    async fn properties(&self, types: &[&str]) -> Result<serde_json::Value> {
        Ok(serde_json::json!({"Id": self.id, "State": "Running", "Queried": types}))
    }
    async fn properties_v2(&self, types: &[&str]) -> Result<serde_json::Value> {
        self.properties(types).await
    }
    async fn start(&self) -> Result<()> {
        *self.started.lock().unwrap() = true;
        Ok(())
    }
    async fn shutdown(&self) -> Result<()> {
        self.stop(Ok(()));
        Ok(())
    }
    async fn terminate(&self) -> Result<()> {
        self.stop(Ok(()));
        Ok(())
    }
    async fn wait(&self) -> Result<()> {
        wait_slot(&self.exit).await
    }
    async fn modify(&self, config: &serde_json::Value) -> Result<()> {
        self.modifications.lock().unwrap().push(config.clone());
        Ok(())
    }
    async fn set_cpu_group_affinities(&self, _a: &[GroupAffinity]) -> Result<()> {
        Err(Error::op(
            "fake::Container::SetCPUGroupAffinities",
            ErrorKind::NotImplemented,
        ))
    }
    async fn close(&self) -> Result<()> {
        self.stop(Err(Error::new(ErrorKind::AlreadyClosed)));
        Ok(())
    }
}

/// Backend-agnostic code, as the shim would write it.
async fn run_echo(host: &dyn ProcessHost, input: &[u8]) -> Result<(Vec<u8>, i64)> {
    let process = host
        .create_process(&serde_json::json!({"CommandLine": "cat"}))
        .await?;
    let mut stdio = process.take_stdio();
    assert!(
        process.take_stdio().stdin.is_none(),
        "stdio is handed out once"
    );
    let mut stdin = stdio.stdin.take().expect("stdin requested");
    let mut stdout = stdio.stdout.take().expect("stdout requested");
    stdin.write_all(input).await?;
    drop(stdin);
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).await?;
    process.wait().await?;
    Ok((out, process.exit_code()?))
}

#[tokio::test]
async fn container_lifecycle_through_dyn() {
    let containers: HashMap<String, Box<dyn Container>> = HashMap::from([(
        "c1".to_string(),
        Box::new(FakeContainer::new("c1")) as Box<dyn Container>,
    )]);
    let c = containers.get("c1").unwrap();
    assert_eq!(c.id(), "c1");
    assert_eq!(c.os(), Os::Linux);
    assert!(!c.is_oci());

    // Not started yet: the backend error keeps its HRESULT and context.
    let err = match c
        .create_process(&serde_json::json!({"CommandLine": "cat"}))
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("create before start must fail"),
    };
    assert!(crate::error::is_operation_invalid_state(&err));
    assert!(err
        .to_string()
        .starts_with("fake::Container::CreateProcess c1: "));

    c.start().await.unwrap();
    let (out, code) = run_echo(c.as_ref(), b"hello").await.unwrap();
    assert_eq!(out, b"hello");
    assert_eq!(code, 0);

    let props = c.properties(&["Statistics"]).await.unwrap();
    assert_eq!(props["Queried"][0], "Statistics");
    c.modify(&serde_json::json!({"ResourcePath": "Container/Memory/SizeInMB"}))
        .await
        .unwrap();
    let err = c
        .set_cpu_group_affinities(&[GroupAffinity::default()])
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotImplemented));

    // Many waiters, one exit.
    let shared: Arc<dyn Container> = Arc::new(FakeContainer::new("c2"));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let c = shared.clone();
            tokio::spawn(async move { c.wait().await })
        })
        .collect();
    shared.shutdown().await.unwrap();
    for w in waiters {
        w.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn process_kill_wait_and_close() {
    let c: Box<dyn Container> = Box::new(FakeContainer::new("c3"));
    c.start().await.unwrap();
    let p = c
        .create_process(&serde_json::json!({"CommandLine": "cat"}))
        .await
        .unwrap();
    assert_eq!(p.pid(), 101);
    assert_eq!(p.migration_state(), MigrationState::default());
    assert!(matches!(
        p.exit_code().unwrap_err().kind(),
        ErrorKind::InvalidProcessState
    ));
    assert!(p.resize_console(80, 25).await.is_err());
    assert!(!p
        .signal(Some(&SignalOptions::Windows {
            signal: WindowsSignal::CtrlC
        }))
        .await
        .unwrap());
    assert!(p.signal(None).await.unwrap());
    assert!(
        !p.kill().await.unwrap(),
        "second kill is not delivered again"
    );
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 137);

    // Close releases waiters of a running process with AlreadyClosed.
    let p2 = c
        .create_process(&serde_json::json!({"CommandLine": "cat"}))
        .await
        .unwrap();
    let _keep = p2.take_stdio(); // keep stdin open so the process keeps running
    p2.close().await.unwrap();
    assert!(is_already_closed(&p2.wait().await.unwrap_err()));
    assert!(is_already_closed(&p2.exit_code().unwrap_err()));

    c.close().await.unwrap();
    assert!(is_already_closed(&c.wait().await.unwrap_err()));
}

#[test]
fn signal_options_serialise_as_the_spec_says() {
    assert_eq!(
        serde_json::to_string(&SignalOptions::Linux { signal: 15 }).unwrap(),
        r#"{"Signal":15}"#
    );
    assert_eq!(
        serde_json::to_string(&SignalOptions::Windows {
            signal: WindowsSignal::CtrlShutdown
        })
        .unwrap(),
        r#"{"Signal":"CtrlShutdown"}"#
    );
    let back: SignalOptions = serde_json::from_str(r#"{"Signal":"CtrlBreak"}"#).unwrap();
    assert_eq!(
        back,
        SignalOptions::Windows {
            signal: WindowsSignal::CtrlBreak
        }
    );
    assert_eq!(Os::from_runtime_os_type(""), Some(Os::Windows));
    assert_eq!(Os::from_runtime_os_type("Linux"), Some(Os::Linux));
    assert_eq!(Os::from_runtime_os_type("plan9"), None);
    assert_eq!(Os::Windows.to_string(), "windows");
}

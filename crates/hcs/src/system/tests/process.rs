//! Processes of a computecore system against the simulator: stdio, exit codes and status
//! documents, kill and signal (through a second system handle), open and close rules.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::api::RawEvent;
use crate::cow::SignalOptions as SignalOptionsAlias;
use crate::error::Target;
use crate::error::{is_already_closed, is_already_stopped, is_not_exist};
use crate::fake::{FakeHcs, Injection};

#[tokio::test]
async fn process_stdio_exit_and_documents() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    let p = system
        .create_process(&params("cmd /c type con"))
        .await
        .unwrap();
    assert_eq!(
        fake.calls_of("HcsCreateProcess")[0].arg,
        params("cmd /c type con").to_string()
    );
    assert!(fake
        .exports()
        .contains(&"HcsWaitForOperationResultAndProcessInfo"));
    assert_eq!(fake.calls_of("HcsSetProcessCallback")[0].arg, "0");

    let mut stdio = p.take_stdio();
    assert!(stdio.stderr.is_none(), "stderr was not requested");
    let mut guest = fake.guest_stdio(ID, p.pid()).unwrap();
    stdio
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"ping")
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    guest
        .stdin
        .as_mut()
        .unwrap()
        .read_exact(&mut buf)
        .await
        .unwrap();
    assert_eq!(&buf, b"ping");
    guest
        .stdout
        .as_mut()
        .unwrap()
        .write_all(b"pong")
        .await
        .unwrap();
    drop(guest);
    let mut out = Vec::new();
    stdio
        .stdout
        .as_mut()
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert_eq!(out, b"pong");

    p.resize_console(120, 40).await.unwrap();
    p.close_stdin().await.unwrap();
    let modifies = fake.calls_of("HcsModifyProcess");
    assert_eq!(
        modifies[0].arg,
        r#"{"ConsoleSize":{"Height":40,"Width":120},"Operation":"ConsoleSize"}"#
    );
    assert_eq!(
        modifies[1].arg,
        r#"{"CloseHandle":{"Handle":"StdIn"},"Operation":"CloseHandle"}"#
    );
    let delivered = p
        .signal(Some(&SignalOptionsAlias::Windows {
            signal: crate::cow::WindowsSignal::CtrlC,
        }))
        .await
        .unwrap();
    assert!(delivered);
    assert_eq!(
        fake.calls_of("HcsSignalProcess")[0].arg,
        r#"{"Signal":"CtrlC"}"#
    );
    let props = p.properties().await.unwrap();
    assert_eq!(props["Exited"], false);

    assert!(matches!(
        p.exit_code().unwrap_err().kind(),
        ErrorKind::InvalidProcessState
    ));
    fake.exit_process(ID, p.pid(), 3_221_225_477);
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 3_221_225_477);
    // After exit, close_stdin does not ask HCS.
    p.close_stdin().await.unwrap();
    assert_eq!(fake.calls_of("HcsModifyProcess").len(), 2);

    p.close().await.unwrap();
    p.close().await.unwrap();
    assert_eq!(fake.calls_of("HcsCloseProcess").len(), 1);
    // The exit stays readable after close.
    assert_eq!(p.exit_code().unwrap(), 3_221_225_477);
    system.terminate().await.unwrap();
    system.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn kill_uses_a_second_system_handle() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    let p = system.create_process(&params("sleep")).await.unwrap();
    let before = fake.calls().len();
    assert!(p.kill().await.unwrap());
    let kill_calls: Vec<_> = fake.exports()[before..].to_vec();
    assert_eq!(
        kill_calls,
        [
            "HcsOpenComputeSystem",
            "HcsOpenProcess",
            "HcsCreateOperation",
            "HcsTerminateProcess",
            "HcsWaitForOperationResult",
            "HcsCloseOperation",
            "HcsCloseProcess",
            "HcsCloseComputeSystem"
        ]
    );
    p.wait().await.unwrap();
    assert_eq!(p.exit_code().unwrap(), 1);
    // Kill on a stopped process is an "already stopped" error.
    let err = p.kill().await.unwrap_err();
    assert_eq!(err.hresult(), Some(HResult::HCS_E_PROCESS_ALREADY_STOPPED));
    assert!(is_already_stopped(&err));
    assert_eq!(err.operation(), "hcs::Process::Kill");
    // Signal(None) is a kill.
    assert!(p.signal(None).await.is_err());
    p.close().await.unwrap();
    assert!(is_already_closed(&p.kill().await.unwrap_err()));
    system.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn kill_edge_cases() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;

    // Terminate says access denied (the process already exited): delivered.
    let p = system.create_process(&params("a")).await.unwrap();
    fake.inject(
        "HcsTerminateProcess",
        Injection::ResultFails {
            hr: 0x8007_0005_u32 as i32,
            document: None,
        },
    );
    assert!(p.kill().await.unwrap());

    // Opening the process for the kill says it is gone: delivered.
    let p2 = system.create_process(&params("b")).await.unwrap();
    fake.inject(
        "HcsOpenProcess",
        Injection::CallFails {
            hr: HResult::HRESULT_ERROR_NOT_FOUND.as_i32(),
            document: None,
        },
    );
    assert!(p2.kill().await.unwrap());

    // Any other open failure is an error.
    fake.inject(
        "HcsOpenProcess",
        Injection::CallFails {
            hr: HResult::ERROR_INVALID_DATA.as_i32(),
            document: None,
        },
    );
    let err = p2.kill().await.unwrap_err();
    assert_eq!(err.hresult(), Some(HResult::ERROR_INVALID_DATA));

    // No second system handle: the whole system is terminated and closed.
    fake.inject(
        "HcsOpenComputeSystem",
        Injection::CallFails {
            hr: HResult::ERROR_ACCESS_DENIED.as_i32(),
            document: None,
        },
    );
    assert!(p2.kill().await.unwrap());
    assert_eq!(fake.calls_of("HcsTerminateComputeSystem").len(), 1);
    system.wait().await.unwrap();
    for proc in [p, p2] {
        proc.close().await.unwrap();
    }
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn failed_signal_to_a_gone_process_force_releases_waiters() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    let p = system.create_process(&params("x")).await.unwrap();
    fake.inject(
        "HcsSignalProcess",
        Injection::ResultFails {
            hr: HResult::HRESULT_ERROR_NOT_FOUND.as_i32(),
            document: None,
        },
    );
    let delivered = p
        .signal(Some(&SignalOptionsAlias::Linux { signal: 15 }))
        .await
        .unwrap();
    assert!(!delivered);
    assert!(!p.stopped());
    // Paused clock: waiting auto-advances to the 1 s force release.
    let err = p.wait().await.unwrap_err();
    assert!(is_not_exist(&err), "{err}");
    assert!(p.exit_code().is_err());

    // Other failures are "not delivered" without releasing anybody.
    let q = system.create_process(&params("y")).await.unwrap();
    fake.inject(
        "HcsSignalProcess",
        Injection::ResultFails {
            hr: 0x8007_0005_u32 as i32,
            document: None,
        },
    );
    assert!(!q
        .signal(Some(&SignalOptionsAlias::Linux { signal: 15 }))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!q.stopped());
    for proc in [p, q] {
        proc.close().await.unwrap();
    }
    system.close().await.unwrap();
}

#[tokio::test]
async fn create_process_fallback_and_failure() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;

    // The wait fails but HCS returned a handle: HcsGetProcessInfo saves the day.
    fake.inject(
        "HcsCreateProcess",
        Injection::SimulatedThenFails {
            hr: HResult::HCS_E_PROCESS_INFO_NOT_AVAILABLE.as_i32(),
            document: None,
        },
    );
    let p = system.create_process(&params("fallback")).await.unwrap();
    assert!(fake.exports().contains(&"HcsGetProcessInfo"));
    assert!(p.pid() > 0);
    p.close().await.unwrap();

    // Both fail: the handle is closed and the error names the command line.
    fake.inject(
        "HcsCreateProcess",
        Injection::SimulatedThenFails {
            hr: HResult::HCS_E_PROCESS_INFO_NOT_AVAILABLE.as_i32(),
            document: None,
        },
    );
    fake.inject(
        "HcsGetProcessInfo",
        Injection::ResultFails {
            hr: HResult::ERROR_INVALID_HANDLE.as_i32(),
            document: None,
        },
    );
    let err = system
        .create_process(&params("doomed.exe /x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.hresult(),
        Some(HResult::HCS_E_PROCESS_INFO_NOT_AVAILABLE)
    );
    assert_eq!(err.extra(), Some("doomed.exe /x"));
    assert_eq!(err.operation(), "hcs::System::CreateProcess");
    assert!(err.to_string().contains("; doomed.exe /x"));

    // Creating in a stopped system fails with the HCS error, nothing leaks.
    system.terminate().await.unwrap();
    let err = system.create_process(&params("late")).await.unwrap_err();
    assert!(crate::error::is_operation_invalid_state(&err), "{err}");
    system.close().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn open_process_and_close_rules() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    let p = system.create_process(&params("x")).await.unwrap();
    let opened = system.open_process(p.pid()).await.unwrap();
    assert!(
        opened.take_stdio().stdin.is_none(),
        "an opened process has no stdio"
    );
    let err = system.open_process(4242).await.unwrap_err();
    assert!(is_not_exist(&err));
    assert_eq!(
        err.target(),
        &Target::Process {
            system_id: ID.into(),
            pid: 4242
        }
    );

    // Both handles see the exit.
    fake.exit_process(ID, p.pid(), 0);
    opened.wait().await.unwrap();
    p.wait().await.unwrap();
    assert_eq!(opened.exit_code().unwrap(), 0);

    // Close releases a waiter of a running process with AlreadyClosed and −1.
    let q = system.create_process(&params("y")).await.unwrap();
    let w = {
        let q = q.clone();
        tokio::spawn(async move { q.wait().await })
    };
    q.close().await.unwrap();
    assert!(is_already_closed(&w.await.unwrap().unwrap_err()));
    assert!(is_already_closed(&q.exit_code().unwrap_err()));
    assert!(is_already_closed(
        &q.resize_console(1, 1).await.unwrap_err()
    ));

    // A process exit with a bad ProcessStatus becomes the wait error.
    let r = system.create_process(&params("z")).await.unwrap();
    fake.send_process_event(
        ID,
        r.pid(),
        RawEvent {
            event_type: crate::notification::event_type::PROCESS_EXITED,
            data: Some("{\"ExitCode\":".into()),
        },
    );
    let err = r.wait().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidResponse(_)), "{err}");
    assert_eq!(err.operation(), "hcs::Process::waitBackground");
    for proc in [p, opened, r] {
        proc.close().await.unwrap();
    }
    system.close().await.unwrap();
}

#[tokio::test]
async fn stdio_legacy_hands_out_cached_pipes_then_asks_hcs() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    let p = system.create_process(&params("x")).await.unwrap();
    let first = p.stdio_legacy().await.unwrap();
    assert!(first.stdin.is_some() && first.stdout.is_some());
    assert!(!fake.exports().contains(&"HcsGetProcessInfo"));
    // The simulator hands out no second set of pipes (handles 0 = not requested).
    let second = p.stdio_legacy().await.unwrap();
    assert!(second.stdin.is_none() && second.stdout.is_none() && second.stderr.is_none());
    assert!(fake.exports().contains(&"HcsGetProcessInfo"));
    p.close().await.unwrap();
    assert!(is_already_closed(&p.stdio_legacy().await.unwrap_err()));
    system.close().await.unwrap();
}

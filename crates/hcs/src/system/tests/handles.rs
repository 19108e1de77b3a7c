//! Handle hygiene of a computecore system: calls on a closed handle, handles released on
//! drop, and `close` waiting for calls in flight (also when their caller went away).

use std::time::Duration;

use super::*;
use crate::error::is_already_closed;
use crate::fake::{FakeHcs, SimState};

#[tokio::test]
async fn closed_handle_rules() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;
    let waiter = {
        let s = system.clone();
        tokio::spawn(async move { s.wait().await })
    };
    system.close().await.unwrap();
    let err = waiter.await.unwrap().unwrap_err();
    assert!(is_already_closed(&err));
    assert!(is_already_closed(&system.start().await.unwrap_err()));
    assert!(is_already_closed(&system.statistics().await.unwrap_err()));
    assert!(is_already_closed(
        &system.create_process(&params("cmd")).await.unwrap_err()
    ));
    // Shutdown/terminate on a closed handle do nothing.
    system.shutdown().await.unwrap();
    system.terminate().await.unwrap();
    assert_eq!(fake.open_handles(), (0, 0, 0));
}

#[tokio::test]
async fn dropping_without_close_releases_handles() {
    let fake = FakeHcs::new();
    {
        let system = started(&fake).await;
        let p = system.create_process(&params("x")).await.unwrap();
        let _opened = system.open_process(p.pid()).await.unwrap();
        assert_eq!(fake.open_handles(), (1, 2, 0));
    }
    assert_eq!(fake.open_handles(), (0, 0, 0));
    // The system itself keeps running: dropping a handle does not stop it.
    assert_eq!(fake.system_state(ID), Some(SimState::Running));
}

async fn until(cond: impl Fn() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_calls_in_flight_even_when_their_caller_left() {
    let fake = FakeHcs::new();
    let system = started(&fake).await;

    // A call in flight keeps the handle open: close waits for it.
    let gate = fake.hold_next("HcsGetComputeSystemProperties");
    let call = {
        let s = system.clone();
        tokio::spawn(async move { s.statistics().await })
    };
    until(|| gate.entered()).await;
    let closer = {
        let s = system.clone();
        tokio::spawn(async move { s.close().await })
    };
    // Give a (wrong) close every chance to run before the call finishes; the order of the
    // recorded calls below is what is checked, not the timing.
    tokio::time::sleep(Duration::from_millis(20)).await;
    gate.open();
    assert_eq!(call.await.unwrap().unwrap().uptime_100ns, 2_450_000_000);
    closer.await.unwrap().unwrap();
    assert_close_after_the_held_call(&fake.exports());

    // The caller of a call in flight goes away: the call is not abandoned, and close still
    // waits for it to finish before closing the handle.
    let system = System::create(
        fake.clone(),
        "second",
        &container_doc(),
        Timeouts::default(),
    )
    .await
    .unwrap();
    let gate = fake.hold_next("HcsGetComputeSystemProperties");
    let call = {
        let s = system.clone();
        tokio::spawn(async move { s.statistics().await })
    };
    until(|| gate.entered()).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    let closer = {
        let s = system.clone();
        tokio::spawn(async move { s.close().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    gate.open();
    closer.await.unwrap().unwrap();
    // The abandoned caller's operation was still waited for and closed, before the handle.
    assert_eq!(fake.open_handles(), (0, 0, 0));
    let exports = fake.exports();
    let second = exports
        .iter()
        .rposition(|e| *e == "HcsCreateComputeSystem")
        .unwrap();
    assert_close_after_the_held_call(&exports[second..]);
}

/// The last `HcsGetComputeSystemProperties` is followed by its wait and operation close, and
/// only then by `HcsCloseComputeSystem`.
fn assert_close_after_the_held_call(exports: &[&str]) {
    let held = exports
        .iter()
        .rposition(|e| *e == "HcsGetComputeSystemProperties")
        .unwrap();
    assert_eq!(
        &exports[held..],
        [
            "HcsGetComputeSystemProperties",
            "HcsWaitForOperationResult",
            "HcsCloseOperation",
            "HcsCloseComputeSystem"
        ],
        "{exports:?}"
    );
}

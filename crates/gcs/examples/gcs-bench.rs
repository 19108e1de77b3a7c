//! Benchmark client for `bench/gcs.sh`: drives a real `gcs` (from `$GCS_BIN`) over the bridge
//! as the host does, using the integration tests' harness.
//!
//! `gcs-bench rss` — idle RSS (KiB) of gcs after negotiation.
//! `gcs-bench latency N` — median lifecycle (ms) of a `true` container over the bridge
//!   (Create, Start, init ExecuteProcess, WaitForProcess, exit notification,
//!   DeleteContainerState), then of `runc run` on the same bundle (create, start, wait,
//!   delete: runc run removes the container when it exits), their ratio, and the bridge's
//!   time to the init's exit alone. The rootfs is prepared outside the timing on both sides
//!   (overlay / bind mount).
//! `gcs-bench relay MIB` — stdout relay throughput (MiB/s) of `dd` writing MIB MiB.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bridge::messages::*;
use bridge::MessageType;
use common::*;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn rss() {
    let g = Gcs::negotiated();
    std::thread::sleep(Duration::from_millis(500));
    println!("{}", rss_kib(g.pid().unwrap()));
}

/// Milliseconds since `t`.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// One container lifecycle over the bridge, from Create to DeleteContainerState (what
/// `runc run` covers: create, start, wait, delete); returns ms to the end and to the exit,
/// and the phases (Create; Start + init ExecuteProcess; to the exit; exit notification +
/// DeleteContainerState).
fn bridge_run(g: &Gcs, id: &str) -> (f64, f64, [f64; 4]) {
    g.add_rootfs(id);
    let t0 = Instant::now();
    let r = g.create(id, &["true"], false);
    assert_eq!(result_of(&r), 0, "create: {}", body(&r));
    let created = ms(t0);
    assert_eq!(result_of(&g.simple(MessageType::Start, id)), 0);
    let (r, _) = g.execute(id, None, [false, false, false]);
    let pid: ExecuteProcessResponse = r.decode().unwrap();
    let started = ms(t0);
    let (res, code) = g.wait(id, pid.process_id);
    let exited = ms(t0);
    assert_eq!((res, code), (0, 0));
    g.next_notification(TIMEOUT).expect("notification");
    assert_eq!(
        result_of(&g.simple(MessageType::DeleteContainerState, id)),
        0
    );
    let dt = ms(t0);
    assert_eq!(result_of(&g.remove_rootfs(id)), 0);
    let phases = [created, started - created, exited - started, dt - exited];
    (dt, exited, phases)
}

/// `runc run` of a bundle with the same spec and rootfs; returns ms.
fn runc_run(g: &Gcs, id: &str) -> f64 {
    let bundle = g.bundle(id);
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let st = Command::new("mount")
        .args(["--bind"])
        .arg(&g.sb.base_rootfs)
        .arg(bundle.join("rootfs"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut spec = oci_spec(&bundle, &["true"], false);
    spec["linux"]["cgroupsPath"] = format!("/pods/{id}").into();
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let t0 = Instant::now();
    let st = Command::new("runc")
        .arg("--root")
        .arg(&g.sb.runc_root)
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let dt = t0.elapsed().as_secs_f64() * 1000.0;
    assert!(st.success());
    let _ = Command::new("umount").arg(bundle.join("rootfs")).status();
    dt
}

fn latency(n: usize) {
    std::env::set_var("GCS_LOGLEVEL", "warning");
    let g = Gcs::negotiated();
    // Warm up both paths once.
    let _ = bridge_run(&g, &unique("w"));
    runc_run(&g, &unique("w"));
    let mut b = Vec::new();
    let mut e = Vec::new();
    let mut r = Vec::new();
    let mut phases: [Vec<f64>; 4] = Default::default();
    for _ in 0..n {
        let (whole, exited, p) = bridge_run(&g, &unique("b"));
        b.push(whole);
        e.push(exited);
        for (all, one) in phases.iter_mut().zip(p) {
            all.push(one);
        }
        r.push(runc_run(&g, &unique("r")));
    }
    let (mb, me, mr) = (median(b), median(e), median(r));
    let [c, s, x, d] = phases.map(median);
    eprintln!(
        "bridge phases (medians, ms): create {c:.1}, start+execute {s:.1}, to the exit {x:.1}, notification+delete {d:.1}"
    );
    println!("{mb:.1} {mr:.1} {:.2} {me:.1}", mb / mr);
}

fn relay(mib: usize) {
    std::env::set_var("GCS_LOGLEVEL", "warning");
    let g = Gcs::negotiated();
    let id = unique("t");
    g.add_rootfs(&id);
    assert_eq!(result_of(&g.create(&id, &["sleep", "100000"], false)), 0);
    let (r, _) = g.execute(&id, None, [false, false, false]);
    let init: ExecuteProcessResponse = r.decode().unwrap();
    let count = format!("count={mib}");
    let (r, [_, out, _]) = g.execute(
        &id,
        Some(oci_process(&["dd", "if=/dev/zero", "bs=1M", &count], false)),
        [false, true, false],
    );
    let p: ExecuteProcessResponse = r.decode().unwrap();
    let mut out = out.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0usize;
    let t0 = Instant::now();
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(out);
    assert_eq!(total, mib << 20);
    assert_eq!(g.wait(&id, p.process_id), (0, 0));
    println!("{:.0}", total as f64 / (1 << 20) as f64 / secs);
    let _ = g.signal(&id, init.process_id, None);
    let _ = g.wait(&id, init.process_id);
    g.next_notification(TIMEOUT);
    let _ = g.simple(MessageType::DeleteContainerState, &id);
    let _ = g.remove_rootfs(&id);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("rss") => rss(),
        Some("latency") => latency(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20)),
        Some("relay") => relay(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2048)),
        _ => {
            eprintln!("usage: gcs-bench rss | latency N | relay MIB");
            std::process::exit(2);
        }
    }
}

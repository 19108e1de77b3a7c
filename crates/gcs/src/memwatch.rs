//! Memory notifications of a utility VM (spec §8 step 10), logged, never enforced:
//!
//! * **`/gcs` threshold**: a warning each time the GCS's own cgroup goes above
//!   `-gcs-mem-limit-bytes` (an early sign that the agent leaks or the VM is too small);
//! * **`/pods` OOM**: an error each time the kernel's OOM handling fires in the containers'
//!   parent cgroup (`/pods`, limited to total RAM minus `-root-mem-reserve-bytes`) or below.
//!
//! cgroup v1 has eventfd notifications for both (`cgroup.event_control` with
//! `memory.usage_in_bytes` and a threshold, or with `memory.oom_control`), which is what
//! the reference registers. cgroup v2 has no usage-threshold notification that does not
//! also throttle (`memory.high`), so the `/gcs` threshold is sampled every second there;
//! OOMs are counted in `/pods/memory.events` (hierarchical: children's OOMs included),
//! watched with inotify.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, PathContext, Result};

const ROOT: &str = "/sys/fs/cgroup";
/// How often the `/gcs` usage is sampled on cgroup v2.
const SAMPLE: Duration = Duration::from_secs(1);
/// The reference's message for both notifications.
pub const THRESHOLD_MSG: &str = "memory usage for cgroup exceeded threshold";
/// The message of an OOM in `/pods`.
pub const OOM_MSG: &str = "out of memory in cgroup";

/// Starts both watchers (utility VM only). Errors setting them up are returned; the
/// watchers then run on their own threads for the life of the agent.
pub fn start(gcs_threshold: u64, pods_limit: u64) -> Result<()> {
    if crate::cgroup::is_v2() {
        let gcs = Path::new(ROOT).join("gcs");
        let pods = Path::new(ROOT).join("pods");
        let inotify = watch_file(&pods.join("memory.events"))?;
        spawn("gcs-mem", move || sample_v2(&gcs, gcs_threshold))?;
        spawn("pods-oom", move || oom_v2(inotify, &pods, pods_limit))?;
    } else {
        let gcs = Path::new(ROOT).join("memory/gcs");
        let pods = Path::new(ROOT).join("memory/pods");
        let threshold = register_v1(&gcs, "memory.usage_in_bytes", Some(gcs_threshold))?;
        let oom = register_v1(&pods, "memory.oom_control", None)?;
        spawn("gcs-mem", move || {
            events_v1(threshold, &gcs, "/gcs", gcs_threshold)
        })?;
        spawn("pods-oom", move || {
            events_v1(oom, &pods, "/pods", pods_limit)
        })?;
    }
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 * 1024)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::io(format!("spawn the {name} watcher"), e))
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `<key> <value>` lines (memory.events, memory.stat).
pub fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether a usage sample crosses the threshold upward (edge-triggered: one warning per
/// crossing, re-armed when usage drops back to or below it).
pub fn crossed(above: &mut bool, usage: u64, threshold: u64) -> bool {
    let now = usage > threshold;
    let fire = now && !*above;
    *above = now;
    fire
}

fn sample_v2(gcs: &Path, threshold: u64) {
    let (mut above, mut count) = (false, 0u64);
    loop {
        match read_u64(&gcs.join("memory.current")) {
            Some(usage) if crossed(&mut above, usage, threshold) => {
                count += 1;
                tracing::warn!(
                    cgroup = "/gcs",
                    threshold_bytes = threshold,
                    usage_bytes = usage,
                    count,
                    "{THRESHOLD_MSG}"
                );
            }
            Some(_) => {}
            None => {
                tracing::error!(
                    cgroup = "/gcs",
                    "memory.current unreadable; threshold watch stopped"
                );
                return;
            }
        }
        std::thread::sleep(SAMPLE);
    }
}

/// An inotify fd watching `file` for modification.
fn watch_file(file: &Path) -> Result<OwnedFd> {
    use rustix::fs::inotify;
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC)
        .map_err(|e| Error::io("inotify_init1", e.into()))?;
    inotify::add_watch(&fd, file, inotify::WatchFlags::MODIFY)
        .map_err(|e| Error::path("watch", file, e.into()))?;
    Ok(fd)
}

fn oom_v2(inotify: OwnedFd, pods: &Path, limit: u64) {
    let events = pods.join("memory.events");
    let read = || std::fs::read_to_string(&events).unwrap_or_default();
    let mut seen = counter(&read(), "oom_kill");
    let mut f = File::from(inotify);
    let mut buf = [0u8; 4096];
    loop {
        if let Err(e) = f.read(&mut buf) {
            tracing::error!(cgroup = "/pods", error = %e, "inotify read failed; OOM watch stopped");
            return;
        }
        let text = read();
        let kills = counter(&text, "oom_kill");
        if kills > seen {
            let usage = read_u64(&pods.join("memory.current")).unwrap_or(0);
            tracing::error!(
                cgroup = "/pods",
                limit_bytes = limit,
                usage_bytes = usage,
                oom = counter(&text, "oom"),
                oom_kill = kills,
                new_kills = kills - seen,
                "{OOM_MSG}"
            );
            seen = kills;
        }
    }
}

/// The `cgroup.event_control` line: `<eventfd> <fd of file> [<threshold>]`.
pub fn event_control_line(efd: i32, file_fd: i32, threshold: Option<u64>) -> String {
    match threshold {
        Some(t) => format!("{efd} {file_fd} {t}"),
        None => format!("{efd} {file_fd}"),
    }
}

/// Registers a v1 memory event on `cgroup` for `file` (with `threshold` for usage).
fn register_v1(cgroup: &Path, file: &str, threshold: Option<u64>) -> Result<OwnedFd> {
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
        .map_err(|e| Error::io("eventfd", e.into()))?;
    let target: PathBuf = cgroup.join(file);
    let target_file = File::open(&target).with_path("open", &target)?;
    let control = cgroup.join("cgroup.event_control");
    let line = event_control_line(efd.as_raw_fd(), target_file.as_raw_fd(), threshold);
    std::fs::write(&control, line).with_path("write", &control)?;
    Ok(efd)
}

fn events_v1(efd: OwnedFd, cgroup: &Path, name: &str, bytes: u64) {
    let mut f = File::from(efd);
    let mut buf = [0u8; 8];
    let mut count = 0u64;
    loop {
        if let Err(e) = f.read_exact(&mut buf) {
            tracing::error!(cgroup = name, error = %e, "eventfd read failed; memory watch stopped");
            return;
        }
        // An event also comes when the cgroup is removed: not a crossing.
        if !cgroup.join("cgroup.event_control").exists() {
            return;
        }
        count += 1;
        let usage = read_u64(&cgroup.join("memory.usage_in_bytes")).unwrap_or(0);
        if name == "/pods" {
            tracing::error!(
                cgroup = name,
                limit_bytes = bytes,
                usage_bytes = usage,
                count,
                "{OOM_MSG}"
            );
        } else {
            tracing::warn!(
                cgroup = name,
                threshold_bytes = bytes,
                usage_bytes = usage,
                count,
                "{THRESHOLD_MSG}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_fires_once_per_upward_crossing() {
        let mut above = false;
        let fired: Vec<bool> = [10, 60, 70, 40, 55, 50, 51]
            .iter()
            .map(|u| crossed(&mut above, *u, 50))
            .collect();
        assert_eq!(fired, [false, true, false, false, true, false, true]);
    }

    #[test]
    fn memory_events_counters_are_read() {
        let text = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(counter(text, "oom_kill"), 2);
        assert_eq!(counter(text, "oom"), 3);
        assert_eq!(counter(text, "missing"), 0);
    }

    #[test]
    fn event_control_lines() {
        assert_eq!(event_control_line(5, 6, Some(52428800)), "5 6 52428800");
        assert_eq!(event_control_line(5, 7, None), "5 7");
    }
}

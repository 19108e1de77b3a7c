//! Container cgroup statistics for GetProperties `Statistics` (spec §3): containerd's cgroup
//! v1 `Metrics` shape (pids, cpu, memory; blkio, rdma and network are left zero), read from
//! cgroup v1 controllers or converted from cgroup v2 files.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether the machine uses the unified (v2) hierarchy.
pub fn is_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn read_kv(p: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

fn kv(list: &[(String, u64)], key: &str) -> u64 {
    list.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or(0)
}

fn v1(controller: &str, cgroups_path: &str) -> PathBuf {
    Path::new(CGROUP_ROOT)
        .join(controller)
        .join(cgroups_path.trim_start_matches('/'))
}

/// The metrics of the cgroup at `cgroups_path` (`linux.cgroupsPath`).
pub fn metrics(cgroups_path: &str) -> Value {
    if is_v2() {
        let dir = Path::new(CGROUP_ROOT).join(cgroups_path.trim_start_matches('/'));
        let cpu = read_kv(&dir.join("cpu.stat"));
        let mem = read_kv(&dir.join("memory.stat"));
        json!({
            "pids": {"current": read_u64(&dir.join("pids.current")), "limit": read_u64(&dir.join("pids.max"))},
            "cpu": {"usage": {
                "total": kv(&cpu, "usage_usec") * 1000,
                "kernel": kv(&cpu, "system_usec") * 1000,
                "user": kv(&cpu, "user_usec") * 1000,
            }},
            "memory": {
                "cache": kv(&mem, "file"),
                "rss": kv(&mem, "anon"),
                "usage": {"usage": read_u64(&dir.join("memory.current")), "limit": read_u64(&dir.join("memory.max"))},
            },
        })
    } else {
        let pids = v1("pids", cgroups_path);
        let cpu = v1("cpuacct", cgroups_path);
        let mem = v1("memory", cgroups_path);
        let stat = read_kv(&mem.join("memory.stat"));
        let cpustat = read_kv(&cpu.join("cpuacct.stat"));
        // cpuacct.stat is in USER_HZ ticks (100/s on Linux): convert to nanoseconds.
        let tick_ns = 10_000_000;
        json!({
            "pids": {"current": read_u64(&pids.join("pids.current")), "limit": read_u64(&pids.join("pids.max"))},
            "cpu": {"usage": {
                "total": read_u64(&cpu.join("cpuacct.usage")),
                "kernel": kv(&cpustat, "system") * tick_ns,
                "user": kv(&cpustat, "user") * tick_ns,
            }},
            "memory": {
                "cache": kv(&stat, "cache"),
                "rss": kv(&stat, "rss"),
                "usage": {
                    "usage": read_u64(&mem.join("memory.usage_in_bytes")),
                    "limit": read_u64(&mem.join("memory.limit_in_bytes")),
                    "max": read_u64(&mem.join("memory.max_usage_in_bytes")),
                    "failcnt": read_u64(&mem.join("memory.failcnt")),
                },
            },
        })
    }
}

/// Total RAM from `/proc/meminfo`, in bytes.
pub fn total_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Creates `/pods` (if needed) and limits it to total RAM minus `reserve` (utility VM only).
pub fn set_pods_limit(reserve: u64) -> crate::Result<()> {
    use crate::error::PathContext;
    let total = total_memory().unwrap_or(0);
    let limit = total.saturating_sub(reserve).max(1 << 20);
    let (dir, file) = if is_v2() {
        (Path::new(CGROUP_ROOT).join("pods"), "memory.max")
    } else {
        (
            Path::new(CGROUP_ROOT).join("memory/pods"),
            "memory.limit_in_bytes",
        )
    };
    std::fs::create_dir_all(&dir).with_path("mkdir", &dir)?;
    let p = dir.join(file);
    std::fs::write(&p, limit.to_string()).with_path("write", &p)
}

/// Creates `/gcs` and moves this process into it (utility VM only).
pub fn enter_gcs_cgroup() -> crate::Result<()> {
    use crate::error::PathContext;
    let pid = std::process::id().to_string();
    let dirs: Vec<PathBuf> = if is_v2() {
        vec![Path::new(CGROUP_ROOT).join("gcs")]
    } else {
        vec![Path::new(CGROUP_ROOT).join("memory/gcs")]
    };
    for d in dirs {
        std::fs::create_dir_all(&d).with_path("mkdir", &d)?;
        let p = d.join("cgroup.procs");
        std::fs::write(&p, &pid).with_path("write", &p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cgroup_reads_as_zero() {
        let m = metrics("/does/not/exist");
        assert_eq!(m["pids"]["current"], 0);
        assert!(m["memory"]["usage"].is_object());
    }
}

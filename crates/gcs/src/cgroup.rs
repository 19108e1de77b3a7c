//! Container cgroup statistics for GetProperties `Statistics` (spec §3): containerd's cgroup
//! v1 `Metrics` shape (pids, cpu, memory, memory_oom_control; blkio, rdma and network are
//! left zero), read from cgroup v1 controllers or converted from cgroup v2 files.
//!
//! `memory_oom_control.oom_kill` (how many processes the kernel's OOM killer ended in the
//! cgroup) is what lets the host tell an OOM kill from any other SIGKILL when the init
//! exits; the reference leaves it zero.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether the machine uses the unified (v2) hierarchy.
pub fn is_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

fn read(p: &Path) -> crate::Result<String> {
    use crate::error::PathContext;
    std::fs::read_to_string(p).with_path("read", p)
}

/// A single-value cgroup file; `max` (no limit, cgroup v2) reads as `u64::MAX`, as
/// containerd's conversion to the v1 `Metrics` shape does.
fn read_u64(p: &Path) -> crate::Result<u64> {
    let text = read(p)?;
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse()
        .map_err(|_| crate::Error::Invalid(format!("{}: not a number: {t:?}", p.display())))
}

/// A v1 `pids.max`: "max" (no limit) is 0, as containerd's cgroups v1 `Stat` reports it
/// (its v2 `Stat` reports the largest u64 instead, as [`read_u64`] does).
fn read_v1_pids_limit(p: &Path) -> crate::Result<u64> {
    if read(p)?.trim() == "max" {
        return Ok(0);
    }
    read_u64(p)
}

/// A flat-keyed cgroup file (`key value` per line), such as `memory.stat`.
struct Stat {
    path: PathBuf,
    values: Vec<(String, u64)>,
}

impl Stat {
    fn read(p: &Path) -> crate::Result<Self> {
        let values = read(p)?
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.to_string(), it.next()?.parse().ok()?))
            })
            .collect();
        Ok(Stat {
            path: p.to_path_buf(),
            values,
        })
    }

    fn get(&self, key: &str) -> crate::Result<u64> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                crate::Error::Invalid(format!("{} has no {key:?} entry", self.path.display()))
            })
    }
}

fn v1(controller: &str, cgroups_path: &str) -> PathBuf {
    Path::new(CGROUP_ROOT)
        .join(controller)
        .join(cgroups_path.trim_start_matches('/'))
}

/// The metrics of the cgroup at `cgroups_path` (`linux.cgroupsPath`). A file that cannot be
/// read or parsed is an error naming it, never a zero the host would take as a measurement.
pub fn metrics(cgroups_path: &str) -> crate::Result<Value> {
    if is_v2() {
        let dir = Path::new(CGROUP_ROOT).join(cgroups_path.trim_start_matches('/'));
        let cpu = Stat::read(&dir.join("cpu.stat"))?;
        let mem = Stat::read(&dir.join("memory.stat"))?;
        // Hierarchical (unless mounted with memory_localevents): kills in child cgroups count.
        let events = Stat::read(&dir.join("memory.events"))?;
        Ok(json!({
            "pids": {"current": read_u64(&dir.join("pids.current"))?, "limit": read_u64(&dir.join("pids.max"))?},
            "cpu": {"usage": {
                "total": cpu.get("usage_usec")?.saturating_mul(1000),
                "kernel": cpu.get("system_usec")?.saturating_mul(1000),
                "user": cpu.get("user_usec")?.saturating_mul(1000),
            }},
            "memory": {
                "cache": mem.get("file")?,
                "rss": mem.get("anon")?,
                "usage": {"usage": read_u64(&dir.join("memory.current"))?, "limit": read_u64(&dir.join("memory.max"))?},
            },
            "memory_oom_control": {"oom_kill_disable": 0, "under_oom": 0, "oom_kill": events.get("oom_kill")?},
        }))
    } else {
        let pids = v1("pids", cgroups_path);
        let cpu = v1("cpuacct", cgroups_path);
        let mem = v1("memory", cgroups_path);
        let stat = Stat::read(&mem.join("memory.stat"))?;
        let cpustat = Stat::read(&cpu.join("cpuacct.stat"))?;
        // `oom_kill` is there since Linux 4.13.
        let oom = Stat::read(&mem.join("memory.oom_control"))?;
        // cpuacct.stat is in USER_HZ ticks (100/s on Linux): convert to nanoseconds.
        let tick_ns: u64 = 10_000_000;
        Ok(json!({
            "pids": {"current": read_u64(&pids.join("pids.current"))?, "limit": read_v1_pids_limit(&pids.join("pids.max"))?},
            "cpu": {"usage": {
                "total": read_u64(&cpu.join("cpuacct.usage"))?,
                "kernel": cpustat.get("system")?.saturating_mul(tick_ns),
                "user": cpustat.get("user")?.saturating_mul(tick_ns),
            }},
            "memory": {
                "cache": stat.get("cache")?,
                "rss": stat.get("rss")?,
                "usage": {
                    "usage": read_u64(&mem.join("memory.usage_in_bytes"))?,
                    "limit": read_u64(&mem.join("memory.limit_in_bytes"))?,
                    "max": read_u64(&mem.join("memory.max_usage_in_bytes"))?,
                    "failcnt": read_u64(&mem.join("memory.failcnt"))?,
                },
            },
            "memory_oom_control": {
                "oom_kill_disable": oom.get("oom_kill_disable")?,
                "under_oom": oom.get("under_oom")?,
                "oom_kill": oom.get("oom_kill")?,
            },
        }))
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
    fn a_missing_cgroup_is_an_error_naming_the_file() {
        let e = metrics("/does/not/exist").unwrap_err().to_string();
        assert!(e.contains("/does/not/exist/"), "{e}");
    }

    #[test]
    fn values_max_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pids.max");
        std::fs::write(&p, "max\n").unwrap();
        assert_eq!(read_u64(&p).unwrap(), u64::MAX);
        assert_eq!(read_v1_pids_limit(&p).unwrap(), 0);
        std::fs::write(&p, "12\n").unwrap();
        assert_eq!(read_u64(&p).unwrap(), 12);
        assert_eq!(read_v1_pids_limit(&p).unwrap(), 12);
        std::fs::write(&p, "twelve\n").unwrap();
        assert!(read_u64(&p)
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        let st = dir.path().join("memory.stat");
        std::fs::write(&st, "anon 5\nfile 7\n").unwrap();
        let stat = Stat::read(&st).unwrap();
        assert_eq!(stat.get("file").unwrap(), 7);
        let e = stat.get("rss").unwrap_err().to_string();
        assert!(e.contains("memory.stat has no \"rss\" entry"), "{e}");
    }
}

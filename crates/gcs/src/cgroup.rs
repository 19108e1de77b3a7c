//! Container cgroup statistics for GetProperties `Statistics` (spec §3): containerd's cgroup
//! v1 `Metrics` shape (pids, cpu, memory, memory_oom_control; blkio, rdma and network are
//! left out), read from cgroup v1 controllers or converted from cgroup v2 files, encoded as
//! the reference's protobuf JSON tags do (`omitempty`: zeros are absent, and the host's
//! decoder reads an absent number as 0).
//!
//! `memory_oom_control.oom_kill` (how many processes the kernel's OOM killer ended in the
//! cgroup) is what lets the host tell an OOM kill from any other SIGKILL when the init
//! exits; the reference leaves it zero.

use std::path::{Path, PathBuf};

use serde_json::Value;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether the machine uses the unified (v2) hierarchy.
pub fn is_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

fn read(p: &Path) -> crate::Result<Option<String>> {
    match std::fs::read_to_string(p) {
        Ok(text) => Ok(Some(text)),
        // As the reference's `cg.Stat(cgroups.IgnoreNotExist)`: a file that is not there
        // (a controller not enabled, an older kernel) leaves its fields unset.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::Error::path("read", p, e)),
    }
}

/// A single-value cgroup file; `max` (no limit, cgroup v2) reads as `u64::MAX`, as
/// containerd's conversion to the v1 `Metrics` shape does. `None` if the file is missing.
fn read_u64(p: &Path) -> crate::Result<Option<u64>> {
    let Some(text) = read(p)? else {
        return Ok(None);
    };
    let t = text.trim();
    if t == "max" {
        return Ok(Some(u64::MAX));
    }
    t.parse()
        .map(Some)
        .map_err(|_| crate::Error::Invalid(format!("{}: not a number: {t:?}", p.display())))
}

/// A v1 `pids.max`: "max" (no limit) is 0, as containerd's cgroups v1 `Stat` reports it
/// (its v2 `Stat` reports the largest u64 instead, as [`read_u64`] does).
fn read_v1_pids_limit(p: &Path) -> crate::Result<Option<u64>> {
    if read(p)?.is_some_and(|t| t.trim() == "max") {
        return Ok(Some(0));
    }
    read_u64(p)
}

/// A flat-keyed cgroup file (`key value` per line), such as `memory.stat`; a key it does
/// not have is unset, as containerd's parsers leave it zero.
#[derive(Default)]
struct Stat {
    values: Vec<(String, u64)>,
}

impl Stat {
    /// The file's entries; empty if it does not exist.
    fn read(p: &Path) -> crate::Result<Self> {
        let values = read(p)?
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.to_string(), it.next()?.parse().ok()?))
            })
            .collect();
        Ok(Stat { values })
    }

    fn get(&self, key: &str) -> Option<u64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// A JSON object of containerd's `Metrics` as the reference's protobuf JSON tags
/// (`omitempty`) encode it: a zero number is left out, and so is a field that was not read;
/// a sub-object appears when any of its fields was read.
#[derive(Default)]
struct Obj {
    map: serde_json::Map<String, Value>,
    read: bool,
}

impl Obj {
    fn num(mut self, key: &str, v: Option<u64>) -> Self {
        if let Some(v) = v {
            self.read = true;
            if v != 0 {
                self.map.insert(key.into(), v.into());
            }
        }
        self
    }

    fn obj(mut self, key: &str, o: Obj) -> Self {
        if o.read {
            self.read = true;
            self.map.insert(key.into(), Value::Object(o.map));
        }
        self
    }

    fn value(self) -> Value {
        Value::Object(self.map)
    }
}

fn obj() -> Obj {
    Obj::default()
}

fn v1(controller: &str, cgroups_path: &str) -> PathBuf {
    Path::new(CGROUP_ROOT)
        .join(controller)
        .join(cgroups_path.trim_start_matches('/'))
}

/// The metrics of the cgroup at `cgroups_path` (`linux.cgroupsPath`). A cgroup that does
/// not exist is an error naming it; a file of it that does not exist leaves its fields
/// unset; a file that cannot be read or parsed is an error naming it, never a zero the host
/// would take as a measurement.
pub fn metrics(cgroups_path: &str) -> crate::Result<Value> {
    if is_v2() {
        let dir = Path::new(CGROUP_ROOT).join(cgroups_path.trim_start_matches('/'));
        metrics_v2(&dir)
    } else {
        let dirs = ["pids", "cpuacct", "memory"].map(|c| v1(c, cgroups_path));
        metrics_v1(&dirs[0], &dirs[1], &dirs[2])
    }
}

fn missing_cgroup(dir: &Path) -> crate::Error {
    crate::Error::path(
        "stat",
        dir,
        std::io::Error::from(std::io::ErrorKind::NotFound),
    )
}

fn metrics_v2(dir: &Path) -> crate::Result<Value> {
    if !dir.is_dir() {
        return Err(missing_cgroup(dir));
    }
    let cpu = Stat::read(&dir.join("cpu.stat"))?;
    let mem = Stat::read(&dir.join("memory.stat"))?;
    // Hierarchical (unless mounted with memory_localevents): kills in child cgroups count.
    let events = Stat::read(&dir.join("memory.events"))?;
    let ns = |v: Option<u64>| v.map(|v| v.saturating_mul(1000));
    Ok(obj()
        .obj(
            "pids",
            obj()
                .num("current", read_u64(&dir.join("pids.current"))?)
                .num("limit", read_u64(&dir.join("pids.max"))?),
        )
        .obj(
            "cpu",
            obj().obj(
                "usage",
                obj()
                    .num("total", ns(cpu.get("usage_usec")))
                    .num("kernel", ns(cpu.get("system_usec")))
                    .num("user", ns(cpu.get("user_usec"))),
            ),
        )
        .obj(
            "memory",
            obj()
                .num("cache", mem.get("file"))
                .num("rss", mem.get("anon"))
                .obj(
                    "usage",
                    obj()
                        .num("usage", read_u64(&dir.join("memory.current"))?)
                        .num("limit", read_u64(&dir.join("memory.max"))?),
                ),
        )
        .obj(
            "memory_oom_control",
            obj().num("oom_kill", events.get("oom_kill")),
        )
        .value())
}

fn metrics_v1(pids: &Path, cpu: &Path, mem: &Path) -> crate::Result<Value> {
    // As cgroup1.Load: controllers without the cgroup are skipped, none at all is an error.
    if ![pids, cpu, mem].iter().any(|d| d.is_dir()) {
        return Err(missing_cgroup(mem));
    }
    let stat = Stat::read(&mem.join("memory.stat"))?;
    let cpustat = Stat::read(&cpu.join("cpuacct.stat"))?;
    // `oom_kill` is there since Linux 4.13.
    let oom = Stat::read(&mem.join("memory.oom_control"))?;
    // cpuacct.stat is in USER_HZ ticks (100/s on Linux): convert to nanoseconds.
    let ticks = |v: Option<u64>| v.map(|v| v.saturating_mul(10_000_000));
    Ok(obj()
        .obj(
            "pids",
            obj()
                .num("current", read_u64(&pids.join("pids.current"))?)
                .num("limit", read_v1_pids_limit(&pids.join("pids.max"))?),
        )
        .obj(
            "cpu",
            obj().obj(
                "usage",
                obj()
                    .num("total", read_u64(&cpu.join("cpuacct.usage"))?)
                    .num("kernel", ticks(cpustat.get("system")))
                    .num("user", ticks(cpustat.get("user"))),
            ),
        )
        .obj(
            "memory",
            obj()
                .num("cache", stat.get("cache"))
                .num("rss", stat.get("rss"))
                .obj(
                    "usage",
                    obj()
                        .num("usage", read_u64(&mem.join("memory.usage_in_bytes"))?)
                        .num("limit", read_u64(&mem.join("memory.limit_in_bytes"))?)
                        .num("max", read_u64(&mem.join("memory.max_usage_in_bytes"))?)
                        .num("failcnt", read_u64(&mem.join("memory.failcnt"))?),
                ),
        )
        .obj(
            "memory_oom_control",
            obj()
                .num("oom_kill_disable", oom.get("oom_kill_disable"))
                .num("under_oom", oom.get("under_oom"))
                .num("oom_kill", oom.get("oom_kill")),
        )
        .value())
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
    use serde_json::json;

    #[test]
    fn a_missing_cgroup_is_an_error_naming_it() {
        let e = metrics("/does/not/exist").unwrap_err().to_string();
        assert!(e.contains("/does/not/exist"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let gone = d.path().join("gone");
        let e = metrics_v1(&gone, &gone, &gone).unwrap_err().to_string();
        assert!(e.contains("gone"), "{e}");
    }

    #[test]
    fn values_max_missing_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pids.max");
        assert_eq!(read_u64(&p).unwrap(), None);
        assert_eq!(read_v1_pids_limit(&p).unwrap(), None);
        std::fs::write(&p, "max\n").unwrap();
        assert_eq!(read_u64(&p).unwrap(), Some(u64::MAX));
        assert_eq!(read_v1_pids_limit(&p).unwrap(), Some(0));
        std::fs::write(&p, "12\n").unwrap();
        assert_eq!(read_u64(&p).unwrap(), Some(12));
        assert_eq!(read_v1_pids_limit(&p).unwrap(), Some(12));
        std::fs::write(&p, "twelve\n").unwrap();
        assert!(read_u64(&p)
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        // A read error other than "not there" still fails, naming the file.
        let e = read_u64(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("read "), "{e}");
        let st = dir.path().join("memory.stat");
        std::fs::write(&st, "anon 5\nfile 7\n").unwrap();
        let stat = Stat::read(&st).unwrap();
        assert_eq!(stat.get("file"), Some(7));
        assert_eq!(stat.get("rss"), None);
        assert_eq!(Stat::read(&dir.path().join("nope")).unwrap().get("x"), None);
    }

    #[test]
    fn missing_files_are_unset_and_zeros_are_omitted() {
        let d = tempfile::tempdir().unwrap();
        let (pids, cpu, mem) = (d.path().join("p"), d.path().join("c"), d.path().join("m"));
        for dir in [&pids, &cpu, &mem] {
            std::fs::create_dir(dir).unwrap();
        }
        // No pids.current (nor any pids file), no cpuacct.stat, no memory.failcnt.
        std::fs::write(cpu.join("cpuacct.usage"), "0\n").unwrap();
        std::fs::write(mem.join("memory.stat"), "cache 0\nrss 4096\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "8192\n").unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(mem.join("memory.max_usage_in_bytes"), "0\n").unwrap();
        std::fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .unwrap();
        let m = metrics_v1(&pids, &cpu, &mem).unwrap();
        assert_eq!(
            m,
            json!({
                "cpu": {"usage": {}},
                "memory": {
                    "rss": 4096,
                    "usage": {"usage": 8192, "limit": 9223372036854771712u64},
                },
                "memory_oom_control": {},
            })
        );
        std::fs::write(pids.join("pids.current"), "3\n").unwrap();
        std::fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        let m = metrics_v1(&pids, &cpu, &mem).unwrap();
        assert_eq!(m["pids"], json!({"current": 3}));
        assert_eq!(m["memory_oom_control"], json!({"oom_kill": 2}));

        // cgroup v2: the same rules.
        let v2 = d.path().join("v2");
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v2.join("cpu.stat"), "usage_usec 2\nuser_usec 0\n").unwrap();
        std::fs::write(v2.join("pids.max"), "max\n").unwrap();
        let m = metrics_v2(&v2).unwrap();
        assert_eq!(
            m,
            json!({"pids": {"limit": u64::MAX}, "cpu": {"usage": {"total": 2000}}})
        );
        // A file that exists but cannot be read as a number is still an error.
        std::fs::write(v2.join("pids.current"), "three\n").unwrap();
        assert!(metrics_v2(&v2).is_err());
    }
}

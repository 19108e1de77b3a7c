//! Container statistics: the GCS's `LCOWMetrics` (containerd's cgroup v1 `Metrics` as
//! JSON) converted to the protobuf message containerd decodes.
//!
//! On a Linux host the Stats RPC returns `io.containerd.cgroups.v1.Metrics` itself: that
//! is what containerd's Linux CRI (`ContainerStats`) and `ctr task metrics` decode. On a
//! Windows host it is wrapped in the reference's `containerd.runhcs.stats.v1.Statistics`
//! (`linux` field), which containerd's Windows CRI decodes.

use containerd_shim_protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryOomControl, MemoryStat, Metrics, PidsStat,
};
use containerd_shim_protos::protobuf::MessageField;
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonMetrics {
    pids: JsonPids,
    cpu: JsonCpu,
    memory: JsonMemory,
    memory_oom_control: JsonOomControl,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonOomControl {
    oom_kill_disable: u64,
    under_oom: u64,
    oom_kill: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonPids {
    current: u64,
    limit: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonCpu {
    usage: JsonCpuUsage,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonCpuUsage {
    total: u64,
    kernel: u64,
    user: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonMemory {
    cache: u64,
    rss: u64,
    usage: JsonMemoryEntry,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonMemoryEntry {
    usage: u64,
    limit: u64,
    max: u64,
    failcnt: u64,
}

/// Converts the GCS's metrics JSON (from GetProperties `Statistics`) to the protobuf
/// message. Unknown fields are ignored; a value of the wrong type is an error.
pub fn metrics_from_json(v: &serde_json::Value) -> Result<Metrics> {
    let m = parse(v)?;
    Ok(Metrics {
        pids: MessageField::some(PidsStat {
            current: m.pids.current,
            limit: m.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(CPUStat {
            usage: MessageField::some(CPUUsage {
                total: m.cpu.usage.total,
                kernel: m.cpu.usage.kernel,
                user: m.cpu.usage.user,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(MemoryStat {
            cache: m.memory.cache,
            rss: m.memory.rss,
            usage: MessageField::some(MemoryEntry {
                usage: m.memory.usage.usage,
                limit: m.memory.usage.limit,
                max: m.memory.usage.max,
                failcnt: m.memory.usage.failcnt,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory_oom_control: MessageField::some(MemoryOomControl {
            oom_kill_disable: m.memory_oom_control.oom_kill_disable,
            under_oom: m.memory_oom_control.under_oom,
            oom_kill: m.memory_oom_control.oom_kill,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn parse(v: &serde_json::Value) -> Result<JsonMetrics> {
    JsonMetrics::deserialize(v)
        .map_err(|e| Error::Other(format!("the guest's metrics are malformed: {e}")))
}

/// How many processes of the container the kernel's OOM killer ended, from the GCS's
/// metrics JSON (`memory_oom_control.oom_kill`; 0 from a guest that does not report it,
/// as the reference's).
pub fn oom_kills(v: &serde_json::Value) -> Result<u64> {
    Ok(parse(v)?.memory_oom_control.oom_kill)
}

/// The `Any` the Stats RPC returns for `metrics` on this platform (see the module docs).
pub fn stats_any(
    metrics: Metrics,
) -> Result<containerd_shim_protos::protobuf::well_known_types::any::Any> {
    if cfg!(windows) {
        use containerd_shim_protos::windows::stats::Statistics;
        let mut s = Statistics::new();
        s.set_linux(metrics);
        crate::options::pack(&s)
    } else {
        crate::options::pack(&metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcs_metrics_json_converts() {
        let v = serde_json::json!({
            "pids": {"current": 3, "limit": 100},
            "cpu": {"usage": {"total": 5000, "kernel": 1000, "user": 4000}},
            "memory": {"cache": 10, "rss": 20, "usage": {"usage": 30, "limit": 40}},
            "memory_oom_control": {"oom_kill_disable": 0, "under_oom": 1, "oom_kill": 2},
            "future": {"x": 1}
        });
        assert_eq!(oom_kills(&v).unwrap(), 2);
        assert_eq!(oom_kills(&serde_json::json!({})).unwrap(), 0);
        assert!(oom_kills(&serde_json::json!({"memory_oom_control": {"oom_kill": -1}})).is_err());
        let m = metrics_from_json(&v).unwrap();
        assert_eq!(
            (
                m.memory_oom_control.under_oom,
                m.memory_oom_control.oom_kill
            ),
            (1, 2)
        );
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.cpu.usage.total, 5000);
        assert_eq!(m.memory.usage.limit, 40);
        assert!(metrics_from_json(&serde_json::json!({"pids": {"current": "x"}})).is_err());
        let any = stats_any(m).unwrap();
        let want = if cfg!(windows) {
            "containerd.runhcs.stats.v1.Statistics"
        } else {
            "io.containerd.cgroups.v1.Metrics"
        };
        assert_eq!(any.type_url, want);
    }
}

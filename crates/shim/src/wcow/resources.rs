//! Resource updates of a running process-isolated Windows container: the HCS
//! `ModifySettingRequest`s an Update with OCI `WindowsResources` makes
//! (`cmd/containerd-shim-runhcs-v1/task_hcs.go updateWCOWResources`), and the CPU affinity
//! the host applies to the container's job object (`internal/hcsoci/cpuaffinity.go`).

use hcs_schema::v2::{resource_paths, ContainerProcessor, ModifySettingRequest, RequestType};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Windows build 20H2: the first whose HCS updates a silo's processor settings.
pub const BUILD_20H2: u32 = 19042;
/// Windows Server 2022: the first that pins a silo to several processor groups.
pub const BUILD_LTSC2022: u32 = 20348;

const MIB: u64 = 1024 * 1024;

/// OCI `WindowsResources` (the parts an update uses).
#[derive(Deserialize, Default)]
#[serde(default)]
struct WindowsResources {
    memory: Option<MemoryResources>,
    cpu: Option<CpuResources>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MemoryResources {
    limit: Option<u64>,
}

#[derive(Deserialize, Default, serde::Serialize)]
#[serde(default)]
struct CpuResources {
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shares: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    affinity: Vec<CpuGroupAffinity>,
}

/// One OCI `WindowsCPUGroupAffinity` entry: the processors `mask` of processor `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct CpuGroupAffinity {
    /// Processor bit mask within the group.
    pub mask: u64,
    /// Processor group number.
    pub group: u32,
}

/// One request of an update, typed so that it encodes in Go's key order.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateRequest {
    /// `Container/Memory/SizeInMB` with the new size in MB as the bare settings value.
    Memory(ModifySettingRequest<u64>),
    /// `Container/Processor` with the new count, maximum or weight.
    Processor(ModifySettingRequest<ContainerProcessor>),
}

impl UpdateRequest {
    /// The request as JSON (object keys sorted; encode the typed request with
    /// `hcs_schema::json` where Go's key order matters).
    pub fn to_value(&self) -> Result<serde_json::Value> {
        match self {
            UpdateRequest::Memory(r) => serde_json::to_value(r),
            UpdateRequest::Processor(r) => serde_json::to_value(r),
        }
        .map_err(|e| Error::Other(format!("encode the update request: {e}")))
    }
}

/// What an update asks of a process-isolated container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdatePlan {
    /// `HcsModifyComputeSystem` requests, in the reference's order (memory, then CPU).
    pub requests: Vec<UpdateRequest>,
    /// CPU affinity to set on the container's silo job object (HCS ignores affinity in
    /// `Processor`); empty when the update asks for none.
    pub affinity: Vec<CpuGroupAffinity>,
}

/// The host facts an update depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// Logical processors of the host: a larger requested count is lowered to it.
    pub processors: i32,
    /// Windows build number (processor updates need 20H2; several affinity groups need
    /// Windows Server 2022).
    pub build: u32,
}

/// The update an OCI `WindowsResources` JSON asks of a process-isolated container on
/// `host`:
///
/// * `memory.limit` (bytes) → `Update` of `Container/Memory/SizeInMB` with the limit in MiB
///   rounded up to an even number (`NormalizeMemorySize`), the number itself as settings;
/// * `cpu`: exactly one of `count`, `maximum`, `shares` (or none of them with an
///   `affinity`), else InvalidArgument "invalid cpu resources request"; the one given →
///   `Update` of `Container/Processor` with `Count` (lowered to the host's processors),
///   `Maximum` or `Weight`; before 20H2 → Unimplemented as the reference;
/// * `cpu.affinity` → [`UpdatePlan::affinity`], each mask non-zero, several groups or a
///   group other than 0 only from Windows Server 2022 on (InvalidArgument otherwise).
///
/// Nothing to update → an empty plan (the reference does nothing and succeeds). Unlike
/// the reference, which sends the memory request before it validates the CPU part, the
/// whole update is validated first, so a refused update changes nothing.
pub fn update_plan(resources: &serde_json::Value, host: Host) -> Result<UpdatePlan> {
    let r: WindowsResources = hcs_schema::json::from_value(resources.clone()).map_err(|e| {
        Error::InvalidArgument(format!("update resources are not WindowsResources: {e}"))
    })?;
    let mut plan = UpdatePlan::default();
    if let Some(limit) = r.memory.and_then(|m| m.limit) {
        // Align up to an even number of MB, as HCS wants 2 MB granularity.
        let size_mb = (limit / MIB + 1) & !1;
        plan.requests.push(UpdateRequest::Memory(update(
            resource_paths::SILO_MEMORY,
            size_mb,
        )));
    }
    let Some(cpu) = r.cpu else {
        return Ok(plan);
    };
    let limits = [
        cpu.count.is_some(),
        cpu.shares.is_some(),
        cpu.maximum.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    if limits > 1 || (limits == 0 && cpu.affinity.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "invalid cpu resources request: exactly one of count, shares and maximum must be set (got {})",
            serde_json::to_string(&cpu).unwrap_or_default()
        )));
    }
    plan.affinity = validate_affinity(&cpu.affinity, host.build)?;
    if limits == 1 {
        if host.build < BUILD_20H2 {
            return Err(Error::Unimplemented(format!(
                "updating the processor limits of a process-isolated container needs Windows build {BUILD_20H2} or later (this is {})",
                host.build
            )));
        }
        let processor = ContainerProcessor {
            // Go's int32() of the uint64 count wraps; then it is capped at the host's.
            count: cpu.count.map_or(0, |c| (c as i32).min(host.processors)),
            maximum: cpu.maximum.map_or(0, i32::from),
            weight: cpu.shares.map_or(0, i32::from),
        };
        plan.requests.push(UpdateRequest::Processor(update(
            resource_paths::SILO_PROCESSOR,
            processor,
        )));
    }
    Ok(plan)
}

/// The ModifySettingRequest documents of an update (see [`update_plan`]) on this host,
/// its build taken as recent enough (HCS refuses on older ones). An affinity cannot be
/// sent as a request: Unimplemented, so that it is never dropped silently; callers that
/// can pin the job object use [`update_plan`].
pub fn update_requests(resources: &serde_json::Value) -> Result<Vec<serde_json::Value>> {
    let processors = std::thread::available_parallelism()
        .map_or(1, |n| i32::try_from(n.get()).unwrap_or(i32::MAX));
    let plan = update_plan(
        resources,
        Host {
            processors,
            build: u32::MAX,
        },
    )?;
    if !plan.affinity.is_empty() {
        return Err(Error::Unimplemented(
            "cpu affinity updates are applied to the container's job object, not through HCS requests".into(),
        ));
    }
    plan.requests.iter().map(UpdateRequest::to_value).collect()
}

/// `ValidateCPUAffinityEntries`: every mask non-zero; several entries or a non-zero group
/// only from Windows Server 2022 on.
pub fn validate_affinity(
    affinity: &[CpuGroupAffinity],
    build: u32,
) -> Result<Vec<CpuGroupAffinity>> {
    if let Some(i) = affinity.iter().position(|a| a.mask == 0) {
        return Err(Error::InvalidArgument(format!(
            "cpu affinity mask must be non-zero: entry {i} has zero mask"
        )));
    }
    match affinity {
        [_, _, ..] if build < BUILD_LTSC2022 => Err(Error::InvalidArgument(format!(
            "cpu affinity with multiple processor groups requires Windows Server 2022 or later: {} entries",
            affinity.len()
        ))),
        [a] if a.group != 0 && build < BUILD_LTSC2022 => Err(Error::InvalidArgument(format!(
            "cpu affinity with a non-zero processor group requires Windows Server 2022 or later: group {}",
            a.group
        ))),
        _ => Ok(affinity.to_vec()),
    }
}

fn update<S>(path: &str, settings: S) -> ModifySettingRequest<S> {
    ModifySettingRequest::host(RequestType::Update, path, settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOST: Host = Host {
        processors: 8,
        build: BUILD_LTSC2022,
    };

    fn encoded(plan: &UpdatePlan) -> Vec<String> {
        plan.requests
            .iter()
            .map(|r| match r {
                UpdateRequest::Memory(m) => hcs_schema::json::to_string(m).unwrap(),
                UpdateRequest::Processor(p) => hcs_schema::json::to_string(p).unwrap(),
            })
            .collect()
    }

    #[test]
    fn updates_become_the_reference_requests() {
        let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
            (
                json!({"memory": {"limit": 1_073_741_824u64}}),
                vec![
                    r#"{"ResourcePath":"Container/Memory/SizeInMB","RequestType":"Update","Settings":1024}"#,
                ],
            ),
            // 1025 MiB and a bit: 1025 rounds up to 1026.
            (
                json!({"memory": {"limit": 1025 * MIB + 5}}),
                vec![
                    r#"{"ResourcePath":"Container/Memory/SizeInMB","RequestType":"Update","Settings":1026}"#,
                ],
            ),
            // Below one MiB: 0 MB, still sent.
            (
                json!({"memory": {"limit": 1000}}),
                vec![
                    r#"{"ResourcePath":"Container/Memory/SizeInMB","RequestType":"Update","Settings":0}"#,
                ],
            ),
            (
                json!({"cpu": {"count": 2}}),
                vec![
                    r#"{"ResourcePath":"Container/Processor","RequestType":"Update","Settings":{"Count":2}}"#,
                ],
            ),
            // Lowered to the host's processors.
            (
                json!({"cpu": {"count": 64}}),
                vec![
                    r#"{"ResourcePath":"Container/Processor","RequestType":"Update","Settings":{"Count":8}}"#,
                ],
            ),
            (
                json!({"cpu": {"maximum": 5000}}),
                vec![
                    r#"{"ResourcePath":"Container/Processor","RequestType":"Update","Settings":{"Maximum":5000}}"#,
                ],
            ),
            (
                json!({"cpu": {"shares": 100}}),
                vec![
                    r#"{"ResourcePath":"Container/Processor","RequestType":"Update","Settings":{"Weight":100}}"#,
                ],
            ),
            (
                json!({"memory": {"limit": 2 * MIB}, "cpu": {"count": 1, "maximum": null}}),
                vec![
                    r#"{"ResourcePath":"Container/Memory/SizeInMB","RequestType":"Update","Settings":2}"#,
                    r#"{"ResourcePath":"Container/Processor","RequestType":"Update","Settings":{"Count":1}}"#,
                ],
            ),
            (json!({}), vec![]),
            (json!({"memory": {}}), vec![]),
            (
                json!({"memory": null, "cpu": null, "storage": {"iops": 3}}),
                vec![],
            ),
        ];
        for (resources, want) in cases {
            let plan = update_plan(&resources, HOST).unwrap();
            assert_eq!(encoded(&plan), want, "{resources}");
            assert!(plan.affinity.is_empty());
            let values = update_requests(&resources).unwrap();
            assert_eq!(values.len(), want.len());
            for (v, w) in values.iter().zip(&want) {
                let w: serde_json::Value = serde_json::from_str(w).unwrap();
                // The Count is lowered to this machine's processors, not HOST's.
                if w["Settings"].get("Count").is_none() {
                    assert_eq!(v, &w);
                }
            }
        }
    }

    #[test]
    fn affinity_goes_to_the_job_object() {
        let r = json!({"cpu": {"affinity": [{"mask": 3, "group": 0}, {"mask": 1, "group": 1}]}});
        let plan = update_plan(&r, HOST).unwrap();
        assert!(plan.requests.is_empty());
        assert_eq!(
            plan.affinity,
            [
                CpuGroupAffinity { mask: 3, group: 0 },
                CpuGroupAffinity { mask: 1, group: 1 }
            ]
        );
        let with_count = json!({"cpu": {"count": 2, "affinity": [{"mask": 15}]}});
        let plan = update_plan(&with_count, HOST).unwrap();
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.affinity, [CpuGroupAffinity { mask: 15, group: 0 }]);
        // update_requests cannot express an affinity: it refuses rather than drop it.
        let e = update_requests(&r).unwrap_err();
        assert!(matches!(e, Error::Unimplemented(_)), "{e:?}");
    }

    #[test]
    fn each_refusal_names_the_problem() {
        let old = Host {
            processors: 8,
            build: 17763,
        };
        let cases: Vec<(serde_json::Value, Host, &str, &str)> = vec![
            (
                json!({"cpu": {"count": 1, "shares": 2}}),
                HOST,
                "invalid",
                "exactly one",
            ),
            (
                json!({"cpu": {"count": 1, "maximum": 2, "shares": 3}}),
                HOST,
                "invalid",
                "exactly one",
            ),
            (
                json!({"cpu": {}}),
                HOST,
                "invalid",
                "invalid cpu resources request",
            ),
            (json!({"cpu": {"count": 2}}), old, "unimplemented", "19042"),
            (
                json!({"cpu": {"affinity": [{"mask": 0}]}}),
                HOST,
                "invalid",
                "entry 0 has zero mask",
            ),
            (
                json!({"cpu": {"affinity": [{"mask": 1}, {"mask": 1, "group": 1}]}}),
                old,
                "invalid",
                "multiple processor groups",
            ),
            (
                json!({"cpu": {"affinity": [{"mask": 1, "group": 2}]}}),
                old,
                "invalid",
                "group 2",
            ),
            (
                json!({"memory": {"limit": -1}}),
                HOST,
                "invalid",
                "not WindowsResources",
            ),
            (
                json!({"cpu": {"shares": 70000}}),
                HOST,
                "invalid",
                "not WindowsResources",
            ),
            (json!([1]), HOST, "invalid", "not WindowsResources"),
        ];
        for (r, host, kind, text) in cases {
            let e = update_plan(&r, host).unwrap_err();
            let got = match e {
                Error::InvalidArgument(_) => "invalid",
                Error::Unimplemented(_) => "unimplemented",
                _ => "other",
            };
            assert_eq!(got, kind, "{r}: {e}");
            assert!(e.to_string().contains(text), "{r}: {e}");
        }
        // A single group-0 entry is fine on any build.
        let plan = update_plan(&json!({"cpu": {"affinity": [{"mask": 1}]}}), old).unwrap();
        assert_eq!(plan.affinity.len(), 1);
    }
}

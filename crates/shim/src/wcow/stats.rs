//! Statistics of a process-isolated Windows container: HCS's `Statistics` property
//! converted to containerd's `containerd.runhcs.stats.v1.Statistics` with its `windows`
//! (`WindowsContainerStatistics`) field set (`task_hcs.go hcsPropertiesToWindowsStats`),
//! which containerd's Windows CRI decodes.

use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::windows::stats::{
    Statistics, WindowsContainerMemoryStatistics, WindowsContainerProcessorStatistics,
    WindowsContainerStatistics, WindowsContainerStorageStatistics,
};
use hcs_schema::go::GoTime;

use crate::error::{Error, Result};

/// containerd's Windows statistics from an HCS v1/v2 `Statistics` JSON (`Timestamp`,
/// `ContainerStartTime`, `Uptime100ns`, `Processor`, `Memory`, `Storage`), as the reference
/// converts it: times become protobuf timestamps (a missing time is Go's zero time,
/// 0001-01-01), 100 ns counts become nanoseconds (wrapping on overflow as Go's uint64
/// does), absent sub-statistics stay unset. A whole `Properties` response is accepted too:
/// its `Statistics` is used, and without one the result is the empty
/// `WindowsContainerStatistics` the reference returns. Malformed input → Other naming
/// what was wrong.
pub fn statistics(props: &serde_json::Value) -> Result<Statistics> {
    let stats = match props.as_object() {
        Some(map) => match map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Statistics"))
        {
            Some((_, s)) if s.is_null() => None,
            Some((_, s)) => Some(s),
            None => Some(props),
        },
        None if props.is_null() => None,
        None => {
            return Err(Error::Other(format!(
                "the container statistics are not a JSON object: {props}"
            )))
        }
    };
    let mut windows = WindowsContainerStatistics::new();
    if let Some(stats) = stats {
        let s: hcs_schema::v2::Statistics = hcs_schema::json::from_value(stats.clone())
            .map_err(|e| Error::Other(format!("the container statistics are malformed: {e}")))?;
        windows.timestamp = MessageField::some(timestamp("Timestamp", &s.timestamp)?);
        windows.container_start_time =
            MessageField::some(timestamp("ContainerStartTime", &s.container_start_time)?);
        windows.uptime_ns = s.uptime_100ns.wrapping_mul(100);
        if let Some(p) = s.processor {
            windows.processor = MessageField::some(WindowsContainerProcessorStatistics {
                total_runtime_ns: p.total_runtime_100ns.wrapping_mul(100),
                runtime_user_ns: p.runtime_user_100ns.wrapping_mul(100),
                runtime_kernel_ns: p.runtime_kernel_100ns.wrapping_mul(100),
                ..Default::default()
            });
        }
        if let Some(m) = s.memory {
            windows.memory = MessageField::some(WindowsContainerMemoryStatistics {
                memory_usage_commit_bytes: m.memory_usage_commit_bytes,
                memory_usage_commit_peak_bytes: m.memory_usage_commit_peak_bytes,
                memory_usage_private_working_set_bytes: m.memory_usage_private_working_set_bytes,
                ..Default::default()
            });
        }
        if let Some(st) = s.storage {
            windows.storage = MessageField::some(WindowsContainerStorageStatistics {
                read_count_normalized: st.read_count_normalized,
                read_size_bytes: st.read_size_bytes,
                write_count_normalized: st.write_count_normalized,
                write_size_bytes: st.write_size_bytes,
                ..Default::default()
            });
        }
    }
    let mut out = Statistics::new();
    out.set_windows(windows);
    Ok(out)
}

/// `timestamppb.New(t)`: seconds since the Unix epoch (negative before it) and the
/// nanoseconds within the second, the zone offset applied.
fn timestamp(what: &str, t: &GoTime) -> Result<Timestamp> {
    let (seconds, nanos) = unix(t.as_str())
        .ok_or_else(|| Error::Other(format!("statistics {what} {t} is not RFC 3339")))?;
    Ok(Timestamp {
        seconds,
        nanos,
        ..Default::default()
    })
}

/// An RFC 3339 time as HCS writes it (a process's `CreateTimestamp`) as a protobuf
/// timestamp; `None` if it is not one.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let t = GoTime::new(text)?;
    let (seconds, nanos) = unix(t.as_str())?;
    Some(Timestamp {
        seconds,
        nanos,
        ..Default::default()
    })
}

/// Parses the RFC 3339 text a [`GoTime`] holds (already validated) into Unix seconds and
/// nanoseconds. Fraction digits past the ninth are dropped, as Go's parser does.
fn unix(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(r)?;
        digits.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000_000;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            nanos += i64::from(d - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' => 0,
        sign @ (b'+' | b'-') => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some((secs, i32::try_from(nanos).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn windows(s: &Statistics) -> &WindowsContainerStatistics {
        assert!(s.has_windows(), "the windows field is set");
        s.windows()
    }

    #[test]
    fn hcs_statistics_convert_as_the_reference() {
        let props = json!({
            "Timestamp": "2024-05-06T07:08:09.1234567Z",
            "ContainerStartTime": "2024-05-06T07:00:00-07:00",
            "Uptime100ns": 48_000_000_000u64,
            "Processor": {"TotalRuntime100ns": 1000, "RuntimeUser100ns": 400, "RuntimeKernel100ns": 600},
            "Memory": {"MemoryUsageCommitBytes": 1000, "MemoryUsageCommitPeakBytes": 1500, "MemoryUsagePrivateWorkingSetBytes": 100},
            "Storage": {"ReadCountNormalized": 2, "ReadSizeBytes": 20, "WriteCountNormalized": 1, "WriteSizeBytes": 10},
            // v1 statistics carry network statistics; containerd's message has none.
            "Network": [{"EndpointId": "e"}]
        });
        let s = statistics(&props).unwrap();
        let w = windows(&s);
        // date -u -d 2024-05-06T07:08:09Z +%s = 1714979289
        assert_eq!(
            (w.timestamp.seconds, w.timestamp.nanos),
            (1_714_979_289, 123_456_700)
        );
        // 07:00 at -07:00 is 14:00 UTC.
        assert_eq!(w.container_start_time.seconds, 1_715_004_000);
        assert_eq!(w.container_start_time.nanos, 0);
        assert_eq!(w.uptime_ns, 4_800_000_000_000);
        assert_eq!(
            (
                w.processor.total_runtime_ns,
                w.processor.runtime_user_ns,
                w.processor.runtime_kernel_ns
            ),
            (100_000, 40_000, 60_000)
        );
        assert_eq!(
            (
                w.memory.memory_usage_commit_bytes,
                w.memory.memory_usage_commit_peak_bytes,
                w.memory.memory_usage_private_working_set_bytes
            ),
            (1000, 1500, 100)
        );
        assert_eq!(
            (
                w.storage.read_count_normalized,
                w.storage.read_size_bytes,
                w.storage.write_count_normalized,
                w.storage.write_size_bytes
            ),
            (2, 20, 1, 10)
        );
        // The same inside a Properties response.
        let wrapped = statistics(&json!({"Id": "c1", "Statistics": props})).unwrap();
        assert_eq!(wrapped, s);
        // The message packs under the reference's type URL.
        let any = crate::options::pack(&s).unwrap();
        assert_eq!(any.type_url, "containerd.runhcs.stats.v1.Statistics");
    }

    #[test]
    fn missing_parts_are_go_zero_values() {
        let s = statistics(&json!({"Uptime100ns": 5})).unwrap();
        let w = windows(&s);
        // timestamppb.New(time.Time{}): 0001-01-01T00:00:00Z.
        assert_eq!(w.timestamp.seconds, -62_135_596_800);
        assert_eq!(w.container_start_time.seconds, -62_135_596_800);
        assert_eq!(w.uptime_ns, 500);
        assert!(w.processor.is_none() && w.memory.is_none() && w.storage.is_none());
        // Null sub-statistics are nil pointers in Go.
        let s = statistics(&json!({"Processor": null, "Memory": {}})).unwrap();
        assert!(windows(&s).processor.is_none());
        assert_eq!(windows(&s).memory.memory_usage_commit_bytes, 0);
        assert!(windows(&s).memory.is_some());
        // No Statistics in a Properties response: empty windows statistics, no times.
        for empty in [json!({"Statistics": null}), serde_json::Value::Null] {
            let s = statistics(&empty).unwrap();
            assert!(windows(&s).timestamp.is_none(), "{empty}");
            assert_eq!(windows(&s).uptime_ns, 0);
        }
        // Go's uint64 multiplication wraps.
        let s = statistics(&json!({"Uptime100ns": u64::MAX})).unwrap();
        assert_eq!(windows(&s).uptime_ns, u64::MAX.wrapping_mul(100));
    }

    #[test]
    fn malformed_statistics_are_refused_with_what_was_wrong() {
        for (bad, text) in [
            (json!({"Uptime100ns": "x"}), "malformed"),
            (json!({"Uptime100ns": -1}), "malformed"),
            (json!({"Timestamp": "yesterday"}), "RFC 3339"),
            (
                json!({"Processor": {"TotalRuntime100ns": 1.5}}),
                "malformed",
            ),
            (json!({"Statistics": [1]}), "malformed"),
            (json!("stats"), "not a JSON object"),
            (json!(3), "not a JSON object"),
        ] {
            let e = statistics(&bad).unwrap_err();
            assert!(matches!(e, Error::Other(_)), "{bad}: {e:?}");
            assert!(e.to_string().contains(text), "{bad}: {e}");
        }
    }

    #[test]
    fn times_parse_like_go() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(unix("1969-12-31T23:59:59.5Z"), Some((-1, 500_000_000)));
        assert_eq!(unix("2000-02-29T12:00:00+01:30"), Some((951_820_200, 0)));
        assert_eq!(
            unix("2020-01-01T00:00:00.1234567891Z"),
            Some((1_577_836_800, 123_456_789))
        );
        assert_eq!(unix("9999-12-31T23:59:59Z"), Some((253_402_300_799, 0)));
    }
}

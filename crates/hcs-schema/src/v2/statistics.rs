//! Runtime statistics (`Statistics` property) and process details (`ProcessList` property).

use crate::go::GoTime;
use crate::macros::omitempty_struct;

omitempty_struct! {
    /// Runtime statistics of a compute system. The timestamps are `time.Time` values, always
    /// present; the sub-statistics are pointers. There are no network statistics in v2.
    pub struct Statistics {
        /// When the sample was taken.
        "Timestamp" timestamp: GoTime,
        /// When the container started.
        "ContainerStartTime" container_start_time: GoTime,
        /// Uptime in 100 ns units.
        "Uptime100ns" uptime_100ns: u64,
        /// Processor.
        "Processor" processor: Option<ProcessorStats>,
        /// Memory.
        "Memory" memory: Option<MemoryStats>,
        /// Storage.
        "Storage" storage: Option<StorageStats>,
    }
}

omitempty_struct! {
    /// Processor statistics, in 100 ns units.
    #[derive(Eq)]
    pub struct ProcessorStats {
        /// Total run time.
        "TotalRuntime100ns" total_runtime_100ns: u64,
        /// User-mode run time.
        "RuntimeUser100ns" runtime_user_100ns: u64,
        /// Kernel-mode run time.
        "RuntimeKernel100ns" runtime_kernel_100ns: u64,
    }
}

omitempty_struct! {
    /// Memory statistics.
    #[derive(Eq)]
    pub struct MemoryStats {
        /// Commit charge.
        "MemoryUsageCommitBytes" memory_usage_commit_bytes: u64,
        /// Peak commit charge.
        "MemoryUsageCommitPeakBytes" memory_usage_commit_peak_bytes: u64,
        /// Private working set.
        "MemoryUsagePrivateWorkingSetBytes" memory_usage_private_working_set_bytes: u64,
    }
}

omitempty_struct! {
    /// Storage statistics.
    #[derive(Eq)]
    pub struct StorageStats {
        /// Read operations.
        "ReadCountNormalized" read_count_normalized: u64,
        /// Bytes read.
        "ReadSizeBytes" read_size_bytes: u64,
        /// Write operations.
        "WriteCountNormalized" write_count_normalized: u64,
        /// Bytes written.
        "WriteSizeBytes" write_size_bytes: u64,
    }
}

omitempty_struct! {
    /// A process running in a compute system. `CreateTimestamp` is always present.
    #[derive(Eq)]
    pub struct ProcessDetails {
        /// Process id.
        "ProcessId" process_id: u32,
        /// Image name.
        "ImageName" image_name: String,
        /// Creation time.
        "CreateTimestamp" create_timestamp: GoTime,
        /// User time, 100 ns units.
        "UserTime100ns" user_time_100ns: u64,
        /// Kernel time, 100 ns units.
        "KernelTime100ns" kernel_time_100ns: u64,
        /// Commit charge.
        "MemoryCommitBytes" memory_commit_bytes: u64,
        /// Private working set.
        "MemoryWorkingSetPrivateBytes" memory_working_set_private_bytes: u64,
        /// Shared working set.
        "MemoryWorkingSetSharedBytes" memory_working_set_shared_bytes: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn zero_statistics_keep_the_timestamps() {
        assert_eq!(
            json::to_string(&Statistics::default()).unwrap(),
            r#"{"Timestamp":"0001-01-01T00:00:00Z","ContainerStartTime":"0001-01-01T00:00:00Z"}"#
        );
        assert_eq!(
            json::to_string(&ProcessDetails::default()).unwrap(),
            r#"{"CreateTimestamp":"0001-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn statistics_round_trip() {
        let doc = concat!(
            r#"{"Timestamp":"2024-05-06T07:08:09.1234567Z","ContainerStartTime":"2024-05-06T07:00:00-07:00","#,
            r#""Uptime100ns":4800000000,"Processor":{"TotalRuntime100ns":1000,"RuntimeUser100ns":400,"RuntimeKernel100ns":600},"#,
            r#""Memory":{"MemoryUsageCommitBytes":1000,"MemoryUsageCommitPeakBytes":1500,"MemoryUsagePrivateWorkingSetBytes":100},"#,
            r#""Storage":{"ReadCountNormalized":2,"ReadSizeBytes":20,"WriteCountNormalized":1,"WriteSizeBytes":10}}"#
        );
        let s: Statistics = json::from_str(doc).unwrap();
        assert_eq!(s.processor.as_ref().unwrap().runtime_kernel_100ns, 600);
        assert_eq!(s.timestamp.as_str(), "2024-05-06T07:08:09.1234567Z");
        assert_eq!(json::to_string(&s).unwrap(), doc);
    }

    #[test]
    fn gcs_process_list_entry_decodes() {
        // The Linux GCS only fills ProcessId.
        let p: ProcessDetails = json::from_str(r#"{"ProcessId":17}"#).unwrap();
        assert_eq!(p.process_id, 17);
        assert!(p.create_timestamp.is_zero());
    }
}

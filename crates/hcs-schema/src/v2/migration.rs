//! Live migration options and notifications (`migration.go`; hand-written in the reference,
//! no Swagger header).

use serde_json::Value;

use crate::go::{GoBytes, GoTime};
use crate::macros::{omitempty_struct, string_enum};

string_enum! {
    /// Side of the migration a workflow runs on.
    pub enum MigrationOrigin {
        /// The source host.
        Source = "Source",
        /// The destination host.
        Destination = "Destination",
    }
}

string_enum! {
    /// Memory transport.
    pub enum MigrationMemoryTransport {
        /// Memory copied over TCP/IP.
        Tcp = "TCP",
    }
}

string_enum! {
    /// Final state transition of a migrated VM.
    pub enum MigrationFinalOperation {
        /// Resume the VM.
        Resume = "Resume",
        /// Stop the VM.
        Stop = "Stop",
    }
}

omitempty_struct! {
    /// Options of the migration workflow. `Origin` and `MemoryTransport` are Go strings held
    /// by value (omitted when empty).
    pub struct MigrationInitializeOptions {
        /// Side of the migration.
        "Origin" origin: MigrationOrigin,
        /// Memory transport (required on the source at start and the destination at init).
        "MemoryTransport" memory_transport: MigrationMemoryTransport,
        /// Memory transfer throttling.
        "MemoryTransferThrottleParams" memory_transfer_throttle_params: Option<MemoryMigrationTransferThrottleParams>,
        /// Compression settings.
        "CompressionSettings" compression_settings: Option<MigrationCompressionSettings>,
        /// Verify memory checksums.
        "ChecksumVerification" checksum_verification: bool,
        /// Performance tracing.
        "PerfTracingEnabled" perf_tracing_enabled: bool,
        /// Cancel when the blackout threshold is exceeded.
        "CancelIfBlackoutThresholdExceeds" cancel_if_blackout_threshold_exceeds: bool,
        /// Extended timeout for cross-version migration.
        "PrepareMemoryTransferMode" prepare_memory_transfer_mode: bool,
        /// Compatibility data for the destination VM.
        "CompatibilityData" compatibility_data: Option<CompatibilityInfo>,
    }
}

omitempty_struct! {
    /// Throttling of the memory transfer; every field is a pointer in the reference.
    pub struct MemoryMigrationTransferThrottleParams {
        /// Skip throttling.
        "SkipThrottling" skip_throttling: Option<bool>,
        /// Throttling scale, percent (1–100).
        "ThrottlingScale" throttling_scale: Option<f64>,
        /// Minimum throttle percentage.
        "MinimumThrottlePercentage" minimum_throttle_percentage: Option<u8>,
        /// Brownout passes targeted before blackout.
        "TargetNumberOfBrownoutTransferPasses" target_number_of_brownout_transfer_passes: Option<u32>,
        /// Pass where throttling starts.
        "StartingBrownoutPassNumberForThrottling" starting_brownout_pass_number_for_throttling: Option<u32>,
        /// Maximum brownout passes before forcing blackout.
        "MaximumNumberOfBrownoutTransferPasses" maximum_number_of_brownout_transfer_passes: Option<u32>,
        /// Target blackout transfer time.
        "TargetBlackoutTransferTime" target_blackout_transfer_time: Option<u32>,
        /// Blackout duration that cancels the migration.
        "BlackoutTimeThresholdForCancellingMigration" blackout_time_threshold_for_cancelling_migration: Option<u32>,
    }
}

omitempty_struct! {
    /// Compression settings.
    #[derive(Eq)]
    pub struct MigrationCompressionSettings {
        /// (De)compression thread count.
        "ThrottleWorkerCount" throttle_worker_count: Option<u32>,
    }
}

omitempty_struct! {
    /// Opaque VM compatibility data.
    #[derive(Eq)]
    pub struct CompatibilityInfo {
        /// Raw data (Go `[]byte`: base64).
        "Data" data: GoBytes,
    }
}

omitempty_struct! {
    /// Options of `HcsLiveMigrationFinalization`.
    pub struct MigrationFinalizedOptions {
        /// Side of the migration.
        "Origin" origin: MigrationOrigin,
        /// Final state transition.
        "FinalizedOperation" finalized_operation: MigrationFinalOperation,
    }
}

omitempty_struct! {
    /// Options of the transfer phase.
    pub struct MigrationTransferOptions {
        /// Side of the migration.
        "Origin" origin: MigrationOrigin,
    }
}

omitempty_struct! {
    /// Options of a cancellation.
    pub struct MigrationCancelOptions {
        /// Side of the migration.
        "Origin" origin: MigrationOrigin,
    }
}

omitempty_struct! {
    /// Network settings of the migration socket.
    #[derive(Eq)]
    pub struct MigrationNetworkSettings {
        /// Session id of the source/destination connection.
        "SessionId" session_id: u32,
    }
}

omitempty_struct! {
    /// Options of starting a migration.
    pub struct MigrationStartOptions {
        /// Network settings of the provided socket.
        "NetworkSettings" network_settings: Option<MigrationNetworkSettings>,
    }
}

omitempty_struct! {
    /// Options of `HcsStartComputeSystem`.
    pub struct StartOptions {
        /// Migration settings on the destination side.
        "DestinationMigrationOptions" destination_migration_options: Option<MigrationStartOptions>,
    }
}

string_enum! {
    /// A live migration event.
    pub enum MigrationEvent {
        /// Unspecified.
        Unknown = "Unknown",
        /// Migration completed.
        MigrationDone = "MigrationDone",
        /// Blackout started.
        BlackoutStarted = "BlackoutStarted",
        /// The VM is offline.
        OfflineDone = "OfflineDone",
        /// The VM runs again after blackout.
        BlackoutExited = "BlackoutExited",
        /// Setup completed.
        SetupDone = "SetupDone",
        /// Still transferring.
        TransferInProgress = "TransferInProgress",
        /// Recovery performed.
        MigrationRecoveryDone = "MigrationRecoveryDone",
        /// Migration failed.
        MigrationFailed = "MigrationFailed",
    }
}

string_enum! {
    /// Result of a migration operation.
    pub enum MigrationResult {
        /// Invalid or unspecified.
        Invalid = "Invalid",
        /// Success.
        Success = "Success",
        /// Cancelled.
        MigrationCancelled = "MigrationCancelled",
        /// The guest cancelled.
        GuestInitiatedCancellation = "GuestInitiatedCancellation",
        /// Failed on the source.
        SourceMigrationFailed = "SourceMigrationFailed",
        /// Failed on the destination.
        DestinationMigrationFailed = "DestinationMigrationFailed",
        /// Recovery failed.
        MigrationRecoveryFailed = "MigrationRecoveryFailed",
    }
}

omitempty_struct! {
    /// Migration progress notification.
    pub struct OperationSystemMigrationNotificationInfo {
        /// Side of the migration.
        "Origin" origin: MigrationOrigin,
        /// Event.
        "Event" event: MigrationEvent,
        /// Outcome (terminal events).
        "Result" result: MigrationResult,
        /// Event-specific details (e.g. [`BlackoutExitedEventDetails`]).
        "AdditionalDetails" additional_details: Option<Value>,
    }
}

omitempty_struct! {
    /// Details of `BlackoutExited`. `BlackoutStopTimestamp` is a `time.Time`: always present.
    #[derive(Eq)]
    pub struct BlackoutExitedEventDetails {
        /// Blackout duration in milliseconds.
        "BlackoutDurationMilliseconds" blackout_duration_milliseconds: u64,
        /// When the blackout ended.
        "BlackoutStopTimestamp" blackout_stop_timestamp: GoTime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn initialize_options() {
        let o = MigrationInitializeOptions {
            origin: MigrationOrigin::Source,
            memory_transport: MigrationMemoryTransport::Tcp,
            compression_settings: Some(MigrationCompressionSettings {
                throttle_worker_count: Some(0),
            }),
            compatibility_data: Some(CompatibilityInfo {
                data: GoBytes(b"abc".to_vec()),
            }),
            ..Default::default()
        };
        let text = json::to_string(&o).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"Origin":"Source","MemoryTransport":"TCP","CompressionSettings":{"ThrottleWorkerCount":0},"#,
                r#""CompatibilityData":{"Data":"YWJj"}}"#
            )
        );
        assert_eq!(
            json::from_str::<MigrationInitializeOptions>(&text).unwrap(),
            o
        );
        assert_eq!(
            json::to_string(&MigrationInitializeOptions::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn notification_with_details() {
        let doc = concat!(
            r#"{"Origin":"Destination","Event":"BlackoutExited","Result":"Success","#,
            r#""AdditionalDetails":{"BlackoutDurationMilliseconds":120,"BlackoutStopTimestamp":"2024-05-06T07:08:09Z"}}"#
        );
        let n: OperationSystemMigrationNotificationInfo = json::from_str(doc).unwrap();
        assert_eq!(n.event, MigrationEvent::BlackoutExited);
        let d: BlackoutExitedEventDetails =
            json::from_value(n.additional_details.clone().unwrap()).unwrap();
        assert_eq!(d.blackout_duration_milliseconds, 120);
        assert_eq!(json::to_string(&n).unwrap(), doc);
        assert_eq!(
            json::to_string(&BlackoutExitedEventDetails::default()).unwrap(),
            r#"{"BlackoutStopTimestamp":"0001-01-01T00:00:00Z"}"#
        );
    }
}

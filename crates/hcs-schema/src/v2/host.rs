//! Host- and operation-level requests: CPU groups and processor limits, pause and save
//! options, guest time settings.

use serde_json::Value;

use crate::macros::{omitempty_struct, string_enum};

string_enum! {
    /// Operation of a [`HostProcessorModificationRequest`].
    pub enum CpuGroupOperation {
        /// Create a CPU group ([`CreateGroupOperation`]).
        CreateGroup = "CreateGroup",
        /// Delete a CPU group ([`DeleteGroupOperation`]).
        DeleteGroup = "DeleteGroup",
        /// Set a property of a CPU group ([`CpuGroupConfig`] with `GroupProperties`).
        SetProperty = "SetProperty",
    }
}

omitempty_struct! {
    /// Settings of a `CpuGroup` service modification.
    pub struct HostProcessorModificationRequest {
        /// Operation.
        "Operation" operation: Option<CpuGroupOperation>,
        /// Operation input.
        "OperationDetails" operation_details: Option<Value>,
    }
}

omitempty_struct! {
    /// Input of `CreateGroup`.
    #[derive(Eq)]
    pub struct CreateGroupOperation {
        /// Group GUID.
        "GroupId" group_id: String,
        /// Number of logical processors.
        "LogicalProcessorCount" logical_processor_count: u32,
        /// Logical processor indexes.
        "LogicalProcessors" logical_processors: Vec<u32>,
    }
}

omitempty_struct! {
    /// Input of `DeleteGroup`.
    #[derive(Eq)]
    pub struct DeleteGroupOperation {
        /// Group GUID.
        "GroupId" group_id: String,
    }
}

omitempty_struct! {
    /// A CPU group as the host reports it.
    pub struct CpuGroupConfig {
        /// Group GUID.
        "GroupId" group_id: String,
        /// Processors in the group.
        "Affinity" affinity: Option<CpuGroupAffinity>,
        /// Group properties.
        "GroupProperties" group_properties: Vec<CpuGroupProperty>,
        /// Hypervisor group id.
        "HypervisorGroupId" hypervisor_group_id: u64,
    }
}

omitempty_struct! {
    /// Processors of a CPU group.
    #[derive(Eq)]
    pub struct CpuGroupAffinity {
        /// Number of logical processors.
        "LogicalProcessorCount" logical_processor_count: u32,
        /// Logical processor indexes.
        "LogicalProcessors" logical_processors: Vec<u32>,
    }
}

omitempty_struct! {
    /// One property of a CPU group.
    #[derive(Eq)]
    pub struct CpuGroupProperty {
        /// Property code.
        "PropertyCode" property_code: u32,
        /// Property value.
        "PropertyValue" property_value: u32,
    }
}

omitempty_struct! {
    /// All CPU groups (service property `CpuGroup`).
    pub struct CpuGroupConfigurations {
        /// Groups.
        "CpuGroups" cpu_groups: Vec<CpuGroupConfig>,
    }
}

omitempty_struct! {
    /// Processor limits of a running VM (resource path
    /// `VirtualMachine/ComputeTopology/Processor/Limits`).
    #[derive(Eq)]
    pub struct ProcessorLimits {
        /// CPU limit.
        "Limit" limit: u64,
        /// CPU weight.
        "Weight" weight: u64,
        /// CPU reservation.
        "Reservation" reservation: u64,
        /// Maximum frequency in MHz.
        "MaximumFrequencyMHz" maximum_frequency_mhz: u32,
    }
}

string_enum! {
    /// How deeply a paused VM is suspended.
    pub enum PauseSuspensionLevel {
        /// Suspend only.
        Suspend = "Suspend",
        /// Trim memory lightly.
        MemoryLow = "MemoryLow",
        /// Trim memory moderately.
        MemoryMedium = "MemoryMedium",
        /// Trim memory aggressively.
        MemoryHigh = "MemoryHigh",
    }
}

string_enum! {
    /// Why a hosted system is paused.
    pub enum PauseReason {
        /// No reason given.
        None = "None",
        /// Paused to be saved.
        Save = "Save",
        /// Paused to become a template.
        Template = "Template",
    }
}

omitempty_struct! {
    /// Notification sent to a hosted system when it is paused.
    pub struct PauseNotification {
        /// Reason.
        "Reason" reason: Option<PauseReason>,
    }
}

omitempty_struct! {
    /// Options of `HcsPauseComputeSystem`.
    pub struct PauseOptions {
        /// Suspension level.
        "SuspensionLevel" suspension_level: Option<PauseSuspensionLevel>,
        /// Notification for hosted systems.
        "HostedNotification" hosted_notification: Option<PauseNotification>,
    }
}

string_enum! {
    /// Kind of save.
    pub enum SaveType {
        /// Save to a file.
        ToFile = "ToFile",
        /// Save as a template.
        AsTemplate = "AsTemplate",
    }
}

omitempty_struct! {
    /// Options of `HcsSaveComputeSystem`.
    pub struct SaveOptions {
        /// Kind of save.
        "SaveType" save_type: Option<SaveType>,
        /// Runtime state file.
        "RuntimeStateFilePath" runtime_state_file_path: String,
        /// Saved state file.
        "SaveStateFilePath" save_state_file_path: String,
    }
}

omitempty_struct! {
    /// A Win32 `SYSTEMTIME`.
    #[derive(Eq)]
    pub struct SystemTime {
        /// Year.
        "Year" year: i32,
        /// Month, 1–12.
        "Month" month: i32,
        /// Day of week, 0 = Sunday.
        "DayOfWeek" day_of_week: i32,
        /// Day of month.
        "Day" day: i32,
        /// Hour.
        "Hour" hour: i32,
        /// Minute.
        "Minute" minute: i32,
        /// Second.
        "Second" second: i32,
        /// Milliseconds.
        "Milliseconds" milliseconds: i32,
    }
}

omitempty_struct! {
    /// A Win32 `TIME_ZONE_INFORMATION`.
    #[derive(Eq)]
    pub struct TimeZoneInformation {
        /// UTC offset in minutes.
        "Bias" bias: i32,
        /// Standard time name.
        "StandardName" standard_name: String,
        /// Start of standard time.
        "StandardDate" standard_date: Option<SystemTime>,
        /// Standard time bias.
        "StandardBias" standard_bias: i32,
        /// Daylight time name.
        "DaylightName" daylight_name: String,
        /// Start of daylight time.
        "DaylightDate" daylight_date: Option<SystemTime>,
        /// Daylight time bias.
        "DaylightBias" daylight_bias: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn cpu_group_create_request() {
        let create = CreateGroupOperation {
            group_id: "9f2b2d3a-0000-0000-0000-000000000001".into(),
            logical_processor_count: 2,
            logical_processors: vec![0, 1],
        };
        let req = HostProcessorModificationRequest {
            operation: Some(CpuGroupOperation::CreateGroup),
            operation_details: Some(serde_json::to_value(&create).unwrap()),
        };
        let text = json::to_string(&req).unwrap();
        let back: HostProcessorModificationRequest = json::from_str(&text).unwrap();
        assert_eq!(back.operation, Some(CpuGroupOperation::CreateGroup));
        let details: CreateGroupOperation =
            json::from_value(back.operation_details.unwrap()).unwrap();
        assert_eq!(details, create);
    }

    #[test]
    fn pause_and_save_options() {
        let p = PauseOptions {
            suspension_level: Some(PauseSuspensionLevel::Suspend),
            hosted_notification: Some(PauseNotification {
                reason: Some(PauseReason::Save),
            }),
        };
        assert_eq!(
            json::to_string(&p).unwrap(),
            r#"{"SuspensionLevel":"Suspend","HostedNotification":{"Reason":"Save"}}"#
        );
        let s = SaveOptions {
            save_type: Some(SaveType::AsTemplate),
            ..Default::default()
        };
        assert_eq!(json::to_string(&s).unwrap(), r#"{"SaveType":"AsTemplate"}"#);
    }

    #[test]
    fn processor_limits_keys() {
        let l = ProcessorLimits {
            limit: 50_000,
            weight: 200,
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&l).unwrap(),
            r#"{"Limit":50000,"Weight":200}"#
        );
    }
}

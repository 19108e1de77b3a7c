//! The container notification (`0x30100101`, id 0), guest → host (spec §7).

use super::base::RequestBase;
use crate::hresult::Hresult;

super::string_enum! {
    /// `NotificationType`: how the container ended.
    NotificationType {
        /// Nothing.
        None = "None",
        /// Ended after SIGTERM (ShutdownGraceful, or SignalProcess 15 on init).
        GracefulExit = "GracefulExit",
        /// Ended after SIGKILL.
        ForcedExit = "ForcedExit",
        /// Ended on its own.
        UnexpectedExit = "UnexpectedExit",
        /// Reboot.
        Reboot = "Reboot",
        /// Constructed.
        Constructed = "Constructed",
        /// Started.
        Started = "Started",
        /// Paused.
        Paused = "Paused",
        /// Unknown.
        Unknown = "Unknown",
    }
}

super::string_enum! {
    /// `ActiveOperation`; always `None` from the Linux GCS.
    ActiveOperation {
        /// No operation.
        None = "None",
        /// Construct.
        Construct = "Construct",
        /// Start.
        Start = "Start",
        /// Pause.
        Pause = "Pause",
        /// Resume.
        Resume = "Resume",
        /// Shutdown.
        Shutdown = "Shutdown",
        /// Terminate.
        Terminate = "Terminate",
    }
}

super::message! {
    /// The container-exit notification. At most one per created container.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ContainerNotification {
        /// Container id, and the ActivityId of the original Create request.
        pub base: RequestBase,
        /// Exit type.
        #[serde(rename = "Type")]
        pub notification_type: NotificationType,
        /// Always `None`.
        #[serde(rename = "Operation")]
        pub operation: ActiveOperation,
        /// Always 0.
        #[serde(rename = "Result", default)]
        pub result: Hresult,
        /// Always omitted.
        #[serde(
            rename = "ResultInfo",
            default,
            skip_serializing_if = "String::is_empty"
        )]
        pub result_info: String,
    }
}

impl ContainerNotification {
    /// An exit notification as the GCS sends it.
    pub fn exit(
        container_id: impl Into<String>,
        activity_id: impl Into<String>,
        notification_type: NotificationType,
    ) -> Self {
        let mut base = RequestBase::new(container_id);
        base.activity_id = activity_id.into();
        Self {
            base,
            notification_type,
            operation: ActiveOperation::None,
            result: Hresult::S_OK,
            result_info: String::new(),
        }
    }
}

//! Compile-time checks of what crosses the Win32 boundary, evaluated by every Windows build
//! of the crate (x86_64 and aarch64, msvc and gnu; CI runs clippy for all three and links
//! the x86_64-gnu test binaries).
//!
//! * **Layouts**: size, alignment and field offsets of every struct passed to or read from
//!   computecore.dll and vmcompute.dll, stated in terms of the pointer size `P` so that the
//!   same assertions hold on both 64-bit architectures. A mismatch fails the build.
//! * **Callbacks**: the trampolines coerce to the metadata's callback types.
//! * **Constants**: the numbers the platform-neutral code uses (event types, event options,
//!   resource types, v1 notification codes, access rights) equal the metadata's.
//!
//! Differences from the hand-written declarations these replace: `HCS_EVENT` is 3 pointers
//! (`Type`, `EventData`, `Operation`; 24 bytes on 64-bit) where the old declaration stopped
//! after `EventData` (16 bytes); it is only ever read through HCS's pointer, so the old one
//! read the right fields. The v1 notification callback's context is `*const c_void` in the
//! metadata where the old declaration had `usize` (same size and passing).

use std::mem::{align_of, offset_of, size_of};

use windows_sys::core::GUID;
use windows_sys::Win32::System::HostComputeSystem::{
    self as hcs, HCS_EVENT, HCS_EVENT_CALLBACK, HCS_NOTIFICATION_CALLBACK, HCS_PROCESS_INFORMATION,
};

use super::computecore::event_trampoline;
use super::vmcompute::{notification_trampoline, DriverInfo, WcLayerDescriptor};
use crate::api::{event_options, resource_type};
use crate::notification::event_type;
use crate::v1::notification as v1;

/// The pointer size.
const P: usize = size_of::<usize>();

// The metadata's structs.
const _: () = {
    assert!(size_of::<HCS_PROCESS_INFORMATION>() == 8 + 3 * P);
    assert!(align_of::<HCS_PROCESS_INFORMATION>() == P);
    assert!(offset_of!(HCS_PROCESS_INFORMATION, ProcessId) == 0);
    assert!(offset_of!(HCS_PROCESS_INFORMATION, Reserved) == 4);
    assert!(offset_of!(HCS_PROCESS_INFORMATION, StdInput) == 8);
    assert!(offset_of!(HCS_PROCESS_INFORMATION, StdOutput) == 8 + P);
    assert!(offset_of!(HCS_PROCESS_INFORMATION, StdError) == 8 + 2 * P);

    assert!(size_of::<HCS_EVENT>() == 3 * P);
    assert!(align_of::<HCS_EVENT>() == P);
    assert!(offset_of!(HCS_EVENT, Type) == 0);
    assert!(offset_of!(HCS_EVENT, EventData) == P);
    assert!(offset_of!(HCS_EVENT, Operation) == 2 * P);

    assert!(size_of::<GUID>() == 16);
    assert!(align_of::<GUID>() == 4);
    assert!(offset_of!(GUID, data2) == 4);
    assert!(offset_of!(GUID, data3) == 6);
    assert!(offset_of!(GUID, data4) == 8);
};

// The hand-declared vmcompute structs (not in the metadata).
const _: () = {
    assert!(size_of::<DriverInfo>() == 2 * P);
    assert!(align_of::<DriverInfo>() == P);
    assert!(offset_of!(DriverInfo, home_dir) == P);

    assert!(size_of::<WcLayerDescriptor>() == 24 + P);
    assert!(align_of::<WcLayerDescriptor>() == P);
    assert!(offset_of!(WcLayerDescriptor, layer_id) == 0);
    assert!(offset_of!(WcLayerDescriptor, flags) == 16);
    assert!(offset_of!(WcLayerDescriptor, path) == 24);
};

// The trampolines have the metadata's callback types.
const _: HCS_EVENT_CALLBACK = Some(event_trampoline);
const _: HCS_NOTIFICATION_CALLBACK = Some(notification_trampoline);

// The neutral code's numbers are Microsoft's. (The metadata's enums are `i32`; the crate
// carries the same bits as `u32`.)
const _: () = {
    assert!(event_type::INVALID == hcs::HcsEventInvalid as u32);
    assert!(event_type::SYSTEM_EXITED == hcs::HcsEventSystemExited as u32);
    assert!(event_type::SYSTEM_CRASH_INITIATED == hcs::HcsEventSystemCrashInitiated as u32);
    assert!(event_type::SYSTEM_CRASH_REPORT == hcs::HcsEventSystemCrashReport as u32);
    assert!(
        event_type::SYSTEM_RDP_ENHANCED_MODE_STATE_CHANGED
            == hcs::HcsEventSystemRdpEnhancedModeStateChanged as u32
    );
    assert!(event_type::SYSTEM_SILO_JOB_CREATED == hcs::HcsEventSystemSiloJobCreated as u32);
    assert!(
        event_type::SYSTEM_GUEST_CONNECTION_CLOSED
            == hcs::HcsEventSystemGuestConnectionClosed as u32
    );
    assert!(event_type::PROCESS_EXITED == hcs::HcsEventProcessExited as u32);
    assert!(event_type::OPERATION_CALLBACK == hcs::HcsEventOperationCallback as u32);
    assert!(event_type::SERVICE_DISCONNECT == hcs::HcsEventServiceDisconnect as u32);
    assert!(event_type::GROUP_VM_LIFECYCLE == hcs::HcsEventGroupVmLifecycle as u32);
    assert!(event_type::GROUP_OPERATION_INFO == hcs::HcsEventGroupOperationInfo as u32);
    // GROUP_LIVE_MIGRATION (0x80000003) is newer than the metadata release used here.

    assert!(event_options::NONE == hcs::HcsEventOptionNone as u32);
    assert!(
        event_options::ENABLE_OPERATION_CALLBACKS
            == hcs::HcsEventOptionEnableOperationCallbacks as u32
    );
    // ENABLE_LIVE_MIGRATION_EVENTS (4) is newer than the metadata release used here.

    assert!(resource_type::NONE == hcs::HcsResourceTypeNone as u32);
    assert!(resource_type::FILE == hcs::HcsResourceTypeFile as u32);
    assert!(resource_type::JOB == hcs::HcsResourceTypeJob as u32);

    assert!(v1::INVALID == hcs::HcsNotificationInvalid as u32);
    assert!(v1::SYSTEM_EXITED == hcs::HcsNotificationSystemExited as u32);
    assert!(v1::SYSTEM_CREATE_COMPLETED == hcs::HcsNotificationSystemCreateCompleted as u32);
    assert!(v1::SYSTEM_START_COMPLETED == hcs::HcsNotificationSystemStartCompleted as u32);
    assert!(v1::SYSTEM_PAUSE_COMPLETED == hcs::HcsNotificationSystemPauseCompleted as u32);
    assert!(v1::SYSTEM_RESUME_COMPLETED == hcs::HcsNotificationSystemResumeCompleted as u32);
    assert!(v1::SYSTEM_CRASH_REPORT == hcs::HcsNotificationSystemCrashReport as u32);
    assert!(v1::SYSTEM_SILO_JOB_CREATED == hcs::HcsNotificationSystemSiloJobCreated as u32);
    assert!(v1::SYSTEM_SAVE_COMPLETED == hcs::HcsNotificationSystemSaveCompleted as u32);
    assert!(
        v1::SYSTEM_RDP_ENHANCED_MODE_STATE_CHANGED
            == hcs::HcsNotificationSystemRdpEnhancedModeStateChanged as u32
    );
    assert!(v1::SYSTEM_SHUTDOWN_FAILED == hcs::HcsNotificationSystemShutdownFailed as u32);
    assert!(
        v1::SYSTEM_GET_PROPERTIES_COMPLETED
            == hcs::HcsNotificationSystemGetPropertiesCompleted as u32
    );
    assert!(v1::SYSTEM_MODIFY_COMPLETED == hcs::HcsNotificationSystemModifyCompleted as u32);
    assert!(v1::SYSTEM_CRASH_INITIATED == hcs::HcsNotificationSystemCrashInitiated as u32);
    assert!(
        v1::SYSTEM_GUEST_CONNECTION_CLOSED
            == hcs::HcsNotificationSystemGuestConnectionClosed as u32
    );
    assert!(v1::PROCESS_EXITED == hcs::HcsNotificationProcessExited as u32);
    assert!(v1::SERVICE_DISCONNECT == hcs::HcsNotificationServiceDisconnect as u32);

    assert!(crate::api::GENERIC_ALL == windows_sys::Win32::Foundation::GENERIC_ALL);
};

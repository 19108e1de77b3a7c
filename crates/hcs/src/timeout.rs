//! Timeouts of HCS operations (hcs-hcn-api.md §1.8, hcsshim `internal/timeout`).
//!
//! Each has a default and an environment override in whole seconds (> 0; anything else is
//! ignored). In the computecore engine, create, start, pause, resume and save are bounded by
//! their timeout, which becomes the `timeoutMs` of `HcsWaitForOperationResult`; other calls
//! wait without a bound (a caller bounds them by dropping the future, which never abandons
//! the call itself: see [`crate::api`]).

use std::time::{Duration, Instant};

/// `INFINITE` for `HcsWaitForOperationResult`.
pub const INFINITE_MS: u32 = u32::MAX;

/// The timeouts of the HCS engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `SystemCreate` (`HCSSHIM_TIMEOUT_SYSTEMCREATE`), default 4 min.
    pub system_create: Duration,
    /// `SystemStart` (`HCSSHIM_TIMEOUT_SYSTEMSTART`), default 4 min.
    pub system_start: Duration,
    /// `SystemPause` (`HCSSHIM_TIMEOUT_SYSTEMPAUSE`), default 4 min.
    pub system_pause: Duration,
    /// `SystemResume` (`HCSSHIM_TIMEOUT_SYSTEMRESUME`), default 4 min.
    pub system_resume: Duration,
    /// `SystemSave` (`HCSSHIM_TIMEOUT_SYSTEMSAVE`), default 4 min.
    pub system_save: Duration,
    /// `SyscallWatcher` (`HCSSHIM_TIMEOUT_SYSCALLWATCHER`), default 4 min: a call running
    /// longer than this is logged, never abandoned.
    pub syscall_watcher: Duration,
}

const FOUR_MINUTES: Duration = Duration::from_secs(240);

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            system_create: FOUR_MINUTES,
            system_start: FOUR_MINUTES,
            system_pause: FOUR_MINUTES,
            system_resume: FOUR_MINUTES,
            system_save: FOUR_MINUTES,
            syscall_watcher: FOUR_MINUTES,
        }
    }
}

impl Timeouts {
    /// The defaults with the `HCSSHIM_TIMEOUT_*` overrides of the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The defaults with overrides read through `lookup` (an environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str, default: Duration| {
            lookup(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&s| s > 0)
                .map(Duration::from_secs)
                .unwrap_or(default)
        };
        let d = Self::default();
        Self {
            system_create: get("HCSSHIM_TIMEOUT_SYSTEMCREATE", d.system_create),
            system_start: get("HCSSHIM_TIMEOUT_SYSTEMSTART", d.system_start),
            system_pause: get("HCSSHIM_TIMEOUT_SYSTEMPAUSE", d.system_pause),
            system_resume: get("HCSSHIM_TIMEOUT_SYSTEMRESUME", d.system_resume),
            system_save: get("HCSSHIM_TIMEOUT_SYSTEMSAVE", d.system_save),
            syscall_watcher: get("HCSSHIM_TIMEOUT_SYSCALLWATCHER", d.syscall_watcher),
        }
    }
}

/// The `timeoutMs` for a wait that must end by `deadline`: INFINITE without a deadline, 0
/// once it has passed, otherwise the remaining milliseconds capped at `0xFFFFFFFE` (so a
/// long deadline never turns into INFINITE).
pub fn wait_timeout_ms(deadline: Option<Instant>, now: Instant) -> u32 {
    match deadline {
        None => INFINITE_MS,
        Some(d) => {
            let left = d.saturating_duration_since(now).as_millis();
            u32::try_from(left)
                .unwrap_or(INFINITE_MS - 1)
                .min(INFINITE_MS - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Timeouts::default().system_create, Duration::from_secs(240));
        let env: HashMap<&str, &str> = HashMap::from([
            ("HCSSHIM_TIMEOUT_SYSTEMCREATE", "10"),
            ("HCSSHIM_TIMEOUT_SYSTEMSTART", "0"),
            ("HCSSHIM_TIMEOUT_SYSTEMPAUSE", "-3"),
            ("HCSSHIM_TIMEOUT_SYSTEMRESUME", "abc"),
            ("HCSSHIM_TIMEOUT_SYSCALLWATCHER", " 7 "),
        ]);
        let t = Timeouts::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(t.system_create, Duration::from_secs(10));
        assert_eq!(t.system_start, Duration::from_secs(240));
        assert_eq!(t.system_pause, Duration::from_secs(240));
        assert_eq!(t.system_resume, Duration::from_secs(240));
        assert_eq!(t.system_save, Duration::from_secs(240));
        assert_eq!(t.syscall_watcher, Duration::from_secs(7));
    }

    #[test]
    fn wait_timeout_conversion() {
        let now = Instant::now();
        assert_eq!(wait_timeout_ms(None, now), 0xFFFF_FFFF);
        assert_eq!(wait_timeout_ms(Some(now), now), 0);
        assert_eq!(wait_timeout_ms(Some(now), now + Duration::from_secs(1)), 0);
        assert_eq!(
            wait_timeout_ms(Some(now + Duration::from_millis(1500)), now),
            1500
        );
        assert_eq!(
            wait_timeout_ms(Some(now + Duration::from_secs(10_000_000)), now),
            0xFFFF_FFFE
        );
    }
}

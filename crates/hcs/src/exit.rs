//! The exit state of a process handle, shared by the computecore ([`crate::process`]) and
//! vmcompute ([`crate::v1`]) engines: a watch slot that is set once (first exit, abort,
//! force release or close wins), awaited by `wait` and read by `exit_code`.

use std::sync::Arc;

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::hresult::HResult;
use crate::process::FORCE_RELEASE_DELAY;

#[derive(Debug, Clone)]
struct ProcessExit {
    code: i64,
    wait_error: Option<Error>,
}

/// A process's exit slot: empty while it runs, then its exit code and wait error.
#[derive(Debug)]
pub(crate) struct ExitCell(watch::Sender<Option<ProcessExit>>);

impl ExitCell {
    /// An empty slot (the process is running).
    pub(crate) fn new() -> Self {
        Self(watch::channel(None).0)
    }

    /// True once the slot is set.
    pub(crate) fn is_set(&self) -> bool {
        self.0.borrow().is_some()
    }

    /// Sets the slot unless it is already set; whether this call set it.
    pub(crate) fn release(&self, code: i64, wait_error: Option<Error>) -> bool {
        self.0.send_if_modified(|s| {
            s.is_none() && {
                *s = Some(ProcessExit { code, wait_error });
                true
            }
        })
    }

    /// Waits until the slot is set; returns the wait error, if any. `closed` builds the
    /// error for a slot whose sender went away.
    pub(crate) async fn wait(&self, closed: impl FnOnce() -> Error) -> Result<()> {
        let mut rx = self.0.subscribe();
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| closed())?
            .clone();
        match exit.and_then(|e| e.wait_error) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// The exit code: `running()` while the slot is empty, the wait error if waiting
    /// failed, else the code.
    pub(crate) fn exit_code(&self, running: impl FnOnce() -> Error) -> Result<i64> {
        match &*self.0.borrow() {
            None => Err(running()),
            Some(ProcessExit {
                wait_error: Some(err),
                ..
            }) => Err(err.clone()),
            Some(exit) => Ok(exit.code),
        }
    }

    /// hcsshim's `processSignalResult` test: a failed signal whose error is "invalid
    /// state", "system does not exist" or "element not found" means the process is gone;
    /// true when it says so and the slot is still empty (so waiters need a force release).
    pub(crate) fn signal_says_gone(&self, err: &Error) -> bool {
        const GONE: &[HResult] = &[
            HResult::ERROR_VMCOMPUTE_INVALID_STATE,
            HResult::ERROR_VMCOMPUTE_SYSTEM_NOT_FOUND,
            HResult::ERROR_NOT_FOUND,
        ];
        err.kind().is_any(GONE) && !self.is_set()
    }

    /// Releases the slot with exit code −1 and `err` after [`FORCE_RELEASE_DELAY`], unless
    /// it was set by then (hcsshim's workaround for an exit event that never comes).
    pub(crate) fn force_release_later(self: &Arc<Self>, err: Error) {
        let slot = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FORCE_RELEASE_DELAY).await;
            if slot.release(-1, Some(err.clone())) {
                tracing::warn!(error = %err, "force unblocking process waits");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[tokio::test]
    async fn first_release_wins() {
        let cell = ExitCell::new();
        assert!(!cell.is_set());
        assert!(matches!(
            cell.exit_code(|| Error::new(ErrorKind::InvalidProcessState))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidProcessState
        ));
        assert!(cell.release(7, None));
        assert!(!cell.release(-1, Some(Error::new(ErrorKind::AlreadyClosed))));
        assert!(cell.is_set());
        assert_eq!(cell.exit_code(|| unreachable!()).unwrap(), 7);
        cell.wait(|| unreachable!()).await.unwrap();
    }

    #[test]
    fn signal_says_gone_only_for_gone_errors_while_running() {
        let cell = ExitCell::new();
        assert!(cell.signal_says_gone(&Error::new(HResult::ERROR_NOT_FOUND)));
        assert!(cell.signal_says_gone(&Error::new(HResult::ERROR_VMCOMPUTE_INVALID_STATE)));
        assert!(!cell.signal_says_gone(&Error::new(ErrorKind::AlreadyClosed)));
        cell.release(0, None);
        assert!(!cell.signal_says_gone(&Error::new(HResult::ERROR_NOT_FOUND)));
    }

    #[tokio::test(start_paused = true)]
    async fn force_release_sets_the_wait_error() {
        let cell = Arc::new(ExitCell::new());
        cell.force_release_later(Error::new(ErrorKind::AlreadyClosed));
        let err = cell.wait(|| unreachable!()).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::AlreadyClosed));
        assert!(matches!(
            cell.exit_code(|| unreachable!()).unwrap_err().kind(),
            ErrorKind::AlreadyClosed
        ));
    }
}

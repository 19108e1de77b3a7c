//! [`Watcher`]: the notification context of one v1 handle, hcsshim's
//! `notificationWatcherContext` and `waitForNotification`.
//!
//! The callback registered for a handle feeds [`Watcher::deliver`]; completions go to one
//! channel per expected notification, the exit (`SystemExited`/`ProcessExited`,
//! `ServiceDisconnect`, or a close) to a sticky watch slot every waiter sees.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::notification as n;
use crate::error::{Error, ErrorKind, Result};
use crate::hresult::HResult;
use crate::operation::call_error;
use crate::vmcompute::{NotificationSink, V1Notification, V1Output};

/// The completion notifications a system watcher has channels for.
const SYSTEM_COMPLETIONS: &[u32] = &[
    n::SYSTEM_CREATE_COMPLETED,
    n::SYSTEM_START_COMPLETED,
    n::SYSTEM_PAUSE_COMPLETED,
    n::SYSTEM_RESUME_COMPLETED,
    n::SYSTEM_SAVE_COMPLETED,
];

/// How a handle stopped being waitable.
#[derive(Debug, Clone)]
enum Exit {
    /// `SystemExited` / `ProcessExited` with its status (`None` = success).
    Exited(Option<HResult>),
    /// `ServiceDisconnect`.
    Disconnected,
    /// The handle was closed.
    Closed,
}

type Completion = std::result::Result<(), HResult>;

/// The notification context of one handle (hcsshim's `notificationWatcherContext`).
#[derive(Debug)]
pub struct Watcher {
    channels: HashMap<
        u32,
        (
            mpsc::Sender<Completion>,
            tokio::sync::Mutex<mpsc::Receiver<Completion>>,
        ),
    >,
    exit_type: u32,
    exit: watch::Sender<Option<Exit>>,
}

fn status(raw: i32) -> Completion {
    match HResult::from_call(raw) {
        Some(hr) => Err(hr),
        None => Ok(()),
    }
}

impl Watcher {
    /// A watcher for a compute system: the create/start/pause/resume/save completions,
    /// `SystemExited` and `ServiceDisconnect`.
    pub fn for_system() -> Arc<Self> {
        Self::new(SYSTEM_COMPLETIONS, n::SYSTEM_EXITED)
    }

    /// A watcher for a process: `ProcessExited` and `ServiceDisconnect`.
    pub fn for_process() -> Arc<Self> {
        Self::new(&[], n::PROCESS_EXITED)
    }

    fn new(completions: &[u32], exit_type: u32) -> Arc<Self> {
        let channels = completions
            .iter()
            .map(|t| {
                let (tx, rx) = mpsc::channel(1);
                (*t, (tx, tokio::sync::Mutex::new(rx)))
            })
            .collect();
        Arc::new(Self {
            channels,
            exit_type,
            exit: watch::channel(None).0,
        })
    }

    /// The callback's sink (hcsshim's `notificationWatcher`): routes one notification.
    pub fn deliver(&self, notification: V1Notification) {
        let t = notification.notification_type;
        let exit = if t == self.exit_type {
            Some(Exit::Exited(status(notification.status).err()))
        } else if t == n::SERVICE_DISCONNECT {
            Some(Exit::Disconnected)
        } else {
            None
        };
        if let Some(exit) = exit {
            self.set_exit(exit);
            return;
        }
        match self.channels.get(&t) {
            Some((tx, _)) => {
                if tx.try_send(status(notification.status)).is_err() {
                    tracing::warn!(
                        notification_type = t,
                        "v1 notification dropped (unread one pending)"
                    );
                }
            }
            None => tracing::debug!(
                notification_type = t,
                "v1 notification without a waiter dropped"
            ),
        }
    }

    /// A sink for [`VmcomputeApi::register_compute_system_callback`].
    ///
    /// [`VmcomputeApi::register_compute_system_callback`]:
    ///     crate::vmcompute::VmcomputeApi::register_compute_system_callback
    pub fn sink(self: &Arc<Self>) -> NotificationSink {
        let me = self.clone();
        Arc::new(move |notification| me.deliver(notification))
    }

    fn set_exit(&self, exit: Exit) {
        self.exit.send_if_modified(|slot| {
            slot.is_none() && {
                *slot = Some(exit);
                true
            }
        });
    }

    /// Releases every waiter with `ErrHandleClose` (unless the handle already exited).
    pub fn close(&self) {
        self.set_exit(Exit::Closed);
    }

    /// hcsshim's `waitForNotification(expected, timeout)`; `None` waits without a timer.
    pub async fn wait_for(&self, expected: u32, timeout: Option<Duration>) -> Result<()> {
        let mut exit_rx = self.exit.subscribe();
        if expected == self.exit_type {
            let exit = exit_rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Error::new(ErrorKind::HandleClose))?
                .clone();
            return match exit {
                Some(Exit::Exited(None)) => Ok(()),
                Some(Exit::Exited(Some(hr))) => Err(Error::new(hr)),
                Some(Exit::Disconnected) => Err(Error::new(ErrorKind::UnexpectedProcessAbort)),
                Some(Exit::Closed) | None => Err(Error::new(ErrorKind::HandleClose)),
            };
        }
        let Some((_, rx)) = self.channels.get(&expected) else {
            return Err(Error::new(ErrorKind::InvalidNotificationType));
        };
        let mut rx = rx.lock().await;
        let timer = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            got = rx.recv() => match got {
                Some(Ok(())) => Ok(()),
                Some(Err(hr)) => Err(Error::new(hr)),
                None => Err(Error::new(ErrorKind::HandleClose)),
            },
            exit = exit_rx.wait_for(Option::is_some) => Err(Error::new(match exit.as_deref() {
                Ok(Some(Exit::Exited(_))) => ErrorKind::UnexpectedContainerExit,
                Ok(Some(Exit::Disconnected)) => ErrorKind::UnexpectedProcessAbort,
                _ => ErrorKind::HandleClose,
            })),
            () = timer => Err(Error::new(ErrorKind::Timeout)),
        }
    }

    /// hcsshim's `processAsyncHcsResult`: a pending call waits for `expected` (bounded by
    /// `timeout`); any other failure is returned with the error records of its result
    /// document.
    pub async fn process_async_result(
        &self,
        out: V1Output,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<()> {
        if HResult::from_call(out.hr) == Some(HResult::ERROR_VMCOMPUTE_OPERATION_PENDING) {
            let events = out
                .result
                .as_deref()
                .map(crate::result_doc::ResultDocument::events_lossy)
                .unwrap_or_default();
            return self.wait_for(expected, timeout).await.map_err(|e| {
                if events.is_empty() {
                    e
                } else {
                    e.with_events(events)
                }
            });
        }
        if out.hr < 0 {
            return Err(call_error(out.hr, out.result.as_deref()));
        }
        Ok(())
    }

    /// The exit error, once exited: `Some` for an unexpected exit
    /// (`ERROR_VMCOMPUTE_UNEXPECTED_EXIT`).
    pub(super) fn exit_error(&self) -> Option<Error> {
        match &*self.exit.borrow() {
            Some(Exit::Exited(Some(hr)))
                if hr.same_condition(HResult::ERROR_VMCOMPUTE_UNEXPECTED_EXIT) =>
            {
                Some(Error::new(*hr))
            }
            _ => None,
        }
    }

    pub(super) fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }
}

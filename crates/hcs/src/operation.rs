//! Running computecore calls through operation handles (hcs-hcn-api.md §1.7).
//!
//! * [`run`]: create an operation (no completion callback), make the call; if the call itself
//!   fails, read the operation result for the error document; otherwise wait for the result
//!   bounded by the deadline, cancel the operation on `HCS_E_OPERATION_TIMEOUT`, and always
//!   close the operation.
//! * [`submit`]: create, call, close at once (Shutdown and Terminate): HCS allows closing an
//!   operation in flight and finishes it; completion shows up as the exit event.
//!
//! The blocking core ([`run_blocking`], [`submit_blocking`]) is called on tokio's blocking
//! pool by [`run`]; dropping the returned future does not abandon the call (§8).

use std::sync::Arc;
use std::time::Instant;

use crate::api::{HcsApi, OperationResult, ProcessInformation, RawOperation};
use crate::error::{Error, ErrorKind, Result};
use crate::hresult::HResult;
use crate::result_doc::ResultDocument;
use crate::timeout::wait_timeout_ms;

/// The successful outcome of an operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The result document (properties, a list of systems, ...), if HCS returned one.
    pub document: Option<String>,
    /// The process information, for process operations.
    pub process_info: Option<ProcessInformation>,
}

/// Builds the error of a failed call: the normalised HRESULT plus the error records of the
/// result document (a bad document is logged and ignored, never hiding the HRESULT).
pub fn call_error(hr: i32, document: Option<&str>) -> Error {
    let code = HResult::from_call(hr).unwrap_or(HResult::from_i32(hr));
    let mut err = Error::new(ErrorKind::HResult(code));
    if let Some(doc) = document.filter(|d| !d.trim().is_empty()) {
        match ResultDocument::parse(doc) {
            Ok(parsed) => {
                if !parsed.error_message.is_empty()
                    && Some(parsed.error_message.as_str()) != code.message()
                {
                    err = err.with_extra(parsed.error_message);
                }
                err = err.with_events(parsed.error_events);
            }
            Err(e) => tracing::warn!(error = %e, "could not parse HCS result document"),
        }
    }
    err
}

fn finish(result: OperationResult) -> Result<Output> {
    if result.hr < 0 {
        return Err(call_error(result.hr, result.document.as_deref()));
    }
    Ok(Output {
        document: result.document,
        process_info: result.process_info,
    })
}

/// The blocking core of [`run`]. `call` makes the HCS call with the operation and returns
/// its HRESULT and any value it produced (a new handle); that value is returned even when the
/// operation fails, so the caller can release it. `None` means no operation could be created.
pub fn run_blocking<T>(
    api: &dyn HcsApi,
    timeout_ms: u32,
    with_process_info: bool,
    call: impl FnOnce(&dyn HcsApi, RawOperation) -> (i32, T),
) -> (Option<T>, Result<Output>) {
    let op = match api.create_operation() {
        Ok(op) => op,
        Err(hr) => return (None, Err(call_error(hr, None))),
    };
    let (hr, value) = call(api, op);
    let result = if hr < 0 {
        // The call itself failed: HCS may already have an error document for it.
        let doc = api.get_operation_result(op, with_process_info).document;
        Err(call_error(hr, doc.as_deref()))
    } else {
        let result = api.wait_for_operation_result(op, timeout_ms, with_process_info);
        if HResult::from_call(result.hr) == Some(HResult::HCS_E_OPERATION_TIMEOUT) {
            // HCS still tracks the request: do not let it outlive this call.
            let cancel = api.cancel_operation(op);
            if cancel < 0 {
                tracing::warn!(hr = cancel, "HcsCancelOperation failed");
            }
        }
        finish(result)
    };
    api.close_operation(op);
    (Some(value), result)
}

/// The blocking core of [`submit`].
pub fn submit_blocking(
    api: &dyn HcsApi,
    call: impl FnOnce(&dyn HcsApi, RawOperation) -> i32,
) -> Result<()> {
    let op = api.create_operation().map_err(|hr| call_error(hr, None))?;
    let hr = call(api, op);
    let result = if hr < 0 {
        let doc = api.get_operation_result(op, false).document;
        Err(call_error(hr, doc.as_deref()))
    } else {
        Ok(())
    };
    api.close_operation(op);
    result
}

/// Runs `f` on the blocking pool; a panic inside becomes an error instead of unwinding into
/// the caller. A call still running after `SyscallWatcher` (from the environment, see
/// [`crate::env_timeouts`]) is logged, never abandoned.
pub async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    let task = tokio::task::spawn_blocking(f);
    tokio::pin!(task);
    let watcher = crate::env_timeouts().syscall_watcher;
    let joined = tokio::select! {
        joined = &mut task => joined,
        () = tokio::time::sleep(watcher) => {
            tracing::warn!(timeout = ?watcher, "HCS call still running after the syscall watcher timeout");
            task.await
        }
    };
    joined.map_err(|e| Error::new(ErrorKind::Transport(format!("HCS call task failed: {e}"))))
}

/// Runs an operation on the blocking pool, bounded by `deadline` (see the module docs).
///
/// `hold` (typically the read guard of the handle the call uses) is kept alive until the
/// whole operation, wait included, has finished, even if the returned future is dropped.
pub async fn run<T: Send + 'static, G: Send + 'static>(
    api: &Arc<dyn HcsApi>,
    deadline: Option<Instant>,
    with_process_info: bool,
    hold: G,
    call: impl FnOnce(&dyn HcsApi, RawOperation) -> (i32, T) + Send + 'static,
) -> Result<(Option<T>, Result<Output>)> {
    let api = api.clone();
    blocking(move || {
        let timeout_ms = wait_timeout_ms(deadline, Instant::now());
        let out = run_blocking(api.as_ref(), timeout_ms, with_process_info, call);
        drop(hold);
        out
    })
    .await
}

/// [`run`] for calls that produce no value.
pub async fn run_simple<G: Send + 'static>(
    api: &Arc<dyn HcsApi>,
    deadline: Option<Instant>,
    hold: G,
    call: impl FnOnce(&dyn HcsApi, RawOperation) -> i32 + Send + 'static,
) -> Result<Output> {
    run(api, deadline, false, hold, move |a, op| (call(a, op), ()))
        .await?
        .1
}

/// Submits an operation without waiting for it (see the module docs); `hold` as in [`run`].
pub async fn submit<G: Send + 'static>(
    api: &Arc<dyn HcsApi>,
    hold: G,
    call: impl FnOnce(&dyn HcsApi, RawOperation) -> i32 + Send + 'static,
) -> Result<()> {
    let api = api.clone();
    blocking(move || {
        let out = submit_blocking(api.as_ref(), call);
        drop(hold);
        out
    })
    .await?
}

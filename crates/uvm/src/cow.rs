//! The `hcs` crate's container/process traits (`cow`) for the bridge handles, so the shim's
//! task layer drives a container in a (local or real) utility VM the same way as an HCS
//! container. This is the reference's `internal/gcs` `Container`/`Process` behind
//! `cow.Container`/`cow.Process`.
//!
//! `create_process` takes the reference's `lcowProcessParameters`: schema2
//! `ProcessParameters` plus `OciProcess` (so `is_oci` is false), as the LCOW shim sends it.

use async_trait::async_trait;
use bridge::messages::{ModifySettingRequest, ProcessParameters, PropertyType};
use hcs::cow::{GroupAffinity, MigrationState, Os, SignalOptions, Stdio};
use hcs::{Error as HcsError, ErrorKind, HResult};
use tokio::io::AsyncWriteExt;

use crate::container::GcsContainer;
use crate::error::Error;
use crate::process::GcsProcess;

/// Converts this crate's errors to the `hcs` error model (HRESULTs kept).
///
/// A guest's error message (runc's reason an exec failed, say) is kept as the error's
/// detail, as the reference's bridge keeps it in its RPC error.
pub fn to_hcs(op: &str, e: Error) -> HcsError {
    let kind = match e {
        Error::Rpc {
            hresult, message, ..
        } => {
            let hr = HResult::from_i32(hresult.0);
            let e = HcsError::op(op, ErrorKind::HResult(hr));
            let message = message.trim();
            return if message.is_empty() || message == hr.to_string() {
                e
            } else {
                e.with_extra(message)
            };
        }
        Error::Timeout { .. } => ErrorKind::Timeout,
        Error::Closed(_) => ErrorKind::AlreadyClosed,
        Error::InvalidArgument(m) => ErrorKind::InvalidArgument(m),
        Error::Protocol(m) => ErrorKind::InvalidResponse(m),
        Error::Io { source, .. } => ErrorKind::Io(source),
        other => ErrorKind::Transport(other.to_string()),
    };
    HcsError::op(op, kind)
}

fn properties_json(p: bridge::messages::Properties) -> hcs::Result<serde_json::Value> {
    serde_json::to_value(p).map_err(|e| HcsError::new(ErrorKind::InvalidResponse(e.to_string())))
}

#[async_trait]
impl hcs::cow::Process for GcsProcess {
    fn pid(&self) -> u32 {
        GcsProcess::pid(self)
    }

    fn take_stdio(&self) -> Stdio {
        let s = GcsProcess::take_stdio(self);
        Stdio {
            stdin: s.stdin.map(|x| Box::new(x) as hcs::cow::StdinStream),
            stdout: s.stdout.map(|x| Box::new(x) as hcs::cow::OutputStream),
            stderr: s.stderr.map(|x| Box::new(x) as hcs::cow::OutputStream),
        }
    }

    fn migration_state(&self) -> MigrationState {
        MigrationState::default()
    }

    async fn close_stdin(&self) -> hcs::Result<()> {
        // Only what was not handed out can be closed here; a taken stream is the taker's.
        let stdin = self.stdio_lock().stdin.take();
        if let Some(mut s) = stdin {
            s.shutdown()
                .await
                .map_err(|e| to_hcs("CloseStdin", Error::io("half-close stdin", e)))?;
        }
        Ok(())
    }

    async fn close_stdout(&self) -> hcs::Result<()> {
        self.stdio_lock().stdout = None;
        Ok(())
    }

    async fn close_stderr(&self) -> hcs::Result<()> {
        self.stdio_lock().stderr = None;
        Ok(())
    }

    async fn resize_console(&self, width: u16, height: u16) -> hcs::Result<()> {
        GcsProcess::resize_console(self, width, height)
            .await
            .map_err(|e| to_hcs("ResizeConsole", e))
    }

    async fn kill(&self) -> hcs::Result<bool> {
        GcsProcess::kill(self).await.map_err(|e| to_hcs("Kill", e))
    }

    async fn signal(&self, options: Option<&SignalOptions>) -> hcs::Result<bool> {
        let signal = match options {
            None => None,
            Some(SignalOptions::Linux { signal }) => Some(*signal),
            Some(SignalOptions::Windows { .. }) => {
                return Err(HcsError::op("Signal", ErrorKind::NotImplemented))
            }
        };
        GcsProcess::signal(self, signal)
            .await
            .map_err(|e| to_hcs("Signal", e))
    }

    async fn wait(&self) -> hcs::Result<()> {
        GcsProcess::wait(self)
            .await
            .map(|_| ())
            .map_err(|e| to_hcs("Wait", e))
    }

    fn exit_code(&self) -> hcs::Result<i64> {
        match self.try_exit_code() {
            None => Err(HcsError::op("ExitCode", ErrorKind::InvalidProcessState)),
            Some(r) => r.map(i64::from).map_err(|e| to_hcs("ExitCode", e)),
        }
    }

    async fn close(&self) -> hcs::Result<()> {
        drop(GcsProcess::take_stdio(self));
        Ok(())
    }
}

#[async_trait]
impl hcs::cow::ProcessHost for GcsContainer {
    async fn create_process(
        &self,
        config: &serde_json::Value,
    ) -> hcs::Result<Box<dyn hcs::cow::Process>> {
        let params: ProcessParameters = bridge::json::from_value(config.clone()).map_err(|e| {
            HcsError::op(
                "CreateProcess",
                ErrorKind::InvalidArgument(format!("process parameters: {e}")),
            )
        })?;
        let p = self
            .exec(params)
            .await
            .map_err(|e| to_hcs("CreateProcess", e))?;
        Ok(Box::new(p))
    }

    fn os(&self) -> Os {
        Os::Linux
    }

    fn is_oci(&self) -> bool {
        false
    }
}

#[async_trait]
impl hcs::cow::Container for GcsContainer {
    fn id(&self) -> &str {
        GcsContainer::id(self)
    }

    async fn properties(&self, types: &[&str]) -> hcs::Result<serde_json::Value> {
        let types = types.iter().map(|t| PropertyType::from(*t)).collect();
        properties_json(
            GcsContainer::properties(self, types)
                .await
                .map_err(|e| to_hcs("Properties", e))?,
        )
    }

    async fn properties_v2(&self, types: &[&str]) -> hcs::Result<serde_json::Value> {
        hcs::cow::Container::properties(self, types).await
    }

    async fn start(&self) -> hcs::Result<()> {
        GcsContainer::start(self)
            .await
            .map_err(|e| to_hcs("Start", e))
    }

    async fn shutdown(&self) -> hcs::Result<()> {
        GcsContainer::shutdown(self)
            .await
            .map_err(|e| to_hcs("Shutdown", e))
    }

    async fn terminate(&self) -> hcs::Result<()> {
        GcsContainer::terminate(self)
            .await
            .map_err(|e| to_hcs("Terminate", e))
    }

    async fn wait(&self) -> hcs::Result<()> {
        GcsContainer::wait(self)
            .await
            .map(|_| ())
            .map_err(|e| to_hcs("Wait", e))
    }

    async fn modify(&self, config: &serde_json::Value) -> hcs::Result<()> {
        let request: ModifySettingRequest =
            bridge::messages::modify_setting_request_from_value(config.clone()).map_err(|e| {
                HcsError::op(
                    "Modify",
                    ErrorKind::InvalidArgument(format!("modify request: {e}")),
                )
            })?;
        GcsContainer::modify(self, request)
            .await
            .map_err(|e| to_hcs("Modify", e))
    }

    async fn set_cpu_group_affinities(&self, _affinities: &[GroupAffinity]) -> hcs::Result<()> {
        Err(HcsError::op(
            "SetCPUGroupAffinities",
            ErrorKind::NotImplemented,
        ))
    }

    async fn close(&self) -> hcs::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge::hresult::Hresult;

    #[test]
    fn errors_keep_their_hresult() {
        let e = to_hcs(
            "Start",
            Error::Rpc {
                op: "x",
                hresult: Hresult::VMCOMPUTE_SYSTEM_NOT_FOUND,
                message: "gone".into(),
            },
        );
        assert_eq!(e.hresult().map(|h| h.value()), Some(0xC037_010E));
        assert!(e.to_string().ends_with("; gone"), "{e}");
        let e = to_hcs(
            "Wait",
            Error::Timeout {
                op: "w".into(),
                after: std::time::Duration::from_secs(1),
            },
        );
        assert!(matches!(e.kind(), ErrorKind::Timeout));
        let e = to_hcs("Wait", Error::BridgeClosed("eof".into()));
        assert!(matches!(e.kind(), ErrorKind::Transport(m) if m.contains("eof")));
    }
}

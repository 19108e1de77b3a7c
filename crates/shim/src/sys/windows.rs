//! Windows: named pipes served by containerd.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient};

use crate::error::{Error, Result};

/// `ERROR_PIPE_BUSY`: every instance of the pipe is connected; retry.
const ERROR_PIPE_BUSY: i32 = 231;

async fn dial(path: &str) -> Result<NamedPipeClient> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match ClientOptions::new().open(path) {
            Ok(c) => return Ok(c),
            Err(e)
                if e.raw_os_error() == Some(ERROR_PIPE_BUSY)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(Error::io(format!("connect to {path}"), e)),
        }
    }
}

/// Dials an upstream output pipe.
pub async fn open_output(path: &str) -> Result<Box<dyn AsyncWrite + Send + Unpin>> {
    Ok(Box::new(dial(path).await?))
}

/// Dials the upstream stdin pipe.
pub async fn open_input(path: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
    Ok(Box::new(dial(path).await?))
}

/// Starts a shim server without a console of its own... nothing else is needed on Windows.
pub fn detach(_cmd: &mut std::process::Command) {}

/// Binds the ttrpc server on a named pipe.
pub fn bind(address: &str) -> Result<containerd_shim_protos::ttrpc::r#async::Server> {
    containerd_shim_protos::ttrpc::r#async::Server::new()
        .bind(address)
        .map_err(|source| Error::Ttrpc {
            context: format!("listen on {address}"),
            source,
        })
}

/// Named pipes vanish with their server: nothing to remove.
pub fn unbind(_address: &str) {}

/// Closes stdout: `start` reads EOF and knows we serve.
pub fn close_stdout() -> Result<()> {
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Console::GetStdHandle;
    use windows_sys::Win32::System::Console::{SetStdHandle, STD_OUTPUT_HANDLE};
    // SAFETY: GetStdHandle returns this process's stdout handle (or INVALID/NULL); we
    // close it once and clear the slot so nothing uses the closed handle afterwards.
    unsafe {
        let h = GetStdHandle(STD_OUTPUT_HANDLE);
        if h != INVALID_HANDLE_VALUE && !h.is_null() {
            SetStdHandle(STD_OUTPUT_HANDLE, std::ptr::null_mut());
            CloseHandle(h);
        }
    }
    Ok(())
}

/// The shim logs to its stderr (`panic.log`); the reference's log pipe is not served.
pub fn log_writer(_bundle: &std::path::Path) -> Option<std::fs::File> {
    None
}

/// The binary logging driver on Windows takes its streams from named pipes the shim
/// serves (`\\.\pipe\binary-<id>-stdout`, `-stderr`, `-wait`); that server side is not
/// built yet, so a `binary://` stdout is refused here with a clear error.
pub async fn start_log_driver(
    url: &crate::logdriver::DriverUrl,
    _id: &str,
    _namespace: &str,
) -> Result<(
    crate::logdriver::Driver,
    Box<dyn AsyncWrite + Send + Unpin>,
    Box<dyn AsyncWrite + Send + Unpin>,
)> {
    Err(Error::Unimplemented(format!(
        "the binary logging driver ({}) is not implemented on Windows yet",
        url.program.display()
    )))
}

//! Windows: named pipes served by containerd.

use std::time::Duration;

use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient};

use crate::error::{Error, Result};

pub mod log_pipe;
use crate::logdriver::{Driver, DriverUrl};
use crate::stdio::{Reader, Writer};

/// `ERROR_PIPE_BUSY`: every instance of the pipe is connected; retry.
const ERROR_PIPE_BUSY: i32 = 231;

/// `ERROR_BROKEN_PIPE`, `ERROR_NO_DATA`, `ERROR_PIPE_NOT_CONNECTED`: the pipe's server
/// went away (containerd restarting); an output pipe is dialled again.
const PIPE_GONE: [i32; 3] = [109, 232, 233];

async fn dial_io(path: &str) -> std::io::Result<NamedPipeClient> {
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
            Err(e) => return Err(e),
        }
    }
}

async fn dial(path: &str) -> Result<NamedPipeClient> {
    dial_io(path)
        .await
        .map_err(|e| Error::io(format!("connect to {path}"), e))
}

fn pipe_gone(e: &std::io::Error) -> bool {
    e.raw_os_error().is_some_and(|c| PIPE_GONE.contains(&c))
}

/// Dials an upstream output pipe; a write after its server went away dials it again for
/// up to `retry_timeout` (zero: forever), as the reference's retrying pipe writer.
pub async fn open_output(path: &str, retry_timeout: Duration) -> Result<Writer> {
    use crate::stdio::retry::{Delivery, Dialer, RetryWriter};
    let first = dial(path).await?;
    let owned = path.to_owned();
    let dialer: Dialer = std::sync::Arc::new(move || {
        let path = owned.clone();
        Box::pin(async move { Ok(Box::new(dial_io(&path).await?) as Writer) })
    });
    Ok(Box::new(RetryWriter::new(
        Box::new(first),
        dialer,
        pipe_gone,
        retry_timeout,
        // tokio's pipes write in the background; a failure shows on the next write.
        Delivery::Deferred,
    )))
}

/// Dials the upstream stdin pipe.
pub async fn open_input(path: &str) -> Result<Reader> {
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

/// Where the shim logs, by `debug_type` (spec §1.1 serve): NPIPE (the default) serves the
/// log pipe containerd dials (see [`log_pipe`]), stderr (`panic.log`) until it connects;
/// FILE is refused as the reference does ("not supported"); ETW, which this shim has no
/// provider for, and unknown values log to stderr.
pub fn log_writer(
    _bundle: &std::path::Path,
    namespace: &str,
    id: &str,
    debug_type: Option<crate::options::DebugType>,
) -> Result<Option<tracing_subscriber::fmt::writer::BoxMakeWriter>> {
    use crate::options::DebugType;
    match debug_type {
        Some(DebugType::NPIPE) => {
            let name = log_pipe::log_pipe_name(namespace, id);
            let pipe = log_pipe::LogPipe::serve(&name, Box::new(std::io::stderr()))
                .map_err(|e| Error::io(format!("serve the log pipe {name}"), e))?;
            Ok(Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                pipe,
            )))
        }
        Some(DebugType::FILE) => Err(Error::InvalidArgument(
            "runtime options debug_type FILE is not supported".into(),
        )),
        Some(DebugType::ETW) | None => Ok(None),
    }
}

/// `ERROR_BROKEN_PIPE`: the client end closed (how a driver says it is ready).
const ERROR_BROKEN_PIPE: i32 = 109;

/// Starts a binary logging driver as the reference does on Windows: the shim serves
/// `\\.\pipe\binary-<id>-stdout`, `-stderr` and `-wait` (named to the driver in
/// `CONTAINER_STDOUT`, `CONTAINER_STDERR`, `CONTAINER_WAIT`), the driver connects to all
/// three and closes the wait pipe once ready (waited for at most `START_TIMEOUT`).
/// Returns the driver and the stdout and stderr pipes.
pub async fn start_log_driver(
    url: &DriverUrl,
    id: &str,
    namespace: &str,
) -> Result<(Driver, Writer, Writer)> {
    use tokio::io::AsyncReadExt;
    use tokio::net::windows::named_pipe::ServerOptions;

    use crate::logdriver::pipe_name;

    let what = || format!("the logging driver {}", url.program.display());
    let [out_name, err_name, wait_name] = ["stdout", "stderr", "wait"].map(|s| pipe_name(id, s));
    // One instance each, and ours must be the first: nobody else may serve these names.
    // Duplex, as go-winio's listener: drivers dial with read and write access (a one-way
    // pipe refuses them).
    let serve = |name: &str| {
        ServerOptions::new()
            .first_pipe_instance(true)
            .max_instances(1)
            .create(name)
            .map_err(|e| Error::io(format!("serve {name} for {}", what()), e))
    };
    let stdout = serve(&out_name)?;
    let stderr = serve(&err_name)?;
    let mut wait = serve(&wait_name)?;

    let child = tokio::process::Command::new(&url.program)
        .args(&url.args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .env("CONTAINER_STDOUT", &out_name)
        .env("CONTAINER_STDERR", &err_name)
        .env("CONTAINER_WAIT", &wait_name)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::io(format!("start {}", what()), e))?;

    let ready = async {
        tokio::try_join!(stdout.connect(), stderr.connect(), wait.connect())?;
        let mut byte = [0u8; 1];
        match wait.read(&mut byte).await {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(ERROR_BROKEN_PIPE) => Ok(()),
            Err(e) => Err(e),
        }
    };
    let driver = Driver::started(child, &url.program, ready).await?;
    Ok((driver, Box::new(stdout), Box::new(stderr)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::windows::named_pipe::ClientOptions;

    use crate::logdriver::{DriverUrl, STOP_TIMEOUT};

    fn result_file(id: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("{id}.driver-out"))
    }

    /// The logging driver of `a_binary_driver_gets_its_streams_over_named_pipes`: this test
    /// binary, run again with this one (ignored) test. It connects as containerd's logging
    /// package does, says it is ready, and records what it got.
    #[test]
    #[ignore = "run by a_binary_driver_gets_its_streams_over_named_pipes as its driver"]
    fn driver_child() {
        let env = |k: &str| std::env::var(k).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut out = ClientOptions::new().open(env("CONTAINER_STDOUT")).unwrap();
            let mut err = ClientOptions::new().open(env("CONTAINER_STDERR")).unwrap();
            drop(ClientOptions::new().open(env("CONTAINER_WAIT")).unwrap());
            let (mut o, mut e) = (String::new(), String::new());
            out.read_to_string(&mut o).await.unwrap();
            err.read_to_string(&mut e).await.unwrap();
            let id = env("CONTAINER_ID");
            let line = format!("{id} {} {o}|{e}", env("CONTAINER_NAMESPACE"));
            std::fs::write(result_file(&id), line).unwrap();
        });
    }

    #[tokio::test]
    async fn an_output_pipe_is_dialled_again_after_its_server_restarted() {
        use tokio::net::windows::named_pipe::ServerOptions;
        let name = format!(r"\\.\pipe\shim-redial-{}", std::process::id());
        let mut first = ServerOptions::new().create(&name).unwrap();
        let (out, connected) = tokio::join!(
            super::open_output(&name, Duration::from_secs(30)),
            first.connect()
        );
        let mut out = out.unwrap();
        connected.unwrap();
        out.write_all(b"one").await.unwrap();
        let mut buf = [0u8; 3];
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"one");

        // containerd goes away and comes back a little later with a new pipe.
        drop(first);
        let restarted = tokio::spawn({
            let name = name.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let mut second = ServerOptions::new().create(&name).unwrap();
                second.connect().await.unwrap();
                let mut buf = [0u8; 6];
                second.read_exact(&mut buf).await.unwrap();
                buf
            }
        });
        // The first write after the server left may be accepted and lost (tokio's pipes
        // report the failure on the next write); both reach the new server.
        out.write_all(b"two").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        out.write_all(b"333").await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), restarted)
            .await
            .expect("the restarted server got the write")
            .unwrap();
        assert_eq!(&got, b"two333");
    }

    #[tokio::test]
    async fn a_binary_driver_gets_its_streams_over_named_pipes() {
        let exe = std::env::current_exe().unwrap();
        let path = exe.display().to_string().replace('\\', "/");
        let url = DriverUrl::parse(&format!(
            "binary:///{path}?--ignored&--exact&sys::imp::tests::driver_child&--test-threads=1"
        ))
        .unwrap()
        .unwrap();
        let id = format!("drvtest-{}", std::process::id());
        let _ = std::fs::remove_file(result_file(&id));
        let (driver, mut out, mut err) = super::start_log_driver(&url, &id, "ns1").await.unwrap();
        out.write_all(b"to stdout").await.unwrap();
        err.write_all(b"to stderr").await.unwrap();
        drop((out, err));
        driver.stop(STOP_TIMEOUT).await;
        let got = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Ok(s) = std::fs::read_to_string(result_file(&id)) {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the driver wrote what it got");
        let _ = std::fs::remove_file(result_file(&id));
        assert_eq!(got, format!("{id} ns1 to stdout|to stderr"));
    }
}

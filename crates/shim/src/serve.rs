//! `serve` (spec §1.1): the long-lived shim. Reads the runtime options from stdin, sets up
//! logging, serves the Task, ShimDiag and ExtendedTask services on `-socket`, closes stdout
//! to tell `start` it is ready, and runs until containerd's `Shutdown` (graceful: the
//! server gets 3 s to finish).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::shim_async::create_task;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::cli::Command;
use crate::error::{Error, Result};
use crate::events::{Publisher, RemoteSink};
use crate::options;
use crate::service::{Service, ServiceConfig};

/// containerd's ttrpc address, for events.
pub const TTRPC_ADDRESS_ENV: &str = "TTRPC_ADDRESS";
/// How long a graceful shutdown waits for the server.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The tracing level of a runtime-options log level, which is a logrus level (the
/// reference's): `warning`, `fatal` and `panic` are logrus names; `None` for anything else.
pub fn level_filter(level: &str) -> Option<LevelFilter> {
    match level.to_ascii_lowercase().as_str() {
        "trace" => Some(LevelFilter::TRACE),
        "debug" => Some(LevelFilter::DEBUG),
        "info" => Some(LevelFilter::INFO),
        "warn" | "warning" => Some(LevelFilter::WARN),
        "error" | "fatal" | "panic" => Some(LevelFilter::ERROR),
        _ => None,
    }
}

/// A plain level filter, not `EnvFilter`: the options carry one level, and `EnvFilter`
/// compiles regular expressions to parse its directives (code and heap in every shim).
/// `target` is where the logs go (the platform's log file or pipe); stderr without one.
fn init_logging(level: &str, target: Option<BoxMakeWriter>) {
    let filter = level_filter(level);
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter.unwrap_or(LevelFilter::INFO))
        .with_ansi(false);
    // A second subscriber cannot be installed; the first one stays (only in tests).
    let _ = match target {
        Some(w) => builder.with_writer(w).try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    if filter.is_none() {
        tracing::warn!(level, "unknown log level; logging at info");
    }
}

/// The Task service under both names containerd uses: `containerd.task.v2.Task`
/// (containerd 1.6 and 1.7) and `containerd.task.v3.Task` (containerd 2, and what
/// `containerd-shim-protos` generates). The messages of the two are the same on the wire.
pub fn task_services(
    service: &Arc<Service>,
) -> std::collections::HashMap<String, containerd_shim_protos::ttrpc::r#async::Service> {
    let mut services = create_task(service.clone());
    for (name, svc) in create_task(service.clone()) {
        services.insert(name.replace(".v3.", ".v2."), svc);
    }
    services
}

/// Runs the server; returns the exit code.
pub fn run(cmd: &Command, socket: &str, is_sandbox: bool) -> i32 {
    match serve(cmd, socket, is_sandbox) {
        Ok(()) => 0,
        Err(e) => {
            // stdout still goes to `start`, which prints it: containerd shows it.
            println!("serve: {e}");
            tracing::error!(error = %e, "serve failed");
            1
        }
    }
}

fn serve(cmd: &Command, socket: &str, is_sandbox: bool) -> Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Error::io("read the runtime options from stdin", e))?;
    let opts = options::decode_stdin(&input)?;
    let level = options::log_level(&opts).unwrap_or_else(|| {
        if cmd.debug {
            "debug".into()
        } else {
            "info".into()
        }
    });
    let cwd = std::env::current_dir().unwrap_or_default();
    let target = crate::sys::log_writer(&cwd, &cmd.namespace, &cmd.id, options::debug_type(&opts))?;
    init_logging(&level, target);
    let ttrpc_address = std::env::var(TTRPC_ADDRESS_ENV).map_err(|_| {
        Error::InvalidArgument(format!(
            "{TTRPC_ADDRESS_ENV} is not set: containerd sets it"
        ))
    })?;
    // One thread runs every task: the shim's work is I/O relays and RPCs, never CPU bound,
    // and a worker thread would cost its stack and its own malloc arena for nothing.
    // Nothing in the shim blocks its thread: FIFOs are opened non-blocking.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the runtime", e))?;
    rt.block_on(async {
        let publisher = Publisher::new(
            cmd.namespace.clone(),
            Arc::new(RemoteSink::new(ttrpc_address)),
        );
        let service = Arc::new(Service::new(
            ServiceConfig {
                id: cmd.id.clone(),
                namespace: cmd.namespace.clone(),
                containerd_address: cmd.address.clone(),
                is_sandbox,
                log_level: level.clone(),
            },
            publisher,
        ));
        let mut server = crate::sys::bind(socket)?
            .register_service(task_services(&service))
            .register_service(crate::diag::services(&service));
        server.start().await.map_err(|source| Error::Ttrpc {
            context: format!("serve on {socket}"),
            source,
        })?;
        crate::sys::close_stdout()?;
        tracing::info!(id = %cmd.id, socket, is_sandbox, "serving");
        let now = service.wait_shutdown().await;
        if !now
            && tokio::time::timeout(SHUTDOWN_GRACE, server.shutdown())
                .await
                .is_err()
        {
            tracing::warn!("the server did not stop within {SHUTDOWN_GRACE:?}");
        }
        crate::sys::unbind(socket);
        tracing::info!("shut down");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrus_levels_map_to_tracing_levels() {
        assert_eq!(level_filter("trace"), Some(LevelFilter::TRACE));
        assert_eq!(level_filter("Debug"), Some(LevelFilter::DEBUG));
        assert_eq!(level_filter("info"), Some(LevelFilter::INFO));
        assert_eq!(level_filter("warning"), Some(LevelFilter::WARN));
        assert_eq!(level_filter("warn"), Some(LevelFilter::WARN));
        assert_eq!(level_filter("error"), Some(LevelFilter::ERROR));
        assert_eq!(level_filter("fatal"), Some(LevelFilter::ERROR));
        assert_eq!(level_filter("panic"), Some(LevelFilter::ERROR));
        assert_eq!(level_filter("shim=trace"), None);
        assert_eq!(level_filter(""), None);
    }
}

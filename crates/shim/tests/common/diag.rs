//! A client of the shim's ShimDiag and ExtendedTask services (what the reference's
//! `shimdiag` tool does), over the address containerd recorded in a task's bundle.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use protobuf::Message;
use shim::diag::extendedtask::{ComputeProcessorInfoRequest, ComputeProcessorInfoResponse};
use shim::diag::shimdiag::*;
use shim::diag::shimdiag_ttrpc::ShimDiagClient;

/// A connection to one shim.
pub struct DiagClient {
    raw: ttrpc::r#async::Client,
    diag: ShimDiagClient,
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(60_000_000_000)
}

impl DiagClient {
    /// Connects to the shim serving the task whose bundle is `bundle`.
    pub async fn connect(bundle: &Path) -> Self {
        let address = std::fs::read_to_string(bundle.join("address")).unwrap();
        let raw = ttrpc::r#async::Client::connect(&address)
            .await
            .unwrap_or_else(|e| panic!("connect to the shim at {address}: {e}"));
        Self {
            diag: ShimDiagClient::new(raw.clone()),
            raw,
        }
    }

    /// DiagPid.
    pub async fn pid(&self) -> i32 {
        self.diag
            .diag_pid(ctx(), &PidRequest::new())
            .await
            .unwrap()
            .pid
    }

    /// DiagTasks: (task id, [(exec id, state)]).
    pub async fn tasks(&self) -> Vec<(String, Vec<(String, String)>)> {
        let r = self
            .diag
            .diag_tasks(
                ctx(),
                &TasksRequest {
                    execs: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        r.tasks
            .into_iter()
            .map(|t| (t.id, t.execs.into_iter().map(|e| (e.id, e.state)).collect()))
            .collect()
    }

    /// DiagStacks: (the shim's, the guest's).
    pub async fn stacks(&self) -> (String, String) {
        let r = self
            .diag
            .diag_stacks(ctx(), &StacksRequest::new())
            .await
            .unwrap();
        (r.stacks, r.guest_stacks)
    }

    /// DiagShare; the error.
    pub async fn share_error(&self) -> ttrpc::Error {
        self.diag
            .diag_share(
                ctx(),
                &ShareRequest {
                    host_path: "/tmp".into(),
                    uvm_path: "/share".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err()
    }

    /// DiagExecInHost of `args` with stdout on a FIFO in `dir`: (exit code, stdout).
    pub async fn exec_in_host(&self, dir: &Path, args: &[&str]) -> (i32, String) {
        let fifo = dir.join(format!("diag-out-{}", std::process::id()));
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // The reader first (as containerd does), non-blocking so the open returns at once.
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let r = self
            .diag
            .diag_exec_in_host(
                ctx(),
                &ExecProcessRequest {
                    args: args.iter().map(|s| s.to_string()).collect(),
                    stdout: fifo.display().to_string(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("DiagExecInHost {args:?}: {e}"));
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read {}: {e}", fifo.display()),
            }
        }
        std::fs::remove_file(&fifo).unwrap();
        (r.exit_code, String::from_utf8_lossy(&out).into_owned())
    }

    /// ExtendedTask.ComputeProcessorInfo of task `id` (the service's wire name has no
    /// package, so the request is built by hand).
    pub async fn processor_count(&self, id: &str) -> Result<i32, ttrpc::Error> {
        let req = ComputeProcessorInfoRequest {
            id: id.into(),
            ..Default::default()
        };
        let request = ttrpc::Request {
            service: "ExtendedTask".into(),
            method: "ComputeProcessorInfo".into(),
            timeout_nano: 60_000_000_000,
            payload: req.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let resp = self.raw.request(request).await?;
        Ok(
            ComputeProcessorInfoResponse::parse_from_bytes(&resp.payload)
                .unwrap()
                .count,
        )
    }
}

/// The status code and message of a ttrpc error.
pub fn status(e: &ttrpc::Error) -> (ttrpc::Code, String) {
    match e {
        ttrpc::Error::RpcStatus(s) => (s.code(), s.message().to_owned()),
        other => panic!("not a status: {other:?}"),
    }
}

//! The command line of `gcs`, spelled as the reference's Go flags (spec §8), plus the options
//! the local sandbox needs.
//!
//! Go's `flag` package takes `-name`, `--name`, `-name=value` and `-name value` (booleans only
//! as `-name` or `-name=false`). [`normalize`] rewrites the single-dash forms of known names
//! into clap's `--name` before parsing.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

/// `-log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// logrus text (`time="…" level=info msg="…"`).
    Text,
    /// logrus JSON (`{"level":"info","msg":"…","time":"…"}`).
    Json,
}

/// `-initial-policy-stance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyStance {
    /// Open door: everything allowed, logs on.
    Allow,
    /// Closed door: everything denied until a policy is installed, logs discarded.
    Deny,
}

/// `-transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// AF_VSOCK to the host (CID 2): inside a utility VM only.
    Vsock,
    /// Unix sockets in `-socket-dir` (local sandbox).
    Unix,
}

/// The GCS options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gcs",
    about = "Linux guest compute service",
    version,
    after_help = "(VM): acts only inside a utility VM (-transport vsock without -use-inouterr); with\n-transport unix or -use-inouterr (the local sandbox) the flag is accepted and ignored."
)]
pub struct Options {
    /// Logging level (panic, fatal, error, warning, info, debug, trace).
    #[arg(long = "loglevel", default_value = "debug")]
    pub loglevel: String,
    /// Log to this file instead of stderr.
    #[arg(long = "logfile", default_value = "")]
    pub logfile: String,
    /// Log format: text or json (logrus-compatible).
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// (VM) Forward /dev/kmsg entries with priority at most this level to the log.
    #[arg(long = "kmsgLogLevel", default_value_t = 4)]
    pub kmsg_log_level: u32,
    /// (VM) Written to /proc/sys/kernel/core_pattern.
    #[arg(long = "core-dump-location", default_value = "")]
    pub core_dump_location: String,
    /// Use stdin/stdout as the bridge and stderr for logs.
    #[arg(long = "use-inouterr", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub use_inouterr: bool,
    /// Register the protocol-v4 handlers (required to serve anything).
    #[arg(long = "v4", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub v4: bool,
    /// (VM) The containers' parent cgroup /pods is limited to total RAM minus this
    /// (refreshed every 60 s); an OOM there is logged as an error.
    #[arg(long = "root-mem-reserve-bytes", default_value_t = 75 * 1024 * 1024)]
    pub root_mem_reserve_bytes: u64,
    /// (VM) A warning is logged each time the GCS's own cgroup /gcs uses more memory
    /// than this (a notification, not a limit).
    #[arg(long = "gcs-mem-limit-bytes", default_value_t = 50 * 1024 * 1024)]
    pub gcs_mem_limit_bytes: u64,
    /// (VM) Do not start chronyd on the Hyper-V PTP clock.
    #[arg(long = "disable-time-sync", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub disable_time_sync: bool,
    /// Scrub environment and spec contents from logs.
    #[arg(long = "scrub-logs", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    pub scrub_logs: bool,
    /// allow (open door) or deny (closed door until a policy arrives).
    #[arg(long = "initial-policy-stance", value_enum, default_value = "allow")]
    pub initial_policy_stance: PolicyStance,
    /// How to reach the host: vsock (utility VM) or unix (local sandbox).
    #[arg(long = "transport", value_enum, default_value = "vsock")]
    pub transport: TransportKind,
    /// With `-transport unix`: the directory of `bridge.sock` and `<port>.sock`.
    #[arg(long = "socket-dir")]
    pub socket_dir: Option<PathBuf>,
    /// Root of the GCS's own state (wrapper state in `<root>/gcsrunc`).
    #[arg(long = "state-root", default_value = "/run/gcs")]
    pub state_root: PathBuf,
    /// The OCI runtime binary.
    #[arg(long = "runtime", default_value = "runc")]
    pub runtime: PathBuf,
    /// Passed to the runtime as `--root` (the reference passes none).
    #[arg(long = "runtime-root")]
    pub runtime_root: Option<PathBuf>,
    /// (local sandbox; not in the reference) Keep a container's `linux.cgroupsPath` when it
    /// is absolute, clean and ends in the container id (containerd's `<parent>/<id>`), so
    /// that it lands in the host's cgroup tree where kubelet, cAdvisor and containerd's
    /// pod stats look for it. Without it, as the reference does in its utility VM:
    /// `/pods/<id>` and `/pods/<sandbox>/<id>`.
    #[arg(long = "host-cgroups", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub host_cgroups: bool,
}

/// Every long option, for [`normalize`].
fn known_names() -> Vec<String> {
    use clap::CommandFactory;
    Options::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .chain(["help".to_string(), "version".to_string()])
        .collect()
}

/// Rewrites Go-style `-name` / `-name=value` of known names into `--name…`.
pub fn normalize<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let names = known_names();
    let mut out = Vec::new();
    let mut rest_positional = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest_positional {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest_positional = true;
            out.push(a);
            continue;
        }
        if a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
            let name = a[1..].split('=').next().unwrap_or("");
            if names.iter().any(|n| n == name) {
                out.push(format!("-{a}"));
                continue;
            }
        }
        out.push(a);
    }
    out
}

impl Options {
    /// Parses a full argv (program name first), Go style.
    pub fn parse_go<I: IntoIterator<Item = String>>(args: I) -> Result<Self, clap::Error> {
        Options::try_parse_from(normalize(args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::parse_go(
            std::iter::once("gcs")
                .chain(args.iter().copied())
                .map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn reference_command_line() {
        let o = parse(&[
            "-v4",
            "-log-format",
            "json",
            "-loglevel",
            "info",
            "-disable-time-sync",
            "-scrub-logs=false",
            "-core-dump-location",
            "/tmp/core",
            "-kmsgLogLevel=6",
        ]);
        assert!(o.v4 && o.disable_time_sync && !o.scrub_logs && !o.use_inouterr);
        assert_eq!(o.log_format, LogFormat::Json);
        assert_eq!(o.loglevel, "info");
        assert_eq!(o.kmsg_log_level, 6);
        assert_eq!(o.core_dump_location, "/tmp/core");
        assert_eq!(o.transport, TransportKind::Vsock);
    }

    #[test]
    fn defaults_and_sandbox_flags() {
        let o = parse(&["--use-inouterr", "-transport=unix", "-socket-dir", "/s"]);
        assert!(o.use_inouterr && !o.v4 && o.scrub_logs);
        assert_eq!(o.loglevel, "debug");
        assert_eq!(o.root_mem_reserve_bytes, 75 << 20);
        assert_eq!(o.transport, TransportKind::Unix);
        assert_eq!(o.socket_dir, Some(PathBuf::from("/s")));
        assert_eq!(o.runtime, PathBuf::from("runc"));
        assert_eq!(o.initial_policy_stance, PolicyStance::Allow);
    }

    #[test]
    fn unknown_flags_are_rejected() {
        assert!(Options::parse_go(["gcs", "-bogus"].map(String::from)).is_err());
    }
}

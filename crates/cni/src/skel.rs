//! The CNI protocol (spec §2.2): the command and its arguments from the environment, the
//! configuration from stdin, the checks the reference's skel (containernetworking/cni
//! v1.1.2) makes before a handler runs, the dispatch, and what is printed.
//!
//! Differences from that skel, each deliberate:
//!
//! * versions 0.3.1 and 1.1.0 are accepted ([`crate::version`]); 1.1.0 brings `GC` and
//!   `STATUS` (they need a configuration at 1.1.0 or later, as `CHECK` needs 0.4.0);
//! * an unknown `CNI_COMMAND` is reported as such before the container id and interface
//!   name are checked;
//! * stdin is bounded ([`MAX_STDIN`]);
//! * handler errors carry the Windows plugins' codes 66 / 71 / 81 instead of 999, and the
//!   process exits with the error's code ([`crate::error`]);
//! * error objects carry `cniVersion`, as the specification's error object does: the
//!   configuration's version when it is one these plugins speak, else [`CURRENT_VERSION`];
//! * `VERSION` answers with the `cniVersion` of its input when there is one (the
//!   specification's "the value of cniVersion specified on input"; the reference always
//!   prints its own), else [`CURRENT_VERSION`]; input that is not a configuration is ignored,
//!   never an error;
//! * HNS unreachable is code 11 "try again later" (50 for `STATUS`, whose code it is).

use std::io::{Read, Write};

use crate::ci::ci_struct;
use crate::error::{
    CniError, PluginError, ERR_DECODING, ERR_INCOMPATIBLE_VERSION, ERR_INVALID_CONFIG,
    ERR_INVALID_ENV, ERR_IO, ERR_UNKNOWN_CONTAINER,
};
use crate::result::{chain_result, CniResult};
use crate::version::{self, SpecVersion, CHECK_MIN, CURRENT_VERSION, GC_MIN, SUPPORTED_VERSIONS};

/// The text printed to stderr when the plugin runs without `CNI_COMMAND`.
pub const ABOUT: &str = "CNI plugin WinCni";

/// The largest network configuration read from stdin (configurations are a few KiB).
pub const MAX_STDIN: usize = 1 << 20;

/// A CNI command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `ADD`.
    Add,
    /// `DEL`.
    Del,
    /// `CHECK`.
    Check,
    /// `VERSION`.
    Version,
    /// `GC` (spec 1.1.0).
    Gc,
    /// `STATUS` (spec 1.1.0).
    Status,
}

impl Command {
    /// Parses `CNI_COMMAND`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            _ => return None,
        })
    }

    /// The environment variables this command requires, besides `CNI_COMMAND`.
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => {
                &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
            }
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
            // The 1.1.0 text makes CNI_PATH optional for STATUS, and Go's skel requires
            // nothing for GC: a delegate then fails to be found, not the request.
            Command::Gc | Command::Status => &[],
            Command::Version => &[],
        }
    }
}

/// The arguments of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdArgs {
    /// The command.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`.
    pub args: String,
    /// `CNI_PATH`.
    pub path: String,
    /// The network configuration (stdin).
    pub stdin: Vec<u8>,
}

/// What a plugin does for each command; the protocol checks have passed when it is called.
pub trait Handler {
    /// `ADD`: the result, printed in the configuration's version.
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError>;
    /// `DEL` (idempotent).
    fn del(&self, args: &CmdArgs) -> Result<(), PluginError>;
    /// `CHECK`.
    fn check(&self, args: &CmdArgs) -> Result<(), PluginError>;
    /// `GC`.
    fn gc(&self, args: &CmdArgs) -> Result<(), PluginError>;
    /// `STATUS`.
    fn status(&self, args: &CmdArgs) -> Result<(), PluginError>;
}

ci_struct! {
    /// The keys the protocol layer reads from the configuration.
    pub struct ConfHead {
        "cniVersion" cni_version: String,
        "name" name: String,
    }
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`: the container id and network name charset.
pub fn valid_id(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The reference's interface name check.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let err = |msg: &str, details: &str| Err(CniError::new(ERR_INVALID_ENV, msg, details));
    if name.is_empty() {
        return err("interface name is empty", "");
    }
    if name.len() > 15 {
        return err(
            "interface name is too long",
            "interface name should be less than 16 characters",
        );
    }
    if name == "." || name == ".." {
        return err("interface name is . or ..", "");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return err(
            "interface name contains / or : or whitespace characters",
            "",
        );
    }
    Ok(())
}

fn read_stdin(stdin: &mut dyn Read) -> Result<Vec<u8>, CniError> {
    let mut data = Vec::new();
    stdin
        .take(MAX_STDIN as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| CniError::new(ERR_IO, format!("error reading from stdin: {e}"), ""))?;
    if data.len() > MAX_STDIN {
        return Err(CniError::new(
            ERR_IO,
            format!("error reading from stdin: the network configuration is larger than {MAX_STDIN} bytes"),
            "",
        ));
    }
    Ok(data)
}

/// The checks of the configuration, container id and interface name the reference's skel
/// makes before any command but VERSION.
fn validate(args: &CmdArgs) -> Result<(), CniError> {
    let head: ConfHead = serde_json::from_slice(&args.stdin).map_err(|e| {
        CniError::new(
            ERR_DECODING,
            format!("error unmarshall network config: {e}"),
            "",
        )
    })?;
    if head.name.is_empty() {
        return Err(CniError::new(
            ERR_INVALID_CONFIG,
            "missing network name",
            "",
        ));
    }
    if !valid_id(&head.name) {
        return Err(CniError::new(
            ERR_INVALID_CONFIG,
            "invalid characters found in network name",
            head.name.clone(),
        ));
    }
    if matches!(args.command, Command::Add | Command::Del | Command::Check) {
        if args.container_id.is_empty() {
            return Err(CniError::new(
                ERR_UNKNOWN_CONTAINER,
                "missing containerID",
                "",
            ));
        }
        if !valid_id(&args.container_id) {
            return Err(CniError::new(
                ERR_INVALID_ENV,
                "invalid characters in containerID",
                args.container_id.clone(),
            ));
        }
        validate_ifname(&args.ifname)?;
    }
    Ok(())
}

/// Reads and checks everything the protocol defines; `Ok(None)` when there is no command
/// (the about text is due).
fn cmd_args(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
) -> Result<Option<CmdArgs>, CniError> {
    let get = |name: &str| env(name).unwrap_or_default();
    let cmd_text = get("CNI_COMMAND");
    if cmd_text.is_empty() {
        return Ok(None);
    }
    let command = Command::parse(&cmd_text).ok_or_else(|| {
        CniError::new(
            ERR_INVALID_ENV,
            format!("unknown CNI_COMMAND: {cmd_text}"),
            "",
        )
    })?;
    let missing: Vec<&str> = command
        .required()
        .iter()
        .copied()
        .filter(|v| get(v).is_empty())
        .collect();
    if !missing.is_empty() {
        return Err(CniError::new(
            ERR_INVALID_ENV,
            format!("required env variables [{}] missing", missing.join(",")),
            "",
        ));
    }
    let args = CmdArgs {
        command,
        container_id: get("CNI_CONTAINERID"),
        netns: get("CNI_NETNS"),
        ifname: get("CNI_IFNAME"),
        args: get("CNI_ARGS"),
        path: get("CNI_PATH"),
        stdin: match read_stdin(stdin) {
            Ok(data) => data,
            // VERSION's input only names the caller's version: never a reason to fail.
            Err(e) if command == Command::Version => {
                tracing::warn!(error = %e, "VERSION: input not read; answering without it");
                Vec::new()
            }
            Err(e) => return Err(e),
        },
    };
    if command != Command::Version {
        validate(&args).map_err(|mut e| {
            e.cni_version = error_version(&args.stdin);
            e
        })?;
    }
    Ok(Some(args))
}

/// The configuration's `cniVersion` (0.1.0 when absent).
fn config_version(stdin: &[u8]) -> Result<String, CniError> {
    let head: ConfHead = serde_json::from_slice(stdin)
        .map_err(|e| CniError::new(ERR_DECODING, e.to_string(), ""))?;
    Ok(if head.cni_version.is_empty() {
        version::IMPLICIT_VERSION.to_string()
    } else {
        head.cni_version
    })
}

/// Checks that the configuration's version is supported (and, for CHECK / GC / STATUS,
/// recent enough); returns it.
fn check_version(args: &CmdArgs) -> Result<String, CniError> {
    let v = config_version(&args.stdin)?;
    let min = match args.command {
        Command::Check => Some((CHECK_MIN, "CHECK")),
        Command::Gc => Some((GC_MIN, "GC")),
        Command::Status => Some((GC_MIN, "STATUS")),
        _ => None,
    };
    if let Some((min, verb)) = min {
        let recent = min
            .le_text(&v)
            .map_err(|e| CniError::new(ERR_DECODING, e, ""))?;
        if !recent {
            return Err(CniError::new(
                ERR_INCOMPATIBLE_VERSION,
                format!("config version does not allow {verb}"),
                "",
            ));
        }
    }
    if !version::is_supported(&v) {
        return Err(CniError::new(
            ERR_INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            version::incompatible_details(&v),
        ));
    }
    Ok(v)
}

/// The `VERSION` reply to input `stdin` (with its trailing newline, as Go's encoder writes
/// it): `cniVersion` echoes the input's when it is a version, else [`CURRENT_VERSION`].
pub fn version_reply(stdin: &[u8]) -> String {
    let echoed = serde_json::from_slice::<ConfHead>(stdin)
        .ok()
        .map(|h| h.cni_version)
        .filter(|v| SpecVersion::parse(v).is_ok());
    let reply = serde_json::json!({
        "cniVersion": echoed.as_deref().unwrap_or(CURRENT_VERSION),
        "supportedVersions": SUPPORTED_VERSIONS,
    });
    format!("{reply}\n")
}

/// The `cniVersion` an error of an invocation with input `stdin` is printed with.
fn error_version(stdin: &[u8]) -> String {
    match config_version(stdin) {
        Ok(v) if version::is_supported(&v) => v,
        _ => CURRENT_VERSION.to_string(),
    }
}

fn dispatch<H: Handler>(
    args: &CmdArgs,
    handler: impl FnOnce() -> Result<H, PluginError>,
) -> Result<Option<String>, CniError> {
    if args.command == Command::Version {
        return Ok(Some(version_reply(&args.stdin)));
    }
    let v = check_version(args)?;
    let h = handler().map_err(|e| match args.command {
        // STATUS reports an HNS it cannot reach as "not available", its own code.
        Command::Status => PluginError::NotAvailable(e.to_string()),
        _ => e,
    })?;
    match args.command {
        Command::Add => {
            // Read before anything is created: a bad prevResult fails the ADD cleanly.
            let prev = chain_result(&args.stdin)?;
            let result = h.add(args)?;
            Ok(Some(result.to_json_chained(&v, prev.as_ref())?))
        }
        Command::Del => h.del(args).map(|()| None).map_err(Into::into),
        Command::Check => h.check(args).map(|()| None).map_err(Into::into),
        Command::Gc => h.gc(args).map(|()| None).map_err(Into::into),
        Command::Status => h.status(args).map(|()| None).map_err(Into::into),
        Command::Version => unreachable!("handled above"),
    }
}

/// Runs one invocation: reads the environment (through `env`) and stdin, runs the command
/// with the handler `handler` builds (not built for VERSION or a failed check), prints the
/// result or the error, and returns the exit status.
pub fn run<H: Handler>(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    handler: impl FnOnce() -> Result<H, PluginError>,
) -> i32 {
    let outcome = match cmd_args(env, stdin) {
        Ok(None) => {
            let about = format!(
                "{ABOUT}\nCNI protocol versions supported: {}\n",
                SUPPORTED_VERSIONS.join(", ")
            );
            return match stderr.write_all(about.as_bytes()) {
                Ok(()) => 0,
                Err(_) => ERR_IO as i32,
            };
        }
        Ok(Some(args)) => {
            tracing::debug!(
                command = ?args.command,
                container = %args.container_id,
                netns = %args.netns,
                ifname = %args.ifname,
                cni_args = %args.args,
                "invocation"
            );
            dispatch(&args, handler).map_err(|mut e| {
                e.cni_version = error_version(&args.stdin);
                e
            })
        }
        Err(e) => Err(e),
    };
    let (text, status) = match outcome {
        Ok(Some(text)) => (text, 0),
        Ok(None) => (String::new(), 0),
        Err(mut e) => {
            if e.cni_version.is_empty() {
                e.cni_version = CURRENT_VERSION.to_string();
            }
            tracing::error!(code = e.code, msg = %e.msg, details = %e.details, "command failed");
            let status = e.exit_status();
            (e.to_json(), status)
        }
    };
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => status,
        // The runtime reads stdout; with it gone there is nobody to tell.
        Err(_) if status != 0 => status,
        Err(_) => ERR_IO as i32,
    }
}

#[cfg(test)]
#[path = "skel_tests.rs"]
mod tests;

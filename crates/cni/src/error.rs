//! Errors: the CNI error object a plugin prints ([`CniError`]), its codes, and the typed
//! errors of the plugin's own work ([`PluginError`]) with their one conversion to a code.
//!
//! Codes:
//!
//! * the CNI specification's codes for what the protocol layer detects (1 incompatible
//!   version, 3 unknown container, 4 bad environment, 5 I/O, 6 decoding, 7 invalid network
//!   configuration, 11 try again later, 50 / 51 plugin not available);
//! * the Windows plugins' well-known codes for failures of the work itself: **66** general
//!   failure, **71** port already in use, **81** network not found (the upstream change that
//!   documented them, spec §2.2). The reference returns 999 for all of these; 999 is not
//!   used. (They sit in the 0–99 range the CNI specification reserves for its own codes;
//!   kept because the Windows plugins' documentation gives them this meaning.)
//! * an IPAM delegate's own CNI error keeps its code, message and details, as Go's skel
//!   passes a delegate's error on.
//!
//! The process exits with the error's code (every code used fits in an exit status), so a
//! caller that only sees the exit status still tells 71 from 81; the CNI specification only
//! asks for a non-zero status, and the reference exits 1.

use serde::Serialize;

/// CNI code 1: incompatible CNI version.
pub const ERR_INCOMPATIBLE_VERSION: u32 = 1;
/// CNI code 3: container unknown or does not exist.
pub const ERR_UNKNOWN_CONTAINER: u32 = 3;
/// CNI code 4: invalid necessary environment variables.
pub const ERR_INVALID_ENV: u32 = 4;
/// CNI code 5: I/O failure.
pub const ERR_IO: u32 = 5;
/// CNI code 6: failed to decode content.
pub const ERR_DECODING: u32 = 6;
/// CNI code 7: invalid network config.
pub const ERR_INVALID_CONFIG: u32 = 7;
/// CNI code 11: a transient condition; the runtime should retry later (HNS or hnsd does
/// not answer).
pub const ERR_TRY_AGAIN_LATER: u32 = 11;
/// CNI code 50 (spec 1.1.0): the plugin is not available (STATUS).
pub const ERR_PLUGIN_NOT_AVAILABLE: u32 = 50;
/// CNI code 51 (spec 1.1.0): the plugin is not available, and existing containers may be
/// limited too (STATUS).
pub const ERR_PLUGIN_LIMITED: u32 = 51;
/// Windows plugins' code 66: a general failure of the plugin's work.
pub const ERR_GENERAL: u32 = 66;
/// Windows plugins' code 71: a host port of a port mapping is already in use.
pub const ERR_PORT_IN_USE: u32 = 71;
/// Windows plugins' code 81: the network named by the configuration does not exist.
pub const ERR_NETWORK_NOT_FOUND: u32 = 81;

/// `RPC_S_SERVER_UNAVAILABLE` as an HRESULT: what a call returns when HNS (or hnsd) is not
/// running.
const HR_SERVER_UNAVAILABLE: u32 = 0x8007_06BA;

/// The CNI error object: `{"cniVersion": "...", "code": N, "msg": "...", "details": "..."}`,
/// printed on stdout. The specification's error object carries `cniVersion` (Go's
/// `types.Error` omits it; decoders ignore the extra key); the protocol layer fills it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!("; {details}") })]
pub struct CniError {
    /// The version of the output (omitted while empty).
    #[serde(rename = "cniVersion", skip_serializing_if = "String::is_empty")]
    pub cni_version: String,
    /// The code.
    pub code: u32,
    /// The message.
    pub msg: String,
    /// Details (omitted when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with a code, message and details.
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            cni_version: String::new(),
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// The JSON text the plugin prints: indented by four spaces, as the reference's skel.
    pub fn to_json(&self) -> String {
        crate::result::to_indented_json(self)
    }

    /// The process exit status: the code itself (every code used is below 256).
    pub fn exit_status(&self) -> i32 {
        match i32::try_from(self.code) {
            Ok(c) if (1..=255).contains(&c) => c,
            _ => 1,
        }
    }
}

/// A CNI error a delegate (the IPAM plugin) printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegateFailure {
    /// The delegate's name.
    pub plugin: String,
    /// The command it ran.
    pub command: String,
    /// What it printed.
    pub error: CniError,
}

/// An error of the plugin's work (ADD, DEL, CHECK, GC, STATUS).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The network configuration is not valid JSON of the expected shape.
    #[error("decoding the network configuration: {0}")]
    Decode(String),
    /// The network configuration is invalid (found while doing the work).
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// The network does not exist and cannot be created from the configuration.
    #[error("network {name:?} not found: {reason}")]
    NetworkNotFound {
        /// The network name.
        name: String,
        /// Why it was needed / what was tried.
        reason: String,
    },
    /// An HCN call failed; `context` says what the plugin was doing.
    #[error("{context}: {source}")]
    Hcn {
        /// What the plugin was doing.
        context: String,
        /// The HCN error (printed above, not exposed again as a source).
        source: hcn::Error,
    },
    /// The IPAM plugin failed.
    #[error("ipam: {0}")]
    Ipam(String),
    /// The IPAM plugin failed with a CNI error of its own: passed on with its code, as
    /// Go's skel passes a delegate's `types.Error` on unwrapped.
    #[error("ipam {} {}: {}", .0.plugin, .0.command, .0.error)]
    Delegate(Box<DelegateFailure>),
    /// The namespace named by `CNI_NETNS` cannot be used.
    #[error("namespace {netns:?}: {reason}")]
    Namespace {
        /// `CNI_NETNS`.
        netns: String,
        /// What was wrong.
        reason: String,
    },
    /// An environment variable's value is unusable (CNI code 4; the text names it).
    #[error("{0}")]
    InvalidEnv(String),
    /// HNS (or hnsd) cannot be reached (STATUS).
    #[error("HNS is not available: {0}")]
    NotAvailable(String),
    /// Something else went wrong.
    #[error("{0}")]
    Other(String),
}

impl PluginError {
    /// An HCN error with what the plugin was doing.
    pub fn hcn(context: impl Into<String>, source: hcn::Error) -> Self {
        PluginError::Hcn {
            context: context.into(),
            source,
        }
    }

    /// The CNI code of this error (the one conversion, see the module docs).
    pub fn code(&self) -> u32 {
        match self {
            PluginError::Decode(_) => ERR_DECODING,
            PluginError::Config(_) => ERR_INVALID_CONFIG,
            PluginError::NetworkNotFound { .. } => ERR_NETWORK_NOT_FOUND,
            PluginError::Hcn { source, .. } => {
                if matches!(source, hcn::Error::NetworkNotFound { .. })
                    || hcn::error::check_error_with_code(
                        source,
                        hcn::hresult::HCN_E_NETWORK_NOT_FOUND,
                    )
                {
                    ERR_NETWORK_NOT_FOUND
                } else if matches!(
                    source,
                    hcn::Error::NotAvailable(_) | hcn::Error::Transport(_)
                ) || source
                    .call()
                    .is_some_and(|c| c.hresult().value() == HR_SERVER_UNAVAILABLE)
                {
                    ERR_TRY_AGAIN_LATER
                } else if hcn::error::is_port_already_exists_error(source) {
                    ERR_PORT_IN_USE
                } else {
                    ERR_GENERAL
                }
            }
            PluginError::NotAvailable(_) => ERR_PLUGIN_NOT_AVAILABLE,
            PluginError::InvalidEnv(_) => ERR_INVALID_ENV,
            PluginError::Delegate(d) => d.error.code,
            PluginError::Ipam(_) | PluginError::Namespace { .. } | PluginError::Other(_) => {
                ERR_GENERAL
            }
        }
    }
}

impl From<PluginError> for CniError {
    fn from(e: PluginError) -> Self {
        if let PluginError::Delegate(d) = e {
            let DelegateFailure {
                plugin,
                command,
                error,
            } = *d;
            let details = if error.details.is_empty() {
                format!("from IPAM plugin {plugin} ({command})")
            } else {
                format!("{} (IPAM plugin {plugin}, {command})", error.details)
            };
            return CniError::new(error.code, error.msg, details);
        }
        let code = e.code();
        let msg = match code {
            ERR_NETWORK_NOT_FOUND => {
                "Network not found. The network specified in the CNI config was not found"
            }
            ERR_PORT_IN_USE => "Port specified is already in use",
            ERR_INVALID_CONFIG => "invalid network configuration",
            ERR_DECODING => "failed to decode the network configuration",
            ERR_PLUGIN_NOT_AVAILABLE => "plugin not available",
            ERR_TRY_AGAIN_LATER => "HNS is not available; try again later",
            // The specification wants the variable named in the message itself.
            ERR_INVALID_ENV => return CniError::new(code, e.to_string(), ""),
            _ => "failure in cni",
        };
        CniError::new(code, msg, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcn::HcnError;

    fn call(hr: u32) -> hcn::Error {
        hcn::Error::Call(HcnError::new("hcnCreateEndpoint", hr as i32, ""))
    }

    #[test]
    fn json_is_indented_and_omits_empty_details() {
        let e = CniError::new(4, "required env variables [CNI_NETNS] missing", "");
        assert_eq!(
            e.to_json(),
            "{\n    \"code\": 4,\n    \"msg\": \"required env variables [CNI_NETNS] missing\"\n}"
        );
        let e = CniError::new(1, "incompatible CNI versions", "d");
        assert!(e.to_json().contains("\"details\": \"d\""));
        assert_eq!(e.to_string(), "incompatible CNI versions; d");
    }

    #[test]
    fn exit_status_is_the_code() {
        assert_eq!(CniError::new(71, "", "").exit_status(), 71);
        assert_eq!(CniError::new(999, "", "").exit_status(), 1);
        assert_eq!(CniError::new(0, "", "").exit_status(), 1);
    }

    #[test]
    fn network_not_found_is_81() {
        let typed = PluginError::hcn(
            "get network",
            hcn::Error::NetworkNotFound {
                network_name: "n".into(),
                network_id: String::new(),
            },
        );
        assert_eq!(typed.code(), 81);
        let hr = PluginError::hcn(
            "open network",
            call(hcn::hresult::HCN_E_NETWORK_NOT_FOUND.value()),
        );
        assert_eq!(hr.code(), 81);
        let own = PluginError::NetworkNotFound {
            name: "n".into(),
            reason: "no ipam.subnet to create it from".into(),
        };
        let cni = CniError::from(own);
        assert_eq!(cni.code, 81);
        assert!(cni.msg.starts_with("Network not found."));
        assert!(cni.details.contains("no ipam.subnet"));
    }

    #[test]
    fn port_in_use_is_71() {
        let e = PluginError::hcn(
            "create endpoint",
            call(hcn::hresult::HCN_E_PORT_ALREADY_EXISTS.value()),
        );
        assert_eq!(e.code(), 71);
        assert_eq!(CniError::from(e).msg, "Port specified is already in use");
    }

    #[test]
    fn everything_else_is_66_with_the_error_text() {
        let e = PluginError::hcn("create endpoint", call(0x8007_0005));
        assert_eq!(e.code(), 66);
        let cni = CniError::from(e);
        assert_eq!(cni.msg, "failure in cni");
        assert!(
            cni.details
                .starts_with("create endpoint: hcnCreateEndpoint failed"),
            "{}",
            cni.details
        );
        assert_eq!(PluginError::Ipam("x".into()).code(), 66);
        assert_eq!(PluginError::Config("x".into()).code(), 7);
        assert_eq!(PluginError::NotAvailable("x".into()).code(), 50);
    }

    #[test]
    fn a_delegate_error_keeps_its_code_and_message() {
        let e = PluginError::Delegate(Box::new(DelegateFailure {
            plugin: "host-local".into(),
            command: "ADD".into(),
            error: CniError::new(11, "no IP addresses available", "range 10.0.0.0/30"),
        }));
        assert_eq!(e.code(), 11);
        let cni = CniError::from(e);
        assert_eq!(
            (cni.code, cni.msg.as_str()),
            (11, "no IP addresses available")
        );
        assert_eq!(
            cni.details,
            "range 10.0.0.0/30 (IPAM plugin host-local, ADD)"
        );
    }

    #[test]
    fn an_unreachable_hns_is_11_try_again_later() {
        for source in [
            call(HR_SERVER_UNAVAILABLE),
            hcn::Error::NotAvailable("no socket".into()),
            hcn::Error::Transport("reset".into()),
        ] {
            let e = PluginError::hcn("look up network", source);
            assert_eq!(e.code(), ERR_TRY_AGAIN_LATER, "{e}");
            assert_eq!(CniError::from(e).code, 11);
        }
    }

    #[test]
    fn cni_version_is_printed_first_when_set() {
        let mut e = CniError::new(7, "m", "");
        e.cni_version = "1.0.0".into();
        assert_eq!(
            e.to_json(),
            "{\n    \"cniVersion\": \"1.0.0\",\n    \"code\": 7,\n    \"msg\": \"m\"\n}"
        );
    }
}

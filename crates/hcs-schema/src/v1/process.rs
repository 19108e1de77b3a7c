//! v1 process creation document (`schema1.ProcessConfig`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::go::{is_empty, null_default};

/// Parameters of `HcsCreateProcess` in schema 1.0. Every key is `omitempty`, but `ConsoleSize`
/// is a Go `[2]uint` array, which `omitempty` never drops: it is always present, `[0,0]` when
/// unset (the reference zeroes it unless `EmulateConsole`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    /// Executable (Windows).
    #[serde(
        rename = "ApplicationName",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub application_name: String,
    /// Command line (Windows).
    #[serde(
        rename = "CommandLine",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub command_line: String,
    /// Argument vector (LCOW).
    #[serde(
        rename = "CommandArgs",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub command_args: Vec<String>,
    /// User to run as.
    #[serde(
        rename = "User",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub user: String,
    /// Working directory.
    #[serde(
        rename = "WorkingDirectory",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub working_directory: String,
    /// Environment; Go sorts the keys when encoding, as the `BTreeMap` does.
    #[serde(
        rename = "Environment",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub environment: BTreeMap<String, String>,
    /// Allocate a console (TTY).
    #[serde(
        rename = "EmulateConsole",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub emulate_console: bool,
    /// Create a stdin pipe.
    #[serde(
        rename = "CreateStdInPipe",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub create_std_in_pipe: bool,
    /// Create a stdout pipe.
    #[serde(
        rename = "CreateStdOutPipe",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub create_std_out_pipe: bool,
    /// Create a stderr pipe.
    #[serde(
        rename = "CreateStdErrPipe",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub create_std_err_pipe: bool,
    /// Console `[height, width]`; always present.
    #[serde(rename = "ConsoleSize", deserialize_with = "go_array2")]
    pub console_size: [u64; 2],
    /// Run in the utility VM instead of the container (LCOW).
    #[serde(
        rename = "CreateInUtilityVm",
        skip_serializing_if = "is_empty",
        deserialize_with = "null_default"
    )]
    pub create_in_utility_vm: bool,
    /// The OCI process spec, passed through raw (LCOW).
    #[serde(rename = "OCISpecification", skip_serializing_if = "is_empty")]
    pub oci_specification: Option<Value>,
}

/// Reads a Go `[2]uint`: a shorter JSON array leaves the remaining elements zero, a longer
/// one has its extra elements dropped, `null` leaves the array zero.
fn go_array2<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<[u64; 2], D::Error> {
    let items = Option::<Vec<u64>>::deserialize(deserializer)?.unwrap_or_default();
    let mut out = [0; 2];
    for (slot, item) in out.iter_mut().zip(items) {
        *slot = item;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn default_emits_only_the_console_size_array() {
        assert_eq!(
            json::to_string(&ProcessConfig::default()).unwrap(),
            r#"{"ConsoleSize":[0,0]}"#
        );
    }

    #[test]
    fn full_document_round_trips() {
        let doc = concat!(
            r#"{"ApplicationName":"cmd.exe","CommandLine":"cmd /c dir","CommandArgs":["sh","-c","ls"],"#,
            r#""User":"ContainerUser","WorkingDirectory":"C:\\","#,
            r#""Environment":{"A":"1","PATH":"C:\\Windows","a":"2"},"#,
            r#""EmulateConsole":true,"CreateStdInPipe":true,"CreateStdOutPipe":true,"CreateStdErrPipe":true,"#,
            r#""ConsoleSize":[25,80],"CreateInUtilityVm":true,"OCISpecification":{"ociVersion":"1.1.0"}}"#
        );
        let p: ProcessConfig = json::from_str(doc).unwrap();
        assert_eq!(p.console_size, [25, 80]);
        assert_eq!(p.environment["a"], "2");
        assert_eq!(p.oci_specification.as_ref().unwrap()["ociVersion"], "1.1.0");
        assert_eq!(json::to_string(&p).unwrap(), doc);
    }

    #[test]
    fn environment_is_sorted_like_go() {
        let p = ProcessConfig {
            environment: [("b", "2"), ("B", "1"), ("a", "0")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&p).unwrap(),
            r#"{"Environment":{"B":"1","a":"0","b":"2"},"ConsoleSize":[0,0]}"#
        );
    }

    #[test]
    fn console_size_reads_like_a_go_array() {
        let short: ProcessConfig = json::from_str(r#"{"ConsoleSize":[7]}"#).unwrap();
        assert_eq!(short.console_size, [7, 0]);
        let long: ProcessConfig = json::from_str(r#"{"ConsoleSize":[1,2,3]}"#).unwrap();
        assert_eq!(long.console_size, [1, 2]);
        assert!(json::from_str::<ProcessConfig>(r#"{"ConsoleSize":[-1,2]}"#).is_err());
    }
}

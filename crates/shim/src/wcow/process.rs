//! Processes of a process-isolated Windows container: the HCS `ProcessParameters` of an OCI
//! process (`hcsshim:internal/cmd/cmd.go`), Windows command-line quoting, what a containerd
//! signal number means for a Windows process (`internal/signals`), and the pod pause
//! fixup (`cmd/containerd-shim-runhcs-v1/pod.go`).

use std::collections::BTreeMap;

use hcs::cow::WindowsSignal;
use hcs_schema::v2::ProcessParameters;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The parts of an OCI `Process` a Windows process uses.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OciProcess {
    terminal: bool,
    #[serde(rename = "consoleSize")]
    console_size: Option<ConsoleSize>,
    user: OciUser,
    args: Vec<String>,
    #[serde(rename = "commandLine")]
    command_line: String,
    env: Vec<String>,
    cwd: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConsoleSize {
    height: u32,
    width: u32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OciUser {
    username: String,
}

/// The typed WCOW `ProcessParameters` of `process` (an OCI `Process` as JSON), as
/// `cmd.go` builds them: `CommandLine` = `process.commandLine`, else the arguments joined
/// by [`compose_command_line`]; `User` = `process.user.username`; `WorkingDirectory` =
/// `process.cwd`; `EmulateConsole` = `process.terminal`; a pipe per stream the caller
/// relays; `Environment` from the `K=V` entries (entries without `=` or with an empty
/// value are dropped; a later duplicate wins); `ConsoleSize` = `[height, width]` when
/// `process.consoleSize` is set (even `0×0`).
///
/// Encode with `hcs_schema::json` to keep Go's key order.
pub fn parameters(
    process: &serde_json::Value,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<ProcessParameters> {
    let p: OciProcess = hcs_schema::json::from_value(process.clone())
        .map_err(|e| Error::InvalidArgument(format!("the OCI process is malformed: {e}")))?;
    let command_line = if p.command_line.is_empty() {
        compose_command_line(&p.args)
    } else {
        p.command_line
    };
    let mut environment = BTreeMap::new();
    for entry in &p.env {
        // Go's SplitN(v, "=", 2): the name is up to the first '='; a value may hold more.
        if let Some((k, v)) = entry.split_once('=') {
            if !v.is_empty() {
                environment.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let console_size = match p.console_size {
        // Go converts the uints with int32(): a wrap, not a failure.
        Some(c) => vec![c.height as i32, c.width as i32],
        None => Vec::new(),
    };
    Ok(ProcessParameters {
        command_line,
        user: p.user.username,
        working_directory: p.cwd,
        environment,
        emulate_console: p.terminal,
        create_std_in_pipe: stdin,
        create_std_out_pipe: stdout,
        create_std_err_pipe: stderr,
        console_size,
        ..Default::default()
    })
}

/// WCOW `ProcessParameters` JSON (see [`parameters`]). A JSON object's keys come out
/// sorted; use [`parameters`] where Go's key order matters.
pub fn process_parameters(
    process: &serde_json::Value,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<serde_json::Value> {
    let p = parameters(process, stdin, stdout, stderr)?;
    serde_json::to_value(&p)
        .map_err(|e| Error::Other(format!("encode the process parameters: {e}")))
}

/// The command line the reference builds from an argument vector (`cmd.go escapeArgs`):
/// each argument escaped as Go's `syscall.EscapeArg` does, joined by single spaces.
///
/// Unlike `windows.ComposeCommandLine`, the program name gets no special rule: it is
/// escaped like any other argument, as the reference does for WCOW processes.
pub fn compose_command_line(args: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        escape_arg_into(&mut out, a);
    }
    out
}

/// Go's `syscall.EscapeArg`: `""` for an empty argument; otherwise a `"` gets a
/// backslash, backslashes get doubled only where they precede a `"` (or the closing
/// quote), and the argument is quoted only if it holds a space or a tab.
fn escape_arg_into(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push_str("\"\"");
        return;
    }
    let needs_backslash = s.contains(['"', '\\']);
    let has_space = s.contains([' ', '\t']);
    if !needs_backslash && !has_space {
        out.push_str(s);
        return;
    }
    if !needs_backslash {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    if has_space {
        out.push('"');
    }
    let mut slashes = 0;
    for c in s.chars() {
        match c {
            '\\' => slashes += 1,
            '"' => {
                // The backslashes before a quote are doubled, then the quote escaped.
                out.extend(std::iter::repeat_n('\\', slashes + 1));
                slashes = 0;
            }
            _ => slashes = 0,
        }
        out.push(c);
    }
    if has_space {
        // Backslashes before the closing quote would escape it: double them.
        out.extend(std::iter::repeat_n('\\', slashes));
        out.push('"');
    }
}

/// What a containerd signal means for a Windows process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WcowSignal {
    /// Send this console control event (`HcsSignalProcess` / GCS SignalProcess).
    Send(WindowsSignal),
    /// Terminate the process (`HcsTerminateProcess`).
    Terminate,
}

/// What containerd signal number `signal` means for a Windows process
/// (`signals.ValidateWCOW`). With signal support (RS5+ and process-isolated or a guest
/// that advertises it): 0 CtrlC, 1 CtrlBreak, 2 CtrlClose, 5 CtrlLogOff, 6 and 15 (SIGTERM)
/// CtrlShutdown, 9 (SIGKILL) terminate. Without: only 6, 9 and 15, all meaning terminate.
/// Anything else is FailedPrecondition "signal N: invalid signal value" (the reference's
/// `ErrInvalidSignal` wrapped by Kill).
pub fn signal(signal: u32, supported: bool) -> Result<WcowSignal> {
    let meaning = match (signal, supported) {
        (6 | 9 | 15, false) => Some(WcowSignal::Terminate),
        (_, false) => None,
        (0, true) => Some(WcowSignal::Send(WindowsSignal::CtrlC)),
        (1, true) => Some(WcowSignal::Send(WindowsSignal::CtrlBreak)),
        (2, true) => Some(WcowSignal::Send(WindowsSignal::CtrlClose)),
        (5, true) => Some(WcowSignal::Send(WindowsSignal::CtrlLogOff)),
        (6 | 15, true) => Some(WcowSignal::Send(WindowsSignal::CtrlShutdown)),
        (9, true) => Some(WcowSignal::Terminate),
        (_, true) => None,
    };
    meaning
        .ok_or_else(|| Error::FailedPrecondition(format!("signal {signal}: invalid signal value")))
}

/// The command of a pause image without an explicit entrypoint: it exits at once.
const DEFAULT_PAUSE_COMMAND: &str = r"c:\windows\system32\cmd.exe";
/// What the reference runs instead so that the pod sandbox stays up.
pub const PAUSE_KEEPALIVE_COMMAND: &str = "cmd /c ping -t 127.0.0.1 > nul";

/// The pod pause fixup for a process-isolated WCOW sandbox (`pod.go createPod`): when the
/// pause process is exactly `c:\windows\system32\cmd.exe` (its single argument or its
/// `commandLine`, compared case-insensitively as Go's `strings.EqualFold`),
/// `process.commandLine` becomes `cmd /c ping -t 127.0.0.1 > nul` (the arguments stay; the
/// command line wins over them). Returns whether it changed the spec.
pub fn fix_pause_command(spec: &mut serde_json::Value) -> bool {
    let Some(process) = spec
        .get_mut("process")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return false;
    };
    let single_arg = match process.get("args").and_then(serde_json::Value::as_array) {
        Some(args) if args.len() == 1 => args[0]
            .as_str()
            .is_some_and(|a| equal_fold(a, DEFAULT_PAUSE_COMMAND)),
        _ => false,
    };
    let command_line = process
        .get("commandLine")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|c| equal_fold(c, DEFAULT_PAUSE_COMMAND));
    if !(single_arg || command_line) {
        return false;
    }
    process.insert(
        "commandLine".into(),
        serde_json::Value::String(PAUSE_KEEPALIVE_COMMAND.into()),
    );
    true
}

/// Go's `strings.EqualFold`, close enough for the ASCII path it compares: equal under
/// Unicode lower-casing.
fn equal_fold(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_lines_are_escaped_as_go_escape_arg() {
        // Expected values are Go's syscall.EscapeArg outputs joined by spaces.
        let cases: &[(&[&str], &str)] = &[
            (&[], ""),
            (&["cmd"], "cmd"),
            (&["cmd", "/c", "echo", "hi"], "cmd /c echo hi"),
            (&[""], r#""""#),
            (&["a", "", "b"], r#"a "" b"#),
            (&["hello world"], r#""hello world""#),
            (&["tab\there"], "\"tab\there\""),
            (
                &[r"C:\Program Files\app.exe", "x"],
                r#""C:\Program Files\app.exe" x"#,
            ),
            (&[r"C:\dir\"], r"C:\dir\"),
            (&[r"C:\my dir\"], r#""C:\my dir\\""#),
            (&[r"a\\b c\\"], r#""a\\b c\\\\""#),
            (&[r#"say "hi""#], r#""say \"hi\"""#),
            (&[r#"a"b"#], r#"a\"b"#),
            (&[r#"a\"b"#], r#"a\\\"b"#),
            (&[r#"a\\"b c"#], r#""a\\\\\"b c""#),
            (&[r#"""#], r#"\""#),
            (
                &["ping", "-t", "127.0.0.1", ">", "nul"],
                "ping -t 127.0.0.1 > nul",
            ),
            (&["naïve ünïcode"], "\"naïve ünïcode\""),
        ];
        for (input, want) in cases {
            assert_eq!(compose_command_line(&args(input)), *want, "{input:?}");
        }
    }

    #[test]
    fn parameters_follow_cmd_go() {
        let process = json!({
            "terminal": true,
            "consoleSize": {"height": 25, "width": 80},
            "user": {"username": "ContainerUser"},
            "args": ["cmd", "/c", "echo hi"],
            "env": ["PATH=C:\\Windows", "EMPTY=", "NOEQ", "A=b=c", "A=d"],
            "cwd": "C:\\"
        });
        let p = parameters(&process, true, true, false).unwrap();
        // Go json.Marshal of hcsschema.ProcessParameters (declaration order, omitempty).
        assert_eq!(
            hcs_schema::json::to_string(&p).unwrap(),
            concat!(
                r#"{"CommandLine":"cmd /c \"echo hi\"","User":"ContainerUser","WorkingDirectory":"C:\\","#,
                r#""Environment":{"A":"d","PATH":"C:\\Windows"},"EmulateConsole":true,"#,
                r#""CreateStdInPipe":true,"CreateStdOutPipe":true,"ConsoleSize":[25,80]}"#
            )
        );
        let v = process_parameters(&process, true, true, false).unwrap();
        assert_eq!(v["CommandLine"], r#"cmd /c "echo hi""#);
        assert_eq!(v["ConsoleSize"], json!([25, 80]));
        assert!(v.get("CreateStdErrPipe").is_none());
    }

    #[test]
    fn command_line_wins_and_empty_fields_are_omitted() {
        let p = parameters(
            &json!({"commandLine": "ping -t 127.0.0.1", "args": ["ignored"], "consoleSize": {}}),
            false,
            false,
            true,
        )
        .unwrap();
        assert_eq!(
            hcs_schema::json::to_string(&p).unwrap(),
            r#"{"CommandLine":"ping -t 127.0.0.1","CreateStdErrPipe":true,"ConsoleSize":[0,0]}"#
        );
        // Nothing at all: only what is always known.
        let p = parameters(&json!({}), false, false, false).unwrap();
        assert_eq!(hcs_schema::json::to_string(&p).unwrap(), "{}");
        // Go decodes keys case-insensitively and null as absent.
        let p = parameters(&json!({"CWD": "D:\\", "env": null}), false, false, false).unwrap();
        assert_eq!(p.working_directory, "D:\\");
    }

    #[test]
    fn a_malformed_process_is_invalid() {
        for bad in [
            json!({"args": "cmd"}),
            json!({"env": [1]}),
            json!({"terminal": "yes"}),
            json!({"consoleSize": {"height": -1}}),
            json!([]),
        ] {
            let e = parameters(&bad, false, false, false).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e:?}");
            assert!(
                e.to_string().starts_with("the OCI process is malformed"),
                "{e}"
            );
        }
    }

    #[test]
    fn signals_map_as_internal_signals() {
        use WindowsSignal::*;
        let supported = [
            (0, WcowSignal::Send(CtrlC)),
            (1, WcowSignal::Send(CtrlBreak)),
            (2, WcowSignal::Send(CtrlClose)),
            (5, WcowSignal::Send(CtrlLogOff)),
            (6, WcowSignal::Send(CtrlShutdown)),
            (15, WcowSignal::Send(CtrlShutdown)),
            (9, WcowSignal::Terminate),
        ];
        for (n, want) in supported {
            assert_eq!(signal(n, true).unwrap(), want, "{n}");
        }
        for n in [6, 9, 15] {
            assert_eq!(signal(n, false).unwrap(), WcowSignal::Terminate, "{n}");
        }
        for (n, supported) in [
            (3, true),
            (4, true),
            (20, true),
            (0, false),
            (2, false),
            (1, false),
            (u32::MAX, true),
        ] {
            let e = signal(n, supported).unwrap_err();
            assert!(matches!(e, Error::FailedPrecondition(_)), "{e:?}");
            assert_eq!(e.to_string(), format!("signal {n}: invalid signal value"));
        }
    }

    #[test]
    fn the_pause_fixup_matches_only_the_bare_cmd() {
        let fixed = |process: serde_json::Value| {
            let mut spec = json!({ "process": process });
            let changed = fix_pause_command(&mut spec);
            (changed, spec["process"]["commandLine"].clone())
        };
        let keep = json!(PAUSE_KEEPALIVE_COMMAND);
        assert_eq!(
            fixed(json!({"args": [r"c:\windows\system32\cmd.exe"]})),
            (true, keep.clone())
        );
        assert_eq!(
            fixed(json!({"args": [r"C:\Windows\System32\CMD.EXE"]})),
            (true, keep.clone())
        );
        assert_eq!(
            fixed(json!({"commandLine": r"C:\WINDOWS\system32\cmd.exe"})),
            (true, keep.clone())
        );
        assert_eq!(
            fixed(json!({"args": [r"c:\windows\system32\cmd.exe", "/c", "x"]})),
            (false, serde_json::Value::Null)
        );
        assert_eq!(
            fixed(json!({"args": ["pause.exe"]})),
            (false, serde_json::Value::Null)
        );
        assert_eq!(
            fixed(json!({"args": ["cmd.exe"], "commandLine": "cmd.exe"})),
            (false, json!("cmd.exe"))
        );
        let mut no_process = json!({"windows": {}});
        assert!(!fix_pause_command(&mut no_process));
        assert_eq!(no_process, json!({"windows": {}}));
        // The arguments stay: the command line wins over them in process_parameters.
        let mut spec = json!({"process": {"args": [r"c:\windows\system32\cmd.exe"]}});
        assert!(fix_pause_command(&mut spec));
        let p = parameters(&spec["process"], false, false, false).unwrap();
        assert_eq!(p.command_line, PAUSE_KEEPALIVE_COMMAND);
        // Go's json.Marshal escapes '>' in the HCS document.
        assert_eq!(
            hcs_schema::json::to_string_html_escaped(&p).unwrap(),
            r#"{"CommandLine":"cmd /c ping -t 127.0.0.1 \u003e nul"}"#
        );
    }
}

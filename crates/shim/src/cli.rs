//! The command line (spec §1.1): Go-style global flags before the sub-command, as
//! containerd passes them (parsed with `containerd_shim::parse`), then the sub-command's
//! own flags.
//!
//! `-namespace`, `-address`, `-publish-binary` and `-id` are required for every
//! sub-command, `-bundle` for `delete`; a missing one is reported as the reference does
//! ("namespace is required", ...) with exit code 1.

use std::ffi::OsString;

use crate::error::{Error, Result};

/// Global flags that take a value (the rest are booleans).
const VALUE_FLAGS: [&str; 6] = [
    "namespace",
    "id",
    "socket",
    "bundle",
    "address",
    "publish-binary",
];

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `-namespace`.
    pub namespace: String,
    /// `-id`.
    pub id: String,
    /// `-address`.
    pub address: String,
    /// `-publish-binary`.
    pub publish_binary: String,
    /// `-bundle`.
    pub bundle: String,
    /// `-debug`.
    pub debug: bool,
    /// The sub-command.
    pub action: Action,
}

/// A sub-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `start`.
    Start,
    /// `delete`.
    Delete,
    /// `serve -socket <address> [-is-sandbox]` (hidden).
    Serve {
        /// Where to serve.
        socket: String,
        /// This shim hosts a pod.
        is_sandbox: bool,
    },
    /// `--version` / `-v`.
    Version,
}

fn flag_name(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    Some(name.split_once('=').map_or(name, |(n, _)| n))
}

/// Where the sub-command starts in `args` (the first argument that is neither a flag nor
/// a flag's value).
fn action_index(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        match flag_name(a) {
            Some(name) if VALUE_FLAGS.contains(&name) && !a.contains('=') => i += 2,
            Some(_) => i += 1,
            None => return Some(i),
        }
    }
    None
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[OsString]) -> Result<Command> {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::InvalidArgument(format!("argument {a:?} is not UTF-8")))
        })
        .collect::<Result<_>>()?;
    let idx = action_index(&args);
    let global = &args[..idx.map_or(args.len(), |i| i + 1)];
    let flags = containerd_shim::parse(global)
        .map_err(|e| Error::InvalidArgument(format!("flags: {e}")))?;
    if flags.version {
        return Ok(Command {
            namespace: flags.namespace,
            id: flags.id,
            address: flags.address,
            publish_binary: flags.publish_binary,
            bundle: flags.bundle,
            debug: flags.debug,
            action: Action::Version,
        });
    }
    for (value, name) in [
        (&flags.namespace, "namespace"),
        (&flags.address, "address"),
        (&flags.publish_binary, "publish-binary"),
        (&flags.id, "id"),
    ] {
        if value.is_empty() {
            return Err(Error::InvalidArgument(format!("{name} is required")));
        }
    }
    let rest = idx.map_or(&[][..], |i| &args[i + 1..]);
    let action = match flags.action.as_str() {
        "start" => Action::Start,
        "delete" => {
            if flags.bundle.is_empty() {
                return Err(Error::InvalidArgument("bundle is required".into()));
            }
            Action::Delete
        }
        "serve" => parse_serve(rest, &flags.socket)?,
        "" => {
            return Err(Error::InvalidArgument(
                "a command is required: start, delete".into(),
            ))
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "no such command {other:?}: use start or delete"
            )))
        }
    };
    Ok(Command {
        namespace: flags.namespace,
        id: flags.id,
        address: flags.address,
        publish_binary: flags.publish_binary,
        bundle: flags.bundle,
        debug: flags.debug,
        action,
    })
}

fn parse_serve(rest: &[String], global_socket: &str) -> Result<Action> {
    let mut socket = global_socket.to_owned();
    let mut is_sandbox = false;
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        match flag_name(a) {
            Some("socket") => {
                socket = match a.split_once('=') {
                    Some((_, v)) => v.to_owned(),
                    None => {
                        i += 1;
                        rest.get(i).cloned().ok_or_else(|| {
                            Error::InvalidArgument("flag needs an argument: -socket".into())
                        })?
                    }
                };
            }
            Some("is-sandbox") => is_sandbox = a.split_once('=').is_none_or(|(_, v)| v == "true"),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "serve: unknown argument {a:?}"
                )))
            }
        }
        i += 1;
    }
    let ok = if cfg!(windows) {
        socket.starts_with(crate::address::PIPE_PREFIX)
    } else {
        socket.starts_with("unix://") || socket.starts_with('/')
    };
    if !ok {
        return Err(Error::InvalidArgument(if cfg!(windows) {
            "socket is required to be pipe address".into()
        } else {
            "socket is required to be a unix socket address".into()
        }));
    }
    Ok(Action::Serve { socket, is_sandbox })
}

/// Runs the command line of this process; returns the exit code.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let cmd = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match &cmd.action {
        Action::Version => {
            println!("containerd-shim-runhcs-v1:");
            println!("  version: {}", env!("CARGO_PKG_VERSION"));
            println!(
                "  commit: {}",
                option_env!("GIT_COMMIT").unwrap_or("unknown")
            );
            println!("  spec: 1.1.0");
            0
        }
        Action::Start => match crate::start::run(&cmd) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("start: {e}");
                1
            }
        },
        Action::Delete => crate::delete::run(&cmd),
        Action::Serve { socket, is_sandbox } => crate::serve::run(&cmd, socket, *is_sandbox),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    const BASE: [&str; 8] = [
        "-namespace",
        "default",
        "-address",
        "/run/containerd/containerd.sock",
        "-publish-binary",
        "/usr/bin/containerd",
        "-id",
        "c1",
    ];

    #[test]
    fn containerd_style_start_and_delete() {
        let mut a = BASE.to_vec();
        a.push("start");
        let c = parse(&args(&a)).unwrap();
        assert_eq!(c.action, Action::Start);
        assert_eq!(c.namespace, "default");
        assert_eq!(c.id, "c1");
        let mut d = vec!["-debug", "-bundle", "/b"];
        d.extend(BASE);
        d.push("delete");
        let c = parse(&args(&d)).unwrap();
        assert!(c.debug);
        assert_eq!(c.bundle, "/b");
        assert_eq!(c.action, Action::Delete);
    }

    #[test]
    fn serve_takes_its_own_flags() {
        let socket = if cfg!(windows) {
            r"\\.\pipe\ProtectedPrefix\Administrators\containerd-shim-default-c1-pipe"
        } else {
            "unix:///run/x"
        };
        let mut a = BASE.to_vec();
        a.extend(["serve", "--socket", socket, "--is-sandbox"]);
        let c = parse(&args(&a)).unwrap();
        assert_eq!(
            c.action,
            Action::Serve {
                socket: socket.into(),
                is_sandbox: true
            }
        );
        let mut bad = BASE.to_vec();
        bad.extend(["serve", "-socket", "tcp://x"]);
        assert!(parse(&args(&bad)).is_err());
    }

    #[test]
    fn required_flags_are_named() {
        for (i, name) in [
            (0, "namespace"),
            (2, "address"),
            (4, "publish-binary"),
            (6, "id"),
        ] {
            let mut a: Vec<&str> = BASE.to_vec();
            a.drain(i..i + 2);
            a.push("start");
            let e = parse(&args(&a)).unwrap_err();
            assert_eq!(e.to_string(), format!("{name} is required"));
        }
        let mut d = BASE.to_vec();
        d.push("delete");
        assert_eq!(
            parse(&args(&d)).unwrap_err().to_string(),
            "bundle is required"
        );
        let mut u = BASE.to_vec();
        u.push("frobnicate");
        assert!(parse(&args(&u)).is_err());
        assert_eq!(parse(&args(&["-v"])).unwrap().action, Action::Version);
    }
}

//! The binary logging driver (spec §1.6, the reference's `io_binary.go`): when a task's or
//! exec's `stdout` is a `binary:///path/to/driver?key=value` URL, the shim starts that
//! program and hands it the process's output instead of writing to containerd's FIFOs.
//!
//! The driver is started with `CONTAINER_ID` and `CONTAINER_NAMESPACE` in its environment
//! and each query key as an argument, followed by the key's first value when that is not
//! empty. How the streams reach it is the host's convention, as containerd's
//! `runtime/v2/logging` package expects it:
//! * Linux: stdout on fd 3, stderr on fd 4 and a readiness pipe on fd 5 that the driver
//!   closes once it is ready.
//! * Windows (the reference): named pipes the shim serves, [`pipe_name`]`(id, "stdout")`,
//!   `"stderr"` and `"wait"`, named in `CONTAINER_STDOUT`, `CONTAINER_STDERR` and
//!   `CONTAINER_WAIT`; the driver connects to all three and closes the wait pipe once
//!   ready.
//!
//! The shim waits at most [`START_TIMEOUT`] for the driver to be ready. After the process's
//! output is drained the streams are closed and the driver gets [`STOP_TIMEOUT`] to exit
//! before it is killed.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// How long the driver may take to signal that it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the driver may take to exit once its streams are closed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `binary://` URL: the driver program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverUrl {
    /// The driver executable (the URL's path).
    pub program: PathBuf,
    /// One argument per query key, each followed by its first value when not empty.
    pub args: Vec<String>,
}

/// The URL scheme of `s` as Go's `url.Parse` sees it (`[A-Za-z][A-Za-z0-9+.-]*:`), or
/// `None` for a plain path.
fn scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

fn decode(what: &str, s: &str, plus_is_space: bool) -> Result<String> {
    let s = if plus_is_space {
        s.replace('+', " ")
    } else {
        s.to_owned()
    };
    percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::InvalidArgument(format!("logging driver URL: {what} is not UTF-8")))
}

impl DriverUrl {
    /// Parses an upstream `stdout` value: `Ok(None)` for a plain path (a FIFO or pipe),
    /// the driver for a `binary` URL, and the reference's error for any other scheme.
    pub fn parse(stdout: &str) -> Result<Option<Self>> {
        let Some(s) = scheme(stdout) else {
            return Ok(None);
        };
        // Go's url.Parse lower-cases the scheme.
        if !s.eq_ignore_ascii_case("binary") {
            return Err(Error::InvalidArgument(format!(
                "scheme must be 'binary', got: '{}'",
                s.to_ascii_lowercase()
            )));
        }
        let rest = &stdout[s.len() + 1..];
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = match location.strip_prefix("//") {
            Some(authority_and_path) => {
                let (host, path) = authority_and_path
                    .find('/')
                    .map_or((authority_and_path, ""), |i| authority_and_path.split_at(i));
                if !host.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "logging driver URL {stdout:?} names a host ({host:?}); want binary:///absolute/path"
                    )));
                }
                path
            }
            None => location,
        };
        let program = program(&decode("the path", path, false)?, cfg!(windows)).map_err(|why| {
            Error::InvalidArgument(format!("logging driver URL {stdout:?}: {why}"))
        })?;
        let mut seen = std::collections::HashSet::new();
        let mut args = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode("a query key", k, true)?;
            if !seen.insert(k.clone()) {
                continue; // Go's Query()[k][0]: the first value of a repeated key.
            }
            let v = decode("a query value", v, true)?;
            args.push(k);
            if !v.is_empty() {
                args.push(v);
            }
        }
        Ok(Some(Self { program, args }))
    }
}

/// The driver's executable from the URL's (decoded) path. On Windows the path is
/// `/C:/dir/driver.exe`: the separators become `\`, the `\` before the drive is dropped, and
/// UNC paths (`//server/share`) are refused, as the reference does.
fn program(path: &str, windows: bool) -> std::result::Result<PathBuf, &'static str> {
    if !windows {
        return if path.starts_with('/') {
            Ok(PathBuf::from(path))
        } else {
            Err("the driver's path must be absolute")
        };
    }
    let p = path.replace('/', "\\");
    if p.starts_with("\\\\") {
        return Err("UNC paths are not supported");
    }
    let p = p.strip_prefix('\\').unwrap_or(&p);
    let b = p.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
        Ok(PathBuf::from(p))
    } else {
        Err("the driver's path must be absolute, with a drive (binary:///C:/path/driver.exe)")
    }
}

/// The named pipe the shim serves for a driver's `stream` (`stdout`, `stderr`, `wait`) on
/// Windows: `\\.\pipe\binary-<id>-<stream>`.
pub fn pipe_name(id: &str, stream: &str) -> String {
    format!(r"\\.\pipe\binary-{id}-{stream}")
}

/// A running logging driver.
#[derive(Debug)]
pub struct Driver {
    child: tokio::process::Child,
}

impl Driver {
    /// Waits at most [`START_TIMEOUT`] for `ready`, the platform's sign that the driver
    /// took its streams. On an error or the timeout the driver is killed (the child is
    /// spawned with `kill_on_drop`) and the error names it.
    pub(crate) async fn started(
        child: tokio::process::Child,
        program: &std::path::Path,
        ready: impl std::future::Future<Output = std::io::Result<()>>,
    ) -> Result<Self> {
        match tokio::time::timeout(START_TIMEOUT, ready).await {
            Ok(Ok(())) => Ok(Self { child }),
            Ok(Err(e)) => Err(Error::io(
                format!("wait for the logging driver {} to start", program.display()),
                e,
            )),
            Err(_) => Err(Error::Other(format!(
                "timeout waiting for logging binary to start: {}",
                program.display()
            ))),
        }
    }

    /// Waits at most `limit` for the driver to exit (its streams are closed by then),
    /// then kills it. Logs how it ended.
    pub async fn stop(mut self, limit: Duration) {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => tracing::warn!(%status, "the logging driver failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "waiting for the logging driver"),
            Err(_) => {
                tracing::warn!(
                    "the logging driver did not exit after its streams closed; killing it"
                );
                if let Err(e) = self.child.kill().await {
                    tracing::warn!(error = %e, "killing the logging driver");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_not_urls() {
        for p in [
            "",
            "/run/containerd/fifo/1/x-stdout",
            r"\\.\pipe\containerd-x",
            "relative/path",
            "1abc:def",
        ] {
            assert_eq!(DriverUrl::parse(p).unwrap(), None, "{p}");
        }
    }

    #[test]
    fn other_schemes_get_the_reference_error() {
        let e = DriverUrl::parse("file:///var/log/x").unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m == "scheme must be 'binary', got: 'file'"),
            "{e}"
        );
    }

    #[test]
    fn binary_urls_give_program_and_arguments() {
        // The same URL shape on both hosts; Windows paths carry a drive.
        let (dir, expect) = if cfg!(windows) {
            ("/C:/bin", r"C:\bin\my logger")
        } else {
            ("/usr/local/bin", "/usr/local/bin/my logger")
        };
        let u = DriverUrl::parse(&format!(
            "binary://{dir}/my%20logger?--id=abc&-v&x=a+b&--id=dup#frag"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(u.program, PathBuf::from(expect));
        assert_eq!(u.args, ["--id", "abc", "-v", "x", "a b"]);
        let bare = DriverUrl::parse(&format!("BINARY:{dir}/d"))
            .unwrap()
            .unwrap();
        assert!(bare.args.is_empty());
    }

    #[test]
    fn windows_paths_follow_the_reference() {
        assert_eq!(
            program("/C:/Program Files/log/driver.exe", true).unwrap(),
            PathBuf::from(r"C:\Program Files\log\driver.exe")
        );
        assert_eq!(
            program(r"\d:\x.exe", true).unwrap(),
            PathBuf::from(r"d:\x.exe")
        );
        for bad in [
            "//server/share/x.exe",
            r"\\server\share\x.exe",
            "/x.exe",
            "rel.exe",
        ] {
            assert!(program(bad, true).is_err(), "{bad}");
        }
        assert_eq!(pipe_name("c1", "wait"), r"\\.\pipe\binary-c1-wait");
    }

    #[test]
    fn hosts_relative_paths_and_bad_encodings_are_refused() {
        for u in [
            "binary://host/x",
            "binary://",
            "binary:rel",
            "binary:///x%ff",
        ] {
            assert!(
                matches!(DriverUrl::parse(u), Err(Error::InvalidArgument(_))),
                "{u}"
            );
        }
    }
}

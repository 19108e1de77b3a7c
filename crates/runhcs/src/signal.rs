//! Signal names and numbers for `kill`: Linux names with or without `SIG`, numbers, and the
//! reference's console event `CtrlC`, which its LCOW signal map turns into SIGTERM.
//!
//! The numbers are the Linux guest's (x86_64 and arm64 share them), written out rather than
//! taken from the host's libc: on a Windows host they still name signals of the guest.

use crate::error::{Error, Result};

const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
    // The reference's console events, as its LCOW signal map translates them.
    ("CTRLC", 15),
];

/// Parses `TERM`, `SIGTERM`, `term`, `15`; the console events WCOW uses other than CtrlC
/// have no Linux meaning and are rejected.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::Invalid(format!("invalid signal number {n}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::Invalid(format!("invalid signal {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert_eq!(parse_signal("CtrlC").unwrap(), 15);
        assert!(parse_signal("CTRLBREAK").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_table_is_linuxs() {
        let libc_value = |name: &str| -> i32 {
            match name {
                "HUP" => libc::SIGHUP,
                "INT" => libc::SIGINT,
                "QUIT" => libc::SIGQUIT,
                "ILL" => libc::SIGILL,
                "TRAP" => libc::SIGTRAP,
                "ABRT" | "IOT" => libc::SIGABRT,
                "BUS" => libc::SIGBUS,
                "FPE" => libc::SIGFPE,
                "KILL" => libc::SIGKILL,
                "USR1" => libc::SIGUSR1,
                "SEGV" => libc::SIGSEGV,
                "USR2" => libc::SIGUSR2,
                "PIPE" => libc::SIGPIPE,
                "ALRM" => libc::SIGALRM,
                "TERM" | "CTRLC" => libc::SIGTERM,
                "STKFLT" => libc::SIGSTKFLT,
                "CHLD" => libc::SIGCHLD,
                "CONT" => libc::SIGCONT,
                "STOP" => libc::SIGSTOP,
                "TSTP" => libc::SIGTSTP,
                "TTIN" => libc::SIGTTIN,
                "TTOU" => libc::SIGTTOU,
                "URG" => libc::SIGURG,
                "XCPU" => libc::SIGXCPU,
                "XFSZ" => libc::SIGXFSZ,
                "VTALRM" => libc::SIGVTALRM,
                "PROF" => libc::SIGPROF,
                "WINCH" => libc::SIGWINCH,
                "IO" => libc::SIGIO,
                "PWR" => libc::SIGPWR,
                "SYS" => libc::SIGSYS,
                other => panic!("{other} has no libc counterpart in this test"),
            }
        };
        for (name, value) in NAMES {
            assert_eq!(*value, libc_value(name), "{name}");
        }
    }
}

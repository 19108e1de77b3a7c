//! `tar2ext4`: converts a tar (or tar.gz) layer into a compact ext4 image.
//!
//! Accepts the reference's Go-style flags (`-i`, `-o`, `-overlay`, `-vhd`, `-inline`,
//! `-convert-slash`, `-only-vhd`, single or double dash) plus `-dm-verity`,
//! `-max-disk-size`, `-mode compat|default`, `-root-hash` and `-progress`.

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Arg, ArgAction, Command};
use ext4::{Options, OutputMode};

/// Long flags that Go's flag package lets users spell with one dash.
const LONG_FLAGS: &[&str] = &[
    "overlay",
    "vhd",
    "inline",
    "convert-slash",
    "only-vhd",
    "dm-verity",
    "max-disk-size",
    "mode",
    "root-hash",
    "progress",
    "help",
];

/// Rewrites `-name` / `-name=value` into `--name…` for the known long flags.
fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, a)| {
            if i > 0 && a.starts_with('-') && !a.starts_with("--") {
                let name = a[1..].split('=').next().unwrap_or_default();
                if LONG_FLAGS.contains(&name) {
                    return format!("-{a}");
                }
            }
            a
        })
        .collect()
}

fn command() -> Command {
    Command::new("tar2ext4")
        .about("Convert a tar (or tar.gz) layer to a compact ext4 image")
        .arg(
            Arg::new("input")
                .short('i')
                .value_name("FILE")
                .help("input tar or tar.gz (default: stdin)"),
        )
        .arg(
            Arg::new("output")
                .short('o')
                .value_name("FILE")
                .required(true)
                .help("output file"),
        )
        .arg(
            Arg::new("overlay")
                .long("overlay")
                .action(ArgAction::SetTrue)
                .help("produce overlayfs-style whiteouts"),
        )
        .arg(
            Arg::new("vhd")
                .long("vhd")
                .action(ArgAction::SetTrue)
                .help("add a VHD footer to the end of the image"),
        )
        .arg(
            Arg::new("inline")
                .long("inline")
                .action(ArgAction::SetTrue)
                .help("write small file data into the inode; not compatible with DAX"),
        )
        .arg(
            Arg::new("convert-slash")
                .long("convert-slash")
                .action(ArgAction::SetTrue)
                .help("replace backslashes in path names with forward slashes"),
        )
        .arg(
            Arg::new("only-vhd")
                .long("only-vhd")
                .action(ArgAction::SetTrue)
                .help("only add a VHD footer to the input (no conversion)"),
        )
        .arg(
            Arg::new("dm-verity")
                .long("dm-verity")
                .action(ArgAction::SetTrue)
                .help("append a dm-verity superblock and hash tree after the ext4 data"),
        )
        .arg(
            Arg::new("max-disk-size")
                .long("max-disk-size")
                .value_name("BYTES")
                .help("maximum image size, e.g. 137438953472 or 128G (default 16G)"),
        )
        .arg(
            Arg::new("mode")
                .long("mode")
                .value_parser(["compat", "default"])
                .default_value("default")
                .help("compat: byte-identical to hcsshim's tar2ext4; default: fixed, e2fsck-clean"),
        )
        .arg(
            Arg::new("root-hash")
                .long("root-hash")
                .action(ArgAction::SetTrue)
                .help("print the dm-verity root hash of the ext4 data"),
        )
        .arg(
            Arg::new("sync")
                .long("sync")
                .action(ArgAction::SetTrue)
                .help(
                    "make the image durable before it appears under its name (write back \
                     while converting, fsync); without it the image may still be only in the \
                     page cache when tar2ext4 returns, as after cp",
                ),
        )
        .arg(
            Arg::new("progress")
                .long("progress")
                .action(ArgAction::SetTrue)
                .help("show progress even when stderr is not a terminal"),
        )
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad size suffix in {s:?}")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size {s:?}"))
}

/// Counts bytes read and, when enabled, reports progress on stderr.
struct Progress<R> {
    inner: R,
    read: u64,
    total: Option<u64>,
    enabled: bool,
    start: Instant,
    last: Instant,
}

impl<R: Read> Progress<R> {
    fn report(&mut self, done: bool) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-6);
        let mib = self.read as f64 / (1 << 20) as f64;
        let pct = self
            .total
            .filter(|t| *t > 0)
            .map(|t| format!(" {:5.1}%", 100.0 * self.read as f64 / t as f64))
            .unwrap_or_default();
        eprint!(
            "\rtar2ext4: {mib:10.1} MiB read{pct} {:8.1} MiB/s",
            mib / secs
        );
        if done {
            eprintln!();
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.enabled && self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            self.report(false);
        }
        Ok(n)
    }
}

fn run() -> Result<(), String> {
    let args = normalize_args(std::env::args());
    let m = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                std::process::exit(0);
            }
            eprint!("{e}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(m.get_one::<String>("output").expect("required"));
    let mode = match m.get_one::<String>("mode").map(String::as_str) {
        Some("compat") => OutputMode::Compat,
        _ => OutputMode::Default,
    };
    let opts = Options {
        convert_whiteout: m.get_flag("overlay"),
        convert_backslash: m.get_flag("convert-slash"),
        append_vhd_footer: m.get_flag("vhd"),
        only_append_vhd_footer: m.get_flag("only-vhd"),
        append_dm_verity: m.get_flag("dm-verity"),
        compute_root_hash: m.get_flag("root-hash"),
        inline_data: m.get_flag("inline"),
        max_disk_size: match m.get_one::<String>("max-disk-size") {
            Some(s) => parse_size(s)?,
            None => 0,
        },
        mode,
        sync: m.get_flag("sync"),
        ..Options::default()
    };

    let (input, total): (Box<dyn Read>, Option<u64>) = match m.get_one::<String>("input") {
        Some(p) if p != "-" => {
            let f = fs::File::open(p).map_err(|e| format!("{p}: {e}"))?;
            let len = f.metadata().ok().map(|md| md.len());
            (Box::new(f), len)
        }
        _ => (Box::new(io::stdin().lock()), None),
    };
    let show = m.get_flag("progress") || io::stderr().is_terminal();
    let mut progress = Progress {
        inner: input,
        read: 0,
        total,
        enabled: show,
        start: Instant::now(),
        last: Instant::now(),
    };
    let outcome = if opts.only_append_vhd_footer {
        ext4::convert_to_path(&mut progress, &out, &opts)
    } else {
        let decoded =
            ext4::tar2ext4::maybe_gunzip(&mut progress).map_err(|e| ext4::error::chain(&e))?;
        ext4::convert_to_path(decoded, &out, &opts)
    }
    .map_err(|e| ext4::error::chain(&e))?;
    // Drain the rest of the input so that a writer on the other end of a pipe does not fail.
    let _ = io::copy(&mut progress, &mut io::sink());
    if show {
        progress.report(true);
    }
    if opts.compute_root_hash {
        if let Some(t) = &outcome.verity {
            let mut so = io::stdout().lock();
            let _ = writeln!(so, "{}", t.root_hex());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tar2ext4: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_flags_are_accepted() {
        let a = normalize_args(
            [
                "tar2ext4",
                "-i",
                "x",
                "-overlay",
                "-vhd",
                "-max-disk-size=1G",
                "--inline",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        assert_eq!(
            a,
            [
                "tar2ext4",
                "-i",
                "x",
                "--overlay",
                "--vhd",
                "--max-disk-size=1G",
                "--inline"
            ]
        );
        let m = command()
            .try_get_matches_from(a.iter().chain(["-o".to_string(), "y".to_string()].iter()))
            .unwrap();
        assert!(m.get_flag("overlay") && m.get_flag("inline"));
        assert!(command()
            .try_get_matches_from(["tar2ext4", "-o", "y", "extra"])
            .is_err());
        assert!(command().try_get_matches_from(["tar2ext4"]).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("128G"), Ok(128 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}

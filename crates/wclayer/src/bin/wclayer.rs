//! `wclayer`: the reference's Windows container layer utility.
//!
//! Subcommands (flags as in hcsshim's `cmd/wclayer`; Go-style single-dash long flags such as
//! `-layer` are accepted too):
//!
//! * `import <layer> [-l parent]... [-i tar]`: an OCI layer tar (gzip or not; stdin by
//!   default) into a layer folder;
//! * `export <layer> [-l parent]... [-o tar] [-z]`: a layer folder to an OCI layer tar;
//! * `create <layer> -l parent...`: a new writable (scratch) layer;
//! * `mount <scratch> -l parent...`: activates and prepares a scratch layer, prints its
//!   volume path; `unmount <layer>` undoes it;
//! * `makebaselayer <layer>`: turns a folder with `Files\` into a base layer;
//! * `remove <layer>` (alias `removelayer`): destroys a layer folder.
//!
//! On Linux `import` and `export` work on a Linux layer folder (see the `wclayer` crate's
//! `fs` module); the others need vmcompute.dll and say so.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use wclayer::layer::Layers;

/// Windows Container layer utility.
///
/// wclayer is a command line tool for manipulating Windows Container storage layers. It can
/// import and export layers from and to OCI format layer tar files, create new writable
/// layers, and mount and unmount container images.
#[derive(Parser, Debug)]
#[command(name = "wclayer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Parents {
    /// Paths to the read-only parent layers, nearest first.
    #[arg(short = 'l', long = "layer")]
    layer: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates a new writable container layer.
    Create {
        /// The layer path.
        path: PathBuf,
        #[command(flatten)]
        parents: Parents,
    },
    /// Exports a layer to a tar file.
    Export {
        /// The layer path.
        path: PathBuf,
        #[command(flatten)]
        parents: Parents,
        /// Output layer tar (defaults to stdout).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Compress the output with gzip.
        #[arg(short = 'z', long = "gzip")]
        gzip: bool,
    },
    /// Imports a layer from a tar file.
    Import {
        /// The layer path.
        path: PathBuf,
        #[command(flatten)]
        parents: Parents,
        /// Input layer tar, plain or gzip (defaults to stdin).
        #[arg(short = 'i', long = "input")]
        input: Option<PathBuf>,
    },
    /// Converts a directory containing 'Files/' into a base layer.
    Makebaselayer {
        /// The layer path.
        path: PathBuf,
    },
    /// Mounts a scratch layer and prints its volume path.
    Mount {
        /// The scratch layer path.
        path: PathBuf,
        #[command(flatten)]
        parents: Parents,
    },
    /// Unmounts a scratch layer.
    Unmount {
        /// The layer path.
        path: PathBuf,
    },
    /// Permanently removes a layer directory in its entirety.
    #[command(alias = "removelayer")]
    Remove {
        /// The layer path.
        path: PathBuf,
    },
}

/// Flags that the reference's Go flag parser accepts with a single dash.
const LONG_FLAGS: &[&str] = &["layer", "output", "gzip", "input", "help", "version"];

fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, a)| {
            let name = a.strip_prefix('-').unwrap_or_default();
            let name = name.split('=').next().unwrap_or_default();
            if i > 0 && !a.starts_with("--") && LONG_FLAGS.contains(&name) {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn absolute(p: &Path) -> Res<PathBuf> {
    Ok(std::path::absolute(p)?)
}

/// `normalizeLayers`: absolute parent paths; `need_one` demands at least one.
fn normalize_layers(layers: &[PathBuf], need_one: bool) -> Res<Vec<PathBuf>> {
    if need_one && layers.is_empty() {
        return Err("at least one read-only layer must be specified".into());
    }
    layers.iter().map(|l| absolute(l)).collect()
}

fn as_str(p: &Path) -> Res<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} is not valid Unicode", p.display()).into())
}

/// Runs an async `hcs` layer call to completion.
fn block_on<T>(f: impl std::future::Future<Output = hcs::Result<T>>) -> Res<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f)?)
}

/// Wraps `r` in a gzip decoder when it starts with the gzip magic.
fn add_decompressor(r: impl Read + 'static) -> Res<Box<dyn Read>> {
    let mut b = BufReader::new(r);
    let head = b.fill_buf()?;
    if head.len() >= 3 && head[..3] == [0x1f, 0x8b, 8] {
        return Ok(Box::new(flate2::read::GzDecoder::new(b)));
    }
    Ok(Box::new(b))
}

#[cfg(windows)]
fn privileges(names: &[&str]) -> Res<()> {
    Ok(wclayer::privilege::enable_process_privileges(names)?)
}

#[cfg(not(windows))]
fn privileges(_names: &[&str]) -> Res<()> {
    // Linux layer folders are plain files: there is no privilege to take.
    Ok(())
}

fn run(cli: Cli) -> Res<()> {
    use wclayer::privilege::{SE_BACKUP_NAME, SE_RESTORE_NAME};
    match cli.command {
        Command::Create { path, parents } => {
            let path = as_str(&absolute(&path)?)?;
            let layers = normalize_layers(&parents.layer, true)?
                .iter()
                .map(|p| as_str(p))
                .collect::<Res<Vec<_>>>()?;
            block_on(async {
                hcs::wclayer::Wclayer::host()?
                    .create_scratch_layer(&path, &layers)
                    .await
            })
        }
        Command::Export {
            path,
            parents,
            output,
            gzip,
        } => {
            let path = absolute(&path)?;
            let layers = normalize_layers(&parents.layer, false)?;
            privileges(&[SE_BACKUP_NAME])?;
            let out: Box<dyn Write> = match &output {
                Some(p) => Box::new(io::BufWriter::new(File::create(p)?)),
                None => Box::new(io::BufWriter::new(io::stdout().lock())),
            };
            let host = Layers::host()?;
            if gzip {
                let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                let gz = wclayer::oci::export_layer_to_tar(&host, gz, &path, &layers)?;
                gz.finish()?.flush()?;
            } else {
                wclayer::oci::export_layer_to_tar(&host, out, &path, &layers)?.flush()?;
            }
            Ok(())
        }
        Command::Import {
            path,
            parents,
            input,
        } => {
            let path = absolute(&path)?;
            let layers = normalize_layers(&parents.layer, false)?;
            let r: Box<dyn Read> = match &input {
                Some(p) => Box::new(File::open(p)?),
                None => Box::new(io::stdin()),
            };
            let r = add_decompressor(r)?;
            privileges(&[SE_BACKUP_NAME, SE_RESTORE_NAME])?;
            wclayer::oci::import_layer_from_tar(&Layers::host()?, r, &path, &layers)?;
            Ok(())
        }
        Command::Makebaselayer { path } => {
            let path = absolute(&path)?;
            Ok(wclayer::baselayer::convert_to_base_layer(
                &Layers::host()?,
                &path,
            )?)
        }
        Command::Mount { path, parents } => {
            let path = as_str(&absolute(&path)?)?;
            let layers = normalize_layers(&parents.layer, true)?
                .iter()
                .map(|p| as_str(p))
                .collect::<Res<Vec<_>>>()?;
            let mount = block_on(async {
                let wc = hcs::wclayer::Wclayer::host()?;
                wc.activate_layer(&path).await?;
                if let Err(e) = wc.prepare_layer(&path, &layers).await {
                    undo("DeactivateLayer", wc.deactivate_layer(&path).await);
                    return Err(e);
                }
                match wc.get_layer_mount_path(&path).await {
                    Ok(m) => Ok(m),
                    Err(e) => {
                        undo("UnprepareLayer", wc.unprepare_layer(&path).await);
                        undo("DeactivateLayer", wc.deactivate_layer(&path).await);
                        Err(e)
                    }
                }
            })?;
            println!("{mount}");
            Ok(())
        }
        Command::Unmount { path } => {
            let path = as_str(&absolute(&path)?)?;
            block_on(async {
                let wc = hcs::wclayer::Wclayer::host()?;
                // As the reference: an unprepare failure is reported, the deactivation
                // still attempted.
                if let Err(e) = wc.unprepare_layer(&path).await {
                    eprintln!("{e}");
                }
                wc.deactivate_layer(&path).await
            })
        }
        Command::Remove { path } => {
            let path = as_str(&absolute(&path)?)?;
            privileges(&[SE_BACKUP_NAME, SE_RESTORE_NAME])?;
            block_on(async { hcs::wclayer::Wclayer::host()?.destroy_layer(&path).await })
        }
    }
}

/// Reports the failure of a step undone after another failure (the first error wins).
fn undo(step: &str, r: hcs::Result<()>) {
    if let Err(e) = r {
        eprintln!("{step} after a failed mount: {e}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

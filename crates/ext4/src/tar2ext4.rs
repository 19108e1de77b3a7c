//! Tar → ext4 conversion (spec §1.13, §1.14, §2), with optional dm-verity tree and VHD footer.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use crate::tarstream::{typeflag, TarReader};
use crate::verity::{self, HashTree};
use crate::vhd;
use crate::writer::{split_path, File, OutputMode, Writer, WriterOptions};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Conversion options (the reference's functional options plus the output mode).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// OCI `.wh.` whiteouts become overlayfs whiteouts and opaque-dir xattrs.
    pub convert_whiteout: bool,
    /// Replace `\` with `/` in names and link names (tars made on Windows).
    pub convert_backslash: bool,
    /// Append a fixed VHD footer.
    pub append_vhd_footer: bool,
    /// Do not convert: copy the input and append a VHD footer.
    pub only_append_vhd_footer: bool,
    /// Append the dm-verity superblock and hash tree after the ext4 data.
    pub append_dm_verity: bool,
    /// Compute the dm-verity tree and root hash (reported in [`Outcome::verity`]) without
    /// necessarily appending it, like the reference's `ConvertAndComputeRootDigest`.
    pub compute_root_hash: bool,
    /// Store files of 136 bytes or less inline.
    pub inline_data: bool,
    /// Maximum disk size in bytes (0: 16 GiB default).
    pub max_disk_size: u64,
    /// Compat (byte-identical to the reference) or default (fixed) output.
    pub mode: OutputMode,
    /// dm-verity superblock UUID; random when `None`.
    pub verity_uuid: Option<[u8; 16]>,
    /// VHD footer unique id; random when `None`.
    pub vhd_unique_id: Option<[u8; 16]>,
    /// [`convert_to_path`] only: make the image durable before it appears under its name
    /// (write back in the background while converting, fsync the file before the rename
    /// and the directory after). Off, the image is complete in the page cache when the
    /// call returns, as with the reference's tar2ext4 or `cp`; the rename stays atomic.
    pub sync: bool,
}

impl Options {
    /// The options of `dmverity-vhd create` and confidential-container policies:
    /// whiteouts, 128 GiB maximum, dm-verity, VHD footer.
    pub fn layer_vhd(mode: OutputMode) -> Options {
        Options {
            convert_whiteout: true,
            append_dm_verity: true,
            append_vhd_footer: true,
            max_disk_size: 128 << 30,
            mode,
            ..Options::default()
        }
    }
}

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Bytes of ext4 data at the start of the output (0 for `only_append_vhd_footer`).
    pub ext4_size: u64,
    /// The dm-verity tree, if appended.
    pub verity: Option<HashTree>,
    /// Total bytes written.
    pub total_size: u64,
}

fn file_type_for(flag: u8) -> u16 {
    match flag {
        typeflag::REG => S_IFREG,
        typeflag::SYMLINK => S_IFLNK,
        typeflag::CHAR => S_IFCHR,
        typeflag::BLOCK => S_IFBLK,
        typeflag::DIR => S_IFDIR,
        typeflag::FIFO => S_IFIFO,
        // Anything else (contiguous files, GNU sparse, PAX global headers, ...) gets no type
        // bits and becomes a regular file, as in the reference.
        _ => 0,
    }
}

fn backslashes(v: &mut [u8]) {
    for c in v.iter_mut() {
        if *c == b'\\' {
            *c = b'/';
        }
    }
}

/// Writes the ext4 image of the tar stream `r` to `w`, returning the writer's result.
pub fn convert_tar_to_ext4<R: Read, W: Read + Write + Seek>(
    r: R,
    w: W,
    opts: &Options,
) -> Result<crate::writer::Closed<W>> {
    let compat = opts.mode == OutputMode::Compat;
    let mut tr = TarReader::new(BufReader::with_capacity(1 << 16, r), !compat);
    let mut fs = Writer::new(
        w,
        WriterOptions {
            inline_data: opts.inline_data,
            max_disk_size: opts.max_disk_size,
            mode: opts.mode,
            hash_blocks: opts.append_dm_verity || opts.compute_root_hash,
        },
    );
    while let Some(h) = tr.next_header()? {
        if !compat && h.typeflag == typeflag::XGLOBAL {
            // Defect D6: the reference turns PAX global headers into stray empty files.
            continue;
        }
        let mut name = h.name.clone();
        let mut linkname = h.linkname.clone();
        if opts.convert_backslash {
            backslashes(&mut name);
            backslashes(&mut linkname);
        }
        fs.make_parents(&name)?;

        if opts.convert_whiteout {
            let (dir, file) = split_path(&name);
            if file.starts_with(WHITEOUT_PREFIX) {
                if file == OPAQUE_WHITEOUT {
                    let mut f = fs.stat(dir)?;
                    f.xattrs
                        .insert(b"trusted.overlay.opaque".to_vec(), b"y".to_vec());
                    fs.create(dir, f)?;
                } else {
                    let mut target = dir.to_vec();
                    target.extend_from_slice(&file[WHITEOUT_PREFIX.len()..]);
                    fs.create(
                        &target,
                        File {
                            mode: S_IFCHR,
                            ..File::default()
                        },
                    )?;
                }
                continue;
            }
        }

        if h.typeflag == typeflag::LINK {
            fs.link(&linkname, &name)?;
            continue;
        }
        let mut f = File {
            mode: ((h.mode as u16) & !S_IFMT) | file_type_for(h.typeflag),
            atime: h.atime,
            mtime: h.mtime,
            ctime: h.ctime,
            crtime: h.mtime,
            size: h.size.max(0) as u64,
            uid: h.uid as u32,
            gid: h.gid as u32,
            linkname,
            devmajor: h.devmajor as u32,
            devminor: h.devminor as u32,
            ..File::default()
        };
        for (k, v) in &h.pax {
            if let Some(x) = k.strip_prefix(XATTR_PREFIX) {
                f.xattrs.insert(x.to_vec(), v.clone());
            }
        }
        fs.create(&name, f)?;
        let n = tr.entry_remaining();
        fs.copy_data(&mut tr, n)?;
    }
    fs.close()
}

/// Converts and, as requested, appends the dm-verity data and the VHD footer.
pub fn convert<R: Read, W: Read + Write + Seek>(r: R, mut w: W, opts: &Options) -> Result<Outcome> {
    if opts.only_append_vhd_footer {
        let mut r = r;
        let size = io::copy(&mut r, &mut w).ctx("copying the input")?;
        let id = opts.vhd_unique_id.unwrap_or_else(vhd::random_id);
        w.write_all(&vhd::footer(size, id))
            .ctx("writing the VHD footer")?;
        w.flush().ctx("flushing the output")?;
        return Ok(Outcome {
            ext4_size: 0,
            verity: None,
            total_size: size + vhd::FOOTER_SIZE as u64,
        });
    }
    let closed = convert_tar_to_ext4(r, w, opts)?;
    let ext4_size = closed.size;
    let mut w = closed.out;
    let mut tree = None;
    if opts.append_dm_verity || opts.compute_root_hash {
        let blocks = ext4_size / crate::format::BLOCK_SIZE;
        let t = match closed.leaves {
            Some(l) if l.digests().len() as u64 == blocks => verity::tree_from_leaves(l.digests()),
            _ => verity::tree_from_reader(&mut w, ext4_size)?,
        };
        tree = Some(t);
    }
    if let Some(t) = tree.as_ref().filter(|_| opts.append_dm_verity) {
        w.seek(SeekFrom::Start(ext4_size))
            .ctx("seeking the output")?;
        let uuid = opts.verity_uuid.unwrap_or_else(vhd::random_id);
        w.write_all(&verity::superblock(t.data_blocks, uuid))
            .ctx("writing the verity superblock")?;
        w.write_all(&t.tree).ctx("writing the verity tree")?;
    }
    let mut total = w.seek(SeekFrom::End(0)).ctx("seeking the output")?;
    if opts.append_vhd_footer {
        let id = opts.vhd_unique_id.unwrap_or_else(vhd::random_id);
        w.write_all(&vhd::footer(total, id))
            .ctx("writing the VHD footer")?;
        total += vhd::FOOTER_SIZE as u64;
    }
    w.flush().ctx("flushing the output")?;
    Ok(Outcome {
        ext4_size,
        verity: tree,
        total_size: total,
    })
}

/// Converts into the file at `path` atomically: the image is written to a temporary file in
/// the same directory and renamed over `path` only on success; on failure nothing is left.
pub fn convert_to_path<R: Read>(r: R, path: &Path, opts: &Options) -> Result<Outcome> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let mut tmp = None;
    for i in 0..100u32 {
        let p = dir.join(format!(".{base}.tmp-{}-{i}", std::process::id()));
        match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                tmp = Some((p, f));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::Io {
                    context: "creating the temporary output",
                    source: e,
                })
            }
        }
    }
    let Some((tmp_path, file)) = tmp else {
        return Err(Error::InvalidOption(
            "could not create a temporary output file".into(),
        ));
    };
    // With `sync`, write back in the background while converting, so that disk I/O
    // overlaps the conversion and the dm-verity hashing instead of all happening in the
    // final fsync (measured: the fastest way to a durable image). Without it nothing forces
    // write-back: an image that stays in the page cache costs no disk time, as with `cp`.
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let flusher = match opts.sync {
        true => Some(file.try_clone().ctx("cloning the output handle")?),
        false => None,
    }
    .map(|f| {
        std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(std::time::Duration::from_millis(50))
            {
                // Only an early start of write-back: the final fsync reports any error.
                let _ = f.sync_data();
            }
        })
    });
    let converted = convert(r, &file, opts);
    drop(stop);
    if let Some(t) = flusher {
        t.join().map_err(|_| Error::Io {
            context: "writing the output back",
            source: io::Error::other("the write-back thread panicked"),
        })?;
    }
    let result = converted.and_then(|o| {
        if opts.sync {
            file.sync_all().ctx("syncing the output")?;
        }
        drop(file);
        fs::rename(&tmp_path, path).ctx("renaming the output into place")?;
        if opts.sync {
            sync_dir(&dir)?;
        }
        Ok(o)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Makes a rename in `dir` durable (fsync of the directory). Windows has no such call: there
/// the rename is as durable as NTFS makes it.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .ctx("syncing the output directory")?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Wraps `r` in a gzip decoder if the stream starts with the gzip magic.
pub fn maybe_gunzip<'a, R: Read + 'a>(r: R) -> Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(1 << 16, r);
    let head = br.fill_buf().ctx("reading the input")?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else {
        Ok(Box::new(br))
    }
}

/// The ext4 size recorded in an image's superblock (`blocks_count × block size`). The
/// reader's position is restored, also when reading fails.
pub fn ext4_filesystem_size<R: Read + Seek>(r: &mut R) -> Result<u64> {
    let cur = r.stream_position().ctx("seeking the image")?;
    let mut sb = [0u8; 1024];
    let read = r
        .seek(SeekFrom::Start(1024))
        .ctx("seeking the image")
        .and_then(|_| r.read_exact(&mut sb).ctx("reading the superblock"));
    r.seek(SeekFrom::Start(cur)).ctx("seeking the image")?;
    read?;
    let sb = crate::format::SuperBlock::parse(&sb).ok_or(Error::NotExt4)?;
    Ok(u64::from(sb.blocks_count) * (1024u64 << sb.log_block_size.min(16)))
}

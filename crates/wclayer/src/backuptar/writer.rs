//! Writing layer tars with the `tar` crate: a ustar header preceded, when needed, by a PAX
//! record block (`path`/`linkpath` for names that do not fit or are not ASCII, the times with
//! their fractions, and the Windows vendor records), as Go's `archive/tar` does in
//! `FormatPAX`. Each entry's data must be exactly as long as its header says.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use crate::error::{Error, Result};
use crate::fileinfo::UnixTime;

/// The header of an entry to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarOutHeader {
    /// Name with `/` separators.
    pub name: String,
    /// Link target (symlinks and hard links).
    pub linkname: String,
    /// Type flag.
    pub typeflag: u8,
    /// Mode bits.
    pub mode: u32,
    /// Bytes of data.
    pub size: u64,
    /// Modification time; `None` writes 0 and no PAX record (whiteouts).
    pub mtime: Option<UnixTime>,
    /// Access time (PAX `atime`).
    pub atime: Option<UnixTime>,
    /// Change time (PAX `ctime`).
    pub ctime: Option<UnixTime>,
    /// Further PAX records (vendor records).
    pub pax: BTreeMap<String, Vec<u8>>,
}

/// A tar stream being written.
pub struct TarOut<W: Write> {
    builder: tar::Builder<W>,
}

/// Largest octal value of the 12-byte ustar numeric fields.
const USTAR_MAX: u64 = 0o777_7777_7777;

fn fits_ustar(s: &str, field: usize) -> bool {
    s.len() <= field && s.is_ascii() && !s.contains('\0')
}

/// Counts what passes through, so a short or long data source is caught.
struct Exact<R> {
    inner: R,
    left: u64,
    name: String,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // The source must be exhausted too.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(Error::InvalidLayer(format!(
                    "{}: more data than the header's size",
                    self.name
                ))
                .into_io()),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Error::InvalidLayer(format!(
                "{}: data ends {} bytes short of the header's size",
                self.name, self.left
            ))
            .into_io());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl<W: Write> TarOut<W> {
    /// A tar stream on `w`.
    pub fn new(w: W) -> Self {
        Self {
            builder: tar::Builder::new(w),
        }
    }

    /// Writes one entry; `data` must yield exactly `hdr.size` bytes.
    pub fn append(&mut self, hdr: &TarOutHeader, data: impl Read) -> Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().expect("a ustar header");
            if fits_ustar(&hdr.name, 100) {
                u.name[..hdr.name.len()].copy_from_slice(hdr.name.as_bytes());
            } else {
                pax.push(("path".into(), hdr.name.as_bytes().to_vec()));
                let short: Vec<u8> = hdr.name.bytes().filter(u8::is_ascii).take(100).collect();
                u.name[..short.len()].copy_from_slice(&short);
            }
            if fits_ustar(&hdr.linkname, 100) {
                u.linkname[..hdr.linkname.len()].copy_from_slice(hdr.linkname.as_bytes());
            } else {
                pax.push(("linkpath".into(), hdr.linkname.as_bytes().to_vec()));
            }
        }
        h.set_mode(hdr.mode);
        h.set_uid(0);
        h.set_gid(0);
        if hdr.size > USTAR_MAX {
            return Err(Error::Unsupported(format!(
                "{}: files over 8 GiB cannot be written to a layer tar",
                hdr.name
            )));
        }
        h.set_size(hdr.size);
        match hdr.mtime {
            Some(t) => {
                h.set_mtime(u64::try_from(t.secs).unwrap_or(0).min(USTAR_MAX));
                pax.push(("mtime".into(), t.to_pax().into_bytes()));
            }
            None => h.set_mtime(0),
        }
        if let Some(t) = hdr.atime {
            pax.push(("atime".into(), t.to_pax().into_bytes()));
        }
        if let Some(t) = hdr.ctime {
            pax.push(("ctime".into(), t.to_pax().into_bytes()));
        }
        h.set_entry_type(tar::EntryType::new(hdr.typeflag));
        h.set_cksum();
        for (k, v) in &hdr.pax {
            pax.push((k.clone(), v.clone()));
        }
        let out = |e: io::Error| Error::from_io_write("layer tar", e);
        if !pax.is_empty() {
            pax.sort_by(|a, b| a.0.cmp(&b.0));
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(out)?;
        }
        let exact = Exact {
            inner: data,
            left: hdr.size,
            name: hdr.name.clone(),
        };
        self.builder.append(&h, exact).map_err(out)
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub fn finish(self) -> Result<W> {
        self.builder
            .into_inner()
            .map_err(|e| Error::from_io_write("layer tar", e))
    }
}

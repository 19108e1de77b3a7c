//! Writes a Windows-style base layer tar for benchmarks: `Files\` with a directory tree,
//! many small files and some large ones, every entry with the PAX records a Windows layer
//! carries (`MSWINDOWS.fileattr`, `MSWINDOWS.rawsd`, times, creation time), a few hard links
//! and alternate data streams.
//!
//! `gen_layer_tar <out.tar> <MiB>` (deterministic for a given size).

use std::fs::File;
use std::io::{BufWriter, Write};

use base64::Engine as _;

/// A self-relative security descriptor like the ones Windows images carry (owner, group,
/// a DACL granting Administrators and SYSTEM full access and Users read).
fn security_descriptor() -> Vec<u8> {
    let sid = |rid: &[u32]| {
        let mut s = vec![1, rid.len() as u8, 0, 0, 0, 0, 0, 5];
        for r in rid {
            s.extend_from_slice(&r.to_le_bytes());
        }
        s
    };
    let (admins, system, users) = (sid(&[32, 544]), sid(&[18]), sid(&[32, 545]));
    let ace = |mask: u32, s: &[u8]| {
        let mut a = vec![0, 3];
        a.extend_from_slice(&((8 + s.len()) as u16).to_le_bytes());
        a.extend_from_slice(&mask.to_le_bytes());
        a.extend_from_slice(s);
        a
    };
    let aces = [
        ace(0x1f01ff, &admins),
        ace(0x1f01ff, &system),
        ace(0x1200a9, &users),
    ];
    let mut acl = vec![2, 0];
    let acl_len = 8 + aces.iter().map(Vec::len).sum::<usize>();
    acl.extend_from_slice(&(acl_len as u16).to_le_bytes());
    acl.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    acl.extend_from_slice(&[0, 0]);
    for a in &aces {
        acl.extend_from_slice(a);
    }
    let owner_at = 20u32;
    let group_at = owner_at + admins.len() as u32;
    let dacl_at = group_at + system.len() as u32;
    let mut sd = vec![1, 0, 0x04, 0x80];
    for off in [owner_at, group_at, 0, dacl_at] {
        sd.extend_from_slice(&off.to_le_bytes());
    }
    sd.extend_from_slice(&admins);
    sd.extend_from_slice(&system);
    sd.extend_from_slice(&acl);
    sd
}

struct Gen<W: Write> {
    b: tar::Builder<W>,
    rawsd: Vec<u8>,
    rng: u64,
}

impl<W: Write> Gen<W> {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn entry(&mut self, name: &str, flag: u8, link: &str, attrs: u32, data: &[u8], meta: bool) {
        let mut pax: Vec<(&str, Vec<u8>)> = vec![
            ("mtime", b"1600000000.1234567".to_vec()),
            ("atime", b"1600000000.1234567".to_vec()),
            ("ctime", b"1600000000.1234567".to_vec()),
        ];
        if meta {
            pax.push(("LIBARCHIVE.creationtime", b"1500000000.5".to_vec()));
            pax.push(("MSWINDOWS.fileattr", attrs.to_string().into_bytes()));
            pax.push(("MSWINDOWS.rawsd", self.rawsd.clone()));
        }
        if name.len() > 100 {
            pax.push(("path", name.as_bytes().to_vec()));
        }
        self.b
            .append_pax_extensions(pax.iter().map(|(k, v)| (*k, v.as_slice())))
            .unwrap();
        let mut h = tar::Header::new_ustar();
        let n = name.len().min(100);
        h.as_ustar_mut().unwrap().name[..n].copy_from_slice(&name.as_bytes()[..n]);
        h.as_ustar_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_mode(match flag {
            b'5' => 0o040000,
            _ => 0o100000,
        });
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_entry_type(tar::EntryType::new(flag));
        h.set_cksum();
        self.b.append(&h, data).unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (out, mib) = match args.as_slice() {
        [_, out, mib] => (out.clone(), mib.parse::<u64>().expect("size in MiB")),
        _ => {
            eprintln!("usage: gen_layer_tar <out.tar> <MiB>");
            std::process::exit(2);
        }
    };
    let w = BufWriter::with_capacity(1 << 20, File::create(&out).expect("create output"));
    let rawsd = base64::engine::general_purpose::STANDARD
        .encode(security_descriptor())
        .into_bytes();
    let mut g = Gen {
        b: tar::Builder::new(w),
        rawsd,
        rng: 0x9E37_79B9_7F4A_7C15,
    };
    let budget = mib << 20;
    let mut written = 0u64;
    let mut buf = vec![0u8; 8 << 20];
    g.entry("Files", b'5', "", 0x10, &[], true);
    g.entry("Files/Windows", b'5', "", 0x10, &[], true);
    let mut dirs = 0;
    let mut files = 0u64;
    while written < budget {
        let dir = format!("Files/Windows/System32/dir{dirs:04}");
        if dirs == 0 {
            g.entry("Files/Windows/System32", b'5', "", 0x10, &[], true);
        }
        g.entry(&dir, b'5', "", 0x10, &[], true);
        dirs += 1;
        for i in 0..40 {
            // Mostly small files, one in forty large, as in a Windows image.
            let size = if i == 39 {
                (1 << 20) + g.next() % (6 << 20)
            } else {
                512 + g.next() % (24 << 10)
            }
            .min(budget.saturating_sub(written).max(1));
            let data = &mut buf[..size as usize];
            for chunk in data.chunks_mut(8) {
                let v = g.next().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            let name = format!("{dir}/file{i:02}.dll");
            g.entry(&name, b'0', "", 0x20, data, true);
            files += 1;
            written += size;
            if i % 13 == 5 {
                g.entry(&format!("{dir}/link{i:02}.dll"), b'1', &name, 0, &[], false);
            }
            if i == 7 {
                g.entry(
                    &format!("{name}:Zone.Identifier"),
                    b'0',
                    "",
                    0,
                    b"[ZoneTransfer]\r\nZoneId=3\r\n",
                    false,
                );
            }
            if written >= budget {
                break;
            }
        }
    }
    g.b.into_inner().unwrap().flush().unwrap();
    eprintln!("{out}: {files} files in {dirs} directories, {written} bytes of data");
}

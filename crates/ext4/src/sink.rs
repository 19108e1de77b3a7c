//! Buffered, seekable output that can hash every 4 KiB block as it goes out.
//!
//! The compact writer produces its image almost strictly in order; only the superblock, the
//! group descriptor table and rewritten xattr blocks are written out of order, always as whole
//! blocks. Hashing each block when its bytes leave the buffer, keeping the latest digest per
//! block, therefore yields the dm-verity leaf level without reading the image again. Blocks
//! that were only partly covered by a flush are re-read and re-hashed at the end.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};
use crate::format::{BLOCK, BLOCK_SIZE};

/// Bytes buffered before a write to the output (a multiple of the block size).
const BUFFER_SIZE: usize = 1 << 20;

/// Per-block SHA-256 digests of the image, salted as dm-verity does (salt first).
#[derive(Debug, Default)]
pub struct LeafHashes {
    salt: Vec<u8>,
    digests: Vec<[u8; 32]>,
    dirty: BTreeSet<u64>,
}

impl LeafHashes {
    /// Starts a leaf level with `salt`.
    pub fn new(salt: &[u8]) -> Self {
        LeafHashes {
            salt: salt.to_vec(),
            digests: Vec::new(),
            dirty: BTreeSet::new(),
        }
    }

    fn set(&mut self, block: u64, data: &[u8]) {
        let i = block as usize;
        if self.digests.len() <= i {
            self.digests.resize(i + 1, [0; 32]);
        }
        self.digests[i] = hash_block(&self.salt, data);
        self.dirty.remove(&block);
    }

    /// Records that `[start, start+len)` was written.
    fn record(&mut self, start: u64, data: &[u8]) {
        let mut off = 0usize;
        let mut pos = start;
        while off < data.len() {
            let block = pos / BLOCK_SIZE;
            let in_block = (pos % BLOCK_SIZE) as usize;
            let n = (BLOCK - in_block).min(data.len() - off);
            if in_block == 0 && n == BLOCK {
                self.set(block, &data[off..off + BLOCK]);
            } else {
                self.dirty.insert(block);
            }
            off += n;
            pos += n as u64;
        }
    }

    /// The digests, one per block, in block order.
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.digests
    }
}

/// `sha256(salt || block)`.
pub fn hash_block(salt: &[u8], data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(data);
    h.finalize().into()
}

/// Hashes flushed buffers on a second thread, so that hashing overlaps the copy.
///
/// Buffers travel to the hasher in write order (a FIFO channel), so a block written twice
/// ends up with the digest of its last content, and come back for reuse.
struct Hasher {
    tx: SyncSender<(u64, Box<[u8]>, usize)>,
    back: Receiver<Box<[u8]>>,
    thread: JoinHandle<LeafHashes>,
}

impl Hasher {
    fn spawn(mut leaves: LeafHashes) -> Hasher {
        let (tx, rx) = mpsc::sync_channel::<(u64, Box<[u8]>, usize)>(4);
        let (back_tx, back) = mpsc::channel::<Box<[u8]>>();
        let thread = std::thread::spawn(move || {
            for (start, buf, len) in rx {
                leaves.record(start, &buf[..len]);
                // The sink may be gone already; then the buffer is simply dropped.
                let _ = back_tx.send(buf);
            }
            leaves
        });
        Hasher { tx, back, thread }
    }
}

/// A zeroed buffer of [`BUFFER_SIZE`] bytes. It is initialized once: the sink fills it by
/// offset, so that copying data in never pays for zeroing the bytes first.
fn new_buffer() -> Box<[u8]> {
    vec![0u8; BUFFER_SIZE].into_boxed_slice()
}

/// The buffered output.
pub struct Sink<W> {
    out: W,
    /// Always [`BUFFER_SIZE`] bytes; `buf[..filled]` is pending output.
    buf: Box<[u8]>,
    filled: usize,
    buf_start: u64,
    hasher: Option<Hasher>,
}

impl<W: Read + Write + Seek> Sink<W> {
    /// Wraps `out`, whose position must be 0.
    pub fn new(out: W, leaves: Option<LeafHashes>) -> Self {
        Sink {
            out,
            buf: new_buffer(),
            filled: 0,
            buf_start: 0,
            hasher: leaves.map(Hasher::spawn),
        }
    }

    /// The logical position.
    pub fn pos(&self) -> u64 {
        self.buf_start + self.filled as u64
    }

    fn flush_bytes(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.out
            .write_all(&self.buf[..n])
            .ctx("writing the image")?;
        let rest = self.filled - n;
        match &self.hasher {
            Some(h) => {
                let mut next = h.back.try_recv().unwrap_or_else(|_| new_buffer());
                next[..rest].copy_from_slice(&self.buf[n..self.filled]);
                let done = std::mem::replace(&mut self.buf, next);
                if h.tx.send((self.buf_start, done, n)).is_err() {
                    return Err(crate::error::Error::Io {
                        context: "hashing the image",
                        source: std::io::Error::other("hasher thread stopped"),
                    });
                }
            }
            None => self.buf.copy_within(n..self.filled, 0),
        }
        self.filled = rest;
        self.buf_start += n as u64;
        Ok(())
    }

    /// Writes everything buffered.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_bytes(self.filled)?;
        self.out.flush().ctx("flushing the image")
    }

    /// Makes room in a full buffer; afterwards at least one byte fits.
    fn make_room(&mut self) -> Result<()> {
        if self.filled >= BUFFER_SIZE {
            // Flush whole blocks only (relative to the buffer start) so that hashing sees them.
            let head = ((BLOCK_SIZE - self.buf_start % BLOCK_SIZE) % BLOCK_SIZE) as usize;
            let n = head + (self.filled - head) / BLOCK * BLOCK;
            self.flush_bytes(n)?;
        }
        Ok(())
    }

    /// The free part of the buffer, at most `max` bytes (after making room).
    fn room(&mut self, max: u64) -> Result<usize> {
        self.make_room()?;
        Ok(((BUFFER_SIZE - self.filled) as u64).min(max) as usize)
    }

    /// Appends bytes.
    pub fn write(&mut self, mut b: &[u8]) -> Result<()> {
        while !b.is_empty() {
            let n = self.room(b.len() as u64)?;
            self.buf[self.filled..self.filled + n].copy_from_slice(&b[..n]);
            self.filled += n;
            b = &b[n..];
        }
        Ok(())
    }

    /// Appends `n` zero bytes.
    pub fn zero(&mut self, mut n: u64) -> Result<()> {
        while n > 0 {
            let k = self.room(n)?;
            self.buf[self.filled..self.filled + k].fill(0);
            self.filled += k;
            n -= k as u64;
        }
        Ok(())
    }

    /// Appends exactly `n` bytes read from `r`, straight into the buffer.
    pub fn copy_from<R: Read + ?Sized>(&mut self, r: &mut R, mut n: u64) -> Result<()> {
        while n > 0 {
            let k = self.room(n)?;
            r.read_exact(&mut self.buf[self.filled..self.filled + k])
                .map_err(crate::error::from_read_error)?;
            self.filled += k;
            n -= k as u64;
        }
        Ok(())
    }

    /// Moves the logical position to `pos`, flushing first.
    pub fn seek(&mut self, pos: u64) -> Result<()> {
        self.flush_bytes(self.filled)?;
        self.out
            .seek(SeekFrom::Start(pos))
            .ctx("seeking the image")?;
        self.buf_start = pos;
        Ok(())
    }

    /// Reads `buf.len()` bytes at `pos` from what was written, keeping the position.
    pub fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> Result<()> {
        let orig = self.pos();
        self.seek(pos)?;
        self.out.read_exact(buf).ctx("reading back the image")?;
        self.seek(orig)
    }

    /// Flushes, re-hashes partly written blocks and returns the output and the leaf digests.
    pub fn finish(mut self) -> Result<(W, Option<LeafHashes>)> {
        self.flush()?;
        let end = self.pos();
        let leaves = match self.hasher.take() {
            Some(h) => {
                drop(h.tx);
                Some(h.thread.join().map_err(|_| crate::error::Error::Io {
                    context: "hashing the image",
                    source: std::io::Error::other("hasher thread panicked"),
                })?)
            }
            None => None,
        };
        if let Some(mut l) = leaves {
            let dirty: Vec<u64> = l.dirty.iter().copied().collect();
            let mut blk = vec![0u8; BLOCK];
            for b in dirty {
                self.out
                    .seek(SeekFrom::Start(b * BLOCK_SIZE))
                    .ctx("seeking the image")?;
                blk.iter_mut().for_each(|x| *x = 0);
                let mut got = 0;
                while got < BLOCK {
                    let n = self
                        .out
                        .read(&mut blk[got..])
                        .ctx("reading back the image")?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                l.set(b, &blk);
            }
            let blocks = end.div_ceil(BLOCK_SIZE) as usize;
            l.digests.truncate(blocks);
            self.out
                .seek(SeekFrom::Start(end))
                .ctx("seeking the image")?;
            return Ok((self.out, Some(l)));
        }
        Ok((self.out, None))
    }
}

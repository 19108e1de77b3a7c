//! Persistence of the engine's state: a snapshot and a journal of the commits since.
//!
//! * `<dir>/state.json`: the whole [`State`] at generation `G` (`{"Generation": G, ...}`);
//! * `<dir>/journal-<G>.log`: the commits made since, one record per mutation:
//!   `length: u32 LE | crc32: u32 LE | JSON array of changes`. A change sets an object
//!   (`{"Kind", "Id", "Record"}`), removes one (`{"Kind", "Id"}`, no record) or sets the
//!   counters (`{"Meta"}`).
//!
//! Why this shape: a mutation costs one append and one `fdatasync`, however many objects it
//! touches (attaching an endpoint changes the endpoint, the namespace and maybe the
//! counters), and those changes land together or not at all. The engine commits before it
//! replies, so an acknowledged change survives a crash.
//!
//! The journal is zero-filled ahead ([`JOURNAL_CHUNK`] at a time) and records overwrite the
//! zeros: `fdatasync` of an overwrite within the file needs no metadata commit, so it does
//! not wait for the file system journal (and for other processes' dirty data with it). A
//! zero length marks the end of the records.
//!
//! Loading reads the snapshot and replays the journal up to the first record that is
//! incomplete or fails its checksum: the tail a crash cut while appending, which was never
//! acknowledged. Loading starts a new generation, so later records never follow a torn
//! one.
//!
//! Compaction (at load, and when the journal outgrows the snapshot) writes snapshot `G+1`
//! (temporary file, `fsync`, `rename`, `fsync` of the directory), creates journal `G+1`
//! and removes journal `G`. A crash at any step leaves snapshot `G` with journal `G`, or
//! snapshot `G+1` (a journal of another generation is stale and removed; a missing one is
//! empty).
//!
//! A failed append or sync leaves the journal untrusted: the next commit compacts (rewrites
//! the whole state from memory) instead of appending. The layout of earlier versions (one
//! file per object, `<kind>/<ID>.json`, and `meta.json`) is read once and converted.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::state::{Meta, State, KINDS};

/// The snapshot's file name.
const SNAPSHOT: &str = "state.json";
/// A journal shorter than this is never compacted at run time (smaller in unit tests, so
/// they reach it quickly).
const COMPACT_MIN: u64 = if cfg!(test) { 64 << 10 } else { 1 << 20 };
/// The journal grows by zero-filled chunks of this size.
pub const JOURNAL_CHUNK: u64 = 1 << 20;
/// The largest record accepted when replaying (a commit holds a few documents).
const MAX_RECORD: usize = 64 << 20;

/// One change of a commit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Change {
    /// Sets (with `Record`) or removes an object.
    Object {
        #[serde(rename = "Kind")]
        kind: String,
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Record", default, skip_serializing_if = "Option::is_none")]
        // Raw, not a `Value`: a map would sort the keys of the documents' raw policy
        // settings, which callers compare byte for byte (RemovePolicy after a restart).
        record: Option<crate::raw::RawJson>,
    },
    /// Sets the counters.
    Meta {
        #[serde(rename = "Meta")]
        meta: Meta,
    },
}

/// The object form of [`Change`], decoded on its own: serde's untagged enums buffer their
/// input, and a buffered value cannot become raw JSON again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectChange {
    #[serde(rename = "Kind")]
    kind: String,
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Record", default)]
    record: Option<crate::raw::RawJson>,
}

/// The counters form of [`Change`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaChange {
    #[serde(rename = "Meta")]
    meta: Meta,
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        if let Ok(o) = serde_json::from_str::<ObjectChange>(raw.get()) {
            return Ok(Change::Object {
                kind: o.kind,
                id: o.id,
                record: o.record,
            });
        }
        serde_json::from_str::<MetaChange>(raw.get())
            .map(|m| Change::Meta { meta: m.meta })
            .map_err(|e| {
                D::Error::custom(format!(
                    "a change that is neither an object nor the counters: {e}"
                ))
            })
    }
}

/// The snapshot file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Snapshot {
    generation: u64,
    state: State,
}

/// The snapshot as written (borrows the state).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SnapshotRef<'a> {
    generation: u64,
    state: &'a State,
}

/// Where a simulated crash stops a compaction (tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrashAt {
    /// The new snapshot is written to its temporary file, not renamed.
    BeforeRename,
    /// The new snapshot is in place; the new journal does not exist.
    AfterRename,
    /// The new journal exists; the old one is not removed.
    BeforeRemove,
}

#[derive(Debug)]
struct Inner {
    generation: u64,
    journal: Option<File>,
    /// Bytes of valid records in the journal.
    journal_len: u64,
    /// The journal's size (valid records, then zeros).
    journal_size: u64,
    snapshot_len: u64,
    pending: Vec<Change>,
    /// A failed append or sync: the next commit rewrites everything.
    untrusted: bool,
    #[cfg(test)]
    crash_at: Option<CrashAt>,
}

/// The state directory of one engine.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    inner: Mutex<Inner>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// Makes a rename or a file creation in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("sync", dir, e))
}

/// Windows cannot open a directory as a file without backup semantics, and NTFS journals
/// renames and creations itself, so there is nothing to flush.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), String> {
    Ok(())
}

fn journal_name(generation: u64) -> String {
    format!("journal-{generation}.log")
}

/// The records of a journal's bytes: the changes of each complete, intact record, and the
/// length of that valid prefix.
fn parse_journal(bytes: &[u8]) -> Result<(Vec<Vec<Change>>, usize), String> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        if len == 0 {
            break; // the zero-filled space after the last record
        }
        if len > MAX_RECORD || bytes.len() - at - 8 < len {
            break; // cut short by a crash
        }
        let payload = &bytes[at + 8..at + 8 + len];
        if crc32fast::hash(payload) != crc {
            break; // torn by a crash
        }
        // An intact record that does not decode is not a crash's doing: refuse it.
        let changes: Vec<Change> = serde_json::from_slice(payload)
            .map_err(|e| format!("journal record at byte {at}: {e}"))?;
        out.push(changes);
        at += 8 + len;
    }
    Ok((out, at))
}

/// Appends `len` zero bytes at `at` (the journal's end).
fn zero_fill(f: &mut File, at: u64, len: u64) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(at))?;
    let zeros = vec![0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn encode_record(changes: &[Change]) -> Result<Vec<u8>, String> {
    let payload = serde_json::to_vec(changes).map_err(|e| format!("encode a commit: {e}"))?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_RECORD)
        .ok_or_else(|| format!("a commit of {} bytes is too large", payload.len()))?;
    let mut rec = Vec::with_capacity(payload.len() + 8);
    rec.extend_from_slice(&len.to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    rec.extend_from_slice(&payload);
    Ok(rec)
}

impl Store {
    /// A store under `root` (created if missing). [`Store::load`] reads it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, String> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_err("create", &root, e))?;
        Ok(Self {
            root,
            inner: Mutex::new(Inner {
                generation: 0,
                journal: None,
                journal_len: 0,
                journal_size: 0,
                snapshot_len: 0,
                pending: Vec::new(),
                untrusted: true,
                #[cfg(test)]
                crash_at: None,
            }),
        })
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every field is valid between statements; a panic cannot leave a torn one.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the state (snapshot and journal, or the earlier layout) and compacts it into a
    /// new snapshot with an empty journal.
    pub fn load(&self) -> Result<State, String> {
        let snap_path = self.root.join(SNAPSHOT);
        let (generation, mut state) = match fs::read(&snap_path) {
            Ok(b) => {
                let s: Snapshot = serde_json::from_slice(&b)
                    .map_err(|e| format!("corrupt state file {}: {e}", snap_path.display()))?;
                (s.generation, s.state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, self.load_legacy()?),
            Err(e) => return Err(io_err("read", &snap_path, e)),
        };
        let jpath = self.root.join(journal_name(generation));
        match fs::read(&jpath) {
            Ok(bytes) => {
                let (records, valid) = parse_journal(&bytes)
                    .map_err(|e| format!("corrupt journal {}: {e}", jpath.display()))?;
                if valid < bytes.len() {
                    tracing::warn!(journal = %jpath.display(), bytes = bytes.len() - valid,
                        "dropping an incomplete last commit (a crash cut it; it was never acknowledged)");
                }
                for changes in records {
                    for c in changes {
                        match c {
                            Change::Object { kind, id, record } => {
                                state.apply(&kind, &id, record)?;
                            }
                            Change::Meta { meta } => state.meta = meta,
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &jpath, e)),
        }
        let mut inner = self.inner();
        inner.generation = generation;
        self.compact(&mut inner, &state)?;
        self.remove_leftovers(&inner)?;
        Ok(state)
    }

    /// The layout of earlier versions: `meta.json` and `<kind>/<ID>.json`.
    fn load_legacy(&self) -> Result<State, String> {
        let mut state = State::default();
        let meta_path = self.root.join("meta.json");
        match fs::read(&meta_path) {
            Ok(b) => {
                state.meta = serde_json::from_slice(&b)
                    .map_err(|e| format!("corrupt state file {}: {e}", meta_path.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &meta_path, e)),
        }
        for kind in KINDS {
            let dir = self.root.join(kind);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &dir, e)),
            };
            for entry in entries {
                let path = entry.map_err(|e| io_err("read", &dir, e))?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue; // a temporary file whose rename never happened
                }
                let id = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .ok_or_else(|| format!("bad state file name {}", path.display()))?
                    .to_string();
                let bytes = fs::read(&path).map_err(|e| io_err("read", &path, e))?;
                let text = String::from_utf8(bytes)
                    .map_err(|e| format!("corrupt state file {}: {e}", path.display()))?;
                let v = crate::raw::RawJson::from_text(text)
                    .map_err(|e| format!("corrupt state file {}: {e}", path.display()))?;
                state.apply(kind, &id, Some(v))?;
            }
        }
        Ok(state)
    }

    /// Removes what is not the current snapshot and journal: other generations' journals,
    /// temporary files, the earlier layout (already converted).
    fn remove_leftovers(&self, inner: &Inner) -> Result<(), String> {
        let keep = journal_name(inner.generation);
        let entries = fs::read_dir(&self.root).map_err(|e| io_err("read", &self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err("read", &self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let stale_journal = name.starts_with("journal-") && name != keep;
            let legacy = name == "meta.json" || name.ends_with(".tmp");
            if stale_journal || legacy {
                fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))?;
            } else if KINDS.contains(&name.as_str()) && path.is_dir() {
                fs::remove_dir_all(&path).map_err(|e| io_err("remove", &path, e))?;
            }
        }
        sync_dir(&self.root)
    }

    #[cfg(test)]
    fn crash(&self, inner: &Inner, at: CrashAt) -> Result<(), String> {
        if inner.crash_at == Some(at) {
            return Err(format!("simulated crash {at:?}"));
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn crash_at(&self, at: Option<CrashAt>) {
        self.inner().crash_at = at;
    }

    /// Writes `state` as snapshot `generation + 1` and starts its empty journal.
    fn compact(&self, inner: &mut Inner, state: &State) -> Result<(), String> {
        let next = inner.generation + 1;
        let bytes = serde_json::to_vec(&SnapshotRef {
            generation: next,
            state,
        })
        .map_err(|e| format!("encode the state: {e}"))?;
        let path = self.root.join(SNAPSHOT);
        let tmp = self.root.join(format!("{SNAPSHOT}.tmp"));
        let mut f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
        f.write_all(&bytes).map_err(|e| io_err("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("sync", &tmp, e))?;
        #[cfg(test)]
        self.crash(inner, CrashAt::BeforeRename)?;
        fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))?;
        sync_dir(&self.root)?;
        // From here snapshot `next` is the state; the old journal is stale.
        let old = self.root.join(journal_name(inner.generation));
        inner.generation = next;
        inner.snapshot_len = bytes.len() as u64;
        inner.journal = None;
        inner.journal_len = 0;
        inner.untrusted = true;
        #[cfg(test)]
        self.crash(inner, CrashAt::AfterRename)?;
        let jpath = self.root.join(journal_name(next));
        let mut j = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&jpath)
            .map_err(|e| io_err("create", &jpath, e))?;
        zero_fill(&mut j, 0, JOURNAL_CHUNK)
            .and_then(|()| j.sync_all())
            .map_err(|e| io_err("prepare", &jpath, e))?;
        sync_dir(&self.root)?;
        #[cfg(test)]
        self.crash(inner, CrashAt::BeforeRemove)?;
        match fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &old, e)),
        }
        inner.journal = Some(j);
        inner.journal_size = JOURNAL_CHUNK;
        inner.untrusted = false;
        Ok(())
    }

    /// Records setting object `id` of `kind` (committed by [`Store::commit`]).
    pub fn put<T: Serialize>(&self, kind: &str, id: &str, record: &T) -> Result<(), String> {
        let record =
            crate::raw::RawJson::from_value(record).map_err(|e| format!("encode {id}: {e}"))?;
        self.inner().pending.push(Change::Object {
            kind: kind.to_string(),
            id: id.to_string(),
            record: Some(record),
        });
        Ok(())
    }

    /// Records removing object `id` of `kind` (absent is fine).
    pub fn remove(&self, kind: &str, id: &str) -> Result<(), String> {
        self.inner().pending.push(Change::Object {
            kind: kind.to_string(),
            id: id.to_string(),
            record: None,
        });
        Ok(())
    }

    /// Records setting the counters.
    pub fn put_meta(&self, meta: &Meta) -> Result<(), String> {
        self.inner()
            .pending
            .push(Change::Meta { meta: meta.clone() });
        Ok(())
    }

    /// Makes the recorded changes durable: one appended record and one `fdatasync`.
    /// `state` is the engine's state with the changes applied (written whole when the
    /// journal is compacted or cannot be trusted).
    pub fn commit(&self, state: &State) -> Result<(), String> {
        let mut inner = self.inner();
        if inner.pending.is_empty() && !inner.untrusted {
            return Ok(());
        }
        if inner.untrusted || inner.journal.is_none() {
            self.compact(&mut inner, state)?;
            inner.pending.clear();
            return Ok(());
        }
        let rec = encode_record(&inner.pending)?;
        let jpath = self.root.join(journal_name(inner.generation));
        let at = inner.journal_len;
        let end = at + rec.len() as u64;
        // Grow by whole chunks when the record does not fit in the zeroed space (that
        // sync then commits the new size too).
        let size = inner.journal_size;
        let grow = if end > size {
            end.div_ceil(JOURNAL_CHUNK) * JOURNAL_CHUNK - size
        } else {
            0
        };
        let appended = match inner.journal.as_mut() {
            Some(j) => (if grow > 0 {
                zero_fill(j, size, grow)
            } else {
                Ok(())
            })
            .and_then(|()| j.seek(SeekFrom::Start(at)))
            .and_then(|_| j.write_all(&rec))
            .and_then(|()| j.sync_data()),
            None => Err(std::io::ErrorKind::NotFound.into()),
        };
        if let Err(e) = appended {
            // The journal's tail is unknown now (and after a failed sync, so is the page
            // cache's view of it): the next commit rewrites everything.
            inner.untrusted = true;
            return Err(io_err("append to", &jpath, e));
        }
        inner.journal_len = end;
        inner.journal_size += grow;
        inner.pending.clear();
        if inner.journal_len > COMPACT_MIN && inner.journal_len > inner.snapshot_len {
            self.compact(&mut inner, state)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

//! An in-memory stand-in for the streaming exports: layers are lists of entries; imports
//! append to them, exports replay them. Calls are recorded, failures injectable.

use std::collections::HashMap;
use std::sync::Mutex;

use hcs::vmcompute::LayerDescriptor;

use super::{ExportedFile, StreamContext, StreamingExports};
use crate::fileinfo::FileBasicInfo;

/// `ERROR_NO_MORE_FILES` would end an export; the fake simply says `None`.
const E_FAIL: i32 = 0x8000_4005_u32 as i32;

/// The size of the data stream in a backup stream (what `ExportLayerNext` reports).
fn data_size(stream: &[u8]) -> i64 {
    let mut r = crate::backup::BackupStreamReader::new(stream);
    while let Ok(Some(h)) = r.next_header() {
        if h.id == crate::backup::BACKUP_DATA {
            return h.size as i64;
        }
    }
    0
}

#[derive(Debug, Clone)]
pub(crate) struct FakeEntry {
    pub name: String,
    pub info: Option<FileBasicInfo>,
    pub stream: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    layers: HashMap<String, Vec<FakeEntry>>,
    /// Export contexts: the layer snapshot, the next entry, the read position.
    exports: HashMap<usize, (Vec<FakeEntry>, usize, usize)>,
    /// Import contexts: the layer and its entries so far.
    imports: HashMap<usize, (String, Vec<FakeEntry>)>,
    next_ctx: usize,
    calls: Vec<String>,
    fail: Option<&'static str>,
}

#[derive(Debug, Default)]
pub(crate) struct FakeStreaming {
    st: Mutex<State>,
}

impl FakeStreaming {
    pub fn layer(&self, layer: &str) -> Option<Vec<FakeEntry>> {
        self.st.lock().unwrap().layers.get(layer).cloned()
    }

    pub fn calls(&self) -> Vec<String> {
        self.st.lock().unwrap().calls.clone()
    }

    pub fn fail(&self, call: &'static str) {
        self.st.lock().unwrap().fail = Some(call);
    }

    fn enter(&self, call: &'static str) -> Result<std::sync::MutexGuard<'_, State>, i32> {
        let mut st = self.st.lock().unwrap();
        st.calls.push(call.to_string());
        if st.fail == Some(call) {
            return Err(E_FAIL);
        }
        Ok(st)
    }
}

impl StreamingExports for FakeStreaming {
    fn export_begin(
        &self,
        layer: &str,
        _parents: &[LayerDescriptor],
    ) -> Result<StreamContext, i32> {
        let mut st = self.enter("ExportLayerBegin")?;
        let entries = st.layers.get(layer).cloned().ok_or(E_FAIL)?;
        st.next_ctx += 1;
        let ctx = st.next_ctx;
        st.exports.insert(ctx, (entries, 0, 0));
        Ok(StreamContext(ctx))
    }

    fn export_next(&self, ctx: StreamContext) -> Result<Option<ExportedFile>, i32> {
        let mut st = self.enter("ExportLayerNext")?;
        let (entries, next, pos) = st.exports.get_mut(&ctx.0).ok_or(E_FAIL)?;
        let Some(e) = entries.get(*next) else {
            return Ok(None);
        };
        *next += 1;
        *pos = 0;
        Ok(Some(ExportedFile {
            name: e.name.clone(),
            info: e.info.unwrap_or_default(),
            size: data_size(&e.stream),
            deleted: e.info.is_none(),
        }))
    }

    fn export_read(&self, ctx: StreamContext, buf: &mut [u8]) -> Result<usize, i32> {
        let mut st = self.enter("ExportLayerRead")?;
        let (entries, next, pos) = st.exports.get_mut(&ctx.0).ok_or(E_FAIL)?;
        let e = entries
            .get(next.checked_sub(1).ok_or(E_FAIL)?)
            .ok_or(E_FAIL)?;
        let rest = &e.stream[*pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        *pos += n;
        Ok(n)
    }

    fn export_end(&self, ctx: StreamContext) -> Result<(), i32> {
        let mut st = self.enter("ExportLayerEnd")?;
        st.exports.remove(&ctx.0).map(|_| ()).ok_or(E_FAIL)
    }

    fn import_begin(
        &self,
        layer: &str,
        _parents: &[LayerDescriptor],
    ) -> Result<StreamContext, i32> {
        let mut st = self.enter("ImportLayerBegin")?;
        st.next_ctx += 1;
        let ctx = st.next_ctx;
        st.imports.insert(ctx, (layer.to_string(), Vec::new()));
        Ok(StreamContext(ctx))
    }

    fn import_next(
        &self,
        ctx: StreamContext,
        name: &str,
        info: Option<&FileBasicInfo>,
    ) -> Result<(), i32> {
        let mut st = self.enter("ImportLayerNext")?;
        let (_, entries) = st.imports.get_mut(&ctx.0).ok_or(E_FAIL)?;
        entries.push(FakeEntry {
            name: name.to_string(),
            info: info.copied(),
            stream: Vec::new(),
        });
        Ok(())
    }

    fn import_write(&self, ctx: StreamContext, buf: &[u8]) -> Result<(), i32> {
        let mut st = self.enter("ImportLayerWrite")?;
        let (_, entries) = st.imports.get_mut(&ctx.0).ok_or(E_FAIL)?;
        entries
            .last_mut()
            .ok_or(E_FAIL)?
            .stream
            .extend_from_slice(buf);
        Ok(())
    }

    fn import_end(&self, ctx: StreamContext) -> Result<(), i32> {
        let mut st = self.enter("ImportLayerEnd")?;
        let (layer, entries) = st.imports.remove(&ctx.0).ok_or(E_FAIL)?;
        st.layers.insert(layer, entries);
        Ok(())
    }
}

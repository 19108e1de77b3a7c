//! The streaming layer exports of vmcompute.dll (`ExportLayerBegin/Next/Read/End`,
//! `ImportLayerBegin/Next/Write/End`) and the reader and writer over them (hcsshim's
//! `FilterLayerReader`/`FilterLayerWriter`).
//!
//! The exports are optional: the reference declares them but most Windows builds do not
//! have them, in which case layers go through the transport format instead
//! ([`Layers::new_layer_reader`](super::Layers::new_layer_reader)). The boundary is the
//! small [`StreamingExports`] trait (Win32 in `sys::windows`, an in-memory fake in tests).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use hcs::vmcompute::LayerDescriptor;

use super::{LayerEntry, LayerReader, LayerWriter};
use crate::error::{Error, Result};
use crate::fileinfo::FileBasicInfo;
use crate::fs::LinkInfo;

/// An `ExportLayerBegin`/`ImportLayerBegin` context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamContext(pub usize);

/// What `ExportLayerNext` returns for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    /// The name, as vmcompute gives it (usually with a leading `\`).
    pub name: String,
    /// Basic info (meaningless when deleted).
    pub info: FileBasicInfo,
    /// Bytes of data.
    pub size: i64,
    /// A tombstone.
    pub deleted: bool,
}

/// The streaming exports; errors are the raw failure HRESULTs.
pub trait StreamingExports: Send + Sync + fmt::Debug {
    /// `ExportLayerBegin(info, id, descriptors, count, &context)`.
    fn export_begin(&self, layer: &str, parents: &[LayerDescriptor]) -> Result<StreamContext, i32>;
    /// `ExportLayerNext(context, &name, &info, &size, &deleted)`; `None` once vmcompute says
    /// `ERROR_NO_MORE_FILES`.
    fn export_next(&self, ctx: StreamContext) -> Result<Option<ExportedFile>, i32>;
    /// `ExportLayerRead(context, buffer, size, &read)`.
    fn export_read(&self, ctx: StreamContext, buf: &mut [u8]) -> Result<usize, i32>;
    /// `ExportLayerEnd(context)`.
    fn export_end(&self, ctx: StreamContext) -> Result<(), i32>;
    /// `ImportLayerBegin(info, id, descriptors, count, &context)`.
    fn import_begin(&self, layer: &str, parents: &[LayerDescriptor]) -> Result<StreamContext, i32>;
    /// `ImportLayerNext(context, name, info)`; `info` is `None` for a deletion.
    fn import_next(
        &self,
        ctx: StreamContext,
        name: &str,
        info: Option<&FileBasicInfo>,
    ) -> Result<(), i32>;
    /// `ImportLayerWrite(context, buffer, size)`.
    fn import_write(&self, ctx: StreamContext, buf: &[u8]) -> Result<(), i32>;
    /// `ImportLayerEnd(context)`.
    fn import_end(&self, ctx: StreamContext) -> Result<(), i32>;
}

fn hr_error(hr: i32, op: &'static str) -> Error {
    hcs::operation::call_error(hr, None).with_op(op).into()
}

fn utf8(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| Error::InvalidPath {
        path: p.display().to_string(),
        reason: "not valid Unicode",
    })
}

/// Reads a layer through `ExportLayerBegin/Next/Read/End`.
pub struct FilterLayerReader {
    api: Arc<dyn StreamingExports>,
    ctx: Option<StreamContext>,
}

impl FilterLayerReader {
    /// `ExportLayerBegin` for `path` on top of the parents' descriptors.
    pub fn begin(
        api: Arc<dyn StreamingExports>,
        path: &Path,
        parents: &[LayerDescriptor],
    ) -> Result<Self> {
        let ctx = api
            .export_begin(utf8(path)?, parents)
            .map_err(|hr| hr_error(hr, "ExportLayerBegin"))?;
        Ok(Self {
            api,
            ctx: Some(ctx),
        })
    }

    fn ctx(&self) -> Result<StreamContext> {
        self.ctx.ok_or(Error::State("the layer reader is closed"))
    }
}

impl Read for FilterLayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let ctx = self.ctx().map_err(Error::into_io)?;
        self.api
            .export_read(ctx, buf)
            .map_err(|hr| hr_error(hr, "ExportLayerRead").into_io())
    }
}

impl LayerReader for FilterLayerReader {
    fn next_entry(&mut self) -> Result<Option<LayerEntry>> {
        let ctx = self.ctx()?;
        let Some(f) = self
            .api
            .export_next(ctx)
            .map_err(|hr| hr_error(hr, "ExportLayerNext"))?
        else {
            return Ok(None);
        };
        let name = f.name.strip_prefix('\\').unwrap_or(&f.name).to_string();
        let size = u64::try_from(f.size)
            .map_err(|_| Error::InvalidLayer(format!("{name}: negative size {}", f.size)))?;
        Ok(Some(LayerEntry {
            name,
            size,
            info: (!f.deleted).then_some(f.info),
        }))
    }

    fn link_info(&mut self) -> Result<Option<LinkInfo>> {
        // The export says nothing about links.
        Ok(None)
    }

    fn can_rewind(&self) -> bool {
        false
    }

    fn rewind(&mut self) -> Result<()> {
        Err(Error::Unsupported(
            "the streaming export cannot go back in a file".into(),
        ))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        match self.ctx.take() {
            Some(ctx) => self
                .api
                .export_end(ctx)
                .map_err(|hr| hr_error(hr, "ExportLayerEnd")),
            None => Ok(()),
        }
    }
}

impl Drop for FilterLayerReader {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            if let Err(hr) = self.api.export_end(ctx) {
                tracing::warn!("ExportLayerEnd of an abandoned reader failed: {hr:#010x}");
            }
        }
    }
}

/// Writes a layer through `ImportLayerBegin/Next/Write/End`.
pub struct FilterLayerWriter {
    api: Arc<dyn StreamingExports>,
    ctx: Option<StreamContext>,
}

impl FilterLayerWriter {
    /// `ImportLayerBegin` for `path` on top of the parents' descriptors.
    pub fn begin(
        api: Arc<dyn StreamingExports>,
        path: &Path,
        parents: &[LayerDescriptor],
    ) -> Result<Self> {
        let ctx = api
            .import_begin(utf8(path)?, parents)
            .map_err(|hr| hr_error(hr, "ImportLayerStart"))?;
        Ok(Self {
            api,
            ctx: Some(ctx),
        })
    }

    fn ctx(&self) -> Result<StreamContext> {
        self.ctx.ok_or(Error::State("the layer writer is closed"))
    }

    fn next(&mut self, name: &str, info: Option<&FileBasicInfo>) -> Result<()> {
        let ctx = self.ctx()?;
        let name = if name.starts_with('\\') {
            name.to_string()
        } else {
            format!("\\{name}")
        };
        self.api
            .import_next(ctx, &name, info)
            .map_err(|hr| hr_error(hr, "ImportLayerNext"))
    }
}

impl Write for FilterLayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let ctx = self.ctx().map_err(Error::into_io)?;
        self.api
            .import_write(ctx, buf)
            .map_err(|hr| hr_error(hr, "ImportLayerWrite").into_io())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LayerWriter for FilterLayerWriter {
    fn add(&mut self, name: &str, info: &FileBasicInfo) -> Result<()> {
        self.next(name, Some(info))
    }

    fn add_link(&mut self, name: &str, target: &str) -> Result<()> {
        Err(Error::Unsupported(format!(
            "hard links are not supported by the streaming import ({name} -> {target})"
        )))
    }

    fn remove(&mut self, name: &str) -> Result<()> {
        self.next(name, None)
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        match self.ctx.take() {
            Some(ctx) => self
                .api
                .import_end(ctx)
                .map_err(|hr| hr_error(hr, "ImportLayerEnd")),
            None => Ok(()),
        }
    }
}

impl Drop for FilterLayerWriter {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            if let Err(hr) = self.api.import_end(ctx) {
                tracing::warn!("ImportLayerEnd of an abandoned writer failed: {hr:#010x}");
            }
        }
    }
}

#[cfg(all(test, unix))]
pub(crate) mod fake;

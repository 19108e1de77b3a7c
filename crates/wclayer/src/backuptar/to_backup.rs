//! Import direction: a tar entry (and the alternate-data-stream entries after it) becomes
//! the entry's [`FileBasicInfo`] and its Win32 backup stream, as go-winio's
//! `FileInfoFromHeader` and `WriteBackupStreamFromTarFile` do.

use std::io::{Read, Write};

use base64::Engine as _;

use super::reader::{copy_data, typeflag, TarData, TarEntries, TarHeader};
use super::{
    HDR_CREATION_TIME, HDR_EA_PREFIX, HDR_FILE_ATTRIBUTES, HDR_MOUNT_POINT,
    HDR_RAW_SECURITY_DESCRIPTOR, HDR_SECURITY_DESCRIPTOR,
};
use crate::backup::{
    BackupHeader, BackupStreamWriter, BACKUP_ALTERNATE_DATA, BACKUP_DATA, BACKUP_EA_DATA,
    BACKUP_REPARSE_DATA, BACKUP_SECURITY_DATA, MAX_METADATA_STREAM,
};
use crate::ea::{self, ExtendedAttribute};
use crate::error::{Error, Result};
use crate::fileinfo::{FileBasicInfo, UnixTime, FILE_ATTRIBUTE_DIRECTORY};
use crate::reparse::ReparsePoint;

/// `FileInfoFromHeader`: the entry's name, its size (regular files only) and its basic info.
///
/// Times come from the PAX records (`LIBARCHIVE.creationtime` for the creation time, the
/// modification time otherwise). Where the tar has no access or change time, the
/// modification time stands in (the reference converts Go's zero time, which overflows).
pub fn file_info_from_header(hdr: &TarHeader) -> Result<(String, u64, FileBasicInfo)> {
    let size = if hdr.is_regular() { hdr.size } else { 0 };
    let creation = match hdr.pax_str(HDR_CREATION_TIME)? {
        Some(s) => UnixTime::from_pax(s)
            .ok_or_else(|| Error::tar(&hdr.name, format!("bad {HDR_CREATION_TIME} {s:?}")))?,
        None => hdr.mtime,
    };
    let mut info = FileBasicInfo {
        creation_time: creation.to_filetime(),
        last_access_time: hdr.atime.unwrap_or(hdr.mtime).to_filetime(),
        last_write_time: hdr.mtime.to_filetime(),
        change_time: hdr.ctime.unwrap_or(hdr.mtime).to_filetime(),
        file_attributes: 0,
    };
    match hdr.pax_str(HDR_FILE_ATTRIBUTES)? {
        Some(s) => {
            info.file_attributes = s
                .parse::<u32>()
                .map_err(|_| Error::tar(&hdr.name, format!("bad {HDR_FILE_ATTRIBUTES} {s:?}")))?;
        }
        None if hdr.typeflag == typeflag::DIR => info.file_attributes = FILE_ATTRIBUTE_DIRECTORY,
        None => {}
    }
    Ok((hdr.name.clone(), size, info))
}

/// The security descriptor of an entry: `MSWINDOWS.rawsd` (base64), else `MSWINDOWS.sd`
/// (SDDL, converted by Windows; elsewhere an error).
pub fn security_descriptor_from_header(hdr: &TarHeader) -> Result<Option<Vec<u8>>> {
    if let Some(raw) = hdr.pax_str(HDR_RAW_SECURITY_DESCRIPTOR)? {
        let sd = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| {
                Error::tar(&hdr.name, format!("bad {HDR_RAW_SECURITY_DESCRIPTOR}: {e}"))
            })?;
        return Ok(Some(sd));
    }
    match hdr.pax_str(HDR_SECURITY_DESCRIPTOR)? {
        Some(sddl) => crate::sys::sddl_to_security_descriptor(sddl)
            .map(Some)
            .map_err(|e| Error::tar(&hdr.name, format!("{HDR_SECURITY_DESCRIPTOR}: {e}"))),
        None => Ok(None),
    }
}

/// The extended attributes of an entry (`MSWINDOWS.xattr.*`), encoded for the backup
/// stream, in name order; `None` when there are none.
pub fn extended_attributes_from_header(hdr: &TarHeader) -> Result<Option<Vec<u8>>> {
    let mut eas = Vec::new();
    for (k, v) in hdr.pax.range(HDR_EA_PREFIX.to_string()..) {
        let Some(name) = k.strip_prefix(HDR_EA_PREFIX) else {
            break;
        };
        let value = base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_err(|e| Error::tar(&hdr.name, format!("bad {k}: {e}")))?;
        eas.push(ExtendedAttribute {
            name: name.to_string(),
            flags: 0,
            value,
        });
    }
    if eas.is_empty() {
        return Ok(None);
    }
    ea::encode(&eas)
        .map(Some)
        .map_err(|e| Error::tar(&hdr.name, e.to_string()))
}

/// The reparse data of a symlink entry (`/` in the target become `\`).
pub fn reparse_point_from_header(hdr: &TarHeader) -> Result<Vec<u8>> {
    ReparsePoint {
        target: hdr.linkname.replace('/', "\\"),
        is_mount_point: hdr.pax.contains_key(HDR_MOUNT_POINT),
    }
    .encode()
    .map_err(|e| Error::tar(&hdr.name, e.to_string()))
}

/// The stream name of an alternate data stream entry of `file`, if `next` is one
/// (`file:stream`, a regular entry right after its file).
fn alternate_stream_of(file: &TarHeader, next: &TarHeader) -> Option<String> {
    if !next.is_regular() {
        return None;
    }
    let rest = next.name.strip_prefix(&file.name)?.strip_prefix(':')?;
    Some(rest.to_string())
}

/// `WriteBackupStreamFromTarFile`: writes the backup stream of the entry `hdr` (whose data is
/// `data`) to `w`: security descriptor, extended attributes, reparse data, data, then every
/// alternate data stream entry that follows. Returns the first entry that is not part of
/// this file, or `None` at the end of the tar.
pub fn write_backup_stream_from_tar_file<'a, R: Read>(
    w: impl Write,
    entries: &mut TarEntries<'a, R>,
    hdr: &TarHeader,
    mut data: TarData<'a, R>,
) -> Result<Option<(TarHeader, TarData<'a, R>)>> {
    let mut bw = BackupStreamWriter::new(w);
    let mut meta = |id: u32, bytes: Vec<u8>, what: &str| -> Result<()> {
        if bytes.len() as u64 > MAX_METADATA_STREAM {
            return Err(Error::tar(&hdr.name, format!("{what} over the size limit")));
        }
        bw.write_record(&BackupHeader::new(id, bytes.len() as u64), &bytes)
    };
    if let Some(sd) = security_descriptor_from_header(hdr)? {
        if !sd.is_empty() {
            meta(BACKUP_SECURITY_DATA, sd, "security descriptor")?;
        }
    }
    if let Some(eas) = extended_attributes_from_header(hdr)? {
        meta(BACKUP_EA_DATA, eas, "extended attributes")?;
    }
    if hdr.typeflag == typeflag::SYMLINK {
        meta(
            BACKUP_REPARSE_DATA,
            reparse_point_from_header(hdr)?,
            "reparse data",
        )?;
    }
    if hdr.is_regular() {
        bw.write_header(&BackupHeader::new(BACKUP_DATA, hdr.size))?;
        copy_data(&mut data, &mut bw, hdr.size, &hdr.name)?;
    }
    drop(data);
    loop {
        let Some((next, mut next_data)) = entries.next_entry()? else {
            bw.finish()?;
            return Ok(None);
        };
        let Some(stream) = alternate_stream_of(hdr, &next) else {
            bw.finish()?;
            return Ok(Some((next, next_data)));
        };
        if stream.is_empty() || stream.contains(['/', '\\', ':']) {
            return Err(Error::tar(&next.name, "invalid alternate data stream name"));
        }
        let h = BackupHeader {
            name: format!(":{stream}:$DATA"),
            ..BackupHeader::new(BACKUP_ALTERNATE_DATA, next.size)
        };
        bw.write_header(&h)?;
        copy_data(&mut next_data, &mut bw, next.size, &next.name)?;
    }
}

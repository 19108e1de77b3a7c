//! Empty registry hives (offreg.dll) for ConvertToBaseLayer, and the scratch volume growth
//! after ExpandSandboxSize (virtdisk attach and volume ioctls).

use std::fs::OpenOptions;
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::Path;

use windows_sys::Wdk::System::OfflineRegistry::{ORCloseHive, ORCreateHive, ORSaveHive, ORHKEY};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{FILE_SHARE_READ, FILE_SHARE_WRITE};

use super::ntfs::handle;
use super::wide;
use crate::error::{Error, Result};

/// Creates an empty registry hive file at `path` (saved in the 6.1 format, as containerd's
/// Windows snapshotter does).
pub fn create_empty_hive(path: &Path) -> Result<()> {
    let mut key: ORHKEY = std::ptr::null_mut();
    // SAFETY: `key` is a valid out pointer.
    let rc = unsafe { ORCreateHive(&mut key) };
    if rc != 0 {
        return Err(Error::io(
            "ORCreateHive for",
            path,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }
    let w = wide(path);
    // SAFETY: `key` is the hive just created; `w` is NUL-terminated.
    let rc = unsafe { ORSaveHive(key, w.as_ptr(), 6, 1) };
    // SAFETY: `key` is open and closed once.
    let closed = unsafe { ORCloseHive(key) };
    if rc != 0 {
        return Err(Error::io(
            "ORSaveHive",
            path,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }
    if closed != 0 {
        return Err(Error::io(
            "ORCloseHive for",
            path,
            io::Error::from_raw_os_error(closed as i32),
        ));
    }
    Ok(())
}

use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW;
use windows_sys::Win32::Storage::Vhd::{
    AttachVirtualDisk, OpenVirtualDisk, ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY,
    ATTACH_VIRTUAL_DISK_PARAMETERS, ATTACH_VIRTUAL_DISK_VERSION_1, OPEN_VIRTUAL_DISK_FLAG_NONE,
    OPEN_VIRTUAL_DISK_PARAMETERS, OPEN_VIRTUAL_DISK_VERSION_2, VIRTUAL_DISK_ACCESS_NONE,
    VIRTUAL_STORAGE_TYPE,
};
use windows_sys::Win32::System::Ioctl::{FSCTL_EXTEND_VOLUME, IOCTL_DISK_GET_LENGTH_INFO};
use windows_sys::Win32::System::IO::DeviceIoControl;

/// An open handle closed on drop (closing an attached VHD's handle detaches it).
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by this module and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Attaches `vhdx`, then extends the NTFS volume at `volume` (its mount path) to fill its
/// partition, when there is room.
pub fn grow_scratch_volume(vhdx: &Path, volume: &str) -> Result<()> {
    let w = wide(vhdx);
    let storage = VIRTUAL_STORAGE_TYPE::default();
    let mut open = OPEN_VIRTUAL_DISK_PARAMETERS {
        Version: OPEN_VIRTUAL_DISK_VERSION_2,
        ..Default::default()
    };
    // Version 2 parameters: not info-only, not read-only (both zero).
    open.Anonymous.Version2 = Default::default();
    let mut disk: HANDLE = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live value; `disk` is a valid out pointer.
    let rc = unsafe {
        OpenVirtualDisk(
            &storage,
            w.as_ptr(),
            VIRTUAL_DISK_ACCESS_NONE,
            OPEN_VIRTUAL_DISK_FLAG_NONE,
            &open,
            &mut disk,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "OpenVirtualDisk",
            vhdx,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }
    let disk = OwnedHandle(disk);
    let attach = ATTACH_VIRTUAL_DISK_PARAMETERS {
        Version: ATTACH_VIRTUAL_DISK_VERSION_1,
        ..Default::default()
    };
    // SAFETY: `disk` is open; `attach` outlives the (synchronous) call.
    let rc = unsafe {
        AttachVirtualDisk(
            disk.0,
            std::ptr::null_mut(),
            ATTACH_VIRTUAL_DISK_FLAG_BYPASS_DEFAULT_ENCRYPTION_POLICY,
            0,
            &attach,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "AttachVirtualDisk",
            vhdx,
            io::Error::from_raw_os_error(rc as i32),
        ));
    }

    let volume = volume.trim_end_matches('\\');
    let vol = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(volume)
        .map_err(|e| Error::io("open volume", volume, e))?;
    let mut partition: i64 = 0;
    let mut returned = 0u32;
    // SAFETY: `vol` is an open volume handle; the output buffer is the 8-byte length.
    let ok = unsafe {
        DeviceIoControl(
            handle(&vol),
            IOCTL_DISK_GET_LENGTH_INFO,
            std::ptr::null(),
            0,
            &mut partition as *mut i64 as *mut _,
            8,
            &mut returned,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "IOCTL_DISK_GET_LENGTH_INFO",
            volume,
            io::Error::last_os_error(),
        ));
    }
    let root = wide(format!("{volume}\\"));
    let mut total: u64 = 0;
    // SAFETY: `root` is NUL-terminated; only the total is asked for.
    let ok = unsafe {
        GetDiskFreeSpaceExW(
            root.as_ptr(),
            std::ptr::null_mut(),
            &mut total,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "GetDiskFreeSpaceEx",
            volume,
            io::Error::last_os_error(),
        ));
    }
    let Some(sectors) = crate::baselayer::extend_target_sectors(partition.max(0) as u64, total)
    else {
        return Ok(());
    };
    let sectors = sectors as i64;
    // SAFETY: the input buffer is the 8-byte sector count; no output.
    let ok = unsafe {
        DeviceIoControl(
            handle(&vol),
            FSCTL_EXTEND_VOLUME,
            &sectors as *const i64 as *const _,
            8,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(Error::io(
            "FSCTL_EXTEND_VOLUME",
            volume,
            io::Error::last_os_error(),
        ));
    }
    drop(disk);
    Ok(())
}

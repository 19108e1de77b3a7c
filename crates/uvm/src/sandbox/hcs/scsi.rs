//! How a container's layers reach a utility VM: each layer VHD and the scratch VHD is
//! attached to a SCSI slot of the VM (HCS `ModifySettingRequest` on
//! `VirtualMachine/Devices/Scsi/<controller>/Attachments/<lun>`) and mounted in the guest
//! (bridge `MappedVirtualDisk` at `/run/mounts/scsi/m<N>`); `CombinedLayers` then builds the
//! container's root file system from those mounts (ext4-uvm.md §5.6, the reference's
//! `internal/uvm/scsi` and `internal/layers/lcow.go`).
//!
//! [`ScsiDisks`] is the neutral bookkeeping: slot allocation, one attachment per host file
//! shared by the containers that use it (reference-counted, as the reference's SCSI
//! manager does), and the exact requests for each step. The sandbox only sends them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bridge::messages::{
    CombinedLayers, Layer, MappedVirtualDisk, ModifyRequestType, ModifySettingRequest,
    ResourceSettings, ScsiDevice,
};
use hcs_schema::v2::{resource_paths, Attachment, AttachmentType, RequestType};

use crate::error::{Error, Result};

/// The VMBus GUIDs of the SCSI controllers, by controller index (`ScsiControllerGuids`,
/// gcs-bridge-protocol.md §5).
pub const CONTROLLER_GUIDS: [&str; 4] = [
    "df6d0690-79e5-55b6-a5ec-c1e2f77f580a",
    "0110f83b-de10-5172-a266-78bca56bf50a",
    "b5d2d8d4-3a75-51bf-945b-3444dc6b8579",
    "305891a9-b251-5dfe-91a2-c25d9212275b",
];
/// LUNs per controller, fixed by Hyper-V.
pub const LUNS_PER_CONTROLLER: u32 = 64;
/// Where the guest mounts SCSI disks (`/run/mounts/scsi/m%d`).
pub const GUEST_MOUNT_PREFIX: &str = "/run/mounts/scsi/m";
/// The file a legacy LCOW layer folder holds.
pub const LAYER_VHD: &str = "layer.vhd";
/// The file the scratch folder holds.
pub const SCRATCH_VHDX: &str = "sandbox.vhdx";

/// A SCSI slot of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    /// Controller index (0..4).
    pub controller: u8,
    /// LUN (0..64).
    pub lun: u8,
}

/// A container's layers as host files: read-only layer VHDs, base first, and the writable
/// scratch VHD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFiles {
    /// Read-only layer VHDs, base first.
    pub layers: Vec<PathBuf>,
    /// The scratch VHD(X).
    pub scratch: PathBuf,
}

impl LayerFiles {
    /// Reads the sandbox's `layers` argument: base first, the scratch last. An entry that is
    /// a directory means its `layer.vhd` (or, for the scratch, its `sandbox.vhdx`), as in
    /// the legacy LCOW layer-folder layout; every path must be absolute.
    pub fn from_paths(paths: &[PathBuf]) -> Result<Self> {
        let Some((scratch, layers)) = paths.split_last() else {
            return Err(Error::InvalidArgument(
                "an HCS container needs its layer VHDs and a scratch VHD".into(),
            ));
        };
        if layers.is_empty() {
            return Err(Error::InvalidArgument(
                "an HCS container needs at least one layer VHD below its scratch".into(),
            ));
        }
        let resolve = |p: &Path, file: &str| -> Result<PathBuf> {
            if !p.is_absolute() {
                return Err(Error::InvalidArgument(format!(
                    "layer path {} is not absolute",
                    p.display()
                )));
            }
            Ok(if p.is_dir() {
                p.join(file)
            } else {
                p.to_path_buf()
            })
        };
        Ok(Self {
            layers: layers
                .iter()
                .map(|p| resolve(p, LAYER_VHD))
                .collect::<Result<_>>()?,
            scratch: resolve(scratch, SCRATCH_VHDX)?,
        })
    }
}

/// One disk to attach: the VM-access grant, the host request, the guest mount.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachStep {
    /// The host file.
    pub host_path: String,
    /// Its slot.
    pub slot: Slot,
    /// Where the guest mounts it.
    pub guest_path: String,
    /// `HcsModifyComputeSystem`: attach the VHD to the slot.
    pub host_request: hcs_schema::v2::ModifySettingRequest<Attachment>,
    /// Bridge ModifySettings: mount it in the guest.
    pub guest_request: ModifySettingRequest,
}

/// One disk to detach, in this order: unmount in the guest, unplug the device in the guest,
/// detach from the VM.
#[derive(Debug, Clone, PartialEq)]
pub struct DetachStep {
    /// The host file.
    pub host_path: String,
    /// Its slot.
    pub slot: Slot,
    /// Bridge ModifySettings: unmount.
    pub unmount: ModifySettingRequest,
    /// Bridge ModifySettings: remove the SCSI device from the guest kernel.
    pub unplug: ModifySettingRequest,
    /// `HcsModifyComputeSystem`: detach the slot.
    pub host_request: hcs_schema::v2::ModifySettingRequest<Attachment>,
}

/// What creating a container needs: the disks to attach (the ones no other container has
/// attached already), then the guest's `CombinedLayers`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddPlan {
    /// New attachments, in order (layers base first, then the scratch).
    pub attach: Vec<AttachStep>,
    /// The container's root file system from the mounts.
    pub combined_layers: CombinedLayers,
    /// The container's scratch directory in the guest (`<scratch mount>/scratch/<id>`).
    pub scratch_dir: String,
}

#[derive(Debug, Clone)]
struct Disk {
    host_path: String,
    slot: Slot,
    guest_path: String,
    read_only: bool,
    refs: u32,
}

/// The SCSI disks of one utility VM and the containers using them.
#[derive(Debug)]
pub struct ScsiDisks {
    controllers: u8,
    reserved: BTreeSet<Slot>,
    /// By host-path key (case-folded: Windows paths are case-insensitive).
    disks: HashMap<String, Disk>,
    /// Container id → the host-path keys it holds.
    containers: HashMap<String, Vec<String>>,
    next_mount: u64,
}

fn key(path: &str) -> String {
    path.replace('/', "\\").to_lowercase()
}

impl ScsiDisks {
    /// A VM with `controllers` SCSI controllers and `reserved` slots (the root VHD's).
    pub fn new(controllers: u32, reserved: &[Slot]) -> Self {
        Self {
            controllers: controllers.min(CONTROLLER_GUIDS.len() as u32) as u8,
            reserved: reserved.iter().copied().collect(),
            disks: HashMap::new(),
            containers: HashMap::new(),
            next_mount: 0,
        }
    }

    fn free_slot(&self, taken: &BTreeSet<Slot>) -> Option<Slot> {
        (0..self.controllers)
            .flat_map(|controller| {
                (0..LUNS_PER_CONTROLLER as u8).map(move |lun| Slot { controller, lun })
            })
            .find(|s| !self.reserved.contains(s) && !taken.contains(s))
    }

    /// Plans container `id` on `files`. The plan is recorded at once (slots and references
    /// are taken); call [`ScsiDisks::abandon`] if executing it fails.
    pub fn add(&mut self, id: &str, files: &LayerFiles) -> Result<AddPlan> {
        if self.containers.contains_key(id) {
            return Err(Error::AlreadyExists(id.to_owned()));
        }
        let mut wanted: Vec<(String, bool)> = files
            .layers
            .iter()
            .map(|p| (p.display().to_string(), true))
            .collect();
        wanted.push((files.scratch.display().to_string(), false));
        let mut seen = BTreeSet::new();
        for (path, read_only) in &wanted {
            if !seen.insert(key(path)) {
                return Err(Error::InvalidArgument(format!(
                    "{path} is listed twice among the container's layers"
                )));
            }
            if let Some(d) = self.disks.get(&key(path)) {
                if d.read_only != *read_only {
                    return Err(Error::InvalidArgument(format!(
                        "{path} is attached {} already and cannot be used {} by container {id}",
                        if d.read_only { "read-only" } else { "writable" },
                        if *read_only { "read-only" } else { "writable" },
                    )));
                }
            }
        }
        let mut taken: BTreeSet<Slot> = self.disks.values().map(|d| d.slot).collect();
        let mut new_disks = Vec::new();
        let mut keys = Vec::new();
        let mut mounts = Vec::new();
        let mut next_mount = self.next_mount;
        for (path, read_only) in &wanted {
            let k = key(path);
            let guest_path = match self.disks.get(&k) {
                Some(d) => d.guest_path.clone(),
                None => {
                    let slot = self.free_slot(&taken).ok_or_else(|| {
                        Error::Sandbox(format!(
                            "no free SCSI slot for {path}: all {} LUNs of {} controller(s) are in use",
                            LUNS_PER_CONTROLLER, self.controllers
                        ))
                    })?;
                    taken.insert(slot);
                    let guest_path = format!("{GUEST_MOUNT_PREFIX}{next_mount}");
                    next_mount += 1;
                    new_disks.push(Disk {
                        host_path: path.clone(),
                        slot,
                        guest_path: guest_path.clone(),
                        read_only: *read_only,
                        refs: 0,
                    });
                    guest_path
                }
            };
            keys.push(k);
            mounts.push(guest_path);
        }
        let attach = new_disks.iter().map(attach_step).collect();
        for d in new_disks {
            self.disks.insert(key(&d.host_path), d);
        }
        for k in &keys {
            if let Some(d) = self.disks.get_mut(k) {
                d.refs += 1;
            }
        }
        self.next_mount = next_mount;
        self.containers.insert(id.to_owned(), keys);
        let scratch_mount = mounts.pop().unwrap_or_default();
        let scratch_dir = format!("{scratch_mount}/scratch/{id}");
        Ok(AddPlan {
            attach,
            combined_layers: CombinedLayers {
                container_id: id.to_owned(),
                container_root_path: format!("/run/gcs/c/{id}/rootfs"),
                layers: mounts
                    .into_iter()
                    .map(|path| Layer {
                        path,
                        ..Default::default()
                    })
                    .collect(),
                scratch_path: scratch_dir.clone(),
            },
            scratch_dir,
        })
    }

    /// Releases container `id`'s references; returns the disks no container uses any more,
    /// to detach (last attached first). Unknown ids release nothing.
    pub fn release(&mut self, id: &str) -> Vec<DetachStep> {
        let Some(keys) = self.containers.remove(id) else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        for k in keys.iter().rev() {
            let last = match self.disks.get_mut(k) {
                Some(d) => {
                    d.refs = d.refs.saturating_sub(1);
                    d.refs == 0
                }
                None => false,
            };
            if last {
                if let Some(d) = self.disks.remove(k) {
                    gone.push(detach_step(&d));
                }
            }
        }
        gone
    }

    /// Undoes [`ScsiDisks::add`] for a container whose creation failed: the same as
    /// [`ScsiDisks::release`] (the caller detaches what was attached).
    pub fn abandon(&mut self, id: &str) -> Vec<DetachStep> {
        self.release(id)
    }

    /// The attached disks (for teardown and tests): host path and slot.
    pub fn attached(&self) -> Vec<(String, Slot)> {
        let mut v: Vec<_> = self
            .disks
            .values()
            .map(|d| (d.host_path.clone(), d.slot))
            .collect();
        v.sort_by_key(|(_, s)| *s);
        v
    }
}

fn host_path_of(slot: Slot) -> String {
    resource_paths::scsi_attachment(
        CONTROLLER_GUIDS[usize::from(slot.controller)],
        u32::from(slot.lun),
    )
}

fn attach_step(d: &Disk) -> AttachStep {
    let host_request = hcs_schema::v2::ModifySettingRequest::host(
        RequestType::Add,
        host_path_of(d.slot),
        Attachment {
            attachment_type: AttachmentType::VirtualDisk,
            path: d.host_path.clone(),
            read_only: d.read_only,
            ..Default::default()
        },
    );
    // Layers mount read-only with `ro` (the reference's LCOW layer mount); the scratch is
    // formatted ext4 when it has no file system yet.
    let settings = if d.read_only {
        MappedVirtualDisk {
            mount_path: d.guest_path.clone(),
            controller: d.slot.controller,
            lun: d.slot.lun,
            read_only: true,
            options: vec!["ro".into()],
            ..Default::default()
        }
    } else {
        MappedVirtualDisk {
            mount_path: d.guest_path.clone(),
            controller: d.slot.controller,
            lun: d.slot.lun,
            ensure_filesystem: true,
            filesystem: "ext4".into(),
            ..Default::default()
        }
    };
    AttachStep {
        host_path: d.host_path.clone(),
        slot: d.slot,
        guest_path: d.guest_path.clone(),
        host_request,
        guest_request: ModifySettingRequest::new(
            ModifyRequestType::Add,
            ResourceSettings::MappedVirtualDisk(settings),
        ),
    }
}

fn detach_step(d: &Disk) -> DetachStep {
    DetachStep {
        host_path: d.host_path.clone(),
        slot: d.slot,
        unmount: ModifySettingRequest::new(
            ModifyRequestType::Remove,
            ResourceSettings::MappedVirtualDisk(MappedVirtualDisk {
                mount_path: d.guest_path.clone(),
                controller: d.slot.controller,
                lun: d.slot.lun,
                read_only: d.read_only,
                ..Default::default()
            }),
        ),
        unplug: ModifySettingRequest::new(
            ModifyRequestType::Remove,
            ResourceSettings::ScsiDevice(ScsiDevice {
                controller: d.slot.controller,
                lun: d.slot.lun,
            }),
        ),
        host_request: hcs_schema::v2::ModifySettingRequest {
            resource_path: host_path_of(d.slot),
            request_type: RequestType::Remove,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests;

//! Container storage: layers, scratch, mapped directories and pipes, combined layers and
//! mapped virtual disks sent to a guest, CIM mounts.

use crate::macros::{omitempty_struct, string_enum};

omitempty_struct! {
    /// Storage of a container.
    pub struct Storage {
        /// Parent layers, topmost first.
        "Layers" layers: Vec<Layer>,
        /// Scratch (sandbox) path where the layers are combined.
        "Path" path: String,
        /// Storage QoS.
        "QoS" qos: Option<StorageQoS>,
        /// Container root path (HostProcess containers, whose rootfs is not `C:\`).
        "ContainerRootPath" container_root_path: String,
    }
}

omitempty_struct! {
    /// Storage quality of service of a volume.
    #[derive(Eq)]
    pub struct StorageQoS {
        /// Maximum IOPS.
        "IopsMaximum" iops_maximum: u64,
        /// Maximum bandwidth in bytes per second.
        "BandwidthMaximum" bandwidth_maximum: u64,
    }
}

string_enum! {
    /// How a path is interpreted.
    pub enum PathType {
        /// An absolute host path.
        AbsolutePath = "AbsolutePath",
        /// A path relative to the virtual SMB share.
        VirtualSmbShareName = "VirtualSmbShareName",
    }
}

string_enum! {
    /// Caching of a layer.
    pub enum CacheMode {
        /// Caching disabled.
        Disabled = "Disabled",
        /// Caching enabled (the default when unset).
        Enabled = "Enabled",
        /// Private cache.
        Private = "Private",
        /// Private cache that may be shared.
        PrivateAllowSharing = "PrivateAllowSharing",
    }
}

string_enum! {
    /// Filesystem filter combining WCOW layers.
    pub enum FileSystemFilterType {
        /// The union filesystem filter.
        UnionFs = "UnionFS",
        /// The Windows container isolation filter.
        Wcifs = "WCIFS",
    }
}

omitempty_struct! {
    /// One layer of a container's parent hierarchy. `Cache` unset means enabled.
    pub struct Layer {
        /// Layer GUID.
        "Id" id: String,
        /// Root path of the layer.
        "Path" path: String,
        /// How `Path` is interpreted.
        "PathType" path_type: Option<PathType>,
        /// Caching mode.
        "Cache" cache: Option<CacheMode>,
    }
}

omitempty_struct! {
    /// A host directory mapped into a compute system.
    pub struct MappedDirectory {
        /// Host path.
        "HostPath" host_path: String,
        /// How `HostPath` is interpreted.
        "HostPathType" host_path_type: Option<PathType>,
        /// Path in the guest.
        "ContainerPath" container_path: String,
        /// Read-only mapping.
        "ReadOnly" read_only: bool,
    }
}

string_enum! {
    /// How a mapped pipe's host path is interpreted.
    pub enum MappedPipePathType {
        /// An absolute host pipe path.
        AbsolutePath = "AbsolutePath",
        /// A pipe of the virtual SMB share.
        VirtualSmbPipeName = "VirtualSmbPipeName",
    }
}

omitempty_struct! {
    /// A host named pipe mapped into a compute system.
    pub struct MappedPipe {
        /// Pipe name in the guest.
        "ContainerPipeName" container_pipe_name: String,
        /// Host pipe path.
        "HostPath" host_path: String,
        /// How `HostPath` is interpreted.
        "HostPathType" host_path_type: Option<MappedPipePathType>,
    }
}

omitempty_struct! {
    /// Combined layers sent to a guest: WCOW applies a filter at `ContainerRootPath` over the
    /// layers; LCOW unions the layers and `ScratchPath` at `ContainerRootPath`.
    pub struct CombinedLayers {
        /// Layers to combine.
        "Layers" layers: Vec<Layer>,
        /// Scratch path (ignored by WCOW).
        "ScratchPath" scratch_path: String,
        /// Where the combined view is placed.
        "ContainerRootPath" container_root_path: String,
    }
}

omitempty_struct! {
    /// A SCSI disk mounted in a Windows guest by LUN.
    #[derive(Eq)]
    pub struct MappedVirtualDisk {
        /// Mount path in the guest.
        "ContainerPath" container_path: String,
        /// LUN on the controller.
        "Lun" lun: u8,
    }
}

omitempty_struct! {
    /// A CIM image mount.
    #[derive(Eq)]
    pub struct CimMount {
        /// Path of the CIM image.
        "ImagePath" image_path: String,
        /// Filesystem name inside the image.
        "FileSystemName" file_system_name: String,
        /// Volume GUID to mount as.
        "VolumeGuid" volume_guid: String,
        /// `CimMountFlags` bits.
        "MountFlags" mount_flags: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn layer_keys_and_enum_values() {
        let l = Layer {
            id: "id".into(),
            path: "/run/layers/p0".into(),
            path_type: Some(PathType::AbsolutePath),
            cache: Some(CacheMode::Disabled),
        };
        assert_eq!(
            json::to_string(&l).unwrap(),
            r#"{"Id":"id","Path":"/run/layers/p0","PathType":"AbsolutePath","Cache":"Disabled"}"#
        );
        assert_eq!(json::to_string(&Layer::default()).unwrap(), "{}");
        assert_eq!(FileSystemFilterType::UnionFs.as_str(), "UnionFS");
        assert_eq!(
            FileSystemFilterType::from("WCIFS"),
            FileSystemFilterType::Wcifs
        );
    }

    #[test]
    fn combined_layers_round_trip() {
        let doc = concat!(
            r#"{"Layers":[{"Path":"/run/layers/p0"},{"Path":"/run/mounts/scsi/m1"}],"#,
            r#""ScratchPath":"/run/gcs/c/x/scratch","ContainerRootPath":"/run/gcs/c/x/rootfs"}"#
        );
        let c: CombinedLayers = json::from_str(doc).unwrap();
        assert_eq!(c.layers.len(), 2);
        assert_eq!(json::to_string(&c).unwrap(), doc);
    }

    #[test]
    fn mapped_directory_and_pipe() {
        let d = MappedDirectory {
            host_path: r"C:\data".into(),
            container_path: r"C:\data".into(),
            read_only: true,
            ..Default::default()
        };
        assert_eq!(
            json::to_string(&d).unwrap(),
            r#"{"HostPath":"C:\\data","ContainerPath":"C:\\data","ReadOnly":true}"#
        );
        let p: MappedPipe =
            json::from_str(r#"{"containerpipename":"p","HostPath":"\\\\.\\pipe\\p"}"#).unwrap();
        assert_eq!(p.container_pipe_name, "p");
        assert_eq!(
            json::to_string(&p).unwrap(),
            r#"{"ContainerPipeName":"p","HostPath":"\\\\.\\pipe\\p"}"#
        );
    }

    #[test]
    fn mapped_virtual_disk_lun_zero_is_omitted() {
        let d = MappedVirtualDisk {
            container_path: r"C:\d".into(),
            lun: 0,
        };
        assert_eq!(json::to_string(&d).unwrap(), r#"{"ContainerPath":"C:\\d"}"#);
        assert!(json::from_str::<MappedVirtualDisk>(r#"{"Lun":256}"#).is_err());
    }
}

//! Device-namespace models of `Container.AdditionalDeviceNamespace`. Unlike the rest of
//! schema2 their keys are snake_case or lowercase.

use serde_json::Value;

use crate::macros::omitempty_struct;

omitempty_struct! {
    /// Additional device namespace of a container.
    pub struct ContainerDefinitionDevice {
        /// Device extensions.
        "device_extension" device_extension: Vec<DeviceExtension>,
    }
}

omitempty_struct! {
    /// A device extension: a category of devices and the namespace they appear in.
    pub struct DeviceExtension {
        /// Device category.
        "device_category" device_category: Option<DeviceCategory>,
        /// Namespace settings.
        "namespace" namespace: Option<Namespace>,
    }
}

omitempty_struct! {
    /// A named device category.
    pub struct DeviceCategory {
        /// Category name.
        "name" name: String,
        /// Interface classes in the category.
        "interface_class" interface_class: Vec<InterfaceClass>,
    }
}

omitempty_struct! {
    /// A device interface class.
    pub struct InterfaceClass {
        /// Class type.
        "type" class_type: Option<String>,
        /// Class GUID.
        "identifier" identifier: String,
        /// Include child classes.
        "recurse" recurse: bool,
    }
}

omitempty_struct! {
    /// Silo namespaces. Only the object-manager and device namespaces are modelled; the
    /// others pass through as raw JSON.
    pub struct Namespace {
        /// Job namespace.
        "job" job: Option<Value>,
        /// Filesystem namespace.
        "filesystem" filesystem: Option<Value>,
        /// Mount manager namespace.
        "mountmgr" mountmgr: Option<Value>,
        /// Named pipe namespace.
        "namedpipe" namedpipe: Option<Value>,
        /// Object manager namespace.
        "ob" ob: Option<ObjectNamespace>,
        /// Registry namespace.
        "registry" registry: Option<Value>,
        /// Network namespace.
        "network" network: Option<Value>,
        /// Device namespace.
        "device" device: Option<DeviceNamespace>,
        /// Host files.
        "hostfiles" hostfiles: Option<Value>,
    }
}

omitempty_struct! {
    /// Devices visible in a silo.
    pub struct DeviceNamespace {
        /// Requires the driver store.
        "requires_driverstore" requires_driverstore: bool,
        /// Categories.
        "device_category" device_category: Vec<DeviceCategory>,
        /// Instances.
        "device_instance" device_instance: Vec<DeviceInstance>,
    }
}

omitempty_struct! {
    /// One device instance.
    pub struct DeviceInstance {
        /// Instance id.
        "id" id: String,
        /// Location path.
        "location_path" location_path: String,
        /// Port name.
        "port_name" port_name: String,
        /// Interface classes.
        "interface_class" interface_class: Vec<InterfaceClass>,
    }
}

omitempty_struct! {
    /// Object manager namespace of a silo.
    pub struct ObjectNamespace {
        /// Shadow mode.
        "shadow" shadow: Option<String>,
        /// Symbolic links.
        "symlink" symlink: Vec<ObjectSymlink>,
        /// Directories.
        "objdir" objdir: Vec<ObjectDirectory>,
    }
}

omitempty_struct! {
    /// An object manager directory.
    pub struct ObjectDirectory {
        /// Name.
        "name" name: String,
        /// Security descriptor to clone.
        "clonesd" clonesd: String,
        /// Shadow mode.
        "shadow" shadow: Option<String>,
        /// Symbolic links.
        "symlink" symlink: Vec<ObjectSymlink>,
        /// Subdirectories.
        "objdir" objdir: Vec<ObjectDirectory>,
    }
}

omitempty_struct! {
    /// An object manager symbolic link.
    #[derive(Eq)]
    pub struct ObjectSymlink {
        /// Link name.
        "name" name: String,
        /// Target path.
        "path" path: String,
        /// Scope.
        "scope" scope: Option<String>,
        /// Path to clone.
        "pathtoclone" pathtoclone: String,
        /// Access mask.
        "access_mask" access_mask: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn snake_case_keys_round_trip() {
        let doc = concat!(
            r#"{"device_extension":[{"device_category":{"name":"gpu","interface_class":[{"type":"ClassGuid","#,
            r#""identifier":"1ca05180-a699-450a-9a0c-de4fbe3ddd89","recurse":true}]},"#,
            r#""namespace":{"ob":{"symlink":[{"name":"a","path":"\\b","access_mask":1}]},"#,
            r#""device":{"requires_driverstore":true,"device_instance":[{"id":"x","location_path":"p"}]}}}]}"#
        );
        let d: ContainerDefinitionDevice = json::from_str(doc).unwrap();
        let ns = d.device_extension[0].namespace.as_ref().unwrap();
        assert!(ns.device.as_ref().unwrap().requires_driverstore);
        assert_eq!(json::to_string(&d).unwrap(), doc);
    }
}

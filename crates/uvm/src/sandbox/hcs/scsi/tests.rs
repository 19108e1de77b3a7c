//! The attach plan: slots, shared disks, and the exact requests (host JSON in Go's field
//! order, guest JSON as the bridge sends it).

use super::*;

fn files(layers: &[&str], scratch: &str) -> LayerFiles {
    LayerFiles {
        layers: layers.iter().map(PathBuf::from).collect(),
        scratch: PathBuf::from(scratch),
    }
}

fn guest_json(r: &ModifySettingRequest) -> String {
    serde_json::to_string(r).unwrap()
}

#[test]
fn a_container_attaches_its_layers_then_its_scratch() {
    let mut disks = ScsiDisks::new(1, &[]);
    let plan = disks
        .add(
            "c1",
            &files(
                &[r"C:\l\base\layer.vhd", r"C:\l\top\layer.vhd"],
                r"C:\s\c1\sandbox.vhdx",
            ),
        )
        .unwrap();
    let slots: Vec<(u8, u8, &str)> = plan
        .attach
        .iter()
        .map(|s| (s.slot.controller, s.slot.lun, s.guest_path.as_str()))
        .collect();
    assert_eq!(
        slots,
        [
            (0, 0, "/run/mounts/scsi/m0"),
            (0, 1, "/run/mounts/scsi/m1"),
            (0, 2, "/run/mounts/scsi/m2")
        ]
    );
    assert_eq!(
        hcs_schema::json::to_string(&plan.attach[1].host_request).unwrap(),
        concat!(
            r#"{"ResourcePath":"VirtualMachine/Devices/Scsi/df6d0690-79e5-55b6-a5ec-c1e2f77f580a/Attachments/1","#,
            r#""RequestType":"Add","Settings":{"Type":"VirtualDisk","Path":"C:\\l\\top\\layer.vhd","ReadOnly":true}}"#
        )
    );
    assert_eq!(
        hcs_schema::json::to_string(&plan.attach[2].host_request).unwrap(),
        concat!(
            r#"{"ResourcePath":"VirtualMachine/Devices/Scsi/df6d0690-79e5-55b6-a5ec-c1e2f77f580a/Attachments/2","#,
            r#""RequestType":"Add","Settings":{"Type":"VirtualDisk","Path":"C:\\s\\c1\\sandbox.vhdx"}}"#
        )
    );
    assert_eq!(
        guest_json(&plan.attach[1].guest_request),
        concat!(
            r#"{"RequestType":"Add","ResourceType":"MappedVirtualDisk","Settings":"#,
            r#"{"MountPath":"/run/mounts/scsi/m1","Lun":1,"ReadOnly":true,"Options":["ro"]}}"#
        )
    );
    assert_eq!(
        guest_json(&plan.attach[2].guest_request),
        concat!(
            r#"{"RequestType":"Add","ResourceType":"MappedVirtualDisk","Settings":"#,
            r#"{"MountPath":"/run/mounts/scsi/m2","Lun":2,"EnsureFilesystem":true,"Filesystem":"ext4"}}"#
        )
    );
    assert_eq!(plan.scratch_dir, "/run/mounts/scsi/m2/scratch/c1");
    assert_eq!(
        guest_json(&ModifySettingRequest::new(
            ModifyRequestType::Add,
            ResourceSettings::CombinedLayers(plan.combined_layers.clone())
        )),
        concat!(
            r#"{"RequestType":"Add","ResourceType":"CombinedLayers","Settings":{"ContainerID":"c1","#,
            r#""ContainerRootPath":"/run/gcs/c/c1/rootfs","#,
            r#""Layers":[{"Path":"/run/mounts/scsi/m0"},{"Path":"/run/mounts/scsi/m1"}],"#,
            r#""ScratchPath":"/run/mounts/scsi/m2/scratch/c1"}}"#
        )
    );
}

#[test]
fn shared_layers_attach_once_and_detach_with_their_last_user() {
    let mut disks = ScsiDisks::new(1, &[]);
    let a = disks
        .add("a", &files(&[r"C:\l\base.vhd"], r"C:\s\a.vhdx"))
        .unwrap();
    assert_eq!(a.attach.len(), 2);
    // Same base (another spelling of the same Windows path), own scratch.
    let b = disks
        .add("b", &files(&[r"c:/L/BASE.vhd"], r"C:\s\b.vhdx"))
        .unwrap();
    assert_eq!(b.attach.len(), 1, "only b's scratch is new");
    assert_eq!(
        b.attach[0].slot,
        Slot {
            controller: 0,
            lun: 2
        }
    );
    assert_eq!(b.combined_layers.layers[0].path, "/run/mounts/scsi/m0");
    assert_eq!(b.scratch_dir, "/run/mounts/scsi/m2/scratch/b");

    let gone: Vec<String> = disks
        .release("a")
        .into_iter()
        .map(|d| d.host_path)
        .collect();
    assert_eq!(gone, [r"C:\s\a.vhdx"], "the base stays for b");
    let gone = disks.release("b");
    let paths: Vec<&str> = gone.iter().map(|d| d.host_path.as_str()).collect();
    assert_eq!(
        paths,
        [r"C:\s\b.vhdx", r"C:\l\base.vhd"],
        "last attached first"
    );
    assert!(disks.attached().is_empty());
    assert!(
        disks.release("b").is_empty(),
        "a second release does nothing"
    );

    // The detach requests of the base: unmount, unplug, detach.
    let base = &gone[1];
    assert_eq!(
        guest_json(&base.unmount),
        concat!(
            r#"{"RequestType":"Remove","ResourceType":"MappedVirtualDisk","Settings":"#,
            r#"{"MountPath":"/run/mounts/scsi/m0","ReadOnly":true}}"#
        )
    );
    assert_eq!(
        guest_json(&base.unplug),
        r#"{"RequestType":"Remove","ResourceType":"SCSIDevice","Settings":{}}"#
    );
    assert_eq!(
        hcs_schema::json::to_string(&base.host_request).unwrap(),
        concat!(
            r#"{"ResourcePath":"VirtualMachine/Devices/Scsi/df6d0690-79e5-55b6-a5ec-c1e2f77f580a/Attachments/0","#,
            r#""RequestType":"Remove"}"#
        )
    );
}

#[test]
fn slots_skip_reserved_ones_and_run_out_cleanly() {
    let root = Slot {
        controller: 0,
        lun: 0,
    };
    let mut disks = ScsiDisks::new(1, &[root]);
    let plan = disks
        .add("c", &files(&[r"C:\l0.vhd"], r"C:\s.vhdx"))
        .unwrap();
    assert_eq!(
        plan.attach[0].slot,
        Slot {
            controller: 0,
            lun: 1
        }
    );
    assert_eq!(plan.attach[0].guest_path, "/run/mounts/scsi/m0");

    let mut disks = ScsiDisks::new(2, &[]);
    let many: Vec<String> = (0..127).map(|i| format!(r"C:\l\{i}.vhd")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let plan = disks.add("big", &files(&many, r"C:\s.vhdx")).unwrap();
    assert_eq!(
        plan.attach[64].slot,
        Slot {
            controller: 1,
            lun: 0
        }
    );
    assert_eq!(
        plan.attach[127].slot,
        Slot {
            controller: 1,
            lun: 63
        }
    );
    let err = disks
        .add("more", &files(&[r"C:\x.vhd"], r"C:\y.vhdx"))
        .unwrap_err();
    assert!(err.to_string().contains("no free SCSI slot"), "{err}");
    assert_eq!(disks.attached().len(), 128, "a failed plan takes nothing");
}

#[test]
fn conflicting_uses_are_refused() {
    let mut disks = ScsiDisks::new(1, &[]);
    disks
        .add("a", &files(&[r"C:\l.vhd"], r"C:\s.vhdx"))
        .unwrap();
    let err = disks
        .add("b", &files(&[r"C:\s.vhdx"], r"C:\t.vhdx"))
        .unwrap_err();
    assert!(err.to_string().contains("writable"), "{err}");
    let err = disks
        .add("c", &files(&[r"C:\l.vhd"], r"C:\l.vhd"))
        .unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    assert!(matches!(
        disks.add("a", &files(&[r"C:\l.vhd"], r"C:\u.vhdx")),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(disks.attached().len(), 2);
    let undone = disks.abandon("a");
    assert_eq!(undone.len(), 2);
}

#[test]
fn layer_folders_resolve_to_their_vhds() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&base).unwrap();
    std::fs::create_dir(&scratch).unwrap();
    let file = dir.path().join("top.vhd");
    let f = LayerFiles::from_paths(&[base.clone(), file.clone(), scratch.clone()]).unwrap();
    assert_eq!(f.layers, [base.join("layer.vhd"), file]);
    assert_eq!(f.scratch, scratch.join("sandbox.vhdx"));
    assert!(LayerFiles::from_paths(&[]).is_err());
    assert!(LayerFiles::from_paths(std::slice::from_ref(&scratch)).is_err());
    let err = LayerFiles::from_paths(&[PathBuf::from("rel.vhd"), scratch]).unwrap_err();
    assert!(err.to_string().contains("not absolute"), "{err}");
}

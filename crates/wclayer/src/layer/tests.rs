//! The layer readers and writers against the vmcompute fake (whole-folder exports and base
//! layer preparation), the streaming exports fake, and the rules of the transport format.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hcs::fake_vmcompute::FakeVmcompute;

use super::filter::fake::FakeStreaming;
use super::*;
use crate::fileinfo::{FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_DIRECTORY};
use crate::layout::LayerPath;
use crate::oci::{export_layer_to_tar, import_layer_from_tar};
use crate::testutil::*;

fn vmcompute_layers(fake: &Arc<FakeVmcompute>, streaming: Option<Arc<FakeStreaming>>) -> Layers {
    let streaming = streaming.map(|s| s as Arc<dyn filter::StreamingExports>);
    Layers {
        fs: crate::fs::host(),
        store: Arc::new(VmcomputeStore::new(fake.clone(), streaming)),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn streaming_exports_carry_a_layer_both_ways() {
    let d = tempfile::tempdir().unwrap();
    let fake = FakeVmcompute::new();
    let streaming = Arc::new(FakeStreaming::default());
    let layers = vmcompute_layers(&fake, Some(streaming.clone()));
    let path = d.path().join("layer");
    let parents = vec![d.path().join("base")];
    let input = walk_sorted(vec![
        dir("Files"),
        dir("Files/Windows"),
        whiteout("Files/Windows/gone.txt"),
        file("Files/Windows/a.txt", b"streamed"),
        ads("Files/Windows/a.txt", "s", b"ads"),
        file_with_ea("Files/Windows/ea", b"", "N", b"v"),
    ]);
    import_layer_from_tar(&layers, &build_tar(&input)[..], &path, &parents).unwrap();
    let stored = streaming.layer(s(&path)).unwrap();
    let names: Vec<&str> = stored.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            r"\Files",
            r"\Files\Windows",
            r"\Files\Windows\gone.txt",
            r"\Files\Windows\a.txt",
            r"\Files\Windows\ea"
        ]
    );
    assert!(stored[2].info.is_none(), "a tombstone");
    // The parent descriptor came from NameToGuid of its base name.
    assert_eq!(fake.calls_of("NameToGuid")[0].arg, "base");

    // Export: the streaming reader cannot rewind, so entries are spooled.
    fake.add_layer(s(&path));
    let out = export_layer_to_tar(&layers, Vec::new(), &path, &parents).unwrap();
    let mut got = read_tar(&out);
    got.sort();
    let mut want = input.clone();
    want.sort();
    assert_eq!(got, want);
    let calls = streaming.calls();
    assert_eq!(calls.first().map(String::as_str), Some("ImportLayerBegin"));
    assert!(calls.contains(&"ImportLayerEnd".to_string()));
    assert_eq!(calls.last().map(String::as_str), Some("ExportLayerEnd"));
    assert_eq!(
        fake.exports(),
        [
            "NameToGuid",
            "ActivateLayer",
            "NameToGuid",
            "PrepareLayer",
            "UnprepareLayer",
            "NameToGuid",
            "DeactivateLayer"
        ]
    );

    // Hard links cannot go through the streaming import.
    let mut w = layers.new_layer_writer(&path, &parents).unwrap();
    assert!(matches!(
        w.add_link(r"Files\x", r"Files\y").unwrap_err(),
        crate::Error::Unsupported(_)
    ));
    // A failing export call surfaces with its operation.
    streaming.fail("ExportLayerNext");
    let err = export_layer_to_tar(&layers, Vec::new(), &path, &parents).unwrap_err();
    assert!(err.to_string().contains("ExportLayerNext"), "{err}");
}

/// A store that records the transport folder it is asked to import, then imports it.
struct Snapshot {
    inner: VmcomputeStore,
    seen: Mutex<Vec<(String, Vec<u8>)>>,
    folder: Mutex<Option<PathBuf>>,
}

impl LayerStore for Snapshot {
    fn name(&self) -> &'static str {
        "snapshot"
    }
    fn export_layer(&self, l: &Path, f: &Path, p: &[PathBuf]) -> crate::Result<()> {
        self.inner.export_layer(l, f, p)
    }
    fn import_layer(&self, l: &Path, f: &Path, p: &[PathBuf]) -> crate::Result<()> {
        for name in tree(f) {
            let full = f.join(&name);
            let bytes = if full.is_file() {
                std::fs::read(&full).unwrap()
            } else {
                Vec::new()
            };
            self.seen.lock().unwrap().push((name, bytes));
        }
        *self.folder.lock().unwrap() = Some(f.to_path_buf());
        self.inner.import_layer(l, f, p)?;
        // The fake imports nothing: build the layer as the folder store would, so the rest
        // of the writer's work (times, tombstones) has files to act on.
        legacy::folder::import_transport(crate::fs::host().as_ref(), l, f)
    }
    fn apply_tombstones(
        &self,
        fs: &dyn crate::fs::LayerFs,
        l: &Path,
        n: &[LayerPath],
    ) -> crate::Result<()> {
        self.inner.apply_tombstones(fs, l, n)
    }
    fn prepares_images(&self) -> bool {
        self.inner.prepares_images()
    }
    fn process_base_layer(&self, l: &Path) -> crate::Result<()> {
        self.inner.process_base_layer(l)
    }
    fn process_utility_vm_image(&self, u: &Path) -> crate::Result<()> {
        self.inner.process_utility_vm_image(u)
    }
    fn begin_export(&self, l: &Path, p: &[PathBuf]) -> crate::Result<()> {
        self.inner.begin_export(l, p)
    }
    fn end_export(&self, l: &Path) -> crate::Result<()> {
        self.inner.end_export(l)
    }
    fn streaming(&self) -> Option<Arc<dyn filter::StreamingExports>> {
        None
    }
    fn descriptors(&self, p: &[PathBuf]) -> crate::Result<Vec<hcs::vmcompute::LayerDescriptor>> {
        self.inner.descriptors(p)
    }
    fn temp_dir(&self, l: &Path) -> crate::Result<tempfile::TempDir> {
        FolderStore::new(crate::fs::host()).temp_dir(l)
    }
}

#[test]
fn the_legacy_import_hands_vmcompute_the_transport_format() {
    let d = tempfile::tempdir().unwrap();
    let fake = FakeVmcompute::new();
    let store = Arc::new(Snapshot {
        inner: VmcomputeStore::new(fake.clone(), None),
        seen: Mutex::new(Vec::new()),
        folder: Mutex::new(None),
    });
    let layers = Layers {
        fs: crate::fs::host(),
        store: store.clone(),
    };
    let path = d.path().join("layer");
    let parents = vec![d.path().join("base")];
    let tar = build_tar(&walk_sorted(vec![
        dir("Files"),
        dir("Files/Windows"),
        whiteout("Files/Windows/a.txt"),
        file("Files/Windows/new.txt", b"new file"),
        dir("Hives"),
        file("Hives/System_Delta", b"system hive"),
    ]));
    import_layer_from_tar(&layers, &tar[..], &path, &parents).unwrap();

    let seen = store.seen.lock().unwrap().clone();
    let mut names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Files",
            "Files.$wcidirs$",
            "Files/Windows",
            "Files/Windows.$wcidirs$",
            "Files/Windows/new.txt",
            "Hives",
            "Hives.$wcidirs$",
            "Hives/System_Delta"
        ]
    );
    let get = |n: &str| &seen.iter().find(|(x, _)| x == n).unwrap().1;
    // A Files transport file: attributes, then the backup stream.
    let t = get("Files/Windows/new.txt");
    assert_eq!(&t[..4], &FILE_ATTRIBUTE_ARCHIVE.to_le_bytes());
    let mut br = crate::backup::BackupStreamReader::new(&t[4..]);
    let h = br.next_header().unwrap().unwrap();
    assert_eq!(h.id, crate::backup::BACKUP_SECURITY_DATA);
    let h = br.next_header().unwrap().unwrap();
    assert_eq!((h.id, h.size), (crate::backup::BACKUP_DATA, 8));
    let mut data = String::new();
    br.read_to_string(&mut data).unwrap();
    assert_eq!(data, "new file");
    assert_eq!(
        &get("Files/Windows.$wcidirs$")[..4],
        &FILE_ATTRIBUTE_DIRECTORY.to_le_bytes()
    );
    // Hives are real files.
    assert_eq!(get("Hives/System_Delta"), b"system hive");

    let folder = store.folder.lock().unwrap().clone().unwrap();
    let import = &fake.calls_of("ImportLayer")[0].arg;
    let base_guid = crate::guid::name_to_guid_with(fake.as_ref(), "base").unwrap();
    assert_eq!(
        import,
        &format!(
            "{} {} [{}@{base_guid}]",
            s(&path),
            s(&folder),
            s(&parents[0])
        )
    );
    assert!(!folder.exists(), "the transport folder is removed");
}

#[test]
fn base_layers_are_prepared_and_exports_mount_the_layer() {
    let d = tempfile::tempdir().unwrap();
    let fake = FakeVmcompute::new();
    let layers = vmcompute_layers(&fake, None);
    let path = d.path().join("base");
    let input = walk_sorted(vec![
        dir("Files"),
        file("Files/x", b"x"),
        dir("UtilityVM"),
        dir("UtilityVM/Files"),
        file("UtilityVM/Files/y", b"y"),
    ]);
    import_layer_from_tar(&layers, &build_tar(&input)[..], &path, &[]).unwrap();
    assert_eq!(fake.calls_of("ProcessBaseImage")[0].arg, s(&path));
    assert_eq!(
        fake.calls_of("ProcessUtilityImage")[0].arg,
        s(&path.join("UtilityVM"))
    );

    fake.add_layer(s(&path));
    let out = export_layer_to_tar(&layers, Vec::new(), &path, &[]).unwrap();
    assert_eq!(read_tar(&out), input);
    let mounts: Vec<&str> = fake
        .exports()
        .into_iter()
        .filter(|e| e.contains("Layer"))
        .collect();
    assert_eq!(
        mounts,
        [
            "ActivateLayer",
            "PrepareLayer",
            "UnprepareLayer",
            "DeactivateLayer"
        ]
    );

    // A failing ProcessBaseImage fails the import, naming the path.
    let other = d.path().join("other");
    fake.fail_next("ProcessBaseImage", 0x8007_0005_u32 as i32);
    let err = import_layer_from_tar(&layers, &build_tar(&input)[..], &other, &[]).unwrap_err();
    assert!(err.to_string().contains(s(&other)), "{err}");
    assert!(!other.exists());
}

fn legacy_writer(d: &Path) -> (Box<dyn LayerWriter>, PathBuf) {
    let layers = folder_layers();
    let base = d.join("base");
    std::fs::create_dir(&base).unwrap();
    let path = d.join("layer");
    std::fs::create_dir(&path).unwrap();
    (layers.new_layer_writer(&path, &[base]).unwrap(), path)
}

fn dir_info() -> crate::FileBasicInfo {
    crate::FileBasicInfo {
        file_attributes: FILE_ATTRIBUTE_DIRECTORY,
        ..Default::default()
    }
}

#[test]
fn the_transport_writer_refuses_what_the_format_cannot_hold() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = legacy_writer(d.path());
    w.add("Files", &dir_info()).unwrap();
    let err = w.add_link(r"Files\l", r"Hives\x").unwrap_err();
    assert!(err.to_string().contains("invalid hard link"), "{err}");
    let err = w.add_link(r"Files\l", r"Files\nowhere").unwrap_err();
    assert!(
        err.to_string().contains("failed to find link target"),
        "{err}"
    );
    assert!(w
        .remove(r"Hives\x")
        .unwrap_err()
        .to_string()
        .contains("invalid tombstone"));
    let err = w.add(r"UtilityVM\Files\x", &dir_info()).unwrap_err();
    assert!(err.to_string().contains("missing UtilityVM"), "{err}");
    // The parent has no utility VM to clone.
    assert!(w.add("UtilityVM", &dir_info()).is_err());
    // After a failure the writer only reports it.
    let err = w.close().unwrap_err();
    assert!(matches!(err, crate::Error::WriterFailed(_)), "{err}");

    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = legacy_writer(d.path());
    assert!(w.write_all(b"x").is_err(), "no current file");
}

#[test]
fn the_transport_reader_keeps_every_tombstone_and_sizes_sparse_files() {
    use crate::backup::*;
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir(root.join("Files")).unwrap();
    // A sparse file as BackupRead gives it: an empty data stream, then blocks.
    let mut stream = FILE_ATTRIBUTE_ARCHIVE.to_le_bytes().to_vec();
    let mut w = BackupStreamWriter::new(&mut stream);
    let sparse = BackupHeader {
        attributes: STREAM_SPARSE_ATTRIBUTE,
        ..BackupHeader::new(BACKUP_DATA, 0)
    };
    w.write_record(&sparse, b"").unwrap();
    let block = BackupHeader {
        offset: 10,
        ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 2)
    };
    w.write_record(&block, b"ab").unwrap();
    let end = BackupHeader {
        offset: 20,
        ..BackupHeader::new(BACKUP_SPARSE_BLOCK, 0)
    };
    w.write_record(&end, b"").unwrap();
    std::fs::write(root.join("Files/sparse"), &stream).unwrap();
    std::fs::write(
        root.join("tombstones.txt"),
        "\u{feff}Version 1.0\r\n\\gone\r\n\\missing-dir\\x\r\n",
    )
    .unwrap();
    let mut r = legacy::LegacyLayerReader::open(crate::fs::host(), root).unwrap();
    let mut entries = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        entries.push((e.name, e.size, e.info.is_some()));
    }
    assert_eq!(
        entries,
        [
            ("Files".to_string(), 0, true),
            (r"Files\gone".to_string(), 0, false),
            (r"Files\sparse".to_string(), 20, true),
            (r"Files\missing-dir\x".to_string(), 0, false),
        ]
    );
    std::fs::write(root.join("tombstones.txt"), "Version 1.0\n").unwrap();
    assert!(legacy::LegacyLayerReader::open(crate::fs::host(), root).is_err());
}

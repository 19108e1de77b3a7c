//! OCI layer tars through layer folders and back, for base layers and layers with parents,
//! and what bad tars do (an error, and no partial layer left behind).

use std::path::{Path, PathBuf};

use super::*;
use crate::testutil::*;

fn import(layers: &Layers, tar: &[u8], path: &Path, parents: &[PathBuf]) -> Result<u64> {
    import_layer_from_tar(layers, tar, path, parents)
}

fn export(layers: &Layers, path: &Path, parents: &[PathBuf]) -> Vec<Ent> {
    let out = export_layer_to_tar(layers, Vec::new(), path, parents).unwrap();
    read_tar(&out)
}

/// A deep directory chain (> 260 characters) with a file at the bottom.
fn long_path_entries() -> Vec<Ent> {
    let mut ents = Vec::new();
    let mut p = "Files".to_string();
    for i in 0..6 {
        p = format!("{p}/{i}-{}", "long-directory-name-".repeat(3));
        ents.push(dir(&p));
    }
    let f = format!("{p}/file-at-the-bottom.txt");
    assert!(f.len() > 300);
    ents.push(file(&f, b"deep"));
    ents
}

fn base_entries() -> Vec<Ent> {
    let mut ents = vec![
        dir("Files"),
        dir("Files/Windows"),
        file("Files/Windows/a.txt", b"hello"),
        ads("Files/Windows/a.txt", "Zone.Identifier", b"[ZoneTransfer]"),
        link("Files/Windows/b.txt", "Files/Windows/a.txt"),
        file_with_ea(
            "Files/Windows/ea.bin",
            b"x",
            "$KERNEL.PURGE.ESBCACHE",
            &[1, 2, 3],
        ),
        file("Files/Windows/empty", b""),
        symlink("Files/Windows/link", r"..\Windows\a.txt"),
        junction("Files/Windows/jct", r"C:\ProgramData"),
        file("Files/Windows/日本語 ünï.txt", "non-ASCII".as_bytes()),
        file("Files/Windows/big.bin", &vec![0x5a; 300_000]),
        dir("UtilityVM"),
        dir("UtilityVM/Files"),
        dir("UtilityVM/Files/EFI"),
        dir("UtilityVM/Files/EFI/Microsoft"),
        dir("UtilityVM/Files/EFI/Microsoft/Boot"),
        file("UtilityVM/Files/EFI/Microsoft/Boot/BCD", b"bcd store"),
        file(
            "UtilityVM/Files/EFI/Microsoft/Boot/bootmgfw.efi",
            b"boot manager",
        ),
    ];
    ents.extend(long_path_entries());
    walk_sorted(ents)
}

#[test]
fn base_layer_round_trips_every_record_kind() {
    let d = tempfile::tempdir().unwrap();
    let layers = folder_layers();
    let path = d.path().join("base");
    let input = base_entries();
    let n = import(&layers, &build_tar(&input), &path, &[]).unwrap();
    let files: u64 = input
        .iter()
        .filter(|e| e.typeflag == b'0' && !e.name.contains(':'))
        .map(|e| e.data.len() as u64)
        .sum();
    assert_eq!(n, files);

    // The folder holds the files themselves.
    assert_eq!(
        std::fs::read(path.join("Files/Windows/a.txt")).unwrap(),
        b"hello"
    );
    assert_eq!(
        std::fs::read(path.join("Files/Windows/日本語 ünï.txt")).unwrap(),
        b"non-ASCII"
    );
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (
        std::fs::metadata(path.join("Files/Windows/a.txt")).unwrap(),
        std::fs::metadata(path.join("Files/Windows/b.txt")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard link");
    // The mutated utility VM file is saved at the root.
    assert_eq!(std::fs::read(path.join("bcd.bak")).unwrap(), b"bcd store");
    // Reparse points are recorded, never made into real symlinks.
    assert!(!std::fs::symlink_metadata(path.join("Files/Windows/link"))
        .unwrap()
        .file_type()
        .is_symlink());

    assert_eq!(export(&layers, &path, &[]), input);
}

fn parent_entries() -> Vec<Ent> {
    walk_sorted(vec![
        dir("Files"),
        dir("Files/Windows"),
        file("Files/Windows/a.txt", b"parent a"),
        file("Files/keep.txt", b"kept"),
        dir("UtilityVM"),
        dir("UtilityVM/Files"),
        dir("UtilityVM/Files/EFI"),
        dir("UtilityVM/Files/EFI/Microsoft"),
        dir("UtilityVM/Files/EFI/Microsoft/Boot"),
        file("UtilityVM/Files/EFI/Microsoft/Boot/BCD", b"parent bcd"),
        file(
            "UtilityVM/Files/EFI/Microsoft/Boot/bootmgfw.efi",
            b"boot manager",
        ),
    ])
}

fn child_entries() -> Vec<Ent> {
    walk_sorted(vec![
        dir("Files"),
        dir("Files/Windows"),
        whiteout("Files/Windows/a.txt"),
        file("Files/Windows/new.txt", b"new file"),
        link("Files/Windows/new2", "Files/Windows/new.txt"),
        link("Files/Windows/ln", "Files/keep.txt"),
        junction("Files/jdir", r"C:\Target"),
        dir("Hives"),
        file("Hives/Software_Delta", b"software hive"),
        file("Hives/System_Delta", b"system hive"),
        dir("UtilityVM"),
        dir("UtilityVM/Files"),
        dir("UtilityVM/Files/EFI"),
        dir("UtilityVM/Files/EFI/Microsoft"),
        dir("UtilityVM/Files/EFI/Microsoft/Boot"),
        file("UtilityVM/Files/EFI/Microsoft/Boot/BCD", b"child bcd"),
    ])
}

/// What the export of the child gives back: the transport format reads `Files`, `Hives` and
/// what is below `Hives` without security descriptors and with creation and access times
/// reset (as the reference does); a link to a parent's file becomes a copy of it.
fn expected_child_export() -> Vec<Ent> {
    let mut out = Vec::new();
    for mut e in child_entries() {
        if e.name.starts_with("UtilityVM") {
            continue;
        }
        if e.name == "Files/Windows/ln" {
            e = file("Files/Windows/ln", b"kept");
        }
        if !e.name.starts_with("Files/") && e.typeflag != b'1' {
            e.pax
                .insert("LIBARCHIVE.creationtime".into(), T_MTIME.into());
            e.pax.insert("atime".into(), T_MTIME.into());
            e.pax.remove("MSWINDOWS.rawsd");
        }
        out.push(e);
    }
    out.sort();
    out
}

#[test]
fn layer_with_parents_round_trips_through_the_transport_format() {
    let d = tempfile::tempdir().unwrap();
    let layers = folder_layers();
    let base = d.path().join("base");
    import(&layers, &build_tar(&parent_entries()), &base, &[]).unwrap();
    let child = d.path().join("child");
    let parents = vec![base.clone()];
    import(&layers, &build_tar(&child_entries()), &child, &parents).unwrap();

    // The deletion is recorded, the links are real hard links (one into the parent).
    assert_eq!(
        std::fs::read_to_string(child.join("tombstones.txt")).unwrap(),
        "\u{feff}Version 1.0\r\n\\Windows\\a.txt\r\n"
    );
    use std::os::unix::fs::MetadataExt;
    let ino = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(child.join("Files/Windows/ln")),
        ino(base.join("Files/keep.txt"))
    );
    assert_eq!(
        ino(child.join("Files/Windows/new2")),
        ino(child.join("Files/Windows/new.txt"))
    );
    // The utility VM was cloned from the parent: unchanged files hard-linked, the boot
    // store (which the import mutates) copied and then replaced.
    let boot = "UtilityVM/Files/EFI/Microsoft/Boot";
    assert_eq!(
        ino(child.join(boot).join("bootmgfw.efi")),
        ino(base.join(boot).join("bootmgfw.efi"))
    );
    assert_ne!(
        ino(child.join(boot).join("BCD")),
        ino(base.join(boot).join("BCD"))
    );
    assert_eq!(
        std::fs::read(child.join(boot).join("BCD")).unwrap(),
        b"child bcd"
    );
    assert_eq!(
        std::fs::read(base.join(boot).join("BCD")).unwrap(),
        b"parent bcd"
    );
    assert_eq!(std::fs::read(child.join("bcd.bak")).unwrap(), b"child bcd");
    // No transport folder is left beside the layers.
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let mut got = export(&layers, &child, &parents);
    let uvm: Vec<Ent> = got
        .iter()
        .filter(|e| e.name.starts_with("UtilityVM"))
        .cloned()
        .collect();
    got.retain(|e| !e.name.starts_with("UtilityVM"));
    got.sort();
    assert_eq!(got, expected_child_export());
    // The export carries the whole (cloned) utility VM, with the child's boot store.
    let bcd = uvm.iter().find(|e| e.name.ends_with("Boot/BCD")).unwrap();
    assert_eq!(bcd.data, b"child bcd");
    assert!(uvm.iter().any(|e| e.name.ends_with("bootmgfw.efi")));
}

#[test]
fn entries_come_parents_first_with_tombstones_after_their_directory() {
    let d = tempfile::tempdir().unwrap();
    let layers = folder_layers();
    let base = d.path().join("base");
    import(&layers, &build_tar(&parent_entries()), &base, &[]).unwrap();
    let child = d.path().join("child");
    let parents = vec![base];
    import(&layers, &build_tar(&child_entries()), &child, &parents).unwrap();
    let names: Vec<String> = export(&layers, &child, &parents)
        .into_iter()
        .map(|e| e.name)
        .collect();
    let at = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(at("Files") < at("Files/Windows"));
    assert_eq!(at("Files/Windows/.wh.a.txt"), at("Files/Windows") + 1);
    assert!(at("Files/Windows") < at("Files/Windows/new.txt"));
    assert!(at("Files/Windows/new.txt") < at("Files/Windows/new2"));
}

fn assert_refused(tar: &[u8], what: &str) {
    let d = tempfile::tempdir().unwrap();
    let layers = folder_layers();
    let path = d.path().join("layer");
    let err = import(&layers, tar, &path, &[]).unwrap_err();
    assert!(err.to_string().contains(what), "expected {what:?} in {err}");
    // No partial layer: the folder the import created is gone, nothing else was written.
    assert!(!path.exists(), "{what}: partial layer left");
    assert_eq!(tree(d.path()), Vec::<String>::new(), "{what}");
}

#[test]
fn path_traversal_is_refused() {
    let cases: Vec<(Vec<Ent>, &str)> = vec![
        (vec![dir("Files"), file("Files/../../escape", b"x")], "'..'"),
        (vec![file("/Files/abs", b"x")], "absolute"),
        (
            vec![dir("Files"), file(r"Files\..\..\escape", b"x")],
            "'..'",
        ),
        (vec![dir("Files"), file("Files/a:b", b"x")], "':'"),
        (
            vec![dir("Files"), link("Files/l", "../../../etc/passwd")],
            "'..'",
        ),
        (vec![dir("Files"), whiteout("Files/../x")], "'..'"),
    ];
    for (ents, what) in cases {
        assert_refused(&build_tar(&ents), what);
    }
}

#[test]
fn entries_a_layer_cannot_hold_are_refused() {
    let mut dev = file("Files/dev", b"");
    dev.typeflag = b'3';
    assert_refused(
        &build_tar(&[dir("Files"), dev]),
        "cannot be part of a Windows layer",
    );
    assert_refused(
        &build_tar(&[dir("Files"), whiteout("Files/.wh..opq")]),
        "opaque",
    );
    // A file whose directory is missing, and a name given twice.
    assert_refused(
        &build_tar(&[dir("Files"), file("Files/missing/x", b"1")]),
        "No such file",
    );
    assert_refused(
        &build_tar(&[dir("Files"), file("Files/x", b"1"), file("Files/x", b"2")]),
        "exists",
    );
    // A base layer has nothing to delete.
    assert_refused(
        &build_tar(&[dir("Files"), whiteout("Files/x")]),
        "tombstones",
    );
}

#[test]
fn truncated_and_oversize_tars_leave_no_partial_layer() {
    let tar = build_tar(&base_entries());
    for cut in [700, tar.len() / 3, tar.len() / 2, tar.len() - 1100] {
        assert_refused(&tar[..cut], "");
    }
    let mut big = dir("Files");
    big.pax
        .insert("MSWINDOWS.rawsd".into(), vec![b'A'; 2 << 20]);
    assert_refused(&build_tar(&[big]), "limit");
}

#[test]
fn an_existing_folder_must_be_empty_and_is_emptied_again_on_failure() {
    let d = tempfile::tempdir().unwrap();
    let layers = folder_layers();
    let path = d.path().join("layer");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("other"), b"x").unwrap();
    let err = import(&layers, &build_tar(&[dir("Files")]), &path, &[]).unwrap_err();
    assert!(err.to_string().contains("not empty"));
    assert_eq!(std::fs::read(path.join("other")).unwrap(), b"x");

    std::fs::remove_file(path.join("other")).unwrap();
    let tar = build_tar(&base_entries());
    assert!(import(&layers, &tar[..tar.len() / 2], &path, &[]).is_err());
    assert!(path.is_dir(), "a folder given by the caller stays");
    assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
}

#[test]
fn layers_of_the_reference_shape_import() {
    // Go's exporter writes directories without a trailing slash and whiteouts as plain
    // ustar entries; GNU tar writes "dir/" names. Both must import.
    let d = tempfile::tempdir().unwrap();
    let layers = folder_layers();
    let mut slash = dir("Files/");
    slash.pax.clear();
    let tar = build_tar(&[slash, file("Files/x", b"1")]);
    let path = d.path().join("l");
    import(&layers, &tar, &path, &[]).unwrap();
    let got = export(&layers, &path, &[]);
    assert_eq!(got[0].name, "Files");
    assert_eq!(got[0].pax["MSWINDOWS.fileattr"], b"16");
}

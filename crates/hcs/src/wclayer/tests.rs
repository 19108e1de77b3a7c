//! The layer functions against the vmcompute simulator: arguments, parent descriptors,
//! outputs and error operations.

use super::*;
use crate::fake_vmcompute::FakeVmcompute;
use crate::hresult::HResult;

#[test]
fn base_names_follow_filepath_base() {
    assert_eq!(base_name(r"C:\layers\abc"), "abc");
    assert_eq!(base_name(r"C:\layers\abc\"), "abc");
    assert_eq!(base_name("C:/layers/abc"), "abc");
    assert_eq!(base_name("abc"), "abc");
    assert_eq!(base_name(r"C:abc"), "abc");
    assert_eq!(base_name(r"\\"), r"\");
    assert_eq!(base_name(""), ".");
}

#[test]
fn guid_text_and_bytes() {
    let g = LayerGuid {
        data1: 0x0102_0304,
        data2: 0x0506,
        data3: 0x0708,
        data4: [9, 10, 11, 12, 13, 14, 15, 16],
    };
    assert_eq!(g.to_string(), "01020304-0506-0708-090a-0b0c0d0e0f10");
    assert_eq!(
        g.to_bytes(),
        [4, 3, 2, 1, 6, 5, 8, 7, 9, 10, 11, 12, 13, 14, 15, 16]
    );
}

#[tokio::test]
async fn parent_chains_become_descriptors() {
    let fake = FakeVmcompute::new();
    let wc = Wclayer::new(fake.clone());
    let parents = vec![r"C:\l\top".to_string(), r"C:\l\base\".to_string()];
    wc.create_scratch_layer(r"C:\l\scratch", &parents)
        .await
        .unwrap();
    let top = wc.name_to_guid("top").await.unwrap();
    let base = wc.name_to_guid("base").await.unwrap();
    assert_eq!(
        fake.calls_of("CreateSandboxLayer")[0].arg,
        format!(r"C:\l\scratch [C:\l\top@{top},C:\l\base\@{base}]")
    );
    // The GUIDs were asked for by basename, in order, before the export.
    let names: Vec<String> = fake
        .calls_of("NameToGuid")
        .into_iter()
        .map(|c| c.arg)
        .collect();
    assert_eq!(&names[..2], ["top", "base"]);
    wc.prepare_layer(r"C:\l\scratch", &parents).await.unwrap();
    wc.export_layer(r"C:\l\scratch", r"C:\out", &parents[1..])
        .await
        .unwrap();
    assert_eq!(
        fake.calls_of("ExportLayer")[0].arg,
        format!(r"C:\l\scratch C:\out [C:\l\base\@{base}]")
    );
    wc.unprepare_layer(r"C:\l\scratch").await.unwrap();
}

#[tokio::test]
async fn layer_lifecycle_and_outputs() {
    let fake = FakeVmcompute::new();
    let wc = Wclayer::new(fake.clone());
    let l = r"C:\l\new";
    assert!(!wc.layer_exists(l).await.unwrap());
    wc.import_layer(l, r"C:\in", &[]).await.unwrap();
    assert!(wc.layer_exists(l).await.unwrap());
    assert_eq!(wc.get_layer_mount_path(l).await.unwrap(), "");
    wc.activate_layer(l).await.unwrap();
    let mount = wc.get_layer_mount_path(l).await.unwrap();
    assert!(mount.starts_with(r"\\?\Volume{"), "{mount}");
    wc.expand_sandbox_size(l, 20 << 30).await.unwrap();
    assert_eq!(
        fake.calls_of("ExpandSandboxSize")[0].arg,
        format!("{l} {}", 20u64 << 30)
    );
    wc.deactivate_layer(l).await.unwrap();
    wc.create_layer(r"C:\l\ro", l).await.unwrap();
    wc.grant_vm_access("vm-1", r"C:\l\ro\sandbox.vhdx")
        .await
        .unwrap();
    assert_eq!(
        wc.get_shared_base_images().await.unwrap(),
        r#"{"Images":[]}"#
    );
    wc.process_base_layer(l).await.unwrap();
    wc.process_utility_vm_image(&format!(r"{l}\UtilityVM"))
        .await
        .unwrap();
    wc.destroy_layer(l).await.unwrap();
    assert!(!wc.layer_exists(l).await.unwrap());
}

#[tokio::test]
async fn failures_carry_the_hcsshim_operation() {
    let fake = FakeVmcompute::new();
    let wc = Wclayer::new(fake.clone());
    // Activating a layer that does not exist.
    let err = wc.activate_layer(r"C:\missing").await.unwrap_err();
    assert_eq!(err.hresult(), Some(HResult::ERROR_NOT_FOUND));
    assert_eq!(err.operation(), "hcsshim::ActivateLayer");
    // A NameToGuid failure stops the call before the export.
    fake.fail_next("NameToGuid", 0x8007_000D_u32 as i32);
    let err = wc
        .prepare_layer(r"C:\l\x", &[r"C:\l\p".into()])
        .await
        .unwrap_err();
    assert_eq!(err.operation(), "hcsshim::NameToGuid");
    assert!(fake.calls_of("PrepareLayer").is_empty());
    // ProcessBaseImage errors name the path.
    fake.fail_next("ProcessBaseImage", 0x8007_0005_u32 as i32);
    let err = wc.process_base_layer(r"C:\l\b").await.unwrap_err();
    assert_eq!(err.operation(), "ProcessBaseImage");
    assert_eq!(err.extra(), Some(r"C:\l\b"));
}

#[cfg(not(windows))]
#[test]
fn host_is_not_available_off_windows() {
    let err = Wclayer::host().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotAvailable(_)));
}

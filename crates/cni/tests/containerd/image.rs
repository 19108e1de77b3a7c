//! A local OCI image (no registry): the busybox root filesystem of
//! `scripts/busybox-rootfs.sh` as one uncompressed layer, written as an OCI image-layout
//! tar archive that `ctr images import` reads.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

/// The image's name in containerd.
pub const IMAGE: &str = "localhost/hcsshim-cni-test/busybox:1";

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn add_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, path, bytes).unwrap();
}

/// Builds the image archive at `out`, using `work` for the root filesystem. The image
/// runs `sleep` by default, so it also serves as the pod sandbox ("pause") image.
pub fn build(work: &Path, out: &Path) {
    let rootfs = work.join("rootfs");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/busybox-rootfs.sh"
    );
    let st = Command::new("sh")
        .arg(script)
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(st.success(), "{script} failed");

    let mut layer = tar::Builder::new(Vec::new());
    layer.follow_symlinks(false);
    layer.append_dir_all(".", &rootfs).unwrap();
    let layer = layer.into_inner().unwrap();
    let layer_digest = digest(&layer);

    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],
                   "Cmd": ["/bin/sleep", "2147483647"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": digest(manifest.as_bytes()), "size": manifest.len(),
                       "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": IMAGE,
                                       "org.opencontainers.image.ref.name": "1"}}],
    })
    .to_string();

    let mut archive = tar::Builder::new(Vec::new());
    add_file(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    add_file(&mut archive, "index.json", index.as_bytes());
    for blob in [layer.as_slice(), config.as_bytes(), manifest.as_bytes()] {
        let name = format!("blobs/sha256/{}", &digest(blob)["sha256:".len()..]);
        add_file(&mut archive, &name, blob);
    }
    std::fs::write(out, archive.into_inner().unwrap()).unwrap();
}

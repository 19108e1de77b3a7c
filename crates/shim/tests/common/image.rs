//! A hand-built OCI image archive (`ctr images import` input): one uncompressed layer with
//! the host's static busybox and a symlink per applet, a config, a manifest and an index
//! naming the image. No registry is involved.

use std::io::Write;

use sha2::{Digest, Sha256};

fn digest(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

fn layer() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (Debian busybox-static)");
    let applets = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut b = tar::Builder::new(Vec::new());
    for d in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "root", "var", "run",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .unwrap();
    for a in String::from_utf8_lossy(&applets.stdout).split_whitespace() {
        if a == "busybox" {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes an OCI archive for image `name` (e.g. `docker.io/library/bb:test`) whose
/// default command is `cmd`.
pub fn write_archive(path: &std::path::Path, name: &str, cmd: &[&str]) {
    let layer = layer();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(&manifest), "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"},
        }],
    }))
    .unwrap();
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, data).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for blob in [&layer, &config, &manifest] {
        add(
            &format!("blobs/sha256/{}", &digest(blob)["sha256:".len()..]),
            blob,
        );
    }
    let bytes = out.into_inner().unwrap();
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .unwrap();
}

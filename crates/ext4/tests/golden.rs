//! Compat mode against the reference's golden outputs (`tests/data/tar2ext4`, a copy of
//! `shared/golden/tar2ext4` kept in the repository): every case
//! and option set must give the same bytes (after zeroing the two random fields as the
//! manifest's normalisation does), the same dm-verity root hash and a valid VHD checksum.

use std::fs;
use std::io::Cursor;
use std::path::PathBuf;

use ext4::{convert, Options, OutputMode};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tar2ext4")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn options_for(set: &str) -> Options {
    let mut o = Options {
        mode: OutputMode::Compat,
        verity_uuid: Some([0; 16]),
        vhd_unique_id: Some([0; 16]),
        ..Options::default()
    };
    match set {
        "plain" => {}
        "overlay" => o.convert_whiteout = true,
        "vhd" => o.append_vhd_footer = true,
        "inline" => o.inline_data = true,
        "verity" => {
            o.convert_whiteout = true;
            o.max_disk_size = 128 << 30;
            o.append_dm_verity = true;
            o.append_vhd_footer = true;
        }
        other => panic!("unknown option set {other}"),
    }
    o
}

/// Converts one case with one option set; returns a list of mismatches.
fn check(case: &str, set: &str, tar: &[u8], want: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let opts = options_for(set);
    let mut out = Cursor::new(Vec::new());
    let outcome = match convert(tar, &mut out, &opts) {
        Ok(o) => o,
        Err(e) => return vec![format!("{case}.{set}: conversion failed: {e}")],
    };
    let mut img = out.into_inner();
    let size = want["size"].as_u64().unwrap();
    if img.len() as u64 != size {
        errs.push(format!("{case}.{set}: size {} != {size}", img.len()));
    }
    let ext4_size = want["ext4_size"].as_u64().unwrap();
    if outcome.ext4_size != ext4_size {
        errs.push(format!(
            "{case}.{set}: ext4 size {} != {ext4_size}",
            outcome.ext4_size
        ));
    }
    if (img.len() as u64) >= ext4_size {
        if let Err(e) = ext4::check::check(&img[..ext4_size as usize]) {
            errs.push(format!("{case}.{set}: structural check: {e}"));
        }
        let got = hex(&Sha256::digest(&img[..ext4_size as usize]));
        if got != want["ext4_sha256"].as_str().unwrap() {
            errs.push(format!("{case}.{set}: ext4 sha256 differs"));
            if let Some(regions) = want["regions"].as_object() {
                errs.push(format!("  regions expected: {regions:?}"));
                errs.push(format!("  block0: {}", hex(&Sha256::digest(&img[..4096]))));
                errs.push(format!(
                    "  block1: {}",
                    hex(&Sha256::digest(&img[4096..8192]))
                ));
            }
        }
    }
    if let Some(v) = want.get("verity").filter(|v| !v.is_null()) {
        let root = outcome
            .verity
            .as_ref()
            .map(|t| t.root_hex())
            .unwrap_or_default();
        if root != v["root_hash"].as_str().unwrap() {
            errs.push(format!(
                "{case}.{set}: root hash {root} != {}",
                v["root_hash"]
            ));
        }
    }
    if opts.append_vhd_footer && img.len() >= 512 {
        let n = img.len();
        let footer: [u8; 512] = img[n - 512..].try_into().unwrap();
        let sum = u32::from_be_bytes(footer[64..68].try_into().unwrap());
        if sum != ext4::vhd::checksum(&footer) {
            errs.push(format!("{case}.{set}: VHD checksum invalid"));
        }
        img[n - 512 + 64..n - 512 + 84].fill(0);
    }
    if opts.append_dm_verity && img.len() as u64 > ext4_size + 32 {
        img[ext4_size as usize + 16..ext4_size as usize + 32].fill(0);
    }
    let key = if want.get("sha256").is_some() {
        "sha256"
    } else {
        "sha256_normalized"
    };
    let got = hex(&Sha256::digest(&img));
    if got != want[key].as_str().unwrap() {
        errs.push(format!("{case}.{set}: {key} {got} != {}", want[key]));
    }
    errs
}

#[test]
fn compat_mode_matches_every_golden_case() {
    let dir = golden_dir();
    let manifest: Value =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).expect("manifest.json"))
            .expect("manifest parses");
    let mut errs = Vec::new();
    let mut checked = 0;
    for (case, c) in manifest["cases"].as_object().unwrap() {
        let tar = fs::read(dir.join(c["tar"].as_str().unwrap())).unwrap();
        assert_eq!(
            hex(&Sha256::digest(&tar)),
            c["tar_sha256"].as_str().unwrap()
        );
        for (set, want) in c["results"].as_object().unwrap() {
            if want["exit_code"].as_i64() != Some(0) {
                continue;
            }
            errs.extend(check(case, set, &tar, want));
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} results checked");
    assert!(
        errs.is_empty(),
        "{} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

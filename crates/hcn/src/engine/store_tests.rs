//! The store: commits survive a reopen; a crash's torn journal tail is dropped and later
//! commits still land; a crash at each step of a compaction (a kill -9 between writing and
//! renaming the snapshot, and after) leaves a state that loads whole; the earlier
//! one-file-per-object layout is converted.

use std::fs;
use std::path::Path;

use super::*;
use crate::engine::state::{EndpointExtra, NetworkExtra, Record};
use crate::schema::{HostComputeEndpoint, HostComputeNetwork};

fn network(name: &str) -> Record<HostComputeNetwork, NetworkExtra> {
    Record {
        doc: HostComputeNetwork {
            name: name.into(),
            ..Default::default()
        },
        extra: NetworkExtra { index: 7 },
    }
}

fn endpoint(name: &str, index: u32) -> Record<HostComputeEndpoint, EndpointExtra> {
    Record {
        doc: HostComputeEndpoint {
            name: name.into(),
            ..Default::default()
        },
        extra: EndpointExtra {
            index,
            ..Default::default()
        },
    }
}

/// Applies a change to `state` as the engine does, records it and commits.
fn put_endpoint(store: &Store, state: &mut State, id: &str, index: u32) {
    let rec = endpoint(id, index);
    store.put("endpoints", id, &rec).unwrap();
    state.endpoints.insert(id.into(), rec);
    state.meta.next_index = index + 1;
    store.put_meta(&state.meta).unwrap();
    store.commit(state).unwrap();
}

/// The end of the records in a journal's bytes.
fn store_end(bytes: &[u8]) -> usize {
    parse_journal(bytes).unwrap().1
}

fn reopen(dir: &Path) -> State {
    Store::open(dir).unwrap().load().unwrap()
}

fn journal(dir: &Path) -> std::path::PathBuf {
    let mut js: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".log"))
        .collect();
    assert_eq!(js.len(), 1, "{js:?}");
    js.pop().unwrap()
}

#[test]
fn commits_survive_a_reopen_and_one_commit_holds_several_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut state = store.load().unwrap();
    assert_eq!(state, State::default());
    // One mutation: a network, an endpoint and the counters, in one record.
    let n = network("n");
    store.put("networks", "N1", &n).unwrap();
    state.networks.insert("N1".into(), n);
    put_endpoint(&store, &mut state, "E1", 1);
    put_endpoint(&store, &mut state, "E2", 2);
    store.remove("endpoints", "E1").unwrap();
    state.endpoints.remove("E1");
    store.commit(&state).unwrap();
    // Nothing pending: no record.
    store.commit(&state).unwrap();
    assert_eq!(
        parse_journal(&fs::read(journal(dir.path())).unwrap())
            .unwrap()
            .0
            .len(),
        3
    );
    drop(store);
    let back = reopen(dir.path());
    assert_eq!(back, state);
    assert_eq!(back.meta.next_index, 3);
    assert!(back.endpoints.contains_key("E2") && !back.endpoints.contains_key("E1"));
}

#[test]
fn a_torn_last_record_is_dropped_and_later_commits_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut state = store.load().unwrap();
    put_endpoint(&store, &mut state, "E1", 1);
    let before = state.clone();
    let j = journal(dir.path());
    let good = store.inner().journal_len;
    put_endpoint(&store, &mut state, "E2", 2);
    // The records, without the zero-filled space after them.
    let full = fs::read(&j).unwrap()[..store.inner().journal_len as usize].to_vec();
    drop(store);
    // A crash anywhere inside the second record's append: header cut, payload cut, or a
    // whole-length record whose bytes did not all reach the disk.
    let cuts = [good as usize + 3, good as usize + 8, full.len() - 1];
    for cut in cuts {
        let d = tempfile::tempdir().unwrap();
        for e in fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
        }
        let jj = d.path().join(j.file_name().unwrap());
        let mut bytes = full[..cut].to_vec();
        if cut == full.len() - 1 {
            bytes = full.clone();
            let last = bytes.len() - 2;
            bytes[last] ^= 0xff; // same length, wrong checksum
        }
        fs::write(&jj, &bytes).unwrap();
        let store = Store::open(d.path()).unwrap();
        let mut got = store.load().unwrap();
        assert_eq!(got, before, "cut at {cut}");
        // The next commit lands after the valid records and survives.
        put_endpoint(&store, &mut got, "E3", 3);
        drop(store);
        let again = reopen(d.path());
        assert_eq!(again, got, "cut at {cut}");
        assert!(again.endpoints.contains_key("E3") && !again.endpoints.contains_key("E2"));
    }
}

#[test]
fn an_intact_record_that_does_not_decode_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut state = store.load().unwrap();
    put_endpoint(&store, &mut state, "E1", 1);
    let j = journal(dir.path());
    drop(store);
    let bad = encode_record(&[Change::Object {
        kind: "endpoints".into(),
        id: "E9".into(),
        record: Some(crate::raw::RawJson::from_text(r#"{"Document": 5}"#).unwrap()),
    }])
    .unwrap();
    let mut bytes = fs::read(&j).unwrap();
    let end = store_end(&bytes);
    bytes[end..end + bad.len()].copy_from_slice(&bad);
    fs::write(&j, bytes).unwrap();
    let e = Store::open(dir.path()).unwrap().load().unwrap_err();
    assert!(e.contains("E9"), "{e}");
}

#[test]
fn a_crash_at_any_step_of_a_compaction_leaves_a_whole_state() {
    for at in [
        CrashAt::BeforeRename,
        CrashAt::AfterRename,
        CrashAt::BeforeRemove,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut state = store.load().unwrap();
        put_endpoint(&store, &mut state, "E1", 1);
        put_endpoint(&store, &mut state, "E2", 2);
        // The next commit finds the journal untrusted and compacts; it "dies" at `at`,
        // after its change was applied in memory but before the reply.
        store.inner().untrusted = true;
        store.crash_at(Some(at));
        let rec = endpoint("E3", 3);
        store.put("endpoints", "E3", &rec).unwrap();
        let mut with_e3 = state.clone();
        with_e3.endpoints.insert("E3".into(), rec);
        assert!(store.commit(&with_e3).is_err(), "{at:?}");
        drop(store); // the process is gone: only the files remain
        let got = reopen(dir.path());
        // Before the rename the old snapshot and journal hold E1 and E2; after it the new
        // snapshot holds E3 too. Either is whole.
        match at {
            CrashAt::BeforeRename => assert_eq!(got, state, "{at:?}"),
            _ => assert_eq!(got, with_e3, "{at:?}"),
        }
        // Exactly one snapshot and one journal remain, no temporary file.
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{at:?}: {names:?}");
        assert_eq!(names[1], "state.json");
        assert!(names[0].starts_with("journal-"), "{names:?}");
    }
}

#[test]
fn a_large_journal_is_compacted_and_loads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut state = store.load().unwrap();
    let g0 = store.inner().generation;
    let mut i = 0;
    while store.inner().generation == g0 {
        put_endpoint(&store, &mut state, &format!("E{}", i % 50), i);
        i += 1;
        assert!(i < 100_000, "never compacted");
    }
    assert!(store.inner().journal_len < COMPACT_MIN);
    drop(store);
    assert_eq!(reopen(dir.path()), state);
}

#[test]
fn the_journal_grows_by_zeroed_chunks_and_records_past_the_first_chunk_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut state = store.load().unwrap();
    assert_eq!(
        fs::metadata(journal(dir.path())).unwrap().len(),
        JOURNAL_CHUNK
    );
    // A large state (its snapshot is larger than what follows, so nothing compacts), then
    // a commit larger than a chunk: the journal grows to the chunks it needs.
    for (id, len) in [("BIG", 2 * JOURNAL_CHUNK), ("BIGGER", JOURNAL_CHUNK + 10)] {
        let big = Record {
            doc: HostComputeEndpoint {
                name: "x".repeat(len as usize),
                ..Default::default()
            },
            extra: EndpointExtra::default(),
        };
        store.put("endpoints", id, &big).unwrap();
        state.endpoints.insert(id.into(), big);
        store.commit(&state).unwrap();
    }
    put_endpoint(&store, &mut state, "E1", 1);
    let size = fs::metadata(journal(dir.path())).unwrap().len();
    assert_eq!(size % JOURNAL_CHUNK, 0);
    assert!(size > JOURNAL_CHUNK);
    drop(store);
    assert_eq!(reopen(dir.path()), state);
}

#[test]
fn the_earlier_layout_is_converted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("endpoints")).unwrap();
    fs::create_dir_all(root.join("networks")).unwrap();
    fs::write(
        root.join("endpoints/E1.json"),
        serde_json::to_vec(&endpoint("E1", 4)).unwrap(),
    )
    .unwrap();
    fs::write(root.join("endpoints/E2.json.tmp"), b"{torn").unwrap();
    fs::write(
        root.join("networks/N1.json"),
        serde_json::to_vec(&network("n")).unwrap(),
    )
    .unwrap();
    fs::write(root.join("meta.json"), br#"{"NextIndex": 5}"#).unwrap();
    let got = reopen(root);
    assert_eq!(got.endpoints["E1"], endpoint("E1", 4));
    assert_eq!(got.networks["N1"], network("n"));
    assert_eq!(got.meta.next_index, 5);
    assert_eq!(got.endpoints.len(), 1);
    // Converted: the old files are gone, and a reopen reads the new layout alone.
    assert!(!root.join("endpoints").exists() && !root.join("meta.json").exists());
    assert_eq!(reopen(root), got);
}

#[test]
fn raw_policy_settings_come_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut state = store.load().unwrap();
    // Keys out of order and spaced: callers compare settings as text (RemovePolicy).
    let text = r#"{"Type":"RemoteSubnetRoute","Settings":{"ProviderAddress": "192.0.2.9","DestinationPrefix":"10.1.0.0/24"}}"#;
    let mut n = network("n");
    n.doc.policies = vec![serde_json::from_str(text).unwrap()];
    store.put("networks", "N1", &n).unwrap();
    state.networks.insert("N1".into(), n.clone());
    store.commit(&state).unwrap();
    drop(store);
    let back = reopen(dir.path());
    let settings = back.networks["N1"].doc.policies[0]
        .settings
        .as_ref()
        .unwrap();
    assert_eq!(
        settings.get(),
        r#"{"ProviderAddress": "192.0.2.9","DestinationPrefix":"10.1.0.0/24"}"#
    );
    assert_eq!(back, state);
}

//! What the container image and the bundle feed the agent, with real containers (as root):
//! `process.cwd` created inside the rootfs only, whatever `..` and symlinks the image holds;
//! an exec's `user.username` resolved against the image's `/etc/passwd` and `/etc/group`; and
//! a container config the agent cannot read failing the exec instead of running it as root.

mod common;

use std::path::Path;

use bridge::messages::*;
use bridge::MessageType;
use common::*;
use serde_json::json;

fn error_message(f: &bridge::Frame) -> String {
    let b: ResponseBase = f.decode().unwrap();
    b.error_message
}

/// Runs `args` as an exec in container `id` with `user`; returns (stdout, exit code).
fn exec_as(g: &Gcs, id: &str, user: serde_json::Value, args: &[&str]) -> (String, u32) {
    let mut p = oci_process(args, false);
    p["user"] = user;
    let (r, [_, out, _]) = g.execute(id, Some(p), [false, true, false]);
    let resp: ExecuteProcessResponse = r.decode().unwrap();
    assert_eq!(resp.base.result.0, 0, "{}", body(&r));
    let text = String::from_utf8(read_all(out.unwrap())).unwrap();
    let (rc, code) = g.wait(id, resp.process_id);
    assert_eq!(rc, 0);
    (text, code)
}

/// An exec with `user` that must fail (before any stdio is dialed): (Result, ErrorMessage).
fn exec_fails(g: &Gcs, id: &str, user: serde_json::Value) -> (i32, String) {
    let mut p = oci_process(&["true"], false);
    p["user"] = user;
    let (r, _) = g.execute(id, Some(p), [false, false, false]);
    let resp: ExecuteProcessResponse = r.decode().unwrap();
    (resp.base.result.0, resp.base.error_message)
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn cwd_is_created_inside_the_rootfs_through_dot_dot_and_symlinks() {
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    let rootfs = g.bundle(&id).join("rootfs");
    // A directory beside the bundle that the image tries to reach.
    let outside = g.sb.dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    // `up` climbs far enough to leave the rootfs if resolved on the host.
    std::os::unix::fs::symlink("../../../../../../../../..", rootfs.join("up")).unwrap();
    let target = outside.strip_prefix("/").unwrap();
    let cwd = format!("/up/{}/work", target.display());
    let mut spec = oci_spec(&g.bundle(&id), &["sh", "-c", "pwd -P"], false);
    spec["process"]["cwd"] = json!(cwd);
    let r = g.create_spec(&id, spec);
    assert_eq!(result_of(&r), 0, "create: {}", body(&r));
    assert!(entries(&outside).is_empty(), "created outside the rootfs");
    assert!(rootfs.join(target).join("work").is_dir());

    // The container starts in that directory, as the rootfs sees it.
    let (r, [_, out, _]) = g.execute(&id, None, [false, true, false]);
    let resp: ExecuteProcessResponse = r.decode().unwrap();
    assert_eq!(resp.base.result.0, 0, "{}", body(&r));
    let text = String::from_utf8(read_all(out.unwrap())).unwrap();
    assert_eq!(text, format!("/{}/work\n", target.display()));
    assert_eq!(g.wait(&id, resp.process_id), (0, 0));
    g.next_notification(TIMEOUT).expect("exit notification");
    assert_eq!(
        result_of(&g.simple(MessageType::DeleteContainerState, &id)),
        0
    );
    assert_eq!(result_of(&g.remove_rootfs(&id)), 0);

    // A cwd through a file is refused with the reason, before runc runs.
    let id = unique("c");
    g.add_rootfs(&id);
    let mut spec = oci_spec(&g.bundle(&id), &["true"], false);
    spec["process"]["cwd"] = json!("/etc/passwd/x");
    let r = g.create_spec(&id, spec);
    assert_eq!(result_of(&r), hr(0x80004005));
    let msg = error_message(&r);
    assert!(
        msg.contains("etc/passwd/x") && msg.contains("not a directory"),
        "{msg}"
    );
    assert_eq!(result_of(&g.remove_rootfs(&id)), 0);
}

#[test]
fn exec_users_come_from_the_image_and_an_unreadable_config_fails_the_exec() {
    let g = Gcs::negotiated();
    let id = unique("c");
    g.add_rootfs(&id);
    let rootfs = g.bundle(&id).join("rootfs");
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
    assert_eq!(result_of(&g.create(&id, &["sleep", "100000"], false)), 0);
    let (r, _) = g.execute(&id, None, [false, false, false]);
    let init: ExecuteProcessResponse = r.decode().unwrap();
    assert_eq!(init.base.result.0, 0, "{}", body(&r));

    let ids = ["sh", "-c", "echo $(id -u) $(id -g)"];
    assert_eq!(
        exec_as(&g, &id, json!({"username": "app"}), &ids),
        ("1000 1001\n".into(), 0)
    );
    assert_eq!(
        exec_as(&g, &id, json!({"username": "app:staff"}), &ids),
        ("1000 50\n".into(), 0)
    );
    assert_eq!(
        exec_as(&g, &id, json!({"username": "4242"}), &ids),
        ("4242 0\n".into(), 0)
    );
    let (rc, msg) = exec_fails(&g, &id, json!({"username": "nobody-here"}));
    assert_eq!(rc, hr(0x80004005));
    assert!(
        msg.contains("failed to find user by username \"nobody-here\""),
        "{msg}"
    );

    // Without a readable config the exec would lose the container's user and rlimits.
    let config = g.bundle(&id).join("config.json");
    let saved = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    let (rc, msg) = exec_fails(&g, &id, json!({"uid": 1000, "gid": 1000}));
    assert_eq!(rc, hr(0x80004005));
    assert!(msg.contains("config.json"), "{msg}");
    std::fs::write(&config, b"{broken").unwrap();
    let (rc, msg) = exec_fails(&g, &id, json!({"uid": 1000, "gid": 1000}));
    assert_eq!(rc, hr(0x80004005));
    assert!(msg.contains("not valid JSON"), "{msg}");
    std::fs::write(&config, saved).unwrap();

    let wait = g.wait_async(&id, init.process_id, u32::MAX);
    assert_eq!(result_of(&g.simple(MessageType::ShutdownForced, &id)), 0);
    wait_response(&wait);
    g.next_notification(TIMEOUT).expect("exit notification");
    assert_eq!(
        result_of(&g.simple(MessageType::DeleteContainerState, &id)),
        0
    );
    assert_eq!(result_of(&g.remove_rootfs(&id)), 0);
}

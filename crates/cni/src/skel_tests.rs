use std::cell::RefCell;
use std::collections::HashMap;

use super::*;
use crate::result::{Interface, IpConfig};

/// A handler that records the commands it runs and fails when told to.
#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<Command>>,
    fail: Option<fn() -> PluginError>,
}

impl Recorder {
    fn outcome(&self, args: &CmdArgs) -> Result<(), PluginError> {
        self.calls.borrow_mut().push(args.command);
        match self.fail {
            Some(f) => Err(f()),
            None => Ok(()),
        }
    }
}

impl Handler for &Recorder {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
        self.outcome(args)?;
        Ok(CniResult {
            interfaces: vec![Interface {
                name: args.ifname.clone(),
                mac: "00:15:5d:00:00:01".into(),
                ..Default::default()
            }],
            ips: vec![IpConfig {
                interface: Some(0),
                address: "10.0.0.2/24".parse().unwrap(),
                gateway: Some("10.0.0.1".parse().unwrap()),
            }],
        })
    }
    fn del(&self, args: &CmdArgs) -> Result<(), PluginError> {
        self.outcome(args)
    }
    fn check(&self, args: &CmdArgs) -> Result<(), PluginError> {
        self.outcome(args)
    }
    fn gc(&self, args: &CmdArgs) -> Result<(), PluginError> {
        self.outcome(args)
    }
    fn status(&self, args: &CmdArgs) -> Result<(), PluginError> {
        self.outcome(args)
    }
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
    calls: Vec<Command>,
}

fn env_of(command: &str) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("CNI_CONTAINERID", "ctr1"),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if !command.is_empty() {
        env.insert("CNI_COMMAND".into(), command.into());
    }
    env
}

fn run_with(env: HashMap<String, String>, stdin: &str, rec: &Recorder) -> Run {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = run(
        &|k| env.get(k).cloned(),
        &mut stdin.as_bytes(),
        &mut out,
        &mut err,
        || Ok(rec),
    );
    Run {
        status,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
        calls: rec.calls.borrow().clone(),
    }
}

fn conf(version: &str) -> String {
    format!(r#"{{"cniVersion":"{version}","name":"natNet","type":"nat"}}"#)
}

fn error_of(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", r.stdout))
}

#[test]
fn add_prints_the_result_in_every_supported_version() {
    for v in SUPPORTED_VERSIONS {
        let rec = Recorder::default();
        let r = run_with(env_of("ADD"), &conf(v), &rec);
        assert_eq!(r.status, 0, "{v}: {}", r.stdout);
        assert_eq!(r.calls, [Command::Add]);
        let got: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(got["cniVersion"], *v);
        if *v == "0.2.0" {
            assert_eq!(got["ip4"]["ip"], "10.0.0.2/24");
        } else {
            assert_eq!(got["ips"][0]["address"], "10.0.0.2/24");
            assert_eq!(got["interfaces"][0]["name"], "eth0");
        }
        assert!(!r.stdout.ends_with('\n'));
    }
}

#[test]
fn unsupported_versions_are_code_1_and_the_handler_is_not_run() {
    for (stdin, details) in [
        (conf("0.1.0"), r#"config is "0.1.0""#),
        (conf("0.3.2"), r#"config is "0.3.2""#),
        (conf("2.0.0"), r#"config is "2.0.0""#),
        (
            r#"{"name":"natNet","type":"nat"}"#.to_string(),
            r#"config is "0.1.0""#,
        ),
    ] {
        for cmd in ["ADD", "DEL"] {
            let rec = Recorder::default();
            let r = run_with(env_of(cmd), &stdin, &rec);
            assert_eq!(r.status, 1);
            let e = error_of(&r);
            assert_eq!(e["code"], 1);
            assert_eq!(e["msg"], "incompatible CNI versions");
            assert!(e["details"].as_str().unwrap().starts_with(details), "{e}");
            assert!(r.calls.is_empty());
        }
    }
}

#[test]
fn check_needs_0_4_0_and_gc_status_need_1_1_0() {
    let rec = Recorder::default();
    let r = run_with(env_of("CHECK"), &conf("0.3.1"), &rec);
    assert_eq!(error_of(&r)["msg"], "config version does not allow CHECK");
    assert_eq!(r.status, 1);
    let r = run_with(env_of("CHECK"), &conf("0.4.0"), &rec);
    assert_eq!(r.status, 0, "{}", r.stdout);
    assert_eq!(r.stdout, "");
    for cmd in ["GC", "STATUS"] {
        let rec = Recorder::default();
        let r = run_with(env_of(cmd), &conf("1.0.0"), &rec);
        assert_eq!(
            error_of(&r)["msg"],
            format!("config version does not allow {cmd}")
        );
        let r = run_with(env_of(cmd), &conf("1.1.0"), &rec);
        assert_eq!(r.status, 0, "{}", r.stdout);
        assert_eq!(rec.calls.borrow().len(), 1);
    }
}

#[test]
fn version_prints_the_supported_list_and_echoes_the_input_version() {
    let rec = Recorder::default();
    let mut env = HashMap::new();
    env.insert("CNI_COMMAND".to_string(), "VERSION".to_string());
    // Input that names no version (or none at all) is ignored: the reply carries ours.
    for stdin in ["not json at all", "", r#"{"cniVersion":"x.y"}"#] {
        let r = run_with(env.clone(), stdin, &rec);
        assert_eq!(r.status, 0);
        assert_eq!(
            r.stdout,
            "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.2.0\",\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n"
        );
    }
    // libcni's probe: `{"cniVersion": <its version>}`, echoed.
    for v in ["0.4.0", "1.0.0"] {
        let r = run_with(env.clone(), &format!(r#"{{"cniVersion":"{v}"}}"#), &rec);
        let reply: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(reply["cniVersion"], v);
        assert_eq!(reply["supportedVersions"].as_array().unwrap().len(), 6);
    }
    assert!(rec.calls.borrow().is_empty());
}

#[test]
fn errors_carry_the_configuration_version() {
    let rec = Recorder::default();
    // A protocol check after the configuration was read: its version.
    let mut env = env_of("ADD");
    env.insert("CNI_CONTAINERID".into(), "-bad".into());
    let r = run_with(env, &conf("0.4.0"), &rec);
    assert_eq!(error_of(&r)["cniVersion"], "0.4.0");
    // A handler error: its version.
    let failing = Recorder {
        fail: Some(|| PluginError::Other("boom".into())),
        ..Default::default()
    };
    let r = run_with(env_of("DEL"), &conf("0.3.1"), &failing);
    assert_eq!(error_of(&r)["cniVersion"], "0.3.1");
    // No configuration yet, or one at a version we do not speak: ours.
    let mut env = env_of("ADD");
    env.remove("CNI_PATH");
    let r = run_with(env, &conf("1.0.0"), &rec);
    assert_eq!(error_of(&r)["cniVersion"], "1.1.0");
    let r = run_with(env_of("ADD"), &conf("0.1.0"), &rec);
    let e = error_of(&r);
    assert_eq!(
        (e["code"].as_u64(), e["cniVersion"].as_str()),
        (Some(1), Some("1.1.0"))
    );
}

#[test]
fn no_command_prints_the_about_text_on_stderr() {
    let rec = Recorder::default();
    let r = run_with(env_of(""), "", &rec);
    assert_eq!(r.status, 0);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "CNI plugin WinCni\nCNI protocol versions supported: 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n"
    );
}

#[test]
fn missing_environment_is_code_4_listing_the_variables() {
    let rec = Recorder::default();
    let mut env = env_of("ADD");
    env.remove("CNI_NETNS");
    env.remove("CNI_PATH");
    let r = run_with(env, &conf("1.0.0"), &rec);
    assert_eq!(r.status, 4);
    let e = error_of(&r);
    assert_eq!(e["code"], 4);
    assert_eq!(
        e["msg"],
        "required env variables [CNI_NETNS,CNI_PATH] missing"
    );
    assert!(e.get("details").is_none());

    // GC and STATUS need none of the per-attachment variables, nor CNI_PATH.
    for cmd in ["GC", "STATUS"] {
        let rec = Recorder::default();
        let env: HashMap<String, String> = [("CNI_COMMAND".to_string(), cmd.to_string())].into();
        let r = run_with(env, &conf("1.1.0"), &rec);
        assert_eq!(r.status, 0, "{cmd}: {}", r.stdout);
        assert_eq!(rec.calls.borrow().len(), 1);
    }

    // DEL does not need CNI_NETNS.
    let mut env = env_of("DEL");
    env.remove("CNI_NETNS");
    let r = run_with(env, &conf("1.0.0"), &rec);
    assert_eq!(r.status, 0, "{}", r.stdout);
}

#[test]
fn unknown_command_is_code_4() {
    let rec = Recorder::default();
    let r = run_with(env_of("FROB"), &conf("1.0.0"), &rec);
    assert_eq!(error_of(&r)["msg"], "unknown CNI_COMMAND: FROB");
    assert_eq!(r.status, 4);
}

#[test]
fn config_pre_checks_use_codes_6_and_7() {
    let rec = Recorder::default();
    let r = run_with(env_of("ADD"), "{not json", &rec);
    assert_eq!(error_of(&r)["code"], 6);
    let r = run_with(env_of("ADD"), r#"{"cniVersion":"1.0.0"}"#, &rec);
    assert_eq!(error_of(&r)["code"], 7);
    assert_eq!(error_of(&r)["msg"], "missing network name");
    let r = run_with(
        env_of("ADD"),
        r#"{"cniVersion":"1.0.0","name":"bad name"}"#,
        &rec,
    );
    let e = error_of(&r);
    assert_eq!(
        (e["code"].as_u64(), e["details"].as_str()),
        (Some(7), Some("bad name"))
    );
    // Keys in any case.
    let r = run_with(
        env_of("ADD"),
        r#"{"CNIVERSION":"1.0.0","Name":"natNet"}"#,
        &rec,
    );
    assert_eq!(r.status, 0, "{}", r.stdout);
    assert!(r.stdout.contains("\"cniVersion\": \"1.0.0\""));
}

#[test]
fn container_id_and_ifname_checks() {
    let cases: &[(&str, &str, u64, &str)] = &[
        (
            "CNI_CONTAINERID",
            "-bad",
            4,
            "invalid characters in containerID",
        ),
        (
            "CNI_CONTAINERID",
            "a b",
            4,
            "invalid characters in containerID",
        ),
        (
            "CNI_IFNAME",
            "abcdefghijklmnop",
            4,
            "interface name is too long",
        ),
        ("CNI_IFNAME", "..", 4, "interface name is . or .."),
        (
            "CNI_IFNAME",
            "eth/0",
            4,
            "interface name contains / or : or whitespace characters",
        ),
        (
            "CNI_IFNAME",
            "eth:0",
            4,
            "interface name contains / or : or whitespace characters",
        ),
        (
            "CNI_IFNAME",
            "eth 0",
            4,
            "interface name contains / or : or whitespace characters",
        ),
    ];
    for (var, value, code, msg) in cases {
        let rec = Recorder::default();
        let mut env = env_of("ADD");
        env.insert(var.to_string(), value.to_string());
        let r = run_with(env, &conf("1.0.0"), &rec);
        let e = error_of(&r);
        assert_eq!(e["code"], *code, "{var}={value}");
        assert_eq!(e["msg"], *msg, "{var}={value}");
        assert!(rec.calls.borrow().is_empty());
    }
    assert!(validate_ifname("abcdefghijklmno").is_ok());
    assert_eq!(
        validate_ifname("").unwrap_err().msg,
        "interface name is empty"
    );
}

#[test]
fn handler_errors_carry_their_code_as_json_and_exit_status() {
    let cases: [(fn() -> PluginError, u64); 3] = [
        (
            || PluginError::NetworkNotFound {
                name: "natNet".into(),
                reason: "gone".into(),
            },
            81,
        ),
        (
            || {
                PluginError::hcn(
                    "create endpoint",
                    hcn::Error::Call(hcn::HcnError::new(
                        "hcnCreateEndpoint",
                        hcn::hresult::HCN_E_PORT_ALREADY_EXISTS.value() as i32,
                        "",
                    )),
                )
            },
            71,
        ),
        (|| PluginError::Other("boom".into()), 66),
    ];
    for (fail, code) in cases {
        let rec = Recorder {
            fail: Some(fail),
            ..Default::default()
        };
        let r = run_with(env_of("ADD"), &conf("0.2.0"), &rec);
        assert_eq!(error_of(&r)["code"], code);
        assert_eq!(r.status as u64, code);
        assert!(
            r.stdout
                .starts_with("{\n    \"cniVersion\": \"0.2.0\",\n    \"code\": "),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn handler_is_not_built_for_version_or_failed_checks() {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let env = env_of("ADD");
    let status = run::<&Recorder>(
        &|k| env.get(k).cloned(),
        &mut conf("0.1.0").as_bytes(),
        &mut out,
        &mut err,
        || panic!("the handler must not be built"),
    );
    assert_eq!(status, 1);
    // A handler that cannot be built (no HNS): try again later (11), or for STATUS "not
    // available" (50).
    let unreachable = || {
        Err(PluginError::hcn(
            "reach HNS",
            hcn::Error::NotAvailable("no socket".into()),
        ))
    };
    let status = run::<&Recorder>(
        &|k| env.get(k).cloned(),
        &mut conf("1.0.0").as_bytes(),
        &mut out,
        &mut err,
        unreachable,
    );
    assert_eq!(status, 11);
    let env = env_of("STATUS");
    let status = run::<&Recorder>(
        &|k| env.get(k).cloned(),
        &mut conf("1.1.0").as_bytes(),
        &mut out,
        &mut err,
        unreachable,
    );
    assert_eq!(status, 50);
}

#[test]
fn oversized_stdin_is_code_5() {
    let rec = Recorder::default();
    let big = format!(
        r#"{{"cniVersion":"1.0.0","name":"n","pad":"{}"}}"#,
        "x".repeat(MAX_STDIN)
    );
    let r = run_with(env_of("ADD"), &big, &rec);
    assert_eq!(error_of(&r)["code"], 5);
}

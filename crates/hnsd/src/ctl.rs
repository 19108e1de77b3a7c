//! hnsctl: list, show and delete HNS objects (networks, endpoints, namespaces, load
//! balancers, routes, v1 policy lists), as tables or JSON, like the reference's hnsdiag.

use std::io::Write;

use clap::{Parser, Subcommand, ValueEnum};
use hcn::schema::HostComputeQuery;
use hcn::{Hcn, Result};

/// The object kinds hnsctl knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// HostComputeNetwork.
    Networks,
    /// HostComputeEndpoint.
    Endpoints,
    /// HostComputeNamespace.
    Namespaces,
    /// HostComputeLoadBalancer.
    Loadbalancers,
    /// HostComputeRoute.
    Routes,
    /// HNS v1 policy lists.
    Policylists,
}

/// A command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the objects of a kind.
    List {
        /// The kind.
        kind: Kind,
    },
    /// Show one object (by id, or by name for networks and endpoints).
    Show {
        /// The kind.
        kind: Kind,
        /// Its id or name.
        id: String,
    },
    /// Delete one object by id.
    Delete {
        /// The kind.
        kind: Kind,
        /// Its id.
        id: String,
    },
    /// The HNS version and the supported features.
    Version,
}

/// hnsctl's arguments.
#[derive(Debug, Parser)]
#[command(
    name = "hnsctl",
    about = "Inspect and clean up HNS objects (hnsd or Windows HNS)"
)]
pub struct Args {
    /// Print JSON documents instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// hnsd's socket (default: $HNSD_SOCKET or /run/hnsd/hnsd.sock).
    #[arg(long, global = true)]
    pub socket: Option<std::path::PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

fn id_list(hcn: &Hcn, kind: Kind) -> Result<Vec<serde_json::Value>> {
    let q = HostComputeQuery::default();
    let to = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| hcn::Error::InvalidArgument(format!("encode: {e}")))
    };
    Ok(match kind {
        Kind::Networks => hcn
            .list_networks_query(&q)?
            .iter()
            .map(|x| to(serde_json::to_value(x)))
            .collect::<Result<_>>()?,
        Kind::Endpoints => hcn
            .list_endpoints_query(&q)?
            .iter()
            .map(|x| to(serde_json::to_value(x)))
            .collect::<Result<_>>()?,
        Kind::Namespaces => hcn
            .list_namespaces_query(&q)?
            .iter()
            .map(|x| to(serde_json::to_value(x)))
            .collect::<Result<_>>()?,
        Kind::Loadbalancers => hcn
            .list_load_balancers_query(&q)?
            .iter()
            .map(|x| to(serde_json::to_value(x)))
            .collect::<Result<_>>()?,
        Kind::Routes => hcn
            .list_routes_query(&q)?
            .iter()
            .map(|x| to(serde_json::to_value(x)))
            .collect::<Result<_>>()?,
        Kind::Policylists => hcn::v1::Hns::new(hcn.api().clone())
            .list_policy_list_request()?
            .iter()
            .map(|x| to(serde_json::to_value(x)))
            .collect::<Result<_>>()?,
    })
}

fn columns(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Networks => &[
            ("ID", "ID"),
            ("NAME", "Name"),
            ("TYPE", "Type"),
            ("SUBNETS", "Ipams"),
        ],
        Kind::Endpoints => &[
            ("ID", "ID"),
            ("NAME", "Name"),
            ("NETWORK", "HostComputeNetwork"),
            ("IP", "IpConfigurations"),
            ("MAC", "MacAddress"),
            ("NAMESPACE", "HostComputeNamespace"),
        ],
        Kind::Namespaces => &[
            ("ID", "ID"),
            ("TYPE", "Type"),
            ("NETNS", "NetnsPath"),
            ("RESOURCES", "Resources"),
        ],
        Kind::Loadbalancers => &[
            ("ID", "ID"),
            ("VIPS", "FrontendVIPs"),
            ("PORTS", "PortMappings"),
            ("ENDPOINTS", "HostComputeEndpoints"),
        ],
        Kind::Routes => &[
            ("ID", "ID"),
            ("ENDPOINTS", "HostComputeEndpoints"),
            ("SETTING", "Setting"),
        ],
        Kind::Policylists => &[
            ("ID", "ID"),
            ("REFERENCES", "References"),
            ("POLICIES", "Policies"),
        ],
    }
}

/// A short text for one cell.
fn cell(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "-".into(),
        Some(serde_json::Value::String(s)) if s.is_empty() => "-".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(a)) => {
            let parts: Vec<String> = a
                .iter()
                .map(|x| match x {
                    serde_json::Value::Object(o) => o
                        .get("IpAddress")
                        .or_else(|| o.get("IpAddressPrefix"))
                        .or_else(|| o.get("ExternalPort"))
                        .or_else(|| o.get("DestinationPrefix"))
                        .or_else(|| o.get("Type"))
                        .map(|v| cell(Some(v)))
                        .unwrap_or_else(|| x.to_string()),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join(",")
            }
        }
        Some(serde_json::Value::Object(o)) if o.contains_key("Subnets") => cell(o.get("Subnets")),
        Some(other) => other.to_string(),
    }
}

/// The table of `rows` (one line per object).
pub fn table(kind: Kind, rows: &[serde_json::Value]) -> String {
    let cols = columns(kind);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|(_, key)| match *key {
                    "Ipams" => cell(
                        r.get("Ipams")
                            .and_then(|i| i.get(0))
                            .and_then(|i| i.get("Subnets")),
                    ),
                    k => cell(r.get(k)),
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = cols.iter().map(|(h, _)| h.len()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, items: Vec<&str>| {
        let text: Vec<String> = items
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut out, cols.iter().map(|(h, _)| *h).collect());
    for row in &cells {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    out
}

/// Runs one command against `hcn`, writing to `out`.
pub fn run(hcn: &Hcn, args: &Args, out: &mut dyn Write) -> std::result::Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match &args.command {
        Command::List { kind } => {
            let rows = id_list(hcn, *kind).map_err(|e| e.to_string())?;
            if args.json {
                let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
                writeln!(out, "{text}").map_err(io)?;
            } else {
                write!(out, "{}", table(*kind, &rows)).map_err(io)?;
            }
        }
        Command::Show { kind, id } => {
            let rows = id_list(hcn, *kind).map_err(|e| e.to_string())?;
            let found = rows
                .into_iter()
                .find(|r| {
                    [r.get("ID"), r.get("Name")]
                        .into_iter()
                        .flatten()
                        .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)))
                })
                .ok_or_else(|| format!("no {kind:?} with id or name {id:?}"))?;
            let text = serde_json::to_string_pretty(&found).map_err(|e| e.to_string())?;
            writeln!(out, "{text}").map_err(io)?;
        }
        Command::Delete { kind, id } => {
            let r = match kind {
                Kind::Networks => hcn.delete_network(id),
                Kind::Endpoints => hcn.delete_endpoint(id),
                Kind::Namespaces => hcn.delete_namespace(id),
                Kind::Loadbalancers => hcn.delete_load_balancer(id),
                Kind::Routes => hcn.delete_route(id),
                Kind::Policylists => hcn::v1::Hns::new(hcn.api().clone()).delete_policy_list(id),
            };
            r.map_err(|e| e.to_string())?;
            if !args.json {
                writeln!(out, "deleted {id}").map_err(io)?;
            }
        }
        Command::Version => {
            let g = hcn.get_globals().map_err(|e| e.to_string())?;
            let f = hcn::support::supported_features(g.version);
            if args.json {
                let v = serde_json::json!({"Version": g.version, "SupportedFeatures": f});
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                )
                .map_err(io)?;
            } else {
                writeln!(out, "HNS version {}", g.version).map_err(io)?;
            }
        }
    }
    Ok(())
}

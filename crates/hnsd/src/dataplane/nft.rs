//! The instance's nftables table, built with the `nftables` crate (its JSON schema, applied
//! by `nft -j -f -` in one transaction).
//!
//! Table `ip hnsd_<tag>` (one per hnsd instance, so instances never touch each other's
//! rules) with three NAT chains:
//!
//! * `postrouting` (srcnat): per masquerade rule, `ip saddr S ip daddr E return` for each
//!   exception, then `ip saddr S oifname != <bridge> masquerade`;
//! * `prerouting` and `output` (dstnat): per port mapping or load-balancer frontend,
//!   `[ip daddr VIP | fib daddr type local] tcp|udp dport P dnat to B:port`, with several
//!   backends chosen by `numgen random mod N map {0: B0, …}`.
//!
//! Every change replaces the whole table atomically (add, delete, add again, fill), so the
//! same code installs, updates and reconciles; an empty rule set removes the table.

use std::borrow::Cow;
use std::collections::HashSet;

use hcn::engine::dataplane::{DnatRule, MasqueradeRule, RulesSpec};
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Map, Meta, MetaKey, NamedExpression, NgMode, Numgen,
    Payload, PayloadField, Prefix, SetItem,
};
use nftables::schema::{Chain, NfListObject, Rule, Table};
use nftables::stmt::{Match, Operator, Return, Statement, NAT};
use nftables::types::{NfChainType, NfFamily, NfHook};

/// The table name of instance `tag`.
pub fn table_name(tag: &str) -> String {
    format!("hnsd_{tag}")
}

fn field(protocol: &'static str, name: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(name),
        },
    )))
}

fn prefix(net: ipnet::Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(net.network().to_string().into())),
        len: u32::from(net.prefix_len()),
    }))
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn table(tag: &str) -> Table<'static> {
    Table {
        family: NfFamily::IP,
        name: table_name(tag).into(),
        handle: None,
    }
}

fn chain(tag: &str, name: &'static str, hook: NfHook, prio: i32) -> Chain<'static> {
    Chain {
        family: NfFamily::IP,
        table: table_name(tag).into(),
        name: name.into(),
        _type: Some(NfChainType::NAT),
        hook: Some(hook),
        prio: Some(prio),
        ..Default::default()
    }
}

fn rule(tag: &str, chain: &'static str, expr: Vec<Statement<'static>>) -> Rule<'static> {
    Rule {
        family: NfFamily::IP,
        table: table_name(tag).into(),
        chain: chain.into(),
        expr: expr.into(),
        ..Default::default()
    }
}

fn masquerade_rules(tag: &str, m: &MasqueradeRule) -> Vec<Rule<'static>> {
    let mut out = Vec::new();
    for e in &m.exceptions {
        out.push(rule(
            tag,
            "postrouting",
            vec![
                eq(field("ip", "saddr"), prefix(m.source)),
                eq(field("ip", "daddr"), prefix(*e)),
                Statement::Return(Some(Return {})),
            ],
        ));
    }
    out.push(rule(
        tag,
        "postrouting",
        vec![
            eq(field("ip", "saddr"), prefix(m.source)),
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::Meta(Meta {
                    key: MetaKey::Oifname,
                })),
                right: Expression::String(m.bridge.clone().into()),
                op: Operator::NEQ,
            }),
            Statement::Masquerade(None),
        ],
    ));
    out
}

fn dnat_statements(d: &DnatRule) -> Vec<Statement<'static>> {
    let l4 = if d.protocol == 17 { "udp" } else { "tcp" };
    let mut expr = vec![match d.vip {
        Some(vip) => eq(
            field("ip", "daddr"),
            Expression::String(vip.to_string().into()),
        ),
        None => eq(
            Expression::Named(NamedExpression::Fib(Fib {
                result: FibResult::Type,
                flags: HashSet::from([FibFlag::Daddr]),
            })),
            Expression::String("local".into()),
        ),
    }];
    expr.push(eq(
        field(l4, "dport"),
        Expression::Number(u32::from(d.port)),
    ));
    let addr = if d.backends.len() == 1 {
        Expression::String(d.backends[0].to_string().into())
    } else {
        Expression::Named(NamedExpression::Map(Box::new(Map {
            key: Expression::Named(NamedExpression::Numgen(Numgen {
                mode: NgMode::Random,
                ng_mod: d.backends.len() as u32,
                offset: None,
            })),
            data: Expression::Named(NamedExpression::Set(
                d.backends
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        SetItem::Mapping(
                            Expression::Number(i as u32),
                            Expression::String(b.to_string().into()),
                        )
                    })
                    .collect(),
            )),
        })))
    };
    expr.push(Statement::DNAT(Some(NAT {
        addr: Some(addr),
        family: None,
        port: Some(Expression::Number(u32::from(d.backend_port))),
        flags: None,
    })));
    expr
}

/// The batch that replaces the table of `tag` with `rules` (or removes it when empty).
pub fn batch(tag: &str, rules: &RulesSpec) -> nftables::schema::Nftables<'static> {
    let mut b = Batch::new();
    // `add` then `delete`: removes the table whether or not it existed.
    b.add(NfListObject::Table(table(tag)));
    b.delete(NfListObject::Table(table(tag)));
    if rules.masquerade.is_empty() && rules.dnat.is_empty() {
        return b.to_nftables();
    }
    b.add(NfListObject::Table(table(tag)));
    b.add(NfListObject::Chain(chain(
        tag,
        "postrouting",
        NfHook::Postrouting,
        100,
    )));
    b.add(NfListObject::Chain(chain(
        tag,
        "prerouting",
        NfHook::Prerouting,
        -100,
    )));
    b.add(NfListObject::Chain(chain(
        tag,
        "output",
        NfHook::Output,
        -100,
    )));
    for m in &rules.masquerade {
        for r in masquerade_rules(tag, m) {
            b.add(NfListObject::Rule(r));
        }
    }
    for d in &rules.dnat {
        for c in ["prerouting", "output"] {
            b.add(NfListObject::Rule(rule(tag, c, dnat_statements(d))));
        }
    }
    b.to_nftables()
}

/// Applies `rules` for instance `tag` (on the calling thread's network namespace).
pub fn apply(tag: &str, rules: &RulesSpec) -> Result<(), String> {
    nftables::helper::apply_ruleset(&batch(tag, rules)).map_err(|e| match e {
        nftables::helper::NftablesError::NftFailed { stderr, .. } => {
            format!("nft: {}", stderr.trim())
        }
        e => format!("nft: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_shape() {
        let rules = RulesSpec {
            masquerade: vec![MasqueradeRule {
                source: "10.0.0.0/24".parse().unwrap(),
                exceptions: vec!["10.1.0.0/16".parse().unwrap()],
                bridge: "hab12b0".into(),
            }],
            dnat: vec![DnatRule {
                protocol: 6,
                vip: None,
                port: 8080,
                backends: vec!["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()],
                backend_port: 80,
            }],
        };
        let json = serde_json::to_value(batch("hab12", &rules)).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        // add, delete, add table; 3 chains; 2 masquerade rules; 2 dnat rules.
        assert_eq!(cmds.len(), 3 + 3 + 2 + 2);
        assert_eq!(cmds[1]["delete"]["table"]["name"], "hnsd_hab12");
        let text = json.to_string();
        assert!(text.contains(r#""masquerade":null"#), "{text}");
        assert!(
            text.contains(r#""numgen":{"mod":2,"mode":"random"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""fib":{"flags":["daddr"],"result":"type"}"#),
            "{text}"
        );
        let empty = serde_json::to_value(batch("hab12", &RulesSpec::default())).unwrap();
        assert_eq!(empty["nftables"].as_array().unwrap().len(), 2);
    }
}

//! The instance's nftables table, built with the `nftables` crate (its JSON schema, applied
//! by `nft -j -f -` in one transaction).
//!
//! Table `ip hnsd_<tag>` (one per hnsd instance, so instances never touch each other's
//! rules) with three NAT chains and four maps:
//!
//! * `postrouting` (srcnat): per masquerade rule, `ip saddr S ip daddr E return` for each
//!   exception, then `ip saddr S oifname != <bridge> masquerade`;
//! * `prerouting` and `output` (dstnat): first
//!   `dnat to ip daddr . meta l4proto . th dport map @vip_addr : … map @vip_port`, then
//!   `fib daddr type local dnat to meta l4proto . th dport map @any_addr : … @any_port`:
//!   every port mapping or load-balancer frontend with one backend is an element of those
//!   maps (keyed by VIP or "any local address", protocol and port); then, per frontend with
//!   several backends, `[ip daddr VIP | fib daddr type local] tcp|udp dport P dnat to
//!   numgen random mod N map {0: B0, …} : port`.
//!
//! Why maps: an endpoint's port mappings come and go with the endpoint, and as elements
//! they are added and removed in one small transaction whatever the table holds, instead
//! of rewriting every rule. [`sync`] compares the wanted rules with what it last applied:
//! only elements changed → one `nft` call adding and deleting them; nothing changed → no
//! call; the chains' rules changed (networks, outbound NAT, multi-backend load balancers),
//! nothing applied yet, or an incremental change failed → the whole table is replaced
//! atomically (add, delete, add again, fill), which is also what reconciles after a
//! restart. An empty rule set removes the table. Two frontends with the same key cannot
//! both be elements: the first wins, as the first of two such rules did.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use hcn::engine::dataplane::{DnatRule, MasqueradeRule, RulesSpec};
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Map, Meta, MetaKey, NamedExpression, NgMode, Numgen,
    Payload, PayloadField, Prefix, SetItem,
};
use nftables::schema::{Chain, Element, NfListObject, Rule, SetType, SetTypeValue, Table};
use nftables::stmt::{Match, NATFamily, Operator, Return, Statement, NAT};
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

/// `fib daddr type local`.
fn local_daddr() -> Statement<'static> {
    eq(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Daddr]),
        })),
        Expression::String("local".into()),
    )
}

fn dnat_statements(d: &DnatRule) -> Vec<Statement<'static>> {
    let l4 = proto_name(d.protocol);
    let mut expr = vec![match d.vip {
        Some(vip) => eq(
            field("ip", "daddr"),
            Expression::String(vip.to_string().into()),
        ),
        None => local_daddr(),
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

/// A single-backend frontend as map elements: (VIP or any, protocol, port) → backend.
type Key = (Option<Ipv4Addr>, u8, u16);
type Target = (Ipv4Addr, u16);

/// The wanted table split in what needs rules and what is map elements.
#[derive(Debug, Default, PartialEq)]
struct Layout<'a> {
    masquerade: &'a [MasqueradeRule],
    /// Frontends with several backends.
    dnat_rules: Vec<&'a DnatRule>,
    elements: BTreeMap<Key, Target>,
}

fn layout(rules: &RulesSpec) -> Layout<'_> {
    let mut l = Layout {
        masquerade: &rules.masquerade,
        ..Default::default()
    };
    for d in &rules.dnat {
        let key = (d.vip, d.protocol, d.port);
        match d.backends.as_slice() {
            [b] => {
                // A second frontend with the same key could never match: the first wins.
                l.elements.entry(key).or_insert((*b, d.backend_port));
            }
            _ => l.dnat_rules.push(d),
        }
    }
    l
}

fn is_empty(rules: &RulesSpec) -> bool {
    rules.masquerade.is_empty() && rules.dnat.is_empty()
}

const VIP_ADDR: &str = "vip_addr";
const VIP_PORT: &str = "vip_port";
const ANY_ADDR: &str = "any_addr";
const ANY_PORT: &str = "any_port";

fn proto_name(p: u8) -> &'static str {
    if p == 17 {
        "udp"
    } else {
        "tcp"
    }
}

fn concat(items: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(items))
}

/// The element keys of `key` in its two maps (address and port).
fn element_key(key: &Key) -> Expression<'static> {
    let (vip, proto, port) = *key;
    let mut k = Vec::with_capacity(3);
    if let Some(v) = vip {
        k.push(Expression::String(v.to_string().into()));
    }
    k.push(Expression::String(proto_name(proto).into()));
    k.push(Expression::Number(u32::from(port)));
    concat(k)
}

fn maps_of(key: &Key) -> (&'static str, &'static str) {
    if key.0.is_some() {
        (VIP_ADDR, VIP_PORT)
    } else {
        (ANY_ADDR, ANY_PORT)
    }
}

fn element(tag: &str, map: &'static str, elem: Vec<Expression<'static>>) -> Element<'static> {
    Element {
        family: NfFamily::IP,
        table: table_name(tag).into(),
        name: map.into(),
        elem: elem.into(),
    }
}

/// Adds the elements of `items` to `b` (every target `Some`), or deletes them (every target
/// `None`).
fn elements(b: &mut Batch<'static>, tag: &str, items: &[(Key, Option<Target>)]) {
    let mut per_map: BTreeMap<&'static str, Vec<Expression<'static>>> = BTreeMap::new();
    for (key, target) in items {
        let (amap, pmap) = maps_of(key);
        let k = element_key(key);
        match target {
            Some((addr, port)) => {
                per_map.entry(amap).or_default().push(Expression::List(vec![
                    k.clone(),
                    Expression::String(addr.to_string().into()),
                ]));
                per_map.entry(pmap).or_default().push(Expression::List(vec![
                    k,
                    Expression::Number(u32::from(*port)),
                ]));
            }
            None => {
                per_map.entry(amap).or_default().push(k.clone());
                per_map.entry(pmap).or_default().push(k);
            }
        }
    }
    let adding = items.first().is_some_and(|(_, t)| t.is_some());
    for (map, elems) in per_map {
        let e = NfListObject::Element(element(tag, map, elems));
        if adding {
            b.add(e);
        } else {
            b.delete(e);
        }
    }
}

fn map_def(tag: &str, name: &'static str, vip: bool, port: bool) -> nftables::schema::Map<'static> {
    let mut key = Vec::with_capacity(3);
    if vip {
        key.push(SetType::Ipv4Addr);
    }
    key.push(SetType::InetProto);
    key.push(SetType::InetService);
    nftables::schema::Map {
        family: NfFamily::IP,
        table: table_name(tag).into(),
        name: name.into(),
        set_type: SetTypeValue::Concatenated(key.into()),
        map: SetTypeValue::Single(if port {
            SetType::InetService
        } else {
            SetType::Ipv4Addr
        }),
        ..Default::default()
    }
}

/// `dnat to <key> map @addr : <key> map @port`, the key with or without `ip daddr`.
fn map_dnat(vip: bool) -> Vec<Statement<'static>> {
    let key = || {
        let mut k = Vec::with_capacity(3);
        if vip {
            k.push(field("ip", "daddr"));
        }
        k.push(Expression::Named(NamedExpression::Meta(Meta {
            key: MetaKey::L4proto,
        })));
        k.push(field("th", "dport"));
        concat(k)
    };
    let lookup = |map: &str| {
        Expression::Named(NamedExpression::Map(Box::new(Map {
            key: key(),
            data: Expression::String(format!("@{map}").into()),
        })))
    };
    let (amap, pmap) = if vip {
        (VIP_ADDR, VIP_PORT)
    } else {
        (ANY_ADDR, ANY_PORT)
    };
    let mut out = Vec::with_capacity(2);
    if !vip {
        out.push(local_daddr());
    }
    out.push(Statement::DNAT(Some(NAT {
        addr: Some(lookup(amap)),
        family: Some(NATFamily::IP),
        port: Some(lookup(pmap)),
        flags: None,
    })));
    out
}

/// The batch that replaces the table of `tag` with `rules` (or removes it when empty).
pub fn batch(tag: &str, rules: &RulesSpec) -> nftables::schema::Nftables<'static> {
    let mut b = Batch::new();
    // `add` then `delete`: removes the table whether or not it existed.
    b.add(NfListObject::Table(table(tag)));
    b.delete(NfListObject::Table(table(tag)));
    if is_empty(rules) {
        return b.to_nftables();
    }
    let l = layout(rules);
    b.add(NfListObject::Table(table(tag)));
    for (name, vip, port) in [
        (VIP_ADDR, true, false),
        (VIP_PORT, true, true),
        (ANY_ADDR, false, false),
        (ANY_PORT, false, true),
    ] {
        b.add(NfListObject::Map(Box::new(map_def(tag, name, vip, port))));
    }
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
    for m in l.masquerade {
        for r in masquerade_rules(tag, m) {
            b.add(NfListObject::Rule(r));
        }
    }
    for c in ["prerouting", "output"] {
        b.add(NfListObject::Rule(rule(tag, c, map_dnat(true))));
        b.add(NfListObject::Rule(rule(tag, c, map_dnat(false))));
        for d in &l.dnat_rules {
            b.add(NfListObject::Rule(rule(tag, c, dnat_statements(d))));
        }
    }
    let items: Vec<(Key, Option<Target>)> =
        l.elements.iter().map(|(k, t)| (*k, Some(*t))).collect();
    if !items.is_empty() {
        elements(&mut b, tag, &items);
    }
    b.to_nftables()
}

/// The batch that turns `applied` into `wanted` by adding and deleting map elements alone,
/// or `None` when the chains' rules differ (a full replacement is needed). An empty batch
/// means nothing changes.
fn element_batch(
    tag: &str,
    applied: &RulesSpec,
    wanted: &RulesSpec,
) -> Option<nftables::schema::Nftables<'static>> {
    if is_empty(applied) || is_empty(wanted) {
        return None; // the table appears or goes
    }
    let (old, new) = (layout(applied), layout(wanted));
    if old.masquerade != new.masquerade || old.dnat_rules != new.dnat_rules {
        return None;
    }
    let gone: Vec<(Key, Option<Target>)> = old
        .elements
        .iter()
        .filter(|(k, t)| new.elements.get(k) != Some(t))
        .map(|(k, _)| (*k, None))
        .collect();
    let added: Vec<(Key, Option<Target>)> = new
        .elements
        .iter()
        .filter(|(k, t)| old.elements.get(k) != Some(t))
        .map(|(k, t)| (*k, Some(*t)))
        .collect();
    let mut b = Batch::new();
    if !gone.is_empty() {
        elements(&mut b, tag, &gone);
    }
    if !added.is_empty() {
        elements(&mut b, tag, &added);
    }
    Some(b.to_nftables())
}

fn run(batch: &nftables::schema::Nftables<'_>) -> Result<(), String> {
    nftables::helper::apply_ruleset(batch).map_err(|e| match e {
        nftables::helper::NftablesError::NftFailed { stderr, .. } => {
            format!("nft: {}", stderr.trim())
        }
        e => format!("nft: {e}"),
    })
}

/// Applies `rules` for instance `tag` (on the calling thread's network namespace):
/// `applied` is what the table holds (`None`: unknown), and is updated.
pub fn sync(tag: &str, applied: &mut Option<RulesSpec>, rules: &RulesSpec) -> Result<(), String> {
    if let Some(old) = applied.as_ref() {
        if old == rules {
            return Ok(());
        }
        if let Some(b) = element_batch(tag, old, rules) {
            if b.objects.is_empty() {
                *applied = Some(rules.clone());
                return Ok(());
            }
            match run(&b) {
                Ok(()) => {
                    *applied = Some(rules.clone());
                    return Ok(());
                }
                // The table is not what we left (changed behind our back): rewrite it.
                Err(e) => {
                    tracing::warn!(error = %e, "incremental nft change failed; replacing the table")
                }
            }
        }
    }
    *applied = None;
    run(&batch(tag, rules))?;
    *applied = Some(rules.clone());
    Ok(())
}

/// Replaces the table of instance `tag` with `rules` (on the calling thread's network
/// namespace).
pub fn apply(tag: &str, rules: &RulesSpec) -> Result<(), String> {
    run(&batch(tag, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(port: u16, vip: Option<&str>, backend: &str) -> DnatRule {
        DnatRule {
            protocol: 6,
            vip: vip.map(|v| v.parse().unwrap()),
            port,
            backends: vec![backend.parse().unwrap()],
            backend_port: 80,
        }
    }

    fn base() -> RulesSpec {
        RulesSpec {
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
        }
    }

    fn commands(n: &nftables::schema::Nftables<'_>) -> Vec<serde_json::Value> {
        serde_json::to_value(n).unwrap()["nftables"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn batch_shape() {
        let mut rules = base();
        rules.dnat.push(pm(8081, None, "10.0.0.4"));
        rules.dnat.push(pm(53, Some("10.9.9.9"), "10.0.0.5"));
        // Same key as the one before: the first wins, the second never matched anyway.
        rules.dnat.push(pm(8081, None, "10.0.0.6"));
        let json = serde_json::to_value(batch("hab12", &rules)).unwrap();
        let cmds = commands(&batch("hab12", &rules));
        // add, delete, add table; 4 maps; 3 chains; 2 masquerade rules; per dnat chain 2
        // map rules and 1 numgen rule; elements of the 4 maps.
        assert_eq!(cmds.len(), 3 + 4 + 3 + 2 + 2 * 3 + 4, "{json}");
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
        assert!(text.contains(r#""data":"@any_addr""#), "{text}");
        assert!(
            text.contains(r#"[{"concat":["tcp",8081]},"10.0.0.4"]"#),
            "{text}"
        );
        assert!(
            text.contains(r#"[{"concat":["10.9.9.9","tcp",53]},80]"#),
            "{text}"
        );
        assert!(!text.contains("10.0.0.6"), "{text}");
        let empty = serde_json::to_value(batch("hab12", &RulesSpec::default())).unwrap();
        assert_eq!(empty["nftables"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn endpoint_port_mappings_change_only_elements() {
        let old = base();
        let mut new = base();
        new.dnat.push(pm(8081, None, "10.0.0.4"));
        let add = commands(&element_batch("hab12", &old, &new).unwrap());
        assert_eq!(add.len(), 2, "{add:?}"); // address and port map
        assert_eq!(add[0]["add"]["element"]["name"], "any_addr");
        assert_eq!(add[1]["add"]["element"]["name"], "any_port");
        let del = commands(&element_batch("hab12", &new, &old).unwrap());
        assert_eq!(del.len(), 2, "{del:?}");
        assert_eq!(
            del[0]["delete"]["element"]["elem"],
            serde_json::json!([{"concat": ["tcp", 8081]}])
        );
        // A changed backend: delete then add.
        let mut moved = new.clone();
        moved.dnat[1].backends = vec!["10.0.0.7".parse().unwrap()];
        let cmds = commands(&element_batch("hab12", &new, &moved).unwrap());
        assert_eq!(cmds.len(), 4);
        assert!(cmds[0].get("delete").is_some() && cmds[2].get("add").is_some());
        // Nothing changed: nothing to run.
        assert!(element_batch("hab12", &new, &new.clone())
            .unwrap()
            .objects
            .is_empty());
        // Rules (masquerade, multi-backend) or the table's existence: a full replacement.
        let mut masq = new.clone();
        masq.masquerade.clear();
        assert!(element_batch("hab12", &new, &masq).is_none());
        assert!(element_batch("hab12", &RulesSpec::default(), &new).is_none());
        assert!(element_batch("hab12", &new, &RulesSpec::default()).is_none());
    }
}

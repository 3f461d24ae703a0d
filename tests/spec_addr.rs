//! Runs every case of `spec/addr.yaml` against `AddressPolicy::classify`.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use smokescreen::core::addr::{AddressPolicy, SelfEndpoints, UserRange};

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/addr.yaml"));

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    addr: String,
    port: Option<u16>,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    me: Me,
    expect: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Policy {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    unsafe_allow_private_ranges: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Me {
    #[serde(default)]
    listen: Vec<String>,
    local_ip: Option<String>,
    /// Every address of every local interface.
    #[serde(default)]
    local_addresses: Vec<String>,
}

fn ranges(list: &[String]) -> Result<Vec<UserRange>, String> {
    list.iter()
        .map(|s| s.parse::<UserRange>().map_err(|e| e.to_string()))
        .collect()
}

/// Every entry of a list field, or the first that does not parse.
fn parse_all<T: std::str::FromStr>(what: &str, list: &[String]) -> Result<Vec<T>, String>
where
    T::Err: std::fmt::Display,
{
    list.iter()
        .map(|s| s.parse::<T>().map_err(|e| format!("{what} {s:?}: {e}")))
        .collect()
}

/// Builds the inputs of one case; a malformed case is a failure, not a skip.
fn inputs(c: &Case) -> Result<(SocketAddr, AddressPolicy, AddressPolicy, SelfEndpoints), String> {
    let dst = match c.addr.parse::<SocketAddr>() {
        Ok(sa) => {
            if c.port.is_some() {
                return Err("both addr:port and port given".into());
            }
            sa
        }
        Err(_) => {
            let ip: IpAddr = c
                .addr
                .parse()
                .map_err(|e| format!("addr {:?}: {e}", c.addr))?;
            SocketAddr::new(ip, c.port.unwrap_or(443))
        }
    };
    let allow = ranges(&c.policy.allow)?;
    let deny = ranges(&c.policy.deny)?;
    let unsafe_private = c.policy.unsafe_allow_private_ranges;
    // The same policy built by hand in reverse order: the result must not
    // depend on the order of the ranges.
    let raw = AddressPolicy {
        allow: allow.iter().rev().copied().collect(),
        deny: deny.iter().rev().copied().collect(),
        unsafe_allow_private_ranges: unsafe_private,
    };
    let policy = AddressPolicy::new(allow, deny, unsafe_private);
    let listen: Vec<SocketAddr> = parse_all("listen", &c.me.listen)?;
    let local_ip = match &c.me.local_ip {
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|e| format!("local_ip {s:?}: {e}"))?,
        ),
        None => None,
    };
    let local_addresses: Vec<IpAddr> = parse_all("local_addresses", &c.me.local_addresses)?;
    let me = SelfEndpoints {
        listen,
        local_ip,
        local_addresses: local_addresses.into(),
    };
    Ok((dst, policy, raw, me))
}

#[test]
fn spec_addr_cases() {
    let spec: Spec = match serde_yaml::from_str(SPEC) {
        Ok(s) => s,
        Err(e) => panic!("spec/addr.yaml does not parse: {e}"),
    };
    assert!(spec.cases.len() >= 100, "only {} cases", spec.cases.len());

    let mut names = HashSet::new();
    let mut failures = Vec::new();
    for c in &spec.cases {
        if !names.insert(c.name.as_str()) {
            failures.push(format!("{}: duplicate case name", c.name));
            continue;
        }
        let (dst, policy, raw, me) = match inputs(c) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{}: bad case: {e}", c.name));
                continue;
            }
        };
        let got = policy.classify(dst, &me).to_string();
        if got != c.expect {
            failures.push(format!(
                "{}: {dst} expected {:?}, got {got:?}",
                c.name, c.expect
            ));
        }
        let got_raw = raw.classify(dst, &me).to_string();
        if got_raw != got {
            failures.push(format!(
                "{}: range order changed the result to {got_raw:?}",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

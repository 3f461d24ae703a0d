//! `smokescreen replay --egress-acl-file NEW [--against OLD] [LOG...] [proxy flags]`:
//! re-decide every logged request with a new ACL (and the proxy flags'
//! address rules, using the logged `dst_ip`), print the requests whose
//! decision would change, grouped by role and host, and exit 1 when any
//! would newly be denied, so an ACL change can be gated in CI.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgMatches, Args};

use crate::core::log_read::LoggedDecision;
use crate::tools::logs::{for_each_decision, requests};
use crate::tools::policy::{evaluate, load_matches, Loaded, Query};
use crate::tools::suggest_acl::logged_target;
use crate::tools::{Env, ToolError};

pub const USAGE: &str = "\
Usage: smokescreen replay --egress-acl-file NEW [--against OLD] [LOG...] [PROXY FLAGS]

Re-decides every CANONICAL-PROXY-DECISION line of the logs (logrus text or
JSON; files, .gz files, or stdin when no LOG or `-` is given; other lines are
skipped and counted) with the ACL NEW and the proxy flags' address rules,
using each request's logged destination address. Prints the requests whose
decision would change, grouped by role and host, with counts.

  --egress-acl-file NEW   the ACL to try
  --against OLD           compare with this ACL instead of the logged decisions

Exit 0 when nothing would newly be denied, 1 when something would, 2 for
usage errors and unreadable or invalid files.
";

#[derive(Args, Debug)]
pub struct ReplayArgs {
    logs: Vec<PathBuf>,
    #[arg(long, value_name = "OLD")]
    against: Option<PathBuf>,
}

/// How a request's decision changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    NewlyDenied,
    NewlyAllowed,
}

/// One re-decided request kind (cached per distinct role, host and address).
#[derive(Clone, Debug)]
struct Verdict {
    /// `None`: unchanged.
    change: Option<Change>,
    reason: String,
}

#[derive(Default)]
struct Group {
    requests: u64,
    reason: String,
}

/// The address the request reached or was refused at: `dst_ip`, or the
/// one named in an address denial's `error`.
fn logged_address(d: &LoggedDecision<'_>) -> Option<IpAddr> {
    if let Some(ip) = d.dst_ip.as_deref().and_then(|ip| ip.parse().ok()) {
        return Some(ip);
    }
    let error = d.error.as_deref()?;
    let rest = error.strip_prefix("The destination address (")?;
    rest[..rest.find(')')?].parse().ok()
}

fn query(d: &LoggedDecision<'_>) -> Option<Query> {
    let (host, port) = logged_target(&d.requested_host)?;
    Some(Query {
        role: d.role.to_string(),
        host: host.acl_str().into_owned(),
        port,
        addresses: logged_address(d).into_iter().collect(),
    })
}

fn judge(new: &Loaded, old: Option<&Loaded>, d: &LoggedDecision<'_>) -> Option<Verdict> {
    let q = query(d)?;
    let now = evaluate(new, &q);
    let before = match old {
        Some(old) => evaluate(old, &q).allow,
        None => d.allow,
    };
    let change = match (before, now.allow) {
        (true, false) => Some(Change::NewlyDenied),
        (false, true) => Some(Change::NewlyAllowed),
        _ => None,
    };
    Some(Verdict {
        change,
        reason: now.reason,
    })
}

pub fn run(
    args: &ReplayArgs,
    matches: &ArgMatches,
    env: &Env<'_>,
    out: &mut String,
) -> Result<i32, ToolError> {
    if matches.value_source("egress-acl-file").is_none() {
        return Err(ToolError::Usage(format!(
            "--egress-acl-file NEW is required\n\n{USAGE}"
        )));
    }
    let new = load_matches(matches, env.vars)?;
    let old = match &args.against {
        Some(path) => {
            let acl_source = new.acl_source.with_path(path);
            let (acl, warnings) = acl_source.load().map_err(ToolError::Acl)?;
            let mut policy = new.policy.clone();
            policy.acl = Some(acl);
            Some(Loaded {
                config: new.config.clone(),
                policy,
                me: new.me.clone(),
                warnings,
                acl_source,
                password_set: new.password_set,
            })
        }
        None => None,
    };
    let mut cache: HashMap<String, Option<Verdict>> = HashMap::new();
    let mut key = String::new();
    let mut groups: BTreeMap<(Change, String, String), Group> = BTreeMap::new();
    let mut unreadable = 0u64;
    let counts = for_each_decision(&args.logs, |d| {
        key.clear();
        let dst = d.dst_ip.as_deref().or(d.error.as_deref()).unwrap_or("");
        for part in [&d.role, &d.requested_host, dst] {
            key.push_str(part);
            key.push('\0');
        }
        key.push_str(if d.allow { "1" } else { "0" });
        let verdict = match cache.get(key.as_str()) {
            Some(v) => v,
            None => cache
                .entry(key.clone())
                .or_insert_with(|| judge(&new, old.as_ref(), d)),
        };
        match verdict {
            None => unreadable += 1,
            Some(Verdict {
                change: Some(change),
                reason,
            }) => {
                let g = groups
                    .entry((*change, d.role.to_string(), d.requested_host.to_string()))
                    .or_default();
                g.requests += 1;
                if g.reason.is_empty() {
                    g.reason.clone_from(reason);
                }
            }
            Some(_) => {}
        }
    })?;
    let _ = writeln!(out, "replay: {counts}");
    if unreadable > 0 {
        let _ = writeln!(
            out,
            "replay: skipped {} with an unreadable host",
            requests(unreadable)
        );
    }
    let against = match &old {
        Some(o) => o.acl_source.describe(),
        None => "the logged decisions".to_string(),
    };
    let _ = writeln!(
        out,
        "policy: ACL {} against {against}",
        new.acl_source.describe()
    );
    let mut newly_denied = 0;
    for (change, title) in [
        (Change::NewlyDenied, "newly denied"),
        (Change::NewlyAllowed, "newly allowed"),
    ] {
        let mine: Vec<_> = groups
            .iter()
            .filter(|((c, _, _), _)| *c == change)
            .collect();
        let total: u64 = mine.iter().map(|(_, g)| g.requests).sum();
        if change == Change::NewlyDenied {
            newly_denied = total;
        }
        let _ = writeln!(
            out,
            "{title}: {} to {} role/host pairs",
            requests(total),
            mine.len()
        );
        let mut role = None;
        for ((_, r, host), g) in mine {
            if role != Some(r) {
                let _ = writeln!(out, "  role {r:?}");
                role = Some(r);
            }
            let _ = writeln!(out, "    {host:?}: {} ({})", requests(g.requests), g.reason);
        }
    }
    Ok(if newly_denied > 0 { 1 } else { 0 })
}

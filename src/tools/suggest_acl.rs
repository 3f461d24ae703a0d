//! `smokescreen suggest-acl [LOG...] [-o FILE] [--merge ACL] [--glob-threshold N]`:
//! read decision lines and write an `enforce` ACL that allows what was seen.
//!
//! Per role, every host the proxy let through or that `enforce` would have
//! denied becomes an `allowed_domains` entry (unless the base ACL already
//! allows it), siblings collapse into `*.parent` globs, and what no ACL can
//! allow (address-rule denials, the global deny list) is listed apart in
//! comments. Memory holds one counter per distinct role and host.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::config::acl_source::AclSource;
use crate::core::acl::Acl;
use crate::core::log_read::LoggedDecision;
use crate::core::suggest::{self, collapse, Lesson, Need, Seen};
use crate::core::target::{normalise_host, parse_connect_target, Host};
use crate::tools::acl_text::{self, Addition};
use crate::tools::logs::{for_each_decision, requests, LineCounts};
use crate::tools::ToolError;

pub const USAGE: &str = "\
Usage: smokescreen suggest-acl [LOG...] [-o FILE] [--merge ACL] [--glob-threshold N]

Reads CANONICAL-PROXY-DECISION lines (logrus text or JSON; files, .gz files,
or stdin when no LOG or `-` is given; other lines are skipped and counted)
and writes an ACL with `action: enforce` that allows what was seen: per role,
the hosts that enforce would have denied, each with its request count and
last-seen time. Addresses denied by the address rules (which no ACL entry
can allow) and hosts on the global deny list are listed apart.

  -o, --output FILE       write the ACL here instead of stdout
  --merge ACL             add to this ACL file, keeping its comments and order
  --glob-threshold N      collapse N or more sibling hosts into *.parent
                          (default: 5; 0 never globs); never over a public
                          suffix such as co.uk or github.io

Exit 0 on success, 2 for usage errors and unreadable files.
";

#[derive(Args, Debug)]
pub struct SuggestArgs {
    logs: Vec<PathBuf>,
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[arg(long)]
    merge: Option<PathBuf>,
    #[arg(long, default_value = "5")]
    glob_threshold: String,
}

/// Counters per role and logged `requested_host` (normalised once per
/// distinct value, after reading).
#[derive(Default)]
struct Tally {
    /// role → requested_host → (project, seen)
    hosts: HashMap<String, HashMap<String, (String, Seen)>>,
    /// (role, requested_host, error) → seen, for address-rule denials.
    address_denied: BTreeMap<(String, String, String), Seen>,
    /// (role, requested_host) → seen, for the global deny list.
    globally_denied: BTreeMap<(String, String), Seen>,
    no_role: u64,
}

impl Tally {
    fn add(&mut self, d: &LoggedDecision<'_>) {
        match suggest::lesson(d) {
            Lesson::NoRole => self.no_role += 1,
            Lesson::AddressDenied => {
                let key = (
                    d.role.to_string(),
                    d.requested_host.to_string(),
                    d.error.as_deref().unwrap_or("").to_string(),
                );
                self.address_denied.entry(key).or_default().add(1, &d.time);
            }
            Lesson::GloballyDenied => {
                let key = (d.role.to_string(), d.requested_host.to_string());
                self.globally_denied.entry(key).or_default().add(1, &d.time);
            }
            Lesson::Host => {
                let by_host = match self.hosts.get_mut(d.role.as_ref()) {
                    Some(m) => m,
                    None => self.hosts.entry(d.role.to_string()).or_default(),
                };
                let slot = match by_host.get_mut(d.requested_host.as_ref()) {
                    Some(s) => s,
                    None => by_host
                        .entry(d.requested_host.to_string())
                        .or_insert_with(|| (d.project.to_string(), Seen::default())),
                };
                slot.1.add(1, &d.time);
            }
        }
    }
}

/// The host of a logged `requested_host` (`host:port`, or a bare host for
/// HTTP without a port), as the ACL matches it.
pub fn logged_host(requested: &str) -> Option<Host> {
    logged_target(requested).map(|(host, _)| host)
}

/// A logged `requested_host` as host and port: `host:port` (CONNECT), or a
/// bare host (plain HTTP, port 80).
pub fn logged_target(requested: &str) -> Option<(Host, u16)> {
    parse_connect_target(requested)
        .map(|t| (t.host, t.port))
        .or_else(|_| normalise_host(requested).map(|h| (h, 80)))
        .ok()
}

/// What was learnt, per role, ready to render.
struct Suggestion {
    additions: Vec<Addition>,
    /// Comment lines for what no ACL entry can allow.
    apart: Vec<String>,
    unparsable_hosts: u64,
}

fn suggest(tally: Tally, base: Option<&Acl>, threshold: usize) -> Suggestion {
    let mut unparsable_hosts = 0;
    let mut apart = Vec::new();
    let mut per_role: BTreeMap<String, (String, BTreeMap<String, Seen>)> = BTreeMap::new();
    let mut globally_denied = tally.globally_denied;
    for (role, hosts) in tally.hosts {
        for (requested, (project, seen)) in hosts {
            let Some(host) = logged_host(&requested) else {
                unparsable_hosts += seen.requests;
                continue;
            };
            let name = host.acl_str().into_owned();
            match suggest::need(base, &role, &name) {
                Need::Covered => {}
                Need::GloballyDenied => globally_denied
                    .entry((role.clone(), requested))
                    .or_default()
                    .add(seen.requests, &seen.last_seen),
                Need::Entry => {
                    let slot = per_role.entry(role.clone()).or_default();
                    if slot.0.is_empty() {
                        slot.0 = project.clone();
                    }
                    slot.1
                        .entry(name)
                        .or_default()
                        .add(seen.requests, &seen.last_seen);
                }
            }
        }
    }
    let is_suffix = |name: &str| psl::suffix_str(name) == Some(name);
    let additions = per_role
        .into_iter()
        .map(|(role, (project, hosts))| Addition {
            entries: collapse(&hosts, threshold, &is_suffix),
            role,
            project,
        })
        .collect();
    if !tally.address_denied.is_empty() {
        apart.push("Denied by the address rules; no ACL entry can allow these (see --allow-range, --allow-address):".to_string());
        for ((role, host, error), seen) in tally.address_denied {
            apart.push(format!(
                "  role {role:?}, {host:?}: {error:?} ({})",
                requests(seen.requests)
            ));
        }
    }
    if !globally_denied.is_empty() {
        apart.push("On the global deny list; not added:".to_string());
        for ((role, host), seen) in globally_denied {
            apart.push(format!(
                "  role {role:?}, {host:?} ({})",
                requests(seen.requests)
            ));
        }
    }
    Suggestion {
        additions,
        apart,
        unparsable_hosts,
    }
}

/// Comment lines may hold log text only escaped, on one line.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn run(args: &SuggestArgs, out: &mut String, err: &mut String) -> Result<i32, ToolError> {
    let threshold: usize = args.glob_threshold.parse().map_err(|_| {
        ToolError::Usage(format!(
            "invalid value {:?} for --glob-threshold: expected a whole number",
            args.glob_threshold
        ))
    })?;
    let base = match &args.merge {
        Some(path) => {
            let source = AclSource {
                path: Some(path.clone()),
                disabled: Vec::new(),
                mitm_ca: false,
            };
            let (acl, _) = source.load_rules().map_err(ToolError::Acl)?;
            let text = std::fs::read_to_string(path).map_err(|e| ToolError::Log {
                path: path.display().to_string(),
                problem: e.to_string(),
            })?;
            Some((acl, text))
        }
        None => None,
    };
    let mut tally = Tally::default();
    let counts = for_each_decision(&args.logs, |d| tally.add(d))?;
    let no_role = tally.no_role;
    let s = suggest(tally, base.as_ref().map(|(acl, _)| acl), threshold);
    let mut header = vec![
        "Entries with request counts were suggested by `smokescreen suggest-acl`: review before use.".to_string(),
        format!("From {counts}."),
    ];
    header.extend(s.apart.iter().map(|l| comment(l)));
    let text = match &base {
        None => acl_text::render(&header, &s.additions),
        Some((_, text)) => {
            let mut merged = acl_text::merge(text, &s.additions).map_err(|e| {
                ToolError::Usage(format!(
                    "cannot merge into {}: {e}",
                    args.merge
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ))
            })?;
            merged.push('\n');
            for line in &header {
                let _ = writeln!(merged, "# {line}");
            }
            merged
        }
    };
    check_result(&text, &s.additions)?;
    summarise(err, &counts, no_role, s.unparsable_hosts, &s.additions);
    match &args.output {
        Some(path) => std::fs::write(path, &text).map_err(|e| ToolError::Log {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?,
        None => out.push_str(&text),
    }
    Ok(0)
}

/// The written ACL must load and allow every suggested entry: a merge that
/// landed in the wrong place fails here, not in production.
fn check_result(text: &str, additions: &[Addition]) -> Result<(), ToolError> {
    let internal = |problem: String| {
        ToolError::Internal(format!("the suggested ACL {problem}; please report this"))
    };
    let (acl, _) =
        Acl::from_yaml(text, &[]).map_err(|e| internal(format!("does not load: {e}")))?;
    for a in additions {
        for e in &a.entries {
            let probe = match e.pattern.strip_prefix("*.") {
                Some(parent) => format!("suggest-acl-probe.{parent}"),
                None => e.pattern.clone(),
            };
            if suggest::need(Some(&acl), &a.role, &probe) != Need::Covered {
                return Err(internal(format!(
                    "does not allow {} for role {:?}",
                    e.pattern, a.role
                )));
            }
        }
    }
    Ok(())
}

fn summarise(
    err: &mut String,
    counts: &LineCounts,
    no_role: u64,
    unparsable: u64,
    additions: &[Addition],
) {
    let entries: usize = additions.iter().map(|a| a.entries.len()).sum();
    let _ = writeln!(
        err,
        "suggest-acl: {counts}; {entries} entries for {} roles",
        additions.len()
    );
    if no_role + unparsable > 0 {
        let _ = writeln!(
            err,
            "suggest-acl: ignored {no_role} requests without a role and {unparsable} with an unreadable host"
        );
    }
}

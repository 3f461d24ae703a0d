//! `smokescreen check-config [proxy flags]`: load every file the proxy would
//! load, run its start-up checks and report. Exit 0 when the proxy would start.

use std::fmt::Write as _;

use clap::{ArgMatches, Args};

use crate::config::startup;
use crate::config::PASSWORD_ENV;
use crate::tools::policy::load_matches;
use crate::tools::{Env, ToolError};

pub const USAGE: &str = "\
Usage: smokescreen check-config [PROXY FLAGS]

Loads the configuration, hosts and ACL files exactly as the proxy would,
prints a summary and exits: 0 when the proxy would start, 2 when it would not.
";

#[derive(Args, Debug)]
pub struct CheckConfigArgs {}

pub fn run(matches: &ArgMatches, env: &Env<'_>, out: &mut String) -> Result<i32, ToolError> {
    let loaded = load_matches(matches, env.vars)?;
    let c = &loaded.config;
    let would_not_start = |e: String| ToolError::WouldNotStart(e);
    startup::check_proxy_protocol(c).map_err(|e| would_not_start(e.to_string()))?;
    if let Some(tls) = &c.tls {
        (env.tls_check)(tls).map_err(would_not_start)?;
    }
    (env.mitm_check)(c).map_err(would_not_start)?;
    startup::resolver_servers(&c.resolver_addresses).map_err(|e| would_not_start(e.to_string()))?;
    if let Some(f) = &c.config_file {
        let _ = writeln!(out, "config file: {}", f.display());
    }
    if let Some(f) = &c.hosts_file {
        let _ = writeln!(out, "hosts file: {}", f.display());
    }
    let _ = writeln!(out, "listen: {}", c.listen);
    match &c.metrics {
        Some(m) => {
            let _ = writeln!(
                out,
                "metrics: {}{} (health: /healthz)",
                m.listen, m.endpoint
            );
        }
        None => {
            let _ = writeln!(out, "metrics: off");
        }
    }
    if let Some(s) = &c.statsd_address {
        let _ = writeln!(out, "statsd: {s}");
    }
    for (kind, proxy) in [("https", &c.upstream.https), ("http", &c.upstream.http)] {
        if let Some(p) = proxy {
            let _ = writeln!(out, "upstream {kind} proxy: {}", p.authority);
        }
    }
    let acl = loaded.policy.acl.as_ref();
    let services = acl.map(|a| a.rule_names().count()).unwrap_or(0);
    let has_default = acl.is_some_and(|a| a.default_rule().is_some());
    let _ = writeln!(
        out,
        "egress ACL: {} (services: {services}, default rule: {})",
        loaded.acl_source.describe(),
        if has_default { "yes" } else { "no" }
    );
    for w in &loaded.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if !loaded.password_set && !c.allow_unauthenticated {
        let _ = writeln!(
            out,
            "note: {PASSWORD_ENV} is not set here; the proxy needs it to start"
        );
    }
    let _ = writeln!(out, "configuration OK");
    Ok(0)
}

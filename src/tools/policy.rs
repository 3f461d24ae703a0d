//! What every tool shares: the proxy's policy loaded from proxy flags, and
//! one request judged by the core's own `before_dns_as` / `after_dns`.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use clap::ArgMatches;

use crate::config::acl_source::AclSource;
use crate::config::{self, Config, PASSWORD_ENV};
use crate::core::addr::{Rule, SelfEndpoints};
use crate::core::auth::{AuthMode, Role};
use crate::core::decision::{self, Lookup, Policy};
use crate::core::mitm;
use crate::core::record::ProxyType;
use crate::core::target::{normalise_host, Target};
use crate::tools::ToolError;

/// The policy the proxy would run with.
pub struct Loaded {
    pub config: Config,
    pub policy: Policy,
    pub me: SelfEndpoints,
    pub warnings: Vec<String>,
    /// Where the ACL came from, for messages.
    pub acl_source: AclSource,
    /// Whether `PROXY_PASSWORD` was set (the tools do not need it).
    pub password_set: bool,
}

/// The tools never authenticate anyone: a placeholder password keeps the
/// config layer from insisting on a secret that CI machines should not have.
fn env_for_tools<'a>(
    env: &'a dyn Fn(&str) -> Option<String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        if name == PASSWORD_ENV {
            Some("policy-tools-placeholder".to_string())
        } else {
            env(name)
        }
    }
}

/// Load from the proxy flags a tool's command line carried (clap matches
/// of a subcommand that takes the proxy's flags, [`config::proxy_args`]).
pub fn load_matches(
    matches: &ArgMatches,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ToolError> {
    let config = config::load_matches(matches, &env_for_tools(env)).map_err(ToolError::Config)?;
    finish(config, env)
}

/// Load from proxy flags as text (no program name), e.g. a cases file's `flags`.
pub fn load_args(
    proxy_args: &[std::ffi::OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ToolError> {
    let mut argv = vec![std::ffi::OsString::from("smokescreen")];
    argv.extend(proxy_args.iter().cloned());
    let config = match config::load(argv, &env_for_tools(env)).map_err(ToolError::Config)? {
        config::Command::Run(c) => *c,
        config::Command::PrintAndExit { text, .. } => return Err(ToolError::Usage(text)),
    };
    finish(config, env)
}

fn finish(config: Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ToolError> {
    let password_set = env(PASSWORD_ENV).is_some_and(|p| !p.is_empty());
    let acl_source = AclSource::of(&config);
    // The tools show header names only, so they read no secret: an ACL
    // naming `${env:..}` can be checked where the secret is not set.
    let (acl, warnings) = acl_source.load_without_secrets().map_err(ToolError::Acl)?;
    let policy = Policy {
        auth: AuthMode::Unauthenticated,
        acl: Some(acl),
        addresses: config.address_policy.clone(),
        deny_message_extra: config.deny_message_extra.clone(),
        allow_missing_role: config.allow_missing_role,
    };
    let mut listen = vec![config.listen];
    if let Some(m) = &config.metrics {
        listen.push(m.listen);
    }
    Ok(Loaded {
        me: SelfEndpoints {
            listen,
            ..SelfEndpoints::default()
        },
        config,
        policy,
        warnings,
        acl_source,
        password_set,
    })
}

/// One request to judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub role: String,
    pub host: String,
    pub port: u16,
    /// What the host resolves to; empty: judge a name by the ACL only.
    pub addresses: Vec<IpAddr>,
}

/// What the proxy would do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub allow: bool,
    /// The decision reason, as logged in `decision_reason` (or the host error).
    pub reason: String,
    /// The ACL rule that applied: a service name, `default_rule`,
    /// `global_deny_list`, `global_allow_list`, or empty when none did.
    pub rule: String,
    pub project: String,
    pub enforce_would_deny: bool,
    /// Each address with the rule that classified it, in answer order.
    pub addresses: Vec<(IpAddr, Rule)>,
    /// The address that would be dialled.
    pub dial: Option<SocketAddr>,
    /// The rule that decided the address step, when it ran.
    pub address_rule: Option<Rule>,
    /// For a deny: the text the client would receive.
    pub message: Option<String>,
    /// For an address deny: the log's `error` text.
    pub error: Option<String>,
    /// When the tunnel would be intercepted (`mitm_domains`): the entry and
    /// the names of the headers added (never their values).
    pub intercept: Option<String>,
}

impl Outcome {
    fn refused(reason: String) -> Outcome {
        Outcome {
            allow: false,
            reason,
            rule: String::new(),
            project: String::new(),
            enforce_would_deny: false,
            addresses: Vec::new(),
            dial: None,
            address_rule: None,
            message: None,
            error: None,
            intercept: None,
        }
    }
}

/// Accept `::1` as well as `[::1]`: people type addresses bare.
fn host_text(raw: &str) -> String {
    if raw.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{raw}]")
    } else {
        raw.to_string()
    }
}

/// Judge one request with the core, in the proxy's order: host, ACL, addresses.
pub fn evaluate(loaded: &Loaded, q: &Query) -> Outcome {
    let shown = host_text(&q.host);
    let requested = format!("{shown}:{}", q.port);
    let host = match normalise_host(&shown) {
        Ok(h) => h,
        Err(e) => {
            // The proxy answers such a request 400 before any policy runs.
            let mut out = Outcome::refused(format!("invalid host: {e}"));
            out.message = Some(e.to_string());
            return out;
        }
    };
    let target = Target {
        host,
        port: q.port,
        requested,
    };
    let policy = &loaded.policy;
    let rule_of = |reason| match (&policy.acl, reason) {
        (Some(acl), Some(reason)) => acl.rule_applied(&q.role, reason).to_string(),
        _ => String::new(),
    };
    let pending =
        match decision::before_dns_as(policy, &target, ProxyType::Connect, Role(q.role.clone())) {
            Ok(p) => p,
            Err(refusal) => {
                let v = &refusal.verdicts;
                let mut out = Outcome::refused(v.reason.clone());
                out.rule = rule_of(v.acl_reason);
                out.project = v.project.clone();
                out.enforce_would_deny = v.enforce_would_deny;
                out.message = Some(refusal.message.clone());
                return out;
            }
        };
    let v = &pending.verdicts;
    let mut out = Outcome::refused(v.reason.clone());
    out.intercept = v.intercept.as_deref().map(mitm::describe);
    out.rule = rule_of(v.acl_reason);
    out.project = v.project.clone();
    out.enforce_would_deny = v.enforce_would_deny;
    let answers: Vec<IpAddr> = match &pending.lookup {
        Lookup::Literal(ip) => vec![*ip],
        Lookup::Name(_) => q.addresses.clone(),
    };
    if answers.is_empty() {
        out.allow = true;
        return out;
    }
    // Every answer's rule, for the report (after_dns stops at the first allowed).
    out.addresses = answers
        .iter()
        .map(|ip| {
            let rule = policy
                .addresses
                .classify(SocketAddr::new(*ip, q.port), &loaded.me);
            (*ip, rule)
        })
        .collect();
    match decision::after_dns(policy, pending, Ok(&answers), &loaded.me) {
        Ok(approved) => {
            out.allow = true;
            out.dial = Some(approved.addr);
            out.address_rule = out
                .addresses
                .iter()
                .find(|(ip, _)| *ip == approved.addr.ip())
                .map(|(_, r)| *r);
        }
        Err(refusal) => {
            out.reason = refusal.verdicts.reason.clone();
            out.enforce_would_deny = refusal.verdicts.enforce_would_deny;
            out.address_rule = refusal.rejected.first().map(|(_, r)| *r);
            out.message = Some(refusal.message.clone());
            out.error = refusal.error.clone();
        }
    }
    out
}

/// Render an outcome as `key: value` lines.
pub fn render(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "decision: {}", if o.allow { "allow" } else { "deny" });
    let _ = writeln!(s, "reason: {}", o.reason);
    let _ = writeln!(s, "rule: {}", o.rule);
    let _ = writeln!(s, "project: {}", o.project);
    let _ = writeln!(s, "enforce_would_deny: {}", o.enforce_would_deny);
    for (ip, rule) in &o.addresses {
        let _ = writeln!(s, "address: {ip} {rule}");
    }
    if let Some(rule) = o.address_rule {
        let _ = writeln!(s, "address_rule: {rule}");
    }
    if let Some(dial) = o.dial {
        let _ = writeln!(s, "dial: {dial}");
    }
    if let (true, Some(i)) = (o.allow, &o.intercept) {
        let _ = writeln!(s, "mitm: {i}");
    }
    if o.allow && o.addresses.is_empty() {
        let _ = writeln!(
            s,
            "note: addresses not checked; pass --address with what the name resolves to"
        );
    }
    if let Some(e) = &o.error {
        let _ = writeln!(s, "error: {e}");
    }
    if let Some(m) = &o.message {
        let _ = writeln!(s, "message: {m}");
    }
    s
}

/// An address as people type it: bare or in brackets (the config's parser,
/// with the tools' wording).
pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    crate::config::values::parse_ip(text)
        .map_err(|_| "expected an IPv4 or IPv6 address".to_string())
}

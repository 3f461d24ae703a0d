//! Policy tools for people who only have the binary:
//!
//! - `smokescreen check --role R --host H [--address IP]... [--port P] [proxy flags]`:
//!   what the proxy would decide for one request. Exit 0 allow, 1 deny.
//! - `smokescreen test-policy CASES.yaml [proxy flags]`: a table of expected
//!   decisions, one PASS/FAIL line each. Exit 0 when all pass, 1 otherwise.
//! - `smokescreen check-config [proxy flags]`: load every file the proxy would
//!   load and report. Exit 0 when the proxy would start.
//!
//! Exit 2 for usage errors and unreadable or invalid files. The proxy flags
//! (`--egress-acl-file`, `--config-file`, `--allow-range`, ...) are parsed
//! by the proxy's own [`crate::config::load`], and the ACL by the proxy's own
//! loader, so a tool can never accept what the proxy would refuse. The
//! decision itself is the core's: [`normalise_host`], [`Acl::decide`] and
//! [`decision::after_dns`] (which calls `AddressPolicy::classify`).
#![allow(clippy::disallowed_methods)] // the tools read files named on their command line

use std::ffi::OsString;
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{self, Command, Config, ConfigError, PASSWORD_ENV};
use crate::core::acl::{Acl, Reason, DEFAULT_RULE, GLOBAL_ALLOW_LIST, GLOBAL_DENY_LIST};
use crate::core::addr::{Rule, SelfEndpoints};
use crate::core::auth::{AuthMode, AUTHED_ROLE};
use crate::core::decision::{self, Lookup, Pending, Policy, Verdicts};
use crate::core::record::ProxyType;
use crate::core::reply::denied_message;
use crate::core::target::{normalise_host, Host, Target};
use crate::shell::signals::{load_acl, AclSource};

/// The subcommands, as typed.
pub const SUBCOMMANDS: [&str; 3] = ["check", "test-policy", "check-config"];

/// What a tool printed and its exit status (kept apart from the process
/// so tests can run the tools in-process).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Why a tool could not run. `Display` is the one line printed to stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolError {
    /// Bad tool arguments; the text says which.
    Usage(String),
    /// The proxy's flags or files were refused, exactly as the proxy would refuse them.
    Config(ConfigError),
    /// The ACL file did not load.
    Acl(String),
    /// The cases file could not be read or parsed.
    Cases { path: PathBuf, problem: String },
    /// The proxy would refuse to start (PROXY protocol without trusted
    /// ranges, unusable TLS files, an unresolvable DNS server).
    WouldNotStart(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(text) => f.write_str(text),
            ToolError::Config(e) => write!(f, "{e}"),
            ToolError::Acl(text) => write!(f, "could not load egress ACL: {text}"),
            ToolError::Cases { path, problem } => write!(f, "{}: {problem}", path.display()),
            ToolError::WouldNotStart(why) => write!(f, "the proxy would not start: {why}"),
        }
    }
}

impl std::error::Error for ToolError {}

const CHECK_USAGE: &str = "\
Usage: smokescreen check --host HOST [--role ROLE] [--address IP]... [--port PORT] [PROXY FLAGS]

What the proxy would decide for one request, without running it.

  --host HOST      destination host name or address (as in the URL)
  --role ROLE      the client's role (default: authed, the role every client
                   with the proxy password gets; '' for the default rule)
  --address IP     an address HOST resolves to (repeatable); without it, a
                   name is judged by the ACL only
  --port PORT      destination port (default: 443)

Any proxy flag selects the policy, as when running the proxy:
--egress-acl-file, --config-file, --allow-range, --deny-address,
--unsafe-allow-private-ranges, ... (see smokescreen --help).

Prints decision, reason, rule and project. Exit 0 allow, 1 deny, 2 usage or file error.
";

const TEST_POLICY_USAGE: &str = "\
Usage: smokescreen test-policy CASES.yaml [PROXY FLAGS]

Runs a table of expected decisions and prints one PASS or FAIL line per case.
The ACL and flags come from the file's `acl` and `flags` keys, or, if any
proxy flags are given here, from these flags instead.

Exit 0 when every case passes, 1 when any fails, 2 for usage or file errors.
";

const CHECK_CONFIG_USAGE: &str = "\
Usage: smokescreen check-config [PROXY FLAGS]

Loads the configuration, hosts and ACL files exactly as the proxy would,
prints a summary and exits: 0 when the proxy would start, 2 when it would not.
";

/// Run a tool if `args[1]` names one; `None` means "not a tool, run the proxy".
pub fn run(args: &[OsString], env: &dyn Fn(&str) -> Option<String>) -> Option<ToolRun> {
    let name = args.get(1)?.to_str()?;
    if !SUBCOMMANDS.contains(&name) {
        return None;
    }
    let rest: Vec<OsString> = args.iter().skip(2).cloned().collect();
    let mut out = ToolRun::default();
    let result = match name {
        "check" => check(&rest, env, &mut out.stdout),
        "test-policy" => test_policy(&rest, env, &mut out.stdout),
        _ => check_config(&rest, env, &mut out.stdout),
    };
    match result {
        Ok(code) => out.code = code,
        Err(e) => {
            out.code = 2;
            out.stderr = format!("smokescreen {name}: {e}\n");
        }
    }
    Some(out)
}

/// The policy the proxy would run with.
pub struct Loaded {
    pub config: Config,
    pub policy: Policy,
    pub me: SelfEndpoints,
    pub warnings: Vec<String>,
    /// Where the ACL came from, for messages.
    pub acl_source: String,
    /// Whether `PROXY_PASSWORD` was set (the tools do not need it).
    pub password_set: bool,
}

/// Load the proxy's configuration and ACL from proxy flags (no program name).
pub fn load(
    proxy_args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ToolError> {
    let password_set = env(PASSWORD_ENV).is_some_and(|p| !p.is_empty());
    // The tools never authenticate anyone: a placeholder keeps load() from
    // insisting on a secret that CI machines should not have.
    let env_for_tools = |name: &str| {
        if name == PASSWORD_ENV {
            Some("policy-tools-placeholder".to_string())
        } else {
            env(name)
        }
    };
    let mut argv = vec![OsString::from("smokescreen")];
    argv.extend(proxy_args.iter().cloned());
    let config = match config::load(argv, &env_for_tools).map_err(ToolError::Config)? {
        Command::Run(c) => *c,
        Command::PrintAndExit { text, .. } => return Err(ToolError::Usage(text)),
    };
    let source = AclSource {
        path: config.acl_file.clone(),
        disabled: config.disabled_actions.clone(),
    };
    let (acl, warnings) = load_acl(&source).map_err(ToolError::Acl)?;
    let acl_source = match &config.acl_file {
        Some(p) => p.display().to_string(),
        None => "embedded default".to_string(),
    };
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
            local_ip: None,
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
    let mut out = Outcome {
        allow: false,
        reason: String::new(),
        rule: String::new(),
        project: String::new(),
        enforce_would_deny: false,
        addresses: Vec::new(),
        dial: None,
        address_rule: None,
        message: None,
        error: None,
    };
    let host = match normalise_host(&shown) {
        Ok(h) => h,
        Err(e) => {
            // The proxy answers such a request 400 before any policy runs.
            out.reason = format!("invalid host: {e}");
            out.message = Some(e.to_string());
            return out;
        }
    };
    let acl_decision = match &loaded.policy.acl {
        Some(acl) => {
            let d = acl.decide(&q.role, &host.acl_str());
            out.rule = acl_rule_name(acl, &q.role, d.reason);
            d
        }
        None => crate::core::acl::Decision::not_configured(),
    };
    out.reason = acl_decision.reason.to_string();
    out.project = acl_decision.project.clone();
    out.enforce_would_deny = acl_decision.enforce_would_deny();
    if !acl_decision.allows() {
        out.message = Some(denied_message(&requested, &out.reason));
        return out;
    }
    let answers: Vec<IpAddr> = match &host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(_) => q.addresses.clone(),
    };
    if answers.is_empty() {
        out.allow = true;
        return out;
    }
    out.addresses = answers
        .iter()
        .map(|ip| {
            let rule = loaded
                .policy
                .addresses
                .classify(SocketAddr::new(*ip, q.port), &loaded.me);
            (*ip, rule)
        })
        .collect();
    let lookup = match &host {
        Host::Ip(ip) => Lookup::Literal(*ip),
        Host::Name(n) => Lookup::Name(n.clone()),
    };
    let pending = Pending {
        target: Target {
            host,
            port: q.port,
            requested,
        },
        lookup,
        verdicts: Verdicts {
            proxy_type: ProxyType::Connect,
            requested_host: String::new(),
            role: q.role.clone(),
            project: out.project.clone(),
            acl_allowed: true,
            enforce_would_deny: out.enforce_would_deny,
            reason: out.reason.clone(),
            default_rule: false,
            requested_proxy: None,
        },
    };
    match decision::after_dns(&loaded.policy, pending, Ok(&answers), &loaded.me) {
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

/// The ACL rule an outcome came from (the core's decision names only its reason).
fn acl_rule_name(acl: &Acl, role: &str, reason: Reason) -> String {
    match reason {
        Reason::GlobalDenyList => GLOBAL_DENY_LIST.to_string(),
        Reason::GlobalAllowList => GLOBAL_ALLOW_LIST.to_string(),
        Reason::NoRuleMatched | Reason::NotConfigured => String::new(),
        _ => match acl.rule(role) {
            Some(r) => r.name().to_string(),
            None => DEFAULT_RULE.to_string(),
        },
    }
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

fn usage(text: impl Into<String>) -> ToolError {
    ToolError::Usage(text.into())
}

/// Split `check`'s own flags from the proxy flags it passes through.
fn parse_check_args(args: &[OsString]) -> Result<Option<(Query, Vec<OsString>)>, ToolError> {
    let mut role = None;
    let mut host = None;
    let mut port = None;
    let mut addresses = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            rest.push(arg.clone());
            continue;
        };
        if text == "--help" || text == "-h" {
            return Ok(None);
        }
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (text, None),
        };
        if !matches!(name, "--role" | "--host" | "--address" | "--port") {
            rest.push(arg.clone());
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .and_then(|v| v.to_str())
                .map(str::to_string)
                .ok_or_else(|| usage(format!("{name} needs a value\n\n{CHECK_USAGE}")))?,
        };
        match name {
            "--role" => role = Some(value),
            "--host" => host = Some(value),
            "--port" => {
                let p: u16 = value.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                    usage(format!(
                        "invalid value {value:?} for --port: expected 1 to 65535"
                    ))
                })?;
                port = Some(p);
            }
            _ => {
                let ip = parse_ip(&value)
                    .map_err(|p| usage(format!("invalid value {value:?} for --address: {p}")))?;
                addresses.push(ip);
            }
        }
    }
    let host = host.ok_or_else(|| usage(format!("--host is required\n\n{CHECK_USAGE}")))?;
    Ok(Some((
        Query {
            role: role.unwrap_or_else(|| AUTHED_ROLE.to_string()),
            host,
            port: port.unwrap_or(443),
            addresses,
        },
        rest,
    )))
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>()
        .map_err(|_| "expected an IPv4 or IPv6 address".to_string())
}

fn check(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<i32, ToolError> {
    let Some((query, proxy_args)) = parse_check_args(args)? else {
        out.push_str(CHECK_USAGE);
        return Ok(0);
    };
    let loaded = load(&proxy_args, env)?;
    let outcome = evaluate(&loaded, &query);
    out.push_str(&render(&outcome));
    Ok(if outcome.allow { 0 } else { 1 })
}

/// A cases file. Unknown keys are errors: a misspelt `expect` must not pass.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    /// ACL file, relative to the cases file.
    #[serde(default)]
    pub acl: Option<PathBuf>,
    /// Other proxy flags (`--allow-range 10.1.0.0/16`, ...), one token per item.
    #[serde(default)]
    pub flags: Vec<String>,
    pub cases: Vec<Case>,
}

/// Allow or deny, as expected.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

/// One expected decision.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    /// One resolved address.
    #[serde(default)]
    pub address: Option<String>,
    /// Several resolved addresses, in answer order.
    #[serde(default)]
    pub addresses: Vec<String>,
    pub expect: Expect,
    /// Optional: the exact decision reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Optional: the ACL rule (`authed`, `default_rule`, `global_deny_list`, ...).
    #[serde(default)]
    pub rule: Option<String>,
    /// Optional: the address rule (`Deny: Private Range`, ...).
    #[serde(default)]
    pub address_rule: Option<String>,
}

/// Why a case failed; `None` when it passed.
pub fn judge_case(case: &Case, o: &Outcome) -> Option<String> {
    let got = if o.allow { Expect::Allow } else { Expect::Deny };
    let word = |e: Expect| if e == Expect::Allow { "allow" } else { "deny" };
    let mut problems = Vec::new();
    if got != case.expect {
        problems.push(format!(
            "expected {}, got {} ({})",
            word(case.expect),
            word(got),
            o.reason
        ));
    }
    if let Some(r) = &case.reason {
        if *r != o.reason {
            problems.push(format!("expected reason {r:?}, got {:?}", o.reason));
        }
    }
    if let Some(r) = &case.rule {
        if *r != o.rule {
            problems.push(format!("expected rule {r:?}, got {:?}", o.rule));
        }
    }
    if let Some(r) = &case.address_rule {
        let got = o.address_rule.map(|r| r.to_string()).unwrap_or_default();
        if *r != got {
            problems.push(format!("expected address_rule {r:?}, got {got:?}"));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn read_cases(path: &Path) -> Result<CasesFile, ToolError> {
    let err = |problem: String| ToolError::Cases {
        path: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let file: CasesFile = serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))?;
    if file.cases.is_empty() {
        return Err(err(
            "no cases: an empty table would pass vacuously".to_string()
        ));
    }
    Ok(file)
}

fn case_query(case: &Case) -> Result<Query, String> {
    let mut addresses = Vec::new();
    for a in case.address.iter().chain(case.addresses.iter()) {
        addresses.push(parse_ip(a).map_err(|p| format!("address {a:?}: {p}"))?);
    }
    let port = case.port.unwrap_or(443);
    if port == 0 {
        return Err("port 0 is not a destination".to_string());
    }
    Ok(Query {
        role: case.role.clone().unwrap_or_else(|| AUTHED_ROLE.to_string()),
        host: case.host.clone(),
        port,
        addresses,
    })
}

fn test_policy(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<i32, ToolError> {
    let Some(first) = args.first() else {
        return Err(usage(format!(
            "a cases file is required\n\n{TEST_POLICY_USAGE}"
        )));
    };
    if first == "--help" || first == "-h" {
        out.push_str(TEST_POLICY_USAGE);
        return Ok(0);
    }
    let path = PathBuf::from(first);
    let file = read_cases(&path)?;
    let cli_flags: Vec<OsString> = args.iter().skip(1).cloned().collect();
    let proxy_args = if cli_flags.is_empty() {
        let base = path.parent().unwrap_or(Path::new("."));
        let mut v = Vec::new();
        if let Some(acl) = &file.acl {
            v.push(OsString::from("--egress-acl-file"));
            v.push(base.join(acl).into_os_string());
        }
        v.extend(file.flags.iter().map(OsString::from));
        v
    } else {
        cli_flags
    };
    let loaded = load(&proxy_args, env)?;
    let _ = writeln!(out, "policy: ACL {}", loaded.acl_source);
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &file.cases {
        let verdict = match case_query(case) {
            Ok(q) => judge_case(case, &evaluate(&loaded, &q)),
            Err(problem) => Some(format!("invalid case: {problem}")),
        };
        match verdict {
            None => {
                passed += 1;
                let _ = writeln!(out, "PASS {}", case.name);
            }
            Some(why) => {
                failed += 1;
                let _ = writeln!(out, "FAIL {}: {why}", case.name);
            }
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

fn check_config(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<i32, ToolError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        out.push_str(CHECK_CONFIG_USAGE);
        return Ok(0);
    }
    let loaded = load(args, env)?;
    crate::shell::front(&loaded.config).map_err(ToolError::WouldNotStart)?;
    crate::shell::resolver_servers(&loaded.config.resolver_addresses)
        .map_err(ToolError::WouldNotStart)?;
    let c = &loaded.config;
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
        loaded.acl_source,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn default_loaded() -> Loaded {
        match load(&[], &no_env) {
            Ok(l) => l,
            Err(e) => panic!("default config loads: {e}"),
        }
    }

    fn query(role: &str, host: &str, addresses: &[&str]) -> Query {
        Query {
            role: role.to_string(),
            host: host.to_string(),
            port: 443,
            addresses: addresses.iter().filter_map(|a| a.parse().ok()).collect(),
        }
    }

    #[test]
    fn not_a_tool_runs_the_proxy() {
        assert_eq!(
            run(&args(&["smokescreen", "--listen-port", "1"]), &no_env),
            None
        );
        assert_eq!(run(&args(&["smokescreen"]), &no_env), None);
    }

    #[test]
    fn default_acl_reports_authed_and_denies_internal() {
        let l = default_loaded();
        let o = evaluate(&l, &query("authed", "api.example.com", &["93.184.216.34"]));
        assert!(o.allow);
        assert_eq!(o.reason, "rule has allow and report policy");
        assert_eq!(o.rule, "authed");
        assert_eq!(o.project, "users");
        assert_eq!(o.address_rule, Some(Rule::AllowDefault));
        let o = evaluate(&l, &query("authed", "DB.Internal.", &[]));
        assert!(!o.allow);
        assert_eq!(o.rule, GLOBAL_DENY_LIST);
        let o = evaluate(&l, &query("", "api.example.com", &[]));
        assert!(!o.allow);
        assert_eq!(o.rule, DEFAULT_RULE);
        assert_eq!(o.reason, "default rule policy used");
    }

    #[test]
    fn addresses_use_the_core_classifier_and_first_allowed_wins() {
        let l = default_loaded();
        let o = evaluate(&l, &query("authed", "x.example.com", &["10.0.0.1"]));
        assert!(!o.allow);
        assert_eq!(o.address_rule, Some(Rule::DenyPrivateRange));
        assert_eq!(
            o.error.as_deref(),
            Some("The destination address (10.0.0.1) was denied by rule 'Deny: Private Range'")
        );
        let o = evaluate(
            &l,
            &query("authed", "x.example.com", &["10.0.0.1", "1.1.1.1"]),
        );
        assert!(o.allow);
        assert_eq!(o.dial, Some("1.1.1.1:443".parse().expect("addr")));
        let o = evaluate(&l, &query("authed", "169.254.169.254", &[]));
        assert!(!o.allow, "a literal is classified without --address");
        let o = evaluate(&l, &query("authed", "::1", &[]));
        assert!(!o.allow);
        let o = evaluate(&l, &query("authed", "a..b", &[]));
        assert!(!o.allow);
        assert!(o.reason.starts_with("invalid host"), "{}", o.reason);
    }

    #[test]
    fn check_exit_codes() {
        let allow = run(
            &args(&["s", "check", "--host", "1.1.1.1", "--role=authed"]),
            &no_env,
        )
        .expect("tool");
        assert_eq!(allow.code, 0, "{allow:?}");
        assert!(
            allow.stdout.starts_with("decision: allow\n"),
            "{}",
            allow.stdout
        );
        let deny = run(&args(&["s", "check", "--host", "10.1.1.1"]), &no_env).expect("tool");
        assert_eq!(deny.code, 1);
        assert!(deny.stdout.contains("address_rule: Deny: Private Range\n"));
        let missing = run(&args(&["s", "check"]), &no_env).expect("tool");
        assert_eq!(missing.code, 2);
        assert!(missing.stderr.contains("--host is required"));
        let bad_port = run(
            &args(&["s", "check", "--host", "a.b", "--port", "0"]),
            &no_env,
        )
        .expect("tool");
        assert_eq!(bad_port.code, 2);
        let bad_flag =
            run(&args(&["s", "check", "--host", "a.b", "--nope"]), &no_env).expect("tool");
        assert_eq!(bad_flag.code, 2);
        let allowed_private = run(
            &args(&[
                "s",
                "check",
                "--host",
                "10.1.1.1",
                "--allow-range",
                "10.1.0.0/16",
            ]),
            &no_env,
        )
        .expect("tool");
        assert_eq!(allowed_private.code, 0, "{allowed_private:?}");
    }

    #[test]
    fn judge_case_reports_each_mismatch() {
        let l = default_loaded();
        let case: Case = serde_yaml::from_str(
            "{name: n, host: db.internal, expect: allow, rule: authed, reason: x}",
        )
        .expect("case");
        let o = evaluate(&l, &case_query(&case).expect("query"));
        let why = judge_case(&case, &o).expect("fails");
        assert!(why.contains("expected allow, got deny"), "{why}");
        assert!(why.contains("expected rule \"authed\""), "{why}");
        assert!(why.contains("expected reason \"x\""), "{why}");
        let ok: Case = serde_yaml::from_str(
            "{name: n, host: db.internal, expect: deny, rule: global_deny_list}",
        )
        .expect("case");
        assert_eq!(judge_case(&ok, &o), None);
        assert!(
            serde_yaml::from_str::<Case>("{name: n, host: h, expect: allow, expct: 1}").is_err()
        );
        assert!(serde_yaml::from_str::<Case>("{name: n, host: h, expect: maybe}").is_err());
    }
}

//! Policy tools for people who only have the binary, one file each:
//!
//! - [`check`]: what the proxy would decide for one request. Exit 0 allow, 1 deny.
//! - [`test_policy`]: a table of expected decisions, one PASS/FAIL line each.
//!   Exit 0 when all pass, 1 otherwise.
//! - [`check_config`]: load every file the proxy would load and report.
//!   Exit 0 when the proxy would start.
//! - [`suggest_acl`]: an `enforce` ACL learnt from decision logs.
//! - [`replay`]: logged requests re-decided with a new ACL; exit 1 when any
//!   would newly be denied.
//!
//! Exit 2 for usage errors and unreadable or invalid files. Each tool is a
//! clap subcommand that also takes the proxy's own flags ([`crate::config::proxy_args`]),
//! which the proxy's own [`crate::config::load_matches`] validates, and the
//! ACL is read by the proxy's own [`AclSource`], so a tool can never accept
//! what the proxy would refuse. Every decision is the core's:
//! [`crate::core::decision::before_dns_as`] and
//! [`crate::core::decision::after_dns`] ([`policy::evaluate`]).
//! The tools do not depend on the network shell: the one start-up check that
//! needs it (loading TLS files into rustls) is passed in by `main`.
#![allow(clippy::disallowed_methods)] // the tools read files named on their command line

mod acl_text;
pub mod check;
pub mod check_config;
mod logs;
pub mod policy;
mod progress;
pub mod replay;
pub mod suggest_acl;
pub mod test_policy;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::acl_source::AclLoadError;
use crate::config::{ConfigError, TlsConfig};

pub use policy::{evaluate, render, Loaded, Outcome, Query};

/// The subcommands, as typed.
pub const SUBCOMMANDS: [&str; 5] = [
    "check",
    "test-policy",
    "check-config",
    "suggest-acl",
    "replay",
];

/// What a tool printed and its exit status (kept apart from the process
/// so tests can run the tools in-process).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// What the tools get from the process: environment variables, and the
/// shell's TLS loader (so `check-config` runs the proxy's own TLS check
/// without the tools depending on the shell).
pub struct Env<'a> {
    pub vars: &'a dyn Fn(&str) -> Option<String>,
    pub tls_check: &'a dyn Fn(&TlsConfig) -> Result<(), String>,
    /// The shell's MITM CA and upstream CA loader, for `check-config`.
    pub mitm_check: &'a dyn Fn(&crate::config::Config) -> Result<(), String>,
}

/// Why a tool could not run. `Display` is the one line printed to stderr.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolError {
    /// Bad tool arguments; the text says which.
    Usage(String),
    /// The proxy's flags or files were refused, exactly as the proxy would refuse them.
    Config(ConfigError),
    /// The ACL file did not load.
    Acl(AclLoadError),
    /// The cases file could not be read or parsed.
    Cases { path: PathBuf, problem: String },
    /// The proxy would refuse to start (PROXY protocol without trusted
    /// ranges, unusable TLS files, an unresolvable DNS server).
    WouldNotStart(String),
    /// A log (or output) file could not be read (or written).
    Log { path: String, problem: String },
    /// A self-check of a tool's own output failed.
    Internal(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(text) => f.write_str(text),
            ToolError::Config(e) => write!(f, "{e}"),
            ToolError::Acl(e) => write!(f, "could not load egress ACL: {e}"),
            ToolError::Cases { path, problem } => write!(f, "{}: {problem}", path.display()),
            ToolError::WouldNotStart(why) => write!(f, "the proxy would not start: {why}"),
            ToolError::Log { path, problem } => write!(f, "{path}: {problem}"),
            ToolError::Internal(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ToolError {}

/// The tools as clap subcommands. Each keeps its hand-written help text.
#[derive(Parser, Debug)]
#[command(name = "smokescreen", color = clap::ColorChoice::Never)]
struct ToolCli {
    #[command(subcommand)]
    tool: Tool,
}

#[derive(Subcommand, Debug)]
enum Tool {
    #[command(override_help = check::USAGE)]
    Check(check::CheckArgs),
    #[command(override_help = test_policy::USAGE)]
    TestPolicy(test_policy::TestPolicyArgs),
    #[command(override_help = check_config::USAGE)]
    CheckConfig(check_config::CheckConfigArgs),
    #[command(override_help = suggest_acl::USAGE)]
    SuggestAcl(suggest_acl::SuggestArgs),
    #[command(override_help = replay::USAGE)]
    Replay(replay::ReplayArgs),
}

/// The tools' command line: each subcommand's own flags plus the proxy's
/// (which select the policy, as when running the proxy).
fn command() -> clap::Command {
    SUBCOMMANDS.iter().fold(ToolCli::command(), |cmd, name| {
        cmd.mut_subcommand(*name, |sub| sub.args(crate::config::proxy_args()))
    })
}

/// Run a tool if `args[1]` names one; `None` means "not a tool, run the proxy".
pub fn run(args: &[OsString], env: &Env<'_>) -> Option<ToolRun> {
    let name = args.get(1)?.to_str()?;
    if !SUBCOMMANDS.contains(&name) {
        return None;
    }
    let mut out = ToolRun::default();
    match dispatch(args, env, &mut out.stdout, &mut out.stderr) {
        Ok(code) => out.code = code,
        Err(e) => {
            out.code = 2;
            out.stderr.push_str(&format!("smokescreen {name}: {e}\n"));
        }
    }
    Some(out)
}

fn dispatch(
    args: &[OsString],
    env: &Env<'_>,
    out: &mut String,
    err: &mut String,
) -> Result<i32, ToolError> {
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            out.push_str(&e.render().to_string());
            return Ok(0);
        }
        Err(e) => {
            return Err(ToolError::Usage(
                e.render().to_string().trim_end().to_string(),
            ));
        }
    };
    let usage = |e: clap::Error| ToolError::Usage(e.render().to_string().trim_end().to_string());
    let cli = ToolCli::from_arg_matches(&matches).map_err(usage)?;
    let Some((_, sub)) = matches.subcommand() else {
        return Err(ToolError::Usage("a tool name is required".to_string()));
    };
    match &cli.tool {
        Tool::Check(a) => check::run(a, sub, env, out),
        Tool::TestPolicy(a) => test_policy::run(a, sub, env, out),
        Tool::CheckConfig(_) => check_config::run(sub, env, out),
        Tool::SuggestAcl(a) => suggest_acl::run(a, out, err),
        Tool::Replay(a) => replay::run(a, sub, env, out),
    }
}

/// Load the proxy's configuration and ACL from proxy flags (no program name).
pub fn load(
    proxy_args: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ToolError> {
    policy::load_args(proxy_args, env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::acl::{DEFAULT_RULE, GLOBAL_DENY_LIST};
    use crate::core::addr::Rule;
    use test_policy::{case_query, judge_case, Case};

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn no_tls(_: &TlsConfig) -> Result<(), String> {
        Ok(())
    }

    fn no_mitm(_: &crate::config::Config) -> Result<(), String> {
        Ok(())
    }

    const NO_ENV: Env<'static> = Env {
        vars: &no_vars,
        tls_check: &no_tls,
        mitm_check: &no_mitm,
    };

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn default_loaded() -> Loaded {
        match load(&[], &no_vars) {
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
            run(&args(&["smokescreen", "--listen-port", "1"]), &NO_ENV),
            None
        );
        assert_eq!(run(&args(&["smokescreen"]), &NO_ENV), None);
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
            &NO_ENV,
        )
        .expect("tool");
        assert_eq!(allow.code, 0, "{allow:?}");
        assert!(
            allow.stdout.starts_with("decision: allow\n"),
            "{}",
            allow.stdout
        );
        let deny = run(&args(&["s", "check", "--host", "10.1.1.1"]), &NO_ENV).expect("tool");
        assert_eq!(deny.code, 1);
        assert!(deny.stdout.contains("address_rule: Deny: Private Range\n"));
        let missing = run(&args(&["s", "check"]), &NO_ENV).expect("tool");
        assert_eq!(missing.code, 2);
        assert!(missing.stderr.contains("--host is required"));
        let bad_port = run(
            &args(&["s", "check", "--host", "a.b", "--port", "0"]),
            &NO_ENV,
        )
        .expect("tool");
        assert_eq!(bad_port.code, 2);
        let bad_flag =
            run(&args(&["s", "check", "--host", "a.b", "--nope"]), &NO_ENV).expect("tool");
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
            &NO_ENV,
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

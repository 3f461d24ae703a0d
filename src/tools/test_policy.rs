//! `smokescreen test-policy CASES.yaml [proxy flags]`: a table of expected
//! decisions, one PASS/FAIL line each. Exit 0 when all pass, 1 otherwise.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use serde::Deserialize;

use crate::core::auth::AUTHED_ROLE;
use crate::tools::policy::{evaluate, load_args, load_matches, parse_ip, Outcome, Query};
use crate::tools::{Env, ToolError};

pub const USAGE: &str = "\
Usage: smokescreen test-policy CASES.yaml [PROXY FLAGS]

Runs a table of expected decisions and prints one PASS or FAIL line per case.
The ACL and flags come from the file's `acl` and `flags` keys, or, if any
proxy flags are given here, from these flags instead.

Exit 0 when every case passes, 1 when any fails, 2 for usage or file errors.
";

#[derive(Args, Debug)]
pub struct TestPolicyArgs {
    cases: Option<PathBuf>,
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
    /// Optional: the `mitm:` line `check` prints (`none`: not intercepted).
    #[serde(default)]
    pub mitm: Option<String>,
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
    if let Some(want) = &case.mitm {
        let got = o.intercept.clone().unwrap_or_else(|| "none".to_string());
        if *want != got {
            problems.push(format!("expected mitm {want:?}, got {got:?}"));
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

pub fn case_query(case: &Case) -> Result<Query, String> {
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

/// Whether any proxy flag was typed after the cases file.
fn proxy_flags_given(matches: &ArgMatches) -> bool {
    crate::config::proxy_args()
        .any(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
}

pub fn run(
    args: &TestPolicyArgs,
    matches: &ArgMatches,
    env: &Env<'_>,
    out: &mut String,
) -> Result<i32, ToolError> {
    let Some(path) = &args.cases else {
        return Err(ToolError::Usage(format!(
            "a cases file is required\n\n{USAGE}"
        )));
    };
    let file = read_cases(path)?;
    let loaded = if proxy_flags_given(matches) {
        load_matches(matches, env.vars)?
    } else {
        let base = path.parent().unwrap_or(Path::new("."));
        let mut v = Vec::new();
        if let Some(acl) = &file.acl {
            v.push(OsString::from("--egress-acl-file"));
            v.push(base.join(acl).into_os_string());
        }
        v.extend(file.flags.iter().map(OsString::from));
        load_args(&v, env.vars)?
    };
    let _ = writeln!(out, "policy: ACL {}", loaded.acl_source.describe());
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

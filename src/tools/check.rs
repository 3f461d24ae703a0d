//! `smokescreen check --host H [--role R] [--address IP]... [--port P] [proxy flags]`:
//! what the proxy would decide for one request. Exit 0 allow, 1 deny.

use clap::{ArgAction, ArgMatches, Args};

use crate::core::auth::AUTHED_ROLE;
use crate::tools::policy::{evaluate, load_matches, parse_ip, render, Query};
use crate::tools::{Env, ToolError};

pub const USAGE: &str = "\
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

/// `check`'s own flags; values are text so errors keep the tools' wording.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    role: Option<String>,
    #[arg(long, action = ArgAction::Append)]
    address: Vec<String>,
    #[arg(long)]
    port: Option<String>,
}

impl CheckArgs {
    fn query(&self) -> Result<Query, ToolError> {
        let host = self
            .host
            .clone()
            .ok_or_else(|| ToolError::Usage(format!("--host is required\n\n{USAGE}")))?;
        let port = match &self.port {
            None => 443,
            Some(value) => value.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                ToolError::Usage(format!(
                    "invalid value {value:?} for --port: expected 1 to 65535"
                ))
            })?,
        };
        let addresses = self
            .address
            .iter()
            .map(|value| {
                parse_ip(value).map_err(|p| {
                    ToolError::Usage(format!("invalid value {value:?} for --address: {p}"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Query {
            role: self.role.clone().unwrap_or_else(|| AUTHED_ROLE.to_string()),
            host,
            port,
            addresses,
        })
    }
}

pub fn run(
    args: &CheckArgs,
    matches: &ArgMatches,
    env: &Env<'_>,
    out: &mut String,
) -> Result<i32, ToolError> {
    let query = args.query()?;
    let loaded = load_matches(matches, env.vars)?;
    let outcome = evaluate(&loaded, &query);
    out.push_str(&render(&outcome));
    Ok(if outcome.allow { 0 } else { 1 })
}

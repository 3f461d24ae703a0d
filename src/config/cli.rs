//! The command line, built from the settings table. Every value is taken as
//! text (paths as OS strings) and parsed by the setting's own parser, so a
//! flag and its config-file key share one parser and one error style.

use std::path::PathBuf;

use clap::{value_parser, Arg, ArgAction, Command};

use super::settings::{Shape, Spec, ALL};

const AFTER_HELP: &str = "\
Environment:
  PROXY_PASSWORD  Password clients must send with Proxy-Authorization: Basic
                  (any user name). Required unless --allow-unauthenticated.
  HTTP_PROXY, HTTPS_PROXY, NO_PROXY (or lower case)
                  Upstream proxies as Go's ProxyFromEnvironment reads them;
                  --upstream-http-proxy-addr and --upstream-https-proxy-addr
                  take precedence.

Durations use Go syntax: 300ms, 10s, 1m30s, 1.5h (units ns us ms s m h); 0 alone is allowed.
Flags given on the command line override the same setting in --config-file;
repeatable flags add to the file's lists.

Policy tools (take the same flags):
  smokescreen check --host HOST [--role ROLE] [--address IP] [--port PORT]
  smokescreen test-policy CASES.yaml
  smokescreen check-config
  smokescreen suggest-acl [LOG...] [-o FILE] [--merge ACL]
  smokescreen replay --egress-acl-file NEW [--against OLD] [LOG...]";

/// Value-less switches mean `true`; `--flag=false` overrides a file's `true`.
const SWITCH_ON: &str = "true";

/// The `smokescreen` command: one argument per setting, in table order.
pub fn command() -> Command {
    Command::new("smokescreen")
        .version(env!("CARGO_PKG_VERSION"))
        .about("An egress proxy that keeps user-supplied URLs away from your private network")
        .after_help(AFTER_HELP)
        .color(clap::ColorChoice::Never)
        .args(ALL.iter().map(|spec| arg(spec)))
}

fn arg(spec: &Spec) -> Arg {
    let arg = Arg::new(spec.flag)
        .long(spec.flag)
        .value_name(spec.value_name)
        .help(spec.help);
    let arg = match spec.default {
        Some(default) => arg.default_value(default),
        None => arg,
    };
    match spec.shape {
        Shape::Value => arg.action(ArgAction::Set),
        Shape::Switch => arg
            .action(ArgAction::Set)
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value(SWITCH_ON),
        Shape::List => arg.action(ArgAction::Append),
        Shape::Path => arg
            .action(ArgAction::Set)
            .value_parser(value_parser!(PathBuf)),
        Shape::PathList => arg
            .action(ArgAction::Append)
            .value_parser(value_parser!(PathBuf)),
    }
}

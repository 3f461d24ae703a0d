//! `smokescreen`: parse flags and environment, then hand over to the shell.
#![allow(clippy::disallowed_methods)] // main is where the environment is read

use std::process::ExitCode;

use smokescreen::config::{self, Command};

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `check`, `test-policy`, `check-config`, ...: the policy tools.
    let tls_check = |tls: &config::TlsConfig| {
        smokescreen::shell::front::tls::acceptor(tls)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let mitm_check = |config: &config::Config| {
        smokescreen::shell::mitm::Mitm::load(config)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let tools_env = smokescreen::tools::Env {
        vars: &env,
        tls_check: &tls_check,
        mitm_check: &mitm_check,
    };
    if let Some(run) = smokescreen::tools::run(&args, &tools_env) {
        print!("{}", run.stdout);
        eprint!("{}", run.stderr);
        return ExitCode::from(u8::try_from(run.code).unwrap_or(1));
    }
    let code = match config::load(args, &env) {
        Ok(Command::PrintAndExit { text, code }) => {
            if code == 0 {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            code
        }
        Ok(Command::Run(config)) => smokescreen::shell::start(*config),
        Err(e) => {
            eprintln!("smokescreen: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

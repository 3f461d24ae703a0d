//! clap's usage errors, with a first line that always names the argument
//! at fault. Two of clap's own first lines do not: a value given to a switch
//! without `=` (`--proxy-protocol yes` → "unexpected argument 'yes'") and an
//! argument that is not UTF-8 ("invalid UTF-8 was detected in one or more
//! arguments"). For those the first line is reworded; clap's usage tail
//! follows unchanged.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::settings::{by_flag, Shape};
use super::ConfigError;

/// The usage error to print for `error`, raised while parsing `args`
/// (program name first).
pub fn usage_error(error: &clap::Error, args: &[OsString]) -> ConfigError {
    let rendered = error.render().to_string();
    let text = rendered.trim_end();
    let first_line = match error.kind() {
        ErrorKind::UnknownArgument => value_after_switch(error, args),
        ErrorKind::InvalidUtf8 => not_utf8(args),
        _ => None,
    };
    match first_line {
        Some(line) => {
            let tail = text.split_once('\n').map(|(_, tail)| tail).unwrap_or("");
            ConfigError::Usage(format!("error: {line}\n{tail}").trim_end().to_string())
        }
        None => ConfigError::Usage(text.to_string()),
    }
}

/// `--switch value`: the value was taken as a stray argument.
fn value_after_switch(error: &clap::Error, args: &[OsString]) -> Option<String> {
    let Some(ContextValue::String(stray)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let spec = args.windows(2).find_map(|pair| match pair {
        [before, arg] if arg.to_str() == Some(stray) => {
            by_flag(before.to_str()?.strip_prefix("--")?).filter(|s| s.shape == Shape::Switch)
        }
        _ => None,
    })?;
    let flag = spec.flag_name();
    Some(format!(
        "unexpected argument '{stray}' found ({flag} takes its value after '=': {flag}={stray})"
    ))
}

/// Names the first argument clap refused as not UTF-8: a flag's value
/// (paths may be any bytes, so their values are skipped) or the argument's
/// position.
fn not_utf8(args: &[OsString]) -> Option<String> {
    for (i, arg) in args.iter().enumerate().skip(1) {
        if arg.to_str().is_some() {
            continue;
        }
        let text = arg.to_string_lossy();
        let flag = match text.strip_prefix("--").and_then(|t| t.split_once('=')) {
            Some((flag, _)) => Some(flag.to_string()),
            None => args
                .get(i - 1)
                .and_then(|prev| prev.to_str())
                .and_then(|prev| prev.strip_prefix("--"))
                .filter(|prev| !prev.contains('='))
                .map(str::to_string),
        };
        return match flag.as_deref().and_then(by_flag) {
            Some(spec) if matches!(spec.shape, Shape::Path | Shape::PathList) => continue,
            Some(spec) => Some(format!(
                "the value of {} is not valid UTF-8",
                spec.flag_name()
            )),
            None => Some(format!("argument {i} is not valid UTF-8")),
        };
    }
    None
}

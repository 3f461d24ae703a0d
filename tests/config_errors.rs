#![allow(clippy::disallowed_methods)] // tests own processes and files
//! Start-up errors as an operator sees them, through the real binary: for
//! every bad flag, value, config file, ACL or hosts file the FIRST line of
//! stderr names the flag or file and the problem (clap's usage tail may
//! follow), and the exit status is 2.
//!
//! No test here reaches a network: every case fails before the listener is
//! bound, and the listener would be on 127.0.0.1 anyway. A run that does not
//! exit within the deadline is killed and fails its test.
#![cfg(feature = "shell")]

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use smokescreen::config::{load, ConfigError};

const DEADLINE: Duration = Duration::from_secs(20);

/// Run the binary with `args` (after a loopback listener on port 0); give
/// back its exit status and the first line of its stderr.
fn first_line(args: &[OsString]) -> (i32, String) {
    let mut child = match Command::new(env!("CARGO_BIN_EXE_smokescreen"))
        .args(["--listen-ip", "127.0.0.1", "--listen-port", "0"])
        .args(args)
        .env("PROXY_PASSWORD", "x")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("spawn smokescreen: {e}"),
    };
    let pid = child.id();
    let mut stderr = child.stderr.take();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_string(&mut text);
        }
        let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
        let _ = tx.send((code, text));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok((code, text)) => (code, text.lines().next().unwrap_or("").to_string()),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("{args:?}: still running after {DEADLINE:?}: the bad input was accepted");
        }
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, text) {
        panic!("write {}: {e}", path.display());
    }
    path.display().to_string()
}

/// Exit 2, and the first line holds every one of `needles`.
fn assert_first_line(args: Vec<OsString>, needles: &[&str]) {
    let (code, line) = first_line(&args);
    assert_eq!(code, 2, "{args:?}: {line}");
    for needle in needles {
        assert!(
            line.contains(needle),
            "{args:?}: {needle:?} not in the first line {line:?}"
        );
    }
}

fn temp_dir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

#[test]
fn a_bad_flag_is_named_on_the_first_line() {
    assert_first_line(
        os(&["--no-such-flag"]),
        &["--no-such-flag", "unexpected argument"],
    );
    assert_first_line(
        os(&["--listen-prot", "1"]),
        &["--listen-prot", "unexpected argument"],
    );
    assert_first_line(os(&["--timeout"]), &["--timeout", "a value is required"]);
}

#[test]
fn a_bad_value_is_named_on_the_first_line() {
    assert_first_line(
        os(&["--timeout", "10"]),
        &["--timeout", "\"10\"", "missing unit"],
    );
    assert_first_line(
        os(&["--deny-range", "10.0.0.1"]),
        &["--deny-range", "expected a CIDR range"],
    );
}

#[test]
fn a_value_after_a_switch_names_the_switch() {
    // Switches take their value after `=`; `yes` alone is a stray argument.
    assert_first_line(
        os(&["--proxy-protocol", "yes"]),
        &["'yes'", "--proxy-protocol=yes"],
    );
    assert_first_line(
        os(&["--allow-missing-role", "false"]),
        &["'false'", "--allow-missing-role=false"],
    );
}

#[test]
fn a_value_that_is_not_utf8_names_its_flag() {
    let mut args = os(&["--log-level"]);
    args.push(OsString::from_vec(b"inf\xffo".to_vec()));
    assert_first_line(args, &["--log-level", "not valid UTF-8"]);
    let args = vec![OsString::from_vec(b"--timeout=1\xff".to_vec())];
    assert_first_line(args, &["--timeout", "not valid UTF-8"]);
}

#[test]
fn a_bad_config_file_is_named_on_the_first_line() {
    let dir = temp_dir();
    let path = write(
        dir.path(),
        "smokescreen.yaml",
        "port: 1\nconect_timeout: 10s\n",
    );
    assert_first_line(
        os(&["--config-file", &path]),
        &[&path, "unknown key `conect_timeout`"],
    );
    let missing = dir.path().join("missing.yaml").display().to_string();
    assert_first_line(
        os(&["--config-file", &missing]),
        &[&missing, "No such file"],
    );
}

#[test]
fn a_bad_acl_is_named_on_the_first_line() {
    let dir = temp_dir();
    let path = write(dir.path(), "acl.yaml", "version: v2\nservices: []\n");
    assert_first_line(
        os(&["--egress-acl-file", &path]),
        &[&path, "expected version"],
    );
    let missing = dir.path().join("missing-acl.yaml").display().to_string();
    assert_first_line(
        os(&["--egress-acl-file", &missing]),
        &[&missing, "No such file"],
    );
    // The same through the config file's `acl_file`, and in JSON logs.
    let config = write(dir.path(), "c.yaml", &format!("acl_file: {path}\n"));
    assert_first_line(
        os(&["--config-file", &config, "--log-format", "json"]),
        &[&path, "expected version"],
    );
}

#[test]
fn a_bad_hosts_file_is_named_on_the_first_line() {
    let dir = temp_dir();
    let path = write(
        dir.path(),
        "hosts",
        "127.0.0.1 ok.internal\nnot-an-ip name\n",
    );
    assert_first_line(
        os(&["--hosts-file", &path]),
        &[&path, "line 2", "invalid IP address"],
    );
}

#[test]
fn a_missing_tls_file_is_named_on_the_first_line() {
    let dir = temp_dir();
    let missing = dir.path().join("bundle.pem").display().to_string();
    assert_first_line(
        os(&["--tls-server-bundle-file", &missing]),
        &[&missing, "No such file"],
    );
}

/// The same first lines come from `config::load` itself (what `main` prints
/// after `smokescreen: `), so the tools that share it say the same.
#[test]
fn load_words_switch_and_utf8_errors_with_the_flag() {
    let env = |_: &str| Some("x".to_string());
    let first = |args: Vec<OsString>| -> String {
        let argv = std::iter::once(OsString::from("smokescreen")).chain(args);
        match load(argv, &env) {
            Err(e @ ConfigError::Usage(_)) => {
                e.to_string().lines().next().unwrap_or("").to_string()
            }
            other => panic!("expected a usage error, got {other:?}"),
        }
    };
    let line = first(os(&["--unsafe-allow-private-ranges", "true"]));
    assert!(
        line.starts_with("error: ") && line.contains("--unsafe-allow-private-ranges=true"),
        "{line}"
    );
    let line = first(vec![
        OsString::from("--listen-ip"),
        OsString::from_vec(b"\xff".to_vec()),
    ]);
    assert!(
        line.starts_with("error: ") && line.contains("--listen-ip"),
        "{line}"
    );
}

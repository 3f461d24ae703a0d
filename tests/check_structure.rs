#![allow(clippy::disallowed_methods)] // tests own processes and files
//! `.ci/check-structure` on tiny fixture trees: each rule fails on the tree
//! that breaks it, names the file, and passes on the tree that does not.

use std::path::Path;
use std::process::Command;

/// Write `files` (path under the fixture root, text) into a fresh directory
/// and run the script on it: (passed, stdout).
fn check(files: &[(&str, &str)]) -> (bool, String) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    for (rel, text) in files {
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                panic!("mkdir {}: {e}", parent.display());
            }
        }
        if let Err(e) = std::fs::write(&path, text) {
            panic!("write {}: {e}", path.display());
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/check-structure");
    let out = match Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("python3 {}: {e}", script.display()),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "the script failed: {stderr}");
    match out.status.code() {
        Some(0) => (true, stdout),
        Some(1) => (false, stdout),
        other => panic!("exit {other:?}: {stdout}"),
    }
}

const LIB: (&str, &str) = ("src/lib.rs", "pub mod core;\npub mod shell;\n");
const CORE: (&str, &str) = ("src/core/mod.rs", "pub mod addr;\npub struct Policy;\n");
const ADDR: (&str, &str) = ("src/core/addr.rs", "use super::Policy;\npub struct Rule;\n");

#[test]
fn a_clean_tree_passes() {
    let (ok, out) = check(&[
        LIB,
        CORE,
        ADDR,
        (
            "src/shell/mod.rs",
            "pub mod io;\npub mod runtime;\nuse crate::core::{addr::Rule, Policy};\n",
        ),
        // Parent and child use each other: not a cycle.
        (
            "src/shell/io.rs",
            "use super::runtime;\nuse crate::shell::*;\n",
        ),
        ("src/shell/runtime.rs", "pub use async_std::task::spawn;\n"),
        // main.rs is its own crate.
        ("src/main.rs", "use smokescreen::shell;\nfn main() {}\n"),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("check-structure: ok"), "{out}");
}

#[test]
fn a_cycle_between_siblings_fails_and_is_spelled_out() {
    let (ok, out) = check(&[
        LIB,
        (
            "src/shell/mod.rs",
            "pub mod io;\npub mod stream;\npub mod header;\n",
        ),
        (
            "src/shell/io.rs",
            "use crate::shell::stream::{Endpoint, Io};\n",
        ),
        (
            "src/shell/stream.rs",
            "use crate::shell::header::{self, Proxy};\n",
        ),
        // The way back is an inline path through `super`, not a `use`.
        (
            "src/shell/header.rs",
            "fn f() { super::io::read_more(); }\n",
        ),
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "import cycle: src/shell/header.rs -> src/shell/io.rs -> src/shell/stream.rs -> src/shell/header.rs"
        ),
        "{out}"
    );
}

#[test]
fn a_cycle_across_module_trees_fails() {
    let (ok, out) = check(&[
        LIB,
        CORE,
        // core::addr → shell::io → core (the parent of addr) → addr.
        ("src/core/addr.rs", "pub fn f() { crate::shell::io::g() }\n"),
        ("src/shell/mod.rs", "pub mod io;\n"),
        ("src/shell/io.rs", "use crate::core::Policy;\n"),
        (
            "src/core/mod.rs",
            "pub mod addr;\npub use addr::f;\npub struct Policy;\nfn h() { self::addr::f() }\n",
        ),
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("import cycle: "), "{out}");
    assert!(
        out.contains("src/shell/io.rs") && out.contains("src/core/addr.rs"),
        "{out}"
    );
}

#[test]
fn test_modules_comments_and_strings_make_no_edges() {
    let (ok, out) = check(&[
        LIB,
        ("src/shell/mod.rs", "pub mod a;\npub mod b;\n"),
        ("src/shell/a.rs", "use crate::shell::b::X;\n"),
        (
            "src/shell/b.rs",
            "pub struct X;\n// use crate::shell::a;\nconst S: &str = \"crate::shell::a::Y\";\n\
             #[cfg(test)]\nmod tests {\n    use crate::shell::a::*;\n    fn t() { let _ = '}'; }\n}\n",
        ),
    ]);
    assert!(ok, "{out}");
}

#[test]
fn files_over_700_lines_fail() {
    let at_limit = "//\n".repeat(700);
    let over = "//\n".repeat(701);
    let (ok, out) = check(&[LIB, ("src/shell/mod.rs", &at_limit)]);
    assert!(ok, "{out}");
    let (ok, out) = check(&[LIB, ("src/shell/mod.rs", &over)]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("src/shell/mod.rs: 701 lines (the limit is 700)"),
        "{out}"
    );
}

#[test]
fn async_std_only_in_the_runtime_module() {
    let (ok, out) = check(&[
        LIB,
        ("src/shell/mod.rs", "pub mod runtime;\npub mod tunnel;\n"),
        (
            "src/shell/runtime/mod.rs",
            "pub mod timer;\npub use async_std::net::TcpStream;\n",
        ),
        (
            "src/shell/runtime/timer.rs",
            "pub use async_std::future::timeout;\n",
        ),
        // Mentioned in a comment: fine.
        (
            "src/shell/tunnel.rs",
            "//! not async_std::task\nuse super::runtime::timeout;\n",
        ),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = check(&[
        LIB,
        ("src/shell/mod.rs", "pub mod tunnel;\n"),
        (
            "src/shell/tunnel.rs",
            "use std::io;\n\nfn f() { async_std::task::block_on(g()) }\n",
        ),
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("src/shell/tunnel.rs:3: names async_std outside the runtime module"),
        "{out}"
    );
}

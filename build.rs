//! Release builds only: ask the linker to put the functions that run at
//! start-up next to each other (link/startup-order.txt, made by
//! bench/startup-order.sh). Spread over the whole .text, they make the
//! kernel's 64 kB fault-around keep ~2 MiB of code resident at rest;
//! together, ~0.7 MiB (issue #6). Only rust-lld, rustc's default linker for
//! x86_64-unknown-linux-gnu since Rust 1.90, understands the option, so any
//! other target, toolchain or linker setting builds without it.
#![allow(clippy::disallowed_methods)] // a build script reads its environment

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/startup-order.txt");
    println!("cargo:rerun-if-env-changed=SMOKESCREEN_NO_STARTUP_ORDER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || env::var_os("SMOKESCREEN_NO_STARTUP_ORDER").is_some()
        // A chosen linker (or linker flavour) may not be rust-lld.
        || var("CARGO_ENCODED_RUSTFLAGS").contains("link")
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || !rustc_links_with_lld()
    {
        return;
    }
    let order = format!("{}/link/startup-order.txt", var("CARGO_MANIFEST_DIR"));
    println!("cargo:rustc-link-arg-bin=smokescreen=-Wl,--symbol-ordering-file={order}");
    // Symbols the current build does not have (a newer toolchain or
    // dependency renamed them) are skipped; bench/startup-order.sh --check.
    println!("cargo:rustc-link-arg-bin=smokescreen=-Wl,--no-warn-symbol-ordering");
}

/// rustc 1.90 or later (rust-lld by default on this target).
fn rustc_links_with_lld() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let mut parts = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}

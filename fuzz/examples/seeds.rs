//! Seed corpus generator: extracts inputs from the executable spec
//! (`spec/head.yaml`, `spec/target.yaml`, `spec/acl.yaml`) into
//! `corpus/<target>/`, one file per input, named by a hash of its bytes so
//! that running it again writes nothing new.
//!
//! Usage (from `fuzz/`): `cargo run --example seeds [SPEC_DIR [CORPUS_DIR]]`,
//! defaults `../spec` and `corpus`.

// A build tool, not the core: it reads spec files and its arguments.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_yaml::Value;
use smokescreen_fuzz::{AclInput, ChunkedInput};

/// FNV-1a, 64 bits: a stable file name for a seed.
fn name_of(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("spec-{h:016x}")
}

struct Out {
    dir: PathBuf,
    written: BTreeMap<&'static str, usize>,
}

impl Out {
    fn put(&mut self, target: &'static str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join(target);
        fs::create_dir_all(&dir)?;
        let path = dir.join(name_of(bytes));
        if !path.exists() {
            fs::write(path, bytes)?;
            *self.written.entry(target).or_default() += 1;
        }
        Ok(())
    }
}

fn load(spec: &Path, file: &str) -> Result<Value, String> {
    let path = spec.join(file);
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The sequence under `key` (empty if absent).
fn seq<'a>(doc: &'a Value, key: &str) -> &'a [Value] {
    doc.get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn str_of<'a>(case: &'a Value, key: &str) -> Option<&'a str> {
    case.get(key).and_then(Value::as_str)
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let spec = PathBuf::from(args.next().unwrap_or_else(|| "../spec".into()));
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "corpus".into()));
    let mut out = Out {
        dir,
        written: BTreeMap::new(),
    };
    let io = |e: std::io::Error| e.to_string();

    let head = load(&spec, "head.yaml")?;
    for case in seq(&head, "requests").iter().chain(seq(&head, "responses")) {
        if let Some(input) = str_of(case, "input") {
            out.put("request_head", input.as_bytes()).map_err(io)?;
        }
    }
    for case in seq(&head, "chunked") {
        if let Some(input) = str_of(case, "input") {
            for seed in [0u8, 7] {
                out.put("chunked", &ChunkedInput::encode(seed, input.as_bytes()))
                    .map_err(io)?;
            }
        }
    }

    let target = load(&spec, "target.yaml")?;
    for case in seq(&target, "cases") {
        if let Some(input) = str_of(case, "input") {
            out.put("targets", input.as_bytes()).map_err(io)?;
        }
    }

    let acl = load(&spec, "acl.yaml")?;
    let docs: BTreeMap<String, String> = acl
        .get("acls")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    for case in seq(&acl, "decisions") {
        let (Some(name), Some(role), Some(host)) = (
            str_of(case, "acl"),
            str_of(case, "role"),
            str_of(case, "host"),
        ) else {
            continue;
        };
        if let Some(yaml) = docs.get(name) {
            if !role.contains('\n') && !host.contains('\n') {
                out.put("acl", &AclInput::encode(role, host, yaml))
                    .map_err(io)?;
            }
        }
    }
    for case in seq(&acl, "loads").iter().chain(seq(&acl, "load_errors")) {
        let yaml = str_of(case, "yaml")
            .map(str::to_string)
            .or_else(|| str_of(case, "acl").and_then(|n| docs.get(n).cloned()));
        if let Some(yaml) = yaml {
            out.put("acl", &AclInput::encode("authed", "example.com", &yaml))
                .map_err(io)?;
        }
    }

    for (target, n) in &out.written {
        println!("{target}: {n} new seed(s)");
    }
    if out.written.is_empty() {
        println!("no new seeds (corpus already holds every spec input)");
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("seeds: {e}");
        std::process::exit(1);
    }
}

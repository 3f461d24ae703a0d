//! The ACL `suggest-acl` writes, as YAML text: a fresh file, or additions
//! merged into an existing file line by line, so its comments, order and
//! layout survive. Values that came from logs are written as JSON strings
//! (valid YAML) unless they are plain host names, so a hostile role name
//! cannot add keys; comments carry only numbers and sanitised timestamps.

use std::fmt::{self, Write as _};

use crate::core::suggest::Entry;

/// New entries for one role (`""`: the default rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addition {
    pub role: String,
    /// The project logged for the role (used for a new service).
    pub project: String,
    pub entries: Vec<Entry>,
}

/// Why additions could not be merged into a file's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeError {
    /// A list in flow style (`[a, b]`) that a line edit cannot extend.
    FlowList { role: String },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::FlowList { role } => write!(
                f,
                "allowed_domains of {} is a flow list ([a, b]); write it as a block list (one `- host` per line) to merge into it",
                rule_label(role)
            ),
        }
    }
}

fn rule_label(role: &str) -> String {
    if role.is_empty() {
        "the default rule".to_string()
    } else {
        format!("service {role:?}")
    }
}

/// A YAML scalar: plain for host names, a JSON (double-quoted YAML) string otherwise.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::Value::from(s).to_string()
    }
}

/// Keep timestamps to the characters they have, so a comment stays a comment.
fn timestamp(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-'))
        .collect()
}

/// `- host  # 12 requests, last seen T`
fn entry_line(indent: usize, e: &Entry) -> String {
    let mut line = format!("{:indent$}- {}  # ", "", scalar(&e.pattern));
    if e.hosts > 1 {
        let _ = write!(line, "{} hosts, ", e.hosts);
    }
    let plural = if e.seen.requests == 1 { "" } else { "s" };
    let _ = write!(line, "{} request{plural}", e.seen.requests);
    if !e.seen.last_seen.is_empty() {
        let _ = write!(line, ", last seen {}", timestamp(&e.seen.last_seen));
    }
    line
}

/// The body of a rule at `indent`: project, action and allowed domains.
fn rule_body(indent: usize, a: &Addition, out: &mut Vec<String>) {
    let project = if a.project.is_empty() {
        "unknown"
    } else {
        &a.project
    };
    out.push(format!("{:indent$}project: {}", "", scalar(project)));
    out.push(format!("{:indent$}action: enforce", ""));
    out.push(format!("{:indent$}allowed_domains:", ""));
    out.extend(a.entries.iter().map(|e| entry_line(indent + 2, e)));
}

/// A whole new ACL. `header` lines become comments at the top.
pub fn render(header: &[String], additions: &[Addition]) -> String {
    let mut lines: Vec<String> = header.iter().map(|h| format!("# {h}")).collect();
    lines.push("version: v1".to_string());
    let services: Vec<&Addition> = additions.iter().filter(|a| !a.role.is_empty()).collect();
    if services.is_empty() {
        lines.push("services: []".to_string());
    } else {
        lines.push("services:".to_string());
    }
    for a in services {
        lines.push(format!("  - name: {}", scalar(&a.role)));
        rule_body(4, a, &mut lines);
    }
    if let Some(a) = additions.iter().find(|a| a.role.is_empty()) {
        lines.push("default:".to_string());
        rule_body(2, a, &mut lines);
    }
    lines.join("\n") + "\n"
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// The value of `key: value  # comment` at the start of `text`, unquoted.
fn key_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(key)?.strip_prefix(':')?;
    let value = match rest.find(" #") {
        Some(i) => &rest[..i],
        None => rest,
    }
    .trim();
    Some(
        value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value),
    )
}

/// The lines after `start` that belong to a block whose own line has
/// `indent`: up to the next content line indented no deeper.
fn block_end(lines: &[String], start: usize, indent: usize) -> usize {
    let mut end = start + 1;
    let mut last_content = start;
    while end < lines.len() {
        if is_content(&lines[end]) {
            if indent_of(&lines[end]) <= indent {
                break;
            }
            last_content = end;
        }
        end += 1;
    }
    last_content + 1
}

/// Add each role's entries into `base` (an ACL file's text), set each
/// touched rule's action to `enforce`, and append rules that are missing.
pub fn merge(base: &str, additions: &[Addition]) -> Result<String, MergeError> {
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    for a in additions {
        merge_one(&mut lines, a)?;
    }
    Ok(lines.join("\n") + "\n")
}

fn top_level(lines: &[String], key: &str) -> Option<usize> {
    lines
        .iter()
        .position(|l| indent_of(l) == 0 && key_value(l, key).is_some())
}

fn merge_one(lines: &mut Vec<String>, a: &Addition) -> Result<(), MergeError> {
    // Where the rule is: (first line, indent of its keys).
    let found = if a.role.is_empty() {
        top_level(lines, "default").map(|i| {
            let keys = lines[i + 1..]
                .iter()
                .find(|l| is_content(l))
                .map(|l| indent_of(l))
                .filter(|n| *n > 0)
                .unwrap_or(2);
            (i, i + 1, keys)
        })
    } else {
        top_level(lines, "services").and_then(|s| {
            let end = block_end(lines, s, 0);
            (s + 1..end).find_map(|i| {
                let t = lines[i].trim_start();
                let name = key_value(t.strip_prefix("- ")?.trim_start(), "name")?;
                (name == a.role).then(|| (i, i, indent_of(&lines[i]) + 2))
            })
        })
    };
    let Some((head, first_key, key_indent)) = found else {
        append_rule(lines, a);
        return Ok(());
    };
    let end = block_end(lines, head, key_indent - 2);
    for line in &mut lines[first_key..end] {
        let keyed = if line.trim_start().starts_with("- ") {
            line.trim_start()[2..].trim_start()
        } else {
            line.trim_start()
        };
        if key_value(keyed, "action").is_some_and(|old| old != "enforce") {
            if let Some(at) = line.find("action:") {
                let comment = line[at..].find(" #").map(|c| &line[at + c..]).unwrap_or("");
                *line = format!("{}action: enforce{comment}", &line[..at]);
            }
        }
    }
    let domains = (first_key..end).find(|&i| {
        indent_of(&lines[i]) == key_indent
            && key_value(lines[i].trim_start(), "allowed_domains").is_some()
    });
    let new_lines = |indent: usize| a.entries.iter().map(move |e| entry_line(indent, e));
    match domains {
        None => {
            let mut add = vec![format!("{:key_indent$}allowed_domains:", "")];
            add.extend(new_lines(key_indent + 2));
            lines.splice(end..end, add);
        }
        Some(i) => {
            let value = key_value(lines[i].trim_start(), "allowed_domains").unwrap_or("");
            if value == "[]" {
                lines[i] = format!("{:key_indent$}allowed_domains:", "");
                let add: Vec<String> = new_lines(key_indent + 2).collect();
                lines.splice(i + 1..i + 1, add);
            } else if !value.is_empty() {
                return Err(MergeError::FlowList {
                    role: a.role.clone(),
                });
            } else {
                let mut last = i;
                let mut item_indent = key_indent + 2;
                for (j, line) in lines.iter().enumerate().take(end).skip(i + 1) {
                    if is_content(line) {
                        if !line.trim_start().starts_with("- ") || indent_of(line) < key_indent {
                            break;
                        }
                        if last == i {
                            item_indent = indent_of(line);
                        }
                        last = j;
                    }
                }
                let add: Vec<String> = new_lines(item_indent).collect();
                lines.splice(last + 1..last + 1, add);
            }
        }
    }
    Ok(())
}

fn append_rule(lines: &mut Vec<String>, a: &Addition) {
    let mut add = Vec::new();
    if a.role.is_empty() {
        add.push("default:".to_string());
        rule_body(2, a, &mut add);
        lines.extend(add);
        return;
    }
    let services = top_level(lines, "services");
    let (at, dash) = match services {
        Some(s) => {
            if key_value(&lines[s], "services") == Some("[]") {
                lines[s] = "services:".to_string();
            }
            let end = block_end(lines, s, 0);
            let dash = (s + 1..end)
                .find(|&i| lines[i].trim_start().starts_with("- "))
                .map(|i| indent_of(&lines[i]))
                .unwrap_or(2);
            (end, dash)
        }
        None => {
            lines.push("services:".to_string());
            (lines.len(), 2)
        }
    };
    add.push(format!("{:dash$}- name: {}", "", scalar(&a.role)));
    rule_body(dash + 2, a, &mut add);
    lines.splice(at..at, add);
}

//! Why an ACL file is refused; `Display` gives Smokescreen's texts where it
//! has them (snapshotted in `snapshots/acl_load_errors.snap`).

use std::fmt;

use super::*;

/// A load error. `Display` is Smokescreen's text where it has one, prefixed
/// with where it is (`<rule>: `) for errors inside a rule or list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclError {
    /// The text is not YAML of the expected shape; serde_yaml's message,
    /// which carries the line and column.
    Yaml(String),
    /// `version` is not `v1` (missing reads as empty).
    Version(String),
    /// No `services` key (or it is null).
    ServicesMissing,
    /// A `services` entry without a non-empty `name` (0-based index).
    MissingName { index: usize },
    /// A key a rule does not have (e.g. a typo like `allowed_domain`).
    UnknownKey { rule: String, key: String },
    /// A key of later Smokescreen versions whose feature this proxy lacks.
    UnsupportedKey { rule: String, key: String },
    /// A rule without `action`.
    MissingAction { rule: String },
    /// An `action` other than `open`, `report`, `enforce`.
    UnknownAction { rule: String, action: String },
    /// A refused glob in `allowed_domains` or a global list.
    Glob {
        rule: String,
        glob: String,
        error: GlobError,
    },
    /// Two services with the same name.
    DuplicateRule { name: String },
    /// A rule uses an action given to `--disable-acl-policy-action`.
    DisabledPolicy { rule: String, action: Action },
    /// A refused `mitm_domains` entry.
    Mitm { rule: String, error: MitmError },
    /// A header value's `${env:..}` / `${file:..}` could not be read. The
    /// problem never contains the value.
    /// `problem` is `mitm_domains: <domain>: add_headers: <header>: <reference>: <why>`.
    Secret { rule: String, problem: String },
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclError::Yaml(msg) => write!(f, "yaml: {msg}"),
            AclError::Version(v) => write!(f, "expected version \"v1\" got {v:?}"),
            AclError::ServicesMissing => f.write_str("Top level list 'services' is missing"),
            AclError::MissingName { index } => write!(f, "services[{index}]: rule has no name"),
            AclError::UnknownKey { rule, key } => write!(
                f,
                "{rule}: unknown key '{key}' (a rule has name, project, action, allowed_domains, allowed_external_proxies, mitm_domains)"
            ),
            AclError::UnsupportedKey { rule, key } => {
                write!(f, "{rule}: '{key}' is not supported by this proxy")
            }
            AclError::MissingAction { rule } => {
                write!(f, "{rule}: action is missing (use open, report or enforce)")
            }
            AclError::UnknownAction { rule, action } => {
                write!(f, "{rule}: unknown action {action}")
            }
            AclError::Glob {
                rule,
                error: GlobError::Empty,
                ..
            } => {
                write!(f, "{rule}: {}", GlobError::Empty)
            }
            AclError::Glob { rule, glob, error } => write!(f, "{rule}: {glob}: {error}"),
            AclError::DuplicateRule { name } => write!(f, "rule already exists for service {name}"),
            AclError::DisabledPolicy { rule, action } => write!(
                f,
                "rule for svc:{rule} utilizes a disabled policy:{}",
                action.policy_name()
            ),
            AclError::Mitm { rule, error } => write!(f, "{rule}: {error}"),
            AclError::Secret { rule, problem } => write!(f, "{rule}: {problem}"),
        }
    }
}

impl std::error::Error for AclError {}

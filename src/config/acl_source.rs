//! Where the egress ACL comes from and how it is read: used by the proxy at
//! start and on SIGHUP, and by the policy tools, so a tool can never accept
//! an ACL the proxy would refuse.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::core::acl::{Acl, AclError, Action};
use crate::core::mitm::ValueSource;

/// Where the ACL comes from, so it can be read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclSource {
    /// `None`: the embedded default (nothing to reload).
    pub path: Option<PathBuf>,
    /// `--disable-acl-policy-action`: actions an ACL may not use.
    pub disabled: Vec<Action>,
    /// Whether a MITM CA is configured (else `mitm_domains` is refused).
    pub mitm_ca: bool,
}

/// Why the ACL did not load. `Display` names the file.
#[derive(Clone, Debug, PartialEq)]
pub enum AclLoadError {
    /// The file could not be read.
    Read { path: PathBuf, problem: String },
    /// The file (or the embedded default) is not a valid ACL.
    Invalid { source: String, error: AclError },
    /// A rule has `mitm_domains` but no MITM CA is configured.
    NoMitmCa { source: String },
}

impl fmt::Display for AclLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclLoadError::Read { path, problem } => write!(f, "{}: {problem}", path.display()),
            AclLoadError::Invalid { source, error } => write!(f, "{source}: {error}"),
            AclLoadError::NoMitmCa { source } => write!(
                f,
                "{source}: mitm_domains needs a MITM CA (--mitm-ca-cert-file and --mitm-ca-key-file, or mitm_ca_cert_file and mitm_ca_key_file)"
            ),
        }
    }
}

impl std::error::Error for AclLoadError {}

impl AclSource {
    /// The ACL settings of a validated configuration.
    pub fn of(config: &Config) -> AclSource {
        AclSource {
            path: config.acl_file.clone(),
            disabled: config.disabled_actions.clone(),
            mitm_ca: config.mitm.is_some(),
        }
    }

    /// The same rules, another file (`replay --against`).
    pub fn with_path(&self, path: &Path) -> AclSource {
        AclSource {
            path: Some(path.to_path_buf()),
            disabled: self.disabled.clone(),
            mitm_ca: self.mitm_ca,
        }
    }

    /// For messages: the file name, or `embedded default`.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "embedded default".to_string(),
        }
    }

    /// Read and validate the ACL, and read the secrets its header values
    /// name (so a SIGHUP picks up a rotated one); the warnings are for the log.
    pub fn load(&self) -> Result<(Acl, Vec<String>), AclLoadError> {
        let (mut acl, warnings) = self.load_without_secrets()?;
        acl.resolve_secrets(read_secret)
            .map_err(|error| AclLoadError::Invalid {
                source: self.describe(),
                error,
            })?;
        Ok((acl, warnings))
    }

    /// [`AclSource::load`] without reading the secrets header values name
    /// (their values stay empty): for the policy tools, which show names only.
    pub fn load_without_secrets(&self) -> Result<(Acl, Vec<String>), AclLoadError> {
        let (acl, warnings) = self.load_rules()?;
        if acl.uses_mitm() && !self.mitm_ca {
            return Err(AclLoadError::NoMitmCa {
                source: self.describe(),
            });
        }
        Ok((acl, warnings))
    }

    /// Read and validate the rules alone, for a tool that only edits them
    /// (no MITM CA check, no secret read).
    pub fn load_rules(&self) -> Result<(Acl, Vec<String>), AclLoadError> {
        match &self.path {
            None => {
                Acl::from_yaml(crate::core::DEFAULT_ACL_YAML, &self.disabled).map_err(|error| {
                    AclLoadError::Invalid {
                        source: "embedded default ACL".to_string(),
                        error,
                    }
                })
            }
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| AclLoadError::Read {
                    path: path.clone(),
                    problem: e.to_string(),
                })?;
                Acl::from_yaml(&text, &self.disabled).map_err(|error| AclLoadError::Invalid {
                    source: path.display().to_string(),
                    error,
                })
            }
        }
    }
}

/// The value a `${env:NAME}` or `${file:/path}` header names (a file's one
/// trailing newline removed). The problem never contains the value.
fn read_secret(source: &ValueSource) -> Result<String, String> {
    match source {
        ValueSource::Literal => Err("not a reference".to_string()),
        ValueSource::Env(name) => match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err("the environment variable is empty".to_string()),
            Err(std::env::VarError::NotPresent) => {
                Err("the environment variable is not set".to_string())
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err("the environment variable is not UTF-8".to_string())
            }
        },
        ValueSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                return Err("the file is empty".to_string());
            }
            Ok(text.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // the test writes its own files
    use super::*;

    #[test]
    fn a_file_secret_loses_one_trailing_newline_and_errors_name_no_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let file = ValueSource::File(path.display().to_string());
        std::fs::write(&path, "Bearer abc\r\n").unwrap();
        assert_eq!(read_secret(&file), Ok("Bearer abc".to_string()));
        std::fs::write(&path, "Bearer abc\n\n").unwrap();
        assert_eq!(read_secret(&file), Ok("Bearer abc\n".to_string()));
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(read_secret(&file), Err("the file is empty".to_string()));
        let missing = ValueSource::Env("SMOKESCREEN_TEST_SURELY_UNSET_VARIABLE".into());
        assert_eq!(
            read_secret(&missing),
            Err("the environment variable is not set".to_string())
        );
    }
}

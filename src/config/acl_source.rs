//! Where the egress ACL comes from and how it is read: used by the proxy at
//! start and on SIGHUP, and by the policy tools, so a tool can never accept
//! an ACL the proxy would refuse.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::core::acl::{Acl, AclError, Action};

/// Where the ACL comes from, so it can be read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclSource {
    /// `None`: the embedded default (nothing to reload).
    pub path: Option<PathBuf>,
    /// `--disable-acl-policy-action`: actions an ACL may not use.
    pub disabled: Vec<Action>,
}

/// Why the ACL did not load. `Display` names the file.
#[derive(Clone, Debug, PartialEq)]
pub enum AclLoadError {
    /// The file could not be read.
    Read { path: PathBuf, problem: String },
    /// The file (or the embedded default) is not a valid ACL.
    Invalid { source: String, error: AclError },
}

impl fmt::Display for AclLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclLoadError::Read { path, problem } => write!(f, "{}: {problem}", path.display()),
            AclLoadError::Invalid { source, error } => write!(f, "{source}: {error}"),
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
        }
    }

    /// The same rules, another file (`replay --against`).
    pub fn with_path(&self, path: &Path) -> AclSource {
        AclSource {
            path: Some(path.to_path_buf()),
            disabled: self.disabled.clone(),
        }
    }

    /// For messages: the file name, or `embedded default`.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "embedded default".to_string(),
        }
    }

    /// Read and validate the ACL; the warnings are for the log.
    pub fn load(&self) -> Result<(Acl, Vec<String>), AclLoadError> {
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

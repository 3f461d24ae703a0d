//! Where a setting's value comes from: a flag given on the command line
//! wins, else the config file's key, else the setting's default. Errors name
//! the flag or the file and key that held the bad value.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::file::FileConfig;
use super::settings::{Setting, Spec};
use super::ConfigError;

/// The parsed command line and config file, read one setting at a time.
pub struct Sources<'a> {
    pub matches: &'a ArgMatches,
    pub file: &'a FileConfig,
    pub file_path: Option<&'a Path>,
}

impl Sources<'_> {
    fn on_command_line(&self, spec: &Spec) -> bool {
        self.matches.value_source(spec.flag) == Some(ValueSource::CommandLine)
    }

    fn flag_text(&self, spec: &Spec) -> Result<Option<&str>, ConfigError> {
        let value = self.matches.try_get_one::<String>(spec.flag);
        Ok(value.map_err(internal)?.map(String::as_str))
    }

    fn flag_texts(&self, spec: &Spec) -> Result<Vec<&str>, ConfigError> {
        let values = self.matches.try_get_many::<String>(spec.flag);
        let values = values.map_err(internal)?.into_iter().flatten();
        Ok(values.map(String::as_str).collect())
    }

    fn flag_error(&self, spec: &Spec, value: &str, problem: String) -> ConfigError {
        ConfigError::InvalidValue {
            flag: spec.flag_name(),
            value: value.to_string(),
            problem,
        }
    }

    fn key_error(&self, key: &str, value: &str, problem: String) -> ConfigError {
        self.file_error(format!("{key}: invalid value {value:?}: {problem}"))
    }

    /// A problem with the config file's contents, naming its path.
    pub fn file_error(&self, problem: String) -> ConfigError {
        ConfigError::File {
            path: self.file_path.map(Path::to_path_buf).unwrap_or_default(),
            problem,
        }
    }

    /// The winning value of a single-valued setting, `None` when it is not
    /// given anywhere and has no default.
    pub fn value<T>(&self, setting: &Setting<T>) -> Result<Option<T>, ConfigError> {
        let spec = &setting.spec;
        let flag = self.flag_text(spec)?;
        let from_flag = |v: &str| (setting.parse)(v).map_err(|p| self.flag_error(spec, v, p));
        let from_file = spec.key.and_then(|k| Some((k, self.file.scalar(k)?)));
        match (self.on_command_line(spec), from_file, flag) {
            (true, _, Some(v)) => from_flag(v).map(Some),
            (false, Some((key, v)), _) => (setting.parse)(v)
                .map(Some)
                .map_err(|p| self.key_error(key, v, p)),
            (_, _, Some(v)) => from_flag(v).map(Some),
            (_, _, None) => Ok(None),
        }
    }

    /// A value-only setting's raw text and where it came from (`--flag` or
    /// the file's key), for a caller that words its own errors (one that
    /// must not echo a password in the value, say).
    pub fn named_text(&self, spec: &Spec) -> Result<Option<(String, String)>, ConfigError> {
        let flag = self.flag_text(spec)?;
        let from_file = spec.key.and_then(|k| Some((k, self.file.scalar(k)?)));
        Ok(match (self.on_command_line(spec), from_file, flag) {
            (true, _, Some(v)) => Some((spec.flag_name(), v.to_string())),
            (false, Some((key, v)), _) => Some((key.to_string(), v.to_string())),
            (_, _, Some(v)) => Some((spec.flag_name(), v.to_string())),
            (_, _, None) => None,
        })
    }

    /// A setting that always has a value: given, or its default.
    pub fn required<T>(&self, setting: &Setting<T>) -> Result<T, ConfigError> {
        self.value(setting)?
            .ok_or_else(|| internal(format!("{} has no default", setting.spec.flag_name())))
    }

    /// A switch: off unless given.
    pub fn switch(&self, setting: &Setting<bool>) -> Result<bool, ConfigError> {
        Ok(self.value(setting)?.unwrap_or(false))
    }

    /// A repeatable setting: the file's entries, then the command line's.
    pub fn list<T>(&self, setting: &Setting<T>) -> Result<Vec<T>, ConfigError> {
        let spec = &setting.spec;
        let key = spec.key.unwrap_or_default();
        let file = spec.key.map(|k| self.file.list(k)).unwrap_or_default();
        let from_file = file
            .iter()
            .map(|v| (setting.parse)(v).map_err(|p| self.key_error(key, v, p)));
        let flags = self.flag_texts(spec)?;
        let from_flags = flags
            .iter()
            .map(|v| (setting.parse)(v).map_err(|p| self.flag_error(spec, v, p)));
        from_file.chain(from_flags).collect()
    }

    /// A path setting: the flag if given, else the file's key. Empty means unset.
    pub fn path(&self, spec: &Spec) -> Result<Option<PathBuf>, ConfigError> {
        let flag = self.matches.try_get_one::<PathBuf>(spec.flag);
        let file = spec.key.and_then(|k| self.file.path(k));
        Ok(flag
            .map_err(internal)?
            .or(file)
            .filter(|p| !p.as_os_str().is_empty())
            .cloned())
    }

    /// A repeatable path flag's values, in command-line order.
    pub fn paths(&self, spec: &Spec) -> Result<Vec<PathBuf>, ConfigError> {
        let values = self.matches.try_get_many::<PathBuf>(spec.flag);
        Ok(values
            .map_err(internal)?
            .into_iter()
            .flatten()
            .cloned()
            .collect())
    }
}

/// The table and the command line disagree: a bug here, never bad input,
/// but reported rather than panicking.
fn internal(problem: impl std::fmt::Display) -> ConfigError {
    ConfigError::Inconsistent(format!("internal error in the settings table: {problem}"))
}

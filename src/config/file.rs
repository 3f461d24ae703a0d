//! The YAML config file (`--config-file`). Strict: an unknown key is an
//! error, because a misspelt security setting must not be silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// One scalar value as written in YAML. Kept as text so flags and file
/// values go through the very same parser (`port: 4750` and
/// `--listen-port 4750` cannot disagree).
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A pinned name's addresses: one string or a list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged, expecting = "an IP address or a list of IP addresses")]
pub enum StaticIps {
    One(String),
    Many(Vec<String>),
}

impl StaticIps {
    pub fn as_slice(&self) -> &[String] {
        match self {
            StaticIps::One(s) => std::slice::from_ref(s),
            StaticIps::Many(v) => v,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    pub cert_file: Option<PathBuf>,
    /// Absent: the key is in `cert_file` (a bundle), as with `--tls-server-bundle-file`.
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub client_ca_files: Vec<PathBuf>,
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
}

/// Every key the file may hold. Smokescreen's names first, then ours.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub ip: Option<Scalar>,
    pub port: Option<Scalar>,
    #[serde(default)]
    pub deny_ranges: Vec<String>,
    #[serde(default)]
    pub allow_ranges: Vec<String>,
    #[serde(default)]
    pub deny_addresses: Vec<String>,
    #[serde(default)]
    pub allow_addresses: Vec<String>,
    #[serde(default)]
    pub resolver_addresses: Vec<String>,
    pub acl_file: Option<PathBuf>,
    pub support_proxy_protocol: Option<Scalar>,
    #[serde(default)]
    pub proxy_protocol_trusted_ranges: Vec<String>,
    pub deny_message_extra: Option<Scalar>,
    pub allow_missing_role: Option<Scalar>,
    pub connect_timeout: Option<Scalar>,
    pub idle_timeout: Option<Scalar>,
    pub exit_timeout: Option<Scalar>,
    pub dns_timeout: Option<Scalar>,
    pub read_header_timeout: Option<Scalar>,
    pub unsafe_allow_private_ranges: Option<Scalar>,
    pub tls: Option<FileTls>,
    pub max_concurrent_requests: Option<Scalar>,
    pub max_request_rate: Option<Scalar>,
    pub max_request_burst: Option<Scalar>,
    pub max_concurrent_connect_tunnels: Option<Scalar>,
    pub statsd_address: Option<Scalar>,
    pub stats_socket_dir: Option<PathBuf>,
    pub stats_socket_file_mode: Option<Scalar>,
    // --- our additions ---
    pub upstream_http_proxy_addr: Option<Scalar>,
    pub upstream_https_proxy_addr: Option<Scalar>,
    #[serde(default)]
    pub static_hosts: BTreeMap<String, StaticIps>,
    pub hosts_file: Option<PathBuf>,
    pub log_format: Option<Scalar>,
    pub log_level: Option<Scalar>,
    pub max_connections: Option<Scalar>,
    pub max_header_bytes: Option<Scalar>,
    #[serde(default)]
    pub disabled_acl_policy_actions: Vec<String>,
    pub expose_prometheus_metrics: Option<Scalar>,
    pub prometheus_endpoint: Option<Scalar>,
    pub prometheus_listen_ip: Option<Scalar>,
    pub prometheus_port: Option<Scalar>,
}

impl FileConfig {
    /// Parse the file's text. An empty file (or only comments) is an empty config.
    pub fn from_yaml(text: &str) -> Result<FileConfig, String> {
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if value.is_null() {
            return Ok(FileConfig::default());
        }
        // Parse the text again (not `value`) so errors keep line and column.
        serde_yaml::from_str(text).map_err(|e| {
            let message = e.to_string();
            tidy_unknown_field(&message).unwrap_or(message)
        })
    }
}

/// serde lists every allowed key after an unknown one (35 of them at the top
/// level). Say instead which key is unknown, where, and the nearest real key.
fn tidy_unknown_field(message: &str) -> Option<String> {
    const MARK: &str = "unknown field `";
    let start = message.find(MARK)?;
    let prefix = message.get(..start)?;
    let rest = message.get(start + MARK.len()..)?;
    let (name, after) = rest.split_once('`')?;
    let location = after
        .rfind(" at line ")
        .and_then(|i| after.get(i..))
        .unwrap_or("");
    let known = after.split('`').skip(1).step_by(2);
    let nearest = known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    Some(format!("{prefix}unknown key `{name}`{location}{nearest}"))
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut left = i + 1;
        let mut next = Vec::with_capacity(row.len());
        next.push(left);
        for (j, cb) in b.iter().enumerate() {
            let up = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let cost = if ca == *cb { diagonal } else { diagonal + 1 };
            left = cost.min(up + 1).min(left + 1);
            next.push(left);
            diagonal = up;
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_comment_only_files_are_empty_configs() {
        assert_eq!(FileConfig::from_yaml(""), Ok(FileConfig::default()));
        assert_eq!(
            FileConfig::from_yaml("# nothing\n"),
            Ok(FileConfig::default())
        );
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("port", "port"), 0);
    }

    #[test]
    fn scalars_keep_their_text() {
        let f = FileConfig::from_yaml(
            "port: 4750\nmax_request_rate: 12.5\nsupport_proxy_protocol: true\nip: '::'\n",
        );
        let f = f.unwrap_or_default();
        assert_eq!(f.port, Some(Scalar("4750".into())));
        assert_eq!(f.max_request_rate, Some(Scalar("12.5".into())));
        assert_eq!(f.support_proxy_protocol, Some(Scalar("true".into())));
        assert_eq!(f.ip, Some(Scalar("::".into())));
    }

    #[test]
    fn unknown_and_mistyped_keys_are_errors_naming_the_key() {
        let unknown = FileConfig::from_yaml("port: 1\nconect_timeout: 10s\n");
        assert_eq!(
            unknown,
            Err(
                "unknown key `conect_timeout` at line 2 column 1 (did you mean `connect_timeout`?)"
                    .to_string()
            )
        );
        let nested = FileConfig::from_yaml("tls:\n  cert: x\n");
        assert_eq!(
            nested,
            Err("tls: unknown key `cert` at line 2 column 3".to_string())
        );
        let far = FileConfig::from_yaml("port: 1\nzzzzzzzzzzzz: 1\n");
        assert_eq!(
            far,
            Err("unknown key `zzzzzzzzzzzz` at line 2 column 1".to_string())
        );
        let mistyped = FileConfig::from_yaml("port: [1, 2]\n");
        assert!(mistyped
            .is_err_and(|e| e.contains("port") && e.contains("a string, number or boolean")));
    }
}

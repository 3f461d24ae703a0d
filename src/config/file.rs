//! The YAML config file (`--config-file`). Strict: an unknown key is an
//! error, because a misspelt security setting must not be silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::settings::{by_key, Shape, ALL, BLOCK_KEYS};

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

/// One top-level value, shaped by its setting.
#[derive(Clone, Debug, PartialEq)]
enum FileValue {
    Scalar(Scalar),
    List(Vec<String>),
    Path(PathBuf),
}

/// The file's contents. The keys are the settings table's (`settings.rs`)
/// plus the `tls` and `static_hosts` blocks; anything else is an error.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileConfig {
    /// By key; a key given as `~` (null) is absent.
    values: BTreeMap<&'static str, FileValue>,
    pub tls: Option<FileTls>,
    pub static_hosts: BTreeMap<String, StaticIps>,
}

/// Every key the file may hold, for "unknown key" errors.
static FILE_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let keys = ALL.iter().filter_map(|spec| spec.key);
    keys.chain(BLOCK_KEYS).collect()
});

/// A top-level key, refused while it is read (so the error has its position)
/// unless the table knows it.
struct Key(&'static str);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                match FILE_KEYS.iter().find(|k| **k == name) {
                    Some(key) => Ok(Key(key)),
                    None => Err(de::Error::unknown_field(name, FILE_KEYS.as_slice())),
                }
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for FileConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor;
        impl<'de> Visitor<'de> for FileVisitor {
            type Value = FileConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct FileConfig")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileConfig, A::Error> {
                let mut file = FileConfig::default();
                let mut seen: Vec<&'static str> = Vec::new();
                while let Some(Key(key)) = map.next_key()? {
                    if seen.contains(&key) {
                        return Err(de::Error::duplicate_field(key));
                    }
                    seen.push(key);
                    let value = match (key, by_key(key).map(|spec| spec.shape)) {
                        ("tls", _) => {
                            file.tls = map.next_value()?;
                            None
                        }
                        ("static_hosts", _) => {
                            file.static_hosts = map.next_value()?;
                            None
                        }
                        (_, Some(Shape::List)) => Some(FileValue::List(map.next_value()?)),
                        (_, Some(Shape::Path | Shape::PathList)) => {
                            map.next_value::<Option<PathBuf>>()?.map(FileValue::Path)
                        }
                        _ => map.next_value::<Option<Scalar>>()?.map(FileValue::Scalar),
                    };
                    if let Some(value) = value {
                        file.values.insert(key, value);
                    }
                }
                Ok(file)
            }
        }
        deserializer.deserialize_map(FileVisitor)
    }
}

impl FileConfig {
    /// A scalar key's text.
    pub fn scalar(&self, key: &str) -> Option<&str> {
        match self.values.get(key) {
            Some(FileValue::Scalar(Scalar(text))) => Some(text),
            _ => None,
        }
    }

    /// A list key's entries (none when absent).
    pub fn list(&self, key: &str) -> &[String] {
        match self.values.get(key) {
            Some(FileValue::List(items)) => items,
            _ => &[],
        }
    }

    pub fn path(&self, key: &str) -> Option<&PathBuf> {
        match self.values.get(key) {
            Some(FileValue::Path(path)) => Some(path),
            _ => None,
        }
    }

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
        assert_eq!(f.scalar("port"), Some("4750"));
        assert_eq!(f.scalar("max_request_rate"), Some("12.5"));
        assert_eq!(f.scalar("support_proxy_protocol"), Some("true"));
        assert_eq!(f.scalar("ip"), Some("::"));
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

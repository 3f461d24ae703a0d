//! The YAML shape of a `version: v1` ACL file, as read by serde, before
//! validation. Scalars are read leniently (as Go's yaml does: `version: 1`
//! or `project: 2024` are text), while keys inside a rule are checked
//! strictly by the validator.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A YAML scalar read as text. Numbers and booleans become their text and
/// null becomes the empty string, so a config never fails on a type that Go
/// would have accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `services` entry or the `default` rule. Unknown keys are collected
/// (not ignored) so the validator can name them.
#[derive(Debug, Default, Deserialize)]
pub struct RawRule {
    pub name: Option<Text>,
    pub project: Option<Text>,
    pub action: Option<Text>,
    pub allowed_domains: Option<Vec<Text>>,
    /// Hosts a client may name in `X-Upstream-Https-Proxy` (Smokescreen HEAD).
    pub allowed_external_proxies: Option<Vec<Text>>,
    pub mitm_domains: Option<Vec<RawMitmDomain>>,
    #[serde(flatten)]
    pub other: serde_yaml::Mapping,
}

/// One `mitm_domains` entry, Smokescreen's schema; other keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMitmDomain {
    pub domain: Option<Text>,
    /// In file order.
    pub add_headers: Option<serde_yaml::Mapping>,
    pub detailed_http_logs: Option<bool>,
    pub detailed_http_logs_full_headers: Option<Vec<Text>>,
}

impl RawMitmDomain {
    /// `add_headers` as (name, value) text pairs, in file order.
    pub fn headers(&self) -> Vec<(String, String)> {
        let Some(map) = &self.add_headers else {
            return Vec::new();
        };
        map.iter()
            .map(|(k, v)| {
                let value = serde_yaml::from_value::<Text>(v.clone())
                    .map(|t| t.0)
                    .unwrap_or_else(|_| key_text(v));
                (key_text(k), value)
            })
            .collect()
    }
}

/// The whole file. Unknown top-level keys are collected for a warning.
#[derive(Debug, Default, Deserialize)]
pub struct RawAcl {
    pub version: Option<Text>,
    pub services: Option<Vec<RawRule>>,
    pub default: Option<RawRule>,
    pub global_allow_list: Option<Vec<Text>>,
    pub global_deny_list: Option<Vec<Text>>,
    #[serde(flatten)]
    pub other: serde_yaml::Mapping,
}

/// A list of scalars as text (absent: empty).
pub fn texts(list: Option<&[Text]>) -> Vec<String> {
    list.unwrap_or_default()
        .iter()
        .map(|t| t.0.clone())
        .collect()
}

/// Parse the text. An empty document reads as an empty mapping (so it fails
/// on the version, as in Smokescreen, rather than on YAML).
pub fn parse(text: &str) -> Result<RawAcl, serde_yaml::Error> {
    let doc: Option<RawAcl> = serde_yaml::from_str(text)?;
    Ok(doc.unwrap_or_default())
}

/// A mapping key as a user would read it in a message.
pub fn key_text(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

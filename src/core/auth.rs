//! Who is asking: `Proxy-Authorization: Basic` → a role, or, with mTLS,
//! the client certificate's common name → a role.
//!
//! As in the Fly example, the user name is ignored and a correct password
//! gives the role `authed`. Unlike it, the password is compared in constant
//! time, and every failure is typed. With client certificates configured the
//! certificate names the role (as in Stripe's deployments); a password, if
//! one is also configured, is required in addition (two factors, and a
//! stolen password alone no longer opens the proxy).

use std::fmt;

use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::core::head::Headers;

/// The role a correct password grants (the Fly example's ACL names it).
pub const AUTHED_ROLE: &str = "authed";

/// The shared proxy password (`PROXY_PASSWORD`). `Debug` never shows it,
/// so a logged `Config` or `AuthMode` cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Password {
        Password(bytes.into())
    }

    /// The secret itself, for callers that must hand it on (never for logging).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison: the time taken does not depend on where the
    /// candidate differs, nor on its length.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let mut diff = subtle::Choice::from(u8::from(self.0.len() != candidate.len()));
        for (i, b) in self.0.iter().enumerate() {
            let c = candidate.get(i).copied().unwrap_or(0);
            diff |= !b.ct_eq(&c);
        }
        !bool::from(diff)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How clients prove who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Basic auth against one shared password (`PROXY_PASSWORD`).
    Password(Password),
    /// No authentication (`--allow-unauthenticated`, development only):
    /// every client gets the empty role, so the ACL's default rule applies.
    Unauthenticated,
    /// mTLS (`--tls-client-ca-file`): the role is the client certificate's
    /// common name. With `password`, Basic auth with it is required as well.
    ClientCertificate { password: Option<Password> },
}

/// What the TLS handshake proved about the client: data from a verified
/// certificate, handed to the core by the shell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCert {
    pub common_name: Option<String>,
    pub organization_unit: Option<String>,
}

/// A client role: the ACL service name it is judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role(pub String);

/// Why no role could be determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Duplicate,
    NotBasic,
    BadEncoding,
    NoSeparator,
    WrongPassword,
    /// mTLS is configured but the connection carried no verified certificate.
    NoClientCertificate,
    /// The verified certificate has no (or an empty) common name.
    NoCommonName,
}

impl AuthFailure {
    /// The specific cause, for our own log field (never includes credentials).
    pub fn detail(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing Proxy-Authorization header",
            AuthFailure::Duplicate => "more than one Proxy-Authorization header",
            AuthFailure::NotBasic => "Proxy-Authorization scheme is not Basic",
            AuthFailure::BadEncoding => "Proxy-Authorization credentials are not valid base64",
            AuthFailure::NoSeparator => "Proxy-Authorization credentials have no ':'",
            AuthFailure::WrongPassword => "wrong password",
            AuthFailure::NoClientCertificate => "no client certificate",
            AuthFailure::NoCommonName => "client certificate has no common name",
        }
    }
}

impl fmt::Display for AuthFailure {
    /// Smokescreen's text (the Fly example logs `error="authorization failed"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("authorization failed")
    }
}

impl std::error::Error for AuthFailure {}

/// Determine the role for a request on a connection without a client certificate.
pub fn determine_role(headers: &Headers, mode: &AuthMode) -> Result<Role, AuthFailure> {
    determine_role_for(headers, mode, None)
}

/// Determine the role for a request; `cert` is the connection's verified
/// client certificate, if any.
pub fn determine_role_for(
    headers: &Headers,
    mode: &AuthMode,
    cert: Option<&ClientCert>,
) -> Result<Role, AuthFailure> {
    match mode {
        AuthMode::Unauthenticated => Ok(Role(String::new())),
        AuthMode::Password(p) => check_password(headers, p),
        AuthMode::ClientCertificate { password } => {
            let cert = cert.ok_or(AuthFailure::NoClientCertificate)?;
            let cn = cert
                .common_name
                .as_deref()
                .filter(|cn| !cn.is_empty())
                .ok_or(AuthFailure::NoCommonName)?;
            if let Some(p) = password {
                check_password(headers, p)?;
            }
            Ok(Role(cn.to_string()))
        }
    }
}

fn check_password(headers: &Headers, password: &Password) -> Result<Role, AuthFailure> {
    let mut values = headers.get_all("proxy-authorization");
    let value = values.next().ok_or(AuthFailure::Missing)?;
    if values.next().is_some() {
        return Err(AuthFailure::Duplicate);
    }
    let value = std::str::from_utf8(value)
        .map_err(|_| AuthFailure::NotBasic)?
        .trim();
    let (scheme, creds) = value.split_once(' ').ok_or(AuthFailure::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthFailure::NotBasic);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(creds.trim_start())
        .map_err(|_| AuthFailure::BadEncoding)?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(AuthFailure::NoSeparator)?;
    let candidate = decoded.get(colon + 1..).unwrap_or_default();
    if password.matches(candidate) {
        Ok(Role(AUTHED_ROLE.to_string()))
    } else {
        Err(AuthFailure::WrongPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&str]) -> Headers {
        Headers(
            values
                .iter()
                .map(|v| ("Proxy-Authorization".to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    fn mode() -> AuthMode {
        AuthMode::Password(Password::new("s3cret:with:colons"))
    }

    #[test]
    fn any_user_name_with_the_password_is_authed() {
        for user in ["anyname", "", "x y"] {
            let h = headers(&[&basic(user, "s3cret:with:colons")]);
            assert_eq!(determine_role(&h, &mode()), Ok(Role("authed".into())));
        }
    }

    #[test]
    fn each_failure_is_named() {
        let cases: [(&[&str], AuthFailure); 6] = [
            (&[], AuthFailure::Missing),
            (&["Bearer abc"], AuthFailure::NotBasic),
            (&["Basic !!!"], AuthFailure::BadEncoding),
            (&["Basic bm9jb2xvbg=="], AuthFailure::NoSeparator),
            (&["Basic dTp3cm9uZw=="], AuthFailure::WrongPassword),
            (
                &["Basic dTp3cm9uZw==", "Basic dTp3cm9uZw=="],
                AuthFailure::Duplicate,
            ),
        ];
        for (values, want) in cases {
            assert_eq!(
                determine_role(&headers(values), &mode()),
                Err(want),
                "{values:?}"
            );
        }
        assert_eq!(
            AuthFailure::WrongPassword.to_string(),
            "authorization failed"
        );
    }

    #[test]
    fn scheme_is_case_insensitive_and_prefixes_do_not_pass() {
        let h = headers(&[&basic("u", "s3cret:with:colons").replace("Basic", "bAsIc")]);
        assert!(determine_role(&h, &mode()).is_ok());
        assert_eq!(
            determine_role(&headers(&[&basic("u", "s3cret")]), &mode()),
            Err(AuthFailure::WrongPassword)
        );
        assert_eq!(
            determine_role(&headers(&[&basic("u", "s3cret:with:colonsX")]), &mode()),
            Err(AuthFailure::WrongPassword)
        );
    }

    #[test]
    fn client_certificate_names_the_role_and_a_password_adds_a_factor() {
        let cert = ClientCert {
            common_name: Some("billing".into()),
            organization_unit: Some("payments".into()),
        };
        let cert_only = AuthMode::ClientCertificate { password: None };
        assert_eq!(
            determine_role_for(&headers(&[]), &cert_only, Some(&cert)),
            Ok(Role("billing".into()))
        );
        assert_eq!(
            determine_role_for(&headers(&[]), &cert_only, None),
            Err(AuthFailure::NoClientCertificate)
        );
        let no_cn = ClientCert::default();
        assert_eq!(
            determine_role_for(&headers(&[]), &cert_only, Some(&no_cn)),
            Err(AuthFailure::NoCommonName)
        );
        let both = AuthMode::ClientCertificate {
            password: Some(Password::new("s3cret:with:colons")),
        };
        assert_eq!(
            determine_role_for(&headers(&[]), &both, Some(&cert)),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            determine_role_for(&headers(&[&basic("u", "wrong")]), &both, Some(&cert)),
            Err(AuthFailure::WrongPassword)
        );
        // The password adds a factor; the certificate still names the role.
        assert_eq!(
            determine_role_for(
                &headers(&[&basic("u", "s3cret:with:colons")]),
                &both,
                Some(&cert)
            ),
            Ok(Role("billing".into()))
        );
        // A password alone never stands in for the certificate.
        assert_eq!(
            determine_role_for(&headers(&[&basic("u", "s3cret:with:colons")]), &both, None),
            Err(AuthFailure::NoClientCertificate)
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        assert!(!format!("{:?}", mode()).contains("s3cret"));
    }

    #[test]
    fn unauthenticated_mode_gives_the_empty_role() {
        assert_eq!(
            determine_role(&headers(&[]), &AuthMode::Unauthenticated),
            Ok(Role(String::new()))
        );
    }

    proptest! {
        #[test]
        fn matches_is_equality(a in proptest::collection::vec(any::<u8>(), 0..40), b in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(Password::new(a.clone()).matches(&b), a == b);
            prop_assert!(Password::new(a.clone()).matches(&a));
        }

        #[test]
        fn arbitrary_header_values_never_panic(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let h = Headers(vec![("proxy-authorization".into(), v)]);
            let _ = determine_role(&h, &mode());
        }
    }
}

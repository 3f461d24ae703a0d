//! The client-facing TLS listener: rustls (ring provider) through
//! futures-rustls, which works with async-std.
//!
//! With client CAs configured a client certificate is *required*
//! (Smokescreen accepts clients without one; we refuse them in the
//! handshake), and CRLs are enforced during the handshake (Smokescreen
//! v0.0.2 loaded them and never checked). The verified certificate's
//! common name and first organizational unit are handed to the core as
//! data ([`ClientCert`]); the core makes the common name the role.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::TlsAcceptor;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;
use crate::core::auth::ClientCert;

/// Why the TLS settings could not be loaded. `Display` names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    Read { path: PathBuf, problem: String },
    NoCertificate(PathBuf),
    NoKey(PathBuf),
    NoCrl(PathBuf),
    BadCa { path: PathBuf, problem: String },
    Config(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, problem } => write!(f, "{}: {problem}", path.display()),
            TlsError::NoCertificate(p) => {
                write!(f, "{}: no PEM certificate found", p.display())
            }
            TlsError::NoKey(p) => write!(f, "{}: no PEM private key found", p.display()),
            TlsError::NoCrl(p) => write!(f, "{}: no PEM X509 CRL found", p.display()),
            TlsError::BadCa { path, problem } => {
                write!(f, "{}: unusable CA certificate: {problem}", path.display())
            }
            TlsError::Config(problem) => write!(f, "TLS configuration: {problem}"),
        }
    }
}

impl std::error::Error for TlsError {}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

fn pem_error(path: &Path, e: pem::Error) -> TlsError {
    TlsError::Read {
        path: path.to_path_buf(),
        problem: format!("invalid PEM: {e}"),
    }
}

/// Every PEM section of type `T` in the file (other sections are skipped).
fn all_of<T: PemObject>(path: &Path) -> Result<Vec<T>, TlsError> {
    T::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = all_of(path)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_slice(&read(path)?) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoKey(path.to_path_buf())),
        Err(e) => Err(pem_error(path, e)),
    }
}

fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = all_of(path)?;
    if crls.is_empty() {
        return Err(TlsError::NoCrl(path.to_path_buf()));
    }
    Ok(crls)
}

/// Build the server configuration from the operator's files.
///
/// Revocation: every certificate of the presented chain (the client's own
/// and each intermediate) is checked against the CRLs of its issuer, so
/// revoking an intermediate CA revokes everything it signed. A certificate
/// whose issuer has no CRL configured is accepted (unknown status is not
/// refused), so several CAs can be trusted while only some publish CRLs.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs(&tls.cert_file)?;
    let key = key(tls.key_file.as_deref().unwrap_or(&tls.cert_file))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if tls.client_ca_files.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for path in &tls.client_ca_files {
            for ca in certs(path)? {
                roots.add(ca).map_err(|e| TlsError::BadCa {
                    path: path.clone(),
                    problem: e.to_string(),
                })?;
            }
        }
        let mut revoked = Vec::new();
        for path in &tls.crl_files {
            revoked.extend(crls(path)?);
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(revoked)
            .allow_unknown_revocation_status()
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An acceptor for the listener.
pub fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    server_config(tls).map(TlsAcceptor::from)
}

/// Common name and first organizational unit of a (verified) certificate.
/// A certificate x509-parser cannot read gives empty names, which the core
/// refuses as "no common name".
pub fn client_cert(der: &[u8]) -> ClientCert {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return ClientCert::default();
    };
    let subject = cert.subject();
    let text = |mut it: Box<
        dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>> + '_,
    >| { it.next().and_then(|a| a.as_str().ok()).map(str::to_string) };
    ClientCert {
        common_name: text(Box::new(subject.iter_common_name())),
        organization_unit: text(Box::new(subject.iter_organizational_unit())),
    }
}

/// The verified client certificate of an established server connection.
pub fn peer_cert(conn: &rustls::ServerConnection) -> Option<ClientCert> {
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|end_entity| client_cert(end_entity.as_ref()))
}

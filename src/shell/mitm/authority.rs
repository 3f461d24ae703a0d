//! The MITM CA: loaded and checked at start, and the leaf certificates it
//! mints for intercepted names (one per name, cached, bounded, renewed
//! daily), each served with ALPN `http/1.1` only.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

use crate::config::MitmFiles;
use crate::core::time::Timestamp;

/// Why the MITM CA did not load. `Display` starts with Smokescreen's
/// `mitm_ca_key_file error` texts where it has one.
#[derive(Debug)]
pub enum CaError {
    Read {
        path: PathBuf,
        problem: String,
    },
    /// The certificate file holds no usable certificate.
    Certificate {
        path: PathBuf,
        problem: String,
    },
    /// The key file holds no usable private key.
    Key {
        path: PathBuf,
        problem: String,
    },
    /// The key is not the certificate's.
    Mismatch,
    /// The certificate may not sign certificates.
    NotCa {
        path: PathBuf,
    },
}

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaError::Read { path, problem } => write!(
                f,
                "mitm_ca_key_file error tls.LoadX509KeyPair: open {}: {problem}",
                path.display()
            ),
            CaError::Certificate { path, problem } => write!(
                f,
                "mitm_ca_key_file error: mitm_ca_key_file contains no certificates: {}: {problem}",
                path.display()
            ),
            CaError::Key { path, problem } => write!(
                f,
                "mitm_ca_key_file error tls.LoadX509KeyPair: {}: {problem}",
                path.display()
            ),
            CaError::Mismatch => f.write_str(
                "mitm_ca_key_file error tls.LoadX509KeyPair: private key does not match public key",
            ),
            CaError::NotCa { path } => write!(
                f,
                "mitm_ca_cert_file error: {} is not a CA certificate (basicConstraints CA:TRUE)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CaError {}

/// How many names keep a minted certificate; the oldest goes first.
const CACHE_MAX: usize = 1024;
/// Minted certificates are valid from a day before to this many days after
/// minting, and are minted again after a day.
const VALID_DAYS: i64 = 7;
const RENEW_SECS: i64 = 86_400;

/// The loaded CA and the certificates it minted.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    cache: Mutex<Cache>,
    cache_max: usize,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authority")
    }
}

#[derive(Default)]
struct Cache {
    by_name: HashMap<String, (i64, Arc<ServerConfig>)>,
    order: VecDeque<String>,
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::Read {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

impl Authority {
    /// Read and check the CA certificate and key (PEM).
    pub fn load(files: &MitmFiles) -> Result<Authority, CaError> {
        let cert_pem = read(&files.cert_file)?;
        let key_pem = read(&files.key_file)?;
        let cert_err = |problem: String| CaError::Certificate {
            path: files.cert_file.clone(),
            problem,
        };
        let ca_der = pem_certificate(&cert_pem).map_err(cert_err)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CaError::Key {
            path: files.key_file.clone(),
            problem: e.to_string(),
        })?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&ca_der).map_err(|e| cert_err(e.to_string()))?;
        if parsed.tbs_certificate.subject_pki.raw
            != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
        {
            return Err(CaError::Mismatch);
        }
        if !parsed.is_ca() {
            return Err(CaError::NotCa {
                path: files.cert_file.clone(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&ca_der, key).map_err(|e| cert_err(e.to_string()))?;
        Ok(Authority {
            issuer,
            ca_der,
            cache: Mutex::new(Cache::default()),
            cache_max: CACHE_MAX,
        })
    }

    /// The TLS server configuration for `name` (a normalised host name or
    /// IP literal), minted on first use and cached.
    pub fn server_config(&self, name: &str, now: Timestamp) -> Result<Arc<ServerConfig>, String> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((minted, config)) = cache.by_name.get(name) {
                if now.secs() - minted < RENEW_SECS {
                    return Ok(Arc::clone(config));
                }
            }
        }
        let config = Arc::new(self.mint(name, now)?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache
                .by_name
                .insert(name.to_owned(), (now.secs(), Arc::clone(&config)))
                .is_none()
            {
                cache.order.push_back(name.to_owned());
            }
            while cache.order.len() > self.cache_max {
                if let Some(old) = cache.order.pop_front() {
                    cache.by_name.remove(&old);
                }
            }
        }
        Ok(config)
    }

    fn mint(&self, name: &str, now: Timestamp) -> Result<ServerConfig, String> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![match name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.try_into().map_err(|e| format!("{e}"))?),
        }];
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (y, m, d) = day(now, -1);
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = day(now, VALID_DAYS);
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let chain = vec![cert.der().clone(), self.ca_der.clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The first certificate in a PEM text.
fn pem_certificate(pem: &str) -> Result<CertificateDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())
}

/// The UTC date `days` days from `now`.
fn day(now: Timestamp, days: i64) -> (i32, u8, u8) {
    let (y, m, d) = Timestamp::new(now.secs() + days * 86_400, 0).date();
    (
        i32::try_from(y).unwrap_or(9999),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // the test writes its own files
    use super::*;
    use rcgen::{BasicConstraints, IsCa};

    fn ca_files(dir: &Path, is_ca: bool) -> MitmFiles {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        if is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        let files = MitmFiles {
            cert_file: dir.join("ca.pem"),
            key_file: dir.join("ca.key"),
        };
        std::fs::write(&files.cert_file, cert.pem()).unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn minted_configs_are_cached_per_name_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut authority = Authority::load(&ca_files(dir.path(), true)).unwrap();
        authority.cache_max = 2;
        let now = Timestamp::new(1_750_000_000, 0);
        let a = authority.server_config("a.example", now).unwrap();
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let again = authority.server_config("a.example", now).unwrap();
        assert!(Arc::ptr_eq(&a, &again), "cached");
        authority.server_config("b.example", now).unwrap();
        authority.server_config("10.1.2.3", now).unwrap();
        let cache = authority.cache.lock().unwrap();
        assert_eq!(cache.by_name.len(), 2);
        assert!(!cache.by_name.contains_key("a.example"), "oldest evicted");
        drop(cache);
        let later = Timestamp::new(now.secs() + RENEW_SECS, 0);
        let renewed = authority.server_config("b.example", later).unwrap();
        let old = authority.server_config("b.example", now).unwrap();
        assert!(Arc::ptr_eq(&renewed, &old), "the renewed one replaced it");
    }

    #[test]
    fn a_certificate_that_is_not_a_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Authority::load(&ca_files(dir.path(), false)).unwrap_err();
        assert!(err.to_string().contains("is not a CA certificate"), "{err}");
    }
}

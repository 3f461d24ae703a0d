//! Intercepted CONNECT tunnels (`mitm_domains`): the MITM CA and its minted
//! certificates (`authority`), TLS inside the tunnel (`stream`), and the
//! inner request loop (`session`). What is intercepted, which headers are
//! added and whether an inner request may go on are decided by `core::mitm`.

pub mod authority;
pub mod session;
pub mod stream;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::Config;
use crate::shell::http::forward::Dial;
use crate::shell::transport::net::Tcp;
use authority::{Authority, CaError};
use stream::{Locked, Owned};

/// The destination side of an intercepted tunnel: TLS verified against the
/// system roots and `--mitm-upstream-ca-file`.
pub type OriginTls = Locked<TlsStream<Owned<Tcp>>, Tcp>;

/// What intercepting needs, loaded once at start.
pub struct Mitm {
    pub authority: Authority,
    upstream: Arc<ClientConfig>,
}

impl fmt::Debug for Mitm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mitm")
    }
}

/// Why interception cannot start.
#[derive(Debug)]
pub enum MitmError {
    Ca(CaError),
    /// An `--mitm-upstream-ca-file` could not be used.
    UpstreamCa {
        path: String,
        problem: String,
    },
}

impl fmt::Display for MitmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MitmError::Ca(e) => e.fmt(f),
            MitmError::UpstreamCa { path, problem } => {
                write!(f, "--mitm-upstream-ca-file {path}: {problem}")
            }
        }
    }
}

impl std::error::Error for MitmError {}

impl Mitm {
    /// `None` when no MITM CA is configured.
    pub fn load(config: &Config) -> Result<Option<Arc<Mitm>>, MitmError> {
        let Some(files) = &config.mitm else {
            return Ok(None);
        };
        let authority = Authority::load(files).map_err(MitmError::Ca)?;
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped (as every client does);
        // an intercepted destination that needs one then fails verification.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for path in &config.mitm_upstream_ca_files {
            for cert in upstream_cas(path)? {
                roots.add(cert).map_err(|e| MitmError::UpstreamCa {
                    path: path.display().to_string(),
                    problem: e.to_string(),
                })?;
            }
        }
        let mut client = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Arc::new(Mitm {
            authority,
            upstream: Arc::new(client),
        })))
    }

    /// How to reach an intercepted destination named `host`.
    pub fn dialer(&self, host: &str) -> Result<TlsDial, String> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
        Ok(TlsDial {
            connector: TlsConnector::from(Arc::clone(&self.upstream)),
            name,
        })
    }
}

fn upstream_cas(path: &Path) -> Result<Vec<CertificateDer<'static>>, MitmError> {
    let fail = |problem: String| MitmError::UpstreamCa {
        path: path.display().to_string(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no certificate in the file".to_string()));
    }
    Ok(certs)
}

/// TLS to an intercepted destination, its certificate verified for `name`.
pub struct TlsDial {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsDial {
    /// TLS over an already dialled (checked) connection.
    pub async fn handshake(&self, tcp: Tcp) -> std::io::Result<OriginTls> {
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.name.clone(), Owned::new(tcp.clone(), Vec::new()))
            .await?;
        Ok(Locked::new(tls, tcp))
    }
}

impl Dial for TlsDial {
    type Stream = OriginTls;
    async fn dial(&self, addr: SocketAddr) -> std::io::Result<OriginTls> {
        self.handshake(Tcp::connect(addr).await?).await
    }
}

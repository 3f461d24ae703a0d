#![allow(clippy::disallowed_methods)] // tests own sockets and files
//! The TLS listener's handshake with a PKI generated in the test: a good
//! client's certificate names are extracted; no certificate, a revoked one,
//! or one from another CA is refused during the handshake.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::sync::Arc;

use async_std::io::{ReadExt as _, WriteExt as _};
use async_std::net::{TcpListener, TcpStream};
use common::in_private_netns;
use futures_rustls::{TlsAcceptor, TlsConnector};
use pki::{write, Ca, Pem};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use smokescreen::config::TlsConfig;
use smokescreen::core::auth::ClientCert;
use smokescreen::shell::front::tls;

fn der_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn der_key(pem: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn client_config(ca: &Ca, identity: Option<&Pem>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in der_certs(&ca.pem.cert) {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some(p) => builder
            .with_client_auth_cert(der_certs(&p.cert), der_key(&p.key))
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// One handshake over a loopback pair. Returns the server's view: the
/// client certificate's names, or the handshake error.
async fn handshake(
    acceptor: &TlsAcceptor,
    client: Arc<rustls::ClientConfig>,
) -> Result<Option<ClientCert>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = acceptor.clone();
    let server = async_std::task::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        match acceptor.accept(stream).await {
            Ok(mut tls) => {
                let cert = tls::peer_cert(tls.get_ref().1);
                let _ = tls.write_all(b"hi").await;
                let _ = tls.flush().await;
                Ok(cert)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    // With TLS 1.3 the client may finish before the server judges its
    // certificate; reading makes it wait for the verdict.
    if let Ok(mut s) = TlsConnector::from(client).connect(name, tcp).await {
        let mut buf = [0u8; 2];
        let _ = s.read_exact(&mut buf).await;
    }
    server.await
}

#[test]
fn client_certificates_are_required_verified_and_checked_against_crls() {
    if !in_private_netns("client_certificates_are_required_verified_and_checked_against_crls") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test Client CA");
    let server = ca.server();
    let good = ca.client(Some("billing"), Some("payments"), 10);
    let revoked = ca.client(Some("mallory"), None, 11);
    let no_cn = ca.client(None, Some("payments"), 12);
    let other_ca = Ca::new("Someone Else's CA");
    let stranger = other_ca.client(Some("billing"), None, 10);

    let bundle = write(
        dir.path(),
        "server.pem",
        &format!("{}{}", server.cert, server.key),
    );
    let config = TlsConfig {
        cert_file: bundle.clone(),
        key_file: None,
        client_ca_files: vec![write(dir.path(), "ca.pem", &ca.pem.cert)],
        crl_files: vec![write(dir.path(), "crl.pem", &ca.crl(&[11]))],
    };
    let acceptor = tls::acceptor(&config).expect("TLS config loads");

    async_std::task::block_on(async {
        let ok = handshake(&acceptor, client_config(&ca, Some(&good))).await;
        assert_eq!(
            ok,
            Ok(Some(ClientCert {
                common_name: Some("billing".into()),
                organization_unit: Some("payments".into()),
            }))
        );

        let err = handshake(&acceptor, client_config(&ca, None))
            .await
            .unwrap_err();
        assert!(err.contains("certificate"), "no cert: {err}");

        let err = handshake(&acceptor, client_config(&ca, Some(&revoked)))
            .await
            .unwrap_err();
        assert!(err.to_lowercase().contains("revoked"), "revoked: {err}");

        let err = handshake(&acceptor, client_config(&ca, Some(&stranger)))
            .await
            .unwrap_err();
        assert!(
            err.contains("UnknownIssuer") || err.contains("issuer"),
            "other CA: {err}"
        );

        // A valid certificate without a CN passes the handshake; the core
        // then refuses it a role ("client certificate has no common name").
        let ok = handshake(&acceptor, client_config(&ca, Some(&no_cn))).await;
        assert_eq!(
            ok,
            Ok(Some(ClientCert {
                common_name: None,
                organization_unit: Some("payments".into()),
            }))
        );
    });

    // Without client CAs: plain server TLS, no client certificate asked for.
    let plain = TlsConfig {
        cert_file: write(dir.path(), "cert.pem", &server.cert),
        key_file: Some(write(dir.path(), "key.pem", &server.key)),
        client_ca_files: vec![],
        crl_files: vec![],
    };
    let acceptor = tls::acceptor(&plain).expect("TLS config loads");
    async_std::task::block_on(async {
        assert_eq!(
            handshake(&acceptor, client_config(&ca, None)).await,
            Ok(None)
        );
    });
}

/// Root → intermediate → leaf: the root's CRL revoking the intermediate
/// revokes every client certificate it signed (issue 13, item 2: only the
/// leaf used to be checked, so `authed` got its role).
#[test]
fn a_revoked_intermediate_ca_revokes_its_clients() {
    if !in_private_netns("a_revoked_intermediate_ca_revokes_its_clients") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::new("Test Root CA");
    let revoked_ca = root.intermediate("Revoked Intermediate", 21);
    let good_ca = root.intermediate("Good Intermediate", 22);
    let server = root.server();
    let config = TlsConfig {
        cert_file: write(dir.path(), "cert.pem", &server.cert),
        key_file: Some(write(dir.path(), "key.pem", &server.key)),
        client_ca_files: vec![write(dir.path(), "root.pem", &root.pem.cert)],
        // The root revokes the intermediate; the intermediates publish no CRL.
        crl_files: vec![write(dir.path(), "root-crl.pem", &root.crl(&[21]))],
    };
    let acceptor = tls::acceptor(&config).expect("TLS config loads");
    async_std::task::block_on(async {
        let ok = handshake(
            &acceptor,
            client_config(&root, Some(&good_ca.client_chain("authed", 5))),
        )
        .await;
        assert_eq!(
            ok,
            Ok(Some(ClientCert {
                common_name: Some("authed".into()),
                organization_unit: None,
            })),
            "a client of an intermediate that is not revoked is accepted"
        );
        let err = handshake(
            &acceptor,
            client_config(&root, Some(&revoked_ca.client_chain("authed", 5))),
        )
        .await
        .expect_err("a client of a revoked intermediate must be refused");
        assert!(err.to_lowercase().contains("revoked"), "revoked CA: {err}");
    });
}

#[test]
fn unusable_tls_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test CA");
    let server = ca.server();
    let cert_only = write(dir.path(), "cert.pem", &server.cert);
    let config = TlsConfig {
        cert_file: cert_only.clone(),
        key_file: None,
        client_ca_files: vec![],
        crl_files: vec![],
    };
    assert_eq!(
        tls::acceptor(&config).err().map(|e| e.to_string()),
        Some(format!("{}: no PEM private key found", cert_only.display()))
    );
    let missing = dir.path().join("missing.pem");
    let config = TlsConfig {
        cert_file: missing.clone(),
        key_file: None,
        client_ca_files: vec![],
        crl_files: vec![],
    };
    let text = tls::acceptor(&config).err().unwrap().to_string();
    assert!(
        text.starts_with(&format!("{}: ", missing.display())),
        "{text}"
    );
    let config = TlsConfig {
        cert_file: cert_only,
        key_file: Some(write(dir.path(), "key.pem", &server.key)),
        client_ca_files: vec![write(dir.path(), "ca.pem", &ca.pem.cert)],
        crl_files: vec![write(dir.path(), "notcrl.pem", &ca.pem.cert)],
    };
    let text = tls::acceptor(&config).err().unwrap().to_string();
    assert!(
        text.ends_with("notcrl.pem: no PEM X509 CRL found"),
        "{text}"
    );
}

//! The TLS client configuration for `https://` sources: rustls with the ring
//! provider, the system's roots plus `[runtime].ca_file`, and the mTLS identity
//! from `client_cert`/`client_key`. Built once per `Fetcher`; it never opens a
//! connection and never logs key material.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setting that cannot be used, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("ca_file {path}: cannot be read as PEM: {source}")]
    CaUnreadable {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("ca_file {path}: holds no PEM certificate")]
    CaEmpty { path: PathBuf },
    #[error("ca_file {path}: certificate number {index} is not a usable CA certificate: {source}")]
    CaInvalid {
        path: PathBuf,
        index: usize,
        source: rustls::Error,
    },
    #[error("client_cert {path}: cannot be read as PEM: {source}")]
    ClientCertUnreadable {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("client_cert {path}: holds no PEM certificate")]
    ClientCertEmpty { path: PathBuf },
    #[error("client_key {path}: cannot be read as a PEM private key: {source}")]
    ClientKeyUnreadable {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("client_cert is set without client_key (mTLS needs both)")]
    ClientKeyMissing,
    #[error("client_key is set without client_cert (mTLS needs both)")]
    ClientCertMissing,
    #[error("client_cert {cert} and client_key {key} cannot be used together: {source}")]
    ClientIdentity {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("the TLS protocol versions cannot be set up: {0}")]
    Protocol(rustls::Error),
}

/// Why the platform's CA certificates cannot be used, when none load: https
/// bots then need `ca_file`.
pub fn system_roots_problem() -> Option<String> {
    let native = rustls_native_certs::load_native_certs();
    if !native.certs.is_empty() {
        return None;
    }
    native.errors.first().map(ToString::to_string)
}

/// Builds the client configuration. ALPN offers h2 then http/1.1, as reqwest
/// would for its own rustls backend: a preconfigured one is used as given.
pub fn client_config(
    ca_file: Option<&Path>,
    client_cert: Option<&Path>,
    client_key: Option<&Path>,
) -> Result<ClientConfig, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    // Certificates the platform store holds but webpki cannot parse are skipped,
    // as every rustls client does; a missing system store still leaves `ca_file`.
    // Whoever builds clients says so once when there are none
    // (`system_roots_problem`); this layer writes no log records.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Protocol)?
        .with_root_certificates(roots);

    let mut config = match (client_cert, client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(TlsSetupError::ClientKeyMissing),
        (None, Some(_)) => return Err(TlsSetupError::ClientCertMissing),
        (Some(cert), Some(key)) => {
            let chain = read_client_chain(cert)?;
            let private = PrivateKeyDer::from_pem_file(key).map_err(|source| {
                TlsSetupError::ClientKeyUnreadable {
                    path: key.to_path_buf(),
                    source,
                }
            })?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|source| TlsSetupError::ClientIdentity {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                    source,
                })?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsSetupError> {
    let unreadable = |source| TlsSetupError::CaUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut found = 0;
    for (index, cert) in CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .enumerate()
    {
        let cert = cert.map_err(unreadable)?;
        // Unlike the system store, every certificate here was named by the
        // operator: one that cannot be used is a mistake worth stopping for.
        roots.add(cert).map_err(|source| TlsSetupError::CaInvalid {
            path: path.to_path_buf(),
            index: index + 1,
            source,
        })?;
        found += 1;
    }
    if found == 0 {
        return Err(TlsSetupError::CaEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn read_client_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let unreadable = |source| TlsSetupError::ClientCertUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if chain.is_empty() {
        return Err(TlsSetupError::ClientCertEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

//! The one test PKI: a CA made by rcgen for each test, the server certificate
//! for 127.0.0.1 and the client certificate it signed, and an unrelated CA, as
//! PEM files in a temporary directory; plus rustls server configs and an HTTPS
//! client built from them. Every test that needs certificates uses this, so a
//! change of key type or extension is made once.
//!
//! (`src/server/tls_tests.rs` is a unit-test module and cannot reach this
//! tree; it keeps its own few lines of rcgen.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{temp_dir, write_file};

pub struct Pki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    ca_der: Vec<u8>,
    /// The CA certificate as PEM text.
    pub ca_pem: String,
    /// `ca.pem`: the CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// `other-ca.pem`: a CA that signed nothing here.
    pub other_ca: PathBuf,
    /// `server.pem`: a server certificate for 127.0.0.1.
    pub server_cert: PathBuf,
    /// `server.key`: its PKCS#8 ECDSA key.
    pub server_key: PathBuf,
    /// `client.pem`: a client certificate for `config-drift-detector`.
    pub client_cert: PathBuf,
    /// `client.key`: its PKCS#8 ECDSA key.
    pub client_key: PathBuf,
}

fn new_ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert, Issuer::new(params, key))
}

impl Pki {
    pub fn new() -> Pki {
        let dir = temp_dir();
        let (ca, issuer) = new_ca("config-drift-detector test CA");
        let (other_ca, _) = new_ca("some other CA");

        let mut client = CertificateParams::new(Vec::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "config-drift-detector");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().expect("client key");
        let client_cert = client
            .signed_by(&client_key, &issuer)
            .expect("client certificate");

        let server_key = KeyPair::generate().expect("server key");
        let mut pki = Pki {
            ca: write_file(&dir, "ca.pem", ca.pem().as_bytes()),
            other_ca: write_file(&dir, "other-ca.pem", other_ca.pem().as_bytes()),
            client_cert: write_file(&dir, "client.pem", client_cert.pem().as_bytes()),
            client_key: write_file(&dir, "client.key", client_key.serialize_pem().as_bytes()),
            server_cert: PathBuf::new(),
            server_key: write_file(&dir, "server.key", server_key.serialize_pem().as_bytes()),
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            issuer,
            dir,
        };
        pki.server_cert = pki.write("server.pem", &pki.sign(&server_key));
        pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A PEM server certificate for 127.0.0.1 carrying `key`'s public half,
    /// signed by the CA.
    pub fn sign(&self, key: &KeyPair) -> String {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params
            .signed_by(key, &self.issuer)
            .expect("server certificate")
            .pem()
    }

    /// Writes `text` beside the certificates; returns the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        write_file(self.dir(), name, text.as_bytes())
    }

    /// A rustls server presenting the server certificate and offering `alpn`;
    /// with `client_ca`, it requires a client certificate issued by that CA.
    pub fn server_config(
        &self,
        alpn: &[&[u8]],
        client_ca: Option<&Path>,
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = vec![CertificateDer::from_pem_file(&self.server_cert).expect("server.pem")];
        let key = PrivateKeyDer::from_pem_file(&self.server_key).expect("server.key");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_file(ca).expect("client CA"))
                    .expect("client CA added");
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .expect("server certificate usable");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// An HTTPS client trusting this CA only, never through a proxy. Its 5 s
    /// timeout is generous for a loaded 2-core machine and shorter than the
    /// agent server's own 10 s handshake and drain bounds, so a request that
    /// passes proves neither was waited out.
    pub fn https_client(&self) -> reqwest::Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone().into()).expect("CA added");
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .tls_backend_preconfigured(tls)
            .build()
            .expect("HTTPS client")
    }
}

//! [`TestCert`]: a self-signed certificate for `127.0.0.1`, so an edge can serve HTTPS — the go
//! command sends `.netrc` credentials only over https — and clients can trust it
//! (`SSL_CERT_FILE` for the go command, a root certificate for reqwest).

use std::path::{Path, PathBuf};

/// PEM files of a certificate and its key.
#[derive(Debug, Clone)]
pub struct TestCert {
    /// The certificate (also the trust anchor: it is self-signed).
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl TestCert {
    /// Generates a certificate for `127.0.0.1` and writes `cert.pem` and `key.pem` under `dir`.
    pub fn generate(dir: &Path) -> Self {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("generate a self-signed certificate");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).expect("write cert.pem");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key.pem");
        Self { cert, key }
    }

    /// An HTTP client that trusts this certificate only.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.cert).expect("read cert.pem");
        let certificate = reqwest::Certificate::from_pem(&pem).expect("parse cert.pem");
        reqwest::Client::builder()
            .tls_certs_only([certificate])
            .build()
            .expect("an HTTPS client")
    }
}

//! TLS of the gRPC link to a registry (`[[registries]]` with an `https://` gRPC URL): which
//! CA to trust, the client certificate for mutual TLS, the name to verify.
//!
//! ```toml
//! [[registries]]
//! name = "eu-1"
//! grpc = "https://registry.eu.internal:9090"
//! http = "https://registry.eu.internal:8080"
//! ca = "/etc/strata/registry-ca.crt"      # default: the system's roots
//! cert = "/etc/strata/edge.crt"           # client certificate, when the registry requires one
//! key = "/etc/strata/edge.key"
//! # domain = "registry.eu.internal"        # default: the host of `grpc`
//! ```

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::RegistryEndpoint;

impl RegistryEndpoint {
    /// Whether the gRPC link uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.grpc
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }

    /// Checks that the TLS settings fit together: they need an `https://` URL (they would be
    /// ignored otherwise), and `cert` and `key` come as a pair. Files are read at start-up.
    pub(super) fn validate_tls(&self) -> Result<(), String> {
        let name = &self.name;
        let set = [
            ("ca", self.ca.is_some()),
            ("cert", self.cert.is_some()),
            ("key", self.key.is_some()),
            ("domain", self.domain.is_some()),
        ];
        if !self.uses_tls() {
            if let Some((key, _)) = set.iter().find(|(_, is_set)| *is_set) {
                return Err(format!(
                    "registries {name:?}: {key} needs an https:// grpc URL (it is {:?})",
                    self.grpc
                ));
            }
            return Ok(());
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(format!(
                "registries {name:?}: cert and key go together (a client certificate needs its key)"
            ));
        }
        if self.domain.as_deref().is_some_and(|d| d.trim().is_empty()) {
            return Err(format!("registries {name:?}: domain is empty"));
        }
        Ok(())
    }

    /// The channel's TLS settings, with every PEM file read and checked now, so that a wrong
    /// path or file is reported by name at start-up. `None` for an `http://` URL.
    pub fn client_tls(&self) -> Result<Option<ClientTlsConfig>, String> {
        if !self.uses_tls() {
            return Ok(None);
        }
        let name = &self.name;
        let context = |key: &str, e: String| format!("registries {name:?}: {key}: {e}");
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(
                read_certificates(ca).map_err(|e| context("ca", e))?,
            )),
            None => tls.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            let cert = read_certificates(cert).map_err(|e| context("cert", e))?;
            let key = read_key(key).map_err(|e| context("key", e))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            tls = tls.domain_name(domain.trim());
        }
        Ok(Some(tls))
    }
}

/// The PEM text of `path` after checking that it holds at least one certificate.
fn read_certificates(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .try_fold(0usize, |n, c| c.map(|_| n + 1))
        .map_err(|e| format!("reading certificates from {}: {e}", path.display()))?;
    if count == 0 {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(pem)
}

/// The PEM text of `path` after checking that it holds a private key.
fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("reading a private key from {}: {e}", path.display()))?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use strata_service::config::ServiceConfig as _;

    use super::super::EdgeConfig;

    fn config(registry: &str) -> Result<EdgeConfig, String> {
        let text = format!(
            "[[routes]]\nprefix = \"/\"\nrepository = \"go\"\n[[registries]]\nname = \"r\"\n\
             http = \"http://127.0.0.1:8080\"\n{registry}\n"
        );
        EdgeConfig::from_toml(&text, "t", &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn tls_settings_need_https_and_come_in_pairs() {
        let plain = config("grpc = \"http://127.0.0.1:9090\"").unwrap();
        assert!(plain.registries[0].client_tls().unwrap().is_none());
        let e = config("grpc = \"http://127.0.0.1:9090\"\nca = \"/ca.pem\"").unwrap_err();
        assert!(e.contains("ca needs an https:// grpc URL"), "{e}");
        let e = config("grpc = \"https://r:9090\"\ncert = \"/c.pem\"").unwrap_err();
        assert!(e.contains("cert and key go together"), "{e}");
        let e = config("grpc = \"https://r:9090\"\ndomain = \" \"").unwrap_err();
        assert!(e.contains("domain is empty"), "{e}");
        let c = config("grpc = \"https://r:9090\"\ncert = \"/c.pem\"\nkey = \"/k.pem\"").unwrap();
        assert!(c.registries[0].uses_tls());
    }

    #[test]
    fn unreadable_files_are_named() {
        let c = config("grpc = \"https://r:9090\"\nca = \"/nonexistent/ca.pem\"").unwrap();
        let e = c.registries[0].client_tls().unwrap_err();
        assert!(e.contains("\"r\": ca: reading /nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not PEM").unwrap();
        let text = format!(
            "grpc = \"https://r:9090\"\nca = {:?}",
            empty.display().to_string()
        );
        let e = config(&text).unwrap().registries[0]
            .client_tls()
            .unwrap_err();
        assert!(e.contains("no certificate found"), "{e}");
    }
}

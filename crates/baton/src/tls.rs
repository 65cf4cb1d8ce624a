//! TLS of the gRPC ports (rustls): the server side of the runner port (`grpc.tls`) and of the
//! internal port (`cluster.tls`), and the client side of the calls a node makes — to other
//! nodes' internal ports, and its own local runner to its own runner port.
//!
//! A node's calls to itself dial loopback, where no certificate names the address: they verify
//! the node's own certificate against itself (and `cluster.tls.ca_file`), under the first DNS
//! name the certificate carries, so a self-signed certificate shared by the nodes just works.

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A port's certificate and key, read from their files.
#[derive(Clone)]
pub struct KeyPair {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPair { key: ******** }")
    }
}

impl KeyPair {
    /// Reads the PEM files of `section` (`grpc.tls` or `cluster.tls`); `None` when TLS is off.
    pub fn load(section: &str, cert: Option<&Path>, key: Option<&Path>) -> anyhow::Result<Option<KeyPair>> {
        let (Some(cert), Some(key)) = (cert, key) else { return Ok(None) };
        let read = |name: &str, path: &Path| {
            std::fs::read(path)
                .with_context(|| format!("config key `{section}.{name}`: cannot read {}", path.display()))
        };
        let pair = KeyPair { cert_pem: read("cert_file", cert)?, key_pem: read("key_file", key)? };
        // Fail at start, naming the key, rather than at the first connection.
        let leaf = pair.leaf().with_context(|| format!("config key `{section}.cert_file`: {}", cert.display()))?;
        rustls::pki_types::PrivateKeyDer::from_pem_slice(&pair.key_pem).map_err(|e| {
            anyhow::anyhow!("config key `{section}.key_file`: {} holds no PEM private key ({e})", key.display())
        })?;
        webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| anyhow::anyhow!("config key `{section}.cert_file`: not a usable certificate ({e})"))?;
        Ok(Some(pair))
    }

    /// The server side of a port.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// The first certificate of the chain: the server's own.
    fn leaf(&self) -> anyhow::Result<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(&self.cert_pem)
            .next()
            .ok_or_else(|| anyhow::anyhow!("no PEM certificate in the file"))?
            .map_err(|e| anyhow::anyhow!("unreadable PEM certificate ({e})"))
    }

    /// The name a loopback client verifies this certificate under: its first DNS name, else
    /// `localhost`.
    fn name(&self) -> String {
        let Ok(leaf) = self.leaf() else { return "localhost".into() };
        let Ok(cert) = webpki::EndEntityCert::try_from(&leaf) else { return "localhost".into() };
        cert.valid_dns_names().find(|n| !n.starts_with('*')).unwrap_or("localhost").to_owned()
    }

    /// A client of this very port over loopback (the node calling itself).
    pub fn loopback_client(&self, ca: Option<&[u8]>) -> ClientTlsConfig {
        let mut tls =
            ClientTlsConfig::new().domain_name(self.name()).ca_certificate(Certificate::from_pem(&self.cert_pem));
        if let Some(ca) = ca {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        tls
    }
}

/// A client of another node's `https://` port: it trusts `ca` when given, and the system roots.
pub fn remote_client(ca: Option<&[u8]>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new().with_native_roots();
    match ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
        None => tls,
    }
}

/// Reads a CA file given by config key `key`.
pub fn read_ca(key: &str, path: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(path) = path else { return Ok(None) };
    let pem = std::fs::read(path).with_context(|| format!("config key `{key}`: cannot read {}", path.display()))?;
    if CertificateDer::pem_slice_iter(&pem).next().is_none() {
        anyhow::bail!("config key `{key}`: {} holds no PEM certificate", path.display());
    }
    Ok(Some(pem))
}

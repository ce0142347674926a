//! TLS settings for `wss://` servers (rustls with the ring provider).
//!
//! Certificates are verified against the webpki roots by default; a custom
//! root store replaces them (a private PBX CA). Skipping verification is
//! possible only through [`TlsConfig::dangerous_accept_any_certificate`],
//! named so that no one uses it by accident.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::Error;

/// How `wss://` servers are authenticated.
#[derive(Clone, Default)]
pub struct TlsConfig {
    roots: Roots,
}

#[derive(Clone, Default)]
enum Roots {
    #[default]
    WebPki,
    Custom(Vec<CertificateDer<'static>>),
    DangerousNone,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots = match &self.roots {
            Roots::WebPki => "webpki roots".to_string(),
            Roots::Custom(c) => format!("{} custom root(s)", c.len()),
            Roots::DangerousNone => "NO VERIFICATION".to_string(),
        };
        f.debug_struct("TlsConfig").field("roots", &roots).finish()
    }
}

impl TlsConfig {
    /// Verify servers against the Mozilla root set (webpki-roots). The default.
    pub fn webpki_roots() -> TlsConfig {
        TlsConfig { roots: Roots::WebPki }
    }

    /// Verify servers against these DER-encoded root certificates only.
    pub fn with_root_certificates(ders: impl IntoIterator<Item = Vec<u8>>) -> TlsConfig {
        TlsConfig { roots: Roots::Custom(ders.into_iter().map(CertificateDer::from).collect()) }
    }

    /// Verify servers against the root certificates in PEM text (every
    /// `-----BEGIN CERTIFICATE-----` block; other blocks are skipped): a
    /// lab's or a PBX's own CA file.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] when the text holds no certificate or a block does
    /// not decode.
    pub fn with_root_certificates_pem(pem: &[u8]) -> Result<TlsConfig, Error> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Tls(format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Tls("no certificate in the PEM text".into()));
        }
        Ok(TlsConfig { roots: Roots::Custom(certs) })
    }

    /// Accept any server certificate. The connection is encrypted but not
    /// authenticated: anyone on the path can read and change it. For lab
    /// servers with self-signed certificates only.
    pub fn dangerous_accept_any_certificate() -> TlsConfig {
        TlsConfig { roots: Roots::DangerousNone }
    }

    /// True when certificates are not verified.
    pub fn is_dangerous(&self) -> bool {
        matches!(self.roots, Roots::DangerousNone)
    }

    /// The rustls client configuration.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let config = match &self.roots {
            Roots::WebPki => {
                let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Roots::Custom(certs) => {
                let mut roots = RootCertStore::empty();
                for cert in certs {
                    roots.add(cert.clone()).map_err(|e| Error::Tls(format!("bad root certificate: {e}")))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Roots::DangerousNone => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// Accepts any certificate but still checks handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_roots_are_read_and_bad_pem_is_refused() {
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = rcgen::CertificateParams::new(vec!["lab.invalid".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("a certificate");
        let pem = format!("# our lab CA\n{}{}", cert.pem(), key.serialize_pem());
        let tls = TlsConfig::with_root_certificates_pem(pem.as_bytes()).expect("one certificate");
        assert_eq!(format!("{tls:?}"), r#"TlsConfig { roots: "1 custom root(s)" }"#);
        assert!(tls.client_config().is_ok());
        assert!(matches!(TlsConfig::with_root_certificates_pem(b"nothing here"), Err(Error::Tls(_))));
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(TlsConfig::with_root_certificates_pem(broken.as_bytes()), Err(Error::Tls(_))));
    }
}

//! TLS: the `sslmode` (and `sslrootcert`) of the connection string, on `rustls` with the
//! `ring` provider (no system OpenSSL). See the module docs of the adapter.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// How the adapter uses TLS: the `sslmode` of the connection string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// `sslmode=disable` (the default when the string names none): plain TCP.
    Disable,
    /// `sslmode=prefer`: TLS if the server offers it, the certificate not verified;
    /// plain TCP otherwise.
    Prefer,
    /// `sslmode=require`: TLS or no connection; the certificate is *not* verified
    /// (libpq's meaning: protects against eavesdropping, not against impersonation).
    Require,
    /// `sslmode=verify-full`: TLS, the certificate chain verified against the roots
    /// (`sslrootcert=<PEM file>` if given, Mozilla's roots otherwise) and the host name
    /// checked against the certificate.
    VerifyFull,
}

impl TlsMode {
    /// The `sslmode` value this mode is spelled as.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    pub(super) fn ssl_mode(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        }
    }

    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "disable" => Ok(TlsMode::Disable),
            "prefer" => Ok(TlsMode::Prefer),
            "require" => Ok(TlsMode::Require),
            "verify-full" => Ok(TlsMode::VerifyFull),
            other => Err(StoreError::Backend(
                format!(
                    "unsupported sslmode `{other}`: use disable (default), prefer, require or \
                     verify-full"
                )
                .into(),
            )),
        }
    }
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (URL query or key=value
/// form), since `tokio-postgres` knows neither `verify-full` nor `sslrootcert`; returns
/// the rest, the mode (default [`TlsMode::Disable`]) and the root file.
pub(super) fn split_url(url: &str) -> Result<(String, TlsMode, Option<String>), StoreError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: &str| -> Result<bool, StoreError> {
        match key {
            "sslmode" => {
                mode = Some(TlsMode::parse(value)?);
                Ok(true)
            }
            "sslrootcert" => {
                root = Some(value.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, &percent_decode(v))? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            let taken = match token.split_once('=') {
                Some((k, v)) => take(k.trim(), v.trim_matches('\''))?,
                None => false,
            };
            if !taken {
                kept.push(token);
            }
        }
        kept.join(" ")
    };
    Ok((rest, mode.unwrap_or(TlsMode::Disable), root))
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector for `mode`. Always a rustls connector (one pool type); with
/// [`TlsMode::Disable`] it is never used.
pub(super) fn connector(
    mode: TlsMode,
    root_cert: Option<&str>,
) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("configuring TLS: {e}").into()))?;
    let config = match mode {
        TlsMode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            match root_cert {
                Some(path) => {
                    let certs = CertificateDer::pem_file_iter(path)
                        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| {
                            StoreError::Backend(format!("reading sslrootcert `{path}`: {e}").into())
                        })?;
                    for cert in certs {
                        roots.add(cert).map_err(|e| {
                            StoreError::Backend(
                                format!("a certificate in sslrootcert `{path}`: {e}").into(),
                            )
                        })?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `sslmode=require`/`prefer`: any certificate is accepted (libpq's meaning); the
/// handshake signatures are still checked.
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_both_forms() {
        let (rest, mode, root) =
            split_url("postgres://u@h:5432/db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(rest, "postgres://u@h:5432/db?application_name=x");
        assert_eq!(mode, TlsMode::VerifyFull);
        assert_eq!(root, None);
        let (rest, mode, root) =
            split_url("host=h sslmode=require sslrootcert=/tmp/ca%2F.pem user=u").unwrap();
        assert_eq!(rest, "host=h user=u");
        assert_eq!(mode, TlsMode::Require);
        assert_eq!(root.as_deref(), Some("/tmp/ca%2F.pem"));
        let (rest, mode, _) = split_url("postgres://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), mode),
            ("postgres://u@h/db", TlsMode::Disable)
        );
        let (_, _, root) = split_url("postgres://h/db?sslrootcert=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));
        assert!(split_url("postgres://h/db?sslmode=verify-ca").is_err());
    }
}

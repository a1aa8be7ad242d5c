//! TLS to Postgres, with libpq's `sslmode` and `sslrootcert` URL parameters
//! (tokio-postgres itself knows only disable/prefer/require and verifies
//! nothing without a connector). rustls only, with the ring provider.
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default) | when the server offers it | no (as libpq) |
//! | `require` | always | no, unless `sslrootcert` is given: then as `verify-ca` (as libpq) |
//! | `verify-ca` | always | chain to `sslrootcert` (or the Mozilla roots) |
//! | `verify-full` | always | chain, and the host name |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the
//! Mozilla roots (webpki-roots). For Amazon RDS: `sslmode=verify-full` with
//! the RDS CA bundle, or at least `sslmode=require`.

use crate::error::{InfraError, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            // libpq's "allow" tries plain first; prefer is as safe or safer.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(InfraError::Config(format!(
                    "DATABASE_URL: sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// What a Postgres URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub root_cert: Option<String>,
}

/// Splits `sslmode` and `sslrootcert` off a `postgres://` URL; the rest of
/// the URL is for tokio-postgres. A key=value connection string is returned
/// as it is (tokio-postgres reads its sslmode; verify modes need the URL form).
pub fn split_url(url: &str) -> Result<(String, TlsSettings)> {
    let mut tls = TlsSettings {
        mode: SslMode::Prefer,
        root_cert: None,
    };
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_string(), tls));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => tls.mode = SslMode::parse(&percent_decode(value)?)?,
            "sslrootcert" => tls.root_cert = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, tls))
}

/// libpq's URI decoding: `%XX` escapes only (a `+` stays a `+`).
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        InfraError::Config("DATABASE_URL: a bad %-escape in its parameters".into())
                    })?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| InfraError::Config("DATABASE_URL: its parameters are not UTF-8".into()))
}

/// The rustls client configuration for `tls`; `None` for `sslmode=disable`.
pub fn client_config(tls: &TlsSettings) -> Result<Option<ClientConfig>> {
    if tls.mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| InfraError::Config(format!("Postgres TLS: {e}")))?;
    let check = match (tls.mode, &tls.root_cert) {
        (SslMode::Prefer | SslMode::Require, None) => Check::Nothing,
        (SslMode::VerifyFull, _) => Check::Everything,
        _ => Check::Chain,
    };
    let roots = Arc::new(root_store(tls.root_cert.as_deref())?);
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| InfraError::Config(format!("Postgres TLS: {e}")))?;
    let config = match check {
        Check::Everything => builder.with_webpki_verifier(webpki),
        lenient => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                webpki,
                check: lenient,
            })),
    };
    Ok(Some(config.with_no_client_auth()))
}

fn root_store(root_cert: Option<&str>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        None | Some("system") => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect())
                .map_err(|e| {
                    InfraError::Config(format!(
                        "DATABASE_URL: sslrootcert {path} cannot be read as PEM: {e}"
                    ))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(InfraError::Config(format!(
                    "DATABASE_URL: sslrootcert {path} holds no usable CA certificate"
                )));
            }
        }
    }
    Ok(roots)
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// libpq's `require` without a root certificate: the connection is
    /// encrypted and the handshake signatures are checked, but not who signed
    /// the certificate.
    Nothing,
    /// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
    Chain,
    Everything,
}

/// webpki's verifier, with less of the certificate checked.
#[derive(Debug)]
struct Lenient {
    webpki: Arc<WebPkiServerVerifier>,
    check: Check,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Check::Nothing = self.check {
            return Ok(ServerCertVerified::assertion());
        }
        // webpki checks the chain first and the name last, so a name error
        // means the chain was good.
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if matches!(self.check, Check::Chain) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_parameters_are_split_off_and_the_rest_kept() {
        let (rest, tls) = split_url(
            "postgres://u:p@h:5432/db?application_name=seg&sslmode=verify-full&sslrootcert=%2Fopt%2Frds%20ca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@h:5432/db?application_name=seg&connect_timeout=5"
        );
        assert_eq!(
            tls,
            TlsSettings {
                mode: SslMode::VerifyFull,
                root_cert: Some("/opt/rds ca.pem".into())
            }
        );
        let (_, tls) = split_url("postgres://u@h/db?sslrootcert=/opt/a+b.pem").unwrap();
        assert_eq!(tls.root_cert.as_deref(), Some("/opt/a+b.pem"));
        let (rest, tls) = split_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://u@h/db", SslMode::Disable)
        );
        let (rest, tls) = split_url("postgres://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://u@h/db", SslMode::Prefer)
        );
        // A key=value string is tokio-postgres's to read.
        let (rest, _) = split_url("host=h sslmode=require").unwrap();
        assert_eq!(rest, "host=h sslmode=require");
    }

    #[test]
    fn bad_ssl_parameters_are_config_errors_naming_the_problem() {
        let e = split_url("postgres://u@h/db?sslmode=sometimes").unwrap_err();
        assert!(e.to_string().contains("sslmode=sometimes"), "{e}");
        let e = split_url("postgres://u@h/db?sslrootcert=%zz").unwrap_err();
        assert!(e.to_string().contains("%-escape"), "{e}");
        let e = client_config(&TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        })
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn disable_means_no_tls_and_every_other_mode_builds_a_config() {
        let disable = TlsSettings {
            mode: SslMode::Disable,
            root_cert: None,
        };
        assert!(client_config(&disable).unwrap().is_none());
        for mode in [
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let tls = TlsSettings {
                mode,
                root_cert: Some("system".into()),
            };
            assert!(client_config(&tls).unwrap().is_some(), "{mode:?}");
        }
    }
}

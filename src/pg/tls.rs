//! TLS to PostgreSQL with libpq's `sslmode` semantics, over rustls.
//!
//! - `disable`: no TLS; `allow`: without TLS, then with it if the server refuses; `prefer` (the
//!   default): with TLS when the server offers it, and without it when the server has no TLS,
//!   the TLS session fails or the server refuses it; `require`: TLS.
//! - The server's certificate is checked against the root certificates under `verify-ca` (the
//!   chain) and `verify-full` (the chain and the host name); under the weaker modes the chain is
//!   checked too when a root certificate file exists, as libpq does.
//! - `sslrootcert=system` uses the operating system's roots and needs `verify-full` (libpq 16).
//! - A client certificate and key are sent when the certificate file exists. Encrypted keys are
//!   refused with a clear error.
//!
//! Unix sockets never use TLS (the caller does not ask for it there).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::PgError;

/// The value of `sslrootcert` that names the operating system's root certificates.
pub const SYSTEM_ROOTS: &str = "system";

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses a `sslmode` value; `None` or empty: `prefer` (`verify-full` with
    /// `sslrootcert=system`, as libpq 16 does).
    pub fn parse(value: Option<&str>, root_cert: Option<&Path>) -> Result<SslMode, PgError> {
        let value = value.map(|m| m.trim().to_ascii_lowercase());
        let system = root_cert.is_some_and(|p| p == Path::new(SYSTEM_ROOTS));
        let mode = match value.as_deref() {
            None | Some("") if system => SslMode::VerifyFull,
            None | Some("" | "prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("allow") => SslMode::Allow,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(PgError::Settings(format!(
                    "sslmode '{other}' is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        };
        if system && mode != SslMode::VerifyFull {
            return Err(PgError::Settings(format!(
                "sslmode={mode} cannot be used with sslrootcert=system: use sslmode=verify-full"
            )));
        }
        Ok(mode)
    }

    /// `verify-ca` or `verify-full`: the server's certificate must be checked.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// The certificate files, resolved by `config` (this module reads no environment).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// `PGSSLROOTCERT`: a PEM file of CA certificates, or `system`. `None`: `root.crt` in
    /// `default_dir`, used when it exists.
    pub root_cert: Option<PathBuf>,
    /// `PGSSLCERT`: the client certificate (PEM). `None`: `postgresql.crt` in `default_dir`.
    /// Sent only when the file exists.
    pub cert: Option<PathBuf>,
    /// `PGSSLKEY`: the client key (PEM, unencrypted). `None`: `postgresql.key` in `default_dir`.
    pub key: Option<PathBuf>,
    /// libpq's default folder, `~/.postgresql`; `None`: no defaults.
    pub default_dir: Option<PathBuf>,
}

impl TlsFiles {
    fn default_file(&self, name: &str) -> Option<PathBuf> {
        self.default_dir.as_ref().map(|d| d.join(name))
    }
}

/// Where the root certificates come from.
enum Roots {
    /// No check of the server's certificate.
    None,
    /// The operating system's roots.
    System,
    /// A PEM file.
    File(PathBuf),
}

/// Builds the rustls client configuration for `mode` (not `disable`).
pub fn client_config(mode: SslMode, files: &TlsFiles) -> Result<Arc<ClientConfig>, PgError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = roots(mode, files)?;
    let webpki = match &roots {
        Roots::None => None,
        Roots::System => Some(system_roots(mode)?),
        Roots::File(path) => Some(file_roots(mode, path)?),
    }
    .map(|store| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .map_err(|e| PgError::Settings(format!("sslmode={mode}: the root certificates: {e}")))
    })
    .transpose()?;
    let verifier = Arc::new(Verifier {
        mode,
        roots: match &roots {
            Roots::File(path) => path.display().to_string(),
            _ => SYSTEM_ROOTS.to_string(),
        },
        webpki,
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Settings(format!("tls: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client_identity(files)? {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| {
            PgError::Settings(format!("the client certificate and key do not fit: {e}"))
        })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(mode: SslMode, files: &TlsFiles) -> Result<Roots, PgError> {
    match &files.root_cert {
        Some(path) if path == Path::new(SYSTEM_ROOTS) => Ok(Roots::System),
        Some(path) if path.exists() => Ok(Roots::File(path.clone())),
        Some(path) if mode.verifies() => Err(PgError::Settings(format!(
            "sslmode={mode}: the root certificate file {} does not exist",
            path.display()
        ))),
        // libpq ignores a missing root certificate file under the weaker modes.
        Some(_) => Ok(Roots::None),
        None => match files.default_file("root.crt") {
            Some(path) if path.exists() => Ok(Roots::File(path)),
            _ if mode.verifies() => Err(PgError::Settings(format!(
                "sslmode={mode}: no root certificate: set PGSSLROOTCERT (or put the CA \
                 certificates in ~/.postgresql/root.crt)"
            ))),
            _ => Ok(Roots::None),
        },
    }
}

fn file_roots(mode: SslMode, path: &Path) -> Result<RootCertStore, PgError> {
    let bad = |why: String| {
        PgError::Settings(format!(
            "sslmode={mode}: the root certificate file {}: {why}",
            path.display()
        ))
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        store.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(bad("no certificate in it".to_string()));
    }
    Ok(store)
}

fn system_roots(mode: SslMode) -> Result<RootCertStore, PgError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(PgError::Settings(format!(
            "sslmode={mode}: sslrootcert=system, and the system has no root certificates"
        )));
    }
    Ok(store)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client certificate and key, when the certificate file exists.
fn client_identity(files: &TlsFiles) -> Result<Option<Identity>, PgError> {
    let Some(cert_path) = files
        .cert
        .clone()
        .or_else(|| files.default_file("postgresql.crt"))
        .filter(|p| p.exists())
    else {
        return Ok(None);
    };
    let bad = |path: &Path, why: String| {
        PgError::Settings(format!("tls client certificate {}: {why}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| bad(&cert_path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(&cert_path, "no certificate in it".to_string()));
    }
    let key_path = files
        .key
        .clone()
        .or_else(|| files.default_file("postgresql.key"))
        .ok_or_else(|| bad(&cert_path, "no key: set PGSSLKEY".to_string()))?;
    let bad_key =
        |why: String| PgError::Settings(format!("tls client key {}: {why}", key_path.display()));
    let text = std::fs::read(&key_path).map_err(|e| bad_key(e.to_string()))?;
    if is_encrypted(&text) {
        return Err(bad_key(
            "the key is encrypted, and walg reads only unencrypted keys (sslpassword is not \
             supported): decrypt it with `openssl pkey`"
                .to_string(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| bad_key(e.to_string()))?;
    Ok(Some((certs, key)))
}

/// True for a PEM key protected by a password (PKCS#8 or the older OpenSSL form).
fn is_encrypted(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

/// `db.example` of rustls's `DnsName("db.example")`, `10.0.0.1` of `IpAddress(10.0.0.1)`.
fn presented_name(shown: &str) -> &str {
    shown
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(shown, |inner| inner.trim_matches('"'))
}

/// Checks the server's certificate as `mode` asks, with messages that name the mode and the
/// failing check.
#[derive(Debug)]
struct Verifier {
    mode: SslMode,
    /// Where the roots came from, for messages.
    roots: String,
    /// `None`: no check of the certificate (`require` without root certificates).
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn explain(&self, error: &rustls::Error, host: &ServerName<'_>) -> String {
        let mode = self.mode;
        let host = host.to_str();
        let why = match error {
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            }) => {
                let names = presented
                    .iter()
                    .map(|n| presented_name(n))
                    .collect::<Vec<_>>()
                    .join("', '");
                format!("the server certificate is for '{names}', not '{host}'")
            }
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                format!("the server certificate is not for '{host}'")
            }
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "the server certificate is signed by an unknown CA (not in {})",
                self.roots
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => "the server certificate has expired".to_string(),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
            ) => "the server certificate is not valid yet".to_string(),
            other => format!("the server certificate is not accepted: {other}"),
        };
        format!("sslmode={mode}: {why}")
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Ok(verified) => Ok(verified),
            // The chain is checked before the name: only `verify-full` checks the name.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.mode != SslMode::VerifyFull => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(rustls::Error::General(self.explain(&e, server_name))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres's TLS connector over rustls.
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MakeRustls")
    }
}

impl MakeRustls {
    pub fn new(config: Arc<ClientConfig>) -> MakeRustls {
        MakeRustls { config }
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{domain}' is not a host name tls can check: {e}"),
            )
        })?;
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// One handshake to come.
pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, io::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// A TLS session with the server.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// No channel binding: SCRAM authenticates without it (`channel_binding=prefer`).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_reads_them() {
        assert_eq!(SslMode::parse(None, None).unwrap(), SslMode::Prefer);
        assert_eq!(
            SslMode::parse(Some(" Verify-Full "), None).unwrap(),
            SslMode::VerifyFull
        );
        for mode in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert_eq!(SslMode::parse(Some(mode), None).unwrap().to_string(), mode);
        }
        let err = SslMode::parse(Some("sometimes"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'sometimes'"), "{err}");
        let system = Some(Path::new(SYSTEM_ROOTS));
        assert_eq!(SslMode::parse(None, system).unwrap(), SslMode::VerifyFull);
        let err = SslMode::parse(Some("require"), system)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sslmode=require") && err.contains("verify-full"),
            "{err}"
        );
    }

    #[test]
    fn verifying_modes_need_a_root_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            default_dir: Some(dir.path().to_path_buf()),
            ..TlsFiles::default()
        };
        let err = client_config(SslMode::VerifyCa, &files)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sslmode=verify-ca: no root certificate"),
            "{err}"
        );
        assert!(client_config(SslMode::Require, &files).is_ok());
        let missing = TlsFiles {
            root_cert: Some(dir.path().join("ca.pem")),
            ..files
        };
        let err = client_config(SslMode::VerifyFull, &missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ca.pem does not exist"), "{err}");
        assert!(client_config(SslMode::Require, &missing).is_ok());
    }

    #[test]
    fn presented_names_are_shown_plain() {
        assert_eq!(presented_name("DnsName(\"db.example\")"), "db.example");
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(presented_name("plain"), "plain");
    }

    #[test]
    fn encrypted_keys_are_refused_clearly() {
        assert!(is_encrypted(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ));
        assert!(is_encrypted(
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n"
        ));
        assert!(!is_encrypted(b"-----BEGIN PRIVATE KEY-----\nMIIB\n"));
    }
}

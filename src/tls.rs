//! HTTPS on configured host names (SPEC §11).
//!
//! The certificate comes from one of two sources:
//!
//! - **operator files** (`tls_cert`, `tls_key`: PEM chain and key), read at
//!   start and again on every SIGHUP, so a renewed certificate is picked up
//!   without a restart;
//! - **a local CA**, when no files are given, as Caddy's `tls internal`
//!   does: a CA key and certificate created once under `<data>/tls/`
//!   (`ca.key` mode 0600, `ca.crt` for people to trust), and a server
//!   certificate for the configured names (default `substrate.home.arpa`
//!   and `localhost`) issued from it at every start.
//!
//! Certificates are made with rcgen and served with rustls (ring), HTTP/2
//! offered by ALPN.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The names served by default.
pub const DEFAULT_NAMES: [&str; 2] = ["substrate.home.arpa", "localhost"];

/// How long a server certificate from the local CA is valid; a new one is
/// issued at every start.
const LEAF_DAYS: i64 = 365;
/// How long the local CA is valid.
const CA_DAYS: i64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key found ({message})")]
    NoKey { path: PathBuf, message: String },
    #[error("{path}: the key does not fit rustls: {message}")]
    BadKey { path: PathBuf, message: String },
    #[error("generating a certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Operator files, reloaded on SIGHUP.
    Files { cert: PathBuf, key: PathBuf },
    /// The local CA under this directory (`<data>/tls`).
    LocalCa { dir: PathBuf, names: Vec<String> },
}

/// The certificate in force; swapped on reload.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// HTTPS for the daemon: the acceptor and how to reload it.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    current: Arc<CurrentCert>,
    source: CertSource,
}

impl Tls {
    /// Loads (or, for the local CA, creates) the certificate.
    pub fn load(source: CertSource) -> Result<Tls, TlsError> {
        let key = certified_key(&source)?;
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(key))));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            current,
            source,
        })
    }

    /// Reads the operator's files again (SIGHUP); the local CA's certificate
    /// stays. On error the certificate in force is kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let CertSource::Files { .. } = self.source {
            let key = certified_key(&self.source)?;
            *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        }
        Ok(())
    }

    /// The CA certificate people trust, when the local CA is in use.
    pub fn ca_file(&self) -> Option<PathBuf> {
        match &self.source {
            CertSource::LocalCa { dir, .. } => Some(dir.join("ca.crt")),
            CertSource::Files { .. } => None,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certified_key(source: &CertSource) -> Result<CertifiedKey, TlsError> {
    let (chain, key, key_path) = match source {
        CertSource::Files { cert, key } => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
                .filter_map(Result::ok)
                .collect();
            if chain.is_empty() {
                return Err(TlsError::NoCertificate { path: cert.clone() });
            }
            let der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| TlsError::NoKey {
                path: key.clone(),
                message: e.to_string(),
            })?;
            (chain, der, key.clone())
        }
        CertSource::LocalCa { dir, names } => {
            let (chain, der) = issue_from_local_ca(dir, names)?;
            (chain, der, dir.join("ca.key"))
        }
    };
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| TlsError::BadKey {
        path: key_path,
        message: e.to_string(),
    })?;
    Ok(CertifiedKey::new(chain, signing))
}

/// The CA's parameters: the same every time, so a CA rebuilt from its saved
/// key issues certificates that chain to the saved `ca.crt`.
fn ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Substrate local CA");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Substrate");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = params.not_before + time_days(CA_DAYS);
    params
}

fn time_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}

/// Creates the CA once (key 0600, staged and renamed), then issues a server
/// certificate for `names` from it.
fn issue_from_local_ca(
    dir: &Path,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let key_path = dir.join("ca.key");
    let cert_path = dir.join("ca.crt");
    let ca_key = if key_path.exists() {
        let pem = String::from_utf8_lossy(&read(&key_path)?).into_owned();
        rcgen::KeyPair::from_pem(&pem)?
    } else {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let key = rcgen::KeyPair::generate()?;
        write_atomically(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        key
    };
    let ca = ca_params().self_signed(&ca_key)?;
    if !cert_path.exists() {
        write_atomically(&cert_path, ca.pem().as_bytes(), 0o644)?;
    }

    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new())?;
    for name in names {
        let san = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(name.clone().try_into()?),
        };
        leaf.subject_alt_names.push(san);
    }
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, names.first().cloned().unwrap_or_default());
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time_days(1);
    leaf.not_after = now + time_days(LEAF_DAYS);
    let leaf_key = rcgen::KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &ca, &ca_key)?;
    let chain = vec![cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(|e| TlsError::BadKey {
        path: key_path,
        message: e.to_string(),
    })?;
    Ok((chain, key))
}

/// Writes `bytes` to a staging file beside `path` with `mode`, syncs it and
/// renames it into place.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let staging = path.with_extension("staging");
    let failed = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&staging)
        .map_err(failed)?;
    f.write_all(bytes).map_err(failed)?;
    f.sync_all().map_err(failed)?;
    std::fs::rename(&staging, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_ca_is_made_once_and_its_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let source = CertSource::LocalCa {
            dir: dir.path().join("tls"),
            names: vec!["substrate.home.arpa".into(), "localhost".into(), "127.0.0.1".into()],
        };
        let first = Tls::load(source.clone()).unwrap();
        let ca = std::fs::read(first.ca_file().unwrap()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Tls::load(source).unwrap();
        assert_eq!(
            std::fs::read(again.ca_file().unwrap()).unwrap(),
            ca,
            "the CA was made twice"
        );
    }

    #[test]
    fn missing_operator_files_name_the_file() {
        let err = Tls::load(CertSource::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}

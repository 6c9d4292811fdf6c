//! Daemon settings, built in two stages: raw values from the command line and
//! environment ([`ServeArgs`], parsed by clap, flags winning over variables),
//! then [`Config`], where the optional TOML file and defaults fill what is
//! still unset.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Raw `serve` settings; every field optional so later layers can fill it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "SUBSTRATE_LISTEN")]
    pub listen: Option<String>,
    /// Directory of service definitions [default: ./defs]
    #[arg(long, env = "SUBSTRATE_DEFS")]
    pub defs: Option<PathBuf>,
    /// Data directory [default: ./.substrate]
    #[arg(long, env = "SUBSTRATE_DATA")]
    pub data: Option<PathBuf>,
    /// Optional TOML configuration file
    #[arg(long, env = "SUBSTRATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Container engine: docker, podman or swarm [default: docker]
    #[arg(long, env = "SUBSTRATE_ENGINE")]
    pub engine: Option<String>,
    /// The engine's API address, e.g. unix:///run/podman/podman.sock [default: DOCKER_HOST or the local socket for docker, unix:///run/podman/podman.sock for podman]
    #[arg(long, env = "SUBSTRATE_ENGINE_HOST")]
    pub engine_host: Option<String>,
    /// Namespace labelling every Docker object this daemon owns [default: default]
    #[arg(long, env = "SUBSTRATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// sled page cache in MiB [default: 8]
    #[arg(long, env = "SUBSTRATE_STORE_CACHE_MIB")]
    pub store_cache_mib: Option<u64>,
    /// Idle timeout of instances whose definition sets none, e.g. 15m; 0 never reaps [default: 15m]
    #[arg(long, env = "SUBSTRATE_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Idle time before an instance's container is paused, for definitions that set no pause_after; 0 never pauses [default: 30s]
    #[arg(long, env = "SUBSTRATE_PAUSE_AFTER")]
    pub pause_after: Option<String>,
    /// Build context for imagespecs [default: the parent of the defs directory]
    #[arg(long, env = "SUBSTRATE_BUILD_CONTEXT")]
    pub build_context: Option<PathBuf>,
    /// Request bodies up to this many MiB are buffered for one replay [default: 16]
    #[arg(long, env = "SUBSTRATE_BODY_BUFFER_MIB")]
    pub body_buffer_mib: Option<usize>,
    /// Clients must send their request headers within this [default: 10s]
    #[arg(long, env = "SUBSTRATE_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// Spaces made by a redirect and never used are deleted after this [default: 10m]
    #[arg(long, env = "SUBSTRATE_ABANDONED_SPACE_TTL")]
    pub abandoned_space_ttl: Option<String>,
    /// Largest request header block in KiB, HTTP/1.1 and HTTP/2 alike; larger gets 431 [default: 64]
    #[arg(long, env = "SUBSTRATE_MAX_HEADER_KIB")]
    pub max_header_kib: Option<usize>,
    /// A request body that sends nothing for this long gets 408 and the connection is closed [default: 60s]
    #[arg(long, env = "SUBSTRATE_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<String>,
    /// A client that reads nothing of the response for this long is disconnected [default: 60s]
    #[arg(long, env = "SUBSTRATE_SEND_TIMEOUT")]
    pub send_timeout: Option<String>,
    /// Connecting to a container must succeed within this [default: 5s]
    #[arg(long, env = "SUBSTRATE_UPSTREAM_CONNECT_TIMEOUT")]
    pub upstream_connect_timeout: Option<String>,
    /// A container must start its response within this; 0 waits forever (long polls, SSE) [default: 0]
    #[arg(long, env = "SUBSTRATE_UPSTREAM_RESPONSE_TIMEOUT")]
    pub upstream_response_timeout: Option<String>,
    /// Peers whose X-Forwarded-*/Forwarded headers are believed: comma-separated CIDRs or addresses [default: none]
    #[arg(long, env = "SUBSTRATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Also serve HTTPS on this address, e.g. 127.0.0.1:8443 [default: off]
    #[arg(long, env = "SUBSTRATE_TLS_LISTEN")]
    pub tls_listen: Option<String>,
    /// Host names of the HTTPS certificate, comma-separated [default: substrate.home.arpa,localhost]
    #[arg(long, env = "SUBSTRATE_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,
    /// PEM certificate chain to serve instead of the local CA's (with --tls-key; reloaded on SIGHUP)
    #[arg(long, env = "SUBSTRATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, env = "SUBSTRATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Override a `#var` of the definitions: NAME=VALUE (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
}

/// The TOML file: the same keys as the flags, in snake case, plus `[vars]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    engine: Option<String>,
    engine_host: Option<String>,
    defs: Option<PathBuf>,
    data: Option<PathBuf>,
    namespace: Option<String>,
    store_cache_mib: Option<u64>,
    idle_timeout: Option<String>,
    pause_after: Option<String>,
    build_context: Option<PathBuf>,
    body_buffer_mib: Option<usize>,
    abandoned_space_ttl: Option<String>,
    header_timeout: Option<String>,
    max_header_kib: Option<usize>,
    body_read_timeout: Option<String>,
    send_timeout: Option<String>,
    upstream_connect_timeout: Option<String>,
    upstream_response_timeout: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    tls_listen: Option<String>,
    tls_names: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Which container engine, and where its API is.
    pub engine: crate::runtime::EngineSettings,
    pub defs: PathBuf,
    pub data: PathBuf,
    pub namespace: String,
    pub store_cache_bytes: u64,
    /// Zero: never reap.
    pub idle_timeout: Duration,
    /// Zero: never pause.
    pub pause_after: Duration,
    pub build_context: PathBuf,
    pub body_buffer_bytes: usize,
    pub abandoned_space_ttl: Duration,
    pub header_timeout: Duration,
    /// Largest request header block, bytes (HTTP/1.1 and HTTP/2).
    pub max_header_bytes: usize,
    pub body_read_timeout: Duration,
    pub send_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    /// `None`: no limit.
    pub upstream_response_timeout: Option<Duration>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// HTTPS listener, when serving TLS.
    pub tls_listen: Option<SocketAddr>,
    /// Where the HTTPS certificate comes from.
    pub tls_source: crate::tls::CertSource,
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Engine(String),
    #[error("invalid listen address {0:?}: expected HOST:PORT, e.g. 127.0.0.1:8080")]
    Listen(String),
    #[error("invalid namespace {0:?}: use 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit")]
    Namespace(String),
    #[error("invalid idle timeout {0:?}: expected a duration such as 90s, 15m or 0")]
    IdleTimeout(String),
    #[error("invalid abandoned space TTL {0:?}: expected a duration such as 10m")]
    AbandonedTtl(String),
    #[error("invalid header timeout {0:?}: expected a duration such as 10s")]
    HeaderTimeout(String),
    #[error("invalid {name} {value:?}: expected a duration such as {example}")]
    Duration {
        name: &'static str,
        value: String,
        example: &'static str,
    },
    #[error("invalid max_header_kib {0}: expected 1 to 1024")]
    MaxHeader(usize),
    #[error("invalid trusted proxy {0:?}: expected a CIDR such as 10.0.0.0/8 or fd00::/8, or an address")]
    TrustedProxy(String),
    #[error("invalid --var {0:?}: expected NAME=VALUE")]
    Var(String),
    #[error("tls_cert and tls_key go together: {0} is set without the other")]
    TlsPair(&'static str),
}

impl Config {
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = layered(&args.listen, file.listen, "127.0.0.1:8080");
        let engine = crate::runtime::EngineSettings {
            kind: layered(&args.engine, file.engine, "docker")
                .parse()
                .map_err(ConfigError::Engine)?,
            host: args.engine_host.clone().or(file.engine_host).filter(|h| !h.is_empty()),
        };
        let namespace = layered(&args.namespace, file.namespace, "default");
        if !valid_namespace(&namespace) {
            return Err(ConfigError::Namespace(namespace));
        }
        let idle = layered(&args.idle_timeout, file.idle_timeout, "15m");
        let idle_timeout = crate::defs::parse_duration(&idle).ok_or(ConfigError::IdleTimeout(idle))?;
        let pause = layered(&args.pause_after, file.pause_after, "30s");
        let pause_after = crate::defs::parse_duration(&pause).ok_or(ConfigError::Duration {
            name: "pause_after",
            value: pause,
            example: "30s, or 0 for never",
        })?;
        let ttl = layered(&args.abandoned_space_ttl, file.abandoned_space_ttl, "10m");
        let abandoned_space_ttl = crate::defs::parse_duration(&ttl).ok_or(ConfigError::AbandonedTtl(ttl))?;
        let header = layered(&args.header_timeout, file.header_timeout, "10s");
        let header_timeout = crate::defs::parse_duration(&header)
            .filter(|d| !d.is_zero())
            .ok_or(ConfigError::HeaderTimeout(header))?;
        let body_read_timeout = nonzero_duration(
            "body_read_timeout",
            &layered(&args.body_read_timeout, file.body_read_timeout, "60s"),
            "60s",
        )?;
        let send_timeout = nonzero_duration(
            "send_timeout",
            &layered(&args.send_timeout, file.send_timeout, "60s"),
            "60s",
        )?;
        let upstream_connect_timeout = nonzero_duration(
            "upstream_connect_timeout",
            &layered(&args.upstream_connect_timeout, file.upstream_connect_timeout, "5s"),
            "5s",
        )?;
        let response = layered(&args.upstream_response_timeout, file.upstream_response_timeout, "0");
        let upstream_response_timeout = crate::defs::parse_duration(&response)
            .ok_or(ConfigError::Duration {
                name: "upstream_response_timeout",
                value: response,
                example: "5m, or 0 for none",
            })
            .map(|d| Some(d).filter(|d| !d.is_zero()))?;
        let max_header_kib = args.max_header_kib.or(file.max_header_kib).unwrap_or(64);
        if !(1..=1024).contains(&max_header_kib) {
            return Err(ConfigError::MaxHeader(max_header_kib));
        }
        let proxies = if args.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            args.trusted_proxies.clone()
        };
        let trusted_proxies = proxies.iter().map(|p| parse_cidr(p)).collect::<Result<Vec<_>, _>>()?;
        let tls_listen = match args.tls_listen.clone().or(file.tls_listen) {
            Some(t) => Some(t.parse().map_err(|_| ConfigError::Listen(t.clone()))?),
            None => None,
        };
        let data = args.data.clone().or(file.data).unwrap_or_else(|| ".substrate".into());
        let tls_names = match (args.tls_names.is_empty(), file.tls_names) {
            (false, _) => args.tls_names.clone(),
            (true, Some(n)) => n,
            (true, None) => crate::tls::DEFAULT_NAMES.iter().map(|n| n.to_string()).collect(),
        };
        let tls_source = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => crate::tls::CertSource::Files { cert, key },
            (None, None) => crate::tls::CertSource::LocalCa {
                dir: data.join("tls"),
                names: tls_names,
            },
            (Some(_), None) => return Err(ConfigError::TlsPair("tls_cert")),
            (None, Some(_)) => return Err(ConfigError::TlsPair("tls_key")),
        };
        let defs = args.defs.clone().or(file.defs).unwrap_or_else(|| "defs".into());
        let build_context = args.build_context.clone().or(file.build_context).unwrap_or_else(|| {
            std::fs::canonicalize(&defs)
                .ok()
                .and_then(|d| d.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| ".".into())
        });
        let mut vars = file.vars;
        for v in &args.vars {
            let (k, val) = v.split_once('=').ok_or_else(|| ConfigError::Var(v.clone()))?;
            vars.insert(k.to_owned(), val.to_owned());
        }
        Ok(Config {
            listen: listen.parse().map_err(|_| ConfigError::Listen(listen.clone()))?,
            engine,
            defs,
            data,
            namespace,
            store_cache_bytes: args.store_cache_mib.or(file.store_cache_mib).unwrap_or(8) * 1024 * 1024,
            idle_timeout,
            pause_after,
            build_context,
            body_buffer_bytes: args.body_buffer_mib.or(file.body_buffer_mib).unwrap_or(16) << 20,
            abandoned_space_ttl,
            header_timeout,
            max_header_bytes: max_header_kib << 10,
            body_read_timeout,
            send_timeout,
            upstream_connect_timeout,
            upstream_response_timeout,
            trusted_proxies,
            tls_listen,
            tls_source,
            vars,
        })
    }
}

/// A duration setting that must be more than zero.
fn nonzero_duration(name: &'static str, value: &str, example: &'static str) -> Result<Duration, ConfigError> {
    crate::defs::parse_duration(value)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ConfigError::Duration {
            name,
            value: value.to_owned(),
            example,
        })
}

/// `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128).
fn parse_cidr(text: &str) -> Result<ipnet::IpNet, ConfigError> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| ConfigError::TrustedProxy(text.to_owned()))
}

/// A text setting: the flag (or its environment variable), else the file's
/// value, else the default.
fn layered(flag: &Option<String>, file: Option<String>, default: &str) -> String {
    flag.clone().or(file).unwrap_or_else(|| default.to_owned())
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Namespaces end up in Docker names and labels: keep them tame.
pub fn valid_namespace(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nnamespace = \"fromfile\"\n[vars]\nimage_prefix = \"file-\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            namespace: Some("fromflag".into()),
            vars: vec!["other=x".into()],
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(c.namespace, "fromflag");
        assert_eq!(c.data, PathBuf::from(".substrate"));
        assert_eq!(c.store_cache_bytes, 8 << 20);
        assert_eq!(c.idle_timeout, Duration::from_secs(15 * 60));
        assert_eq!(c.vars.get("image_prefix").map(String::as_str), Some("file-"));
        assert_eq!(c.vars.get("other").map(String::as_str), Some("x"));
    }

    #[test]
    fn trust_and_timeouts_have_defaults_and_parse() {
        let c = Config::resolve(&ServeArgs::default()).unwrap();
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.max_header_bytes, 64 << 10);
        assert_eq!(c.body_read_timeout, Duration::from_secs(60));
        assert_eq!(c.send_timeout, Duration::from_secs(60));
        assert_eq!(c.upstream_connect_timeout, Duration::from_secs(5));
        assert_eq!(c.upstream_response_timeout, None);
        let args = ServeArgs {
            trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()],
            upstream_response_timeout: Some("5m".into()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.upstream_response_timeout, Some(Duration::from_secs(300)));
        let args = ServeArgs {
            trusted_proxies: vec!["10.0.0.0/33".into()],
            ..Default::default()
        };
        assert!(Config::resolve(&args).unwrap_err().to_string().contains("10.0.0.0/33"));
        let args = ServeArgs {
            body_read_timeout: Some("0".into()),
            ..Default::default()
        };
        assert!(Config::resolve(&args)
            .unwrap_err()
            .to_string()
            .contains("body_read_timeout"));
    }

    #[test]
    fn the_engine_is_docker_unless_set() {
        use crate::runtime::EngineKind;
        let c = Config::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(c.engine.kind, EngineKind::Docker);
        assert_eq!(c.engine.host, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "engine = \"podman\"\nengine_host = \"unix:///tmp/p.sock\"\n").unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.engine.kind, EngineKind::Podman);
        assert_eq!(c.engine.host.as_deref(), Some("unix:///tmp/p.sock"));
        let args = ServeArgs {
            config: Some(file),
            engine: Some("swarm".into()),
            ..Default::default()
        };
        assert_eq!(Config::resolve(&args).unwrap().engine.kind, EngineKind::Swarm);
        let args = ServeArgs {
            engine: Some("kubernetes".into()),
            ..Default::default()
        };
        let e = Config::resolve(&args).unwrap_err().to_string();
        assert!(
            e.contains("\"kubernetes\"") && e.contains("docker, podman or swarm"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let args = ServeArgs {
            listen: Some("nope".into()),
            ..Default::default()
        };
        assert!(Config::resolve(&args).unwrap_err().to_string().contains("\"nope\""));
        let args = ServeArgs {
            namespace: Some("Bad_NS".into()),
            ..Default::default()
        };
        assert!(matches!(Config::resolve(&args), Err(ConfigError::Namespace(_))));
        let args = ServeArgs {
            idle_timeout: Some("soon".into()),
            ..Default::default()
        };
        assert!(matches!(Config::resolve(&args), Err(ConfigError::IdleTimeout(_))));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "lisen = 1\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        assert!(Config::resolve(&args).unwrap_err().to_string().contains("lisen"));
    }
}

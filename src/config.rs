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
    /// Namespace labelling every Docker object this daemon owns [default: default]
    #[arg(long, env = "SUBSTRATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// sled page cache in MiB [default: 8]
    #[arg(long, env = "SUBSTRATE_STORE_CACHE_MIB")]
    pub store_cache_mib: Option<u64>,
    /// Idle timeout of instances whose definition sets none, e.g. 15m; 0 never reaps [default: 15m]
    #[arg(long, env = "SUBSTRATE_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
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
    /// Override a `#var` of the definitions: NAME=VALUE (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
}

/// The TOML file: the same keys as the flags, in snake case, plus `[vars]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    defs: Option<PathBuf>,
    data: Option<PathBuf>,
    namespace: Option<String>,
    store_cache_mib: Option<u64>,
    idle_timeout: Option<String>,
    build_context: Option<PathBuf>,
    body_buffer_mib: Option<usize>,
    abandoned_space_ttl: Option<String>,
    header_timeout: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub defs: PathBuf,
    pub data: PathBuf,
    pub namespace: String,
    pub store_cache_bytes: u64,
    /// Zero: never reap.
    pub idle_timeout: Duration,
    pub build_context: PathBuf,
    pub body_buffer_bytes: usize,
    pub abandoned_space_ttl: Duration,
    pub header_timeout: Duration,
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
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
    #[error("invalid --var {0:?}: expected NAME=VALUE")]
    Var(String),
}

impl Config {
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = layered(&args.listen, file.listen, "127.0.0.1:8080");
        let namespace = layered(&args.namespace, file.namespace, "default");
        if !valid_namespace(&namespace) {
            return Err(ConfigError::Namespace(namespace));
        }
        let idle = layered(&args.idle_timeout, file.idle_timeout, "15m");
        let idle_timeout = crate::defs::parse_duration(&idle).ok_or(ConfigError::IdleTimeout(idle))?;
        let ttl = layered(&args.abandoned_space_ttl, file.abandoned_space_ttl, "10m");
        let abandoned_space_ttl = crate::defs::parse_duration(&ttl).ok_or(ConfigError::AbandonedTtl(ttl))?;
        let header = layered(&args.header_timeout, file.header_timeout, "10s");
        let header_timeout = crate::defs::parse_duration(&header)
            .filter(|d| !d.is_zero())
            .ok_or(ConfigError::HeaderTimeout(header))?;
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
            defs,
            data: args.data.clone().or(file.data).unwrap_or_else(|| ".substrate".into()),
            namespace,
            store_cache_bytes: args.store_cache_mib.or(file.store_cache_mib).unwrap_or(8) * 1024 * 1024,
            idle_timeout,
            build_context,
            body_buffer_bytes: args.body_buffer_mib.or(file.body_buffer_mib).unwrap_or(16) << 20,
            abandoned_space_ttl,
            header_timeout,
            vars,
        })
    }
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

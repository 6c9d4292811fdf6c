//! Daemon settings, built in two stages: raw values from the command line and
//! environment ([`ServeArgs`], parsed by clap, flags winning over variables),
//! then [`Config`], where the optional TOML file and defaults fill what is
//! still unset.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
}

/// The TOML file: the same keys as the flags, in snake case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    defs: Option<PathBuf>,
    data: Option<PathBuf>,
    namespace: Option<String>,
    store_cache_mib: Option<u64>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub defs: PathBuf,
    pub data: PathBuf,
    pub namespace: String,
    pub store_cache_bytes: u64,
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
}

impl Config {
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let namespace = args
            .namespace
            .clone()
            .or(file.namespace)
            .unwrap_or_else(|| "default".into());
        if !valid_namespace(&namespace) {
            return Err(ConfigError::Namespace(namespace));
        }
        Ok(Config {
            listen: listen.parse().map_err(|_| ConfigError::Listen(listen.clone()))?,
            defs: args.defs.clone().or(file.defs).unwrap_or_else(|| "defs".into()),
            data: args.data.clone().or(file.data).unwrap_or_else(|| ".substrate".into()),
            namespace,
            store_cache_bytes: args.store_cache_mib.or(file.store_cache_mib).unwrap_or(8) * 1024 * 1024,
        })
    }
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
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nnamespace = \"fromfile\"\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            namespace: Some("fromflag".into()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(c.namespace, "fromflag");
        assert_eq!(c.data, PathBuf::from(".substrate"));
        assert_eq!(c.store_cache_bytes, 8 << 20);
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

//! Building images through the Docker API, with the repository root as the
//! build context (so `COPY images/foo/. /work/` works), honouring
//! `.dockerignore`.
//!
//! `.dockerignore` follows Docker's rules: one glob per line, `#` comments,
//! `!` re-includes, the last matching line wins, and a pattern that matches a
//! directory matches everything under it. The Dockerfile and `.dockerignore`
//! are always sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use globset::{Glob, GlobMatcher};

use super::{DockerEngine, RuntimeError};

/// How to build one image.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The tag to give the result.
    pub image: String,
    /// The Dockerfile, relative to the context root.
    pub dockerfile: String,
    pub target: Option<String>,
    pub args: HashMap<String, String>,
    pub context: PathBuf,
}

struct Rule {
    matcher: GlobMatcher,
    include: bool,
}

/// The rules of a `.dockerignore`.
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    pub fn parse(text: &str) -> Result<IgnoreRules, String> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = pattern
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            let glob = Glob::new(pattern).map_err(|e| format!(".dockerignore:{}: {e}", n + 1))?;
            rules.push(Rule {
                matcher: glob.compile_matcher(),
                include,
            });
        }
        Ok(IgnoreRules { rules })
    }

    pub fn load(context: &Path) -> Result<IgnoreRules, String> {
        match std::fs::read_to_string(context.join(".dockerignore")) {
            Ok(text) => IgnoreRules::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IgnoreRules { rules: Vec::new() }),
            Err(e) => Err(format!(".dockerignore: {e}")),
        }
    }

    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.include)
    }

    /// Whether `rel` (a path relative to the context) is left out.
    pub fn excluded(&self, rel: &Path) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            // A pattern matching a parent directory matches its contents.
            let hit = rel
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .any(|a| rule.matcher.is_match(a));
            if hit {
                excluded = !rule.include;
            }
        }
        excluded
    }
}

/// The build context as a tar archive in memory.
pub fn context_tar(context: &Path, dockerfile: &str) -> Result<Vec<u8>, String> {
    let rules = IgnoreRules::load(context)?;
    let always = [PathBuf::from(dockerfile), PathBuf::from(".dockerignore")];
    let prune = !rules.has_exceptions();
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let walker = walkdir::WalkDir::new(context)
        .follow_links(false)
        .min_depth(1)
        .into_iter();
    let walker = walker.filter_entry(|e| {
        let rel = e.path().strip_prefix(context).unwrap_or(e.path());
        !(prune && e.file_type().is_dir() && rules.excluded(rel))
    });
    for entry in walker {
        let entry = entry.map_err(|e| format!("reading the build context: {e}"))?;
        let rel = entry.path().strip_prefix(context).unwrap_or(entry.path());
        if rules.excluded(rel) && !always.iter().any(|a| a == rel) {
            continue;
        }
        if entry.file_type().is_dir() {
            tar.append_dir(rel, entry.path())
        } else {
            tar.append_path_with_name(entry.path(), rel)
        }
        .map_err(|e| format!("adding {} to the build context: {e}", rel.display()))?;
    }
    tar.into_inner().map_err(|e| format!("writing the build context: {e}"))
}

impl DockerEngine {
    /// Builds an image, logging Docker's progress lines.
    pub(super) async fn build_with_docker(&self, spec: &BuildSpec) -> Result<(), RuntimeError> {
        let build_err = |message: String| RuntimeError::Build {
            image: spec.image.clone(),
            message,
        };
        let context = spec.context.clone();
        let dockerfile = spec.dockerfile.clone();
        let tar = tokio::task::spawn_blocking(move || context_tar(&context, &dockerfile))
            .await
            .map_err(|e| build_err(e.to_string()))?
            .map_err(build_err)?;
        tracing::info!(image = %spec.image, dockerfile = %spec.dockerfile, context_bytes = tar.len(), "building image");
        let options = BuildImageOptions {
            dockerfile: spec.dockerfile.clone(),
            t: Some(spec.image.clone()),
            target: spec.target.clone().unwrap_or_default(),
            buildargs: (!spec.args.is_empty()).then(|| spec.args.clone()),
            rm: true,
            forcerm: true,
            labels: Some(HashMap::from([(
                super::LABEL_NAMESPACE.to_owned(),
                super::Engine::namespace(self).to_owned(),
            )])),
            ..Default::default()
        };
        let client = self.client().await?;
        let mut stream = client.build_image(options, None, Some(bollard::body_full(tar.into())));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| match e {
                bollard::errors::Error::DockerStreamError { error } => build_err(error),
                bollard::errors::Error::DockerResponseServerError { message, .. } => build_err(message),
                other => RuntimeError::Unavailable(other.to_string()),
            })?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(build_err(detail));
            }
            if let Some(line) = info.stream.as_deref().map(str::trim_end).filter(|l| !l.is_empty()) {
                tracing::info!(image = %spec.image, "{line}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_follows_docker_rules() {
        let r = IgnoreRules::parse("# comment\ntarget/\n*.log\n!keep.log\n/.git\nimages/**/tmp\n").unwrap();
        assert!(r.excluded(Path::new("target")));
        assert!(r.excluded(Path::new("target/debug/x")));
        assert!(r.excluded(Path::new("a.log")));
        assert!(!r.excluded(Path::new("keep.log")));
        assert!(r.excluded(Path::new(".git/config")));
        assert!(r.excluded(Path::new("images/foo/tmp/x")));
        assert!(!r.excluded(Path::new("images/foo/Dockerfile")));
        assert!(!r.excluded(Path::new("src/main.rs")));
    }

    #[test]
    fn context_leaves_out_ignored_files_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("images/foo")).unwrap();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        std::fs::write(root.join("images/foo/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join("target/debug/big"), "x").unwrap();
        std::fs::write(root.join(".dockerignore"), "target\nimages/foo/Dockerfile\n").unwrap();
        let tar = context_tar(root, "images/foo/Dockerfile").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.iter().any(|n| n == "images/foo/Dockerfile"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("target")), "{names:?}");
    }
}

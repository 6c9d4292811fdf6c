//! `substrate images build`: builds the enabled imagespecs of `defs/`
//! through the configured engine's API, with the repository root as the context.

use std::path::Path;

use anyhow::Context;

use crate::runtime::build::BuildSpec;
use crate::runtime::EngineSettings;

/// Whether imagespec `name` is enabled (`enable[name]` is true).
pub fn enabled(defs: &crate::defs::Defs, name: &str) -> bool {
    defs.services.get(name).is_some_and(|s| s.enabled)
}

/// The enabled imagespec that builds `image`, if any.
pub fn buildable<'d>(defs: &'d crate::defs::Defs, image: &str) -> Option<&'d crate::defs::ImageSpec> {
    defs.imagespecs
        .values()
        .find(|s| s.image == image && enabled(defs, &s.name))
}

/// How to build the image an imagespec describes, from `context`.
pub fn build_spec(spec: &crate::defs::ImageSpec, context: &Path) -> BuildSpec {
    BuildSpec {
        image: spec.image.clone(),
        dockerfile: spec.build.dockerfile.clone(),
        target: spec.build.target.clone(),
        args: spec.build.args.clone().into_iter().collect(),
        context: context.to_owned(),
    }
}

/// Builds every enabled imagespec (or only those in `names`) on the engine
/// `engine` names; returns the image references built.
pub async fn build_enabled(
    engine: &EngineSettings,
    defs_dir: &Path,
    context: Option<&Path>,
    names: &[String],
) -> anyhow::Result<Vec<String>> {
    let defs = crate::defs::load_dir(defs_dir, &Default::default()).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("cannot load {}:\n{}", defs_dir.display(), text.join("\n"))
    })?;
    let context = match context {
        Some(c) => c.to_owned(),
        None => std::fs::canonicalize(defs_dir)
            .with_context(|| format!("cannot resolve {}", defs_dir.display()))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into()),
    };
    for n in names {
        if !defs.imagespecs.contains_key(n) {
            anyhow::bail!("no imagespec named {n:?} in {}", defs_dir.display());
        }
    }
    let engine = crate::runtime::connect(engine, "default")?;
    let mut built = Vec::new();
    for (name, spec) in &defs.imagespecs {
        if !(names.is_empty() && enabled(&defs, name) || names.contains(name)) {
            continue;
        }
        engine.build_image(&build_spec(spec, &context)).await?;
        built.push(spec.image.clone());
    }
    Ok(built)
}

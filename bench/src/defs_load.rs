//! `defs_load_ms`: loading a generated `defs/` of 200 service files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use crate::util::{median, ms, TempDir};

pub const SERVICES: usize = 200;

/// One service file of realistic size (~40 lines): a pattern constraint,
/// references to siblings and to `#var`, interpolation, disjunctions with
/// defaults, bounds, a `let` and a comprehension.
pub fn service_file(i: usize) -> String {
    let name = format!("svc{i:03}");
    let tier = ["web", "api", "worker"][i % 3];
    format!(
        r#"package defs

// {name}: a generated service of the {tier} tier.
enable: "{name}": {enabled}

imagespecs: "{name}": {{
	image: "\(#var.image_prefix){name}"
	build: {{
		dockerfile: "images/{name}/Dockerfile"
		args: VERSION: "1.{i}.0"
	}}
}}

#{name}Tier: *"{tier}" | "web" | "api" | "worker"

services: "{name}": {{
	instances: [string]: {{
		let base = "/srv/{name}"
		environment: {{
			SERVICE_NAME: "{name}"
			TIER:         #{name}Tier
			LOG_LEVEL:    *"info" | "debug" | "warn"
			APP_PORT:     environment.PORT
			HOME_DIR:     base
			GREETING:     "hello from \(environment.SERVICE_NAME) on \(environment.PORT)"
			if environment.TIER == "worker" {{
				QUEUE: "jobs-{name}"
			}}
		}}
		command: ["/bin/{name}", "--port", environment.PORT, "--home", base]
		parameters: data: {{type: "space", optional: true}}
		readiness: {{
			path:    "/health"
			timeout: *"30s" | string
		}}
		idle_timeout: *"10m" | string
		url_prefix:   ""
		resources: {{
			memory: "256m"
			cpus:   {cpus}
		}}
		mounts: [{{source: "/var/cache/{name}", destination: "/cache", mode: "ro"}}]
	}}
}}
"#,
        enabled = if i % 10 == 9 { "false" } else { "true" },
        cpus = 0.25 * ((i % 4) + 1) as f64,
    )
}

/// Writes the generated defs folder into `dir`, with the project's schema.
pub fn generate(dir: &Path, schema: &Path) -> Result<()> {
    std::fs::copy(schema, dir.join("substrate.cue"))
        .with_context(|| format!("copying {} into {}", schema.display(), dir.display()))?;
    for i in 0..SERVICES {
        let path = dir.join(format!("svc{i:03}.cue"));
        std::fs::write(&path, service_file(i)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub struct DefsResult {
    pub load_ms: f64,
    pub services: usize,
    pub lines: usize,
}

pub fn run(work: &Path, schema: &Path) -> Result<DefsResult> {
    let tmp = TempDir::new(work, "defs")?;
    generate(tmp.path(), schema)?;
    let lines: usize = (0..SERVICES).map(|i| service_file(i).lines().count()).sum();
    let vars = BTreeMap::new();
    let mut times = Vec::new();
    let mut services = 0;
    for _ in 0..5 {
        let began = Instant::now();
        let defs = substrate::defs::load_dir(tmp.path(), &vars).map_err(|errors| {
            let text: Vec<String> = errors.iter().take(10).map(|e| e.to_string()).collect();
            anyhow!(
                "the generated defs in {} do not load:\n{}",
                tmp.path().display(),
                text.join("\n")
            )
        })?;
        times.push(ms(began.elapsed()));
        services = defs.services.len();
    }
    Ok(DefsResult {
        load_ms: median(&mut times),
        services,
        lines: lines / SERVICES,
    })
}

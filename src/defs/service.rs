//! The typed view of an evaluated `defs/` package: which services exist and
//! are enabled, their image specs, and the resolution of an instance
//! template into a concrete [`InstanceSpec`] the runtime can start.
//!
//! Terms: the *template* of service `s` is `services[s].instances[key]`;
//! *resolving* unifies it with what the daemon knows (`injected`: port,
//! URL prefix, parameter values …) and requires every field to be concrete.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::defs::ast::File;
use crate::defs::error::{CueError, Files};
use crate::defs::eval::{Evaluator, ROOT};
use crate::defs::export::{export, Mode};
use crate::defs::load::PACKAGE;
use crate::defs::value::quote;
use crate::defs::{parser, with_stack};

/// Instance key used to show a service's template in `defs export`.
const TEMPLATE_KEY: &str = "<template>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Space,
    Spaces,
    String,
}

impl ParamType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "space" => Some(ParamType::Space),
            "spaces" => Some(ParamType::Spaces),
            "string" => Some(ParamType::String),
            _ => None,
        }
    }
}

/// A parameter a service declares (known without an instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterDef {
    #[serde(rename = "type")]
    pub kind: ParamType,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDef {
    pub name: String,
    /// `enable[name]` is true.
    pub enabled: bool,
    /// The template's image, else `imagespecs[name].image`.
    pub image: Option<String>,
    pub parameters: BTreeMap<String, ParameterDef>,
    /// The template with defaults applied; open fields as their CUE type text.
    pub template: serde_json::Value,
    /// One line for the home page (`services: NAME: description`).
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageBuild {
    pub dockerfile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSpec {
    pub name: String,
    pub image: String,
    pub build: ImageBuild,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parameter {
    #[serde(rename = "type")]
    pub kind: ParamType,
    pub optional: bool,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// HTTP GET of this path expecting < 500; TCP connect when None.
    pub path: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resources {
    pub memory: Option<String>,
    pub cpus: Option<f64>,
}

/// A fully concrete instance definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSpec {
    pub service: String,
    pub image: String,
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub parameters: BTreeMap<String, Parameter>,
    pub url_prefix: String,
    /// None: use the configured default; `Some(ZERO)` ("0"): never reap.
    pub idle_timeout: Option<Duration>,
    /// Idle time before the container is paused; None: the configured
    /// default; `Some(ZERO)` ("0"): never pause. Left out of the digest
    /// when unset, so older definitions keep their digests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_after: Option<Duration>,
    pub readiness: Readiness,
    pub init: bool,
    pub resources: Resources,
}

impl InstanceSpec {
    /// Stable hex sha256 of the canonical JSON (struct fields in declaration
    /// order, maps sorted), used to notice changed definitions on reload.
    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let d = Sha256::digest(json.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("no service named {0:?} is defined")]
    UnknownService(String),
    #[error("{}", join_errors(.0))]
    Cue(Vec<CueError>),
    /// Each field path (relative to the template) that is not concrete.
    #[error("instance definition is not concrete: {}", .0.join("; "))]
    Incomplete(Vec<String>),
    #[error("invalid instance definition: {0}")]
    Invalid(String),
}

fn join_errors(e: &[CueError]) -> String {
    e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

/// Evaluated `defs/`: typed services and imagespecs plus what is needed to
/// resolve instances later (the parsed files).
#[derive(Debug, Clone)]
pub struct Defs {
    pub services: BTreeMap<String, ServiceDef>,
    pub imagespecs: BTreeMap<String, ImageSpec>,
    /// Evaluated `#var` (after overrides).
    pub vars: serde_json::Value,
    files: Files,
    parsed: Vec<File>,
    /// Packages imported from `defs/`'s module, by import path.
    packages: BTreeMap<String, Vec<File>>,
}

fn str_at<'v>(v: &'v serde_json::Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

impl Defs {
    /// Parses, evaluates and validates the sources (one package `defs`).
    pub(crate) fn build(
        sources: Vec<(String, String)>,
        vars: &BTreeMap<String, String>,
        module: Option<&crate::defs::module::Module>,
    ) -> Result<Defs, Vec<CueError>> {
        let crate::defs::module::Program {
            mut files,
            main: mut parsed,
            packages,
        } = crate::defs::module::load(&sources, module, Some(PACKAGE))?;
        // variables bind @tag fields; the rest override #var
        let used = crate::defs::tags::apply(&mut parsed, vars, &files)?;
        let rest: BTreeMap<String, String> = vars
            .iter()
            .filter(|(k, _)| !used.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            files.names.push("<config>".into());
            let src = crate::defs::load::vars_source(&rest);
            parsed.push(parser::parse_file(&src, (files.names.len() - 1) as u32, &files).map_err(|e| vec![e])?);
        }
        check_vars(&parsed)?;
        // one evaluator for both passes; the template file is added after
        // the root is exported
        let mut files2 = files.clone();
        files2.names.push("<template>".into());
        let mut ev = Evaluator::with_packages(parsed.iter(), &packages, &files2);
        let root = ev.materialize(ROOT);
        let json = export(&root, &files, Mode::Strict)?;
        let vars = match ev.field(ROOT, "#var") {
            Some(v) => {
                let val = ev.materialize(v);
                export(&val, &files, Mode::Lenient)?
            }
            None => serde_json::Value::Object(Default::default()),
        };

        let mut errs = Vec::new();
        let mut imagespecs = BTreeMap::new();
        if let Some(specs) = json.get("imagespecs").and_then(|v| v.as_object()) {
            for (name, s) in specs {
                let (Some(image), Some(dockerfile)) = (str_at(s, &["image"]), str_at(s, &["build", "dockerfile"]))
                else {
                    errs.push(CueError::bare(
                        "",
                        format!("imagespecs.{name}: needs image and build.dockerfile strings"),
                    ));
                    continue;
                };
                let args = s
                    .get("build")
                    .and_then(|b| b.get("args"))
                    .and_then(|a| a.as_object())
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                imagespecs.insert(
                    name.clone(),
                    ImageSpec {
                        name: name.clone(),
                        image: image.to_string(),
                        build: ImageBuild {
                            dockerfile: dockerfile.to_string(),
                            target: str_at(s, &["build", "target"]).map(String::from),
                            args,
                        },
                    },
                );
            }
        }
        let enable = json
            .get("enable")
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        let names: Vec<String> = json
            .get("services")
            .and_then(|v| v.as_object())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for name in enable.keys() {
            if !names.contains(name) {
                errs.push(CueError::bare(
                    "",
                    format!("enable.{name}: no service {name} is defined"),
                ));
            }
        }

        // Templates: one more evaluation with a placeholder instance per service.
        let mut synth = format!("package {PACKAGE}\nservices: {{\n");
        for n in &names {
            synth.push_str(&format!("    {}: instances: {}: {{}}\n", quote(n), quote(TEMPLATE_KEY)));
        }
        synth.push_str("}\n");
        let tfile = parser::parse_file(&synth, (files2.names.len() - 1) as u32, &files2).map_err(|e| vec![e])?;
        ev.add_file(&tfile);
        let ev2 = &mut ev;
        let mut services = BTreeMap::new();
        for name in &names {
            let Some(v) = path_vertex(ev2, &["services", name, "instances", TEMPLATE_KEY]) else {
                continue;
            };
            let val = ev2.materialize(v);
            let template = match export(&val, &files2, Mode::Lenient) {
                Ok(t) => t,
                Err(e) => {
                    errs.extend(e);
                    continue;
                }
            };
            let mut parameters = BTreeMap::new();
            if let Some(ps) = template.get("parameters").and_then(|p| p.as_object()) {
                for (pname, p) in ps {
                    match p.get("type").and_then(|t| t.as_str()).and_then(ParamType::parse) {
                        Some(kind) => {
                            let optional = p.get("optional").and_then(|o| o.as_bool()).unwrap_or(false);
                            parameters.insert(pname.clone(), ParameterDef { kind, optional });
                        }
                        None => errs.push(CueError::bare(
                            "",
                            format!(
                                "services.{name}: parameters.{pname}.type must be \"space\", \"spaces\" or \"string\""
                            ),
                        )),
                    }
                }
            }
            let image = template
                .get("image")
                .and_then(|i| i.as_str())
                .filter(|i| !is_type_text(i, &val))
                .map(String::from)
                .or_else(|| imagespecs.get(name).map(|s: &ImageSpec| s.image.clone()));
            let mut template = template;
            if let (Some(obj), Some(img)) = (template.as_object_mut(), &image) {
                obj.entry("image")
                    .or_insert_with(|| serde_json::Value::String(img.clone()));
            }
            let description = path_vertex(ev2, &["services", name, "description"])
                .map(|v| ev2.materialize(v))
                .and_then(|d| export(&d, &files2, Mode::Lenient).ok())
                .and_then(|j| j.as_str().map(String::from));
            services.insert(
                name.clone(),
                ServiceDef {
                    name: name.clone(),
                    enabled: enable.get(name).and_then(|e| e.as_bool()).unwrap_or(false),
                    image,
                    parameters,
                    template,
                    description,
                },
            );
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Defs {
            services,
            imagespecs,
            vars,
            files,
            parsed,
            packages,
        })
    }

    /// `substrate defs export [SERVICE]`.
    pub fn export_json(&self, service: Option<&str>) -> serde_json::Value {
        let services: serde_json::Map<String, serde_json::Value> = self
            .services
            .iter()
            .filter(|(n, _)| service.is_none_or(|s| s == n.as_str()))
            .map(|(n, s)| {
                (
                    n.clone(),
                    serde_json::json!({
                        "enabled": s.enabled,
                        "image": s.image,
                        "parameters": s.parameters,
                        "template": s.template,
                    }),
                )
            })
            .collect();
        let imagespecs: serde_json::Map<String, serde_json::Value> = self
            .imagespecs
            .iter()
            .filter(|(n, _)| service.is_none_or(|s| s == n.as_str()))
            .map(|(n, s)| (n.clone(), serde_json::json!({"image": s.image, "build": s.build})))
            .collect();
        serde_json::json!({"services": services, "imagespecs": imagespecs, "vars": self.vars})
    }

    /// Unifies `services[service].instances[instance_key]` with `injected`
    /// (a JSON object such as `{"environment": {"PORT": "8080"},
    /// "parameters": {"data": {"value": "sp-…"}}}`) and requires the result
    /// to be concrete.
    pub fn resolve(
        &self,
        service: &str,
        instance_key: &str,
        injected: &serde_json::Value,
    ) -> Result<InstanceSpec, ResolveError> {
        if !self.services.contains_key(service) {
            return Err(ResolveError::UnknownService(service.to_string()));
        }
        let inj = serde_json::to_string(injected).map_err(|e| ResolveError::Invalid(e.to_string()))?;
        let synth = format!(
            "package {PACKAGE}\nservices: {}: instances: {}: {inj}\n",
            quote(service),
            quote(instance_key)
        );
        let json = with_stack(|| -> Result<serde_json::Value, ResolveError> {
            let mut files = self.files.clone();
            files.names.push("<injected>".into());
            let f = parser::parse_file(&synth, (files.names.len() - 1) as u32, &files)
                .map_err(|e| ResolveError::Cue(vec![e]))?;
            let mut ev =
                Evaluator::with_packages(self.parsed.iter().chain(std::iter::once(&f)), &self.packages, &files);
            let v = path_vertex(&mut ev, &["services", service, "instances", instance_key])
                .ok_or_else(|| ResolveError::Invalid("instance not found".into()))?;
            let val = ev.materialize(v);
            export(&val, &files, Mode::Strict).map_err(|errs| {
                let incomplete: Vec<String> = errs
                    .iter()
                    .filter(|e| e.incomplete)
                    .filter_map(|e| e.message.find(": ").map(|i| e.message[..i].to_string()))
                    .collect();
                if incomplete.len() == errs.len() {
                    ResolveError::Incomplete(incomplete)
                } else {
                    ResolveError::Cue(errs)
                }
            })
        })?;
        self.instance_from_json(service, &json)
    }

    fn instance_from_json(&self, service: &str, j: &serde_json::Value) -> Result<InstanceSpec, ResolveError> {
        let bad = |m: String| ResolveError::Invalid(m);
        let strings = |v: Option<&serde_json::Value>, what: &str| -> Result<BTreeMap<String, String>, ResolveError> {
            let mut out = BTreeMap::new();
            if let Some(m) = v.and_then(|v| v.as_object()) {
                for (k, v) in m {
                    let s = v.as_str().ok_or_else(|| bad(format!("{what}.{k} must be a string")))?;
                    out.insert(k.clone(), s.to_string());
                }
            }
            Ok(out)
        };
        let image = match j.get("image").and_then(|i| i.as_str()) {
            Some(i) => i.to_string(),
            None => match self.imagespecs.get(service) {
                Some(s) => s.image.clone(),
                None => return Err(bad("image: no image set and no imagespec for this service".into())),
            },
        };
        let command = match j.get("command").and_then(|c| c.as_array()) {
            Some(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .ok_or_else(|| bad("command must be a list of strings".into()))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let environment = strings(j.get("environment"), "environment")?;
        let mut mounts = Vec::new();
        for m in j.get("mounts").and_then(|m| m.as_array()).into_iter().flatten() {
            let (Some(s), Some(d)) = (str_at(m, &["source"]), str_at(m, &["destination"])) else {
                return Err(bad("mounts need source and destination".into()));
            };
            mounts.push(Mount {
                source: s.into(),
                destination: d.into(),
                read_only: str_at(m, &["mode"]) == Some("ro"),
            });
        }
        let mut parameters = BTreeMap::new();
        for (name, p) in j.get("parameters").and_then(|p| p.as_object()).into_iter().flatten() {
            let kind = str_at(p, &["type"])
                .and_then(ParamType::parse)
                .ok_or_else(|| bad(format!("parameters.{name}.type must be space, spaces or string")))?;
            let value = str_at(p, &["value"]).unwrap_or_default().to_string();
            let optional = p.get("optional").and_then(|o| o.as_bool()).unwrap_or(false);
            parameters.insert(name.clone(), Parameter { kind, optional, value });
        }
        let idle_timeout = match str_at(j, &["idle_timeout"]) {
            Some(s) => Some(parse_duration(s).ok_or_else(|| bad(format!("idle_timeout: invalid duration {s:?}")))?),
            None => None,
        };
        let pause_after = match str_at(j, &["pause_after"]) {
            Some(s) => Some(parse_duration(s).ok_or_else(|| bad(format!("pause_after: invalid duration {s:?}")))?),
            None => None,
        };
        let timeout_text = str_at(j, &["readiness", "timeout"]).unwrap_or("60s");
        let timeout = parse_duration(timeout_text)
            .ok_or_else(|| bad(format!("readiness.timeout: invalid duration {timeout_text:?}")))?;
        Ok(InstanceSpec {
            service: service.to_string(),
            image,
            command,
            environment,
            mounts,
            parameters,
            url_prefix: str_at(j, &["url_prefix"]).unwrap_or_default().to_string(),
            idle_timeout,
            pause_after,
            readiness: Readiness {
                path: str_at(j, &["readiness", "path"]).map(String::from),
                timeout,
            },
            init: j.get("init").and_then(|i| i.as_bool()).unwrap_or(true),
            resources: Resources {
                memory: str_at(j, &["resources", "memory"]).map(String::from),
                cpus: j.get("resources").and_then(|r| r.get("cpus")).and_then(|c| c.as_f64()),
            },
        })
    }
}

/// The configuration (file `<config>`) may only set variables that the
/// definitions declare in `#var`; a typo must not silently add a new one.
fn check_vars(parsed: &[File]) -> Result<(), Vec<CueError>> {
    use crate::defs::ast::{Decl, ExprKind, Field, Label};
    let var_labels = |f: &File| -> Vec<String> {
        let mut out = Vec::new();
        if let ExprKind::Struct(decls) = &f.body.kind {
            for d in decls {
                if let Decl::Field(Field {
                    label: Label::Name { name, quoted: false },
                    value,
                    ..
                }) = d
                {
                    if name == "#var" {
                        if let ExprKind::Struct(inner) = &value.kind {
                            for i in inner {
                                if let Decl::Field(Field {
                                    label: Label::Name { name, .. },
                                    ..
                                }) = i
                                {
                                    out.push(name.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    };
    let declared: Vec<String> = parsed
        .iter()
        .filter(|f| f.name != "<config>")
        .flat_map(var_labels)
        .collect();
    let errs: Vec<CueError> = parsed
        .iter()
        .filter(|f| f.name == "<config>")
        .flat_map(var_labels)
        .filter(|v| !declared.contains(v))
        .map(|v| {
            CueError::bare(
                "<config>",
                format!("unknown variable {v}: #var declares {}", declared.join(", ")),
            )
        })
        .collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// In lenient export a non-concrete image shows as its type text; that is
/// not an image name.
fn is_type_text(s: &str, _template: &crate::defs::value::Value) -> bool {
    s == "string" || s == "_" || s.starts_with("!=") || s.contains(" | ")
}

fn path_vertex(ev: &mut Evaluator<'_>, path: &[&str]) -> Option<usize> {
    let mut v = ROOT;
    for p in path {
        v = ev.field(v, p)?;
    }
    Some(v)
}

/// Go-style durations: "0", "90s", "15m", "1h30m", "250ms".
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration(""), None);
    }
}

//! The home page at `/` (SPEC §12): what a person sees first.
//!
//! Behind the admin token ([`auth`]): enabled services with their
//! description and a link; running instances (state, uptime, idle time
//! left, spaces, stop); spaces (name, size, created, users, checkpoint /
//! fork / delete); and the lineage of spaces drawn as SVG
//! ([`lineage_svg`]). Server-rendered with minijinja templates
//! (`src/home/templates/`), no JavaScript. Forms post to
//! `/substrate/ui/…` and answer with a 303 back to the page (POST/redirect/
//! GET), carrying a one-line notice.

pub mod auth;
pub mod lineage_svg;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use minijinja::{context, Environment};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::ids::SpaceId;
use crate::instance::{Activator, StopOutcome};
use crate::proxy::pages;
use crate::proxy::Scheme;
use crate::space::{ForkSource, Spaces};
use crate::store::{now_millis, SpaceOrigin, Store};

/// What the home page reads and acts on.
#[derive(Clone)]
pub struct HomeState {
    pub store: Store,
    pub catalog: Catalog,
    pub activator: Arc<Activator>,
    pub spaces: Arc<Spaces>,
    pub token: Arc<str>,
    templates: Arc<Environment<'static>>,
}

impl HomeState {
    pub fn new(
        store: Store,
        catalog: Catalog,
        activator: Arc<Activator>,
        spaces: Arc<Spaces>,
        token: Arc<str>,
    ) -> HomeState {
        let mut env = Environment::new();
        for (name, text) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("login.html", include_str!("templates/login.html")),
            ("home.html", include_str!("templates/home.html")),
        ] {
            if let Err(e) = env.add_template(name, text) {
                // The templates are part of the binary: a broken one is a
                // build-time mistake, reported on first render.
                tracing::error!(template = name, error = %e, "home page template does not parse");
            }
        }
        HomeState {
            store,
            catalog,
            activator,
            spaces,
            token,
            templates: Arc::new(env),
        }
    }
}

/// The router for `/` and `/substrate/ui/…`.
pub fn router(state: HomeState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/substrate/ui/login", post(login))
        .route("/substrate/ui/logout", post(logout))
        .route("/substrate/ui/spaces", post(create_space))
        .route("/substrate/ui/spaces/{id}/checkpoint", post(checkpoint))
        .route("/substrate/ui/spaces/{id}/fork", post(fork))
        .route("/substrate/ui/spaces/{id}/delete", post(delete))
        .route("/substrate/ui/instances/stop", post(stop))
        .fallback(|| async { page_error(StatusCode::NOT_FOUND, "no such page") })
        .with_state(state)
}

fn page_error(status: StatusCode, reason: &str) -> Response {
    pages::error(status, reason, None, true).into_response()
}

fn render(state: &HomeState, name: &str, ctx: minijinja::Value) -> Response {
    let rendered = state
        .templates
        .get_template(name)
        .and_then(|t| t.render(context! { style => pages::STYLE, ..ctx }));
    match rendered {
        Ok(html) => {
            let mut resp = html.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("rendering {name}: {e}")),
    }
}

/// 303 back to the page (to the lineage of `space` when given) with a notice.
fn back(notice: &str, space: Option<&str>) -> Response {
    let mut query = vec![("notice", notice)];
    if let Some(s) = space {
        query.push(("space", s));
    }
    let qs: String = query
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/?{qs}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct HomeQuery {
    space: Option<String>,
    notice: Option<String>,
}

#[derive(Serialize)]
struct ServiceRow {
    name: String,
    description: String,
    parameters: String,
}

#[derive(Serialize)]
struct InstanceRow {
    key: String,
    state: String,
    uptime: String,
    idle_left: String,
    spaces: Vec<String>,
}

#[derive(Serialize)]
struct SpaceRow {
    id: String,
    name: String,
    size: String,
    created: String,
    users: Vec<String>,
    checkpoints: usize,
}

/// `1h 5m`, `42s`: a duration as people read it.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// `1.5 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The size of a tree, counting at most `limit` entries; `true` when cut.
fn tree_size(root: &std::path::Path, limit: usize) -> (u64, bool) {
    let mut total = 0;
    for (i, entry) in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .enumerate()
    {
        if i >= limit {
            return (total, true);
        }
        if let Ok(m) = entry.metadata() {
            if m.is_file() {
                total += m.len();
            }
        }
    }
    (total, false)
}

async fn home(State(state): State<HomeState>, headers: HeaderMap, Query(q): Query<HomeQuery>) -> Response {
    if !auth::has_session(&headers, &state.token) {
        return render(&state, "login.html", context! { failed => false });
    }
    let defs = state.catalog.current();
    let services: Vec<ServiceRow> = defs
        .services
        .values()
        .filter(|s| s.enabled)
        .map(|s| ServiceRow {
            name: s.name.clone(),
            description: s.description.clone().unwrap_or_default(),
            parameters: s.parameters.keys().cloned().collect::<Vec<_>>().join(", "),
        })
        .collect();

    let now = now_millis();
    let records: BTreeMap<String, crate::store::InstanceRecord> =
        state.store.list_instances().unwrap_or_default().into_iter().collect();
    let starting = state.activator.starting();
    let mut keys: Vec<String> = records.keys().cloned().collect();
    keys.extend(starting.iter().cloned());
    keys.sort();
    keys.dedup();
    let instances: Vec<InstanceRow> = keys
        .into_iter()
        .map(|key| {
            let record = records.get(&key);
            let live = state.activator.ready(&key);
            let state_name = match (record, starting.contains(&key)) {
                (_, true) => "starting".to_owned(),
                (Some(r), _) => serde_json::to_value(r.state)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                (None, _) => String::new(),
            };
            InstanceRow {
                uptime: record
                    .map(|r| human(Duration::from_millis(now.saturating_sub(r.created_at))))
                    .unwrap_or_default(),
                idle_left: match live.as_ref().map(|i| state.activator.idle_left(i)) {
                    Some(Some(d)) => human(d),
                    Some(None) => "never reaped".into(),
                    None => String::new(),
                },
                spaces: crate::instance::spaces_of(&key)
                    .into_iter()
                    .map(|(id, _)| id.to_string())
                    .collect(),
                state: state_name,
                key,
            }
        })
        .collect();

    let all_spaces = state.store.list_spaces().unwrap_or_default();
    let checkpoints = state.store.list_checkpoints().unwrap_or_default();
    let live: Vec<_> = all_spaces.iter().filter(|s| !s.deleted).cloned().collect();
    let trees: Vec<(String, std::path::PathBuf)> = live
        .iter()
        .map(|s| (s.id.to_string(), state.spaces.tree(&s.id)))
        .collect();
    let sizes: BTreeMap<String, (u64, bool)> = tokio::task::spawn_blocking(move || {
        trees
            .into_iter()
            .map(|(id, tree)| (id, tree_size(&tree, 20_000)))
            .collect()
    })
    .await
    .unwrap_or_default();
    let spaces: Vec<SpaceRow> = live
        .iter()
        .rev()
        .map(|s| {
            let users = state
                .store
                .uses_of(&s.id)
                .map(|u| u.into_iter().map(|u| u.viewspec).collect::<Vec<_>>())
                .unwrap_or_default();
            let (size, cut) = sizes.get(s.id.as_str()).copied().unwrap_or((0, false));
            SpaceRow {
                id: s.id.to_string(),
                name: s.name.clone().unwrap_or_default(),
                size: format!("{}{}", if cut { "≥ " } else { "" }, bytes(size)),
                created: humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(s.created_at))
                    .to_string()
                    .replace('T', " "),
                users,
                checkpoints: checkpoints.iter().filter(|c| c.space == s.id).count(),
            }
        })
        .collect();
    let focus = q.space.filter(|s| s.parse::<SpaceId>().is_ok());
    let lineage = lineage_svg::render(&all_spaces, &checkpoints, focus.as_deref());
    render(
        &state,
        "home.html",
        context! {
            csrf => auth::csrf_value(&state.token),
            notice => q.notice,
            services => services,
            instances => instances,
            spaces => spaces,
            focus => focus,
            lineage => lineage,
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(
    State(state): State<HomeState>,
    Extension(scheme): Extension<Scheme>,
    Form(form): Form<LoginForm>,
) -> Response {
    if !auth::same(form.token.trim(), &state.token) {
        let mut resp = render(&state, "login.html", context! { failed => true });
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return resp;
    }
    let mut resp = back("logged in", None);
    if let Ok(v) = HeaderValue::from_str(&auth::login_cookie(&state.token, scheme == Scheme::Https)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Every form's fields; unknown ones are ignored.
#[derive(Deserialize, Default)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    message: Option<String>,
    name: Option<String>,
    viewspec: Option<String>,
    force: Option<String>,
}

/// The session and CSRF checks every action passes: `Some(page)` refuses.
fn refusal(state: &HomeState, headers: &HeaderMap, form: &ActionForm) -> Option<Response> {
    if !auth::has_session(headers, &state.token) {
        let reason = "log in first (the session cookie is missing)";
        return Some(page_error(StatusCode::UNAUTHORIZED, reason));
    }
    if !auth::same(&form.csrf, &auth::csrf_value(&state.token)) {
        let reason = "the form's CSRF token is missing or wrong; reload the page and try again";
        return Some(page_error(StatusCode::FORBIDDEN, reason));
    }
    None
}

async fn logout(
    State(state): State<HomeState>,
    Extension(scheme): Extension<Scheme>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let mut resp = back("logged out", None);
    if let Ok(v) = HeaderValue::from_str(&auth::logout_cookie(scheme == Scheme::Https)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn create_space(State(state): State<HomeState>, headers: HeaderMap, Form(form): Form<ActionForm>) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let name = form.name.filter(|n| !n.trim().is_empty());
    match state.spaces.create(SpaceOrigin::Api, name).await {
        Ok(s) => back(&format!("created {}", s.id), Some(s.id.as_str())),
        Err(e) => page_error(e.status(), &e.to_string()),
    }
}

async fn checkpoint(
    State(state): State<HomeState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let id = match raw.parse::<SpaceId>() {
        Ok(id) => id,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let message = form.message.filter(|m| !m.trim().is_empty());
    match state
        .activator
        .checkpoint_space(&state.spaces, &id, message, true)
        .await
    {
        Ok(made) => back(
            &format!("checkpointed {id} as {}", made.done.checkpoint.id),
            Some(id.as_str()),
        ),
        Err(e) => page_error(e.status(), &e.to_string()),
    }
}

async fn fork(
    State(state): State<HomeState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let source: ForkSource = match raw.parse() {
        Ok(s) => s,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e),
    };
    match state.spaces.fork(&source, SpaceOrigin::Api, None).await {
        Ok(f) => back(&format!("forked {raw} into {}", f.space.id), Some(f.space.id.as_str())),
        Err(e) => page_error(e.status(), &e.to_string()),
    }
}

async fn delete(
    State(state): State<HomeState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let id = match raw.parse::<SpaceId>() {
        Ok(id) => id,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let force = form.force.as_deref() == Some("true");
    match state.activator.delete_space(&state.spaces, &id, force).await {
        Ok(_) => back(&format!("deleted {id}"), None),
        Err(e) => page_error(e.status(), &e.to_string()),
    }
}

async fn stop(State(state): State<HomeState>, headers: HeaderMap, Form(form): Form<ActionForm>) -> Response {
    if let Some(refused) = refusal(&state, &headers, &form) {
        return refused;
    }
    let Some(key) = form.viewspec else {
        return page_error(StatusCode::BAD_REQUEST, "which instance? the form has no viewspec");
    };
    match state.activator.stop(&key).await {
        StopOutcome::NotFound => page_error(StatusCode::NOT_FOUND, &format!("no instance {key}")),
        _ => back(&format!("stopped {key}"), None),
    }
}

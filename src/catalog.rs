//! The service definitions in force: loaded from `defs/` at start, swapped
//! whole on reload. A reload that fails keeps the last good definitions and
//! remembers its errors (shown by health and the reload endpoint).
//!
//! Reloads come from three places: a change of a `*.cue` file (watched with
//! `notify`, debounced), SIGHUP, and `POST /substrate/v1/reload`. Each
//! successful reload bumps a generation number others can wait on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::defs::{CueError, Defs};

#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    vars: BTreeMap<String, String>,
    current: RwLock<Arc<Defs>>,
    last_error: RwLock<Option<String>>,
    generation: watch::Sender<u64>,
    /// Serialises reloads.
    reloading: std::sync::Mutex<()>,
}

fn render(errors: &[CueError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

impl Catalog {
    /// Loads `dir`; errors are fatal at start.
    pub fn load(dir: &Path, vars: BTreeMap<String, String>) -> Result<Catalog, Vec<CueError>> {
        let defs = crate::defs::load_dir(dir, &vars)?;
        Ok(Catalog {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                vars,
                current: RwLock::new(Arc::new(defs)),
                last_error: RwLock::new(None),
                generation: watch::Sender::new(0),
                reloading: std::sync::Mutex::new(()),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The definitions in force.
    pub fn current(&self) -> Arc<Defs> {
        self.inner.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The errors of the last reload, when it failed.
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes with every successful reload.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Reads `defs/` again. Blocking (file I/O and evaluation).
    pub fn reload(&self) -> Result<(), String> {
        let _one = self.inner.reloading.lock().unwrap_or_else(|p| p.into_inner());
        match crate::defs::load_dir(&self.inner.dir, &self.inner.vars) {
            Ok(defs) => {
                *self.inner.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(defs);
                *self.inner.last_error.write().unwrap_or_else(|p| p.into_inner()) = None;
                self.inner.generation.send_modify(|g| *g += 1);
                tracing::info!(dir = %self.inner.dir.display(), "definitions reloaded");
                Ok(())
            }
            Err(errors) => {
                let text = render(&errors);
                tracing::error!(dir = %self.inner.dir.display(), errors = %text, "reload failed; keeping the last good definitions");
                *self.inner.last_error.write().unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
                Err(text)
            }
        }
    }

    /// Reloads on changes to `*.cue` files of the directory until `stop`
    /// resolves. Changes arriving within `debounce` of each other make one
    /// reload.
    pub async fn watch(self, debounce: Duration, mut stop: watch::Receiver<bool>) {
        use notify::Watcher;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev {
                // Reads (the build context reads defs/ too) are not changes.
                use notify::event::{EventKind, ModifyKind};
                let changed = matches!(
                    ev.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
                );
                if changed && ev.paths.iter().any(|p| p.extension().is_some_and(|e| e == "cue")) {
                    let _ = tx.send(());
                }
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch defs/ for changes; reload with SIGHUP or the API");
                return;
            }
        };
        if let Err(e) = watcher.watch(self.dir(), notify::RecursiveMode::NonRecursive) {
            tracing::warn!(error = %e, dir = %self.dir().display(), "cannot watch defs/; reload with SIGHUP or the API");
            return;
        }
        loop {
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() { return; }
                    // Let a burst of writes (an editor's save) settle.
                    loop {
                        match tokio::time::timeout(debounce, rx.recv()).await {
                            Ok(Some(())) => continue,
                            Ok(None) => return,
                            Err(_) => break,
                        }
                    }
                    let this = self.clone();
                    let _ = tokio::task::spawn_blocking(move || this.reload()).await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

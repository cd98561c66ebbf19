//! The model repository as the server sees it: every version of every model, loaded, with
//! atomic swaps on reload.
//!
//! Readers take a snapshot ([`Repository::catalog`]) without locking; a reload builds a new
//! catalog beside the old one and swaps it in, so a request keeps the model it started with.
//! A version that fails to load never replaces one that works: the old one keeps serving and
//! the failure is shown in its status.

use super::artifact::{Artifact, list_versions, load_version, validate_model_name};
use super::validate::Validator;
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A model version ready to predict.
#[derive(Debug)]
pub struct LoadedModel {
    /// The artifact: manifest and model.
    pub artifact: Artifact,
    /// The validator of its schema.
    pub validator: Validator,
    /// The version as clients see it.
    pub version_label: String,
    /// Its prediction counters in `/metrics`.
    pub counters: super::counters::PredictionCounters,
    /// Its explainer, built on the first request that asks for explanations, or why it has
    /// none ([`LoadedModel::explainer`]).
    pub explainer: std::sync::OnceLock<Result<super::explain::Explainer, String>>,
}

/// One version folder's state.
#[derive(Debug, Clone)]
pub struct VersionSlot {
    /// The model in memory, if one ever loaded.
    pub loaded: Option<Arc<LoadedModel>>,
    /// The last load failure, if the files on disk could not be loaded.
    pub error: Option<String>,
    /// Hash of the manifest the slot was last loaded from (it names the model file's hash).
    fingerprint: Option<[u8; 32]>,
}

impl VersionSlot {
    /// A version that never loaded, and why (for tests of what reads slots).
    #[cfg(test)]
    pub(crate) fn failed(error: String) -> Self {
        VersionSlot {
            loaded: None,
            error: Some(error),
            fingerprint: None,
        }
    }

    /// `ready`, `failed`, or `stale` (serving an older load because a reload failed).
    pub fn status(&self) -> &'static str {
        match (&self.loaded, &self.error) {
            (Some(_), None) => "ready",
            (Some(_), Some(_)) => "stale",
            (None, _) => "failed",
        }
    }
}

/// Every version of one model.
#[derive(Debug, Clone, Default)]
pub struct ModelEntry {
    /// Versions by number.
    pub versions: BTreeMap<u32, VersionSlot>,
}

impl ModelEntry {
    /// The default version: the highest one that is loaded.
    pub fn default_model(&self) -> Option<&Arc<LoadedModel>> {
        self.versions
            .values()
            .rev()
            .find_map(|slot| slot.loaded.as_ref())
    }
}

/// A snapshot of the repository.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Models by name.
    pub models: BTreeMap<String, ModelEntry>,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// `name/version` of versions newly loaded or reloaded.
    pub loaded: Vec<String>,
    /// `name/version` of versions removed because their folder is gone.
    pub removed: Vec<String>,
    /// `name/version: reason` of versions that failed to load.
    pub failed: Vec<String>,
}

/// The served repository.
#[derive(Debug)]
pub struct Repository {
    dir: PathBuf,
    catalog: ArcSwap<Catalog>,
    reloading: Mutex<()>,
    initial_load_done: AtomicBool,
    /// Models unloaded on request: rescans leave them out until they are loaded again.
    unloaded: Mutex<std::collections::BTreeSet<String>>,
}

impl Repository {
    /// A repository over `dir`, empty until the first [`Repository::reload_all`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Repository {
            dir: dir.into(),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            reloading: Mutex::new(()),
            initial_load_done: AtomicBool::new(false),
            unloaded: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    fn is_unloaded(&self, name: &str) -> bool {
        self.unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// Models on disk that were unloaded on request.
    pub fn unloaded_models(&self) -> Vec<String> {
        self.unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Stops serving a model until [`Repository::load_model`]; false if it is neither loaded
    /// nor on disk.
    pub fn unload_model(&self, name: &str) -> bool {
        let known = self.catalog.load().models.contains_key(name);
        if validate_model_name(name).is_err() || !(known || self.dir.join(name).is_dir()) {
            return false;
        }
        let _guard = self.lock_reloads();
        self.unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        let mut next = (*self.catalog.load_full()).clone();
        next.models.remove(name);
        count_loaded(&next);
        self.catalog.store(Arc::new(next));
        tracing::info!(model = name, "model unloaded on request");
        true
    }

    /// Serves a model again (after an unload) and rescans its folder now.
    pub fn load_model(&self, name: &str) -> Option<ReloadReport> {
        let _guard = self.lock_reloads();
        self.unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.rescan_model(name)
    }

    /// The repository folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Whether the first full load has finished.
    pub fn is_loaded(&self) -> bool {
        self.initial_load_done.load(Ordering::Acquire)
    }

    /// Rescans the whole folder: loads new and changed versions, drops removed ones.
    /// `force` reloads every version even when its manifest did not change.
    pub fn reload_all(&self, force: bool) -> ReloadReport {
        let _guard = self.lock_reloads();
        let old = self.catalog.load_full();
        let mut report = ReloadReport::default();
        let mut next = Catalog::default();
        let names = match self.model_names() {
            Ok(names) => names,
            Err(error) => {
                // Keep serving what is loaded; the next change or reload tries again.
                report
                    .failed
                    .push(format!("{}: {error}", self.dir.display()));
                self.initial_load_done.store(true, Ordering::Release);
                log_report(&report);
                return report;
            }
        };
        for name in names {
            let previous = old.models.get(&name).cloned().unwrap_or_default();
            let entry = self.scan_model(&name, previous, force, &mut report);
            if !entry.versions.is_empty() {
                next.models.insert(name, entry);
            }
        }
        for (name, entry) in &old.models {
            if !next.models.contains_key(name) {
                report
                    .removed
                    .extend(entry.versions.keys().map(|v| format!("{name}/{v}")));
            }
        }
        count_loaded(&next);
        self.catalog.store(Arc::new(next));
        self.initial_load_done.store(true, Ordering::Release);
        log_report(&report);
        report
    }

    /// Reloads run one at a time; a reload that panicked leaves nothing half-done behind
    /// (the catalog is only ever swapped whole), so a poisoned lock is simply taken over.
    fn lock_reloads(&self) -> std::sync::MutexGuard<'_, ()> {
        self.reloading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Rescans one model's folder, reloading every version (and unloading them all if the
    /// folder is gone); `None` if the model is neither on disk nor loaded.
    pub fn reload_model(&self, name: &str) -> Option<ReloadReport> {
        let _guard = self.lock_reloads();
        self.rescan_model(name)
    }

    /// [`Repository::reload_model`], with the reload lock held by the caller (so an unload
    /// cannot slip in between the check and the swap).
    fn rescan_model(&self, name: &str) -> Option<ReloadReport> {
        if self.is_unloaded(name) {
            return Some(ReloadReport::default());
        }
        let known = self.catalog.load().models.contains_key(name);
        if validate_model_name(name).is_err() || !(known || self.dir.join(name).is_dir()) {
            return None;
        }
        let old = self.catalog.load_full();
        let mut report = ReloadReport::default();
        let previous = old.models.get(name).cloned().unwrap_or_default();
        let entry = self.scan_model(name, previous, true, &mut report);
        let mut next = (*old).clone();
        if entry.versions.is_empty() {
            next.models.remove(name);
        } else {
            next.models.insert(name.to_string(), entry);
        }
        count_loaded(&next);
        self.catalog.store(Arc::new(next));
        log_report(&report);
        Some(report)
    }

    /// The model folders; `Err` when the repository cannot be read (a missing folder is empty).
    fn model_names(&self) -> Result<Vec<String>, std::io::Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .filter(|name| !self.is_unloaded(name))
            .filter(|name| {
                let valid = validate_model_name(name).is_ok();
                if !valid {
                    tracing::warn!(folder = %name, "skipping a folder whose name is not a valid model name");
                }
                valid
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn scan_model(
        &self,
        name: &str,
        mut entry: ModelEntry,
        force: bool,
        report: &mut ReloadReport,
    ) -> ModelEntry {
        let model_dir = self.dir.join(name);
        // A folder that cannot be read right now (out of file handles, permissions) keeps
        // what is loaded: only a folder that is gone unloads versions.
        let versions = match list_versions(&model_dir) {
            Ok(versions) => versions,
            Err(error) => {
                report.failed.push(format!("{name}: {error}"));
                return entry;
            }
        };
        let gone: Vec<u32> = entry
            .versions
            .keys()
            .filter(|v| !versions.contains(v))
            .copied()
            .collect();
        for version in gone {
            entry.versions.remove(&version);
            report.removed.push(format!("{name}/{version}"));
        }
        for version in versions {
            let dir = model_dir.join(version.to_string());
            let fingerprint = manifest_fingerprint(&dir);
            let slot = entry.versions.get(&version);
            // A version whose last load failed is tried again: a copy that wrote the manifest
            // before the model file completes later without changing the manifest.
            let unchanged = slot.is_some_and(|s| {
                s.error.is_none() && s.fingerprint == fingerprint && fingerprint.is_some()
            });
            if unchanged && !force {
                continue;
            }
            let previous = slot.and_then(|s| s.loaded.clone());
            let new_slot = match load_checked(&dir, name, version) {
                Ok(model) => {
                    report.loaded.push(format!("{name}/{version}"));
                    VersionSlot {
                        loaded: Some(Arc::new(model)),
                        error: None,
                        fingerprint,
                    }
                }
                Err(error) => {
                    report.failed.push(format!("{name}/{version}: {error}"));
                    VersionSlot {
                        loaded: previous,
                        error: Some(error),
                        fingerprint,
                    }
                }
            };
            entry.versions.insert(version, new_slot);
        }
        entry
    }
}

fn manifest_fingerprint(dir: &Path) -> Option<[u8; 32]> {
    std::fs::read(dir.join("model.toml"))
        .ok()
        .map(|bytes| Sha256::digest(bytes).into())
}

fn load_checked(dir: &Path, name: &str, version: u32) -> Result<LoadedModel, String> {
    let artifact = load_version(dir).map_err(|error| error.to_string())?;
    let manifest = &artifact.manifest;
    if manifest.name != name || manifest.version != version {
        return Err(format!(
            "the manifest says {}/{}, but the folder is {name}/{version}",
            manifest.name, manifest.version
        ));
    }
    Ok(LoadedModel {
        validator: Validator::new(&manifest.features),
        version_label: version.to_string(),
        artifact,
        counters: Default::default(),
        explainer: Default::default(),
    })
}

/// The model name of a "name/version" or "name/version: error" report entry.
fn model_of(entry: &str) -> String {
    entry.split(['/', ':']).next().unwrap_or(entry).to_string()
}

fn log_report(report: &ReloadReport) {
    metrics::counter!("mlserve_reloads_total").increment(1);
    for loaded in &report.loaded {
        tracing::info!(model = %loaded, "model loaded");
        metrics::counter!("mlserve_model_loads_total", "model" => model_of(loaded)).increment(1);
    }
    for removed in &report.removed {
        tracing::info!(model = %removed, "model removed");
    }
    for failed in &report.failed {
        tracing::error!(model = %failed, "model failed to load; any previous load keeps serving");
        metrics::counter!("mlserve_model_load_failures_total", "model" => model_of(failed))
            .increment(1);
    }
}

fn count_loaded(catalog: &Catalog) {
    let loaded = catalog
        .models
        .values()
        .flat_map(|entry| entry.versions.values())
        .filter(|slot| slot.loaded.is_some())
        .count();
    metrics::gauge!("mlserve_models_loaded").set(loaded as f64);
}

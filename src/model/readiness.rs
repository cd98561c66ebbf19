//! Whether the repository can serve, and if not, why: the one judgement behind `/health/ready`,
//! the Open Inference Protocol's ready routes and `mlserve healthcheck`.
//!
//! Ready means every model in the repository has a version that serves. A model whose newest
//! version failed while an older one serves is `degraded` and keeps the server ready, so one
//! bad hot reload never takes every replica out of a load balancer at once; with
//! `strict_readiness` any failed version makes the server not ready instead. An empty
//! repository is not ready: there is nothing to serve.

use super::repository::{Catalog, ModelEntry, Repository};
use std::collections::BTreeMap;

/// The health of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelHealth {
    /// Every version loaded.
    Ready,
    /// A version serves, but another one failed to load (or its reload failed).
    Degraded,
    /// No version serves.
    Failed,
}

impl ModelHealth {
    /// `ready`, `degraded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelHealth::Ready => "ready",
            ModelHealth::Degraded => "degraded",
            ModelHealth::Failed => "failed",
        }
    }
}

/// One model's part of the readiness answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelReadiness {
    /// Its health.
    pub status: ModelHealth,
    /// The version that serves by default, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Each version whose last load failed, with the reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_versions: BTreeMap<String, String>,
}

impl ModelEntry {
    /// The model's health: a default version, and every version whose last load failed.
    pub fn readiness(&self) -> ModelReadiness {
        let failed_versions: BTreeMap<String, String> = self
            .versions
            .iter()
            .filter_map(|(version, slot)| {
                let reason = match (&slot.loaded, &slot.error) {
                    (_, Some(error)) => error.clone(),
                    (None, None) => "not loaded".to_string(),
                    (Some(_), None) => return None,
                };
                Some((version.to_string(), reason))
            })
            .collect();
        let version = self.default_model().map(|m| m.version_label.clone());
        let status = match (&version, failed_versions.is_empty()) {
            (None, _) => ModelHealth::Failed,
            (Some(_), true) => ModelHealth::Ready,
            (Some(_), false) => ModelHealth::Degraded,
        };
        ModelReadiness {
            status,
            version,
            failed_versions,
        }
    }
}

/// The server's readiness.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Readiness {
    /// `ready`, `loading` (the first load has not finished) or `not_ready`.
    pub status: &'static str,
    /// Why the server is not ready; absent when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every model's health, by name.
    pub models: BTreeMap<String, ModelReadiness>,
}

impl Readiness {
    /// Whether the server can take traffic.
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }

    /// Before the first load has finished.
    pub fn loading() -> Self {
        Readiness {
            status: "loading",
            detail: Some("models are still loading".to_string()),
            models: BTreeMap::new(),
        }
    }
}

impl Repository {
    /// Whether the server can take traffic, and why not; `strict`: any failed version makes
    /// it not ready.
    pub fn readiness(&self, strict: bool) -> Readiness {
        if !self.is_loaded() {
            return Readiness::loading();
        }
        let unloaded = self.unloaded_models();
        let empty = if unloaded.is_empty() {
            EmptyBecause::NoModels(self.dir())
        } else {
            EmptyBecause::AllUnloaded(&unloaded)
        };
        self.catalog().readiness(strict, empty)
    }
}

/// What makes an empty catalog empty, for the message.
#[derive(Debug, Clone, Copy)]
pub enum EmptyBecause<'a> {
    /// Nothing in the folder.
    NoModels(&'a std::path::Path),
    /// Models exist on disk, but every one was unloaded on request.
    AllUnloaded(&'a [String]),
}

impl Catalog {
    /// Judges readiness. `strict`: any failed version makes the server not ready, not only a
    /// model with no version that serves. `empty` says why the catalog holds no model.
    pub fn readiness(&self, strict: bool, empty: EmptyBecause<'_>) -> Readiness {
        let models: BTreeMap<String, ModelReadiness> = self
            .models
            .iter()
            .map(|(name, entry)| (name.clone(), entry.readiness()))
            .collect();
        let detail = if models.is_empty() {
            Some(match empty {
                EmptyBecause::NoModels(dir) => format!(
                    "the repository {} holds no model: nothing to serve",
                    dir.display()
                ),
                EmptyBecause::AllUnloaded(names) => format!(
                    "every model was unloaded ({}): nothing to serve until one is loaded again",
                    names.join(", ")
                ),
            })
        } else {
            unready_reasons(&models, strict)
        };
        Readiness {
            status: if detail.is_none() {
                "ready"
            } else {
                "not_ready"
            },
            detail,
            models,
        }
    }
}

/// One sentence per model that keeps the server from being ready; `None` when none does.
fn unready_reasons(models: &BTreeMap<String, ModelReadiness>, strict: bool) -> Option<String> {
    let reasons: Vec<String> = models
        .iter()
        .filter(|(_, model)| {
            model.status == ModelHealth::Failed || (strict && model.status == ModelHealth::Degraded)
        })
        .map(|(name, model)| {
            let failures: Vec<String> = model
                .failed_versions
                .iter()
                .map(|(version, reason)| format!("version {version}: {reason}"))
                .collect();
            match model.status {
                ModelHealth::Failed => format!(
                    "model '{name}' has no version that serves ({})",
                    failures.join("; ")
                ),
                _ => format!(
                    "model '{name}' has a failed version and strict readiness is on ({})",
                    failures.join("; ")
                ),
            }
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::repository::VersionSlot;

    fn failed_slot(reason: &str) -> VersionSlot {
        VersionSlot::failed(reason.to_string())
    }

    #[test]
    fn a_model_with_no_servable_version_makes_the_server_not_ready() {
        let mut catalog = Catalog::default();
        let mut entry = ModelEntry::default();
        entry.versions.insert(1, failed_slot("invalid manifest"));
        catalog.models.insert("broken".to_string(), entry);
        let readiness = catalog.readiness(false, EmptyBecause::NoModels("m".as_ref()));
        assert!(!readiness.is_ready());
        assert_eq!(readiness.models["broken"].status, ModelHealth::Failed);
        let detail = readiness.detail.unwrap();
        assert!(
            detail.contains(
                "model 'broken' has no version that serves (version 1: invalid manifest)"
            ),
            "{detail}"
        );
    }

    #[test]
    fn an_empty_repository_is_not_ready_and_says_why() {
        let catalog = Catalog::default();
        let readiness = catalog.readiness(false, EmptyBecause::NoModels("models".as_ref()));
        assert_eq!(readiness.status, "not_ready");
        assert!(readiness.detail.unwrap().contains("models holds no model"));
        let unloaded = ["iris".to_string()];
        let readiness = catalog.readiness(false, EmptyBecause::AllUnloaded(&unloaded));
        assert!(
            readiness
                .detail
                .unwrap()
                .contains("every model was unloaded (iris)")
        );
    }
}

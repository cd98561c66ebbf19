//! The Prometheus counters of one loaded version's predictions: `mlserve_rows_predicted_total`,
//! and per outcome either `mlserve_predictions_total{label}` (a classifier) or
//! `mlserve_prediction_value_bin_total{bin}` (a model that predicts a number: its values counted
//! in the bins of its training target's deciles, `bin` = "1" for the lowest, so a shift in its
//! outputs shows whatever the target's scale; the edges are the manifest's
//! `[target.baseline]`). Their handles are looked up once, at the version's first prediction,
//! so a request adds to them without building label sets (which cost allocations and a
//! registry lookup per counter per request).

use super::manifest::Manifest;
use std::sync::OnceLock;

/// Handles to one version's prediction counters, registered on first use (after the server
/// has installed its recorder).
#[derive(Debug, Default)]
pub struct PredictionCounters {
    handles: OnceLock<Handles>,
}

#[derive(Debug)]
struct Handles {
    rows: metrics::Counter,
    per_bucket: Vec<metrics::Counter>,
}

/// What some rows predicted, tallied for the counters: rows per label of a classifier, or per
/// bin of a regressor's training-target deciles.
#[derive(Debug, Clone)]
pub struct Tally {
    rows: u64,
    per_bucket: Vec<u64>,
}

impl Tally {
    /// Nothing counted yet, for the labels or value bins of the version `manifest` describes.
    pub fn new(manifest: &Manifest) -> Tally {
        Tally {
            rows: 0,
            per_bucket: vec![0; buckets(manifest)],
        }
    }

    /// Counts one row, in `bucket` (its class, or its value's bin) when it has one.
    pub fn count(&mut self, bucket: Option<usize>) {
        self.rows += 1;
        if let Some(count) = bucket.and_then(|b| self.per_bucket.get_mut(b)) {
            *count += 1;
        }
    }
}

/// The bin of the training target's deciles a predicted value falls in (0 the lowest); `None`
/// when the version keeps no such bins (an import without its target's distribution).
pub fn value_bin(manifest: &Manifest, value: f64) -> Option<usize> {
    value_bins(manifest).map(|bins| bins.bin(value))
}

fn value_bins(manifest: &Manifest) -> Option<&super::Histogram> {
    manifest.target.as_ref()?.baseline.as_ref()
}

fn buckets(manifest: &Manifest) -> usize {
    if manifest.labels.is_empty() {
        value_bins(manifest).map_or(0, |h| h.shares.len())
    } else {
        manifest.labels.len()
    }
}

impl PredictionCounters {
    /// Adds what `tally` counted to the counters of `manifest`'s model, version `version`.
    pub fn add(&self, manifest: &Manifest, version: &str, tally: &Tally) {
        let handles = self
            .handles
            .get_or_init(|| register_counters(manifest, version));
        handles.rows.increment(tally.rows);
        for (counter, &count) in handles.per_bucket.iter().zip(&tally.per_bucket) {
            if count > 0 {
                counter.increment(count);
            }
        }
    }
}

fn register_counters(manifest: &Manifest, version: &str) -> Handles {
    let name = manifest.name.clone();
    let version = version.to_string();
    let per_bucket = if manifest.labels.is_empty() {
        (1..=buckets(manifest))
            .map(|bin| {
                metrics::counter!(
                    "mlserve_prediction_value_bin_total",
                    "model" => name.clone(),
                    "version" => version.clone(),
                    "bin" => bin.to_string(),
                )
            })
            .collect()
    } else {
        manifest
            .labels
            .iter()
            .map(|label| {
                metrics::counter!(
                    "mlserve_predictions_total",
                    "model" => name.clone(),
                    "version" => version.clone(),
                    "label" => label.clone(),
                )
            })
            .collect()
    };
    Handles {
        rows: metrics::counter!(
            "mlserve_rows_predicted_total",
            "model" => name,
            "version" => version,
        ),
        per_bucket,
    }
}

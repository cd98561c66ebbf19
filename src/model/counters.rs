//! The Prometheus counters of one loaded version's predictions: `mlserve_rows_predicted_total`
//! and `mlserve_predictions_total` per label. Their handles are looked up once, at the
//! version's first prediction, so a request adds to them without building label sets (which
//! cost allocations and a registry lookup per counter per request).

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
    per_label: Vec<metrics::Counter>,
}

impl PredictionCounters {
    /// Adds `per_class[i]` predictions of label `labels[i]` for model `name` version `version`.
    pub fn count(&self, name: &str, version: &str, labels: &[String], per_class: &[u64]) {
        let handles = self.handles.get_or_init(|| Handles {
            rows: metrics::counter!(
                "mlserve_rows_predicted_total",
                "model" => name.to_string(),
                "version" => version.to_string(),
            ),
            per_label: labels
                .iter()
                .map(|label| {
                    metrics::counter!(
                        "mlserve_predictions_total",
                        "model" => name.to_string(),
                        "version" => version.to_string(),
                        "label" => label.clone(),
                    )
                })
                .collect(),
        });
        handles.rows.increment(per_class.iter().sum());
        for (counter, &count) in handles.per_label.iter().zip(per_class) {
            if count > 0 {
                counter.increment(count);
            }
        }
    }
}

//! The background set KernelSHAP measures contributions against: rows standing for the
//! training data, each with a weight (the share of the data it stands for). Native models keep
//! up to [`MAX_ROWS`] training rows summarised by k-means (as shap's `shap.kmeans`, each
//! centroid's numbers moved to the nearest training value and its categories to the most
//! common one); imports take `--background CSV`. Kept as `background.json` in the version
//! folder, its SHA-256 in the manifest.

use super::super::native::FeatureValue;
use crate::data::ColumnKind;
use crate::model::FeatureSchema;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};

/// The file in a version folder.
pub const BACKGROUND_FILE: &str = "background.json";
/// Most rows a background set keeps: KernelSHAP runs the model on each for every coalition.
pub const MAX_ROWS: usize = 100;

/// Rows and their weights (summing to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Background {
    /// Validated rows, in schema order.
    pub rows: Vec<Vec<FeatureValue>>,
    /// Each row's weight.
    pub weights: Vec<f64>,
    /// Where the rows came from, in words.
    pub source: String,
}

impl Background {
    /// The file's contents: `{"source", "rows": [{feature: value}], "weights"}`, each value
    /// as the feature's kind takes it in JSON (so the validator reads it back).
    pub fn to_json(&self, features: &[FeatureSchema]) -> Vec<u8> {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let fields: Map<String, Value> = features
                    .iter()
                    .zip(row)
                    .map(|(feature, value)| (feature.name.clone(), json_value(feature.kind, value)))
                    .collect();
                Value::Object(fields)
            })
            .collect();
        let document = json!({"source": self.source, "rows": rows, "weights": self.weights});
        serde_json::to_vec_pretty(&document).unwrap_or_default()
    }
}

fn json_value(kind: ColumnKind, value: &FeatureValue) -> Value {
    match (kind, value) {
        (_, FeatureValue::Missing) => Value::Null,
        (ColumnKind::Boolean, FeatureValue::Number(x)) => json!(*x != 0.0),
        (ColumnKind::Integer, FeatureValue::Number(x)) if x.fract() == 0.0 => json!(*x as i64),
        (_, FeatureValue::Number(x)) => json!(x),
        (_, FeatureValue::Category(text) | FeatureValue::Text(text)) => json!(text),
    }
}

/// A background file as read: rows as JSON objects (not yet validated), weights summing to 1,
/// and where the rows came from.
pub struct ParsedBackground {
    /// The rows, for the caller to validate against the schema.
    pub rows: Vec<Map<String, Value>>,
    /// Their weights.
    pub weights: Vec<f64>,
    /// Their origin, in words.
    pub source: String,
}

/// The rows of a background file, checked for shape (the caller validates each row against
/// the schema).
pub fn parse(bytes: &[u8]) -> Result<ParsedBackground, String> {
    let document: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("not JSON: {error}"))?;
    let rows: Vec<Map<String, Value>> = document["rows"]
        .as_array()
        .ok_or("no rows")?
        .iter()
        .map(|row| row.as_object().cloned().ok_or("a row is not an object"))
        .collect::<Result<_, _>>()?;
    let weights: Vec<f64> = document["weights"]
        .as_array()
        .ok_or("no weights")?
        .iter()
        .map(|w| {
            w.as_f64()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .ok_or("a weight is not a number of at least 0")
        })
        .collect::<Result<_, _>>()?;
    if rows.is_empty() || rows.len() != weights.len() || rows.len() > MAX_ROWS {
        return Err(format!(
            "{} rows and {} weights: expected as many of each, 1 to {MAX_ROWS}",
            rows.len(),
            weights.len()
        ));
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Err("the weights add up to 0".to_string());
    }
    let weights = weights.iter().map(|w| w / total).collect();
    let source = document["source"].as_str().unwrap_or("").to_string();
    Ok(ParsedBackground {
        rows,
        weights,
        source,
    })
}

/// Up to [`MAX_ROWS`] rows standing for `rows`: all of them when there are that few, else the
/// k-means centroids of their encoded columns (`encode`: the model's standardized encoding,
/// so every column weighs alike), each turned back into a row of real values, weighted by its
/// cluster's size. Seeded: the same rows give the same background.
pub fn summarize(
    rows: &[Vec<FeatureValue>],
    encode: impl Fn(&[FeatureValue]) -> Option<Vec<f64>>,
    seed: u64,
) -> Option<Background> {
    if rows.is_empty() {
        return None;
    }
    if rows.len() <= MAX_ROWS {
        return Some(Background {
            rows: rows.to_vec(),
            weights: vec![1.0 / rows.len() as f64; rows.len()],
            source: format!("all {} training rows", rows.len()),
        });
    }
    let points: Vec<Vec<f64>> = rows.iter().map(|row| encode(row)).collect::<Option<_>>()?;
    let assignment = kmeans(&points, MAX_ROWS, seed);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); MAX_ROWS];
    for (row, &cluster) in assignment.iter().enumerate() {
        members[cluster].push(row);
    }
    members.retain(|m| !m.is_empty());
    let (mut summary, mut weights) = (Vec::new(), Vec::new());
    for cluster in &members {
        summary.push(representative(rows, cluster));
        weights.push(cluster.len() as f64 / rows.len() as f64);
    }
    Some(Background {
        rows: summary,
        weights,
        source: format!(
            "k-means: {} centroids of {} training rows",
            members.len(),
            rows.len()
        ),
    })
}

/// A cluster's row: per numeric feature its mean moved to the nearest member's value (shap's
/// `round_values`), per other feature its most common value.
fn representative(rows: &[Vec<FeatureValue>], cluster: &[usize]) -> Vec<FeatureValue> {
    let width = rows[cluster[0]].len();
    (0..width)
        .map(|feature| {
            let values: Vec<&FeatureValue> = cluster.iter().map(|&r| &rows[r][feature]).collect();
            let numbers: Vec<f64> = values
                .iter()
                .filter_map(|v| match v {
                    FeatureValue::Number(x) => Some(*x),
                    _ => None,
                })
                .collect();
            if numbers.len() == values.len() {
                let mean = numbers.iter().sum::<f64>() / numbers.len() as f64;
                let nearest = numbers
                    .iter()
                    .copied()
                    .min_by(|a, b| (a - mean).abs().total_cmp(&(b - mean).abs()))
                    .unwrap_or(mean);
                return FeatureValue::Number(nearest);
            }
            most_common(&values)
        })
        .collect()
}

fn most_common(values: &[&FeatureValue]) -> FeatureValue {
    let mut best: (&FeatureValue, usize) = (values[0], 0);
    for candidate in values {
        let count = values.iter().filter(|v| *v == candidate).count();
        if count > best.1 {
            best = (candidate, count);
        }
    }
    best.0.clone()
}

/// Lloyd's k-means with k-means++ seeding: each point's cluster.
fn kmeans(points: &[Vec<f64>], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let distance =
        |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>();
    let mut centres: Vec<Vec<f64>> = vec![points[rng.random_range(0..points.len())].clone()];
    let mut nearest: Vec<f64> = points.iter().map(|p| distance(p, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut target = rng.random_range(0.0..total);
        let mut chosen = points.len() - 1;
        for (index, d) in nearest.iter().enumerate() {
            if target < *d {
                chosen = index;
                break;
            }
            target -= d;
        }
        centres.push(points[chosen].clone());
        for (slot, point) in nearest.iter_mut().zip(points) {
            *slot = slot.min(distance(point, &points[chosen]));
        }
    }
    let mut assignment = vec![0; points.len()];
    for _ in 0..50 {
        let mut moved = false;
        for (slot, point) in assignment.iter_mut().zip(points) {
            let best = (0..centres.len())
                .min_by(|&a, &b| {
                    distance(point, &centres[a]).total_cmp(&distance(point, &centres[b]))
                })
                .unwrap_or(0);
            moved |= *slot != best;
            *slot = best;
        }
        for (cluster, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = points
                .iter()
                .zip(&assignment)
                .filter(|(_, a)| **a == cluster)
                .map(|(p, _)| p)
                .collect();
            if members.is_empty() {
                continue;
            }
            for (column, value) in centre.iter_mut().enumerate() {
                *value = members.iter().map(|m| m[column]).sum::<f64>() / members.len() as f64;
            }
        }
        if !moved {
            break;
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_rows_are_kept_whole_and_many_are_summarised_into_weighted_real_rows() {
        let rows: Vec<Vec<FeatureValue>> = (0..40)
            .map(|i| {
                vec![
                    FeatureValue::Number(i as f64),
                    FeatureValue::Category(["a", "b"][i % 2].into()),
                ]
            })
            .collect();
        let encode = |row: &[FeatureValue]| match row {
            [FeatureValue::Number(x), FeatureValue::Category(c)] => {
                Some(vec![*x / 10.0, f64::from(c == "a")])
            }
            _ => None,
        };
        let kept = summarize(&rows, encode, 1).unwrap();
        assert_eq!(kept.rows, rows);
        assert!((kept.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let many: Vec<Vec<FeatureValue>> = (0..1000).map(|i| rows[i % 40].clone()).collect();
        let summary = summarize(&many, encode, 1).unwrap();
        assert!(summary.rows.len() <= MAX_ROWS);
        assert!((summary.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        // Every summarised value is one the data has.
        for row in &summary.rows {
            assert!(rows.iter().any(|r| r[0] == row[0]), "{row:?}");
            assert!(matches!(&row[1], FeatureValue::Category(c) if c == "a" || c == "b"));
        }
        assert_eq!(summarize(&many, encode, 1).unwrap(), summary, "seeded");
    }
}

//! A CSV of training rows, read for what a model file does not say: each feature's training
//! statistics (range, mean, deciles, category shares) and an example row.

use super::ImportError;
use crate::data::ColumnKind;
use crate::model::{ExampleValue, FeatureSchema, Histogram};
use std::collections::BTreeMap;
use std::path::Path;

/// Most CSV rows read for the feature statistics.
const MAX_STATISTICS_ROWS: usize = 100_000;

/// A CSV's rows, by column name, for the statistics.
pub(super) type Sample = BTreeMap<String, Vec<String>>;

/// A CSV read: its header, its rows by column, and each row's line in the file (1-based; a
/// quoted cell may span lines).
pub(super) struct CsvRows {
    /// Column names, in order.
    pub header: Vec<String>,
    /// Cells by column name, trimmed.
    pub sample: Sample,
    /// The line each row starts on.
    pub lines: Vec<u64>,
}

/// The header and up to `max_rows` rows of a CSV; `more` says whether rows were left.
///
/// Errors: an unreadable file or record, a header without names or naming a column twice.
pub(super) fn read_csv(path: &Path, max_rows: usize) -> Result<(CsvRows, bool), ImportError> {
    let csv_error =
        |error: csv::Error| ImportError::Features(format!("{}: {error}", path.display()));
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(ImportError::Features(format!(
            "{}: the header row names no columns",
            path.display()
        )));
    }
    if let Some(repeated) = header
        .iter()
        .enumerate()
        .find_map(|(i, name)| header[..i].contains(name).then_some(name))
    {
        return Err(ImportError::Features(format!(
            "{}: the header names the column '{repeated}' twice",
            path.display()
        )));
    }
    let mut sample: Sample = header.iter().map(|h| (h.clone(), Vec::new())).collect();
    let mut lines = Vec::new();
    let mut records = reader.records();
    for record in records.by_ref().take(max_rows) {
        let record = record.map_err(csv_error)?;
        lines.push(record.position().map_or(0, |p| first_line(&bytes, p)));
        for (name, cell) in header.iter().zip(record.iter()) {
            if let Some(column) = sample.get_mut(name) {
                column.push(cell.trim().to_string());
            }
        }
    }
    let more = records.next().is_some();
    Ok((
        CsvRows {
            header,
            sample,
            lines,
        },
        more,
    ))
}

/// The line a record starts on: the reader's position is where it began reading, before the
/// blank lines it skips.
fn first_line(bytes: &[u8], position: &csv::Position) -> u64 {
    let start = usize::try_from(position.byte()).unwrap_or(usize::MAX);
    let skipped = bytes
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .filter(|&&b| b == b'\n')
        .count();
    position.line() + skipped as u64
}

/// The header and the first [`MAX_STATISTICS_ROWS`] rows of a CSV, by column, for the
/// training statistics.
pub(super) fn read_sample(path: &Path) -> Result<(Vec<String>, Sample), ImportError> {
    let (rows, _) = read_csv(path, MAX_STATISTICS_ROWS)?;
    Ok((rows.header, rows.sample))
}

pub(super) fn default_example(
    kind: ColumnKind,
    categories: Option<&[String]>,
    imputed: Option<f64>,
) -> ExampleValue {
    match kind {
        ColumnKind::Integer => ExampleValue::Integer(0),
        ColumnKind::Number => {
            ExampleValue::Number(imputed.filter(|v| v.is_finite()).unwrap_or(0.0))
        }
        // The validator refuses empty text, so a free-text feature needs some word.
        _ => ExampleValue::Text(
            categories
                .and_then(|c| c.first().cloned())
                .unwrap_or_else(|| "text".to_string()),
        ),
    }
}

/// Training statistics of a feature from the CSV's cells (empty cells are missing values).
pub(super) fn add_statistics(
    feature: &mut FeatureSchema,
    cells: &[String],
) -> Result<(), ImportError> {
    let present: Vec<(usize, &String)> = cells
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .collect();
    match feature.kind {
        ColumnKind::Number | ColumnKind::Integer => {
            let mut values = Vec::with_capacity(present.len());
            for (row, cell) in present {
                let value = cell.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    ImportError::Features(format!(
                        "CSV column '{}', data row {}: '{cell}' is not a number, and the graph takes numbers there",
                        feature.name,
                        row + 1
                    ))
                })?;
                values.push(value);
            }
            if values.is_empty() {
                return Ok(());
            }
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            feature.min = values.iter().copied().reduce(f64::min);
            feature.max = values.iter().copied().reduce(f64::max);
            feature.mean = Some(mean);
            feature.std = Some((values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt());
            feature.baseline = Histogram::deciles(&values);
        }
        ColumnKind::Categorical => {
            let categories = feature.categories.clone().unwrap_or_default();
            let mut counts: BTreeMap<String, f64> =
                categories.iter().map(|c| (c.clone(), 0.0)).collect();
            for (_, cell) in &present {
                if let Some(count) = counts.get_mut(cell.as_str()) {
                    *count += 1.0;
                }
            }
            let n = present.len().max(1) as f64;
            counts.values_mut().for_each(|count| *count /= n);
            feature.frequencies = Some(counts);
        }
        _ => {}
    }
    Ok(())
}

/// The example row: the first CSV row where every feature has a value the schema accepts.
pub(super) fn set_examples_from_sample(features: &mut [FeatureSchema], sample: &Sample) {
    let rows = features
        .iter()
        .filter_map(|f| sample.get(&f.name).map(Vec::len))
        .min()
        .unwrap_or(0);
    if features.iter().any(|f| !sample.contains_key(&f.name)) {
        return;
    }
    let fits = |feature: &FeatureSchema, cell: &str| match feature.kind {
        _ if cell.is_empty() => false,
        ColumnKind::Number => cell.parse::<f64>().is_ok_and(f64::is_finite),
        ColumnKind::Integer => cell.parse::<i64>().is_ok(),
        ColumnKind::Categorical => feature
            .categories
            .as_ref()
            .is_some_and(|c| c.iter().any(|v| v == cell)),
        _ => true,
    };
    let Some(row) = (0..rows).find(|&row| {
        features.iter().all(|f| {
            sample
                .get(&f.name)
                .is_some_and(|cells| fits(f, &cells[row]))
        })
    }) else {
        return;
    };
    for feature in features.iter_mut() {
        let Some(cell) = sample.get(&feature.name).map(|cells| cells[row].as_str()) else {
            continue;
        };
        feature.example = match feature.kind {
            ColumnKind::Number => ExampleValue::Number(cell.parse().unwrap_or(0.0)),
            ColumnKind::Integer => ExampleValue::Integer(cell.parse().unwrap_or(0)),
            _ => ExampleValue::Text(cell.to_string()),
        };
    }
}

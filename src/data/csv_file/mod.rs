//! Reading a labelled dataset from a CSV file with a header row.
//!
//! Column types are detected from the data unless declared: a column whose cells are all
//! `true`/`false` is boolean, all whole numbers is integer, all numbers is number, and a column
//! of text is categorical. A column that is mostly numbers with a few text cells is taken as
//! numeric, and the first text cell is reported with its line: that is almost always a typo,
//! and silently turning the column into categories would hide it.

use super::{Column, ColumnKind, ColumnValues, DataError, Dataset, Target, Task};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How to read a CSV file.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// The column holding what the model learns to predict.
    pub target: String,
    /// Columns to treat as categorical whatever their content.
    pub categorical: Vec<String>,
    /// The task; `None` infers it from the target column: text, booleans, or whole numbers with
    /// at most [`MAX_INFERRED_CLASSES`] distinct values are classes, other numbers regression.
    pub task: Option<Task>,
    /// Whether an empty feature cell is a missing value (NaN in a numeric column, the empty
    /// text in a categorical one) rather than an error: for algorithms that learn from
    /// missing values. The target always needs a value.
    pub missing_values: bool,
}

/// Integer targets with at most this many distinct values are taken as classes.
pub const MAX_INFERRED_CLASSES: usize = 20;

/// Reads `path` into a dataset.
pub fn load_csv(path: &Path, options: &CsvOptions) -> Result<Dataset, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let table = read_table(path, &bytes)?;
    let target_index = table
        .header
        .iter()
        .position(|name| *name == options.target)
        .ok_or_else(|| DataError::MissingTarget {
            path: path.to_path_buf(),
            column: options.target.clone(),
            available: table.header.join(", "),
        })?;
    for name in &options.categorical {
        if *name == options.target || !table.header.contains(name) {
            return Err(DataError::UnknownCategorical {
                path: path.to_path_buf(),
                column: name.clone(),
            });
        }
    }
    let source = path.display().to_string();
    if table.rows.is_empty() {
        return Err(DataError::Empty(source));
    }
    if table.header.len() < 2 {
        return Err(DataError::NoFeatures(source));
    }

    let mut columns = Vec::with_capacity(table.header.len() - 1);
    for (index, name) in table.header.iter().enumerate() {
        if index == target_index {
            continue;
        }
        let declared_categorical = options.categorical.contains(name);
        columns.push(parse_column(
            &table,
            index,
            declared_categorical,
            options.missing_values,
        )?);
    }
    check_no_empty_cell(&table, target_index, false)?;
    let (task, task_reason) = match options.task {
        Some(task) => (task, None),
        None => {
            let (task, reason) = infer_task(&table, target_index);
            (task, Some(reason))
        }
    };
    let target = match task {
        Task::Classification => parse_classes(&table, target_index),
        Task::Regression => parse_values(&table, target_index)?,
    };
    if let Target::Classes { labels, .. } = &target
        && labels.len() < 2
    {
        return Err(DataError::SingleClass {
            origin: source,
            label: labels.first().cloned().unwrap_or_default(),
        });
    }
    Ok(Dataset {
        source,
        sha256: format!("{:x}", Sha256::digest(&bytes)),
        columns,
        target_name: options.target.clone(),
        target,
        task_reason,
    })
}

/// The task a target column makes, and why: text, booleans, or whole numbers with at most
/// [`MAX_INFERRED_CLASSES`] distinct values are classes; other numbers are regression.
fn infer_task(table: &Table, index: usize) -> (Task, String) {
    let column = &table.header[index];
    let cells: Vec<&str> = (0..table.rows.len())
        .map(|row| table.cell(row, index).1)
        .collect();
    let distinct: BTreeSet<&str> = cells.iter().copied().collect();
    if !cells.iter().all(|cell| parse_finite(cell).is_some()) {
        let reason = if cells.iter().all(|cell| parse_bool(cell).is_some()) {
            "holds true and false"
        } else {
            "holds text"
        };
        return (
            Task::Classification,
            format!("the target '{column}' {reason}: classification"),
        );
    }
    // 0.0 and 1.0 are whole too (scikit-learn's type_of_target calls them binary).
    let whole = cells
        .iter()
        .all(|cell| parse_finite(cell).is_some_and(|v| v.fract() == 0.0));
    if whole && distinct.len() <= MAX_INFERRED_CLASSES {
        return (
            Task::Classification,
            format!(
                "the target '{column}' holds {} distinct whole numbers (at most {MAX_INFERRED_CLASSES}): \
                 classification; --task regression to predict it as a number",
                distinct.len()
            ),
        );
    }
    let what = if whole {
        format!("{} distinct whole numbers", distinct.len())
    } else {
        "numbers with fractions".to_string()
    };
    (
        Task::Regression,
        format!(
            "the target '{column}' holds {what}: regression; --task classification to predict \
             its values as classes"
        ),
    )
}

/// The raw text of a CSV file: header and rows, each row with its 1-based line number.
struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<(u64, csv::StringRecord)>,
}

impl Table {
    fn cell(&self, row: usize, column: usize) -> (u64, &str) {
        let (line, record) = &self.rows[row];
        (*line, record.get(column).unwrap_or("").trim())
    }
}

fn read_table(path: &Path, bytes: &[u8]) -> Result<Table, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let malformed = |error: csv::Error| {
        let line = error.position().map_or(1, |position| position.line());
        DataError::Malformed {
            path: path.to_path_buf(),
            line,
            message: describe_csv_error(&error),
        }
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(malformed)?
        .iter()
        .map(|name| name.trim().to_string())
        .collect();
    check_header(path, &header)?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(malformed)?;
        let line = record.position().map_or(0, |position| position.line());
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue; // a blank line at the end of a file is not a data row
        }
        rows.push((line, record));
    }
    Ok(Table {
        path: path.to_path_buf(),
        header,
        rows,
    })
}

fn describe_csv_error(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("this row has {len} fields but the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8 text".to_string(),
        _ => error.to_string(),
    }
}

fn check_header(path: &Path, header: &[String]) -> Result<(), DataError> {
    let no_header = |message: &str| DataError::NoHeader {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(no_header(
            "the file is empty; expected a header row of column names",
        ));
    }
    if header.iter().all(|name| name.parse::<f64>().is_ok()) {
        return Err(no_header(
            "the first line holds numbers, not column names; add a header row",
        ));
    }
    if let Some(position) = header.iter().position(String::is_empty) {
        return Err(no_header(&format!(
            "header column {} has no name",
            position + 1
        )));
    }
    let mut seen = BTreeSet::new();
    for name in header {
        if !seen.insert(name) {
            return Err(DataError::DuplicateColumn {
                path: path.to_path_buf(),
                column: name.clone(),
            });
        }
    }
    Ok(())
}

/// Every cell of a column needs a value, unless the algorithm learns from missing values:
/// training has no imputation. A column without any value is refused either way.
fn check_no_empty_cell(table: &Table, index: usize, feature: bool) -> Result<(), DataError> {
    for row in 0..table.rows.len() {
        let (line, cell) = table.cell(row, index);
        if cell.is_empty() {
            return Err(DataError::EmptyCell {
                path: table.path.clone(),
                line,
                column: table.header[index].clone(),
                feature,
            });
        }
    }
    Ok(())
}

fn parse_column(
    table: &Table,
    index: usize,
    categorical: bool,
    missing_values: bool,
) -> Result<Column, DataError> {
    if (0..table.rows.len()).all(|row| table.cell(row, index).1.is_empty()) {
        return Err(DataError::NoValues {
            path: table.path.clone(),
            column: table.header[index].clone(),
        });
    }
    if !missing_values {
        check_no_empty_cell(table, index, true)?;
    }
    let name = table.header[index].clone();
    let kind = if categorical {
        ColumnKind::Categorical
    } else {
        detect_kind(table, index)
    };
    let values = match kind {
        ColumnKind::Categorical | ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime => {
            ColumnValues::Text(
                (0..table.rows.len())
                    .map(|row| table.cell(row, index).1.to_string())
                    .collect(),
            )
        }
        numeric_kind => {
            let mut values = Vec::with_capacity(table.rows.len());
            for row in 0..table.rows.len() {
                let (line, cell) = table.cell(row, index);
                if cell.is_empty() {
                    values.push(f64::NAN);
                    continue;
                }
                let value =
                    parse_numeric(cell, numeric_kind).ok_or_else(|| DataError::BadCell {
                        path: table.path.clone(),
                        line,
                        column: name.clone(),
                        expected: expected_words(numeric_kind),
                        value: cell.to_string(),
                    })?;
                values.push(value);
            }
            ColumnValues::Numeric(values)
        }
    };
    Ok(Column { name, kind, values })
}

/// The kind of a column's values, empty (missing) cells aside.
fn detect_kind(table: &Table, index: usize) -> ColumnKind {
    let cells = || {
        (0..table.rows.len())
            .map(|row| table.cell(row, index).1)
            .filter(|cell| !cell.is_empty())
    };
    if cells().all(|cell| parse_bool(cell).is_some()) {
        return ColumnKind::Boolean;
    }
    let numeric = cells().filter(|cell| parse_finite(cell).is_some()).count();
    if numeric * 2 <= cells().count() {
        return ColumnKind::Categorical;
    }
    if cells().all(|cell| cell.parse::<i64>().is_ok()) {
        ColumnKind::Integer
    } else {
        ColumnKind::Number
    }
}

fn parse_numeric(cell: &str, kind: ColumnKind) -> Option<f64> {
    match kind {
        ColumnKind::Boolean => parse_bool(cell).map(|b| if b { 1.0 } else { 0.0 }),
        ColumnKind::Integer => cell.parse::<i64>().ok().map(|i| i as f64),
        _ => parse_finite(cell),
    }
}

fn parse_finite(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|value| value.is_finite())
}

fn parse_bool(cell: &str) -> Option<bool> {
    if cell.eq_ignore_ascii_case("true") {
        Some(true)
    } else if cell.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn expected_words(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Boolean => "true or false",
        ColumnKind::Integer => "a whole number",
        _ => "a finite number",
    }
}

/// Class labels are sorted numerically when every label is an integer, otherwise as text,
/// so that 0/1 targets keep their natural order.
fn parse_classes(table: &Table, index: usize) -> Target {
    let raw: Vec<String> = (0..table.rows.len())
        .map(|row| table.cell(row, index).1.to_string())
        .collect();
    let mut labels: Vec<String> = raw
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if labels.iter().all(|label| label.parse::<i64>().is_ok()) {
        labels.sort_by_key(|label| label.parse::<i64>().unwrap_or_default());
    }
    let classes = raw
        .iter()
        .map(|value| labels.iter().position(|label| label == value).unwrap_or(0))
        .collect();
    Target::Classes { classes, labels }
}

/// A regression target: a finite number on every row.
fn parse_values(table: &Table, index: usize) -> Result<Target, DataError> {
    let values = (0..table.rows.len())
        .map(|row| {
            let (line, cell) = table.cell(row, index);
            parse_finite(cell).ok_or_else(|| DataError::TargetNotNumeric {
                path: table.path.clone(),
                line,
                column: table.header[index].clone(),
                value: cell.to_string(),
            })
        })
        .collect::<Result<Vec<f64>, DataError>>()?;
    Ok(Target::Values(values))
}

#[cfg(test)]
mod tests;

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
    let all_empty = (0..table.rows.len()).all(|row| table.cell(row, index).1.is_empty());
    if !missing_values || all_empty {
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
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str, categorical: &[&str]) -> Result<Dataset, DataError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let options = CsvOptions {
            target: "y".into(),
            categorical: categorical.iter().map(|s| s.to_string()).collect(),
            task: None,
            missing_values: false,
        };
        load_csv(file.path(), &options)
    }

    #[test]
    fn detects_each_column_kind() {
        let data = load(
            "age,score,smoker,city,y\n30,1.5,true,Oslo,yes\n41,2.25,false,Rome,no\n52,3,TRUE,Oslo,yes\n",
            &[],
        )
        .unwrap();
        let kinds: Vec<_> = data.columns.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ColumnKind::Integer,
                ColumnKind::Number,
                ColumnKind::Boolean,
                ColumnKind::Categorical
            ]
        );
        let (classes, labels) = data.classes().unwrap();
        assert_eq!(labels, ["no", "yes"]);
        assert_eq!(classes, [1, 0, 1]);
        assert_eq!(
            data.task_reason.as_deref(),
            Some("the target 'y' holds text: classification")
        );
        assert_eq!(
            data.columns[2].values,
            ColumnValues::Numeric(vec![1.0, 0.0, 1.0])
        );
    }

    #[test]
    fn declared_categorical_keeps_numbers_as_text() {
        let data = load("zip,y\n1000,0\n2000,1\n1000,1\n", &["zip"]).unwrap();
        assert_eq!(data.columns[0].kind, ColumnKind::Categorical);
        assert_eq!(
            data.columns[0].values,
            ColumnValues::Text(vec!["1000".into(), "2000".into(), "1000".into()])
        );
    }

    #[test]
    fn integer_labels_sort_numerically() {
        let data = load("x,y\n1,10\n2,9\n3,10\n", &[]).unwrap();
        assert_eq!(data.classes().unwrap().1, ["9", "10"]);
    }

    fn load_as(text: &str, task: Option<Task>) -> Result<Dataset, DataError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let options = CsvOptions {
            target: "y".into(),
            categorical: Vec::new(),
            task,
            missing_values: false,
        };
        load_csv(file.path(), &options)
    }

    fn load_with_missing_values(text: &str) -> Result<Dataset, DataError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let options = CsvOptions {
            target: "y".into(),
            missing_values: true,
            ..CsvOptions::default()
        };
        load_csv(file.path(), &options)
    }

    #[test]
    fn empty_feature_cells_are_missing_values_when_the_algorithm_takes_them() {
        let text = "x,c,y\n1.5,a,0\n,b,1\n2.5,,0\n";
        let data = load_with_missing_values(text).unwrap();
        let ColumnValues::Numeric(x) = &data.columns[0].values else {
            panic!("x is numeric")
        };
        assert_eq!(data.columns[0].kind, ColumnKind::Number);
        assert!(x[0] == 1.5 && x[1].is_nan() && x[2] == 2.5);
        assert_eq!(data.columns[1].kind, ColumnKind::Categorical);
        assert_eq!(
            data.columns[1].values,
            ColumnValues::Text(vec!["a".into(), "b".into(), String::new()])
        );
        let refused = load_as(text, None).unwrap_err().to_string();
        assert!(
            refused.ends_with(
                "column 'x' is empty; every cell needs a value (of the algorithms, \
                 gradient-boosting alone learns from missing feature values)"
            ),
            "{refused}"
        );
    }

    #[test]
    fn an_empty_target_or_a_column_without_values_is_refused_even_so() {
        let error = load_with_missing_values("x,y\n1,0\n2,\n").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("column 'y' is empty; every cell needs a value")
        );
        let error = load_with_missing_values("x,z,y\n1,,0\n2,,1\n").unwrap_err();
        assert!(matches!(error, DataError::EmptyCell { ref column, .. } if column == "z"));
    }

    #[test]
    fn the_task_is_inferred_from_the_target_and_said_why() {
        let fractions = load_as("x,y\n1,0.5\n2,1.25\n3,0.5\n", None).unwrap();
        assert_eq!(fractions.target, Target::Values(vec![0.5, 1.25, 0.5]));
        assert!(
            fractions
                .task_reason
                .unwrap()
                .contains("numbers with fractions: regression")
        );
        let few_whole = load_as("x,y\n1,3\n2,1\n3,3\n", None).unwrap();
        assert_eq!(few_whole.target.task(), Task::Classification);
        let written_as_floats = load_as("x,y\n1,0.0\n2,1.0\n3,1.0\n", None).unwrap();
        assert_eq!(written_as_floats.target.task(), Task::Classification);
        let booleans = load_as("x,y\n1,true\n2,false\n", None).unwrap();
        assert!(booleans.task_reason.unwrap().contains("true and false"));
        let many: String = (0..=MAX_INFERRED_CLASSES)
            .map(|i| format!("{i},{}\n", i * 7))
            .collect();
        let many_whole = load_as(&format!("x,y\n{many}"), None).unwrap();
        assert_eq!(many_whole.target.task(), Task::Regression);
        assert!(
            many_whole
                .task_reason
                .unwrap()
                .contains("21 distinct whole numbers: regression")
        );
    }

    #[test]
    fn an_asked_task_wins_and_a_text_target_cannot_be_a_number() {
        let classes = load_as("x,y\n1,0.5\n2,1.25\n", Some(Task::Classification)).unwrap();
        assert_eq!(classes.classes().unwrap().1, ["0.5", "1.25"]);
        assert_eq!(classes.task_reason, None);
        let values = load_as("x,y\n1,3\n2,1\n", Some(Task::Regression)).unwrap();
        assert_eq!(values.target, Target::Values(vec![3.0, 1.0]));
        let error = load_as("x,y\n1,3\n2,high\n", Some(Task::Regression)).unwrap_err();
        assert!(
            error.to_string().ends_with(
                ":3: the target column 'y' must hold numbers for regression, got 'high'"
            ),
            "{error}"
        );
    }

    #[test]
    fn bad_cell_names_line_and_column() {
        let error = load("a,b,y\n1,2,x\n3,4,x\n5,oops,z\n", &[]).unwrap_err();
        assert_eq!(
            error.to_string().split_once(':').unwrap().1,
            "4: column 'b': expected a finite number, got 'oops'"
        );
    }

    #[test]
    fn empty_cell_names_line_and_column() {
        let error = load("a,b,y\n1,2,x\n3,,z\n", &[]).unwrap_err();
        assert!(matches!(error, DataError::EmptyCell { line: 3, ref column, .. } if column == "b"));
    }

    #[test]
    fn missing_target_lists_columns() {
        let error = load("a,b\n1,2\n", &[]).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("no column named 'y' for the target; the columns are: a, b")
        );
    }

    #[test]
    fn header_of_numbers_is_refused() {
        let error = load("1,2,3\n4,5,6\n", &[]).unwrap_err();
        assert!(matches!(error, DataError::NoHeader { .. }));
    }

    #[test]
    fn ragged_row_is_malformed_with_line() {
        let error = load("a,y\n1,x\n2,y,3\n", &[]).unwrap_err();
        assert!(
            matches!(error, DataError::Malformed { line: 3, .. }),
            "{error}"
        );
    }

    #[test]
    fn single_class_is_refused() {
        let error = load("a,y\n1,x\n2,x\n", &[]).unwrap_err();
        assert!(matches!(error, DataError::SingleClass { .. }));
    }
}

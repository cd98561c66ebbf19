//! Tabular data: the bundled datasets, CSV files, and train/test splits.
//!
//! Everything downstream (training, evaluation, the model schema) sees a [`Dataset`]:
//! typed feature columns plus a [`Target`] per row: a class index, or a number.

mod bundled;
mod csv_file;
mod split;

pub use bundled::{BundledDataset, load_bundled};
pub use csv_file::{CsvOptions, load_csv};
pub use split::{kfold, shuffled_split, stratified_kfold, stratified_split};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The declared type of a feature, as it appears in a model's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Any finite real number.
    Number,
    /// A whole number.
    Integer,
    /// `true` or `false`, encoded as 1 and 0 for the model.
    Boolean,
    /// One of a fixed set of text categories, one-hot encoded for the model.
    Categorical,
    /// Free text (for models whose backend reads text, such as imported ONNX graphs).
    String,
    /// An RFC 3339 full date, `2024-05-17`.
    Date,
    /// An RFC 3339 date-time with an offset, `2024-05-17T09:30:00Z`.
    #[serde(rename = "date-time")]
    DateTime,
}

impl ColumnKind {
    /// The type's name in manifests and schemas.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Number => "number",
            ColumnKind::Integer => "integer",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Categorical => "categorical",
            ColumnKind::String => "string",
            ColumnKind::Date => "date",
            ColumnKind::DateTime => "date-time",
        }
    }
}

/// The values of one column, parsed to their kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Number, integer and boolean columns (booleans as 0.0 and 1.0).
    Numeric(Vec<f64>),
    /// Categorical columns, as their text.
    Text(Vec<String>),
}

/// One feature column of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Feature name, as clients send it.
    pub name: String,
    /// Declared type.
    pub kind: ColumnKind,
    /// One value per row.
    pub values: ColumnValues,
}

/// What a model predicts, as scikit-learn's estimator types say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// One label out of a fixed set, with a probability per label.
    Classification,
    /// A number.
    Regression,
}

impl Task {
    /// The task's name in manifests, messages and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }
}

/// What each row of a dataset is labelled with.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A class per row.
    Classes {
        /// Class index of each row, into `labels`.
        classes: Vec<usize>,
        /// Class names, in class-index order.
        labels: Vec<String>,
    },
    /// A finite number per row.
    Values(Vec<f64>),
}

impl Target {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Target::Classes { classes, .. } => classes.len(),
            Target::Values(values) => values.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The task this target makes.
    pub fn task(&self) -> Task {
        match self {
            Target::Classes { .. } => Task::Classification,
            Target::Values(_) => Task::Regression,
        }
    }
}

/// A labelled tabular dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Where the data came from: a bundled dataset's name or a file path.
    pub source: String,
    /// SHA-256 of the source data, recorded in the model's provenance.
    pub sha256: String,
    /// Feature columns, in schema order.
    pub columns: Vec<Column>,
    /// The target column's name.
    pub target_name: String,
    /// The target of each row.
    pub target: Target,
    /// Why the task is what it is, when it was inferred from the target column rather than
    /// asked for (to be shown to the user).
    pub task_reason: Option<String>,
}

impl Dataset {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.target.len()
    }

    /// The class index of each row and the class names; `None` for a regression target.
    pub fn classes(&self) -> Option<(&[usize], &[String])> {
        match &self.target {
            Target::Classes { classes, labels } => Some((classes, labels)),
            Target::Values(_) => None,
        }
    }

    /// Rows per class, in class-index order (empty for a regression target).
    pub fn class_counts(&self) -> Vec<usize> {
        let Some((classes, labels)) = self.classes() else {
            return Vec::new();
        };
        let mut counts = vec![0; labels.len()];
        for &class in classes {
            counts[class] += 1;
        }
        counts
    }
}

/// Everything that can be wrong with the input data; each message names the file, line and column.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not well-formed CSV (for example a row with the wrong number of fields).
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The file has no header row.
    #[error("{path}: {message}")]
    NoHeader {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        message: String,
    },
    /// The target column is not in the header.
    #[error("{path}: no column named '{column}' for the target; the columns are: {available}")]
    MissingTarget {
        /// The file.
        path: PathBuf,
        /// The requested target column.
        column: String,
        /// The header's columns, comma-separated.
        available: String,
    },
    /// A column named in `--categorical` is not in the header.
    #[error("{path}: --categorical names '{column}', which is not a feature column of the file")]
    UnknownCategorical {
        /// The file.
        path: PathBuf,
        /// The unknown column.
        column: String,
    },
    /// Two header fields have the same name.
    #[error("{path}: the header names column '{column}' twice")]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },
    /// A cell is empty where a value is needed.
    #[error(
        "{path}:{line}: column '{column}' is empty; every cell needs a value{}",
        if *feature { " (of the algorithms, gradient-boosting alone learns from missing feature values)" } else { "" }
    )]
    EmptyCell {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// Whether the column is a feature (not the target).
        feature: bool,
    },
    /// A feature column has no value in any row.
    #[error("{path}: column '{column}' has no value in any row; leave it out of the file")]
    NoValues {
        /// The file.
        path: PathBuf,
        /// Column name.
        column: String,
    },
    /// A cell does not parse as its column's type.
    #[error("{path}:{line}: column '{column}': expected {expected}, got '{value}'")]
    BadCell {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The column's type, in words.
        expected: &'static str,
        /// The offending text.
        value: String,
    },
    /// The data has no rows at all.
    #[error("{0}: no data rows")]
    Empty(String),
    /// The data has no feature columns.
    #[error("{0}: no feature columns besides the target")]
    NoFeatures(String),
    /// Classification needs at least two classes.
    #[error("{origin}: the target has a single class ('{label}'); a classifier needs at least two")]
    SingleClass {
        /// The data source.
        origin: String,
        /// The only label present.
        label: String,
    },
    /// `--task regression` with a target that is not a number on some row.
    #[error(
        "{path}:{line}: the target column '{column}' must hold numbers for regression, got '{value}'"
    )]
    TargetNotNumeric {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The target column.
        column: String,
        /// The offending text.
        value: String,
    },
    /// A split or cross-validation cannot be made from this data.
    #[error("{0}")]
    Split(String),
}

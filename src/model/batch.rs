//! Offline batch prediction: a CSV file in, a CSV file out, streamed row by row so memory
//! stays flat whatever the file size. Every row goes through the same validator as the API.

use super::explained::with_explanations;
use super::native::FeatureValue;
use super::repository::LoadedModel;
use super::scoring::Outcome;
use super::validate::{FieldError, RawValue, UnknownFields};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

pub mod explained;

/// A row that could not be predicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line number in the input.
    pub line: u64,
    /// What is wrong with it.
    pub errors: Vec<FieldError>,
}

/// What a batch run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Rows predicted and written.
    pub predicted: u64,
    /// Rows skipped (each reported as it was met).
    pub skipped: u64,
}

/// Errors that stop a batch run.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The output stream cannot be written.
    #[error("cannot write the predictions: {0}")]
    Write(std::io::Error),
    /// The input is not well-formed CSV.
    #[error("{path}:{line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The header lacks feature columns.
    #[error("{path}: the header lacks the feature column(s) {missing}")]
    MissingColumns {
        /// The file.
        path: PathBuf,
        /// Comma-separated missing names.
        missing: String,
    },
    /// An input column has the name of an output column.
    #[error(
        "{path}: the input already has a column named '{column}', which the output adds; rename it"
    )]
    ColumnClash {
        /// The file.
        path: PathBuf,
        /// The clashing name.
        column: String,
    },
    /// Explanations were asked of a model that cannot give them.
    #[error("{0}")]
    CannotExplain(String),
    /// The model failed on rows it should have scored (a server fault, not a bad row).
    #[error("the model failed: {0}")]
    Model(String),
    /// A bad row, with `--fail-fast`.
    #[error("{path}:{line}: {details}")]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The row's problems.
        details: String,
    },
}

/// What a batch run reports as it goes. A closure taking a [`BadRow`] is an observer that
/// hears only about bad rows.
pub trait BatchObserver {
    /// A row that was skipped, or stops the run with `fail_fast`.
    fn bad_row(&mut self, bad: &BadRow);
    /// A row that was predicted: its validated values and what the model answered.
    fn predicted(&mut self, _values: &[super::native::FeatureValue], _outcome: &Outcome) {}
    /// A row was read, before it is validated or scored (so every row, good or bad):
    /// `input_bytes` of the input are consumed so far. For a progress display.
    fn row_read(&mut self, _input_bytes: u64) {}
}

impl<F: FnMut(&BadRow)> BatchObserver for F {
    fn bad_row(&mut self, bad: &BadRow) {
        self(bad);
    }
}

/// Describes a bad row's problems on one line.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a batch run goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchOptions {
    /// Stop at the first bad row instead of skipping it.
    pub fail_fast: bool,
    /// Add each row's explanation ([`explained::columns`]).
    pub explain: bool,
}

/// Predicts every row of `input` into `output`: the input columns, then [`added_columns`]. Bad
/// rows are skipped and reported through the observer, or stop the run with
/// [`BatchOptions::fail_fast`]. The output appears only when complete.
pub fn predict_csv(
    model: &LoadedModel,
    input: &Path,
    output: &Path,
    options: BatchOptions,
    observer: &mut impl BatchObserver,
) -> Result<BatchSummary, BatchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BatchError::Io { path, source }
    };
    let file = File::open(input).map_err(io(input))?;
    let staging = staging_path(output);
    let result = File::create(&staging)
        .map_err(io(&staging))
        .and_then(|out| {
            let sink = BufWriter::with_capacity(1 << 16, out);
            let (summary, sink) = predict_csv_stream(
                model,
                input,
                BufReader::with_capacity(1 << 16, file),
                sink,
                options,
                observer,
            )
            .map_err(|error| match error {
                BatchError::Write(source) => io(&staging)(source),
                other => other,
            })?;
            let out = sink
                .into_inner()
                .map_err(|e| io(&staging)(e.into_error()))?;
            // On disk before the rename makes it visible: a crash never leaves a short output file.
            out.sync_all().map_err(io(&staging))?;
            Ok(summary)
        })
        .and_then(|summary| {
            std::fs::rename(&staging, output).map_err(io(output))?;
            Ok(summary)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result
}

/// Predicts every row of a CSV stream into another, as [`predict_csv`] does for files.
/// `source` names the input in messages (a path, or an uploaded file's name). Returns the
/// sink, flushed, so the caller decides what makes the output visible.
pub fn predict_csv_stream<R: std::io::Read, W: Write>(
    model: &LoadedModel,
    source: &Path,
    input: R,
    output: W,
    options: BatchOptions,
    observer: &mut impl BatchObserver,
) -> Result<(BatchSummary, W), BatchError> {
    let explainer = if options.explain {
        Some(model.explainer().map_err(BatchError::CannotExplain)?)
    } else {
        None
    };
    // Flexible: a row with too few or too many cells is one bad row, not a broken file.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let csv_error = |error: csv::Error| BatchError::Csv {
        path: source.to_path_buf(),
        line: error.position().map_or(1, |p| p.line()),
        message: error.to_string(),
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let missing: Vec<&str> = model
        .validator
        .features()
        .iter()
        .map(|f| f.name.as_str())
        .filter(|name| !header.iter().any(|h| h == name))
        .collect();
    if !missing.is_empty() {
        return Err(BatchError::MissingColumns {
            path: source.to_path_buf(),
            missing: missing.join(", "),
        });
    }
    let mut added = added_columns(model);
    if let Some(explainer) = explainer {
        added.extend(explained::columns(model, explainer));
    }
    for column in &added {
        if header.contains(column) {
            return Err(BatchError::ColumnClash {
                path: source.to_path_buf(),
                column: column.clone(),
            });
        }
    }
    let mut out_header = header.clone();
    out_header.extend(added);
    write_predictions(
        model,
        &mut reader,
        (&header, &out_header),
        output,
        source,
        (options.fail_fast, explainer),
        observer,
    )
}

/// The columns a prediction adds after the input's: a classifier's `label` and one
/// `probability_<label>` per class; a regressor's `prediction`.
pub fn added_columns(model: &LoadedModel) -> Vec<String> {
    let labels = &model.artifact.manifest.labels;
    match model.task() {
        super::Task::Classification => std::iter::once("label".to_string())
            .chain(labels.iter().map(|l| format!("probability_{l}")))
            .collect(),
        super::Task::Regression => vec!["prediction".to_string()],
    }
}

/// A row that cannot be predicted: reported and skipped, or, with `fail_fast`, the end of the run.
fn skip_row(
    bad: BadRow,
    fail_fast: bool,
    input: &Path,
    observer: &mut impl BatchObserver,
    summary: &mut BatchSummary,
) -> Result<(), BatchError> {
    if fail_fast {
        return Err(BatchError::BadRow {
            path: input.to_path_buf(),
            line: bad.line,
            details: describe(&bad.errors),
        });
    }
    observer.bad_row(&bad);
    summary.skipped += 1;
    Ok(())
}

/// A row as text, or what is wrong with it (and the record back, to reuse its allocation).
fn row_text(
    record: csv::ByteRecord,
    columns: usize,
) -> Result<csv::StringRecord, (String, csv::ByteRecord)> {
    if record.len() != columns {
        let problem = format!(
            "the row has {} cells; the header has {columns}",
            record.len()
        );
        return Err((problem, record));
    }
    csv::StringRecord::from_byte_record(record).map_err(|error| {
        let field = error.utf8_error().field() + 1;
        (
            format!("cell {field} is not valid UTF-8 text"),
            error.into_byte_record(),
        )
    })
}

fn staging_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("predictions.csv");
    output.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// Rows scored together: one call of an ONNX graph for many rows is far cheaper than one per
/// row; the native model scores row by row either way.
const SCORING_CHUNK: usize = 256;

/// A validated row waiting for its chunk to be scored.
struct PendingRow {
    line: u64,
    record: csv::StringRecord,
    values: Vec<FeatureValue>,
}

/// Where predicted rows go: the CSV writer, the observer and the counts.
struct PredictionSink<'a, W: Write, O: BatchObserver> {
    writer: csv::Writer<W>,
    explainer: Option<&'a crate::model::Explainer>,
    labels: &'a [String],
    number: String,
    observer: &'a mut O,
    summary: BatchSummary,
    input: &'a Path,
    fail_fast: bool,
}

impl<W: Write, O: BatchObserver> PredictionSink<'_, W, O> {
    fn skip(&mut self, bad: BadRow) -> Result<(), BatchError> {
        skip_row(
            bad,
            self.fail_fast,
            self.input,
            self.observer,
            &mut self.summary,
        )
    }

    /// Scores the pending rows and writes them, in input order.
    fn flush(
        &mut self,
        model: &LoadedModel,
        pending: &mut Vec<PendingRow>,
    ) -> Result<(), BatchError> {
        if pending.is_empty() {
            return Ok(());
        }
        let (scored, explained) = {
            let views: Vec<&[FeatureValue]> = pending.iter().map(|p| p.values.as_slice()).collect();
            let scored = model
                .outcomes_of_rows(&views)
                .map_err(|error| BatchError::Model(error.to_string()))?;
            let explained = self
                .explainer
                .map(|explainer| {
                    model.explain_answered(explainer, &views, &scored, &Default::default())
                })
                .transpose()
                .map_err(|error| BatchError::Model(error.to_string()))?;
            (scored, explained)
        };
        let answers = pending.drain(..).zip(with_explanations(scored, explained));
        for (row, answered) in answers {
            match answered {
                Ok((outcome, explanation)) => self.write(&row, &outcome, explanation.as_ref())?,
                Err(error) if error.is_about_the_row() => {
                    let errors = vec![FieldError {
                        field: "row".to_string(),
                        message: error.to_string(),
                    }];
                    self.skip(BadRow {
                        line: row.line,
                        errors,
                    })?;
                }
                Err(error) => return Err(BatchError::Model(error.to_string())),
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        row: &PendingRow,
        outcome: &Outcome,
        explanation: Option<&crate::model::Explanation>,
    ) -> Result<(), BatchError> {
        let csv_write = |error: csv::Error| BatchError::Write(std::io::Error::other(error));
        for cell in row.record.iter() {
            self.writer.write_field(cell).map_err(csv_write)?;
        }
        let numbers: &[f64] = match outcome {
            Outcome::Class {
                class,
                probabilities,
            } => {
                let label = self.labels.get(*class).map_or("", String::as_str);
                self.writer.write_field(label).map_err(csv_write)?;
                probabilities
            }
            Outcome::Value(value) => std::slice::from_ref(value),
        };
        let explained = explanation.into_iter().flat_map(explained::values);
        for number in numbers.iter().copied().chain(explained) {
            self.number.clear();
            use std::fmt::Write as _;
            let _ = write!(self.number, "{number}");
            self.writer.write_field(&self.number).map_err(csv_write)?;
        }
        self.writer.write_record(None::<&[u8]>).map_err(csv_write)?;
        self.observer.predicted(&row.values, outcome);
        self.summary.predicted += 1;
        Ok(())
    }
}

fn write_predictions<R: std::io::Read, W: Write>(
    model: &LoadedModel,
    reader: &mut csv::Reader<R>,
    (header, out_header): (&[String], &[String]),
    output: W,
    input: &Path,
    (fail_fast, explainer): (bool, Option<&crate::model::Explainer>),
    observer: &mut impl BatchObserver,
) -> Result<(BatchSummary, W), BatchError> {
    let mut writer = csv::Writer::from_writer(output);
    let labels = &model.artifact.manifest.labels;
    writer
        .write_record(out_header)
        .map_err(|error| BatchError::Write(std::io::Error::other(error)))?;
    let mut sink = PredictionSink {
        writer,
        explainer,
        labels,
        number: String::new(),
        observer,
        summary: BatchSummary::default(),
        input,
        fail_fast,
    };
    let mut pending: Vec<PendingRow> = Vec::with_capacity(SCORING_CHUNK);
    let mut bytes = csv::ByteRecord::new();
    let mut errors = Vec::new();
    loop {
        let more = reader
            .read_byte_record(&mut bytes)
            .map_err(|error| BatchError::Csv {
                path: input.to_path_buf(),
                line: error.position().map_or(0, |p| p.line()),
                message: error.to_string(),
            })?;
        if !more {
            break;
        }
        sink.observer.row_read(reader.position().byte());
        let line = bytes.position().map_or(0, |p| p.line());
        let record = match row_text(std::mem::take(&mut bytes), header.len()) {
            Ok(record) => record,
            Err((problem, reused)) => {
                bytes = reused;
                let errors = vec![FieldError {
                    field: "row".to_string(),
                    message: problem,
                }];
                // Rows are reported in input order: the chunk before this row goes first.
                sink.flush(model, &mut pending)?;
                sink.skip(BadRow { line, errors })?;
                continue;
            }
        };
        errors.clear();
        // Columns that are not features (an id, say) pass through to the output untouched.
        let row = model.validator.validate(
            header
                .iter()
                .zip(record.iter())
                .map(|(h, cell)| (h.as_str(), RawValue::Text(cell))),
            UnknownFields::Ignore,
            "",
            &mut errors,
        );
        let Some(row) = row else {
            let bad = BadRow {
                line,
                errors: errors.clone(),
            };
            sink.flush(model, &mut pending)?;
            sink.skip(bad)?;
            continue;
        };
        pending.push(PendingRow {
            line,
            record,
            values: row.values,
        });
        if pending.len() == SCORING_CHUNK {
            sink.flush(model, &mut pending)?;
        }
    }
    sink.flush(model, &mut pending)?;
    let summary = sink.summary;
    let write_error = BatchError::Write;
    let mut inner = sink
        .writer
        .into_inner()
        .map_err(|e| write_error(std::io::Error::other(e.to_string())))?;
    inner.flush().map_err(write_error)?;
    Ok((summary, inner))
}

//! `mlserve log export`: a model's logged predictions, streamed from the database as CSV or
//! JSON Lines for analysts (pandas, DuckDB), with their inputs and outputs by name.

use super::Failure;
use super::progress::Progress;
use mlserve::store::{ExportQuery, LoggedPrediction, Store, StoredSchema};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Rows read from the database at a time.
const PAGE: u32 = 5_000;

/// The prediction log's commands.
#[derive(clap::Subcommand)]
pub(crate) enum LogCommand {
    /// Stream a model's logged predictions as CSV or JSON Lines, oldest first.
    ///
    /// CSV: request_id, row, created_at, model, version, one column per feature (every
    /// version's, in schema order; empty when missing or left out of the log; input_<name> for
    /// a feature named like another column), label, a probability_<label> column per label,
    /// latency_ms, key and feedback. JSON Lines: one object a line, as GET /api/predictions
    /// gives them. The database is opened read-only and nothing in it changes. On a terminal,
    /// stderr shows the progress (rows, rows per second, time left).
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub(crate) struct ExportArgs {
    /// The model whose predictions are exported
    #[arg(long)]
    model: String,
    /// Only predictions at or after this RFC 3339 time (2026-11-01T00:00:00Z)
    #[arg(long, value_name = "TIME")]
    since: Option<jiff::Timestamp>,
    /// Only predictions before this RFC 3339 time
    #[arg(long, value_name = "TIME")]
    until: Option<jiff::Timestamp>,
    /// Output format
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Output file [default: standard output]
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The prediction database
    #[arg(
        long,
        env = "MLSERVE_DATABASE_URL",
        value_name = "URL",
        default_value = "sqlite://data/predictions.db"
    )]
    database_url: String,
    /// Print nothing but errors: no progress display and no summary
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// Comma-separated values with a header row
    Csv,
    /// One JSON object a line
    Jsonl,
}

/// Runs a `mlserve log` command.
pub(crate) fn run(command: LogCommand) -> Result<ExitCode, Failure> {
    let LogCommand::Export(args) = command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::fault)?;
    runtime.block_on(export(args))
}

async fn export(args: ExportArgs) -> Result<ExitCode, Failure> {
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since >= until
    {
        return Err(Failure::usage(format!(
            "--since {since} is not before --until {until}"
        )));
    }
    if args.database_url.starts_with("sqlite:") {
        let path = mlserve::store::sqlite_file(&args.database_url);
        if !std::path::Path::new(path).exists() {
            return Err(Failure::usage(format!(
                "there is no prediction log at {path} (--database-url or MLSERVE_DATABASE_URL)"
            )));
        }
    }
    let store = Store::open_for_reading(&args.database_url)
        .await
        .map_err(|error| match error {
            mlserve::store::StoreError::Layout(_) => Failure::usage(error),
            other => Failure::fault(format!("cannot open the prediction log: {other}")),
        })?;
    let database = |error: mlserve::store::StoreError| {
        Failure::fault(format!("the prediction database failed: {error}"))
    };
    let versions = store.model_schemas(&args.model).await.map_err(database)?;
    if versions.is_empty() {
        let known = store.logged_models().await.map_err(database)?;
        return Err(Failure::usage(format!(
            "no predictions of model '{}' are in the log; it holds {}",
            args.model,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let query = ExportQuery {
        model: args.model.clone(),
        since_ms: args.since.map(|t| t.as_millisecond()),
        until_ms: args.until.map(|t| t.as_millisecond()),
        max_id: Some(store.last_prediction_id().await.map_err(database)?),
    };
    let total = store.export_count(&query).await.map_err(database)?;
    let progress = if args.quiet {
        Progress::hidden()
    } else {
        Progress::new(Some(total), "rows")
    };
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|error| {
            Failure::usage(format!("cannot create {}: {error}", path.display()))
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = Sink::new(args.format, &versions, std::io::BufWriter::new(out))
        .map_err(|error| write_failed(&args, error))?;
    let mut after = 0;
    loop {
        let page = store
            .export_page(&query, after, PAGE)
            .await
            .map_err(database)?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, prediction) in &page {
            sink.write(prediction)
                .map_err(|error| write_failed(&args, error))?;
        }
        progress.inc(page.len() as u64);
    }
    sink.finish().map_err(|error| write_failed(&args, error))?;
    store.close().await;
    progress.finish();
    Ok(ExitCode::SUCCESS)
}

fn write_failed(args: &ExportArgs, error: std::io::Error) -> Failure {
    let to = args.output.as_ref().map_or_else(
        || "standard output".to_string(),
        |p| p.display().to_string(),
    );
    Failure::fault(format!("cannot write to {to}: {error}"))
}

/// The CSV columns besides the features and probabilities.
const FIXED_COLUMNS: [&str; 9] = [
    "request_id",
    "row",
    "created_at",
    "model",
    "version",
    "label",
    "latency_ms",
    "key",
    "feedback",
];

/// Where exported rows go, in their format.
enum Sink<W: Write> {
    Csv {
        writer: Box<csv::Writer<W>>,
        features: Vec<String>,
        labels: Vec<String>,
        /// Whether a version predicts a number (its schema has no labels): a `prediction`
        /// column follows the probabilities.
        values: bool,
        /// Whether a version is a classifier: a `label` column follows the inputs.
        classes: bool,
    },
    Jsonl(W),
}

/// Every name of every version, in the order first seen.
fn union<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for name in names {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
    all
}

impl<W: Write> Sink<W> {
    fn new(format: ExportFormat, versions: &[StoredSchema], out: W) -> std::io::Result<Self> {
        if format == ExportFormat::Jsonl {
            return Ok(Sink::Jsonl(out));
        }
        let features = union(
            versions
                .iter()
                .flat_map(|v| v.schema.features.iter().map(|f| &f.name)),
        );
        let labels = union(versions.iter().flat_map(|v| v.schema.labels.iter()));
        let values = versions.iter().any(|v| v.schema.labels.is_empty());
        let classes = versions.iter().any(|v| !v.schema.labels.is_empty());
        let mut writer = Box::new(csv::Writer::from_writer(out));
        let mut header: Vec<String> = ["request_id", "row", "created_at", "model", "version"]
            .map(String::from)
            .to_vec();
        let fixed: Vec<String> = FIXED_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .chain(labels.iter().map(|l| format!("probability_{l}")))
            .chain(values.then(|| "prediction".to_string()))
            .collect();
        // A feature named like one of the other columns gets an input_ prefix, so no two
        // columns share a name.
        header.extend(features.iter().map(|f| {
            if fixed.contains(f) {
                format!("input_{f}")
            } else {
                f.clone()
            }
        }));
        if classes {
            header.push("label".into());
        }
        header.extend(labels.iter().map(|l| format!("probability_{l}")));
        if values {
            header.push("prediction".into());
        }
        header.extend(["latency_ms", "key", "feedback"].map(String::from));
        writer.write_record(&header)?;
        Ok(Sink::Csv {
            writer,
            features,
            labels,
            values,
            classes,
        })
    }

    fn write(&mut self, prediction: &LoggedPrediction) -> std::io::Result<()> {
        match self {
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &prediction.to_json())?;
                out.write_all(b"\n")
            }
            Sink::Csv {
                writer,
                features,
                labels,
                values,
                classes,
            } => {
                let mut record = vec![
                    prediction.request_id.clone(),
                    prediction.row_index.to_string(),
                    mlserve::store::rfc3339(prediction.created_at_ms),
                    prediction.model.clone(),
                    prediction.version.clone(),
                ];
                record.extend(
                    features
                        .iter()
                        .map(|f| cell(&prediction.inputs[f.as_str()])),
                );
                if *classes {
                    record.push(prediction.label.clone());
                }
                record.extend(
                    labels
                        .iter()
                        .map(|l| cell(&prediction.probabilities[l.as_str()])),
                );
                if *values {
                    record.push(prediction.value.map(|v| v.to_string()).unwrap_or_default());
                }
                record.push(prediction.latency_ms.to_string());
                record.push(prediction.key_name.clone().unwrap_or_default());
                // The true label, or the true value of a model that predicts a number.
                record.push(match (&prediction.feedback, prediction.feedback_value) {
                    (Some(label), _) => label.clone(),
                    (None, Some(value)) => value.to_string(),
                    (None, None) => String::new(),
                });
                writer.write_record(&record).map_err(std::io::Error::other)
            }
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Jsonl(mut out) => out.flush(),
            Sink::Csv { mut writer, .. } => writer.flush(),
        }
    }
}

/// A JSON value as a CSV cell: text as it is, numbers and booleans as JSON writes them, empty
/// for null or absent.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

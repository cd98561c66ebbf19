//! `mlserve train`: a model from a bundled dataset or a CSV file, evaluated, written as a new
//! version, with a summary and a progress bar.

use super::progress::PhaseProgress;
use super::{Failure, TrainArgs};
use anyhow::Context;
use mlserve::data::{CsvOptions, Dataset, load_bundled, load_csv};
use mlserve::train::{AlgorithmParams, TrainError, TrainOptions, TrainedModel};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

/// Trains, evaluates and writes a new version.
pub(super) fn run(args: TrainArgs) -> Result<ExitCode, Failure> {
    init_logging(args.log_file.as_deref()).map_err(|error| Failure::usage(format!("{error:#}")))?;
    match train_command(&args) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            tracing::error!(%error, "training failed");
            let write_failed = matches!(
                error,
                TrainError::Artifact(mlserve::model::ArtifactError::Io { .. })
            );
            Err(Failure::artifact(error, write_failed))
        }
    }
}

fn init_logging(log_file: Option<&Path>) -> anyhow::Result<()> {
    use tracing_subscriber::{
        EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt,
    };
    let console = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
    let file = match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            Some(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(Mutex::new(file))
                    .with_filter(EnvFilter::new("info")),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(console)
        .with(file)
        .init();
    Ok(())
}

fn load_dataset(args: &TrainArgs) -> Result<(Dataset, String), TrainError> {
    if let Some(which) = args.dataset {
        return Ok((load_bundled(which), which.model_name().to_string()));
    }
    // clap's argument group guarantees one source; --csv requires --target.
    let path = args.csv.clone().unwrap_or_default();
    let options = CsvOptions {
        target: args.target.clone().unwrap_or_default(),
        categorical: args.categorical.clone(),
        // Regression is trained but not yet served (issue 14): until it is, a target is taken
        // as classes, as before.
        task: Some(mlserve::data::Task::Classification),
    };
    let data = load_csv(&path, &options)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    Ok((data, stem))
}

fn train_command(args: &TrainArgs) -> Result<(), TrainError> {
    let params = AlgorithmParams::from_flags(args.algorithm, &args.hyper)?;
    let (data, default_name) = load_dataset(args)?;
    let name = args.name.clone().unwrap_or(default_name);
    mlserve::model::validate_model_name(&name).map_err(TrainError::Artifact)?;
    tracing::info!(source = %data.source, rows = data.n_rows(), algorithm = args.algorithm.cli_name(), "training");
    let options = TrainOptions {
        params,
        test_size: args.test_size,
        seed: args.seed,
        cv: args.cv,
    };
    let started = std::time::Instant::now();
    let progress = PhaseProgress::new(args.quiet);
    let trained = mlserve::train::train(&data, &options, &progress)?;
    let elapsed = started.elapsed();
    let (version, dir) = trained.save(&args.repository.models, &name)?;
    tracing::info!(model = %name, version, dir = %dir.display(), seconds = elapsed.as_secs_f64(), "model written");
    if !args.quiet {
        print_summary(&trained, &name, version, &dir, elapsed);
    }
    Ok(())
}

fn print_summary(
    trained: &TrainedModel,
    name: &str,
    version: u32,
    dir: &Path,
    elapsed: std::time::Duration,
) {
    let e = &trained.metrics.evaluation;
    let p = &trained.provenance;
    println!(
        "Trained {name} v{version}: {} on {} ({} training rows, {} test rows) in {:.0} ms",
        p.estimator.algorithm().cli_name(),
        p.dataset,
        p.train_rows,
        p.test_rows,
        elapsed.as_secs_f64() * 1000.0
    );
    println!();
    println!("  accuracy            {:.4}", e.accuracy);
    println!("  precision (macro)   {:.4}", e.precision_macro);
    println!("  recall (macro)      {:.4}", e.recall_macro);
    println!("  F1 (macro)          {:.4}", e.f1_macro);
    match e.roc_auc {
        Some(auc) => println!("  ROC AUC             {auc:.4}"),
        None => {
            println!("  ROC AUC             undefined (a class is missing from the test split)")
        }
    }
    println!("  log loss            {:.4}", e.log_loss);
    if let Some(cv) = &trained.metrics.cv {
        println!(
            "  {}-fold CV accuracy  {:.4} ± {:.4}",
            cv.folds, cv.accuracy.mean, cv.accuracy.std
        );
    }
    let width = e
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!();
    println!("  {:width$}  precision  recall      F1  support", "class");
    for label in &e.labels {
        if let Some(m) = e.per_class.get(label) {
            println!(
                "  {label:width$}  {:9.4}  {:6.4}  {:6.4}  {:7}",
                m.precision, m.recall, m.f1, m.support
            );
        }
    }
    println!();
    println!("  confusion matrix (rows: true, columns: predicted)");
    let cell = e
        .confusion_matrix
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1)
        .max(width.min(12));
    print!("  {:width$}", "");
    for label in &e.labels {
        let short: String = label.chars().take(cell).collect();
        print!("  {short:>cell$}");
    }
    println!();
    for (label, row) in e.labels.iter().zip(&e.confusion_matrix) {
        print!("  {label:width$}");
        for count in row {
            print!("  {count:>cell$}");
        }
        println!();
    }
    println!();
    println!("Wrote {}", dir.display());
}

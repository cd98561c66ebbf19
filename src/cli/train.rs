//! `mlserve train`: a model from a bundled dataset or a CSV file, evaluated, written as a new
//! version, with a summary and a progress bar.

use super::progress::PhaseProgress;
use super::{Failure, TrainArgs};
use anyhow::Context;
use mlserve::data::Task;
use mlserve::data::{CsvOptions, Dataset, load_bundled, load_csv};
use mlserve::train::boosting::pipeline::{BoostedMetrics, TrainedBoosted, train_boosted};
use mlserve::train::regression::RegressionMetricsFile;
use mlserve::train::regression::{REGRESSION_ALGORITHMS, TrainedRegressor, train_regressor};
use mlserve::train::{AlgorithmParams, MetricsFile, TrainError, TrainOptions, TrainedModel};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

/// The target of the "training failed" log event, which the console leaves out.
const FAILURE_TARGET: &str = "mlserve_train_failure";

/// Trains, evaluates and writes a new version.
pub(super) fn run(args: TrainArgs) -> Result<ExitCode, Failure> {
    init_logging(args.log_file.as_deref()).map_err(|error| Failure::usage(format!("{error:#}")))?;
    match train_command(&args) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            // For the log file; the console gets the one error line `main` prints.
            tracing::error!(target: FAILURE_TARGET, %error, "training failed");
            let write_failed = matches!(
                error,
                TrainError::Artifact(mlserve::model::ArtifactError::Io { .. })
            );
            Err(Failure::artifact(error, write_failed))
        }
    }
}

fn init_logging(log_file: Option<&Path>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::{
        EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt,
    };
    let console = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(format!("warn,{FAILURE_TARGET}=off"))),
        );
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
        let data = load_bundled(which);
        if let Some(task) = args.task
            && task != data.target.task()
        {
            return Err(TrainError::Parameter(format!(
                "--task {}: the bundled dataset {} is for {} (its target, {}); leave out \
                 --task or pick another dataset",
                task.name(),
                which.model_name(),
                data.target.task().name(),
                data.target_name,
            )));
        }
        return Ok((data, which.model_name().to_string()));
    }
    // clap's argument group guarantees one source; --csv requires --target.
    let path = args.csv.clone().unwrap_or_default();
    let options = CsvOptions {
        target: args.target.clone().unwrap_or_default(),
        categorical: args.categorical.clone(),
        task: args.task,
        missing_values: args.algorithm == mlserve::train::Algorithm::GradientBoosting,
    };
    let data = load_csv(&path, &options)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    Ok((data, stem))
}

/// A fitted model of either task, not yet written.
enum Trained {
    Classifier(TrainedModel),
    Regressor(TrainedRegressor),
    Boosted(TrainedBoosted),
}

fn train_command(args: &TrainArgs) -> Result<(), TrainError> {
    let (data, default_name) = load_dataset(args)?;
    let task = data.target.task();
    let params = AlgorithmParams::from_flags_for(task, args.algorithm, &args.hyper)?;
    let name = args.name.clone().unwrap_or(default_name);
    mlserve::model::validate_model_name(&name).map_err(TrainError::Artifact)?;
    let reason = match (&data.task_reason, args.task) {
        (Some(inferred), _) => inferred.clone(),
        (None, Some(_)) => "as --task says".to_string(),
        (None, None) => format!("the bundled dataset's target, {}", data.target_name),
    };
    let reason = reason.as_str();
    if let (Task::Regression, Some(inferred)) = (task, &data.task_reason)
        && !REGRESSION_ALGORITHMS.contains(&args.algorithm.cli_name())
    {
        return Err(TrainError::Parameter(format!(
            "{} has no regression form, and the target was read as a number ({inferred}); \
             use one of {}, or --task classification",
            args.algorithm.cli_name(),
            REGRESSION_ALGORITHMS.join(", ")
        )));
    }
    tracing::info!(source = %data.source, rows = data.n_rows(), algorithm = args.algorithm.cli_name(), task = task.name(), reason, "training");
    let options = TrainOptions {
        params,
        test_size: args.test_size,
        seed: args.seed,
        cv: args.cv,
    };
    let started = std::time::Instant::now();
    let progress = PhaseProgress::new(args.quiet);
    let trained = match task {
        _ if args.algorithm == mlserve::train::Algorithm::GradientBoosting => {
            Trained::Boosted(train_boosted(&data, &options, &progress)?)
        }
        Task::Classification => {
            Trained::Classifier(mlserve::train::train(&data, &options, &progress)?)
        }
        Task::Regression => Trained::Regressor(train_regressor(&data, &options, &progress)?),
    };
    let elapsed = started.elapsed();
    let (version, dir) = match &trained {
        Trained::Classifier(model) => model.save(&args.repository.models, &name)?,
        Trained::Regressor(model) => model.save(&args.repository.models, &name)?,
        Trained::Boosted(model) => model.save(&args.repository.models, &name)?,
    };
    tracing::info!(model = %name, version, dir = %dir.display(), seconds = elapsed.as_secs_f64(), "model written");
    if !args.quiet {
        let provenance = match &trained {
            Trained::Classifier(model) => &model.provenance,
            Trained::Regressor(model) => &model.provenance,
            Trained::Boosted(model) => &model.provenance,
        };
        println!(
            "Trained {name} v{version}: {} on {} ({} training rows, {} test rows) in {:.0} ms",
            provenance.estimator.algorithm().cli_name(),
            provenance.dataset,
            provenance.train_rows,
            provenance.test_rows,
            elapsed.as_secs_f64() * 1000.0
        );
        println!("Task: {} ({reason})", task.name());
        println!();
        match &trained {
            Trained::Classifier(model) => print_summary(&model.metrics),
            Trained::Regressor(model) => print_regression_summary(&model.metrics, &model.target),
            Trained::Boosted(model) => print_boosted_summary(model),
        }
        println!();
        println!("Wrote {}", dir.display());
    }
    Ok(())
}

fn print_boosted_summary(trained: &TrainedBoosted) {
    let (used, most) = trained.model.source.iterations;
    let stopped = if used < most { " (early stopping)" } else { "" };
    println!("  boosting iterations     {used} of {most}{stopped}");
    let refused = match &trained.metrics {
        BoostedMetrics::Classification(metrics) => metrics.split.refused_rows.len(),
        BoostedMetrics::Regression(metrics) => metrics.split.refused_rows.len(),
    };
    if refused > 0 {
        println!(
            "  {refused} held-out row(s) left out of the metrics: a category no training row \
             has, which the served model refuses"
        );
    }
    match (&trained.metrics, &trained.target) {
        (BoostedMetrics::Classification(metrics), _) => print_summary(metrics),
        (BoostedMetrics::Regression(metrics), Some(target)) => {
            print_regression_summary(metrics, target)
        }
        (BoostedMetrics::Regression(_), None) => {}
    }
}

fn print_regression_summary(
    metrics: &RegressionMetricsFile,
    target: &mlserve::model::TargetSchema,
) {
    let m = &metrics.evaluation.metrics;
    println!("  R²                      {:.4}", m.r2);
    println!("  RMSE                    {}", significant(m.rmse));
    println!("  MAE                     {}", significant(m.mae));
    match m.mape {
        Some(mape) => println!("  MAPE                    {:.2}%", mape * 100.0),
        None => println!("  MAPE                    undefined (a true value is 0)"),
    }
    println!(
        "  median absolute error   {}",
        significant(m.median_absolute_error)
    );
    if let Some(cv) = &metrics.cv {
        println!(
            "  {}-fold CV R²            {:.4} ± {:.4}",
            cv.folds, cv.r2.mean, cv.r2.std
        );
        println!(
            "  {}-fold CV RMSE          {} ± {}",
            cv.folds,
            significant(cv.rmse.mean),
            significant(cv.rmse.std)
        );
    }
    let t = target;
    println!();
    println!(
        "  target {}: min {}, median {}, max {} (training split)",
        t.name,
        significant(t.min),
        significant(t.quartiles[1]),
        significant(t.max)
    );
}

/// Four significant digits, for errors and values in the target's unit.
fn significant(value: f64) -> String {
    let magnitude = value.abs();
    let digits = if magnitude == 0.0 || !magnitude.is_finite() {
        0
    } else {
        (3 - magnitude.log10().floor() as i32).clamp(0, 8) as usize
    };
    format!("{value:.digits$}")
}

fn print_summary(metrics: &MetricsFile) {
    let e = &metrics.evaluation;
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
    if let Some(cv) = &metrics.cv {
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
}

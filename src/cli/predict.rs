//! `mlserve predict`: a CSV file through a model of the repository, offline, row by row.

use super::{EXIT_ROWS_SKIPPED, Failure, PredictArgs};
use anyhow::Context;
use std::process::ExitCode;

/// Predicts the file. Skipped bad rows end with exit code 3 (the output holds the others);
/// anything that stops the run is a usage error (2).
pub(super) fn run(args: &PredictArgs) -> Result<ExitCode, Failure> {
    let summary = predict_command(args).map_err(|error| Failure::usage(format!("{error:#}")))?;
    if summary.skipped > 0 {
        if !args.quiet {
            eprintln!(
                "predicted {} rows into {}; skipped {} bad rows (listed above)",
                summary.predicted,
                args.output.display(),
                summary.skipped
            );
        }
        return Ok(ExitCode::from(EXIT_ROWS_SKIPPED));
    }
    if !args.quiet {
        eprintln!(
            "predicted {} rows into {}",
            summary.predicted,
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn predict_command(args: &PredictArgs) -> anyhow::Result<mlserve::model::batch::BatchSummary> {
    let (name, version) = match args.model.split_once('/') {
        Some((name, version)) => (name, Some(version)),
        None => (args.model.as_str(), None),
    };
    mlserve::model::validate_model_name(name)?;
    mlserve::model::imported::configure(mlserve::model::imported::OnnxSettings {
        library: args.onnxruntime.clone(),
        ..Default::default()
    });
    let repository = mlserve::model::Repository::new(&args.repository.models);
    let report = repository.reload_model(name).with_context(|| {
        format!(
            "no model named '{name}' in {}",
            args.repository.models.display()
        )
    })?;
    let catalog = repository.catalog();
    let model = catalog.resolve(name, version).map_err(|failure| {
        let failures = report.failed.join("; ");
        anyhow::anyhow!(
            "{failure}{}",
            if failures.is_empty() {
                String::new()
            } else {
                format!(" ({failures})")
            }
        )
    })?;
    let input = &args.input;
    let mut report_bad_row = |bad: &mlserve::model::batch::BadRow| {
        eprintln!(
            "{}:{}: skipped: {}",
            input.display(),
            bad.line,
            mlserve::model::batch::describe(&bad.errors)
        );
    };
    let summary = mlserve::model::batch::predict_csv(
        &model,
        input,
        &args.output,
        args.fail_fast,
        &mut report_bad_row,
    )?;
    Ok(summary)
}

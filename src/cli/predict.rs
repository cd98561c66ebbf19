//! `mlserve predict`: a CSV file through a model of the repository, offline, row by row, with
//! a progress display on stderr when it is a terminal.

use super::progress::Progress;
use super::{EXIT_ROWS_SKIPPED, Failure, PredictArgs};
use anyhow::Context;
use mlserve::model::batch::{self, BadRow, BatchObserver, BatchSummary};
use std::path::Path;
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

fn predict_command(args: &PredictArgs) -> anyhow::Result<BatchSummary> {
    let (name, version) = match args.model.split_once('/') {
        Some((name, version)) => (name, Some(version)),
        None => (args.model.as_str(), None),
    };
    mlserve::model::validate_model_name(name)?;
    mlserve::model::explain::set_kernel_samples(args.explain_samples as usize);
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
    let progress = if args.quiet {
        Progress::hidden()
    } else {
        input_progress(&args.input)
    };
    let mut observer = Observer {
        input: &args.input,
        progress: &progress,
    };
    let summary = batch::predict_csv(
        &model,
        &args.input,
        &args.output,
        batch::BatchOptions {
            fail_fast: args.fail_fast,
            explain: args.explain,
        },
        &mut observer,
    )?;
    progress.finish();
    if args.explain && !args.quiet {
        describe_explanations(&model);
    }
    Ok(summary)
}

/// What the explanation columns hold, on stderr: the CSV itself has no room for the unit.
fn describe_explanations(model: &mlserve::model::LoadedModel) {
    let Ok(explainer) = model.explainer() else {
        return;
    };
    let labels = &model.artifact.manifest.labels;
    let towards = match (explainer.outputs(), labels.get(1)) {
        (1, Some(second)) if labels.len() == 2 => format!(", towards {second}"),
        _ => String::new(),
    };
    eprintln!(
        "explanations: {} SHAP values in {}{towards}{}",
        explainer.method().name(),
        explainer.unit().name(),
        if explainer.method() == mlserve::model::Method::Kernel {
            " (KernelSHAP estimates unless every coalition fits --explain-samples)"
        } else {
            ""
        }
    );
}

/// Progress through the input: by its bytes when it is a file of known size (the rows are
/// not counted ahead, which would read it twice), else a count of rows (a pipe, say).
fn input_progress(input: &Path) -> Progress {
    let size = std::fs::metadata(input)
        .ok()
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .filter(|&bytes| bytes > 0);
    match size {
        Some(bytes) => Progress::over_bytes(bytes, "rows"),
        None => Progress::new(None, "rows"),
    }
}

/// Reports bad rows on stderr, and moves the progress display row by row.
struct Observer<'a> {
    input: &'a Path,
    progress: &'a Progress,
}

impl BatchObserver for Observer<'_> {
    fn bad_row(&mut self, bad: &BadRow) {
        self.progress.suspend(|| {
            eprintln!(
                "{}:{}: skipped: {}",
                self.input.display(),
                bad.line,
                batch::describe(&bad.errors)
            );
        });
    }

    fn row_read(&mut self, input_bytes: u64) {
        self.progress.inc(1);
        self.progress.set_bytes(input_bytes);
    }
}

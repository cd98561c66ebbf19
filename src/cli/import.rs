//! `mlserve import`: an ONNX graph as a new version of a model.

use super::{Failure, ImportArgs};
use std::process::ExitCode;

/// Imports the graph as a new version and prints what it read from it.
pub(super) fn run(args: ImportArgs) -> Result<ExitCode, Failure> {
    use mlserve::import::{FeatureNames, ImportError, ImportOptions, import_model};
    let options = ImportOptions {
        graph: args.graph,
        name: args.name,
        models: args.repository.models,
        features: match (args.features, args.training_data) {
            (Some(file), _) => FeatureNames::File(file),
            (None, Some(csv)) => FeatureNames::Csv(csv),
            (None, None) => FeatureNames::FromGraph,
        },
        labels: args.labels,
        all_trees: args.all_trees,
        task: args.task,
        target: args.target,
        test_data: args.test_data,
        onnxruntime: args.onnxruntime,
        background: args.background,
    };
    match import_model(&options) {
        Ok(imported) => {
            let m = &imported.manifest;
            println!(
                "imported {} as {}/{} in {}",
                options.graph.display(),
                m.name,
                imported.version,
                imported.dir.display()
            );
            match (m.task, &m.target) {
                (mlserve::model::Task::Classification, _) => {
                    println!("  classes: {}", m.labels.join(", "));
                }
                (mlserve::model::Task::Regression, Some(target)) => println!(
                    "  predicts a number: {} (trained on {} to {})",
                    target.name, target.min, target.max
                ),
                (mlserve::model::Task::Regression, None) => println!(
                    "  predicts a number (its name and training range come from --training-data \
                     CSV with the --target column)"
                ),
            }
            match &m.metrics {
                Some(mlserve::model::HeldOutMetrics::Classification(metrics)) => println!(
                    "  on the test data: accuracy {:.4}, F1 (macro) {:.4}, log loss {:.4}",
                    metrics.accuracy, metrics.f1_macro, metrics.log_loss
                ),
                Some(mlserve::model::HeldOutMetrics::Regression(metrics)) => println!(
                    "  on the test data: R² {:.4}, RMSE {}, MAE {}",
                    metrics.r2, metrics.rmse, metrics.mae
                ),
                None => {}
            }
            for input in m.onnx.iter().flat_map(|b| &b.inputs) {
                println!(
                    "  graph input {} <- {}",
                    input.name,
                    input.features.join(", ")
                );
            }
            for feature in &m.features {
                println!(
                    "  feature {}: {}{}",
                    feature.name,
                    feature.kind.name(),
                    match (feature.nullable, m.backend) {
                        (false, _) => "",
                        (true, mlserve::model::Backend::Boosted) => {
                            ", nullable (the trees route missing values)"
                        }
                        (true, _) => ", nullable (the graph imputes it)",
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let write_failed = matches!(
                error,
                ImportError::Artifact(mlserve::model::ArtifactError::Io { .. })
            );
            Err(Failure::artifact(error, write_failed))
        }
    }
}

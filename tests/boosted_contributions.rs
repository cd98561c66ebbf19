//! TreeSHAP contributions of boosted trees (the engine part of explanations), against the
//! libraries' own: XGBoost's `pred_contribs` and LightGBM's `pred_contrib` on the fixtures'
//! rows (tests/fixtures/boosted/contributions.json, made by
//! scripts/make_boosted_contributions.py). Covers are read from the files, kept in model.bin
//! and grown by native training; a model stored before covers were kept has none.

mod common;

use mlserve::data::{BundledDataset, load_bundled};
use mlserve::import::{FeatureNames, ImportOptions, import_model};
use mlserve::model::boosted::BoostedTrees;
use mlserve::model::{Model, Repository, Task, load_version};
use mlserve::train::boosting::pipeline::train_boosted;
use mlserve::train::preprocess::raw_row;
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boosted")
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap()
}

fn boosted(repository: &Repository, name: &str) -> BoostedTrees {
    let model = repository.catalog().resolve(name, None).unwrap();
    match &model.artifact.model {
        Model::Boosted(trees) => trees.clone(),
        other => panic!("{name}: boosted trees expected, got {other:?}"),
    }
}

#[test]
fn contributions_equal_the_libraries_own_on_every_fixture() {
    let expected = json("expected.json");
    let reference = json("contributions.json");
    let repo = tempfile::tempdir().unwrap();
    let fixtures_list = reference["fixtures"].as_object().unwrap();
    assert!(fixtures_list.len() >= 27, "{}", fixtures_list.len());
    for name in fixtures_list.keys() {
        let fixture = &expected["fixtures"][name];
        import_model(&ImportOptions {
            graph: fixtures().join(fixture["file"].as_str().unwrap()),
            name: name.clone(),
            models: repo.path().to_path_buf(),
            features: FeatureNames::FromGraph,
            labels: None,
            all_trees: false,
            task: None,
            target: None,
            test_data: None,
            onnxruntime: None,
            background: None,
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Through model.bin and back: the covers are stored.
    let repository = Repository::new(repo.path());
    let report = repository.reload_all(false);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut worst = Vec::new();
    for (name, rows) in fixtures_list {
        let fixture = &expected["fixtures"][name];
        let data_rows = fixture
            .get("rows")
            .unwrap_or(&expected["datasets"][fixture["dataset"].as_str().unwrap()]["rows"]);
        let model = boosted(&repository, name);
        assert!(model.explainable(), "{name} has its covers");
        // The server's way: per-leaf tables (Fast TreeSHAP v2) where the trees allow them.
        let tables = model.shap_tables();
        let xgboost = name.starts_with("xgb");
        let mut largest = 0.0f64;
        for (row, want) in data_rows
            .as_array()
            .unwrap()
            .iter()
            .zip(rows.as_array().unwrap())
        {
            let row: Vec<f64> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect();
            let ours = model.contributions(&row).unwrap();
            let want: Vec<Vec<f64>> = serde_json::from_value(want.clone()).unwrap();
            let mut tabled = vec![0.0; ours.len() * model.features];
            model.add_contributions(Some(&tables), &row, &mut tabled);
            for (by_tables, by_algorithm_2) in tabled
                .chunks(model.features)
                .zip(ours.iter().map(|o| &o[..model.features]))
            {
                for (a, b) in by_tables.iter().zip(by_algorithm_2) {
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{name}: {a} vs {b}"
                    );
                }
            }
            assert_eq!(
                (ours.len(), ours[0].len()),
                (want.len(), want[0].len()),
                "{name}"
            );
            for (ours, want) in ours.iter().zip(&want) {
                // Relative to the output's scale: the sum of the contributions' sizes.
                let scale = want.iter().map(|v| v.abs()).sum::<f64>().max(1.0);
                for (a, b) in ours.iter().zip(want) {
                    largest = largest.max((a - b).abs() / scale);
                }
            }
        }
        // LightGBM computes in f64 as we do; XGBoost in f32 (../shared/notes/boosted-trees.md
        // section 5: an f64 computation is 2.8e-5 off on a regression of 100 trees).
        let bound = if xgboost { 1e-6 } else { 1e-12 };
        assert!(
            largest <= bound,
            "{name}: {largest:e} of the output's scale"
        );
        worst.push(format!("{name} {largest:.1e}"));
    }
    eprintln!("largest differences: {}", worst.join(", "));
}

#[test]
fn natively_trained_trees_keep_their_covers_and_their_contributions_add_up() {
    let data = load_bundled(BundledDataset::Iris);
    let options = TrainOptions {
        params: AlgorithmParams::from_flags_for(
            Task::Classification,
            Algorithm::GradientBoosting,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 42,
        cv: None,
    };
    let repo = tempfile::tempdir().unwrap();
    let (_, dir) = train_boosted(&data, &options, &NoProgress)
        .unwrap()
        .save(repo.path(), "iris")
        .unwrap();
    let Model::Boosted(model) = load_version(&dir).unwrap().model else {
        panic!("boosted trees expected")
    };
    assert!(model.explainable());
    for row in 0..data.n_rows() {
        let values = model.row(&raw_row(&data, row));
        let contributions = model.contributions(&values).unwrap();
        let margins = model.margins(&values);
        for (output, margin) in contributions.iter().zip(&margins) {
            let total: f64 = output.iter().sum();
            assert!(
                (total - margin).abs() < 1e-9,
                "row {row}: {total} vs {margin}"
            );
        }
    }
}

#[test]
fn a_model_stored_before_covers_were_kept_loads_without_explanations() {
    let old = fixtures().join("written_by_a952cfb");
    for name in ["xgb", "lgb"] {
        let Model::Boosted(model) = load_version(&old.join(name).join("1")).unwrap().model else {
            panic!("boosted trees expected")
        };
        assert!(!model.explainable(), "{name}");
        assert!(model.contributions(&vec![0.0; model.features]).is_none());
    }
}

//! Loading model folders that are damaged: each is refused with a message that says why.

use mlserve::data::{BundledDataset, load_bundled};
use mlserve::model::{ArtifactError, load_version};
use mlserve::train::{
    Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions, train,
};
use std::path::{Path, PathBuf};

fn write_model(models: &Path) -> PathBuf {
    let data = load_bundled(BundledDataset::Iris);
    let options = TrainOptions {
        params: AlgorithmParams::from_flags(
            Algorithm::DecisionTree,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 1,
        cv: None,
    };
    let trained = train(&data, &options, &NoProgress).unwrap();
    trained.save(models, "iris").unwrap().1
}

#[test]
fn a_written_model_loads_back_equal() {
    let models = tempfile::tempdir().unwrap();
    let data = load_bundled(BundledDataset::Iris);
    let options = TrainOptions {
        params: AlgorithmParams::from_flags(Algorithm::Svm, &HyperParameterFlags::default())
            .unwrap(),
        test_size: 0.2,
        seed: 1,
        cv: None,
    };
    let trained = train(&data, &options, &NoProgress).unwrap();
    let (version, dir) = trained.save(models.path(), "iris").unwrap();
    assert_eq!(version, 1);
    let artifact = load_version(&dir).unwrap();
    assert_eq!(artifact.model.native(), Some(&trained.model));
    assert_eq!(artifact.manifest.features, trained.features);
}

#[test]
fn a_flipped_byte_fails_the_checksum() {
    let models = tempfile::tempdir().unwrap();
    let dir = write_model(models.path());
    let mut bytes = std::fs::read(dir.join("model.bin")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(dir.join("model.bin"), bytes).unwrap();
    let error = load_version(&dir).unwrap_err();
    assert!(matches!(error, ArtifactError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("SHA-256"), "{error}");
}

#[test]
fn a_truncated_model_with_a_matching_checksum_fails_to_decode() {
    let models = tempfile::tempdir().unwrap();
    let dir = write_model(models.path());
    let bytes = std::fs::read(dir.join("model.bin")).unwrap();
    let truncated = &bytes[..bytes.len() - 9];
    std::fs::write(dir.join("model.bin"), truncated).unwrap();
    let manifest = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    let digest = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(truncated))
    };
    let old = manifest
        .lines()
        .find(|l| l.starts_with("sha256 = "))
        .unwrap()
        .to_string();
    std::fs::write(
        dir.join("model.toml"),
        manifest.replace(&old, &format!("sha256 = \"{digest}\"")),
    )
    .unwrap();
    let error = load_version(&dir).unwrap_err();
    assert!(matches!(error, ArtifactError::Corrupt { .. }), "{error}");
}

#[test]
fn a_broken_manifest_is_refused_with_the_reason() {
    let models = tempfile::tempdir().unwrap();
    let dir = write_model(models.path());
    let manifest = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    std::fs::write(
        dir.join("model.toml"),
        manifest.replace("task = \"classification\"", "task = \"regression\""),
    )
    .unwrap();
    let error = load_version(&dir).unwrap_err();
    assert!(matches!(error, ArtifactError::Corrupt { .. }), "{error}");
    assert!(
        error.to_string().contains(
            "model.bin holds a classifier, the manifest says the model is a regression model"
        ),
        "{error}"
    );

    std::fs::write(dir.join("model.toml"), "this is [not toml").unwrap();
    assert!(matches!(
        load_version(&dir).unwrap_err(),
        ArtifactError::Manifest { .. }
    ));
}

#[test]
fn damaged_metrics_are_named_with_what_is_wrong_in_them() {
    let models = tempfile::tempdir().unwrap();
    let dir = write_model(models.path());
    let manifest = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    assert!(manifest.contains("\naccuracy = "), "{manifest}");
    for (damaged, expected) in [
        (
            manifest.replace("\naccuracy = ", "\naccuracy = \"high\"\nwas = "),
            "[metrics] of a classifier",
        ),
        (
            manifest.replace("\naccuracy = ", "\nhit_rate = "),
            "[metrics] has neither accuracy (a classifier's) nor r2 (a regression model's)",
        ),
    ] {
        std::fs::write(dir.join("model.toml"), &damaged).unwrap();
        let error = load_version(&dir).unwrap_err();
        assert!(matches!(error, ArtifactError::Manifest { .. }), "{error}");
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
}

#[test]
fn a_classifier_whose_manifest_describes_a_regression_target_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let dir = write_model(models.path());
    let mut manifest = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    manifest.push_str(
        "\n[target]\nname = \"y\"\nmin = 0.0\nmax = 1.0\nmean = 0.5\nstd = 0.1\n\
         quartiles = [0.25, 0.5, 0.75]\n",
    );
    std::fs::write(dir.join("model.toml"), manifest).unwrap();
    let error = load_version(&dir).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("a classifier's manifest has no [target] and classification metrics"),
        "{error}"
    );
}

#[test]
fn a_missing_model_file_is_an_io_error_naming_it() {
    let models = tempfile::tempdir().unwrap();
    let dir = write_model(models.path());
    std::fs::remove_file(dir.join("model.bin")).unwrap();
    let error = load_version(&dir).unwrap_err();
    assert!(error.to_string().contains("model.bin"), "{error}");
}

#[test]
fn a_manifest_that_declares_other_feature_types_than_the_model_reads_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let dir = write_model(models.path());
    let manifest = std::fs::read_to_string(dir.join("model.toml")).unwrap();
    let edited = manifest.replacen("type = \"number\"", "type = \"date\"", 1);
    assert_ne!(edited, manifest);
    std::fs::write(dir.join("model.toml"), edited).unwrap();
    let error = load_version(&dir).unwrap_err().to_string();
    assert!(
        error.contains("feature 'sepal_length' is declared date"),
        "{error}"
    );
}

//! Versioned model folders: `models/<name>/<version>/{model.toml, model.bin, metrics.json, report.html}`,
//! or `model.onnx` in place of `model.bin` for a model imported from ONNX.
//!
//! A version is written into a hidden folder beside its final place and renamed into place,
//! so a reader (a server watching the repository) never sees half a model.

use super::imported::OnnxRunner;
use super::manifest::{Backend, Manifest, Task};
use super::native::{NativeModel, NativeRegressor, Preprocessor};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MODEL_MAGIC: &[u8; 8] = b"MLSERVE\0";
/// `model.bin` of a classifier.
const MODEL_FORMAT: u16 = 1;
/// `model.bin` of a model that predicts a number: a new format number, so that a release
/// that reads only classifiers refuses it with its reason.
const REGRESSOR_FORMAT: u16 = 2;
/// `model.bin` of gradient-boosted trees (classifier or regressor).
const BOOSTED_FORMAT: u16 = 3;
/// Name of the native model file in a version folder.
pub const NATIVE_MODEL_FILE: &str = "model.bin";
/// Name of the ONNX graph in a version folder.
pub const ONNX_MODEL_FILE: &str = "model.onnx";
const MANIFEST_FILE: &str = "model.toml";

/// A loaded model version.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Its manifest.
    pub manifest: Manifest,
    /// The model itself.
    pub model: Model,
    /// The version folder.
    pub dir: PathBuf,
}

/// A model ready to run, on its backend.
#[derive(Debug, Clone)]
pub enum Model {
    /// mlserve's own inference.
    Native(NativeModel),
    /// mlserve's own inference of a model that predicts a number.
    NativeRegressor(NativeRegressor),
    /// An ONNX graph on ONNX Runtime, with its sessions.
    Onnx(Arc<OnnxRunner>),
    /// Gradient-boosted trees on mlserve's tree engine.
    Boosted(super::boosted::BoostedTrees),
}

impl Model {
    /// The native classifier, if this is one.
    pub fn native(&self) -> Option<&NativeModel> {
        match self {
            Model::Native(model) => Some(model),
            Model::NativeRegressor(_) | Model::Onnx(_) | Model::Boosted(_) => None,
        }
    }
}

/// The model file to write into a new version.
pub enum ModelFile {
    /// A fitted native model, encoded into `model.bin`.
    Native(NativeModel),
    /// A fitted native regression model, encoded into `model.bin`.
    NativeRegressor(NativeRegressor),
    /// An ONNX graph, written as it is into `model.onnx`.
    Onnx(Vec<u8>),
    /// Gradient-boosted trees, encoded into `model.bin`.
    Boosted(super::boosted::BoostedTrees),
}

/// The files of a version, built once its version number is known.
pub struct ArtifactFiles {
    /// The manifest; its `artifact` section is filled in on writing.
    pub manifest: Manifest,
    /// The model.
    pub model: ModelFile,
    /// Other files (metrics.json, report.html), by name.
    pub extra: Vec<(&'static str, Vec<u8>)>,
}

/// Errors reading or writing model folders.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model name cannot be a folder name and a URL segment.
    #[error(
        "invalid model name '{0}': use 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit"
    )]
    InvalidName(String),
    /// model.toml is missing a field, has a wrong one, or is not TOML.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model file does not match its manifest or cannot be decoded.
    #[error("{path}: corrupt model file: {message}")]
    Corrupt {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model file is intact but cannot run here (no ONNX Runtime, a graph it refuses, a
    /// graph that does not fit the manifest).
    #[error("{path}: cannot run: {message}")]
    Unrunnable {
        /// The model file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A new version would do another task than the model's latest one: clients of one model
    /// name read one kind of answer (a label, or a number), and its monitoring one set of
    /// metrics.
    #[error(
        "model '{name}' version {version} is for {existing}; a version for {new} needs a model name of its own"
    )]
    TaskChange {
        /// The model.
        name: String,
        /// Its latest version.
        version: u32,
        /// That version's task.
        existing: &'static str,
        /// The new version's task.
        new: &'static str,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that a model name is safe as a folder name and a URL path segment.
pub fn validate_model_name(name: &str) -> Result<(), ArtifactError> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ArtifactError::InvalidName(name.to_string()))
    }
}

/// The version numbers present under `model_dir`, ascending. Hidden and non-numeric entries are ignored.
pub fn list_versions(model_dir: &Path) -> Result<Vec<u32>, ArtifactError> {
    let entries = match std::fs::read_dir(model_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(model_dir)(error)),
    };
    let mut versions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(model_dir))?;
        let is_dir = entry.file_type().map_err(io_error(model_dir))?.is_dir();
        let version = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok());
        if let (true, Some(version)) = (is_dir, version) {
            versions.push(version);
        }
    }
    versions.sort_unstable();
    Ok(versions)
}

/// Encodes the native model with a magic header and format version.
fn encode_model(
    format: u16,
    model: &impl super::native::stored::WithTrees,
) -> Result<Vec<u8>, postcard::Error> {
    Ok(with_header(
        format,
        super::native::stored::to_payload(model)?,
    ))
}

/// `payload` behind model.bin's magic bytes and format number.
fn with_header(format: u16, payload: Vec<u8>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + 10);
    bytes.extend_from_slice(MODEL_MAGIC);
    bytes.extend_from_slice(&format.to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

/// The payload of a `model.bin` written in `expected` format.
fn model_payload(bytes: &[u8], expected: u16) -> Result<&[u8], String> {
    let body = bytes
        .strip_prefix(MODEL_MAGIC)
        .ok_or("not an mlserve model file (bad magic bytes)")?;
    let (format, payload) = body.split_at_checked(2).ok_or("truncated header")?;
    let format = u16::from_le_bytes([format[0], format[1]]);
    match format {
        _ if format == expected => Ok(payload),
        MODEL_FORMAT | REGRESSOR_FORMAT | BOOSTED_FORMAT => Err(format!(
            "model.bin holds a {}, the manifest says the model is a {}",
            kind_of_format(format),
            kind_of_format(expected)
        )),
        _ => Err(format!(
            "model format {format} is not supported by this mlserve (it reads formats \
             {MODEL_FORMAT} to {BOOSTED_FORMAT})"
        )),
    }
}

fn kind_of_format(format: u16) -> &'static str {
    match format {
        REGRESSOR_FORMAT => "regression model",
        BOOSTED_FORMAT => "boosted tree model",
        _ => "classifier",
    }
}

fn decode_model(bytes: &[u8]) -> Result<NativeModel, String> {
    let payload = model_payload(bytes, MODEL_FORMAT)?;
    let model: NativeModel = super::native::stored::from_payload(payload)?;
    model.check_consistency()?;
    Ok(model)
}

fn decode_regressor(bytes: &[u8]) -> Result<NativeRegressor, String> {
    let payload = model_payload(bytes, REGRESSOR_FORMAT)?;
    let model: NativeRegressor = super::native::stored::from_payload(payload)?;
    model.check_consistency()?;
    Ok(model)
}

/// Writes `files` as the next version of `name` under `models_dir` and returns the version and its folder.
///
/// `build` is called with the version number chosen; if another writer takes that number
/// first, it is called again with the next one.
pub fn write_new_version(
    models_dir: &Path,
    name: &str,
    mut build: impl FnMut(u32) -> ArtifactFiles,
) -> Result<(u32, PathBuf), ArtifactError> {
    validate_model_name(name)?;
    let model_dir = models_dir.join(name);
    std::fs::create_dir_all(&model_dir).map_err(io_error(&model_dir))?;
    let latest = list_versions(&model_dir)?.last().copied();
    let mut version = latest.map_or(1, |last| last + 1);
    loop {
        let files = build(version);
        if let Some(latest) = latest {
            check_same_task(&model_dir, name, latest, files.manifest.task)?;
        }
        let staging = model_dir.join(format!(".incoming-{version}-{}", std::process::id()));
        let result = write_files(&staging, files)
            .and_then(|()| publish(&staging, &model_dir.join(version.to_string())));
        match result {
            Ok(Some(final_dir)) => return Ok((version, final_dir)),
            Ok(None) => version += 1, // taken by a concurrent writer
            Err(error) => {
                // Best effort: the staging folder is hidden from readers anyway.
                let _ = std::fs::remove_dir_all(&staging);
                return Err(error);
            }
        }
    }
}

/// Refuses a new version of another task than version `latest` of the model (when that
/// version's manifest can be read: a damaged one says nothing).
fn check_same_task(
    model_dir: &Path,
    name: &str,
    latest: u32,
    new: Task,
) -> Result<(), ArtifactError> {
    let manifest = model_dir.join(latest.to_string()).join("model.toml");
    let existing = std::fs::read_to_string(manifest)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .map(|table| {
            // Manifests from before tasks were named are classifiers.
            table
                .get("task")
                .and_then(|task| task.as_str())
                .unwrap_or(Task::Classification.name())
                .to_string()
        });
    match existing.as_deref() {
        Some(task) if task != new.name() => Err(ArtifactError::TaskChange {
            name: name.to_string(),
            version: latest,
            existing: if task == Task::Regression.name() {
                Task::Regression.name()
            } else {
                Task::Classification.name()
            },
            new: new.name(),
        }),
        _ => Ok(()),
    }
}

fn write_files(staging: &Path, mut files: ArtifactFiles) -> Result<(), ArtifactError> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(io_error(staging))?;
    }
    std::fs::create_dir_all(staging).map_err(io_error(staging))?;
    let (file_name, model_bytes) = match files.model {
        ModelFile::Native(model) => (
            NATIVE_MODEL_FILE,
            encode_model(MODEL_FORMAT, &model).map_err(encode_error(staging))?,
        ),
        ModelFile::NativeRegressor(model) => (
            NATIVE_MODEL_FILE,
            encode_model(REGRESSOR_FORMAT, &model).map_err(encode_error(staging))?,
        ),
        ModelFile::Onnx(bytes) => (ONNX_MODEL_FILE, bytes),
        ModelFile::Boosted(model) => (
            NATIVE_MODEL_FILE,
            with_header(
                BOOSTED_FORMAT,
                super::boosted::stored::to_payload(&model).map_err(encode_error(staging))?,
            ),
        ),
    };
    files.manifest.artifact.file = file_name.to_string();
    files.manifest.artifact.sha256 = format!("{:x}", Sha256::digest(&model_bytes));
    files.manifest.artifact.background_sha256 = files
        .extra
        .iter()
        .find(|(name, _)| *name == super::explain::background::BACKGROUND_FILE)
        .map(|(_, bytes)| format!("{:x}", Sha256::digest(bytes)));
    let manifest = toml::to_string(&files.manifest).map_err(|error| ArtifactError::Manifest {
        path: staging.join(MANIFEST_FILE),
        message: error.to_string(),
    })?;
    write_synced(&staging.join(file_name), &model_bytes)?;
    for (file_name, bytes) in &files.extra {
        write_synced(&staging.join(file_name), bytes)?;
    }
    // The manifest goes last: a folder with a manifest has everything the manifest names.
    write_synced(&staging.join(MANIFEST_FILE), manifest.as_bytes())
}

fn encode_error(staging: &Path) -> impl Fn(postcard::Error) -> ArtifactError + '_ {
    move |error| ArtifactError::Corrupt {
        path: staging.join(NATIVE_MODEL_FILE),
        message: error.to_string(),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    let mut file = std::fs::File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// Renames the staging folder into place; `None` when the version already exists.
fn publish(staging: &Path, final_dir: &Path) -> Result<Option<PathBuf>, ArtifactError> {
    if final_dir.exists() {
        std::fs::remove_dir_all(staging).map_err(io_error(staging))?;
        return Ok(None);
    }
    match std::fs::rename(staging, final_dir) {
        Ok(()) => Ok(Some(final_dir.to_path_buf())),
        // rename(2) refuses to replace a non-empty folder: someone else published this version.
        Err(error) if final_dir.exists() => {
            tracing::debug!(%error, "version folder taken concurrently");
            std::fs::remove_dir_all(staging).map_err(io_error(staging))?;
            Ok(None)
        }
        Err(error) => Err(io_error(final_dir)(error)),
    }
}

/// Loads and checks one version folder: the manifest parses, the model file matches its
/// checksum, decodes, and agrees with the manifest.
pub fn load_version(dir: &Path) -> Result<Artifact, ArtifactError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).map_err(io_error(&manifest_path))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|error| ArtifactError::Manifest {
        path: manifest_path.clone(),
        message: error.message().to_string(),
    })?;
    let model_path = dir.join(&manifest.artifact.file);
    if manifest.artifact.file.contains(['/', '\\']) {
        return Err(ArtifactError::Manifest {
            path: manifest_path,
            message: "artifact.file must be a file name in the version folder".to_string(),
        });
    }
    let bytes = std::fs::read(&model_path).map_err(io_error(&model_path))?;
    let corrupt = |message: String| ArtifactError::Corrupt {
        path: model_path.clone(),
        message,
    };
    let digest = format!("{:x}", Sha256::digest(&bytes));
    if digest != manifest.artifact.sha256 {
        return Err(corrupt(format!(
            "SHA-256 is {digest}, the manifest says {}",
            manifest.artifact.sha256
        )));
    }
    let model = match manifest.backend {
        Backend::Native if manifest.task == Task::Regression => {
            Model::NativeRegressor(load_regressor(&manifest, &bytes).map_err(corrupt)?)
        }
        Backend::Native => Model::Native(load_native(&manifest, &bytes).map_err(corrupt)?),
        Backend::Boosted => {
            let payload = model_payload(&bytes, BOOSTED_FORMAT).map_err(corrupt)?;
            let model = super::boosted::stored::from_payload(payload).map_err(corrupt)?;
            model.check_against(&manifest).map_err(corrupt)?;
            Model::Boosted(model.compiled())
        }
        Backend::Onnx => {
            let runner = OnnxRunner::load(&model_path, &bytes, &manifest).map_err(|message| {
                ArtifactError::Unrunnable {
                    path: model_path.clone(),
                    message,
                }
            })?;
            Model::Onnx(Arc::new(runner))
        }
    };
    Ok(Artifact {
        manifest,
        model,
        dir: dir.to_path_buf(),
    })
}

/// Decodes `model.bin` and checks it against the manifest.
fn load_native(manifest: &Manifest, bytes: &[u8]) -> Result<NativeModel, String> {
    let model = decode_model(bytes)?;
    if manifest.target.is_some()
        || matches!(
            manifest.metrics,
            Some(super::manifest::HeldOutMetrics::Regression(_))
        )
    {
        return Err(
            "a classifier's manifest has no [target] and classification metrics".to_string(),
        );
    }
    if model.n_classes != manifest.labels.len()
        || model.preprocessor.inputs.len() != manifest.features.len()
    {
        return Err(format!(
            "the model has {} classes and {} inputs, the manifest {} labels and {} features",
            model.n_classes,
            model.preprocessor.inputs.len(),
            manifest.labels.len(),
            manifest.features.len()
        ));
    }
    check_inputs_match_features(manifest, &model.preprocessor)?;
    Ok(model)
}

/// Decodes a regression model's `model.bin` and checks it against the manifest: no labels,
/// the target described, the inputs matching the features.
fn load_regressor(manifest: &Manifest, bytes: &[u8]) -> Result<NativeRegressor, String> {
    let model = decode_regressor(bytes)?;
    if !manifest.labels.is_empty()
        || manifest.target.is_none()
        || matches!(
            manifest.metrics,
            Some(super::manifest::HeldOutMetrics::Classification(_))
        )
    {
        return Err(
            "a regression model's manifest has no labels and describes its [target]".to_string(),
        );
    }
    if model.preprocessor.inputs.len() != manifest.features.len() {
        return Err(format!(
            "the model has {} inputs, the manifest {} features",
            model.preprocessor.inputs.len(),
            manifest.features.len()
        ));
    }
    check_inputs_match_features(manifest, &model.preprocessor)?;
    Ok(model)
}

/// The native model reads numbers and one-hot categories, never nulls: a manifest that
/// declares anything else for it cannot be served.
fn check_inputs_match_features(
    manifest: &Manifest,
    preprocessor: &Preprocessor,
) -> Result<(), String> {
    use super::native::InputEncoding;
    use crate::data::ColumnKind;
    for (feature, encoding) in manifest.features.iter().zip(&preprocessor.inputs) {
        let fits = !feature.nullable
            && match encoding {
                InputEncoding::Numeric => {
                    matches!(
                        feature.kind,
                        ColumnKind::Number | ColumnKind::Integer | ColumnKind::Boolean
                    )
                }
                InputEncoding::OneHot(categories) => {
                    feature.kind == ColumnKind::Categorical
                        && feature.categories.as_ref() == Some(categories)
                }
            };
        if !fits {
            return Err(format!(
                "feature '{}' is declared {}{} in the manifest, which the native model's inputs do not match",
                feature.name,
                if feature.nullable { "nullable " } else { "" },
                feature.kind.name()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_checked() {
        for good in ["iris", "breast_cancer", "a", "model-2.1"] {
            assert!(validate_model_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "../up",
            "a/b",
            "with space",
            "ü",
            &"x".repeat(65),
        ] {
            assert!(validate_model_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_ignore_hidden_and_non_numeric_entries() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1", "10", "2", ".incoming-3-1", "notes"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("7"), b"a file, not a version").unwrap();
        assert_eq!(list_versions(dir.path()).unwrap(), [1, 2, 10]);
        assert_eq!(
            list_versions(&dir.path().join("absent")).unwrap(),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn decoding_refuses_garbage_and_other_formats() {
        assert!(
            decode_model(b"PK\x03\x04 a zip file")
                .unwrap_err()
                .contains("magic")
        );
        let mut future = MODEL_MAGIC.to_vec();
        future.extend_from_slice(&9u16.to_le_bytes());
        assert!(decode_model(&future).unwrap_err().contains("format 9"));
        let mut truncated = MODEL_MAGIC.to_vec();
        truncated.extend_from_slice(&MODEL_FORMAT.to_le_bytes());
        truncated.push(3);
        assert!(decode_model(&truncated).is_err());
    }
}

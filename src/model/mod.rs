//! Model artifacts: the manifest and schema, the native model and its inference, imported
//! ONNX models, input validation, and the repository of versioned folders.

mod algorithm;
mod artifact;
pub mod batch;
pub mod boosted;
pub mod counters;
pub mod explain;
mod explained;
pub mod imported;
mod manifest;
pub mod native;
pub mod onnx;
mod prediction;
pub mod readiness;
pub mod repository;
pub mod sample;
mod scoring;
pub mod validate;

pub use algorithm::{Algorithm, AlgorithmParams, EarlyStopping, Gamma, MaxFeatures};
pub use artifact::{
    Artifact, ArtifactError, ArtifactFiles, Model, ModelFile, NATIVE_MODEL_FILE, ONNX_MODEL_FILE,
    list_versions, load_version, validate_model_name, write_new_version,
};
pub use counters::Tally;
pub use explain::{Contributions, Explainer, Explanation, Method, Unit};
pub use manifest::{
    ArtifactInfo, Backend, ExampleValue, FeatureSchema, HeldOutMetrics, Histogram,
    ImportProvenance, Manifest, MetricsSummary, OnnxBinding, OnnxInput, Provenance,
    RegressionMetrics, TargetSchema, Task,
};
pub use native::{FeatureValue, NativeModel};
pub use prediction::{PredictFailure, Prediction, argmax};
pub use readiness::{ModelHealth, ModelReadiness, Readiness};
pub use repository::{Catalog, LoadedModel, ModelEntry, ReloadReport, Repository, VersionSlot};
pub use scoring::{Outcome, PredictError, Scored};
pub use validate::{FieldError, RawValue, UnknownFields, ValidRow, Validator, accepted_range};

//! Model artifacts: the manifest and schema, the native model and its inference, input
//! validation, and the repository of versioned folders.

mod artifact;
pub mod batch;
mod manifest;
pub mod native;
pub mod onnx;
pub mod repository;
pub mod sample;
pub mod validate;

pub use artifact::{
    Artifact, ArtifactError, ArtifactFiles, list_versions, load_version, validate_model_name,
    write_new_version,
};
pub use manifest::{
    ArtifactInfo, Backend, ExampleValue, FeatureSchema, Histogram, Manifest, MetricsSummary,
    Provenance, Task,
};
pub use native::{FeatureValue, NativeModel};
pub use repository::{
    Catalog, LoadedModel, ModelEntry, PredictError, ReloadReport, Repository, VersionSlot,
};
pub use validate::{FieldError, RawValue, UnknownFields, ValidRow, Validator};

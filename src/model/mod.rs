//! Model artifacts: the manifest and schema, the native model and its inference, and the
//! versioned folders of a model repository.

mod artifact;
mod manifest;
pub mod native;

pub use artifact::{
    Artifact, ArtifactError, ArtifactFiles, list_versions, load_version, validate_model_name,
    write_new_version,
};
pub use manifest::{
    ArtifactInfo, Backend, ExampleValue, FeatureSchema, Manifest, MetricsSummary, Provenance, Task,
};
pub use native::{FeatureValue, NativeModel};

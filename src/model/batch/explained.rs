//! The explanation columns of a batch run (`mlserve predict --explain`): `base_value` and one
//! `contribution_<feature>` per schema feature for a model with one output (a regressor, a
//! binary classifier towards its second class); `base_value_<label>` and
//! `contribution_<label>_<feature>` per class for a multiclass model.

use crate::model::{Explainer, Explanation, LoadedModel};

/// The column names, in the order [`values`] writes them.
pub fn columns(model: &LoadedModel, explainer: &Explainer) -> Vec<String> {
    let manifest = &model.artifact.manifest;
    let features = &manifest.features;
    let of_output = |suffix: &str| {
        std::iter::once(format!("base_value{suffix}"))
            .chain(
                features
                    .iter()
                    .map(move |feature| format!("contribution{suffix}_{}", feature.name)),
            )
            .collect::<Vec<_>>()
    };
    if explainer.outputs() == 1 {
        return of_output("");
    }
    manifest
        .labels
        .iter()
        .flat_map(|label| of_output(&format!("_{label}")))
        .collect()
}

/// One row's explanation as cells: per output, the base value then each feature's contribution.
pub fn values(explanation: &Explanation) -> impl Iterator<Item = f64> + '_ {
    explanation.outputs.iter().flat_map(|output| {
        std::iter::once(output.base_value).chain(output.features.iter().copied())
    })
}

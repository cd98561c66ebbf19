//! An MLflow model folder (an `MLmodel` file beside the model, as `mlflow.<flavor>.save_model`
//! and `log_model` write it): the flavor that keeps the library's own file (XGBoost, LightGBM,
//! ONNX) names it, and the signature's inputs, when there are some, name the features. A folder
//! whose only model is a pickle is refused with how to save the library's own file.

use super::ImportError;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// The model file an MLflow folder keeps, and its signature's input names.
#[derive(Debug)]
pub struct MlflowModel {
    /// The library's own model file.
    pub file: PathBuf,
    /// The flavor it came from (`xgboost`, `lightgbm`, `onnx`).
    pub flavor: String,
    /// The signature's input names, in order, when it has a column-based one.
    pub inputs: Option<Vec<String>>,
}

/// Flavors whose `data` is the library's own file, in the order they are preferred.
const FLAVORS: [&str; 3] = ["xgboost", "lightgbm", "onnx"];

/// Reads the `MLmodel` of folder `dir`.
pub fn read(dir: &Path) -> Result<MlflowModel, ImportError> {
    let path = dir.join("MLmodel");
    let refused = |message: String| ImportError::Unreadable {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ImportError::Read {
        path: path.clone(),
        source,
    })?;
    let documents =
        YamlLoader::load_from_str(&text).map_err(|e| refused(format!("not valid YAML: {e}")))?;
    let document = documents
        .first()
        .ok_or_else(|| refused("empty".to_string()))?;
    let flavors = &document["flavors"];
    let Some(flavor) = FLAVORS.iter().find(|f| !flavors[**f].is_badvalue()) else {
        let names: Vec<String> = flavors
            .as_hash()
            .map(|h| {
                h.keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        return Err(refused(format!(
            "its flavors ({}) keep no XGBoost, LightGBM or ONNX file: a pickled model cannot \
             be served. Save the library's own file instead (XGBoost: model.save_model(\"model.json\"); \
             LightGBM: booster.save_model(\"model.txt\"); scikit-learn: export to ONNX with skl2onnx)",
            names.join(", ")
        )));
    };
    let data = flavors[*flavor]["data"]
        .as_str()
        .or_else(|| flavors[*flavor]["model_file"].as_str())
        .ok_or_else(|| refused(format!("the {flavor} flavor names no data file")))?;
    if [".pkl", ".pickle", ".joblib"]
        .iter()
        .any(|end| data.ends_with(end))
    {
        return Err(refused(format!(
            "the {flavor} flavor keeps a pickle ('{data}'), which cannot be served safely: \
             save the library's own file instead (XGBoost: model.save_model(\"model.json\"); \
             LightGBM: log the Booster, or booster.save_model(\"model.txt\"))"
        )));
    }
    if Path::new(data).is_absolute() || data.split(['/', '\\']).any(|part| part == "..") {
        return Err(refused(format!(
            "the {flavor} flavor's file '{data}' is outside the model folder"
        )));
    }
    Ok(MlflowModel {
        file: dir.join(data),
        flavor: flavor.to_string(),
        inputs: signature_inputs(document).map_err(refused)?,
    })
}

/// The input names of a column-based signature (`inputs` is a JSON list of `{"name", "type"}`);
/// `None` without a signature, or for a tensor-based one, whose inputs name no columns.
fn signature_inputs(document: &Yaml) -> Result<Option<Vec<String>>, String> {
    let Some(inputs) = document["signature"]["inputs"].as_str() else {
        return Ok(None);
    };
    let parsed: serde_json::Value = serde_json::from_str(inputs)
        .map_err(|e| format!("the signature's inputs are not JSON: {e}"))?;
    let names: Option<Vec<String>> = parsed
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| item["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or(None);
    Ok(names.filter(|n| !n.is_empty()))
}

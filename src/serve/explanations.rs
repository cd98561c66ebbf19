//! The native JSON form of an explanation, shared by the native API and KServe V1's
//! `:explain`: `{"method", "unit", "exact", "base_value", "features": {name: value}}` for a model
//! with one output (a regressor; a binary classifier, towards its second class, named in
//! `"class"`), and a map from each class label to such an object for a multiclass model.

use crate::model::{Contributions, Explanation, LoadedModel};
use serde::Serialize;
use serde::ser::SerializeMap;

/// One row's explanation as the native API writes it.
pub struct ExplanationJson<'a> {
    /// The model that made it: its feature names and labels.
    pub model: &'a LoadedModel,
    /// The explanation.
    pub explanation: &'a Explanation,
}

struct OutputJson<'a> {
    model: &'a LoadedModel,
    explanation: &'a Explanation,
    output: &'a Contributions,
    /// The class a binary classifier's one output is towards.
    class: Option<&'a str>,
}

impl Serialize for OutputJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("method", self.explanation.method.name())?;
        map.serialize_entry("unit", self.explanation.unit.name())?;
        map.serialize_entry("exact", &self.explanation.exact)?;
        if let Some(class) = self.class {
            map.serialize_entry("class", class)?;
        }
        map.serialize_entry("base_value", &self.output.base_value)?;
        map.serialize_entry(
            "features",
            &Named {
                model: self.model,
                values: &self.output.features,
            },
        )?;
        map.end()
    }
}

/// Feature name → contribution, in schema order.
struct Named<'a> {
    model: &'a LoadedModel,
    values: &'a [f64],
}

impl Serialize for Named<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let features = &self.model.artifact.manifest.features;
        let mut map = serializer.serialize_map(Some(features.len()))?;
        for (feature, value) in features.iter().zip(self.values) {
            map.serialize_entry(&feature.name, value)?;
        }
        map.end()
    }
}

impl Serialize for ExplanationJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let labels = &self.model.artifact.manifest.labels;
        let output = |output, class| OutputJson {
            model: self.model,
            explanation: self.explanation,
            output,
            class,
        };
        match self.explanation.outputs.as_slice() {
            [one] => output(one, labels.get(1).map(String::as_str)).serialize(serializer),
            many => {
                let mut map = serializer.serialize_map(Some(many.len()))?;
                for (label, contributions) in labels.iter().zip(many) {
                    map.serialize_entry(label, &output(contributions, None))?;
                }
                map.end()
            }
        }
    }
}

//! The explanation under an answer of the prediction form: the ten largest contributions as a
//! horizontal bar chart (server-rendered SVG, hidden from screen readers) and the same numbers
//! as a table, each pushing towards or away from the predicted class or value.

use super::numbers::format_value;
use crate::model::{LoadedModel, Outcome, Prediction, Unit};

/// How many contributions the chart shows; the rest are summed in one line.
const SHOWN: usize = 10;
/// The chart's geometry, in SVG units: a row's height, where bars start (after the names) and
/// how far they reach from the axis either way.
const ROW: f64 = 18.0;
const AXIS: f64 = 222.0;
const REACH: f64 = 46.0;

/// One contribution: a bar of the chart and a row of the table.
pub struct ContributionBar {
    /// The feature.
    pub feature: String,
    /// Its contribution, as text with its sign.
    pub text: String,
    /// Whether it pushes towards the predicted class or value.
    pub towards: bool,
    /// The bar's left edge and width, and the row's baseline, in SVG units.
    pub x: String,
    /// Width of the bar.
    pub width: String,
    /// Top of the row.
    pub y: String,
    /// Baseline of the row's text.
    pub text_y: String,
}

/// An answer's explanation as the form shows it.
pub struct ExplanationView {
    /// What the chart shows, in words: "Why setosa: the features that pushed the answer towards
    /// it (+) or away from it (−)", or for a number "What raised (+) or lowered (−) the
    /// predicted price".
    pub caption: String,
    /// A pushing contribution's direction in words ("towards setosa", "raises price").
    pub plus: String,
    /// A pulling one's ("away from setosa", "lowers price").
    pub minus: String,
    /// The method and unit, in words.
    pub method: String,
    /// The base value, as text.
    pub base: String,
    /// The largest contributions, largest first.
    pub bars: Vec<ContributionBar>,
    /// The other features, with their summed contribution as text ("" when none).
    pub rest: String,
    /// The chart's height in SVG units.
    pub height: String,
    /// x of the axis.
    pub axis: String,
}

/// The explanation of `prediction`, when it has one, turned towards what the model predicted:
/// the predicted class's output for a multiclass model; for a binary classifier, whose one
/// output is towards the second class, its opposite when the first class is predicted.
pub fn explanation_view(model: &LoadedModel, prediction: &Prediction) -> Option<ExplanationView> {
    let explanation = prediction.explanation.as_ref()?;
    let manifest = &model.artifact.manifest;
    let (output, towards, flip) = match (&prediction.outcome, explanation.outputs.len()) {
        (Outcome::Class { class, .. }, 1) => (0, manifest.labels.get(*class)?.clone(), *class == 0),
        (Outcome::Class { class, .. }, _) => (*class, manifest.labels.get(*class)?.clone(), false),
        (Outcome::Value(_), _) => (0, target_name(model), false),
    };
    let (caption, plus, minus) = match prediction.outcome {
        Outcome::Class { .. } => (
            format!(
                "Why {towards}: the features that pushed the answer towards it (+) or away from it (−)"
            ),
            format!("towards {towards}"),
            format!("away from {towards}"),
        ),
        Outcome::Value(_) => (
            format!("What raised (+) or lowered (−) the predicted {towards}"),
            format!("raises {towards}"),
            format!("lowers {towards}"),
        ),
    };
    let contributions = explanation.outputs.get(output)?;
    let sign = if flip { -1.0 } else { 1.0 };
    let base = match (flip, explanation.unit) {
        (true, Unit::Probability) => 1.0 - contributions.base_value,
        (true, _) => -contributions.base_value,
        (false, _) => contributions.base_value,
    };
    let mut ranked: Vec<(&str, f64)> = manifest
        .features
        .iter()
        .zip(&contributions.features)
        .map(|(feature, &value)| (feature.name.as_str(), sign * value))
        .collect();
    ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let largest = ranked.first().map_or(0.0, |(_, v)| v.abs());
    let scale = if largest > 0.0 { REACH / largest } else { 0.0 };
    let bars: Vec<ContributionBar> = ranked
        .iter()
        .take(SHOWN)
        .enumerate()
        .map(|(row, &(feature, value))| bar(row, feature, value, scale))
        .collect();
    let rest: f64 = ranked.iter().skip(SHOWN).map(|(_, v)| v).sum();
    let others = ranked.len().saturating_sub(SHOWN);
    Some(ExplanationView {
        caption,
        plus,
        minus,
        method: describe(explanation.method.name(), explanation.unit),
        base: format_value(base),
        rest: if others == 0 {
            String::new()
        } else {
            format!("{others} other features: {} in all", signed(rest))
        },
        height: format!("{}", bars.len() as f64 * ROW),
        axis: format!("{AXIS}"),
        bars,
    })
}

fn bar(row: usize, feature: &str, value: f64, scale: f64) -> ContributionBar {
    let width = value.abs() * scale;
    let x = if value >= 0.0 { AXIS } else { AXIS - width };
    let top = row as f64 * ROW;
    ContributionBar {
        feature: feature.to_string(),
        text: signed(value),
        towards: value >= 0.0,
        x: format!("{x:.2}"),
        width: format!("{width:.2}"),
        y: format!("{:.1}", top + 3.5),
        text_y: format!("{:.1}", top + 13.0),
    }
}

fn signed(value: f64) -> String {
    if value >= 0.0 {
        format!("+{}", format_value(value))
    } else {
        format_value(value)
    }
}

fn target_name(model: &LoadedModel) -> String {
    model
        .artifact
        .manifest
        .target
        .as_ref()
        .map_or_else(|| "the prediction".to_string(), |t| t.name.clone())
}

fn describe(method: &str, unit: Unit) -> String {
    let method = match method {
        "linear" => "exact SHAP values of the linear model",
        "kernel" => {
            "SHAP values estimated by KernelSHAP against the training data's background rows"
        }
        _ => "exact SHAP values of the trees (path-dependent TreeSHAP)",
    };
    let unit = match unit {
        Unit::LogOdds => "log-odds",
        Unit::RawScore => "the model's raw score (before its link)",
        Unit::LogValue => "the log of the predicted value",
        Unit::Probability => "probability",
        Unit::Value => "the target's unit",
    };
    format!("{method}, in {unit}")
}

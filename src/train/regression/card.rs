//! A regression model's card: held-out metrics, predicted against true values (a scatter with
//! the diagonal) and a histogram of the residuals, drawn as inline SVG like the classifier's
//! charts.

use super::RegressionMetricsFile;
use crate::model::Manifest;
use crate::train::report::{
    card_page, data_section, escape, features_section, importance_section, number,
};
use std::fmt::Write;

/// Side of each chart, and its padding, in pixels.
const SIZE: f64 = 300.0;
const PAD: f64 = 40.0;
/// Residual histogram bins.
const BINS: usize = 20;

/// The whole card page.
pub fn model_card(manifest: &Manifest, metrics: &RegressionMetricsFile) -> String {
    card_page(manifest, &model_card_sections(manifest, metrics))
}

/// The card's sections as an HTML fragment, for pages that bring their own frame.
pub fn model_card_sections(manifest: &Manifest, metrics: &RegressionMetricsFile) -> String {
    let mut html = String::with_capacity(16 * 1024);
    data_section(&mut html, manifest);
    metrics_section(&mut html, metrics);
    let e = &metrics.evaluation;
    html.push_str(
        "<h2>Predicted against true values, and the residuals</h2><div class=\"charts\">",
    );
    html.push_str(&scatter_svg(&e.test_actual, &e.test_predicted));
    html.push_str(&residuals_svg(&e.test_actual, &e.test_predicted));
    html.push_str("</div>");
    importance_section(&mut html, metrics.importance.as_ref());
    features_section(&mut html, manifest);
    html
}

fn metrics_section(html: &mut String, metrics: &RegressionMetricsFile) {
    let m = &metrics.evaluation.metrics;
    let mape = match m.mape {
        Some(mape) => format!("{:.2}%", mape * 100.0),
        None => "not defined: a true value is 0".to_string(),
    };
    let _ = write!(
        html,
        "<h2>Metrics on the held-out split</h2><table><tr><th class=\"l\">R²</th><td>{}</td></tr>\
         <tr><th class=\"l\">RMSE</th><td>{}</td></tr><tr><th class=\"l\">MAE</th><td>{}</td></tr>\
         <tr><th class=\"l\">MAPE</th><td>{}</td></tr>\
         <tr><th class=\"l\">median absolute error</th><td>{}</td></tr>",
        number(m.r2),
        number(m.rmse),
        number(m.mae),
        escape(&mape),
        number(m.median_absolute_error),
    );
    if let Some(cv) = &metrics.cv {
        for (name, scores) in [("R²", &cv.r2), ("RMSE", &cv.rmse), ("MAE", &cv.mae)] {
            let _ = write!(
                html,
                "<tr><th class=\"l\">{}-fold CV {name}</th><td>{} ± {}</td></tr>",
                cv.folds,
                number(scores.mean),
                number(scores.std)
            );
        }
    }
    html.push_str("</table>");
}

/// The smallest and largest of some values, widened when they are equal.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    match (low.is_finite(), high.is_finite()) {
        (true, true) if high > low => (low, high),
        (true, true) => (low - 0.5, high + 0.5),
        _ => (0.0, 1.0),
    }
}

fn chart_start(label: &str, x_title: &str, y_title: &str) -> String {
    let plot = SIZE - 2.0 * PAD;
    format!(
        r##"<figure><svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" role="img" aria-label="{label}" font-family="sans-serif" font-size="11"><rect x="{PAD}" y="{PAD}" width="{plot}" height="{plot}" fill="none" stroke="#9aa4b2"/><text x="{cx}" y="{bottom}" text-anchor="middle">{x_title}</text><text x="12" y="{cx}" text-anchor="middle" transform="rotate(-90 12 {cx})">{y_title}</text>"##,
        cx = SIZE / 2.0,
        bottom = SIZE - 8.0,
    )
}

/// Held-out rows as points (true value across, predicted up) on one scale, with the diagonal
/// where a perfect model's points would lie.
fn scatter_svg(actual: &[f64], predicted: &[f64]) -> String {
    let (low, high) = range(actual.iter().chain(predicted).copied());
    let plot = SIZE - 2.0 * PAD;
    let to_x = |v: f64| PAD + (v - low) / (high - low) * plot;
    let to_y = |v: f64| SIZE - PAD - (v - low) / (high - low) * plot;
    let mut svg = chart_start(
        "predicted against true values",
        "true value",
        "predicted value",
    );
    let _ = write!(
        svg,
        r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#c3c9d1" stroke-dasharray="4 4"/>"##,
        x0 = to_x(low),
        y0 = to_y(low),
        x1 = to_x(high),
        y1 = to_y(high),
    );
    for (a, p) in actual.iter().zip(predicted) {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#2563eb" fill-opacity="0.6"/>"##,
            to_x(*a),
            to_y(*p)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{PAD}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
         </svg><figcaption>{} held-out rows; dashed: a perfect model</figcaption></figure>",
        SIZE - PAD + 14.0,
        escape(&short(low)),
        SIZE - PAD,
        SIZE - PAD + 14.0,
        escape(&short(high)),
        actual.len()
    );
    svg
}

/// Residuals (true − predicted) in equal-width bins, with a mark at zero.
fn residuals_svg(actual: &[f64], predicted: &[f64]) -> String {
    let residuals: Vec<f64> = actual.iter().zip(predicted).map(|(a, p)| a - p).collect();
    let (low, high) = range(residuals.iter().copied().chain([0.0]));
    let width = (high - low) / BINS as f64;
    let mut counts = [0usize; BINS];
    for r in &residuals {
        let bin = (((r - low) / width) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let plot = SIZE - 2.0 * PAD;
    let bar = plot / BINS as f64;
    let mut svg = chart_start("histogram of residuals", "true − predicted", "rows");
    for (bin, &count) in counts.iter().enumerate() {
        let height = count as f64 / most * plot;
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="#2563eb" fill-opacity="0.7"><title>{count} rows</title></rect>"##,
            PAD + bin as f64 * bar + 0.5,
            SIZE - PAD - height,
            (bar - 1.0).max(0.5),
        );
    }
    let zero = PAD + (0.0 - low) / (high - low) * plot;
    let _ = write!(
        svg,
        r##"<line x1="{zero:.1}" y1="{PAD}" x2="{zero:.1}" y2="{:.1}" stroke="#dc2626" stroke-dasharray="4 4"/><text x="{PAD}" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text></svg><figcaption>Residuals in {BINS} bins; dashed: zero</figcaption></figure>"##,
        SIZE - PAD,
        SIZE - PAD + 14.0,
        escape(&short(low)),
        SIZE - PAD,
        SIZE - PAD + 14.0,
        escape(&short(high)),
    );
    svg
}

/// A number short enough for an axis end.
fn short(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

//! report.html: a self-contained model card with the confusion matrix and ROC curves drawn
//! as inline SVG. Hand-written SVG: two small charts do not justify a plotting crate.

use super::MetricsFile;
use crate::model::Manifest;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn number(value: f64) -> String {
    format!("{value:.4}")
}

/// Renders the model card of a version; `metrics` is None for a model imported without an
/// evaluation.
pub fn model_card(manifest: &Manifest, metrics: Option<&MetricsFile>) -> String {
    card_page(manifest, &model_card_sections(manifest, metrics))
}

/// A whole model card page around its `sections` (an HTML fragment).
pub(crate) fn card_page(manifest: &Manifest, sections: &str) -> String {
    let title = format!("{} v{}", escape(&manifest.name), manifest.version);
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model card: {title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2430;line-height:1.45}}
h1{{margin-bottom:.2rem}} .sub{{color:#5a6472;margin-top:0}}
table{{border-collapse:collapse;margin:.6rem 0 1.4rem}} th,td{{border:1px solid #d5dae1;padding:.3rem .6rem;text-align:right}}
th{{background:#f1f4f8}} td.l,th.l{{text-align:left}} .charts{{display:flex;flex-wrap:wrap;gap:2rem}}
figure{{margin:0}} figcaption{{font-size:.9rem;color:#5a6472}}
.visually-hidden{{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}}
</style></head><body>
<h1>Model card: {title}</h1>
<p class="sub">{origin}</p>
"#,
        origin = origin_line(manifest),
    );
    html.push_str(sections);
    html.push_str("</body></html>\n");
    html
}

/// Where the model came from, in one line.
fn origin_line(manifest: &Manifest) -> String {
    match (&manifest.training, &manifest.imported) {
        (Some(t), _) => format!(
            "Trained {} by mlserve {} · {} on {}",
            escape(&manifest.created_at),
            escape(&t.mlserve_version),
            t.estimator.algorithm().cli_name(),
            escape(&t.dataset)
        ),
        (None, Some(i)) => format!(
            "Imported {} by mlserve {} · {} from {} ({})",
            escape(&manifest.created_at),
            escape(&i.mlserve_version),
            match manifest.backend {
                crate::model::Backend::Boosted => "boosted trees",
                _ => "ONNX",
            },
            escape(&i.source),
            escape(&i.producer)
        ),
        (None, None) => format!("Written {}", escape(&manifest.created_at)),
    }
}

/// The model card's sections (data and training or import, metrics, charts, features) as an
/// HTML fragment, for pages that bring their own frame, such as the web UI.
pub fn model_card_sections(manifest: &Manifest, metrics: Option<&MetricsFile>) -> String {
    let mut html = String::with_capacity(16 * 1024);
    data_section(&mut html, manifest);
    import_section(&mut html, manifest);
    match metrics {
        Some(metrics) => {
            let e = &metrics.evaluation;
            metrics_section(&mut html, manifest, metrics);
            html.push_str("<h2>Confusion matrix and ROC curve</h2><div class=\"charts\">");
            html.push_str(&confusion_svg(&e.labels, &e.confusion_matrix));
            html.push_str(&roc_svg(e));
            html.push_str("</div>");
            importance_section(&mut html, metrics.importance.as_ref());
        }
        None => {
            let live = match manifest.task {
                crate::model::Task::Classification => "live accuracy",
                crate::model::Task::Regression => "live RMSE, MAE and R²",
            };
            let _ = write!(
                html,
                "<h2>Metrics</h2><p>This model was imported without held-out rows to evaluate \
                 it on (<code>mlserve import … --test-data CSV --target COLUMN</code>), so there \
                 are no held-out metrics. Its {live} shows on the Monitoring tab once \
                 predictions get feedback.</p>"
            );
        }
    }
    features_section(&mut html, manifest);
    html
}

fn import_section(html: &mut String, manifest: &Manifest) {
    let Some(i) = &manifest.imported else {
        return;
    };
    let inputs: Vec<String> = manifest
        .onnx
        .iter()
        .flat_map(|binding| &binding.inputs)
        .map(|input| format!("{} ← {}", input.name, input.features.join(", ")))
        .collect();
    let _ = write!(
        html,
        r#"<h2>Import</h2><table>
<tr><th class="l">source file</th><td class="l">{source}</td></tr>
<tr><th class="l">source SHA-256</th><td class="l"><code>{sha}</code></td></tr>
<tr><th class="l">written by</th><td class="l">{producer}</td></tr>
<tr><th class="l">{what}</th><td class="l">{opsets}</td></tr>
{predicts}
{inputs}
</table>"#,
        source = escape(&i.source),
        sha = escape(&i.source_sha256),
        producer = escape(&i.producer),
        opsets = escape(&i.opsets),
        what = match manifest.backend {
            crate::model::Backend::Boosted => "trees",
            _ => "ONNX versions",
        },
        predicts = predicts_row(manifest),
        inputs = if inputs.is_empty() {
            String::new()
        } else {
            format!(
                "<tr><th class=\"l\">graph inputs</th><td class=\"l\">{}</td></tr>",
                escape(&inputs.join("; "))
            )
        },
    );
}

/// The table row that says what the model predicts: its classes, or its target.
fn predicts_row(manifest: &Manifest) -> String {
    let (heading, what) = match (&manifest.target, manifest.task) {
        (Some(target), _) => ("target", target.name.clone()),
        (None, crate::model::Task::Regression) => ("target", "a number".to_string()),
        (None, crate::model::Task::Classification) => ("classes", manifest.labels.join(", ")),
    };
    format!(
        "<tr><th class=\"l\">{heading}</th><td class=\"l\">{}</td></tr>",
        escape(&what)
    )
}

pub(crate) fn data_section(html: &mut String, manifest: &Manifest) {
    let Some(t) = &manifest.training else {
        return;
    };
    let parameters = serde_json::to_value(&t.estimator).unwrap_or_default();
    let mut rows = String::new();
    if let Some(map) = parameters.as_object() {
        for (key, value) in map.iter().filter(|(key, _)| key.as_str() != "algorithm") {
            let _ = write!(
                rows,
                "<tr><th class=\"l\">{}</th><td>{}</td></tr>",
                escape(key),
                escape(
                    &value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string)
                )
            );
        }
    }
    let _ = write!(
        html,
        r#"<h2>Data and training</h2><table>
<tr><th class="l">dataset</th><td class="l">{dataset}</td></tr>
<tr><th class="l">dataset SHA-256</th><td class="l"><code>{sha}</code></td></tr>
<tr><th class="l">rows (train / test)</th><td>{rows} ({train} / {test}){refused}</td></tr>{kept}
{predicts}
<tr><th class="l">seed</th><td>{seed}</td></tr>
<tr><th class="l">algorithm</th><td class="l">{algorithm}</td></tr>{rows_html}
</table>"#,
        dataset = escape(&t.dataset),
        sha = escape(&t.dataset_sha256),
        rows = t.rows,
        train = t.train_rows,
        test = t.test_rows,
        refused = t.refused_test_rows.map_or(String::new(), |n| format!(
            "; {n} held-out row(s) left out of the metrics: a category no training row has, \
             which the model refuses"
        )),
        kept = t.iterations_kept.map_or(String::new(), |n| format!(
            "\n<tr><th class=\"l\">boosting iterations kept</th><td>{n}</td></tr>"
        )),
        predicts = predicts_row(manifest),
        seed = t.seed,
        algorithm = t.estimator.algorithm().cli_name(),
        rows_html = rows,
    );
}

fn metrics_section(html: &mut String, manifest: &Manifest, metrics: &MetricsFile) {
    let e = &metrics.evaluation;
    let _ = write!(
        html,
        "<h2>Metrics on the held-out split</h2><table><tr><th class=\"l\">accuracy</th><td>{}</td></tr>\
         <tr><th class=\"l\">precision (macro)</th><td>{}</td></tr><tr><th class=\"l\">recall (macro)</th><td>{}</td></tr>\
         <tr><th class=\"l\">F1 (macro)</th><td>{}</td></tr><tr><th class=\"l\">ROC AUC</th><td>{}</td></tr>\
         <tr><th class=\"l\">log loss</th><td>{}</td></tr>",
        number(e.accuracy),
        number(e.precision_macro),
        number(e.recall_macro),
        number(e.f1_macro),
        e.roc_auc.map_or("undefined".to_string(), number),
        number(e.log_loss),
    );
    if let Some(cv) = &metrics.cv {
        let _ = write!(
            html,
            "<tr><th class=\"l\">{}-fold CV accuracy</th><td>{} ± {}</td></tr>",
            cv.folds,
            number(cv.accuracy.mean),
            number(cv.accuracy.std)
        );
    }
    html.push_str("</table><table><tr><th class=\"l\">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
    for label in &manifest.labels {
        if let Some(m) = e.per_class.get(label) {
            let _ = write!(
                html,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(label),
                number(m.precision),
                number(m.recall),
                number(m.f1),
                m.support
            );
        }
    }
    html.push_str("</table>");
}

fn confusion_svg(labels: &[String], matrix: &[Vec<u64>]) -> String {
    let n = labels.len();
    let cell = 56.0;
    let margin = 110.0;
    let size = margin + cell * n as f64 + 10.0;
    let max = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        r#"<figure><svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" aria-label="Confusion matrix" font-family="sans-serif" font-size="12">"#
    );
    for (t, row) in matrix.iter().enumerate() {
        for (p, &count) in row.iter().enumerate() {
            let shade = count as f64 / max;
            let (x, y) = (margin + p as f64 * cell, margin + t as f64 * cell);
            let text_color = if shade > 0.5 { "#fff" } else { "#1d2430" };
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb(37,99,235)" fill-opacity="{opacity:.3}" stroke="#d5dae1"/><text x="{tx}" y="{ty}" text-anchor="middle" fill="{text_color}">{count}</text>"##,
                opacity = 0.08 + 0.92 * shade,
                tx = x + cell / 2.0,
                ty = y + cell / 2.0 + 4.0,
            );
        }
    }
    for (i, label) in labels.iter().enumerate() {
        let offset = margin + i as f64 * cell + cell / 2.0;
        let short: String = label.chars().take(12).collect();
        let _ = write!(
            svg,
            r#"<text x="{}" y="{offset}" text-anchor="end" dy="4">{}</text><text x="{offset}" y="{}" text-anchor="start" transform="rotate(-45 {offset} {})">{}</text>"#,
            margin - 6.0,
            escape(&short),
            margin - 8.0,
            margin - 8.0,
            escape(&short),
        );
    }
    svg.push_str("</svg><figcaption>Rows: true class. Columns: predicted class.</figcaption>");
    // The same counts as a table, for screen readers (the chart is one image to them).
    svg.push_str("<div class=\"visually-hidden\"><table><caption>Confusion matrix: rows are true classes, columns predicted classes</caption><tr><th>true \\ predicted</th>");
    for label in labels {
        let _ = write!(svg, "<th scope=\"col\">{}</th>", escape(label));
    }
    svg.push_str("</tr>");
    for (label, row) in labels.iter().zip(matrix) {
        let _ = write!(svg, "<tr><th scope=\"row\">{}</th>", escape(label));
        for count in row {
            let _ = write!(svg, "<td>{count}</td>");
        }
        svg.push_str("</tr>");
    }
    svg.push_str("</table></div></figure>");
    svg
}

fn roc_svg(e: &super::Evaluation) -> String {
    const COLORS: [&str; 6] = [
        "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
    ];
    let (size, pad) = (300.0, 36.0);
    let plot = size - 2.0 * pad;
    let to_x = |fpr: f64| pad + fpr * plot;
    let to_y = |tpr: f64| size - pad - tpr * plot;
    let mut svg = format!(
        r##"<figure><svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" aria-label="ROC curve" font-family="sans-serif" font-size="11"><rect x="{pad}" y="{pad}" width="{plot}" height="{plot}" fill="none" stroke="#9aa4b2"/><line x1="{pad}" y1="{y0}" x2="{x1}" y2="{pad}" stroke="#c3c9d1" stroke-dasharray="4 4"/><text x="{cx}" y="{bottom}" text-anchor="middle">false positive rate</text><text x="12" y="{cx}" text-anchor="middle" transform="rotate(-90 12 {cx})">true positive rate</text>"##,
        y0 = size - pad,
        x1 = size - pad,
        cx = size / 2.0,
        bottom = size - 8.0,
    );
    for (index, (label, points)) in e.roc_curve.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|[fpr, tpr]| format!("{:.1},{:.1}", to_x(*fpr), to_y(*tpr)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{}" y="{}" fill="{color}" text-anchor="end">{}</text>"##,
            path.join(" "),
            size - pad - 4.0,
            size - pad - 8.0 - 14.0 * index as f64,
            escape(label),
        );
    }
    let auc = e.roc_auc.map_or("undefined".to_string(), number);
    let _ = write!(
        svg,
        "</svg><figcaption>ROC curve (AUC {auc})</figcaption></figure>"
    );
    svg
}

pub(crate) fn features_section(html: &mut String, manifest: &Manifest) {
    html.push_str("<h2>Features</h2><table><tr><th class=\"l\">name</th><th class=\"l\">type</th><th>min</th><th>max</th><th>mean</th><th class=\"l\">categories</th></tr>");
    let optional = |value: Option<f64>| value.map_or(String::new(), |v| format!("{v:.4}"));
    for feature in &manifest.features {
        let kind = feature.kind.name();
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&feature.name),
            kind,
            optional(feature.min),
            optional(feature.max),
            optional(feature.mean),
            escape(
                &feature
                    .categories
                    .as_ref()
                    .map(|c| c.join(", "))
                    .unwrap_or_default()
            ),
        );
    }
    html.push_str("</table>");
}

/// The model card's section: a bar per feature, largest first.
pub fn importance_section(
    html: &mut String,
    importance: Option<&super::importance::GlobalImportance>,
) {
    let Some(importance) = importance else {
        return;
    };
    let largest = importance
        .features
        .first()
        .map_or(0.0, |f| f.mean_abs_contribution);
    let _ = write!(
        html,
        "<h2>Global importance</h2><p>Each feature's mean absolute contribution to the \
         prediction over {} held-out rows ({} SHAP values, in {}; summed over the classes of a \
         multiclass model): how much it moves answers, not in which direction.</p>\
         <table class=\"importance\"><tr><th class=\"l\">feature</th><th>mean |contribution|</th>\
         <th class=\"l\"></th></tr>",
        importance.rows,
        escape(&importance.method),
        escape(&importance.unit)
    );
    for feature in &importance.features {
        let width = if largest > 0.0 {
            200.0 * feature.mean_abs_contribution / largest
        } else {
            0.0
        };
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\"><svg width=\"200\" \
             height=\"12\" aria-hidden=\"true\"><rect x=\"0\" y=\"1\" width=\"{width:.1}\" \
             height=\"10\" fill=\"#4c72b0\"/></svg></td></tr>",
            escape(&feature.feature),
            number(feature.mean_abs_contribution)
        );
    }
    html.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<b a=\"1\">&'"),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;"
        );
    }
}

//! The web UI's pages: askama templates (in `templates/`) and the views they show.
//!
//! Templates are compiled into the binary and escape every value, so a feature name or a
//! category that holds markup is shown as text.

use super::assets;
use askama::Template;

/// What every page shows around its content.
pub struct Frame {
    /// The page title, before " · mlserve".
    pub title: String,
    /// The main navigation entry to mark as current ("models" or "").
    pub section: &'static str,
    /// Cache-busting version of the static assets.
    pub asset_version: &'static str,
    /// mlserve's version, in the footer.
    pub mlserve_version: &'static str,
    /// Who is signed in (with auth on), for the header.
    pub signed_in: Option<std::sync::Arc<str>>,
}

impl Frame {
    /// A frame with this title.
    pub fn new(title: impl Into<String>, section: &'static str) -> Self {
        Frame {
            title: title.into(),
            section,
            asset_version: assets::version(),
            mlserve_version: env!("CARGO_PKG_VERSION"),
            signed_in: crate::serve::middleware::SIGNED_IN
                .try_with(Clone::clone)
                .ok()
                .flatten(),
        }
    }
}

/// One row of the models table.
pub struct ModelRow {
    /// Model name.
    pub name: String,
    /// Default version, or "–".
    pub version: String,
    /// Algorithm of the default version.
    pub algorithm: String,
    /// "classification" or "regression", or "–".
    pub task: &'static str,
    /// Held-out quality (accuracy and ROC AUC, or R² and RMSE), or "–".
    pub quality: String,
    /// "ready", "degraded" (some versions failed) or "failed".
    pub status: &'static str,
    /// Whether a version is loaded (so the model's pages work).
    pub ready: bool,
    /// Why versions failed, when they did.
    pub problem: String,
}

/// `/`: the models.
#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    /// The frame.
    pub frame: Frame,
    /// One row per model.
    pub models: Vec<ModelRow>,
}

/// A link to one version of a model.
pub struct VersionLink {
    /// "2", or "2 (failed)".
    pub label: String,
    /// Its page.
    pub href: String,
    /// Whether this is the version shown.
    pub current: bool,
}

/// The heading shared by a model's pages.
pub struct ModelHead {
    /// Model name.
    pub name: String,
    /// Version shown.
    pub version: String,
    /// Algorithm.
    pub algorithm: String,
    /// Classes and headline metrics, in a line.
    pub summary: String,
    /// Base URL of the pages for this model (and version, when pinned).
    pub base: String,
    /// The current tab: "predict", "batch" or "card".
    pub tab: &'static str,
    /// Every version of the model.
    pub versions: Vec<VersionLink>,
}

/// A choice of a select control.
pub struct OptionView {
    /// Submitted value.
    pub value: String,
    /// Shown text.
    pub text: String,
    /// Whether it is chosen.
    pub selected: bool,
}

/// One input of the prediction form.
pub struct FieldView {
    /// Element id (made from the position, since feature names may hold any character).
    pub id: String,
    /// Feature name, also the form field name.
    pub name: String,
    /// "text", "date" or "select".
    pub control: &'static str,
    /// Virtual keyboard hint for phones ("decimal", "numeric" or "").
    pub inputmode: &'static str,
    /// Current value, as typed.
    pub value: String,
    /// Choices, for a select.
    pub options: Vec<OptionView>,
    /// The expected type and training range.
    pub hint: String,
    /// What is wrong with the value, or "".
    pub error: String,
}

/// One class's probability.
pub struct ClassView {
    /// Class label.
    pub label: String,
    /// Probability, for the meter.
    pub value: f64,
    /// Probability in percent, for people.
    pub percent: String,
    /// Whether it is the predicted class.
    pub top: bool,
}

/// A predicted value, as the form page shows it: the number, and where it falls on the
/// training target's range.
pub struct ValueView {
    /// The target column's name.
    pub target: String,
    /// The value, for people.
    pub text: String,
    /// Where it falls on the bar, in percent of the training range (clamped to 0–100).
    pub position: f64,
    /// The left edge of its marker on the bar (the marker is 1.6 wide, centred on it).
    pub marker_x: f64,
    /// The training target's minimum, quartiles and maximum, for the bar's ticks.
    pub marks: Vec<MarkView>,
    /// Where the value lies among the training targets, in words.
    pub placement: String,
}

/// A tick on the target-range bar.
pub struct MarkView {
    /// What it marks: "min", "25%", "median", "75%", "max".
    pub name: &'static str,
    /// Its value, for people.
    pub text: String,
    /// Its place on the bar, in percent.
    pub position: f64,
}

/// A prediction, as the form page shows it.
pub struct PredictionView {
    /// Predicted label (a classifier), or the value's text.
    pub label: String,
    /// Every class, in the model's label order (empty for a model that predicts a number).
    pub classes: Vec<ClassView>,
    /// The predicted value, for a model that predicts a number.
    pub value: Option<ValueView>,
    /// Values outside the training range.
    pub warnings: Vec<String>,
    /// Which features pushed the answer, when the model explains.
    pub explanation: Option<super::explain::ExplanationView>,
    /// Why the answer has no explanation, when the model has none or it is not asked for here.
    pub explanation_note: Option<String>,
}

/// A problem in the error summary, linked to its field.
pub struct ErrorItem {
    /// Feature name, or "" for a problem of the whole row.
    pub field: String,
    /// Id of the field's input, or "".
    pub anchor: String,
    /// What is wrong.
    pub message: String,
}

/// `/ui/models/{name}`: the prediction form and its answer.
#[derive(Template)]
#[template(path = "model.html")]
pub struct ModelPage {
    /// The frame.
    pub frame: Frame,
    /// The heading.
    pub head: ModelHead,
    /// The CSRF token for the form.
    pub csrf: String,
    /// One input per feature.
    pub fields: Vec<FieldView>,
    /// The answer, after a successful post.
    pub prediction: Option<PredictionView>,
    /// Every problem, after a refused post.
    pub errors: Vec<ErrorItem>,
    /// The request id, shown with the answer.
    pub request_id: String,
}

/// A CSV row that was left out.
pub struct BadRowView {
    /// Line in the uploaded file.
    pub line: u64,
    /// Its problems, in a line.
    pub problems: String,
}

/// What a batch upload gave.
pub struct BatchOutcome {
    /// The uploaded file's name.
    pub file_name: String,
    /// Rows predicted.
    pub predicted: u64,
    /// Rows left out.
    pub skipped: u64,
    /// Where to download the result.
    pub download: String,
    /// The file name to save it under.
    pub download_name: String,
    /// How long the download is kept.
    pub keep_minutes: u64,
    /// The first rows left out.
    pub bad_rows: Vec<BadRowView>,
    /// How many more were left out than listed.
    pub bad_rows_cut: u64,
    /// The output header.
    pub header: Vec<String>,
    /// The first output rows.
    pub rows: Vec<Vec<String>>,
    /// How many more rows the download has than the table.
    pub rows_cut: u64,
}

/// `/ui/models/{name}/batch`: CSV upload and its result.
#[derive(Template)]
#[template(path = "batch.html")]
pub struct BatchPage {
    /// The frame.
    pub frame: Frame,
    /// The heading.
    pub head: ModelHead,
    /// The CSRF token for the form.
    pub csrf: String,
    /// The feature columns the file needs.
    pub columns: String,
    /// The upload limit, for people.
    pub max_upload: String,
    /// Why the upload as a whole was refused, or "".
    pub upload_error: String,
    /// The result, after an upload.
    pub outcome: Option<BatchOutcome>,
}

/// `/ui/models/{name}/card`: the model card.
#[derive(Template)]
#[template(path = "card.html")]
pub struct CardPage {
    /// The frame.
    pub frame: Frame,
    /// The heading.
    pub head: ModelHead,
    /// The card's sections, rendered (and escaped) by `train::report`.
    pub sections: String,
}

/// A page with a heading and a message: errors, and refused posts.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// The frame.
    pub frame: Frame,
    /// The heading.
    pub heading: String,
    /// The message.
    pub message: String,
    /// Where to go next, or "".
    pub link_href: String,
    /// The link's text.
    pub link_text: String,
    /// The request id, or "".
    pub request_id: String,
}

/// `/ui/login`: the sign-in form, when auth is on.
#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    /// The frame.
    pub frame: Frame,
    /// The CSRF token for the form.
    pub csrf: String,
    /// The page to go back to after signing in.
    pub next: String,
    /// Why the last attempt failed, or why sign-in is needed.
    pub message: String,
    /// The request id, or "".
    pub request_id: String,
}

/// A link to another monitoring window.
pub struct WindowLink {
    /// "1h", "24h" or "7d".
    pub label: &'static str,
    /// The page for it.
    pub href: String,
    /// Whether it is shown.
    pub current: bool,
}

/// Live metrics of one version, formatted.
pub struct LiveRow {
    /// Version.
    pub version: String,
    /// Predictions in the window.
    pub predictions: i64,
    /// Of those with a true label or value.
    pub with_feedback: usize,
    /// Its live metrics, then its held-out one, each formatted or "–", under
    /// [`MonitoringPage::live_columns`].
    pub cells: Vec<String>,
}

/// The drift of one feature, formatted.
pub struct DriftRow {
    /// Feature name.
    pub name: String,
    /// PSI, or "–".
    pub psi: String,
    /// "drifted", "moderate", "stable", "too few values" or "no baseline".
    pub status: &'static str,
    /// CSS class of the status badge.
    pub class: &'static str,
    /// Values counted.
    pub values: usize,
}

/// `/ui/models/{name}/monitoring`: live metrics and drift.
#[derive(Template)]
#[template(path = "monitoring.html")]
pub struct MonitoringPage {
    /// The frame.
    pub frame: Frame,
    /// The heading.
    pub head: ModelHead,
    /// Window choices.
    pub windows: Vec<WindowLink>,
    /// Why there is nothing to show (the log is off, the database failed), or "".
    pub unavailable: String,
    /// The headings of the live metrics' columns (the default version's task's), then the
    /// held-out one's.
    pub live_columns: Vec<&'static str>,
    /// Live metrics per version.
    pub versions: Vec<LiveRow>,
    /// Whether the version shown predicts a number (its drift table starts with its outputs').
    pub predicts_number: bool,
    /// Drift per feature.
    pub features: Vec<DriftRow>,
    /// Rows the drift was computed on.
    pub drift_rows: usize,
    /// The drift threshold.
    pub threshold: f64,
    /// Fewest values that can flag a feature.
    pub min_values: usize,
}

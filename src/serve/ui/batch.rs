//! Batch predictions in the web UI: upload a CSV, see the predictions and the rows with
//! problems, download the result. The file goes through the same streaming code as
//! `mlserve predict`, so both check and write rows alike.

use super::csrf;
use super::model_ref::{ModelRef, find_model, model_head};
use super::pages::{BadRowView, BatchOutcome, BatchPage, Frame};
use super::render::{PageError, message, render};
use crate::model::batch::{BadRow, BatchError, BatchObserver, describe, predict_csv_stream};
use crate::model::{FeatureValue, LoadedModel, Outcome, sample};
use crate::serve::middleware::RequestId;
use crate::serve::predict::{Asked, StreamedPredictions};
use crate::serve::state::App;
use crate::store::PredictionLog;
use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows shown in the result table; the download has them all.
const PREVIEW_ROWS: usize = 200;
/// Rows with problems listed on the page; all are counted.
const LISTED_BAD_ROWS: usize = 200;

fn human_bytes(bytes: usize) -> String {
    let (value, unit) = if bytes >= 1024 * 1024 {
        (bytes as f64 / (1024.0 * 1024.0), "MiB")
    } else {
        (bytes as f64 / 1024.0, "KiB")
    };
    let text = format!("{value:.1}");
    format!("{} {unit}", text.trim_end_matches(".0"))
}

/// The CSV header line an upload needs (quoted where a name needs it).
fn header_line(names: &[&str]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let line = writer
        .write_record(names)
        .ok()
        .and_then(|()| writer.into_inner().ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    line.map_or_else(|| names.join(","), |l| l.trim_end().to_string())
}

/// An output buffer that stops the run when the request is gone (timed out, or the client
/// left) or when the result outgrows what the server keeps.
struct BoundedOutput {
    bytes: Vec<u8>,
    limit: usize,
    cancelled: Arc<AtomicBool>,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(Stopped::Cancelled));
        }
        if self.bytes.len() + data.len() > self.limit {
            return Err(std::io::Error::other(Stopped::TooLarge));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a batch run stopped early.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    #[error("the request was stopped")]
    Cancelled,
    #[error("the result is larger than the server keeps")]
    TooLarge,
}

/// Sets the flag when dropped: the handler's future is dropped on timeout or disconnect.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn batch_page(
    app: &App,
    model: &LoadedModel,
    head: super::pages::ModelHead,
    csrf: String,
) -> BatchPage {
    let manifest = &model.artifact.manifest;
    BatchPage {
        frame: Frame::new(
            format!("Batch: {} v{}", manifest.name, model.version_label),
            "",
        ),
        head,
        csrf,
        columns: header_line(
            &manifest
                .features
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
        ),
        max_upload: human_bytes(app.settings.max_upload_bytes),
        upload_error: String::new(),
        outcome: None,
    }
}

/// GET /ui/models/{name}/batch: the upload form.
pub async fn batch_form(
    State(app): State<App>,
    target: ModelRef,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (catalog, model) = find_model(&app, &target)?;
    let token = csrf::token_for(&headers);
    let head = model_head(&catalog, &model, &target, "batch");
    let page = batch_page(&app, &model, head, token.value);
    Ok(render(StatusCode::OK, &page, token.set_cookie))
}

/// An uploaded form: its CSRF token and its file.
#[derive(Default)]
struct Upload {
    token: Option<String>,
    file_name: String,
    bytes: Option<Bytes>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, MultipartError> {
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await? {
        match field.name() {
            Some(csrf::FIELD) => upload.token = Some(field.text().await?),
            Some("file") => {
                upload.file_name = field.file_name().unwrap_or("upload.csv").to_string();
                upload.bytes = Some(field.bytes().await?);
            }
            _ => {}
        }
    }
    Ok(upload)
}

/// What a finished batch run gives the page.
struct Finished {
    predicted: u64,
    skipped: u64,
    bad_rows: Vec<BadRow>,
    output: Vec<u8>,
}

/// Keeps the first bad rows for the page, and counts and logs predicted rows through the one
/// predict path's [`StreamedPredictions`].
struct UploadObserver<'a> {
    bad_rows: Vec<BadRow>,
    predictions: StreamedPredictions<'a>,
}

impl BatchObserver for UploadObserver<'_> {
    fn bad_row(&mut self, bad: &BadRow) {
        if self.bad_rows.len() < LISTED_BAD_ROWS {
            self.bad_rows.push(bad.clone());
        }
    }

    fn predicted(&mut self, values: &[FeatureValue], outcome: &Outcome) {
        self.predictions.predicted(values, outcome);
    }
}

fn run_batch(
    model: &Arc<LoadedModel>,
    upload: (&str, &[u8]),
    output_limit: usize,
    cancelled: Arc<AtomicBool>,
    asked: &Asked,
    log: Option<&PredictionLog>,
) -> Result<Finished, BatchError> {
    let (file_name, bytes) = upload;
    let sink = BoundedOutput {
        bytes: Vec::with_capacity((bytes.len() * 2).min(output_limit)),
        limit: output_limit,
        cancelled,
    };
    let mut observer = UploadObserver {
        bad_rows: Vec::new(),
        predictions: StreamedPredictions::new(model, asked, log),
    };
    let (summary, output) = predict_csv_stream(
        model,
        std::path::Path::new(file_name),
        bytes,
        sink,
        crate::model::batch::BatchOptions::default(),
        &mut observer,
    )?;
    observer.predictions.finish();
    Ok(Finished {
        predicted: summary.predicted,
        skipped: summary.skipped,
        bad_rows: observer.bad_rows,
        output: output.bytes,
    })
}

/// The first rows of the output CSV, for the table.
fn preview(output: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(output);
    let header = reader
        .headers()
        .map(|h| h.iter().map(str::to_string).collect())
        .unwrap_or_default();
    let rows = reader
        .records()
        .take(PREVIEW_ROWS)
        .filter_map(Result::ok)
        .map(|record| record.iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// A file name safe for a Content-Disposition header: letters, digits, `-`, `_`, `.`.
fn download_name(uploaded: &str, model: &LoadedModel) -> String {
    let stem = std::path::Path::new(uploaded)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let clean: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(80)
        .collect();
    let stem = if clean.is_empty() {
        format!("{}-v{}", model.name(), model.version_label)
    } else {
        clean
    };
    format!("{stem}-predictions.csv")
}

fn upload_refused(error: &MultipartError, base: &str) -> Response {
    let status = error.status();
    let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the file is larger than the upload limit (setting max_upload_bytes)".to_string()
    } else {
        format!("the upload cannot be read: {}", error.body_text())
    };
    message(
        status,
        "The upload could not be read",
        &text,
        Some((&format!("{base}/batch"), "Back to the upload form")),
    )
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// A 500 page for a batch that broke inside: the cause goes to the log, under the request id.
fn batch_failed(error: &dyn std::fmt::Display) -> Response {
    let request_id = crate::serve::request_scope::current_request_id().unwrap_or_default();
    tracing::error!(%request_id, %error, "batch upload failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error",
        "the batch could not be run; the request id finds it in the server log",
        None,
    )
}

/// POST /ui/models/{name}/batch: predicts an uploaded CSV.
pub async fn batch_upload(
    State(app): State<App>,
    target: ModelRef,
    rid: RequestId,
    asked: Asked,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let (catalog, model) = find_model(&app, &target)?;
    let base = target.base();
    let multipart = match multipart {
        Ok(multipart) => multipart,
        Err(rejection) => {
            let status = if is_multipart(&headers) {
                rejection.status()
            } else {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            };
            return Ok(message(
                status,
                "The upload could not be read",
                &format!(
                    "this page takes a file upload (multipart/form-data): {}",
                    rejection.body_text()
                ),
                Some((&format!("{base}/batch"), "Back to the upload form")),
            ));
        }
    };
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        Err(error) => return Ok(upload_refused(&error, &base)),
    };
    if let Err(error) = csrf::verify(&headers, upload.token.as_deref()) {
        tracing::warn!(request_id = rid.0.as_str(), %error, "upload refused");
        return Ok(super::form::refused_post(error, &format!("{base}/batch")));
    }
    let token = csrf::token_for(&headers);
    let head = model_head(&catalog, &model, &target, "batch");
    let mut page = batch_page(&app, &model, head, token.value);
    let bytes = match upload.bytes {
        Some(bytes) if !bytes.is_empty() => bytes,
        _ => {
            page.upload_error = "Choose a CSV file to upload.".to_string();
            return Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page,
                token.set_cookie,
            ));
        }
    };
    let Ok(_permit) = app.batch_slots.clone().try_acquire_owned() else {
        return Ok(message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "other uploads are being predicted right now; try again in a few seconds",
            Some((&format!("{base}/batch"), "Back to the upload form")),
        ));
    };
    let file_name = upload.file_name;
    let running = Arc::clone(&model);
    let name_for_run = file_name.clone();
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancelled.clone());
    let output_limit = app.downloads.max_bytes();
    let log = app.log.clone();
    let finished = tokio::task::spawn_blocking(move || {
        run_batch(
            &running,
            (&name_for_run, &bytes),
            output_limit,
            cancelled,
            &asked,
            log.as_deref(),
        )
    })
    .await;
    let finished = match finished {
        Ok(Ok(finished)) => finished,
        Ok(Err(BatchError::Write(error))) => {
            let too_large = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<Stopped>())
                .is_some_and(|stopped| matches!(stopped, Stopped::TooLarge));
            if too_large {
                page.upload_error = format!(
                    "The predictions would be larger than {} and are not kept here; run `mlserve predict` on the file instead.",
                    human_bytes(output_limit)
                );
                return Ok(render(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &page,
                    token.set_cookie,
                ));
            }
            return Ok(batch_failed(&error));
        }
        Ok(Err(error @ BatchError::Model(_))) => return Ok(batch_failed(&error)),
        Ok(Err(error)) => {
            page.upload_error = error.to_string();
            return Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page,
                token.set_cookie,
            ));
        }
        Err(error) => {
            return Ok(batch_failed(&error));
        }
    };
    let (header, rows) = preview(&finished.output);
    let download_name = download_name(&file_name, &model);
    let download = if finished.predicted > 0 {
        app.downloads
            .put(download_name.clone(), Bytes::from(finished.output))
            .map(|id| format!("/ui/downloads/{id}"))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let listed = finished.bad_rows.len() as u64;
    page.outcome = Some(BatchOutcome {
        file_name,
        predicted: finished.predicted,
        skipped: finished.skipped,
        download,
        download_name,
        keep_minutes: app.downloads.keep().as_secs() / 60,
        bad_rows: finished
            .bad_rows
            .iter()
            .map(|bad| BadRowView {
                line: bad.line,
                problems: describe(&bad.errors),
            })
            .collect(),
        bad_rows_cut: finished.skipped.saturating_sub(listed),
        rows_cut: finished.predicted.saturating_sub(rows.len() as u64),
        header,
        rows,
    });
    Ok(render(StatusCode::OK, &page, token.set_cookie))
}

fn csv_attachment(file_name: &str, bytes: Bytes) -> Response {
    let disposition = format!("attachment; filename=\"{file_name}\"");
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// GET /ui/models/{name}/batch/example.csv: the header the upload needs, the example row and
/// a few random rows, as a starting point.
pub async fn example_csv(State(app): State<App>, target: ModelRef) -> Result<Response, PageError> {
    let (_, model) = find_model(&app, &target)?;
    let features = &model.artifact.manifest.features;
    let mut rng = rand::rng();
    let rows = std::iter::once(sample::example_row(features))
        .chain((0..4).map(|_| sample::random_row(features, &mut rng)));
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
    let mut written = writer.write_record(&header);
    for row in rows {
        written = written.and_then(|()| writer.write_record(row.iter().map(|(_, v)| v)));
    }
    let bytes = written
        .map_err(|e| e.to_string())
        .and_then(|()| writer.into_inner().map_err(|e| e.to_string()));
    match bytes {
        Ok(bytes) => {
            let name = format!("{}-example.csv", model.name());
            Ok(csv_attachment(&name, Bytes::from(bytes)))
        }
        Err(error) => {
            tracing::error!(%error, "cannot write the example CSV");
            Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// GET /ui/downloads/{id}: a batch result, while it is kept.
pub async fn download(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.downloads.get(&id) {
        Some(found) => csv_attachment(&found.file_name, found.bytes),
        None => message(
            StatusCode::NOT_FOUND,
            "Download not found",
            &format!(
                "this result is no longer kept (results are kept for {} minutes, and only by the server that made them); upload the file again",
                app.downloads.keep().as_secs() / 60
            ),
            Some(("/", "Back to the models")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(32 * 1024 * 1024), "32 MiB");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(header_line(&["a", "b,c"]), "a,\"b,c\"");
    }
}

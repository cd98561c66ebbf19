//! The tree engine's speed on one model file (an XGBoost JSON model or a LightGBM text model):
//! rows per second over a batch, and single-row latency. Run by `scripts/bench-boosted.sh`,
//! which makes the models and rows and times XGBoost and LightGBM on them in the same run; by
//! hand: `MLSERVE_BENCH_MODEL=m.json MLSERVE_BENCH_ROWS=rows.f64 cargo bench --bench boosted`
//! (rows: little-endian f64, row after row, as many columns as the model has features).
//! Prints one JSON object.

use mlserve::import::{lightgbm, xgboost};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let (Ok(model_path), Ok(rows_path)) = (
        std::env::var("MLSERVE_BENCH_MODEL"),
        std::env::var("MLSERVE_BENCH_ROWS"),
    ) else {
        eprintln!("set MLSERVE_BENCH_MODEL and MLSERVE_BENCH_ROWS (scripts/bench-boosted.sh does)");
        return;
    };
    let bytes = std::fs::read(&model_path).unwrap();
    let model = if model_path.ends_with(".txt") {
        lightgbm::read(std::str::from_utf8(&bytes).unwrap())
            .unwrap()
            .trees
    } else {
        let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        xgboost::read(&document, false).unwrap().trees
    };
    let model = model.compiled();
    let bytes = std::fs::read(&rows_path).unwrap();
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let rows: Vec<&[f64]> = values.chunks_exact(model.features).collect();
    let owned: Vec<Vec<f64>> = rows.iter().map(|r| r.to_vec()).collect();
    let mut best_batch = f64::INFINITY;
    let mut checksum = 0.0;
    for _ in 0..5 {
        let started = Instant::now();
        for answer in black_box(model.predict_rows(black_box(&owned))) {
            checksum += answer[1];
        }
        best_batch = best_batch.min(started.elapsed().as_secs_f64());
    }
    let single_rows = rows.len().min(2_000);
    let mut best_single = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        for row in &rows[..single_rows] {
            checksum += black_box(model.predict(black_box(row)))[1];
        }
        best_single = best_single.min(started.elapsed().as_secs_f64() / single_rows as f64);
    }
    // TreeSHAP contributions of single rows (path-dependent, every output), when the file has
    // its covers: by Algorithm 2, and from the tables the server builds once per model.
    let explained_rows = rows.len().min(500);
    let (mut best_explain, mut best_tabled, mut build_ms, mut table_kib) =
        (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    if model.explainable() {
        best_explain = f64::INFINITY;
        for _ in 0..3 {
            let started = Instant::now();
            for row in &rows[..explained_rows] {
                checksum += black_box(model.contributions(black_box(row))).map_or(0.0, |c| c[0][0]);
            }
            best_explain =
                best_explain.min(started.elapsed().as_secs_f64() / explained_rows as f64);
        }
        let started = Instant::now();
        let tables = model.shap_tables();
        build_ms = started.elapsed().as_secs_f64() * 1e3;
        table_kib = tables.size() as f64 * 8.0 / 1024.0;
        let outputs = model.base_margin.len();
        best_tabled = f64::INFINITY;
        for _ in 0..3 {
            let started = Instant::now();
            for row in &rows[..explained_rows] {
                let mut phi = vec![0.0; outputs * model.features];
                model.add_contributions(Some(&tables), black_box(row), &mut phi);
                checksum += black_box(phi)[0];
            }
            best_tabled = best_tabled.min(started.elapsed().as_secs_f64() / explained_rows as f64);
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "contributions_microseconds": best_explain * 1e6,
            "tabled_contributions_microseconds": best_tabled * 1e6,
            "tables_build_milliseconds": build_ms,
            "tables_kib": table_kib,
            "rows": rows.len(),
            "batch_seconds": best_batch,
            "rows_per_second": rows.len() as f64 / best_batch,
            "single_row_microseconds": best_single * 1e6,
            "checksum": checksum,
        })
    );
}

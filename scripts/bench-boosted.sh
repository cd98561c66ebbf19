#!/usr/bin/env bash
# The tree engine beside XGBoost and LightGBM on the issue's model: binary, 100 trees of depth 6
# (LightGBM: 63 leaves at most, depth 6) over 30 features, 100,000 rows, all on one thread, in
# the same run; once with dense rows and once with a tenth of the cells missing (XGBoost is
# slower on missing values; mlserve's walk is not). Prints the rows per second of each over the
# batch, the single-row latency of mlserve's engine (the libraries' batch-of-1 calls are mostly
# Python overhead, so they are not compared), the ratios, and the time of one row's TreeSHAP
# contributions.
# Needs Python with xgboost and lightgbm (installed once into target/bench-venv, pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench-venv
if ! "$venv/bin/python" -c "import xgboost, lightgbm, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check xgboost-cpu==3.2.0 lightgbm==4.7.0 \
    numpy==2.4.6
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for missing in 0 0.1; do
OMP_NUM_THREADS=1 "$venv/bin/python" - "$work" "$missing" <<'PY'
import json, sys, time
import numpy as np, xgboost
work, missing = sys.argv[1], float(sys.argv[2])
rng = np.random.default_rng(42)
n, f = 100_000, 30
x = rng.normal(size=(n, f))
y = (x[:, :5].sum(axis=1) + rng.normal(size=n) > 0).astype(int)
x[rng.random(x.shape) < missing] = np.nan
params = {"objective": "binary:logistic", "max_depth": 6, "nthread": 1, "seed": 42}
booster = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=100)
booster.save_model(f"{work}/model.json")
x.astype("<f8").tofile(f"{work}/rows.f64")
x32 = x.astype(np.float32)
best = min(
    (lambda s: (booster.inplace_predict(x32), time.perf_counter() - s)[1])(time.perf_counter())
    for _ in range(5)
)
explained = xgboost.DMatrix(x[:1000])
contribs = min(
    (lambda s: (booster.predict(explained, pred_contribs=True), time.perf_counter() - s)[1])(time.perf_counter())
    for _ in range(3)
)
json.dump({"rows_per_second": n / best, "batch_seconds": best,
           "contributions_microseconds": contribs / 1000 * 1e6}, open(f"{work}/xgboost.json", "w"))
import lightgbm
lgb = lightgbm.train({"objective": "binary", "max_depth": 6, "num_leaves": 63, "num_threads": 1,
                      "seed": 42, "verbose": -1}, lightgbm.Dataset(x, label=y), num_boost_round=100)
lgb.save_model(f"{work}/model.txt")
best = min(
    (lambda s: (lgb.predict(x, num_threads=1), time.perf_counter() - s)[1])(time.perf_counter())
    for _ in range(5)
)
contribs = min(
    (lambda s: (lgb.predict(x[:1000], pred_contrib=True, num_threads=1), time.perf_counter() - s)[1])(time.perf_counter())
    for _ in range(3)
)
json.dump({"rows_per_second": n / best, "batch_seconds": best,
           "contributions_microseconds": contribs / 1000 * 1e6}, open(f"{work}/lightgbm.json", "w"))
PY
MLSERVE_BENCH_MODEL="$work/model.json" MLSERVE_BENCH_ROWS="$work/rows.f64" \
  cargo bench --quiet --bench boosted > "$work/mlserve.json"
MLSERVE_BENCH_MODEL="$work/model.txt" MLSERVE_BENCH_ROWS="$work/rows.f64" \
  cargo bench --quiet --bench boosted > "$work/mlserve-lightgbm.json"
python3 - "$work" "$missing" <<'PY'
import json, sys
work, missing = sys.argv[1], float(sys.argv[2])
ours = json.load(open(f"{work}/mlserve.json"))
theirs = json.load(open(f"{work}/xgboost.json"))
print(f"rows: {ours['rows']:,}, {missing:.0%} missing (binary:logistic, 100 trees of depth 6, 30 features, one thread)")
print(f"  mlserve engine batch:    {ours['rows_per_second']:>12,.0f} rows/s")
print(f"  xgboost inplace_predict: {theirs['rows_per_second']:>12,.0f} rows/s")
print(f"  ratio mlserve/xgboost:   {ours['rows_per_second'] / theirs['rows_per_second']:.2f}")
print(f"  mlserve single row:      {ours['single_row_microseconds']:.2f} µs")
print(f"  TreeSHAP one row, Algorithm 2:        {ours['contributions_microseconds']:.0f} µs")
print(f"  TreeSHAP one row, tables (served):     {ours['tabled_contributions_microseconds']:.0f} µs"
      f" (tables: {ours['tables_kib']:.0f} KiB, built in {ours['tables_build_milliseconds']:.0f} ms)")
print(f"  xgboost pred_contribs, per row of 1,000: {theirs['contributions_microseconds']:.0f} µs")
print(f"  ratio served/xgboost:  {ours['tabled_contributions_microseconds'] / theirs['contributions_microseconds']:.2f}")
ours = json.load(open(f"{work}/mlserve-lightgbm.json"))
theirs = json.load(open(f"{work}/lightgbm.json"))
print(f"  LightGBM model (binary, 100 trees, 63 leaves, depth 6):")
print(f"  mlserve engine batch:    {ours['rows_per_second']:>12,.0f} rows/s")
print(f"  lightgbm predict:        {theirs['rows_per_second']:>12,.0f} rows/s")
print(f"  ratio mlserve/lightgbm:  {ours['rows_per_second'] / theirs['rows_per_second']:.2f}")
print(f"  mlserve single row:      {ours['single_row_microseconds']:.2f} µs")
print(f"  TreeSHAP one row, Algorithm 2:        {ours['contributions_microseconds']:.0f} µs")
print(f"  TreeSHAP one row, tables (served):     {ours['tabled_contributions_microseconds']:.0f} µs"
      f" (tables: {ours['tables_kib']:.0f} KiB, built in {ours['tables_build_milliseconds']:.0f} ms)")
print(f"  lightgbm pred_contrib, per row of 1,000: {theirs['contributions_microseconds']:.0f} µs")
print(f"  ratio served/lightgbm: {ours['tabled_contributions_microseconds'] / theirs['contributions_microseconds']:.2f}")
PY
done

#!/usr/bin/env bash
# ONNX serving benchmark: single-row and 100-row predicts on models imported from scikit-learn
# (the loans ColumnTransformer pipeline and the iris random forest of tests/fixtures/onnx),
# beside the native breast_cancer model, in one run with wrk; then mlserve predict over 200,000
# loans rows. Prints Markdown. Needs wrk (apt-get install wrk) and ONNX Runtime's library
# (scripts/fetch-onnxruntime.sh). Usage: scripts/bench-onnx.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }
ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(scripts/fetch-onnxruntime.sh)}"
export ORT_DYLIB_PATH
cargo build --release --quiet --bin mlserve
bin="$PWD/target/release/mlserve"
fixtures="$PWD/tests/fixtures/onnx"
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

printf 'sepal_length\nsepal_width\npetal_length\npetal_width\n' >"$work/iris.txt"
"$bin" import "$fixtures/loans_column_transformer.onnx" --name loans --labels declined,approved --models "$work/models" >/dev/null
"$bin" import "$fixtures/iris_random_forest.onnx" --name iris_forest --features "$work/iris.txt" \
  --labels setosa,versicolor,virginica --models "$work/models" >/dev/null
(cd "$work" && "$bin" train --dataset breast-cancer --algorithm logistic-regression --models models --quiet)

port="$(free_port)"
(cd "$work" && exec "$bin" serve --models models --addr "127.0.0.1:$port" --log-format json --watch false --prediction-log false 2>"$work/server.log") &
pids+=($!)
server_pid=$!
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done

body() { # model rows -> file with a body of that many example rows
  curl -sf "http://127.0.0.1:$port/api/models/$1" | python3 -c '
import json, sys
example = json.load(sys.stdin)["example"]
rows = int(sys.argv[1])
print(json.dumps(example if rows == 1 else {"instances": [example] * rows}))' "$2" >"$work/$1-$2.json"
  local status
  status="$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' --data @"$work/$1-$2.json" "http://127.0.0.1:$port/api/models/$1/predict")"
  [ "$status" = 200 ] || { echo "$1 answered $status" >&2; exit 1; }
}

run_wrk() { # model rows connections -> "req/s p50 p99 errors"
  cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/$1-$2.json"); wrk.body = f:read("*a"); f:close()
LUA
  wrk -t2 -c"$3" -d"${duration}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/api/models/$1/predict" >"$work/wrk.txt"
  python3 scripts/wrk-summary.py "$work/wrk.txt"
}

echo "| model | backend | rows per request | connections | requests/s | rows/s | p50 (ms) | p99 (ms) | non-2xx |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for model in breast_cancer loans iris_forest; do
  backend=onnx; [ "$model" = breast_cancer ] && backend=native
  for rows in 1 100; do
    body "$model" "$rows"
    read -r rps p50 p99 errors _ <<<"$(run_wrk "$model" "$rows" 8)"
    echo "| $model | $backend | $rows | 8 | $rps | $((rps * rows)) | $p50 | $p99 | $errors |"
  done
done
rss_kb="$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")"
echo
echo "resident memory with the three models and ONNX Runtime loaded, after the runs: $((rss_kb / 1024)) MiB"

python3 - "$work/rows.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("age,income,plan,region\n")
    for i in range(200_000):
        income = "" if i % 10 == 0 else str(30_000 + (i * 37) % 50_000)
        f.write(f"{18 + i % 60},{income},{['basic', 'plus', 'pro'][i % 3]},{['north', 'south', 'east', 'west'][i % 4]}\n")
PY
t0="$(now_ms)"
(cd "$work" && "$bin" predict --model loans --input rows.csv --output out.csv --models models --quiet)
t1="$(now_ms)"
echo "offline batch, loans (ONNX): 200000 rows in $((t1 - t0)) ms = $((200000 * 1000 / (t1 - t0 + 1))) rows/s"

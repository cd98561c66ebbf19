#!/usr/bin/env bash
# Boosted trees served over HTTP: single-row POST predict on breast cancer with wrk, for an
# imported XGBoost model, an imported LightGBM model and a natively trained gradient-boosting
# model, beside the native logistic regression and a bare axum endpoint that only parses the
# same JSON body, in the same run (prediction log off, to measure the model's path); then the
# resident memory a large XGBoost file takes once loaded, against the file's size.
# Prints Markdown. Needs wrk (apt-get install wrk).
# Usage: scripts/bench-boosted-serve.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet --bin mlserve --example bare_json
bin="$PWD/target/release/mlserve"
fixtures="$PWD/tests/fixtures/boosted"
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# The breast cancer features as the fixtures name them, for the imports' schemas.
python3 - "$fixtures/expected.json" "$work/features.txt" <<'PY'
import json, sys
names = json.load(open(sys.argv[1]))["datasets"]["breast_cancer"]["features"]
open(sys.argv[2], "w").write("\n".join(names) + "\n")
PY
labels="malignant,benign"
"$bin" import "$fixtures/xgb_binary_logistic.json" --name cancer_xgboost --labels "$labels" \
  --models "$work/models" >/dev/null
"$bin" import "$fixtures/lgb_binary.txt" --name cancer_lightgbm --labels "$labels" \
  --features "$work/features.txt" --models "$work/models" >/dev/null
"$bin" train --dataset breast-cancer --algorithm gradient-boosting --name cancer_boosting \
  --models "$work/models" --quiet
"$bin" train --dataset breast-cancer --algorithm logistic-regression --name cancer_logistic \
  --models "$work/models" --quiet

port="$(free_port)"
(cd "$work" && exec "$bin" serve --models models --addr "127.0.0.1:$port" --log-format json \
  --watch false --prediction-log false 2>"$work/server.log") &
pids+=($!)
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
bare_port="$(free_port)"
"$PWD/target/release/examples/bare_json" "127.0.0.1:$bare_port" 2>/dev/null &
pids+=($!)
until curl -sf -X POST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$bare_port/predict" >/dev/null; do sleep 0.005; done

# One body for all: the logistic model's example row (every model reads the same 30 features).
curl -sf "http://127.0.0.1:$port/api/models/cancer_logistic" \
  | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["example"]))' >"$work/body.json"
for model in cancer_logistic cancer_boosting cancer_xgboost cancer_lightgbm; do
  status="$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    --data @"$work/body.json" "http://127.0.0.1:$port/api/models/$model/predict")"
  [ "$status" = 200 ] || { echo "$model answered $status" >&2; exit 1; }
done
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json"); wrk.body = f:read("*a"); f:close()
LUA
run_wrk() { # url connections -> "req/s p50 p99 errors"
  wrk -t2 -c"$2" -d"${duration}s" --latency -s "$work/post.lua" "$1" >"$work/wrk.txt"
  python3 scripts/wrk-summary.py "$work/wrk.txt"
}

echo "| endpoint | connections | requests/s | of bare | p50 (ms) | p99 (ms) | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in 8 64; do
  read -r bare_rps bare_p50 bare_p99 bare_err _ <<<"$(run_wrk "http://127.0.0.1:$bare_port/predict" "$c")"
  echo "| bare axum, parse JSON only | $c | $bare_rps | 1.00 | $bare_p50 | $bare_p99 | $bare_err |"
  for model in cancer_logistic cancer_boosting cancer_xgboost cancer_lightgbm; do
    read -r rps p50 p99 err _ <<<"$(run_wrk "http://127.0.0.1:$port/api/models/$model/predict" "$c")"
    ratio="$(python3 -c "print(f'{$rps/$bare_rps:.2f}')")"
    echo "| mlserve predict $model | $c | $rps | $ratio | $p50 | $p99 | $err |"
  done
done

# Memory: an XGBoost file of 10,000 trees (the fixture's trees repeated, a valid model of the
# same shape), loaded alone, against a server with no model.
python3 - "$fixtures/xgb_binary_logistic.json" "$work/big.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
model = doc["learner"]["gradient_booster"]["model"]
trees = model["trees"]
big = [dict(trees[i % len(trees)], id=i) for i in range(10_000)]
model["trees"] = big
model["tree_info"] = [0] * len(big)
model["iteration_indptr"] = list(range(len(big) + 1))
model["gbtree_model_param"]["num_trees"] = str(len(big))
doc["learner"]["attributes"].pop("best_iteration", None)
json.dump(doc, open(sys.argv[2], "w"))
PY
memory() { # models dir -> resident MiB once ready and after a predict
  local p
  p="$(free_port)"
  (cd "$work" && exec "$bin" serve --models "$1" --addr "127.0.0.1:$p" --log-format json \
    --watch false --prediction-log false 2>>"$work/server.log") &
  local pid=$!
  pids+=("$pid")
  until curl -s "http://127.0.0.1:$p/health/live" >/dev/null; do sleep 0.01; done
  sleep 1
  if [ -n "${2:-}" ]; then
    curl -sf -H 'content-type: application/json' --data @"$work/body.json" \
      "http://127.0.0.1:$p/api/models/$2/predict" >/dev/null
  fi
  rss_mib "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
mkdir -p "$work/empty"
"$bin" import "$work/big.json" --name big --labels "$labels" --models "$work/big-models" >/dev/null
empty="$(memory "$work/empty")"
loaded="$(memory "$work/big-models" big)"
file_mib="$(python3 -c "import os; print(f'{os.path.getsize(\"$work/big.json\") / 2**20:.1f}')")"
bin_mib="$(python3 -c "import os; print(f'{os.path.getsize(\"$work/big-models/big/1/model.bin\") / 2**20:.1f}')")"
echo
echo "| server | resident memory (MiB) |"
echo "|---|---:|"
echo "| no model | $empty |"
echo "| an XGBoost JSON file of 10,000 trees ($file_mib MiB; model.bin $bin_mib MiB) | $loaded |"
python3 -c "print(f'the model takes {$loaded - $empty:.1f} MiB once loaded: {($loaded - $empty) / $file_mib:.2f} times the file')"

#!/usr/bin/env bash
# CPU instructions per single-row predict (breast_cancer, 30 features): the bare axum endpoint
# (examples/bare_json.rs, parse the JSON only), mlserve with the prediction log off, and mlserve
# with the log on SQLite, each run under valgrind's callgrind while wrk sends it requests.
# Every instruction the process runs is counted, on every thread (the log's writer task and
# SQLite's threads too), from the first request to one second after the last (so each logged
# row is written and counted). Unlike requests per second, the counts hardly move from run to
# run or with what else the machine is doing: on a shared 2-core machine wrk's ratios move by
# 10-20% between runs, so this is the measure to compare two builds with. Kernel time (the
# socket writes and reads) is not counted: see scripts/bench-log.sh for the wall-clock picture.
# Needs wrk and valgrind (apt-get install wrk valgrind).
# Usage: scripts/bench-instructions.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
for tool in wrk valgrind callgrind_control callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed: apt-get install wrk valgrind" >&2; exit 2; }
done
cargo build --release --quiet --bin mlserve --example bare_json
bin="$PWD/target/release/mlserve"
source scripts/bench-common.sh
bench_workspace KILL
bench_breast_cancer_request "$bin"

# measure NAME URL_PATH READY_CHECK COMMAND... -> prints "NAME requests instructions"
measure() {
  local name="$1" path="$2" ready="$3"; shift 3
  local port; port="$(free_port)"
  local out="$work/callgrind.$name"
  (cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$@" "127.0.0.1:$port" \
    >/dev/null 2>>"$work/$name.log") &
  local pid=$!
  pids+=("$pid")
  local url="http://127.0.0.1:$port"
  for _ in $(seq 1 600); do
    if eval "$ready" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  callgrind_control -z "$pid" >/dev/null
  local requests
  requests="$(wrk -t1 -c4 -d"${duration}s" -s "$work/post.lua" "$url$path" | awk '/requests in/ {print $1}')"
  sleep 1
  callgrind_control -d "$pid" >/dev/null
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local instructions=0 file
  for file in "$out".*; do
    local total
    total="$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
    instructions=$((instructions + ${total:-0}))
  done
  echo "$name $requests $instructions"
}

serve=("$bin" serve --grpc-addr off --log-format json --log-dir "$work/logs" --watch false)
ready='curl -sf "$url/health/ready"'
results=(
  "$(measure bare /predict 'curl -sf -X POST -H "content-type: application/json" -d "{}" "$url/predict"' \
    "$PWD/target/release/examples/bare_json")"
  "$(measure off /api/models/breast_cancer/predict "$ready" "${serve[@]}" --prediction-log false --addr)"
  "$(measure sqlite /api/models/breast_cancer/predict "$ready" \
    "${serve[@]}" --database-url "sqlite://$work/predictions.db" --addr)"
)

python3 - "${results[@]}" <<'PY'
import sys
rows = [line.split() for line in sys.argv[1:]]
per = {name: int(instr) / int(n) for name, n, instr in rows}
print("| server | requests | instructions per request | bare / this |")
print("|---|---:|---:|---:|")
labels = {"bare": "bare axum, parse JSON only", "off": "mlserve, prediction log off", "sqlite": "mlserve, prediction log on SQLite"}
for name, n, _ in rows:
    print(f"| {labels[name]} | {int(n):,} | {per[name]:,.0f} | {per['bare'] / per[name]:.2f} |")
print()
print(f"the SQLite log adds {per['sqlite'] - per['off']:,.0f} instructions a request "
      f"({per['sqlite'] / per['off'] - 1:.0%} of the log-off server's)")
PY

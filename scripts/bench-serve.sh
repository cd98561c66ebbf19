#!/usr/bin/env bash
# Serving benchmark: single-row POST predict on breast_cancer with wrk, the server as it runs by
# default (prediction log on, SQLite), beside a bare axum endpoint that only parses the same JSON
# body, in the same run; then start-up time, resident memory and offline batch throughput.
# Prints Markdown. Needs wrk (apt-get install wrk). scripts/bench-log.sh adds the log off and
# PostgreSQL.
# Usage: scripts/bench-serve.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet --bin mlserve --example bare_json
bin="$PWD/target/release/mlserve"
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

# mlserve on the demo models; logs to a file, as a production server's would go.
port="$(free_port)"
started="$(now_ms)"
(cd "$work" && exec "$bin" serve --demo-models --addr "127.0.0.1:$port" --log-format json --watch false --prediction-log false 2>"$work/server.log") &
pids+=($!)
server_pid=$!
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.005; done
ready="$(now_ms)"
rm -rf "$work/models-fresh"
# Start-up to ready on an existing repository (the demo models are trained now).
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
port="$(free_port)"
started2="$(now_ms)"
(cd "$work" && exec "$bin" serve --addr "127.0.0.1:$port" --log-format json --watch false 2>>"$work/server.log") &
pids+=($!)
server_pid=$!
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.002; done
ready2="$(now_ms)"

bare_port="$(free_port)"
"$PWD/target/release/examples/bare_json" "127.0.0.1:$bare_port" 2>/dev/null &
pids+=($!)
until curl -sf -X POST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$bare_port/predict" >/dev/null; do sleep 0.005; done

curl -sf "http://127.0.0.1:$port/api/models/breast_cancer" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["example"]))' >"$work/body.json"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json"); wrk.body = f:read("*a"); f:close()
LUA
check="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' --data @"$work/body.json" "http://127.0.0.1:$port/api/models/breast_cancer/predict")"
[ "$check" = 200 ] || { echo "predict answered $check" >&2; exit 1; }

run_wrk() { # url connections -> "req/s p50 p99 errors"
  wrk -t2 -c"$2" -d"${duration}s" --latency -s "$work/post.lua" "$1" >"$work/wrk.txt"
  python3 scripts/wrk-summary.py "$work/wrk.txt"
}

echo "| endpoint | connections | requests/s | p50 (ms) | p99 (ms) | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
declare -A rps
for c in 8 64; do
  read -r bare_rps bare_p50 bare_p99 bare_err _ <<<"$(run_wrk "http://127.0.0.1:$bare_port/predict" "$c")"
  read -r ml_rps ml_p50 ml_p99 ml_err _ <<<"$(run_wrk "http://127.0.0.1:$port/api/models/breast_cancer/predict" "$c")"
  echo "| bare axum, parse JSON only | $c | $bare_rps | $bare_p50 | $bare_p99 | $bare_err |"
  echo "| mlserve predict breast_cancer | $c | $ml_rps | $ml_p50 | $ml_p99 | $ml_err |"
  rps[$c]="$(python3 -c "print(f'{100*$ml_rps/$bare_rps:.0f}')")"
done
echo
echo "predict throughput (prediction log on, SQLite) relative to the bare endpoint: ${rps[8]}% at 8 connections, ${rps[64]}% at 64"
rss_kb="$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")"
echo "start-up to ready: $((ready - started)) ms with training the demo models into an empty repository, $((ready2 - started2)) ms on an existing one"
echo "resident memory with the demo models after the load: $((rss_kb / 1024)) MiB"

# Offline batch: 200 000 rows of breast cancer.
python3 - "$work/body.json" "$work/rows.csv" <<'PY'
import json, sys
row = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    f.write(",".join(row) + "\n")
    line = ",".join(str(v) for v in row.values()) + "\n"
    for _ in range(200_000):
        f.write(line)
PY
t0="$(now_ms)"
(cd "$work" && "$bin" predict --model breast_cancer --input rows.csv --output out.csv --quiet)
t1="$(now_ms)"
echo "offline batch: 200000 rows in $((t1 - t0)) ms = $((200000 * 1000 / (t1 - t0 + 1))) rows/s"

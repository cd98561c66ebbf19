#!/usr/bin/env bash
# Prediction log memory benchmark: resident memory of a server with the log on (SQLite, the
# default) during a soak of single-row POST predict on breast_cancer at 256 connections, and
# through the idle minutes after it (when the live-metric refresh reads the log every minute).
# Prints Markdown: RSS every 10 s of the soak and every 30 s of idle, the requests served, the
# rows written and dropped, and the database's size.
# Needs wrk (apt-get install wrk).
# Usage: scripts/bench-log-memory.sh [soak seconds, default 60] [idle seconds, default 300]
set -euo pipefail
cd "$(dirname "$0")/.."
soak="${1:-60}"
idle="${2:-300}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet --bin mlserve
bin="$PWD/target/release/mlserve"
work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

(cd "$work" && "$bin" train --dataset breast-cancer --algorithm logistic-regression --name breast_cancer --quiet >/dev/null)
(cd "$work" && exec "$bin" serve --addr "127.0.0.1:$port" --log-format json --watch false \
  --database-url "sqlite://$work/predictions.db" 2>>"$work/server.log") &
server_pid=$!
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
curl -sf "http://127.0.0.1:$port/api/models/breast_cancer" \
  | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["example"]))' >"$work/body.json"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json"); wrk.body = f:read("*a"); f:close()
LUA

rss_mib() { awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$server_pid/status"; }
metric() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

echo "| phase | seconds | resident memory (MiB) |"
echo "|---|---:|---:|"
echo "| start | 0 | $(rss_mib) |"
wrk -t2 -c256 -d"${soak}s" -s "$work/post.lua" "http://127.0.0.1:$port/api/models/breast_cancer/predict" >"$work/wrk.txt" &
wrk_pid=$!
for ((t = 10; t <= soak; t += 10)); do
  sleep 10
  echo "| soak, 256 connections | $t | $(rss_mib) |"
done
wait "$wrk_pid"
for ((t = 30; t <= idle; t += 30)); do
  sleep 30
  echo "| idle after the soak | $t | $(rss_mib) |"
done
echo
echo "served: $(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") requests/s over ${soak} s"
echo "prediction log: $(metric mlserve_prediction_log_written_total) rows written, $(metric mlserve_prediction_log_dropped_total || echo 0) dropped"
echo "database: $(du -ch "$work"/predictions.db* | tail -1 | cut -f1) (file, WAL and shared memory)"

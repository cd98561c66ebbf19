#!/usr/bin/env bash
# Prediction log durability under load: single-row POST predicts on breast_cancer at 64
# connections (wrk), the server killed with SIGKILL mid-load, several times; each time, how far
# before the kill the last logged answer was (the log's loss window on kill -9), from the time
# of the kill and the newest row the SQLite file holds after it. Prints Markdown.
# Needs wrk (apt-get install wrk). Usage: scripts/bench-log-kill.sh [runs, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet --bin mlserve
bin="$PWD/target/release/mlserve"
work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
(cd "$work" && "$bin" train --dataset breast-cancer --algorithm logistic-regression --name breast_cancer --quiet >/dev/null)
now_ms() { date +%s%3N; }

echo "| run | requests/s | rows logged | last logged answer before the kill (ms) |"
echo "|---:|---:|---:|---:|"
for run in $(seq 1 "$runs"); do
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  rm -f "$work"/kill.db*
  (cd "$work" && exec "$bin" serve --addr "127.0.0.1:$port" --watch false \
    --database-url "sqlite://$work/kill.db" 2>>"$work/server.log") &
  server_pid=$!
  until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
  if [ ! -f "$work/post.lua" ]; then
    curl -sf "http://127.0.0.1:$port/api/models/breast_cancer" \
      | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["example"]))' >"$work/body.json"
    cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json"); wrk.body = f:read("*a"); f:close()
LUA
  fi
  wrk -t2 -c64 -d6s -s "$work/post.lua" "http://127.0.0.1:$port/api/models/breast_cancer/predict" >"$work/wrk.txt" 2>&1 &
  wrk_pid=$!
  sleep 4
  killed_at="$(now_ms)"
  kill -9 "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  wait "$wrk_pid" || true
  read -r rows newest <<<"$(python3 -c "
import sqlite3
c = sqlite3.connect('$work/kill.db')
print(*c.execute('select count(*), max(created_at_ms) from predictions').fetchone())")"
  rps="$(awk '/Requests\/sec/ {printf "%d", $2}' "$work/wrk.txt")"
  echo "| $run | $rps | $rows | $((killed_at - newest)) |"
done

#!/usr/bin/env bash
# Prediction log benchmark: single-row POST predict on breast_cancer with wrk, with the log
# off, on SQLite and on PostgreSQL, beside a bare axum endpoint that only parses the JSON, on
# the same machine. Every server runs at once (an idle one costs nothing) and the runs are
# interleaved in rounds, each round running every server at 8 and at 64 connections: on a
# shared machine throughput drifts by 10-20% within minutes, so each ratio is taken between
# runs a few seconds apart, and the median over the rounds is printed. Prints Markdown: each
# run, then each mode's median share of the bare endpoint's throughput and of the log-off
# server's, then how many predictions each database holds and how many were dropped.
# Needs wrk (apt-get install wrk); PostgreSQL comes from scripts/test-postgres.sh.
# scripts/bench-instructions.sh counts instructions per request instead, which hardly vary.
# Usage: scripts/bench-log.sh [seconds per run, default 5] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
rounds="${2:-3}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet --bin mlserve --example bare_json
bin="$PWD/target/release/mlserve"
source scripts/bench-common.sh
bench_workspace
bench_postgres_database "mlserve_bench_$$"

# The demo models, trained once.
(cd "$work" && "$bin" train --dataset breast-cancer --algorithm logistic-regression --name breast_cancer --quiet >/dev/null)

start_server() { # extra args... -> sets port and server_pid
  port="$(free_port)"
  (cd "$work" && exec "$bin" serve --addr "127.0.0.1:$port" --grpc-addr off --log-format json --watch false "$@" 2>>"$work/server.log") &
  server_pid=$!
  pids+=("$server_pid")
  until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
}

run_wrk() { # url connections -> "req/s p50 p99 non2xx"
  wrk -t2 -c"$2" -d"${duration}s" --latency -s "$work/post.lua" "$1" >"$work/wrk.txt"
  python3 scripts/wrk-summary.py "$work/wrk.txt"
}

metric() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

# The request body: the model's example row.
start_server --prediction-log false
curl -sf "http://127.0.0.1:$port/api/models/breast_cancer" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["example"]))' >"$work/body.json"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json"); wrk.body = f:read("*a"); f:close()
LUA
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true

bare_port="$(free_port)"
"$PWD/target/release/examples/bare_json" "127.0.0.1:$bare_port" 2>/dev/null &
pids+=($!)
until curl -sf -X POST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$bare_port/predict" >/dev/null; do sleep 0.005; done

start_server --prediction-log false
off_port="$port"
start_server --database-url "sqlite://$work/predictions.db"
sqlite_port="$port"
start_server --database-url "$pg_url"
postgres_port="$port"

declare -A rps
echo "| round | connections | prediction log | requests/s | p50 (ms) | p99 (ms) | non-2xx |"
echo "|---:|---:|---|---:|---:|---:|---:|"
for round in $(seq 1 "$rounds"); do
  for c in 8 64; do
    for mode in bare off sqlite postgres; do
      case "$mode" in
        bare) url="http://127.0.0.1:$bare_port/predict"; label="(bare axum, parse JSON only)" ;;
        off) url="http://127.0.0.1:$off_port/api/models/breast_cancer/predict"; label=off ;;
        sqlite) url="http://127.0.0.1:$sqlite_port/api/models/breast_cancer/predict"; label=SQLite ;;
        postgres) url="http://127.0.0.1:$postgres_port/api/models/breast_cancer/predict"; label=PostgreSQL ;;
      esac
      read -r r p50 p99 errors _ <<<"$(run_wrk "$url" "$c")"
      rps["$mode-$c-$round"]="$r"
      echo "| $round | $c | $label | $r | $p50 | $p99 | $errors |"
    done
  done
done
echo
sleep 1
for mode in sqlite postgres; do
  port_var="${mode}_port"
  port="${!port_var}"
  written="$(metric mlserve_prediction_log_written_total)"
  dropped="$(metric mlserve_prediction_log_dropped_total)"
  notes+=("$mode: ${written:-0} predictions written, ${dropped:-0} dropped")
done
# The median over the rounds of each round's ratio.
ratios() { # mode connections base
  local values=()
  for round in $(seq 1 "$rounds"); do
    values+=("${rps[$1-$2-$round]}/${rps[$3-$2-$round]}")
  done
  python3 -c "import statistics,sys; r=[eval(v) for v in sys.argv[1:]]; print(f'{statistics.median(r):.2f} (rounds: {\", \".join(f\"{x:.2f}\" for x in r)})')" "${values[@]}"
}
for mode in off sqlite postgres; do
  for c in 8 64; do
    line="log $mode at $c connections: $(ratios "$mode" "$c" bare) of the bare endpoint"
    [ "$mode" != off ] && line+=", $(ratios "$mode" "$c" off) of the log-off server"
    echo "$line"
  done
done
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
printf '%s\n' "${notes[@]}"
sqlite_rows="$(python3 -c "import sqlite3; print(sqlite3.connect('$work/predictions.db').execute('select count(*) from predictions').fetchone()[0])")"
pg_rows="$(psql -tA "$pg_url" -c 'select count(*) from predictions')"
echo "rows in the databases after shutdown: SQLite $sqlite_rows, PostgreSQL $pg_rows"

#!/usr/bin/env bash
# gRPC against REST: ModelInfer over gRPC (raw FP64 contents, every stream on one HTTP/2
# connection) and POST /v2/models/{model}/infer over REST (JSON, one kept-alive connection per
# stream), one row and 1,000 rows per call, 8 and 64 streams, on the same server in the same run,
# as it runs by default (prediction log on, SQLite). The load generator is examples/grpc_load.rs
# for both, pinned to its own core where taskset exists (the server gets the other).
# Prints Markdown with gRPC's requests/s as a multiple of REST's.
# Usage: scripts/bench-grpc.sh [seconds per run, default 10] [model, default breast_cancer] [log: true|false, default true]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
model="${2:-breast_cancer}"
log="${3:-true}"
cargo build --release --quiet --bin mlserve --example grpc_load
bin="$PWD/target/release/mlserve"
load="$PWD/target/release/examples/grpc_load"
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
server_cpu=(); client_cpu=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_cpu=(taskset -c 0); client_cpu=(taskset -c 1)
fi

port="$(free_port)"; grpc_port="$(free_port)"
(cd "$work" && exec "${server_cpu[@]}" "$bin" serve --demo-models --addr "127.0.0.1:$port" \
  --grpc-addr "127.0.0.1:$grpc_port" --log-format json --watch false \
  --prediction-log "$log" 2>"$work/server.log") &
pids+=($!)
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.01; done
# The model's example row (in its training range), in schema order.
row="$(curl -sf "http://127.0.0.1:$port/api/models/$model" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(str(float(d["example"][f["name"]])) for f in d["features"]))')"
features="$(echo "$row" | tr ',' '\n' | wc -l)"

echo "Model $model ($features features), prediction log $log, $duration s per run after 1 s of warm-up; server and load generator pinned to one core each: ${server_cpu[*]:-no} / ${client_cpu[*]:-no}."
echo
echo "| rows per call | streams | REST requests/s | gRPC requests/s | gRPC / REST | REST p50 / p99 (ms) | gRPC p50 / p99 (ms) | errors |"
echo "|---:|---:|---:|---:|---:|---|---|---:|"
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
for rows in 1 1000; do
  for streams in 8 64; do
    rest="$("${client_cpu[@]}" "$load" rest "127.0.0.1:$port" "$model" "$row" "$rows" "$streams" "$duration")"
    grpc="$("${client_cpu[@]}" "$load" grpc "127.0.0.1:$grpc_port" "$model" "$row" "$rows" "$streams" "$duration")"
    r="$(field "$rest" requests_per_sec)"; g="$(field "$grpc" requests_per_sec)"
    ratio="$(python3 -c "print(f'{$g / max($r, 1):.2f}')")"
    errors="$(( $(field "$rest" errors) + $(field "$grpc" errors) ))"
    echo "| $rows | $streams | ${r%.0} | ${g%.0} | $ratio | $(field "$rest" p50_ms) / $(field "$rest" p99_ms) | $(field "$grpc" p50_ms) / $(field "$grpc" p99_ms) | $errors |"
  done
done

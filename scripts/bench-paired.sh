#!/usr/bin/env bash
# Paired serving benchmark: two servers loaded at the same time, sharing one core, so that both
# see the same machine. On a shared virtual machine, throughput drifts by 20-30% within minutes,
# and runs taken one after the other (scripts/bench-log.sh) give ratios that move by 0.1-0.2
# from round to round; two servers on one core under the same load at once share whatever the
# machine does in those seconds, and the ratio of their throughputs repeats within about 0.02.
#
# Every server is pinned to the last CPU (taskset), and two wrk processes, one a server, run at
# once on the first, single-row POST predict on breast_cancer (30 features). Each server gets
# about half of its core, so the ratio of throughputs is the ratio of CPU cost a request: the
# server's own and the kernel's work for it. This is harsher than bench-log.sh's setting, where
# wrk shares both cores with the server and its own CPU per request dilutes every ratio.
#
# Pairs: the bare axum endpoint that only parses the JSON (examples/bare_json.rs) against
# mlserve with the prediction log off, on SQLite and on PostgreSQL; and the log off against
# each log. Prints Markdown: each pair's throughput ratio (second / first) per round and the
# median, and each server's CPU a request (from /proc/PID/stat).
# A second mlserve binary can be compared too: MLSERVE_OTHER_BIN=path adds the pair
# (this build, log off) against (that binary, log off), for A/B runs of two builds.
# Needs wrk (apt-get install wrk), taskset (util-linux) and at least 2 CPUs; PostgreSQL comes
# from scripts/test-postgres.sh (MLSERVE_TEST_POSTGRES_URL to use another).
# Usage: scripts/bench-paired.sh [seconds per run, default 6] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-6}"
rounds="${2:-3}"
for tool in wrk taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed: apt-get install wrk util-linux" >&2; exit 2; }
done
cpus="$(nproc)"
[ "$cpus" -ge 2 ] || { echo "needs at least 2 CPUs (servers on one, wrk on another)" >&2; exit 2; }
server_cpu=$((cpus - 1))
cargo build --release --quiet --bin mlserve --example bare_json
bin="$PWD/target/release/mlserve"
source scripts/bench-common.sh
bench_workspace
bench_postgres_database "mlserve_paired_$$"
bench_breast_cancer_request "$bin"

declare -A port pid path
start() { # name ready-path command... : started pinned to the server CPU
  local name="$1" ready="$2"; shift 2
  local p; p="$(free_port)"
  (cd "$work" && exec taskset -c "$server_cpu" "$@" "127.0.0.1:$p" 2>>"$work/$name.log" >/dev/null) &
  pid[$name]=$!
  pids+=("${pid[$name]}")
  port[$name]="$p"
  for _ in $(seq 1 500); do
    if eval "curl -sf $ready" >/dev/null 2>&1; then return; fi
    sleep 0.02
  done
  echo "$name did not start: $(tail -3 "$work/$name.log")" >&2
  exit 1
}
serve=(serve --grpc-addr off --log-format json --watch false)
predict=/api/models/breast_cancer/predict
start bare "-X POST -H 'content-type: application/json' -d '{}' http://127.0.0.1:\$p/predict" \
  "$PWD/target/release/examples/bare_json"
path[bare]=/predict
start off 'http://127.0.0.1:$p/health/ready' "$bin" "${serve[@]}" --prediction-log false --addr
start sqlite 'http://127.0.0.1:$p/health/ready' "$bin" "${serve[@]}" \
  --database-url "sqlite://$work/predictions.db" --addr
start postgres 'http://127.0.0.1:$p/health/ready' "$bin" "${serve[@]}" --database-url "$pg_url" --addr
path[off]=$predict path[sqlite]=$predict path[postgres]=$predict
pairs=("bare off" "bare sqlite" "bare postgres" "off sqlite" "off postgres")
if [ -n "${MLSERVE_OTHER_BIN:-}" ]; then
  start other 'http://127.0.0.1:$p/health/ready' "$MLSERVE_OTHER_BIN" "${serve[@]}" --prediction-log false --addr
  path[other]=$predict
  pairs+=("off other")
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second="$(getconf CLK_TCK)"

# run_pair A B connections -> "ratio cpu_us_a cpu_us_b rps_a rps_b"
run_pair() {
  local a="$1" b="$2" c="$3"
  local a0 b0 a1 b1
  a0="$(cpu_ticks "${pid[$a]}")"; b0="$(cpu_ticks "${pid[$b]}")"
  taskset -c 0 wrk -t1 -c"$c" -d"${duration}s" -s "$work/post.lua" "http://127.0.0.1:${port[$a]}${path[$a]}" >"$work/wrk.a" &
  local wa=$!
  taskset -c 0 wrk -t1 -c"$c" -d"${duration}s" -s "$work/post.lua" "http://127.0.0.1:${port[$b]}${path[$b]}" >"$work/wrk.b" &
  local wb=$!
  wait "$wa" "$wb"
  a1="$(cpu_ticks "${pid[$a]}")"; b1="$(cpu_ticks "${pid[$b]}")"
  python3 - "$work/wrk.a" "$work/wrk.b" "$((a1 - a0))" "$((b1 - b0))" "$ticks_per_second" "$duration" <<'PY'
import re, sys
def summary(path):
    text = open(path).read()
    done = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad:
        sys.exit(f"{path}: {bad.group(1)} answers were not 2xx")
    return done
na, nb = summary(sys.argv[1]), summary(sys.argv[2])
ta, tb, hz, secs = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
print(f"{nb / na:.3f} {ta / hz * 1e6 / na:.1f} {tb / hz * 1e6 / nb:.1f} {na / secs:.0f} {nb / secs:.0f}")
PY
}

label() {
  case "$1" in
    bare) echo "bare axum (parse JSON only)" ;;
    off) echo "mlserve, log off" ;;
    sqlite) echo "mlserve, log on SQLite" ;;
    postgres) echo "mlserve, log on PostgreSQL" ;;
    other) echo "other mlserve ($MLSERVE_OTHER_BIN), log off" ;;
  esac
}

echo "| first | second | connections each | second / first, throughput (rounds) | median | CPU µs a request, first / second |"
echo "|---|---|---:|---|---:|---:|"
for c in 8 64; do
  for pair in "${pairs[@]}"; do
    read -r a b <<<"$pair"
    ratios=() cpu_a=() cpu_b=()
    for _ in $(seq 1 "$rounds"); do
      read -r ratio ca cb _ _ <<<"$(run_pair "$a" "$b" "$c")"
      ratios+=("$ratio") cpu_a+=("$ca") cpu_b+=("$cb")
    done
    python3 - "$(label "$a")" "$(label "$b")" "$c" "${ratios[*]}" "${cpu_a[*]}" "${cpu_b[*]}" <<'PY'
import statistics, sys
first, second, c, ratios, cpu_a, cpu_b = sys.argv[1:]
r = [float(x) for x in ratios.split()]
ca = statistics.median(float(x) for x in cpu_a.split())
cb = statistics.median(float(x) for x in cpu_b.split())
print(f"| {first} | {second} | {c} | {', '.join(f'{x:.2f}' for x in r)} | **{statistics.median(r):.2f}** | {ca:.1f} / {cb:.1f} |")
PY
  done
done
echo
sleep 1
for name in sqlite postgres; do
  written="$(curl -sf "http://127.0.0.1:${port[$name]}/metrics" | awk '$1 == "mlserve_prediction_log_written_total" {print $2}')"
  dropped="$(curl -sf "http://127.0.0.1:${port[$name]}/metrics" | awk '$1 == "mlserve_prediction_log_dropped_total" {print $2}')"
  echo "$name: ${written:-0} predictions written, ${dropped:-0} dropped"
done

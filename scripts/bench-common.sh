# Shared set-up of the serving benchmarks that compare mlserve with the bare endpoint
# (bench-log.sh, bench-paired.sh, bench-instructions.sh). Sourced, not run.

# A scratch directory ($work) and a list of started servers ($pids), both cleaned up on exit
# with the signal given (default TERM); then whatever bench_on_exit added, in order.
bench_workspace() {
  bench_kill_signal="${1:-TERM}"
  work="$(mktemp -d)"
  pids=()
  bench_exit_steps=()
  trap bench_cleanup EXIT
}
bench_on_exit() { bench_exit_steps+=("$1"); }
bench_cleanup() {
  local pid step
  for pid in "${pids[@]}"; do kill "-$bench_kill_signal" "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  for step in "${bench_exit_steps[@]}"; do eval "$step" || true; done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A database of its own on the test PostgreSQL (scripts/test-postgres.sh, or
# MLSERVE_TEST_POSTGRES_URL), dropped on exit: sets $pg_url.
bench_postgres_database() { # name
  pg_base="${MLSERVE_TEST_POSTGRES_URL:-$(scripts/test-postgres.sh)}"
  pg_db="$1"
  psql -q "$pg_base" -c "CREATE DATABASE $pg_db" >/dev/null
  pg_url="${pg_base%/*}/$pg_db"
  bench_on_exit 'psql -q "$pg_base" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1'
}

# The breast_cancer demo model trained into $work/models with mlserve binary $1, and its
# example row as a wrk POST body ($work/body.json, $work/post.lua).
bench_breast_cancer_request() { # mlserve binary
  (cd "$work" && "$1" train --dataset breast-cancer --algorithm logistic-regression --name breast_cancer --quiet >/dev/null)
  python3 - "$work/models/breast_cancer" "$work/body.json" <<'PY'
import json, pathlib, sys, tomllib
version = sorted(p for p in pathlib.Path(sys.argv[1]).iterdir() if p.is_dir())[-1]
manifest = tomllib.loads((version / "model.toml").read_text())
json.dump({f["name"]: f["example"] for f in manifest["features"]}, open(sys.argv[2], "w"))
PY
  cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json"); wrk.body = f:read("*a"); f:close()
LUA
}

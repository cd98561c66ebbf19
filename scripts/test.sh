#!/usr/bin/env bash
# Runs the whole test suite: unit tests, end-to-end tests against the real binary.
# This is the README's test command; .ci/run calls it after installing what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v cargo-nextest >/dev/null 2>&1; then
  # nextest does not run doc tests; run them first so the suite's summary stays the last line.
  cargo test --doc "$@"
  cargo nextest run --no-fail-fast "$@"
else
  cargo test "$@"
fi

#!/usr/bin/env bash
# Runs the whole test suite: unit tests, end-to-end tests against the real binary.
# This is the README's test command; .ci/run calls it after installing what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
  # nextest does not run doc tests.
  cargo test --doc "$@"
else
  cargo test "$@"
fi

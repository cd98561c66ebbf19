#!/usr/bin/env bash
# Puts ONNX Runtime's shared library (libonnxruntime.so) into a folder, taken from the pinned
# onnxruntime wheel on PyPI, and prints its path. mlserve loads it at run time (the `ort`
# crate's load-dynamic): nothing is downloaded at build time, and Python is not needed to serve.
# Usage: scripts/fetch-onnxruntime.sh [folder, default target/onnxruntime]
set -euo pipefail
cd "$(dirname "$0")/.."
version="1.32.0"
folder="${1:-target/onnxruntime}"
library="$folder/libonnxruntime.so.$version"
if [ ! -f "$library" ]; then
  mkdir -p "$folder"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "== fetching onnxruntime $version from PyPI" >&2
  python3 -m pip download --quiet --disable-pip-version-check "onnxruntime==$version" \
    --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$work" >&2
  python3 - "$work" "$library" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if "/capi/libonnxruntime.so" in n)
    # Written beside, then renamed: an interrupted fetch never leaves a truncated library
    # that a later run would take for a good one.
    partial = sys.argv[2] + ".partial"
    with archive.open(name) as source, open(partial, "wb") as target:
        target.write(source.read())
    os.replace(partial, sys.argv[2])
PY
fi
case "$library" in
  /*) echo "$library" ;;
  *) echo "$PWD/$library" ;;
esac

#!/usr/bin/env bash
# What one explained row costs per method (benches/explain.rs, release build, one thread), on
# the bundled breast cancer data (30 features): linear SHAP, TreeSHAP of a 100-tree random
# forest and of gradient boosting, KernelSHAP of naive Bayes and k-NN (1,000 coalitions over a
# 100-row background). Prints a table with the plain prediction beside each. The TreeSHAP
# figure of the issue's model (100 trees of depth 6), beside XGBoost's and LightGBM's own, is
# scripts/bench-boosted.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
cargo bench --quiet --bench explain > "$report"
python3 - "$report" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"{'model':<22}{'method':<22}{'predict':>12}{'explain':>14}{'ratio':>10}")
for name, r in report.items():
    print(f"{name:<22}{r['method']:<22}{r['predict_microseconds']:>10.2f}µs"
          f"{r['explain_microseconds']:>12.1f}µs{r['ratio']:>10.0f}")
PY

#!/usr/bin/env python3
"""The libraries' own TreeSHAP contributions for the boosted-tree fixtures, the reference of
mlserve's explanations: XGBoost's `predict(pred_contribs=True)` (limited to best_iteration + 1
iterations when the file has one, as its scikit-learn wrapper and shap do) and LightGBM's
`predict(pred_contrib=True)`, on the rows of tests/fixtures/boosted/expected.json. Fixtures on
the loans data (categories as text) and the MLflow folders are left out; their trees are read by
the same code as the others.

Writes tests/fixtures/boosted/contributions.json: per fixture, per row, per output, the
contributions of each feature and the base value last. Run by hand (not by the tests):

    python3 -m venv /tmp/contribs && /tmp/contribs/bin/pip install xgboost-cpu==3.2.0 \\
        lightgbm==4.7.0 numpy==2.4.6 && /tmp/contribs/bin/python scripts/make_boosted_contributions.py
"""
import json
import pathlib

import lightgbm
import numpy as np
import xgboost

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "boosted"


def rows_of(expected, fixture):
    rows = fixture.get("rows", expected["datasets"][fixture["dataset"]]["rows"])
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


def xgboost_contributions(path, x):
    booster = xgboost.Booster(model_file=str(path))
    best = booster.attributes().get("best_iteration")
    limit = (0, int(best) + 1) if best is not None else (0, 0)
    matrix = xgboost.DMatrix(x, missing=np.nan, feature_names=booster.feature_names)
    contributions = booster.predict(matrix, pred_contribs=True, iteration_range=limit)
    # [n, F+1] for one output, [n, K, F+1] for several.
    if contributions.ndim == 2:
        contributions = contributions[:, None, :]
    return contributions.astype(np.float64)


def lightgbm_contributions(path, x):
    booster = lightgbm.Booster(model_file=str(path))
    contributions = booster.predict(x, pred_contrib=True)
    features = x.shape[1]
    # Flat [n, K·(F+1)], class-major.
    return contributions.reshape(len(x), -1, features + 1)


def main():
    expected = json.loads((FIXTURES / "expected.json").read_text())
    out = {"versions": {"xgboost": xgboost.__version__, "lightgbm": lightgbm.__version__},
           "fixtures": {}}
    for name, fixture in expected["fixtures"].items():
        file = FIXTURES / fixture["file"]
        if fixture["dataset"] == "loans" or file.is_dir():
            continue
        x = rows_of(expected, fixture)
        if file.suffix in (".json", ".ubj"):
            contributions = xgboost_contributions(file, x)
        else:
            contributions = lightgbm_contributions(file, x)
        out["fixtures"][name] = contributions.tolist()
    (FIXTURES / "contributions.json").write_text(json.dumps(out))
    print(f"{len(out['fixtures'])} fixtures written")


if __name__ == "__main__":
    main()

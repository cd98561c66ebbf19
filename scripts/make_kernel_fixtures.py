"""Writes tests/fixtures/onnx/kernel.json: shap's own explanations of two of the ONNX fixtures'
scikit-learn models, which mlserve explains by KernelSHAP once imported with --background.

The models are refitted exactly as scripts/make_onnx_fixtures.py fits them (same split, same
seeds): iris with a random forest (15 trees of depth 6) and with an SVC. The background set is
the first 40 training rows (fewer than 100, so mlserve keeps them as they are, equal weights).
With 4 features every coalition fits the budget, so KernelSHAP computes the exact Shapley
values of the game "features outside the coalition take the background rows' values"; the
file holds shap.KernelExplainer(model.predict_proba, background).shap_values(rows,
l1_reg=False) per row and class, with the base values, and the script checks them against
those Shapley values summed by brute force from predict_proba. (shap 0.51's interventional
TreeExplainer on these forests is up to 4e-3 off that brute force on the petal features, so
it is not used as a reference.) Run by hand when the fixtures change:

    python3 -m venv /tmp/shapenv && /tmp/shapenv/bin/pip install scikit-learn==1.9.1 shap==0.51.0
    /tmp/shapenv/bin/python scripts/make_kernel_fixtures.py
"""

import itertools
import json
import math
import pathlib

import numpy as np
import shap
import sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "onnx" / "kernel.json"
SEED = 42


def per_class(values):
    """shap >= 0.45 answers [rows, features, classes]; the file keeps [rows][classes][features]."""
    array = np.asarray(values)
    return [[[float(v) for v in array[r, :, k]] for k in range(array.shape[2])] for r in range(array.shape[0])]


def brute_force(model, background, row):
    """Exact Shapley values per class: every subset, the background rows' values outside it."""
    m = len(row)

    def value(subset):
        mixed = background.copy()
        for j in subset:
            mixed[:, j] = row[j]
        return model.predict_proba(mixed).mean(axis=0)

    phi = np.zeros((len(model.classes_), m))
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for subset in itertools.combinations(others, size):
                phi[:, i] += weight * (value(list(subset) + [i]) - value(list(subset)))
    return phi


def main():
    data = load_iris()
    x_train, x_test, y_train, _ = train_test_split(
        data.data.astype(np.float32), data.target, test_size=0.2, stratify=data.target, random_state=SEED
    )
    background = x_train[:40].astype(np.float64)
    rows = x_test[:6].astype(np.float64)
    models = {
        "iris_random_forest": RandomForestClassifier(n_estimators=15, max_depth=6, random_state=SEED),
        "iris_svc": SVC(probability=True, random_state=SEED),
    }
    out = {
        "versions": {"shap": shap.__version__, "scikit-learn": sklearn.__version__},
        "background": background.tolist(),
        "rows": rows.tolist(),
        "fixtures": {},
    }
    for name, model in models.items():
        model.fit(x_train, y_train)
        kernel = shap.KernelExplainer(model.predict_proba, background)
        entry = {
            "kernel": per_class(kernel.shap_values(rows, l1_reg=False, silent=True)),
            "kernel_base_values": [float(v) for v in kernel.expected_value],
            "probabilities": model.predict_proba(rows).tolist(),
        }
        exact = np.array([brute_force(model, background, row) for row in rows])
        assert np.abs(np.array(entry["kernel"]) - exact).max() < 1e-9, name
        out["fixtures"][name] = entry
        print("explained", name)
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

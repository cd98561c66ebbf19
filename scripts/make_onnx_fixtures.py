"""Writes the ONNX fixtures of the test suite: scikit-learn models exported with skl2onnx, and
scikit-learn's own labels and probabilities for their held-out rows, so the Rust tests can
compare without Python. Run by hand when the fixtures must change:

    python3 -m venv /tmp/fixtures && /tmp/fixtures/bin/pip install \\
        scikit-learn==1.9.1 skl2onnx==1.20.0 onnxruntime==1.32.0 pandas==3.1.1
    /tmp/fixtures/bin/python scripts/make_onnx_fixtures.py

Output: tests/fixtures/onnx/<name>.onnx and tests/fixtures/onnx/expected.json, which holds per
dataset the feature names (in column order of the one [N, F] graph input, or the per-column
inputs), the class labels and the held-out rows, and per fixture scikit-learn's labels and
probabilities for those rows.
Every export is also run once with onnxruntime here, so a fixture that cannot run is never
written.
"""

import json
import pathlib

import numpy as np
import onnxruntime
import sklearn
import skl2onnx
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "onnx"
SEED = 42


def snake(name):
    return name.strip().lower().replace(" ", "_")


def models():
    # Small ensembles keep the fixture files small; the code paths are the same.
    return {
        "logistic_regression": LogisticRegression(max_iter=5000),
        "scaled_logistic_regression": Pipeline(
            [("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=5000))]
        ),
        "random_forest": RandomForestClassifier(n_estimators=15, max_depth=6, random_state=SEED),
        "extra_trees": ExtraTreesClassifier(n_estimators=15, max_depth=6, random_state=SEED),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=SEED),
        "decision_tree": DecisionTreeClassifier(max_depth=5, random_state=SEED),
        "svc": SVC(probability=True, random_state=SEED),
        "knn": KNeighborsClassifier(n_neighbors=5),
        "gaussian_nb": GaussianNB(),
        "mlp": Pipeline(
            [
                ("scale", StandardScaler()),
                ("mlp", MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=SEED)),
            ]
        ),
    }


def rounded(probabilities):
    """Nine decimals: far below the 1e-5 the tests allow, and a third of the file size."""
    return [[round(float(p), 9) for p in row] for row in probabilities]


def run_onnx(path, feeds):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds)
    return session, outputs


def numeric_fixtures(expected):
    for dataset_name, loader in [("breast_cancer", load_breast_cancer), ("iris", load_iris)]:
        data = loader()
        names = [snake(n).replace("(cm)", "").strip("_ ").replace("__", "_") for n in data.feature_names]
        names = [n.replace(" ", "_").rstrip("_") for n in names]
        labels = [str(n) for n in data.target_names]
        x_train, x_test, y_train, y_test = train_test_split(
            data.data.astype(np.float32), data.target, test_size=0.2, stratify=data.target, random_state=SEED
        )
        expected["datasets"][dataset_name] = {
            "features": names,
            "inputs": "matrix",
            "labels": labels,
            "rows": [[float(v) for v in row] for row in x_test],
        }
        for model_name, model in models().items():
            model.fit(x_train, y_train)
            for zipmap in (True, False):
                name = f"{dataset_name}_{model_name}" + ("" if zipmap else "_nozipmap")
                options = None if zipmap else {id(model): {"zipmap": False}}
                onx = to_onnx(
                    model,
                    initial_types=[("input", FloatTensorType([None, x_train.shape[1]]))],
                    options=options,
                    target_opset={"": 17, "ai.onnx.ml": 3},
                )
                path = OUT / f"{name}.onnx"
                path.write_bytes(onx.SerializeToString())
                run_onnx(path, {"input": x_test})
                expected["fixtures"][name] = {
                    "dataset": dataset_name,
                    "zipmap": zipmap,
                    "sklearn_labels": [labels[int(c)] for c in model.predict(x_test)],
                    "sklearn_probabilities": rounded(model.predict_proba(x_test)),
                }
                print("wrote", name)


def mixed_fixture(expected):
    """The shape real tabular models take: a ColumnTransformer over numeric and text columns,
    with imputation, exported with one graph input per column."""
    rng = np.random.default_rng(SEED)
    n = 400
    age = rng.integers(18, 80, n).astype(np.float32)
    income = rng.normal(50_000, 15_000, n).astype(np.float32)
    plan = rng.choice(["basic", "plus", "pro"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    score = (age - 40) / 20 + (income - 50_000) / 20_000 + (plan == "pro") * 1.0 - (region == "east") * 0.8
    approved = (score + rng.normal(0, 0.5, n) > 0).astype(int)
    income_missing = income.copy()
    income_missing[rng.random(n) < 0.1] = np.nan
    columns = {"age": age, "income": income_missing, "plan": plan, "region": region}
    import pandas as pd

    frame = pd.DataFrame(columns)
    train, test, y_train, y_test = train_test_split(frame, approved, test_size=0.25, stratify=approved, random_state=SEED)
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("numbers", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), ["age", "income"]),
                        ("categories", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=5000)),
        ]
    )
    pipeline.fit(train, y_train)
    labels = ["declined", "approved"]
    initial_types = [
        ("age", FloatTensorType([None, 1])),
        ("income", FloatTensorType([None, 1])),
        ("plan", StringTensorType([None, 1])),
        ("region", StringTensorType([None, 1])),
    ]
    for zipmap in (True, False):
        name = "loans_column_transformer" + ("" if zipmap else "_nozipmap")
        options = None if zipmap else {id(pipeline.steps[-1][1]): {"zipmap": False}}
        onx = to_onnx(pipeline, initial_types=initial_types, options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        path = OUT / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        feeds = {
            "age": test["age"].to_numpy(np.float32).reshape(-1, 1),
            "income": test["income"].to_numpy(np.float32).reshape(-1, 1),
            "plan": test["plan"].to_numpy(object).reshape(-1, 1),
            "region": test["region"].to_numpy(object).reshape(-1, 1),
        }
        run_onnx(path, feeds)
        rows = [
            {
                "age": float(r.age),
                "income": None if np.isnan(r.income) else float(r.income),
                "plan": str(r.plan),
                "region": str(r.region),
            }
            for r in test.itertuples()
        ]
        expected["datasets"]["loans"] = {
            "features": ["age", "income", "plan", "region"],
            "inputs": "columns",
            "nullable": ["income"],
            "labels": labels,
            "rows": rows,
        }
        expected["fixtures"][name] = {
            "dataset": "loans",
            "zipmap": zipmap,
            "sklearn_labels": [labels[int(c)] for c in pipeline.predict(test)],
            "sklearn_probabilities": rounded(pipeline.predict_proba(test)),
        }
        print("wrote", name)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {
        "datasets": {},
        "fixtures": {},
        "versions": {
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        }
    }
    numeric_fixtures(expected)
    mixed_fixture(expected)
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()

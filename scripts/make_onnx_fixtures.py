"""Writes the ONNX fixtures of the test suite: scikit-learn models exported with skl2onnx, and
scikit-learn's own labels and probabilities for their held-out rows, so the Rust tests can
compare without Python. Run by hand when the fixtures must change:

    python3 -m venv /tmp/fixtures && /tmp/fixtures/bin/pip install \\
        scikit-learn==1.9.1 skl2onnx==1.20.0 onnxruntime==1.32.0 pandas==3.1.1
    /tmp/fixtures/bin/python scripts/make_onnx_fixtures.py

Output: tests/fixtures/onnx/<name>.onnx and tests/fixtures/onnx/expected.json, which holds per
dataset the feature names (in column order of the one [N, F] graph input, or the per-column
inputs, or per input its features), the class labels, the held-out rows and the categories of
one-hot encoded text features, and per fixture scikit-learn's labels and
probabilities for those rows; and tests/fixtures/onnx/expected_regression.json, the same for
models that predict a number (per fixture scikit-learn's predicted values).
Every export is also run once with onnxruntime here, so a fixture that cannot run is never
written. skl2onnx lists a graph's operator sets in Python's set order, which changes with the
string hash seed from run to run; a fixture whose only change is that order is the same model.
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
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

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
            "categories": {
                f: [str(c) for c in cats]
                for f, cats in zip(["plan", "region"], pipeline.named_steps["prepare"].named_transformers_["categories"].categories_)
            },
            "rows": rows,
        }
        expected["fixtures"][name] = {
            "dataset": "loans",
            "zipmap": zipmap,
            "sklearn_labels": [labels[int(c)] for c in pipeline.predict(test)],
            "sklearn_probabilities": rounded(pipeline.predict_proba(test)),
        }
        print("wrote", name)


def text_column_data():
    """Rows with two numeric and three text columns (3, 4 and 2 categories), and a yes/no
    target that depends on all of them."""
    import pandas as pd

    rng = np.random.default_rng(SEED)
    n = 300
    age = rng.integers(18, 80, n).astype(np.float32)
    visits = rng.poisson(4, n).astype(np.float32)
    color = rng.choice(["red", "green", "blue"], n)
    size = rng.choice(["S", "M", "L", "XL"], n)
    channel = rng.choice(["web", "store"], n)
    score = (age - 45) / 20 + (visits - 4) / 3 + (color == "red") * 0.9 - (size == "S") * 0.7 + (channel == "web") * 0.6
    bought = np.where(score + rng.normal(0, 0.6, n) > 0, "yes", "no")
    frame = pd.DataFrame({"age": age, "visits": visits, "color": color, "size": size, "channel": channel})
    return train_test_split(frame, bought, test_size=0.25, stratify=bought, random_state=SEED)


def text_pipeline(numbers, encoded):
    """Scaled numbers and one OneHotEncoder per list of text columns in `encoded`."""
    encoders = [(f"text{i}", OneHotEncoder(handle_unknown="ignore"), columns) for i, columns in enumerate(encoded)]
    return Pipeline(
        [
            ("prepare", ColumnTransformer([("numbers", StandardScaler(), numbers)] + encoders)),
            ("model", LogisticRegression(max_iter=5000)),
        ]
    )


def learned_categories(pipeline, encoded_names):
    """Each text feature's categories, as its encoder learned them."""
    categories = {}
    for i, names in enumerate(encoded_names):
        encoder = pipeline.named_steps["prepare"].named_transformers_[f"text{i}"]
        categories.update({f: [str(c) for c in cats] for f, cats in zip(names, encoder.categories_)})
    return categories


def agrees(path, feeds, pipeline, x_test):
    """The export answers as scikit-learn does (skl2onnx 1.20.0 does not always: an encoder
    over a permutation of one whole input loses the permutation, so that case is avoided)."""
    _, outputs = run_onnx(path, feeds)
    got = np.array([[row[c] for c in pipeline.classes_] for row in outputs[1]])
    gap = np.abs(got - pipeline.predict_proba(x_test)).max()
    assert gap < 1e-5, f"{path.name}: the graph and scikit-learn differ by {gap}"


def text_row(r, features):
    return {f: (float(getattr(r, f)) if f in ("age", "visits") else str(getattr(r, f))) for f in features}


def text_column_fixtures(expected):
    """One-hot encoded text columns, one, two and three of them, next to numeric ones. skl2onnx
    reads one text column through a Gather, several straight from their inputs, and a wide
    string input through a Gather per column (after an ArrayFeatureExtractor when the encoder
    takes its columns in another order); the import must find each column's categories
    through all of these. expected.json gives scikit-learn's categories per text feature."""
    train, test, y_train, y_test = text_column_data()
    labels = ["no", "yes"]
    target_opset = {"": 17, "ai.onnx.ml": 3}

    def record(name, features, inputs, categories, pipeline, x_test):
        expected["datasets"][name] = {
            "features": features,
            "inputs": inputs,
            "labels": labels,
            "categories": categories,
            "rows": [text_row(r, features) for r in test.itertuples()],
        }
        expected["fixtures"][name] = {
            "dataset": name,
            "zipmap": True,
            "sklearn_labels": [str(c) for c in pipeline.predict(x_test)],
            "sklearn_probabilities": rounded(pipeline.predict_proba(x_test)),
        }
        print("wrote", name)

    # One graph input per column.
    for name, numbers, texts in [
        ("shop_text1", ["age", "visits"], ["color"]),
        ("shop_text2", ["age"], ["color", "size"]),
        ("shop_text3", ["age", "visits"], ["color", "size", "channel"]),
    ]:
        features = numbers + texts
        pipeline = text_pipeline(numbers, [texts])
        pipeline.fit(train[features], y_train)
        initial_types = [(f, FloatTensorType([None, 1])) for f in numbers]
        initial_types += [(f, StringTensorType([None, 1])) for f in texts]
        onx = to_onnx(pipeline, initial_types=initial_types, target_opset=target_opset)
        path = OUT / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        feeds = {f: test[f].to_numpy(np.float32).reshape(-1, 1) for f in numbers}
        feeds.update({f: test[f].to_numpy(object).reshape(-1, 1) for f in texts})
        agrees(path, feeds, pipeline, test[features])
        categories = learned_categories(pipeline, [texts])
        record(name, features, "columns", categories, pipeline, test[features])
    # Two graph inputs, the numbers [N, 2] and the text columns [N, k]; the encoders' columns
    # are positions across both: one encoder over all text columns in order (a Gather per
    # column), or two over parts of them (an ArrayFeatureExtractor each, then Gathers).
    numbers = ["age", "visits"]
    for name, texts, encoded in [
        ("shop_wide2", ["color", "size"], [["color", "size"]]),
        ("shop_wide3", ["color", "size", "channel"], [["channel"], ["color", "size"]]),
    ]:
        features = numbers + texts
        pipeline = text_pipeline([0, 1], [[features.index(f) for f in names] for names in encoded])
        x_train = train[features].to_numpy(object)
        x_test = test[features].to_numpy(object)
        pipeline.fit(x_train, y_train)
        initial_types = [("numbers", FloatTensorType([None, 2])), ("text", StringTensorType([None, len(texts)]))]
        onx = to_onnx(pipeline, initial_types=initial_types, target_opset=target_opset)
        path = OUT / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        feeds = {"numbers": test[numbers].to_numpy(np.float32), "text": test[texts].to_numpy(object)}
        agrees(path, feeds, pipeline, x_test)
        categories = learned_categories(pipeline, encoded)
        record(name, features, {"numbers": numbers, "text": texts}, categories, pipeline, x_test)

def regressors():
    """scikit-learn's regressors as skl2onnx converts them: LinearRegressor, TreeEnsembleRegressor,
    SVMRegressor, the k-NN subgraph and an MLP, alone and behind a scaler."""
    return {
        "linear_regression": LinearRegression(),
        "scaled_ridge": Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=1.0))]),
        "scaled_lasso": Pipeline([("scale", StandardScaler()), ("lasso", Lasso(alpha=0.5))]),
        "scaled_elastic_net": Pipeline([("scale", StandardScaler()), ("enet", ElasticNet(alpha=0.1, l1_ratio=0.5))]),
        "decision_tree": DecisionTreeRegressor(max_depth=5, random_state=SEED),
        "random_forest": RandomForestRegressor(n_estimators=15, max_depth=6, random_state=SEED),
        "extra_trees": ExtraTreesRegressor(n_estimators=15, max_depth=6, random_state=SEED),
        "gradient_boosting": GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=SEED),
        "scaled_svr": Pipeline([("scale", StandardScaler()), ("svr", SVR(C=10.0))]),
        "scaled_knn": Pipeline([("scale", StandardScaler()), ("knn", KNeighborsRegressor(n_neighbors=5))]),
        "scaled_mlp": Pipeline(
            [
                ("scale", StandardScaler()),
                ("mlp", MLPRegressor(hidden_layer_sizes=(16,), max_iter=3000, random_state=SEED)),
            ]
        ),
    }


def values(predicted):
    """Six significant digits past what float32 graphs keep; the tests allow more."""
    return [float(np.format_float_positional(float(v), precision=9, unique=False, trim="-")) for v in np.ravel(predicted)]


def two_outputs(onx, model, x_test, expected):
    """A regressor whose outputs do not tell what it does: its value [N, 1] and that value cast
    to int64 beside it (as hand-edited graphs have). Imported with --task regression."""
    import onnx
    from onnx import TensorProto, helper

    graph = onnx.ModelProto()
    graph.CopyFrom(onx)
    value = graph.graph.output[0].name
    graph.graph.node.append(helper.make_node("Cast", [value], ["rounded"], to=TensorProto.INT64))
    graph.graph.output.append(helper.make_tensor_value_info("rounded", TensorProto.INT64, [None, 1]))
    path = OUT / "diabetes_two_outputs.onnx"
    path.write_bytes(graph.SerializeToString())
    _, outputs = run_onnx(path, {"input": x_test})
    assert len(outputs) == 2
    expected["fixtures"]["diabetes_two_outputs"] = {
        "dataset": "diabetes",
        "task": "regression",
        "sklearn_values": values(model.predict(x_test)),
    }
    print("wrote diabetes_two_outputs")


def regression_fixtures(expected):
    """Models that predict a number: every regressor on the diabetes data (one [N, 10] input),
    and a ColumnTransformer pipeline over numeric and text columns (one input per column) whose
    rows, with their target, make the CSV that `mlserve import --features-from … --target`
    reads."""
    data = load_diabetes(scaled=False)
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data.astype(np.float32), data.target, test_size=0.2, random_state=SEED
    )
    expected["datasets"]["diabetes"] = {
        "features": names,
        "inputs": "matrix",
        "rows": [[float(v) for v in row] for row in x_test],
    }
    for model_name, model in regressors().items():
        model.fit(x_train, y_train)
        name = f"diabetes_{model_name}"
        onx = to_onnx(
            model,
            initial_types=[("input", FloatTensorType([None, x_train.shape[1]]))],
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        path = OUT / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        _, outputs = run_onnx(path, {"input": x_test})
        assert len(outputs) == 1, f"{name}: {len(outputs)} outputs"
        expected["fixtures"][name] = {"dataset": "diabetes", "sklearn_values": values(model.predict(x_test))}
        print("wrote", name)
        if model_name == "linear_regression":
            two_outputs(onx, model, x_test, expected)

    import pandas as pd

    rng = np.random.default_rng(SEED)
    n = 300
    rooms = rng.integers(1, 7, n).astype(np.float32)
    area = rng.normal(80, 25, n).clip(20, 200).astype(np.float32)
    district = rng.choice(["center", "harbour", "hills", "suburb"], n)
    bonus = {"center": 90_000, "harbour": 60_000, "hills": 30_000, "suburb": 0}
    price = 40_000 + 2_500 * area + 12_000 * rooms + np.array([bonus[d] for d in district]) + rng.normal(0, 15_000, n)
    # Some areas are unknown: the pipeline imputes them, so the feature is nullable.
    area_missing = area.copy()
    area_missing[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame({"rooms": rooms, "area": area_missing, "district": district})
    train, test, y_train, y_test = train_test_split(frame, price, test_size=0.25, random_state=SEED)
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("rooms", StandardScaler(), ["rooms"]),
                        ("area", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), ["area"]),
                        ("district", OneHotEncoder(handle_unknown="ignore"), ["district"]),
                    ]
                ),
            ),
            ("model", Ridge(alpha=0.5)),
        ]
    )
    pipeline.fit(train, y_train)
    initial_types = [
        ("rooms", FloatTensorType([None, 1])),
        ("area", FloatTensorType([None, 1])),
        ("district", StringTensorType([None, 1])),
    ]
    onx = to_onnx(pipeline, initial_types=initial_types, target_opset={"": 17, "ai.onnx.ml": 3})
    path = OUT / "houses_ridge.onnx"
    path.write_bytes(onx.SerializeToString())
    feeds = {
        "rooms": test["rooms"].to_numpy(np.float32).reshape(-1, 1),
        "area": test["area"].to_numpy(np.float32).reshape(-1, 1),
        "district": test["district"].to_numpy(object).reshape(-1, 1),
    }
    _, outputs = run_onnx(path, feeds)
    gap = np.abs(np.ravel(outputs[0]) - pipeline.predict(test)).max()
    assert gap < 1.0, f"houses_ridge: the graph and scikit-learn differ by {gap}"
    row = lambda r: {
        "rooms": float(r.rooms),
        "area": None if np.isnan(r.area) else float(r.area),
        "district": str(r.district),
    }
    expected["datasets"]["houses"] = {
        "features": ["rooms", "area", "district"],
        "inputs": "columns",
        "nullable": ["area"],
        "rows": [row(r) for r in test.itertuples()],
        # The training rows with their target: the CSV an import reads the target's range from.
        "training_rows": [dict(row(r), price=round(float(y), 2)) for r, y in zip(train.itertuples(), y_train)],
    }
    expected["fixtures"]["houses_ridge"] = {"dataset": "houses", "sklearn_values": values(pipeline.predict(test))}
    print("wrote houses_ridge")


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
    text_column_fixtures(expected)
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    regression = {"datasets": {}, "fixtures": {}, "versions": expected["versions"]}
    regression_fixtures(regression)
    (OUT / "expected_regression.json").write_text(json.dumps(regression, indent=1) + "\n")


if __name__ == "__main__":
    main()

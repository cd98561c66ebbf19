"""Writes the boosted-tree fixtures of the test suite: XGBoost and LightGBM models saved in the
libraries' own formats, with the libraries' own answers for held-out rows, so the Rust tests
compare without Python. Run by hand when the fixtures must change:

    python3 -m venv /tmp/fixtures && /tmp/fixtures/bin/pip install \\
        scikit-learn==1.9.1 xgboost-cpu==3.2.0 lightgbm==4.7.0 pandas==3.1.1 mlflow-skinny==3.6.0
    /tmp/fixtures/bin/python scripts/make_boosted_fixtures.py

Output: tests/fixtures/boosted/<name>.json and .ubj (XGBoost save_model), <name>.txt (LightGBM
save_model) and expected.json: per dataset
the feature names and the held-out rows (null for a missing value), and per fixture its file,
task and the reference answer: predict_proba of the library's scikit-learn wrapper for a
classifier, predict for a regressor (XGBoost's wrapper uses best_iteration when the model was
early-stopped). Every model is small (few, shallow trees): the code paths are those of big ones.
A tenth of the cells are missing, in training and held-out rows alike, so default directions
are exercised.
"""

import json
import pathlib

import lightgbm
import numpy as np
import sklearn
import xgboost
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.model_selection import train_test_split

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "boosted"
SEED = 42


def with_missing(x, rng):
    x = x.astype(np.float64).copy()
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def rows(x):
    return [[None if np.isnan(v) else float(v) for v in row] for row in x]


def datasets():
    rng = np.random.default_rng(SEED)
    cancer = load_breast_cancer()
    iris = load_iris()
    diabetes = load_diabetes(scaled=False)
    found = {}
    for name, data, stratify in [("breast_cancer", cancer, True), ("iris", iris, True), ("diabetes", diabetes, False)]:
        x = with_missing(data.data, rng)
        y = data.target
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=0.2, random_state=SEED, stratify=y if stratify else None
        )
        names = [f.replace(" ", "_").replace("(cm)", "").strip("_") for f in data.feature_names]
        found[name] = (names, x_train, x_test, y_train, y_test)
    return found


def xgboost_fixtures(expected, data):
    small = dict(n_estimators=12, max_depth=3, learning_rate=0.3, random_state=SEED, n_jobs=1)
    cases = [
        ("xgb_binary_logistic", "breast_cancer", xgboost.XGBClassifier, {"objective": "binary:logistic"}),
        ("xgb_binary_logitraw", "breast_cancer", xgboost.XGBClassifier, {"objective": "binary:logitraw"}),
        ("xgb_multi_softprob", "iris", xgboost.XGBClassifier, {"objective": "multi:softprob"}),
        ("xgb_multi_softmax", "iris", xgboost.XGBClassifier, {"objective": "multi:softmax"}),
        ("xgb_reg_squarederror", "diabetes", xgboost.XGBRegressor, {"objective": "reg:squarederror"}),
        ("xgb_reg_absoluteerror", "diabetes", xgboost.XGBRegressor, {"objective": "reg:absoluteerror"}),
        ("xgb_reg_pseudohubererror", "diabetes", xgboost.XGBRegressor, {"objective": "reg:pseudohubererror"}),
        ("xgb_count_poisson", "diabetes", xgboost.XGBRegressor, {"objective": "count:poisson"}),
        ("xgb_reg_gamma", "diabetes", xgboost.XGBRegressor, {"objective": "reg:gamma"}),
        ("xgb_reg_tweedie", "diabetes", xgboost.XGBRegressor, {"objective": "reg:tweedie"}),
        ("xgb_reg_logistic", "diabetes", xgboost.XGBRegressor, {"objective": "reg:logistic"}),
    ]
    for name, dataset, estimator, params in cases:
        names, x_train, x_test, y_train, y_test = data[dataset]
        if params["objective"] == "reg:logistic":
            # A value in [0, 1]: the target scaled to its range.
            low, high = y_train.min(), y_train.max()
            y_train = (y_train - low) / (high - low)
        model = estimator(**small, **params)
        model.fit(x_train, y_train)
        model.get_booster().feature_names = names
        path = OUT / f"{name}.json"
        model.save_model(path)
        if isinstance(model, xgboost.XGBClassifier):
            if params["objective"] == "binary:logitraw":
                # The wrapper's predict_proba of logitraw is the raw margin; the reference for
                # mlserve is the sigmoid of it (the probability the margin stands for).
                margin = model.predict(x_test, output_margin=True)
                p = 1.0 / (1.0 + np.exp(-margin.astype(np.float64)))
                reference = np.stack([1 - p, p], axis=1)
            elif params["objective"] == "multi:softmax":
                margin = model.predict(x_test, output_margin=True).astype(np.float64)
                e = np.exp(margin - margin.max(axis=1, keepdims=True))
                reference = e / e.sum(axis=1, keepdims=True)
            else:
                reference = model.predict_proba(x_test)
            answer = {"task": "classification", "probabilities": [[float(v) for v in r] for r in reference]}
        else:
            answer = {"task": "regression", "values": [float(v) for v in model.predict(x_test)]}
        expected["fixtures"][name] = {"file": path.name, "dataset": dataset, **answer}
        print("wrote", name)
        if name == "xgb_binary_logistic":
            # The same model as UBJSON, XGBoost's default format since 2.1.
            model.save_model(OUT / f"{name}.ubj")
            expected["fixtures"][f"{name}_ubj"] = {"file": f"{name}.ubj", "dataset": dataset, **answer}
            print("wrote", f"{name}_ubj")
    xgboost_special(expected, data, small)


def xgboost_special(expected, data, small):
    """DART (per-tree weights) and an early-stopped model (its file keeps every tree; the
    wrapper predicts with those up to best_iteration)."""
    names, x_train, x_test, y_train, y_test = data["breast_cancer"]
    dart = xgboost.XGBClassifier(**small, booster="dart", rate_drop=0.2, skip_drop=0.0)
    dart.fit(x_train, y_train)
    dart.get_booster().feature_names = names
    dart.save_model(OUT / "xgb_dart.json")
    expected["fixtures"]["xgb_dart"] = {
        "file": "xgb_dart.json",
        "dataset": "breast_cancer",
        "task": "classification",
        "probabilities": [[float(v) for v in r] for r in dart.predict_proba(x_test)],
    }
    print("wrote xgb_dart")
    stopped = xgboost.XGBClassifier(
        n_estimators=60, max_depth=3, learning_rate=0.5, random_state=SEED, n_jobs=1, early_stopping_rounds=2
    )
    stopped.fit(x_train, y_train, eval_set=[(x_test, y_test)], verbose=False)
    stopped.get_booster().feature_names = names
    stopped.save_model(OUT / "xgb_early_stopped.json")
    reloaded = xgboost.XGBClassifier()
    reloaded.load_model(OUT / "xgb_early_stopped.json")
    assert reloaded.best_iteration + 1 < reloaded.get_booster().num_boosted_rounds(), "not early-stopped"
    expected["fixtures"]["xgb_early_stopped"] = {
        "file": "xgb_early_stopped.json",
        "dataset": "breast_cancer",
        "task": "classification",
        "probabilities": [[float(v) for v in r] for r in reloaded.predict_proba(x_test)],
        "best_iteration": reloaded.best_iteration,
    }
    print("wrote xgb_early_stopped")


def lightgbm_fixtures(expected, data):
    small = dict(n_estimators=12, num_leaves=8, learning_rate=0.3, random_state=SEED, n_jobs=1, verbose=-1)
    cases = [
        ("lgb_binary", "breast_cancer", lightgbm.LGBMClassifier, {"objective": "binary"}),
        ("lgb_multiclass", "iris", lightgbm.LGBMClassifier, {"objective": "multiclass", "min_child_samples": 5}),
        ("lgb_multiclassova", "iris", lightgbm.LGBMClassifier, {"objective": "multiclassova", "min_child_samples": 5}),
        ("lgb_regression", "diabetes", lightgbm.LGBMRegressor, {"objective": "regression"}),
        ("lgb_regression_l1", "diabetes", lightgbm.LGBMRegressor, {"objective": "regression_l1"}),
        ("lgb_huber", "diabetes", lightgbm.LGBMRegressor, {"objective": "huber"}),
        ("lgb_quantile", "diabetes", lightgbm.LGBMRegressor, {"objective": "quantile", "alpha": 0.8}),
        ("lgb_poisson", "diabetes", lightgbm.LGBMRegressor, {"objective": "poisson"}),
        ("lgb_gamma", "diabetes", lightgbm.LGBMRegressor, {"objective": "gamma"}),
        ("lgb_tweedie", "diabetes", lightgbm.LGBMRegressor, {"objective": "tweedie"}),
        ("lgb_cross_entropy", "diabetes", lightgbm.LGBMRegressor, {"objective": "cross_entropy"}),
        ("lgb_zero_as_missing", "diabetes", lightgbm.LGBMRegressor, {"objective": "regression", "zero_as_missing": True}),
        (
            "lgb_random_forest",
            "breast_cancer",
            lightgbm.LGBMClassifier,
            {"objective": "binary", "boosting_type": "rf", "bagging_freq": 1, "bagging_fraction": 0.7},
        ),
    ]
    for name, dataset, estimator, params in cases:
        names, x_train, x_test, y_train, y_test = data[dataset]
        if params["objective"] == "cross_entropy":
            low, high = y_train.min(), y_train.max()
            y_train = (y_train - low) / (high - low)
        x_test = x_test.copy()
        if params.get("zero_as_missing"):
            # Zeros in held-out rows take the default direction too.
            x_test[::7, 1] = 0.0
        model = estimator(**small, **params)
        model.fit(x_train, y_train, feature_name=names)
        path = OUT / f"{name}.txt"
        model.booster_.save_model(path)
        if params["objective"] == "multiclassova":
            # Each class's sigmoid, normalised to sum to 1: what mlserve answers.
            raw = model.predict_proba(x_test)
            reference = raw / raw.sum(axis=1, keepdims=True)
            answer = {"task": "classification", "probabilities": [[float(v) for v in r] for r in reference]}
        elif isinstance(model, lightgbm.LGBMClassifier):
            answer = {"task": "classification", "probabilities": [[float(v) for v in r] for r in model.predict_proba(x_test)]}
        else:
            answer = {"task": "regression", "values": [float(v) for v in model.predict(x_test)]}
        rows_override = rows(x_test) if params.get("zero_as_missing") else None
        expected["fixtures"][name] = {"file": path.name, "dataset": dataset, **answer}
        if rows_override is not None:
            expected["fixtures"][name]["rows"] = rows_override
        print("wrote", name)


def categorical_fixtures(expected):
    """Pandas category columns, as teams train on them: LightGBM's bitset splits named by its
    pandas_categorical line, XGBoost's enable_categorical splits named by the file's cats. The
    frames' category orders are not sorted, so a code is a position, not a sort rank."""
    import pandas as pd

    rng = np.random.default_rng(SEED)
    n = 600
    age = rng.integers(18, 80, n).astype(float)
    income = rng.normal(50_000, 15_000, n)
    plan = rng.choice(["pro", "basic", "plus", "team"], n)
    region = rng.choice(["west", "north", "south", "east", "center"], n)
    score = (age - 40) / 20 + (income - 50_000) / 20_000 + (plan == "pro") * 1.2 - (region == "east") * 0.9
    approved = (score + rng.normal(0, 0.5, n) > 0).astype(int)
    income[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "plan": pd.Categorical(plan, categories=["pro", "basic", "plus", "team"]),
            "region": pd.Categorical(region, categories=["west", "north", "south", "east", "center"]),
        }
    )
    train, test, y_train, y_test = train_test_split(frame, approved, test_size=0.25, random_state=SEED)
    test = test.copy()
    # Some held-out categories are missing.
    test.loc[test.index[::9], "region"] = np.nan
    expected["datasets"]["loans"] = {
        "features": ["age", "income", "plan", "region"],
        "rows": [
            [float(r.age), None if np.isnan(r.income) else float(r.income), None if pd.isna(r.plan) else str(r.plan),
             None if pd.isna(r.region) else str(r.region)]
            for r in test.itertuples()
        ],
    }
    lgb = lightgbm.LGBMClassifier(n_estimators=15, num_leaves=8, learning_rate=0.3, random_state=SEED, n_jobs=1,
                                  verbose=-1, min_data_per_group=5, cat_smooth=1)
    lgb.fit(train, y_train)
    lgb.booster_.save_model(OUT / "lgb_categorical.txt")
    expected["fixtures"]["lgb_categorical"] = {
        "file": "lgb_categorical.txt",
        "dataset": "loans",
        "task": "classification",
        "probabilities": [[float(v) for v in r] for r in lgb.predict_proba(test)],
    }
    print("wrote lgb_categorical")
    xgb = xgboost.XGBClassifier(n_estimators=15, max_depth=3, learning_rate=0.3, random_state=SEED, n_jobs=1,
                                enable_categorical=True, tree_method="hist", max_cat_to_onehot=1)
    xgb.fit(train, y_train)
    xgb.save_model(OUT / "xgb_categorical.json")
    expected["fixtures"]["xgb_categorical"] = {
        "file": "xgb_categorical.json",
        "dataset": "loans",
        "task": "classification",
        "probabilities": [[float(v) for v in r] for r in xgb.predict_proba(test)],
    }
    print("wrote xgb_categorical")


def mlflow_fixtures(expected, data):
    """MLflow model folders as mlflow.<flavor>.save_model writes them, with a signature: an
    XGBoost classifier trained from numpy (so its file names no features; the signature
    does), a LightGBM regressor, and a scikit-learn model (a pickle, to be refused)."""
    import shutil

    import mlflow.lightgbm
    import mlflow.sklearn
    import mlflow.xgboost
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    names, x_train, x_test, y_train, y_test = data["breast_cancer"]
    frame = pd.DataFrame(x_train, columns=names)
    xgb = xgboost.XGBClassifier(n_estimators=8, max_depth=3, random_state=SEED, n_jobs=1)
    xgb.fit(x_train, y_train)
    target = OUT / "mlflow_xgboost"
    shutil.rmtree(target, ignore_errors=True)
    mlflow.xgboost.save_model(xgb, target, signature=infer_signature(frame, y_train))
    expected["fixtures"]["mlflow_xgboost"] = {
        "file": "mlflow_xgboost",
        "dataset": "breast_cancer",
        "task": "classification",
        "probabilities": [[float(v) for v in r] for r in xgb.predict_proba(x_test)],
    }
    names, x_train, x_test, y_train, y_test = data["diabetes"]
    frame = pd.DataFrame(x_train, columns=names)
    lgb = lightgbm.LGBMRegressor(n_estimators=8, num_leaves=8, random_state=SEED, n_jobs=1, verbose=-1)
    lgb.fit(frame, y_train)
    target = OUT / "mlflow_lightgbm"
    shutil.rmtree(target, ignore_errors=True)
    # The Booster (lgb.train's, or a wrapper's booster_) is saved as LightGBM's text file; a
    # scikit-learn wrapper would be pickled.
    mlflow.lightgbm.save_model(lgb.booster_, target, signature=infer_signature(frame, y_train))
    expected["fixtures"]["mlflow_lightgbm"] = {
        "file": "mlflow_lightgbm",
        "dataset": "diabetes",
        "task": "regression",
        "values": [float(v) for v in lgb.predict(pd.DataFrame(x_test, columns=names))],
    }
    pickled = OUT / "mlflow_sklearn_pickle"
    shutil.rmtree(pickled, ignore_errors=True)
    mlflow.sklearn.save_model(LogisticRegression(max_iter=200).fit(np.nan_to_num(x_train), y_train > 150), pickled)
    # Only what mlserve reads is kept: the MLmodel and the model file (no environment files).
    for folder in (OUT / "mlflow_xgboost", OUT / "mlflow_lightgbm", pickled):
        for extra in folder.iterdir():
            if extra.name not in ("MLmodel",) and not extra.name.startswith("model"):
                extra.unlink()
    print("wrote mlflow folders")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    data = datasets()
    expected = {
        "datasets": {name: {"features": d[0], "rows": rows(d[2])} for name, d in data.items()},
        "fixtures": {},
        "versions": {
            "xgboost": xgboost.__version__,
            "lightgbm": lightgbm.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }
    xgboost_fixtures(expected, data)
    lightgbm_fixtures(expected, data)
    categorical_fixtures(expected)
    mlflow_fixtures(expected, data)
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()

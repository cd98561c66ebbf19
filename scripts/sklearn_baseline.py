#!/usr/bin/env python3
"""Compare mlserve's held-out quality with scikit-learn's on the same split.

For each bundled dataset and algorithm this trains with `mlserve train` into a temporary
model repository, reads the held-out row indices from its metrics.json, fits the matching
scikit-learn estimator in Pipeline(StandardScaler(), model) on exactly the other rows, and
prints Markdown tables: accuracy and ROC AUC of the classifiers (breast cancer, iris), R² and
RMSE of the regressors (diabetes). It exits non-zero if an accuracy differs by more than 2
points, or an R² by more than 0.03. Randomized estimators (the regression forest, whose
bootstrap samples differ; the unlimited regression tree, whose ties between equally good splits
are broken by a random feature order) are compared with the mean and range of scikit-learn's
over REGRESSION_SEEDS random states: within 0.03 of the mean, or inside the range.

Run it from anywhere (the binary defaults to target/release/mlserve, else target/debug/mlserve):

    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn==1.9.1 pandas==3.1.1 \
        && /tmp/skl/bin/python scripts/sklearn_baseline.py [path/to/mlserve]

Gradient boosting is also compared on larger synthetic data with missing values and a
categorical feature (pandas 3.1.1 for HistGradientBoosting's native categories), with training
time against HistGradientBoosting on one thread; it fails if the mean accuracy is more than 1
point below scikit-learn's, or the mean R² more than 0.03.

Data: mlserve bundles smartcore's copies of the datasets. Breast cancer is identical to
sklearn.datasets.load_breast_cancer. Iris is smartcore's UCI file with the two transcription
errors (rows 34 and 37, 0-based) corrected by mlserve, as scikit-learn corrects them, so it is
identical to load_iris. The script checks the data against mlserve's own dataset_sha256 and
training-row feature statistics before comparing.
"""
import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.datasets import make_classification, make_friedman1
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score, root_mean_squared_error, roc_auc_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

SEED = 42
TOLERANCE_POINTS = 2.0
REPO = Path(__file__).resolve().parent.parent
# SVC(probability=True) is deprecated since scikit-learn 1.9 (removed in 1.11) but still works.
warnings.filterwarnings("ignore", message="The `probability` parameter", category=FutureWarning)

# mlserve's --algorithm names and the scikit-learn estimators its defaults mirror.
ALGORITHMS = {
    "logistic-regression": lambda: LogisticRegression(C=1.0),
    "random-forest": lambda: RandomForestClassifier(n_estimators=100, max_features="sqrt", random_state=SEED),
    "decision-tree": lambda: DecisionTreeClassifier(random_state=SEED),
    "knn": lambda: KNeighborsClassifier(n_neighbors=5),
    # Note: SVC.predict uses the decision function, not argmax of these Platt probabilities.
    "svm": lambda: SVC(C=1.0, kernel="rbf", gamma="scale", probability=True, random_state=SEED),
    "naive-bayes": lambda: GaussianNB(var_smoothing=1e-9),
    "gradient-boosting": lambda: HistGradientBoostingClassifier(random_state=SEED),
}


R2_TOLERANCE = 0.03
REGRESSION_SEEDS = range(20)
# The regression forms, with scikit-learn's defaults (a regression forest tries every column
# at each split: max_features=1.0). Each takes a random state (ignored where there is none).
REGRESSORS = {
    "linear-regression": lambda seed: LinearRegression(),
    "decision-tree": lambda seed: DecisionTreeRegressor(random_state=seed),
    "random-forest": lambda seed: RandomForestRegressor(n_estimators=100, max_features=1.0, random_state=seed),
    "knn": lambda seed: KNeighborsRegressor(n_neighbors=5),
    "svm": lambda seed: SVR(C=1.0, kernel="rbf", gamma="scale", epsilon=0.1),
    "gradient-boosting": lambda seed: HistGradientBoostingRegressor(random_state=seed),
}
RANDOMIZED = {"decision-tree", "random-forest"}


def load_dataset(dataset):
    """The dataset exactly as mlserve bundles it, as float64 features and int targets."""
    if dataset == "breast-cancer":
        data = load_breast_cancer()
        return data.data, data.target
    if dataset == "diabetes":
        # mlserve bundles the original units (scaled=False), as in Efron et al. (2004).
        data = load_diabetes(scaled=False)
        return data.data, data.target
    data = load_iris()
    x = data.data.copy()
    return x, data.target


def check_same_data(x, y, train, version_dir):
    """Fail loudly unless our copy of the data is the one mlserve trained on."""
    manifest = tomllib.loads((version_dir / "model.toml").read_text())
    problems = []
    if manifest.get("task") != "regression":
        # mlserve hashes the raw data as little-endian f32 features, then u32 targets.
        sha = hashlib.sha256(x.astype("<f4").tobytes() + y.astype("<u4").tobytes()).hexdigest()
        problems = [] if sha == manifest["training"]["dataset_sha256"] else ["dataset_sha256"]
    else:
        # The regression target's statistics are computed on the training rows too.
        target = manifest["target"]
        for stat, ours in (("min", y[train].min()), ("max", y[train].max()), ("mean", y[train].mean())):
            if not np.isclose(ours, target[stat], rtol=1e-12, atol=0):
                problems.append(f"target {stat}: {ours} vs {target[stat]}")
    # The manifest's feature statistics are computed on the training rows.
    for column, feature in zip(x[train].T, manifest["features"]):
        for stat, ours in (("min", column.min()), ("max", column.max()), ("mean", column.mean())):
            if not np.isclose(ours, feature[stat], rtol=1e-12, atol=0):
                problems.append(f"{feature['name']} {stat}: {ours} vs {feature[stat]}")
    if problems:
        sys.exit(f"{version_dir}: data differs from mlserve's: {'; '.join(problems)}")


def run_mlserve(binary, dataset, algorithm, models):
    """Train with mlserve into a fresh repository; return its version folder and metrics."""
    cmd = [str(binary), "train", "--dataset", dataset, "--algorithm", algorithm,
           "--models", str(models), "--seed", str(SEED), "-q"]
    subprocess.run(cmd, check=True)
    version_dir = models / dataset.replace("-", "_") / "1"
    return version_dir, json.loads((version_dir / "metrics.json").read_text())


def sklearn_scores(algorithm, x, y, train, test):
    """Fit scaler + estimator on the training rows; score the held-out rows."""
    model = make_pipeline(StandardScaler(), ALGORITHMS[algorithm]()).fit(x[train], y[train])
    proba = model.predict_proba(x[test])
    if proba.shape[1] == 2:
        auc = roc_auc_score(y[test], proba[:, 1])
    else:
        auc = roc_auc_score(y[test], proba, multi_class="ovr", average="macro")
    return accuracy_score(y[test], model.predict(x[test])), auc


def sklearn_regression(algorithm, x, y, train, test, seed):
    """Fit scaler + regressor on the training rows; R² and RMSE on the held-out rows."""
    model = make_pipeline(StandardScaler(), REGRESSORS[algorithm](seed)).fit(x[train], y[train])
    predicted = model.predict(x[test])
    return r2_score(y[test], predicted), root_mean_squared_error(y[test], predicted)


def regression_table(binary, tmp):
    """The diabetes table; the algorithms outside the tolerance."""
    print("\n| dataset | algorithm | mlserve R² | scikit-learn R² | difference "
          "| mlserve RMSE | scikit-learn RMSE |")
    print("|---|---|---:|---:|---:|---:|---:|")
    x, y = load_dataset("diabetes")
    outside = []
    for algorithm in REGRESSORS:
        version_dir, metrics = run_mlserve(binary, "diabetes", algorithm, Path(tmp) / f"diabetes-{algorithm}")
        test = np.array(metrics["split"]["test_rows"])
        train = np.setdiff1d(np.arange(len(y)), test)
        check_same_data(x, y, train, version_dir)
        seeds = REGRESSION_SEEDS if algorithm in RANDOMIZED else [SEED]
        scores = [sklearn_regression(algorithm, x, y, train, test, seed) for seed in seeds]
        r2s = np.array([r2 for r2, _ in scores])
        rmse = np.mean([rmse for _, rmse in scores])
        ours = metrics["r2"]
        diff = ours - r2s.mean()
        theirs = f"{r2s.mean():.4f}"
        if len(seeds) > 1:
            theirs += f" (mean of {len(seeds)} seeds; {r2s.min():.4f} to {r2s.max():.4f})"
        print(f"| diabetes | {algorithm} | {ours:.4f} | {theirs} | {diff:+.4f} "
              f"| {metrics['rmse']:.2f} | {rmse:.2f} |")
        inside_range = r2s.min() <= ours <= r2s.max()
        if abs(diff) > R2_TOLERANCE and not inside_range:
            outside.append(f"diabetes/{algorithm} (R² {diff:+.4f})")
    return outside


# Gradient boosting is held to 1 accuracy point on larger data, averaged over data seeds.
BOOSTING_POINTS = 1.0
BOOSTING_SIZES = (5_000, 50_000)
BOOSTING_DATA_SEEDS = range(3)


def synthetic(task, rows, seed):
    """Data where gradient boosting's extras matter: 20 (10) numeric features, 10% missing in
    five of them, and a categorical feature of six categories whose effect is not ordered."""
    rng = np.random.default_rng(seed)
    if task == "classification":
        x, y = make_classification(n_samples=rows, n_features=20, n_informative=10,
                                   n_classes=3, random_state=seed)
    else:
        x, y = make_friedman1(n_samples=rows, n_features=10, noise=1.0, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    region = rng.choice(list("abcdef"), size=rows)
    frame["region"] = pd.Categorical(region)
    for column in frame.columns[:5]:
        frame.loc[rng.random(rows) < 0.1, column] = np.nan
    if task == "classification":
        flip = np.isin(region, ["a", "c"]) & (rng.random(rows) < 0.5)
        y = np.where(flip, (y + 1) % 3, y)
    else:
        y = y + np.where(np.isin(region, ["b", "e"]), 3.0, 0.0)
    return frame, y


def boosting_run(binary, task, rows, seed, tmp):
    """mlserve and HistGradientBoosting (one thread) on one synthetic dataset and split:
    (ours, theirs, our seconds, their seconds, our iterations, theirs)."""
    frame, y = synthetic(task, rows, seed)
    folder = Path(tmp) / f"boost-{task}-{rows}-{seed}"
    folder.mkdir()
    csv = folder / "data.csv"
    frame.assign(y=y).to_csv(csv, index=False)
    out = subprocess.run([str(binary), "train", "--csv", str(csv), "--target", "y", "--task", task,
                          "--algorithm", "gradient-boosting", "--models", str(folder / "m"),
                          "--seed", str(SEED)], check=True, capture_output=True, text=True).stdout
    our_seconds = float(re.search(r" in (\d+) ms", out).group(1)) / 1000
    our_iterations = int(re.search(r"boosting iterations\s+(\d+)", out).group(1))
    metrics = json.loads((folder / "m" / "data" / "1" / "metrics.json").read_text())
    test = np.array(metrics["split"]["test_rows"])
    train = np.setdiff1d(np.arange(rows), test)
    model = (HistGradientBoostingClassifier if task == "classification"
             else HistGradientBoostingRegressor)(random_state=SEED)
    with threadpool_limits(1):
        started = time.perf_counter()
        model.fit(frame.iloc[train], y[train])
        predicted = model.predict(frame.iloc[test])
        their_seconds = time.perf_counter() - started
    if task == "classification":
        ours, theirs = metrics["accuracy"], accuracy_score(y[test], predicted)
    else:
        ours, theirs = metrics["r2"], r2_score(y[test], predicted)
    return ours, theirs, our_seconds, their_seconds, our_iterations, model.n_iter_


def bundled_boosting_times(binary, tmp):
    """Training time of gradient boosting (100 trees) on the bundled data, ours against
    HistGradientBoosting on one thread on the same split; median of 7 runs each."""
    print("\n| dataset | mlserve train + evaluate | HistGradientBoosting fit + predict, 1 thread |")
    print("|---|---:|---:|")
    for dataset in ("breast-cancer", "diabetes"):
        x, y = load_dataset(dataset)
        ours = []
        for run in range(7):
            out = subprocess.run([str(binary), "train", "--dataset", dataset, "--algorithm",
                                  "gradient-boosting", "--models", str(Path(tmp) / f"time-{dataset}-{run}"),
                                  "--seed", str(SEED)], check=True, capture_output=True, text=True).stdout
            ours.append(float(re.search(r" in (\d+) ms", out).group(1)))
        metrics = json.loads((Path(tmp) / f"time-{dataset}-0" / dataset.replace("-", "_") / "1"
                              / "metrics.json").read_text())
        test = np.array(metrics["split"]["test_rows"])
        train = np.setdiff1d(np.arange(len(y)), test)
        Model = HistGradientBoostingRegressor if dataset == "diabetes" else HistGradientBoostingClassifier
        theirs = []
        with threadpool_limits(1):
            for _ in range(7):
                started = time.perf_counter()
                Model(random_state=SEED).fit(x[train], y[train]).predict(x[test])
                theirs.append((time.perf_counter() - started) * 1000)
        print(f"| {dataset} | {np.median(ours):.0f} ms | {np.median(theirs):.0f} ms |")


def boosting_table(binary, tmp):
    """Gradient boosting on larger synthetic data with missing values and a categorical
    feature; the sizes outside the tolerance."""
    print("\n| task | rows | mlserve | HistGradientBoosting | difference | iterations (ours / theirs) "
          "| mlserve train + evaluate | HistGradientBoosting fit + predict, 1 thread |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    outside = []
    for task, metric in (("classification", "accuracy"), ("regression", "R²")):
        for rows in BOOSTING_SIZES:
            runs = np.array([boosting_run(binary, task, rows, seed, tmp)
                             for seed in BOOSTING_DATA_SEEDS])
            ours, theirs = runs[:, 0].mean(), runs[:, 1].mean()
            diff = (ours - theirs) * (100 if task == "classification" else 1)
            print(f"| {task} ({metric}, mean of {len(runs)} datasets) | {rows:,} | {ours:.4f} "
                  f"| {theirs:.4f} | {diff:+.4f}{' pp' if task == 'classification' else ''} "
                  f"| {runs[:, 4].mean():.0f} / {runs[:, 5].mean():.0f} "
                  f"| {runs[:, 2].mean():.2f} s | {runs[:, 3].mean():.2f} s |")
            limit = BOOSTING_POINTS if task == "classification" else R2_TOLERANCE
            if diff < -limit:
                outside.append(f"gradient boosting {task} {rows} rows ({diff:+.4f})")
    return outside


def default_binary():
    release = REPO / "target" / "release" / "mlserve"
    return release if release.exists() else REPO / "target" / "debug" / "mlserve"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", nargs="?", type=Path, default=default_binary(),
                        help="the mlserve binary (default: target/release, else target/debug)")
    binary = parser.parse_args().binary
    if not binary.exists():
        sys.exit(f"no mlserve binary at {binary}: build it first")

    print(f"scikit-learn {sklearn.__version__}, Python {platform.python_version()}, "
          f"mlserve {binary}, seed {SEED}\n")
    print("| dataset | algorithm | mlserve accuracy | scikit-learn accuracy | difference (pp) "
          "| mlserve ROC AUC | scikit-learn ROC AUC |")
    print("|---|---|---:|---:|---:|---:|---:|")
    outside = []
    with tempfile.TemporaryDirectory(prefix="mlserve-baseline-") as tmp:
        for dataset in ("breast-cancer", "iris"):
            x, y = load_dataset(dataset)
            for algorithm in ALGORITHMS:
                # A fresh repository per run, so the model is always version 1.
                version_dir, metrics = run_mlserve(binary, dataset, algorithm, Path(tmp) / f"{dataset}-{algorithm}")
                test = np.array(metrics["split"]["test_rows"])
                train = np.setdiff1d(np.arange(len(y)), test)
                check_same_data(x, y, train, version_dir)
                accuracy, auc = sklearn_scores(algorithm, x, y, train, test)
                diff = 100 * (metrics["accuracy"] - accuracy)
                print(f"| {dataset} | {algorithm} | {metrics['accuracy']:.4f} | {accuracy:.4f} "
                      f"| {diff:+.4f} | {metrics['roc_auc']:.4f} | {auc:.4f} |")
                if abs(diff) > TOLERANCE_POINTS:
                    outside.append(f"{dataset}/{algorithm} ({diff:+.2f} pp)")
        outside += regression_table(binary, tmp)
        outside += boosting_table(binary, tmp)
        bundled_boosting_times(binary, tmp)
    if outside:
        sys.exit(f"\nOutside the tolerance (accuracy {TOLERANCE_POINTS:g} points, R² {R2_TOLERANCE}): "
                 f"{', '.join(outside)}")
    print(f"\nEvery accuracy is within {TOLERANCE_POINTS:g} percentage points of scikit-learn's, "
          f"every R² within {R2_TOLERANCE} (or inside the range over seeds).")


if __name__ == "__main__":
    main()

"""The feature store and the cheaper model fitting (issue: fast runs).

- :class:`workbench.models.feature_store.FeatureStore` returns exactly what
  :func:`build_features` returns, builds each cutoff once even when two processes ask at the same
  time, and changes its key when any canonical file changes (so a stored snapshot is never used
  for other data: the no-leakage property of the features carries over).
- The shared calibration folds, the permutation importance on prepared columns and the reuse of
  the main fit in the backtest give the same numbers as the scikit-learn calls they replace.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.inspection import permutation_importance
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold, train_test_split

from workbench.config import get_paths
from workbench.models import classifiers
from workbench.models.classifiers import backtest, fit_and_evaluate, make_pipeline
from workbench.models.dataset import build_features, dataset_from_transactions
from workbench.models.feature_store import FeatureStore, cutoff_key

C1, C2 = "2026-02-01", "2026-05-02"


# ----------------------------------------------------------------------------- the store on the sample
def test_store_returns_what_build_features_returns_and_reads_it_back(layer, tmp_path):
    store = FeatureStore(layer, root=tmp_path / "store")
    got = store.features([C2, C1, C2])
    assert list(got) == [C2, C1] and store.stats["built"] == 2
    for c in (C1, C2):
        direct = build_features(layer, cutoff=c)
        pd.testing.assert_frame_equal(got[c], direct)
        assert got[c].attrs == direct.attrs and got[c].index.dtype == direct.index.dtype
    again = FeatureStore(layer, root=tmp_path / "store")
    assert again.key == store.key
    second = again.features([C1])
    assert again.stats == {"built": 0, "read": 1, "waited": pytest.approx(0.0, abs=1.0)}
    pd.testing.assert_frame_equal(second[C1], got[C1])


def test_store_key_follows_every_canonical_file(resolved_paths, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(resolved_paths.canonical, root / "data" / "processed" / "canonical")
    paths = get_paths(root / "data", root / "reports")
    layer = SimpleNamespace(paths=paths)
    before = FeatureStore(layer).key
    assert FeatureStore(layer).key == before                      # deterministic
    events = paths.canonical / "events.parquet"
    df = pd.read_parquet(events)
    df.iloc[:-1].to_parquet(events, index=False)                   # one event fewer
    assert FeatureStore(layer).key != before


def test_cutoffs_must_be_days():
    assert cutoff_key("2026-06-18T00:00:00+00:00") == "2026-06-18"
    with pytest.raises(ValueError, match="must be a date"):
        cutoff_key("2026-06-18 13:00")


# ----------------------------------------------------------------------------- two processes at once
def _slow_build(layer, *, cutoff):
    """A stand-in for build_features: records each build, takes a moment."""
    with open(layer.paths.data / "builds.log", "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {cutoff}\n")
    time.sleep(0.4)
    frame = pd.DataFrame({"x": [float(len(cutoff))]}, index=pd.Index(["a"], dtype="string", name="oneid"))
    frame.attrs = {"cutoff": cutoff}
    return frame


def _ask(data: str, cutoffs: list[str], out: str) -> None:
    layer = SimpleNamespace(paths=get_paths(Path(data), Path(data) / "reports"))
    store = FeatureStore(layer, build=_slow_build)
    got = store.features(cutoffs)
    pd.concat(got).to_parquet(out)


def test_two_processes_build_each_cutoff_once(tmp_path):
    data = tmp_path / "data"
    (data / "processed" / "canonical").mkdir(parents=True)
    (data / "processed" / "canonical" / "t.parquet").write_bytes(b"x")
    a = ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]
    b = ["2026-03-01", "2026-04-01", "2026-05-01", "2026-01-01"]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_ask, args=(str(data), cuts, str(tmp_path / f"{i}.parquet")))
             for i, cuts in enumerate((a, b))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    built = [line.split()[1] for line in (data / "builds.log").read_text().splitlines()]
    assert sorted(built) == sorted(set(a) | set(b))               # every cutoff built once, by one of them
    assert len({line.split()[0] for line in (data / "builds.log").read_text().splitlines()}) == 2  # both worked
    first, second = pd.read_parquet(tmp_path / "0.parquet"), pd.read_parquet(tmp_path / "1.parquet")
    assert len(first) == 4 and len(second) == 4
    store = data / "interim" / "feature_store"
    (folder,) = [p for p in store.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("*.parquet")) == sorted(f"{c}.parquet" for c in set(a) | set(b))
    assert not list(store.rglob("*.tmp"))


def _quick_build(layer, *, cutoff):
    frame = pd.DataFrame({"x": [1.0]}, index=pd.Index(["a"], dtype="string", name="oneid"))
    frame.attrs = {"cutoff": cutoff}
    return frame


def test_old_snapshots_are_removed_only_when_no_open_store_uses_them(tmp_path):
    """07 and 08 run at once; if the package changes in between, their keys differ, and neither may
    delete the folder the other is writing (it did: 'Cannot save file into a non-existent directory')."""
    layers = []
    for name in ("old", "new"):
        data = tmp_path / name
        (data / "processed" / "canonical").mkdir(parents=True)
        (data / "processed" / "canonical" / "t.parquet").write_bytes(name.encode())
        layers.append(SimpleNamespace(paths=get_paths(data, data / "reports")))
    root = tmp_path / "store"
    old = FeatureStore(layers[0], root=root, build=_quick_build)
    old.features(["2026-01-01"])                                   # open: holds its claim
    new = FeatureStore(layers[1], root=root, build=_quick_build)
    assert new.key != old.key
    new.features(["2026-01-01"])
    assert (root / old.key / "2026-01-01.parquet").exists()        # in use: kept
    old.features(["2026-02-01"])                                   # and still writable
    new.close()
    old.close()
    FeatureStore(layers[1], root=root, build=_quick_build).features(["2026-01-01"])
    assert not (root / old.key).exists()                           # nobody uses it: removed
    assert (root / new.key / "2026-01-01.parquet").exists()


# ----------------------------------------------------------------------------- cheaper fitting, same numbers
@pytest.fixture(scope="module")
def synthetic():
    """A dataset with a categorical column, missing values and two informative columns."""
    rng = np.random.default_rng(3)
    n = 1200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n), "c": rng.normal(size=n),
                      "city": rng.choice(["x", "y", "z", None], size=n)})
    X.loc[rng.uniform(size=n) < 0.2, "b"] = np.nan
    logit = 1.2 * X["a"] - 0.8 * X["b"].fillna(0) + (X["city"] == "x") * 0.7
    y = pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int))
    X["city"] = X["city"].astype("string").astype("str")
    return X, y


@pytest.mark.parametrize("kind", ["hgb", "logistic"])
def test_permutation_importance_equals_scikit_learn(synthetic, kind):
    X, y = synthetic
    model = make_pipeline(kind, numeric=["a", "b", "c"], categorical=["city"], max_iter=30 if kind == "hgb" else 200)
    model.fit(X.iloc[:800], y.iloc[:800])
    ours = classifiers._permutation_importance(model, X.iloc[800:], y.iloc[800:], n_repeats=3, random_state=7)
    theirs = permutation_importance(model, X.iloc[800:], y.iloc[800:], scoring="roc_auc", n_repeats=3,
                                    random_state=7, n_jobs=1)
    np.testing.assert_array_equal(ours.importances, theirs.importances)
    assert ours.importances_mean[0] > 0.05 and abs(ours.importances_mean[2]) < 0.02  # a matters, c does not


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_permutation_importance_of_a_calibrated_pipeline_equals_scikit_learn(synthetic, method):
    """The fast path scores prepared rows through the same calibrators (isotonic ties included)."""
    from sklearn.calibration import CalibratedClassifierCV

    X, y = synthetic
    model = CalibratedClassifierCV(make_pipeline("hgb", numeric=["a", "b", "c"], categorical=["city"], max_iter=30),
                                   method=method, cv=3, ensemble=False).fit(X.iloc[:800], y.iloc[:800])
    assert classifiers._prepared_pipeline(model) is model.calibrated_classifiers_[0].estimator   # the fast path
    ours = classifiers._permutation_importance(model, X.iloc[800:], y.iloc[800:], n_repeats=3, random_state=7)
    theirs = permutation_importance(model, X.iloc[800:], y.iloc[800:], scoring="roc_auc", n_repeats=3,
                                    random_state=7, n_jobs=1)
    np.testing.assert_array_equal(ours.importances, theirs.importances)
    assert ours.importances_mean[0] > 0.05


def test_shared_calibration_folds_give_scikit_learns_brier_scores(synthetic):
    X, y = synthetic

    def make():
        return make_pipeline("hgb", numeric=["a", "b", "c"], categorical=["city"], max_iter=30)

    _, info = classifiers._fit_calibrated(make, X, y, calibrate=True, random_state=0)
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for method in ("sigmoid", "isotonic"):
        cal = CalibratedClassifierCV(make(), method=method, cv=cv, ensemble=False).fit(X_fit, y_fit)
        expected = brier_score_loss(y_val, cal.predict_proba(X_val)[:, 1])
        assert info["validation_brier"][method] == round(float(expected), 6)


def test_backtest_reuses_a_matching_fit_and_only_that(synthetic):
    X, y = synthetic
    rng = np.random.default_rng(0)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 500, 6000), unit="D")
    tx = pd.DataFrame({"c": rng.integers(0, 900, 6000) ** 2 % 811, "d": days, "v": rng.gamma(2, 50, 6000)})
    build = lambda c: dataset_from_transactions(tx, customer_id_col="c", datetime_col="d",  # noqa: E731
                                                monetary_value_col="v", cutoff=c, task="propensity",
                                                horizon_days=60)
    cuts = ["2024-07-01", "2024-09-01", "2024-11-01"]
    plain = backtest(task="propensity", cutoffs=cuts, horizon_days=60, expanding=True, dataset_builder=build,
                     max_iter=30)
    main = fit_and_evaluate([build(cuts[0]), build(cuts[1])], build(cuts[2]), calibrate=False, importance_repeats=0,
                            max_iter=30)
    calls = []
    original = classifiers.fit_and_evaluate
    try:
        classifiers.fit_and_evaluate = lambda *a, **k: calls.append(1) or original(*a, **k)
        reused = backtest(task="propensity", cutoffs=cuts, horizon_days=60, expanding=True, dataset_builder=build,
                          fitted=[main], max_iter=30)
        assert len(calls) == 1                                     # only the first split was fitted
        calls.clear()
        other = backtest(task="propensity", cutoffs=cuts, horizon_days=60, expanding=True, dataset_builder=build,
                         fitted=[main], max_iter=31)               # other parameters: nothing to reuse
        assert len(calls) == 2
    finally:
        classifiers.fit_and_evaluate = original
    pd.testing.assert_frame_equal(reused, plain)
    assert not other.equals(plain)


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_median_imputer_equals_scikit_learns(synthetic):
    from sklearn.impute import SimpleImputer

    rng = np.random.default_rng(5)
    X = rng.normal(size=(501, 6)) * [1, 10, 100, 1e-3, 1, 1]
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    X[:, 4] = np.nan                                           # an empty column
    X[::2, 5] = 7.0                                            # ties
    for keep in (True, False):
        ours = classifiers.MedianImputer(add_indicator=True, keep_empty_features=keep).fit(X)
        theirs = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=keep).fit(X)
        np.testing.assert_array_equal(ours.statistics_, theirs.statistics_)
        np.testing.assert_array_equal(ours.transform(X), theirs.transform(X))

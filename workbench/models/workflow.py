"""One model task end to end, as notebooks 07 (churn) and 08 (propensity) run it.

Features at every cutoff come from the :class:`~workbench.models.feature_store.FeatureStore`
(built once per input fingerprint and shared by both tasks and by reruns) and are reused by the
time-split evaluation, the rolling-origin backtest and the scoring of today's customers.
Cutoffs left as ``None`` are derived from the data (:func:`~workbench.models.dataset.derive_cutoffs`):
the test cutoff is the end of the last day with an order minus the horizon, training cutoffs
step back from it by the horizon.

Each task writes its own files (one writer per table): ``models/<task>.*`` (pipeline and card)
and ``scores_<task>.parquet``.

Example:
    >>> run = run_task(task="churn", horizon_days=90)                     # doctest: +SKIP
    >>> run.result.metrics.loc["model", "roc_auc"]                        # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..canonical import load_canonical
from ..config import Paths, get_paths
from ..runconfig import resolve_engine
from ..timeutil import day_after, to_utc
from .classifiers import ModelResult, backtest, fit_and_evaluate, save_model, score_customers, write_scores
from .dataset import Dataset, derive_cutoffs, make_dataset
from .feature_store import FeatureStore


@dataclass
class TaskRun:
    """Everything a model notebook shows: the evaluated model, the backtest, today's scores."""

    task: str
    result: ModelResult
    train: list[Dataset]
    test: Dataset
    backtest: pd.DataFrame
    scores: pd.DataFrame
    files: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    cutoffs_derived: bool = False
    feature_store: dict[str, Any] = field(default_factory=dict)


def _key(cutoff: Any) -> str:
    return to_utc(cutoff).strftime("%Y-%m-%d")


def run_task(paths: Paths | None = None, *, task: str, train_cutoffs: list[Any] | None = None,
             test_cutoff: Any = None, horizon_days: int, n_train_cutoffs: int = 4,
             cutoff_step_days: int | None = None, score_as_of: Any = None, lookback_days: int = 180,
             kind: str = "hgb", random_state: int = 0, calibrate: bool = True,
             backtest_cutoffs: list[Any] | None = None, progress=print, engine: Any = None, **params) -> TaskRun:
    """Fit on ``train_cutoffs`` snapshots, test at ``test_cutoff`` (both derived from the data when
    None: ``n_train_cutoffs`` cutoffs ``cutoff_step_days`` apart, default the horizon), backtest over
    ``backtest_cutoffs`` (default: the train and test cutoffs, expanding window), save the model
    and its card to ``data/processed/models/<task>.*``, score every customer of the population at
    ``score_as_of`` (default: the end of the data) and write ``scores_<task>.parquet``.

    ``engine`` (settings, a mapping or a YAML path; default: the run's recorded engine, else
    local): with ``engine: spark`` the feature store computes the order features of every cutoff
    with Spark SQL (:mod:`workbench.engine.spark_features`); the model sees the same features."""
    paths = paths or get_paths()
    layer = load_canonical(paths)
    say = progress or (lambda _m: None)
    derived = train_cutoffs is None or test_cutoff is None
    if derived:
        d_train, d_test = derive_cutoffs(layer, horizon_days=horizon_days, n_train=n_train_cutoffs,
                                         step_days=cutoff_step_days, peak_days=layer.analysis.peak_days,
                                         timezone=layer.local_timezone)
        train_cutoffs = train_cutoffs if train_cutoffs is not None else d_train
        test_cutoff = test_cutoff if test_cutoff is not None else d_test
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    tx = layer.purchases()
    score_at = to_utc(score_as_of) or day_after(tx["ordered_at"].max())
    cutoffs = sorted({_key(c) for c in [*train_cutoffs, test_cutoff, *(backtest_cutoffs or [])]} | {_key(score_at)})
    store = FeatureStore(layer, engine=resolve_engine(paths, engine))
    try:
        features = store.features(cutoffs, progress=say)
    finally:
        store.close()
    t["features"] = time.perf_counter() - t0

    def dataset(c: Any, label: bool = True) -> Dataset:
        return make_dataset(layer, cutoff=c, task=task, horizon_days=horizon_days, lookback_days=lookback_days,
                            transactions=tx, features=features[_key(c)], label=label)

    t0 = time.perf_counter()
    train = [dataset(c) for c in train_cutoffs]
    test = dataset(test_cutoff)
    result = fit_and_evaluate(train, test, kind=kind, random_state=random_state, calibrate=calibrate, **params)
    t["fit_and_evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bt_cutoffs = [_key(c) for c in (backtest_cutoffs or [*train_cutoffs, test_cutoff])]
    say(f"backtest over {len(bt_cutoffs) - 1} splits ...")
    bt = backtest(layer, task=task, cutoffs=bt_cutoffs, horizon_days=horizon_days, lookback_days=lookback_days,
                  kind=kind, random_state=random_state, expanding=True, transactions=tx,
                  features={c: features[c] for c in bt_cutoffs}, fitted=[result], **params)
    t["backtest"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    files = save_model(result, paths.models, name=task)
    scores = score_customers(result, dataset(score_at, label=False))
    files["scores"] = write_scores(paths, task, scores)
    t["save_and_score"] = time.perf_counter() - t0
    return TaskRun(task, result, train, test, bt, scores, files, {k: round(v, 1) for k, v in t.items()}, derived,
                   {**store.stats, "waited": round(store.stats["waited"], 1), "key": store.key})

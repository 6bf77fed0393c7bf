"""One model task end to end, as notebooks 07 (churn) and 08 (propensity) run it.

Datasets at every cutoff are built once (features are the expensive part) and reused by the
time-split evaluation, the rolling-origin backtest and the scoring of today's customers.

Example:
    >>> run = run_task(task="churn", train_cutoffs=["2025-08-01", "2025-11-01"],
    ...                test_cutoff="2026-02-01", horizon_days=90)            # doctest: +SKIP
    >>> run.result.metrics.loc["model", "roc_auc"]                         # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import Paths, get_paths
from ..transactions import load_transactions, to_utc
from .classifiers import (PROFILE_COLUMNS, ModelResult, backtest, fit_and_evaluate, save_model,
                          score_customers)
from .dataset import Dataset, build_features, make_dataset


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


def _key(cutoff: Any) -> str:
    return to_utc(cutoff).strftime("%Y-%m-%d")


def run_task(paths: Paths | None = None, *, task: str, train_cutoffs: list[Any], test_cutoff: Any,
             horizon_days: int, score_as_of: Any = None, lookback_days: int = 180, kind: str = "hgb",
             random_state: int = 0, calibrate: bool = True, backtest_cutoffs: list[Any] | None = None,
             progress=print, **params) -> TaskRun:
    """Fit on ``train_cutoffs`` snapshots, test at ``test_cutoff``, backtest over
    ``backtest_cutoffs`` (default: the train and test cutoffs, expanding window), save the
    model and its card to ``data/processed/models/<task>.*``, and score every customer of the
    population at ``score_as_of`` (default: the latest data) with the evaluated model."""
    paths = paths or get_paths()
    say = progress or (lambda _m: None)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    tx = load_transactions(paths)
    end = tx["ordered_at"].max()
    score_at = to_utc(score_as_of) or (end + pd.Timedelta(days=1)).normalize()
    cutoffs = sorted({_key(c) for c in [*train_cutoffs, test_cutoff, *(backtest_cutoffs or [])]} | {_key(score_at)})
    features: dict[str, pd.DataFrame] = {}
    for i, c in enumerate(cutoffs, start=1):
        say(f"[{i}/{len(cutoffs)}] features at {c} ...")
        features[c] = build_features(paths, cutoff=c, transactions_before=tx[tx["ordered_at"] < to_utc(c)])
    t["features"] = time.perf_counter() - t0

    def dataset(c: Any, label: bool = True) -> Dataset:
        return make_dataset(paths, cutoff=c, task=task, horizon_days=horizon_days, lookback_days=lookback_days,
                            transactions=tx, features=features[_key(c)], label=label)

    t0 = time.perf_counter()
    train = [dataset(c) for c in train_cutoffs]
    test = dataset(test_cutoff)
    result = fit_and_evaluate(train, test, kind=kind, random_state=random_state, calibrate=calibrate, **params)
    t["fit_and_evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bt_cutoffs = [_key(c) for c in (backtest_cutoffs or [*train_cutoffs, test_cutoff])]
    say(f"backtest over {len(bt_cutoffs) - 1} splits ...")
    bt = backtest(paths, task=task, cutoffs=bt_cutoffs, horizon_days=horizon_days, lookback_days=lookback_days,
                  kind=kind, random_state=random_state, expanding=True, transactions=tx,
                  features={c: features[c] for c in bt_cutoffs}, **params)
    t["backtest"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    files = save_model(result, paths.processed / "models", name=task)
    scores = score_customers(result, dataset(score_at, label=False))
    update_scores(paths, task, scores)
    t["save_and_score"] = time.perf_counter() - t0
    return TaskRun(task, result, train, test, bt, scores, files, {k: round(v, 1) for k, v in t.items()})


def update_scores(paths: Paths, task: str, scores: pd.DataFrame) -> pd.DataFrame:
    """Replace ``task``'s columns in ``data/processed/scores.parquet`` (other tasks' columns stay),
    so notebooks 07 and 08 can run in any order."""
    col = PROFILE_COLUMNS[task]
    new = pd.DataFrame({col: scores[f"{task}_score"].astype("float64"),
                        f"{col}_decile": scores[f"{task}_decile"].astype("Int64")})
    new.index = pd.Index(scores.index.astype("string"), name="oneid")
    f = paths.processed / "scores.parquet"
    if f.exists():
        old = pd.read_parquet(f).set_index("oneid")
        old = old.drop(columns=[c for c in (col, f"{col}_decile") if c in old.columns])
        new = old.join(new, how="outer")
    new = new.sort_index()
    new.reset_index().to_parquet(f, index=False)
    _write_onto_profile(paths, new)
    return new


def _write_onto_profile(paths: Paths, scores: pd.DataFrame) -> None:
    """Put the score columns onto ``customer_360.parquet`` (replacing earlier ones); persons
    outside a model's population get missing values."""
    f = paths.processed / "customer_360.parquet"
    if not f.exists():
        return
    profile = pd.read_parquet(f)
    attrs = dict(profile.attrs)
    profile = profile.drop(columns=[c for c in scores.columns if c in profile.columns])
    profile = profile.merge(scores.reset_index(), on="oneid", how="left", validate="one_to_one")
    profile.attrs = attrs
    profile.to_parquet(f, index=False)

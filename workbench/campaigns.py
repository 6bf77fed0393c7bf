"""Results of past campaigns with control groups: treated vs control, lift with 95% intervals.

Campaign members come from two places, both keyed by OneID:

- the canonical ``campaign_members`` table — a brand's own campaign-tool exports, mapped with the
  ``campaign_members`` role;
- campaigns the workbench exported itself, ``data/processed/campaigns/<id>/assignment.parquet``
  (``oneid``, ``group``, ``stratum``, ``exported_at``) with ``campaign.json`` beside it.

Responses are the canonical purchases (paid orders, refunds netted) in ``[sent_at, sent_at +
response window)``. For each campaign whose window has ended: conversion, orders and net revenue
per person in each group, the absolute and relative lift with seeded bootstrap 95% intervals,
incremental revenue, the same per segment (the person's buyer status at the send: a
pre-treatment segment, so the comparison stays fair), and the minimum detectable effect when
the groups are too small to tell.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = pd.DataFrame({"oneid": [f"o{i}" for i in range(4000)], "campaign_id": "c1",
    ...                   "group": np.where(rng.random(4000) < 0.5, "treatment", "control")})
    >>> m["converted"] = rng.random(4000) < np.where(m["group"] == "treatment", 0.25, 0.15)
    >>> m["orders"], m["revenue"] = m["converted"].astype(float), m["converted"] * 300.0
    >>> r = lift_table(m, n_boot=500, seed=1)
    >>> row = r[r["metric"] == "conversion"].iloc[0]
    >>> bool(row["ci_low"] > 0), row["verdict"]
    (True, 'lift')
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .campaign_export import campaigns_folder, load_campaign   # the writer owns the record's format
from .config import Paths, get_paths

__all__ = ["load_campaign_members", "campaign_outcomes", "lift_table", "minimum_detectable_effect",
           "buyer_status_at_send", "campaign_results", "run_campaign_results", "METRICS", "RESULT_COLUMNS"]

#: metric -> (column of the per-person outcomes, description)
METRICS = {"conversion": ("converted", "share of people with a paid order in the response window"),
           "orders_per_person": ("orders", "paid orders per person in the response window"),
           "revenue_per_person": ("revenue", "net revenue per person in the response window")}
RESULT_COLUMNS = ["campaign_id", "campaign_name", "source", "sent_at", "window_end", "segment", "metric",
                  "n_treatment", "n_control", "treatment", "control", "lift", "ci_low", "ci_high",
                  "relative_lift", "relative_ci_low", "relative_ci_high", "incremental", "incremental_ci_low",
                  "incremental_ci_high", "mde", "enough_data", "verdict"]


def _check_positive(value: Any, name: str, *, integer: bool = True) -> Any:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if not ok or isinstance(value, bool) or value <= 0:
        raise ValueError(f"The '{name}' parameter must be a positive {'integer' if integer else 'number'}. "
                         f"Got {value!r} instead.")
    return value


# ----------------------------------------------------------------------------- members
def _exported_campaigns(paths: Paths) -> pd.DataFrame:
    """Members of campaigns the workbench exported (``processed/campaigns/<id>/``), when any."""
    root = campaigns_folder(paths)
    parts = []
    for meta in sorted(root.glob("*/campaign.json")) if root.exists() else []:
        if not (meta.parent / "assignment.parquet").exists():
            continue
        info, df = load_campaign(meta.parent.name, paths)
        parts.append(pd.DataFrame({
            "oneid": df["oneid"].astype("string"), "campaign_id": str(info.get("campaign_id", meta.parent.name)),
            "campaign_name": str(info.get("name") or info.get("campaign_id", meta.parent.name)),
            "group": df["group"].astype("string"),
            "sent_at": pd.to_datetime(info.get("exported_at") or df["exported_at"], utc=True),
            "response_window_days": float(info["response_window_days"]) if info.get("response_window_days")
            else np.nan, "source": "workbench export"}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def load_campaign_members(layer: Any, *, paths: Paths | None = None) -> pd.DataFrame:
    """Every campaign member with a control group, from the canonical layer and from the
    workbench's own exports: ``oneid, campaign_id, campaign_name, group, sent_at,
    response_window_days, source``. A OneID in both groups of one campaign (two records that
    OneID joined) is dropped from it; a OneID listed twice in one group counts once.

    >>> load_campaign_members(layer).groupby("campaign_id")["group"].value_counts()   # doctest: +SKIP
    """
    paths = paths or layer.paths
    cols = ["oneid", "campaign_id", "campaign_name", "group", "sent_at", "response_window_days", "source"]
    try:
        canon = layer.table("campaign_members")
    except (FileNotFoundError, ValueError):   # a layer built before the role existed
        canon = pd.DataFrame(columns=cols[:-1])
    canon = canon.assign(source="campaign export")[cols] if len(canon) else pd.DataFrame(columns=cols)
    exported = _exported_campaigns(paths)
    m = pd.concat([x for x in (canon, exported) if len(x)], ignore_index=True) if len(exported) else canon
    if not len(m):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    m["group"] = m["group"].astype("string").str.casefold()
    m = m[m["group"].isin(["treatment", "control"])]
    m["campaign_name"] = m["campaign_name"].fillna(m["campaign_id"])
    both = m.groupby(["campaign_id", "oneid"])["group"].transform("nunique") > 1
    m = m[~both.to_numpy(bool)]
    m = (m.sort_values(["campaign_id", "oneid", "sent_at"], kind="stable")
         .drop_duplicates(["campaign_id", "oneid"]).reset_index(drop=True))
    m.attrs["dropped_in_both_groups"] = int(both.sum())
    return m


def buyer_status_at_send(purchases: pd.DataFrame, members: pd.DataFrame, *, oneid_col: str = "oneid",
                         time_col: str = "ordered_at", sent_col: str = "sent_at") -> pd.Series:
    """Each member's buyer status just before the send — ``never bought``, ``active (< 90 d)``,
    ``lapsing (90-365 d)``, ``lapsed (> 365 d)`` — a segment that the campaign cannot change.

    >>> p = pd.DataFrame({"oneid": ["a"], "ordered_at": pd.to_datetime(["2026-01-01"], utc=True)})
    >>> m = pd.DataFrame({"oneid": ["a", "b"], "sent_at": pd.to_datetime(["2026-06-01"] * 2, utc=True)})
    >>> buyer_status_at_send(p, m).tolist()
    ['lapsing (90-365 d)', 'never bought']
    """
    x = members[[oneid_col, sent_col]].reset_index()
    j = x.merge(purchases[[oneid_col, time_col]], on=oneid_col, how="left")
    j = j[j[time_col].isna() | (j[time_col] < j[sent_col])]
    last = j.groupby("index")[time_col].max().reindex(x["index"])
    days = (x.set_index("index")[sent_col] - last).dt.total_seconds() / 86400
    status = np.select([days.isna(), days < 90, days <= 365], ["never bought", "active (< 90 d)",
                                                               "lapsing (90-365 d)"], "lapsed (> 365 d)")
    return pd.Series(status, index=members.index, name="segment")


def campaign_outcomes(members: pd.DataFrame, purchases: pd.DataFrame, *, window_days: pd.Series | float,
                      oneid_col: str = "oneid", time_col: str = "ordered_at", value_col: str = "net",
                      paid_col: str = "is_order") -> pd.DataFrame:
    """``members`` with each person's response: ``converted`` (a paid order in ``[sent_at, sent_at
    + window)``), ``orders`` (paid orders) and ``revenue`` (net of refunds) in that window.

    >>> p = pd.DataFrame({"oneid": ["a", "a"], "ordered_at": pd.to_datetime(["2026-01-02", "2026-03-01"], utc=True),
    ...                   "net": [100.0, 50.0], "is_order": [True, True]})
    >>> m = pd.DataFrame({"oneid": ["a", "b"], "sent_at": pd.to_datetime(["2026-01-01"] * 2, utc=True)})
    >>> campaign_outcomes(m, p, window_days=30)[["converted", "orders", "revenue"]].values.tolist()
    [[True, 1.0, 100.0], [False, 0.0, 0.0]]
    """
    m = members.reset_index(drop=True).copy()
    end = m["sent_at"] + pd.to_timedelta(np.asarray(window_days, dtype=float) * np.ones(len(m)), unit="D")
    x = pd.DataFrame({oneid_col: m[oneid_col], "_row": np.arange(len(m)), "_start": m["sent_at"], "_end": end})
    j = x.merge(purchases[[oneid_col, time_col, value_col, paid_col]], on=oneid_col, how="inner")
    j = j[(j[time_col] >= j["_start"]) & (j[time_col] < j["_end"])]
    paid = j[paid_col].fillna(False).astype(bool)
    orders = paid.groupby(j["_row"]).sum().reindex(range(len(m)), fill_value=0).to_numpy(float)
    revenue = j[value_col].groupby(j["_row"]).sum().reindex(range(len(m)), fill_value=0.0).to_numpy(float)
    return m.assign(converted=orders > 0, orders=orders, revenue=revenue, window_end=end)


# ----------------------------------------------------------------------------- statistics
def minimum_detectable_effect(n_treatment: int, n_control: int, *, base_rate: float | None = None,
                              std: float | None = None, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest absolute lift a two-sided test at ``alpha`` finds with ``power``: for a rate give
    ``base_rate``, for a mean give its ``std``.

    >>> round(minimum_detectable_effect(1000, 1000, base_rate=0.1), 4)
    0.0376
    """
    if n_treatment < 1 or n_control < 1:
        return float("nan")
    sd = std if std is not None else np.sqrt(max(base_rate or 0.0, 1e-9) * (1 - (base_rate or 0.0)))
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * sd * np.sqrt(1 / n_treatment + 1 / n_control))


def _boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement), in chunks of at most ~4 million draws."""
    n = values.size
    if n == 0:
        return np.full(n_boot, np.nan)
    out = np.empty(n_boot)
    step = max(1, 4_000_000 // n)
    for lo in range(0, n_boot, step):
        k = min(step, n_boot - lo)
        out[lo:lo + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return out


def lift_table(outcomes: pd.DataFrame, *, group_col: str = "group", n_boot: int = 2000, seed: int = 0,
               alpha: float = 0.05, min_group_size: int = 100) -> pd.DataFrame:
    """Treated vs control for each metric of :data:`METRICS` in ``outcomes`` (one row per person):
    means, absolute lift (treated − control) with a percentile bootstrap interval (each group
    resampled on its own, ``seed``-ed), relative lift (lift ÷ control), incremental total
    (lift × treated), the minimum detectable effect, and a verdict: ``lift``, ``negative lift``,
    or ``no detectable lift``, with "(too few people ...)" added when either group is below
    ``min_group_size``.
    Example: see the module docstring.
    """
    _check_positive(n_boot, "n_boot")
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter must be between 0 and 1. Got {alpha!r} instead.")
    t_mask = (outcomes[group_col] == "treatment").to_numpy(bool)
    c_mask = (outcomes[group_col] == "control").to_numpy(bool)
    nt, nc = int(t_mask.sum()), int(c_mask.sum())
    rng = np.random.default_rng(seed)
    rows = []
    for metric, (col, _) in METRICS.items():
        if col not in outcomes.columns:
            continue
        v = outcomes[col].to_numpy(float)
        t, c = v[t_mask], v[c_mask]
        mt, mc = (t.mean() if nt else np.nan), (c.mean() if nc else np.nan)
        bt, bc = _boot_means(t, n_boot, rng), _boot_means(c, n_boot, rng)
        diff = bt - bc
        q = [alpha / 2 * 100, (1 - alpha / 2) * 100]
        lo, hi = np.nanpercentile(diff, q) if nt and nc else (np.nan, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(bc > 0, diff / bc, np.nan)
        rlo, rhi = np.nanpercentile(rel, q) if np.isfinite(rel).any() else (np.nan, np.nan)
        # both groups pooled (what a test under "no effect" assumes); a rate of 0 or 1 says nothing of
        # the spread: then the widest, p = 0.5
        pooled = np.concatenate([t, c])
        if metric == "conversion":
            p = float(pooled.mean()) if pooled.size else 0.5
            mde = minimum_detectable_effect(nt, nc, base_rate=p if 0 < p < 1 else 0.5, alpha=alpha)
        else:
            mde = minimum_detectable_effect(nt, nc, std=float(np.std(pooled)) if pooled.size > 1 else np.nan,
                                            alpha=alpha)
        enough = min(nt, nc) >= min_group_size
        verdict = "lift" if lo > 0 else "negative lift" if hi < 0 else "no detectable lift"
        if not enough:
            verdict += " (too few people: see the minimum detectable effect)"
        rows.append({"metric": metric, "n_treatment": nt, "n_control": nc, "treatment": mt, "control": mc,
                     "lift": mt - mc, "ci_low": lo, "ci_high": hi,
                     "relative_lift": (mt - mc) / mc if mc else np.nan, "relative_ci_low": rlo,
                     "relative_ci_high": rhi, "incremental": (mt - mc) * nt, "incremental_ci_low": lo * nt,
                     "incremental_ci_high": hi * nt, "mde": mde, "enough_data": enough, "verdict": verdict})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the stage
def campaign_results(layer: Any, *, members: pd.DataFrame | None = None, as_of: Any = None,
                     default_window_days: int = 30, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05,
                     min_group_size: int = 100, segments: pd.Series | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results of every campaign whose response window ended before ``as_of`` (default: the end
    of the data): ``(results, outcomes)`` — results with :data:`RESULT_COLUMNS`, one row per
    campaign × segment (``all`` first) × metric; outcomes one row per member.

    ``segments`` (aligned with ``members``) default to :func:`buyer_status_at_send`; a campaign
    without an end date of its own uses ``default_window_days``.

    >>> results, outcomes = campaign_results(load_canonical())     # doctest: +SKIP
    """
    _check_positive(default_window_days, "default_window_days")
    members = load_campaign_members(layer) if members is None else members
    as_of = pd.Timestamp(as_of, tz="UTC") if as_of is not None and pd.Timestamp(as_of).tzinfo is None else (
        pd.Timestamp(as_of) if as_of is not None else layer.data_end)
    if not len(members):
        return pd.DataFrame(columns=RESULT_COLUMNS), pd.DataFrame()
    purchases = layer.purchases()
    window = pd.to_numeric(members["response_window_days"], errors="coerce").fillna(default_window_days)
    out = campaign_outcomes(members, purchases, window_days=window)
    out["segment"] = (buyer_status_at_send(purchases, out) if segments is None
                      else pd.Series(np.asarray(segments), index=out.index))
    out = out[out["window_end"] <= as_of].reset_index(drop=True)
    rows = []
    for cid, g in out.groupby("campaign_id", sort=True):
        head = {"campaign_id": cid, "campaign_name": str(g["campaign_name"].iloc[0]), "source": g["source"].iloc[0],
                "sent_at": g["sent_at"].min(), "window_end": g["window_end"].max()}
        for seg, part in [("all", g)] + sorted(g.groupby("segment", sort=True)):
            t = lift_table(part, n_boot=n_boot, seed=seed, alpha=alpha, min_group_size=min_group_size)
            rows.append(t.assign(**head, segment=seg))
    results = pd.concat(rows, ignore_index=True)[RESULT_COLUMNS] if rows else pd.DataFrame(columns=RESULT_COLUMNS)
    return results, out


def run_campaign_results(paths: Paths | None = None, *, as_of: Any = None, default_window_days: int = 30,
                         n_boot: int = 2000, seed: int = 0, min_group_size: int = 100
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The campaign-results stage: :func:`campaign_results` on the data folder's canonical layer,
    written to ``data/processed/campaign_results.parquet`` (and the per-person outcomes, OneIDs
    only, to ``campaign_outcomes.parquet``).

    >>> results, outcomes = run_campaign_results()                 # doctest: +SKIP
    """
    from .canonical import load_canonical

    paths = (paths or get_paths()).ensure()
    layer = load_canonical(paths)
    results, outcomes = campaign_results(layer, as_of=as_of, default_window_days=default_window_days,
                                         n_boot=n_boot, seed=seed, min_group_size=min_group_size)
    for name, df in (("campaign_results", results), ("campaign_outcomes", outcomes)):
        f = paths.processed / f"{name}.parquet"
        tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, f)
    return results, outcomes

"""The CLV stage: BG/NBD and Gamma-Gamma on the canonical purchases, validated on a holdout.

:func:`run_clv` validates on the last ``holdout_days`` before the as-of date (BG/NBD beside a
naive rate, spend beside "the same as the previous period"), then fits on all data and writes
``data/processed/clv.parquet`` (expected purchases, P(alive), expected order value and CLV per
customer). Notebook 09 and the CLI (``workbench stage clv``) call it.

Example:
    >>> run = run_clv()                                  # doctest: +SKIP
    >>> run.clv["clv_12m"].sum()                          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..canonical import load_canonical
from ..config import Paths, get_paths
from ..timeutil import to_utc
from . import clv as C

__all__ = ["CLVRun", "run_clv", "CLV_FILE"]

CLV_FILE = "clv.parquet"


@dataclass
class CLVRun:
    """What the CLV stage computed (the notebook shows it)."""

    as_of: pd.Timestamp
    calibration_end: pd.Timestamp
    purchases: pd.DataFrame
    holdout_data: pd.DataFrame
    bgf_calibration: Any
    holdout: pd.DataFrame
    spend_check: pd.DataFrame
    summary: pd.DataFrame
    bgf: Any
    ggf: Any
    frequency_monetary_correlation: float
    clv: pd.DataFrame
    currency: str


def run_clv(paths: Paths | None = None, *, as_of: Any = None, holdout_days: int = 180, clv_months: int = 12,
            discount_rate: float = 0.01, penalizer: float = 0.0) -> CLVRun:
    """Validate BG/NBD × Gamma-Gamma on a holdout, fit on all purchases before ``as_of`` (default:
    the end of the data) and write the CLV per customer. A purchase is an order with a positive net
    amount (as in RFM); periods are days of the brand's local calendar (``local_timezone``).
    Raises ``ValueError`` when the data has no orders or no repeat buyers."""
    paths = (paths or get_paths()).ensure()
    layer = load_canonical(paths)
    if not layer.has("orders"):
        raise ValueError("CLV needs orders, and the canonical layer has none (no mapping with the orders role).")
    end_utc = to_utc(as_of) or layer.data_end
    tx = layer.purchases(as_of=end_utc)
    # periods are the brand's calendar days: times in its local zone, the end at a local midnight
    tz = layer.local_timezone
    purchases = tx[tx["net"] > 0].assign(ordered_at=lambda d: d["ordered_at"].dt.tz_convert(tz).dt.tz_localize(None))
    end = end_utc.tz_convert(tz).tz_localize(None).ceil("D")
    cal_end = end - pd.Timedelta(days=holdout_days)
    cols = dict(customer_id_col="oneid", datetime_col="ordered_at", monetary_value_col="net", freq="D")
    last = end - pd.Timedelta(microseconds=1)  # everything strictly before as_of
    ch = C.calibration_and_holdout_data(purchases, **cols, calibration_period_end=cal_end, observation_period_end=last)
    bgf_cal = C.BetaGeoFitter(penalizer_coef=penalizer).fit(ch["frequency_cal"], ch["recency_cal"], ch["T_cal"])
    holdout = C.holdout_comparison(bgf_cal, ch)
    rep_cal = ch[ch["frequency_cal"] > 0]
    if rep_cal.empty:
        raise ValueError("CLV needs customers who bought more than once before the holdout; the data has none.")
    ggf_cal = C.GammaGammaFitter(penalizer_coef=penalizer).fit(rep_cal["frequency_cal"], rep_cal["monetary_value_cal"])
    pred = C.customer_lifetime_value(bgf_cal, ggf_cal, ch["frequency_cal"], ch["recency_cal"], ch["T_cal"],
                                     ch["monetary_value_cal"], time=round(holdout_days / 30), discount_rate=0.0,
                                     freq="D")
    actual = purchases[purchases["ordered_at"] > cal_end].groupby("oneid")["net"].sum().reindex(ch.index, fill_value=0.0)
    before = purchases[(purchases["ordered_at"] <= cal_end)
                       & (purchases["ordered_at"] > cal_end - pd.Timedelta(days=holdout_days))]
    naive = before.groupby("oneid")["net"].sum().reindex(ch.index, fill_value=0.0)
    spend = pd.DataFrame({
        "total predicted": [pred.sum(), naive.sum()], "total actual": [actual.sum(), actual.sum()],
        "per-customer MAE": [(pred - actual).abs().mean(), (naive - actual).abs().mean()],
    }, index=["BG/NBD × Gamma-Gamma", "naive: same as the previous period"])
    spend["total error"] = spend["total predicted"] / spend["total actual"] - 1
    summary = C.summary_data_from_transactions(purchases, **cols, observation_period_end=last)
    bgf = C.BetaGeoFitter(penalizer_coef=penalizer).fit(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[summary["frequency"] > 0]
    corr = C.frequency_monetary_correlation(repeat["frequency"], repeat["monetary_value"])
    ggf = C.GammaGammaFitter(penalizer_coef=penalizer).fit(repeat["frequency"], repeat["monetary_value"])
    clv = pd.DataFrame({
        "expected_purchases_12m": bgf.conditional_expected_number_of_purchases_up_to_time(
            clv_months * 30, summary["frequency"], summary["recency"], summary["T"]),
        "p_alive": bgf.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"]),
        "expected_order_value": ggf.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"]),
        "clv_12m": C.customer_lifetime_value(bgf, ggf, summary["frequency"], summary["recency"], summary["T"],
                                             summary["monetary_value"], time=clv_months, discount_rate=discount_rate,
                                             freq="D"),
    })
    clv.index.name = "oneid"
    clv.attrs = {"as_of": end_utc.isoformat(), "local_end": end.isoformat(), "timezone": tz, "months": clv_months,
                 "currency": layer.base_currency}
    clv.to_parquet(paths.processed / CLV_FILE)
    return CLVRun(end, cal_end, purchases, ch, bgf_cal, holdout, spend, summary, bgf, ggf, float(corr), clv,
                  layer.base_currency)

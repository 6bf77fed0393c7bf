"""Customer lifetime value: BG/NBD purchase counts and Gamma-Gamma spend, fitted with SciPy.

The models are the ones of Fader, Hardie & Lee (2005), "Counting your customers the easy way:
an alternative to the Pareto/NBD model" (BG/NBD) and "RFM and CLV: using iso-value curves
for customer base analysis" (Gamma-Gamma spend), with the same data definitions as
``lifetimes`` and pymc-marketing's ``rfm_summary`` so numbers can be compared. ``lifetimes``
(last release 2020) is not a dependency.

Data flow::

    transactions ──summary_data_from_transactions──▶ frequency, recency, T, monetary_value
                 ──calibration_and_holdout_data────▶ the same + what happened afterwards
    BetaGeoFitter().fit(frequency, recency, T)        → expected purchases, P(alive)
    GammaGammaFitter().fit(frequency, monetary_value) → expected spend per purchase
    customer_lifetime_value(bgf, ggf, ...)            → discounted value over the next months

Example:
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                    "date": ["2024-01-01", "2024-01-01", "2024-01-11", "2024-01-05"],
    ...                    "amount": [10.0, 5.0, 20.0, 8.0]})
    >>> summary_data_from_transactions(tx, customer_id_col="customer_id", datetime_col="date",
    ...                                monetary_value_col="amount", observation_period_end="2024-01-31").reset_index()
      customer_id  frequency  recency     T  monetary_value
    0           a          1     10.0  30.0            20.0
    1           b          0      0.0  26.0             0.0

**P(alive) is not a churn score on its own.** In BG/NBD a customer can only "die" right after a
repeat purchase, so every one-time buyer (frequency 0) has P(alive) = 1 however long ago they
bought. Rank on expected purchases over a horizon instead, or combine P(alive) with recency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = [
    "summary_data_from_transactions",
    "calibration_and_holdout_data",
    "BetaGeoFitter",
    "GammaGammaFitter",
    "frequency_monetary_correlation",
    "customer_lifetime_value",
    "naive_rate_baseline",
    "holdout_comparison",
    "plot_holdout",
]

# Length of one month in each model time unit (the convention of lifetimes' CLV).
_PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345, "M": 1.0, "h": 720.0, "H": 720.0}


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------

def _require_columns(df: pd.DataFrame, columns: list[str], name: str = "transactions") -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"The '{name}' parameter must be a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"The '{name}' DataFrame is missing the columns {missing}. "
                         f"Columns present: {list(df.columns)}.")


def _vector(name: str, values: Any) -> np.ndarray:
    """A 1-d float array of finite numbers, with a clear error otherwise."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"The '{name}' parameter must be numeric. Got {type(values).__name__} "
                         "with non-numeric values instead.") from None
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"The '{name}' parameter must be one-dimensional. Got shape {arr.shape} instead.")
    if arr.size == 0:
        raise ValueError(f"The '{name}' parameter must not be empty. Got 0 values instead.")
    if not np.isfinite(arr).all():
        raise ValueError(f"The '{name}' parameter must hold finite numbers. "
                         f"Got {int((~np.isfinite(arr)).sum())} missing or infinite values instead.")
    return arr


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"The parameters {list(lengths)} must have the same length. Got lengths {lengths} instead.")


def _index_of(*values: Any) -> pd.Index | None:
    """The index of the first pandas Series among ``values`` (results are returned like it)."""
    for v in values:
        if isinstance(v, pd.Series):
            return v.index
    return None


def _wrap(result: np.ndarray, like: tuple, name: str):
    """Series if an input was a Series, float if all inputs were scalars, else an array."""
    index = _index_of(*like)
    if index is not None and len(index) == len(result):
        return pd.Series(result, index=index, name=name)
    if all(np.ndim(v) == 0 for v in like):
        return float(result[0])
    return result


def _check_rfm(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T_ = _vector("frequency", frequency), _vector("recency", recency), _vector("T", T)
    n = max(len(x), len(t_x), len(T_))
    # scalars broadcast (handy for what-if questions); vectors must match
    x, t_x, T_ = (np.broadcast_to(v, n).copy() if len(v) == 1 else v for v in (x, t_x, T_))
    _same_length(frequency=x, recency=t_x, T=T_)
    if (x < 0).any() or (x != np.round(x)).any():
        bad = x[(x < 0) | (x != np.round(x))][:5]
        raise ValueError("The 'frequency' parameter must hold non-negative whole numbers (repeat purchase "
                         f"periods). Got values such as {bad.tolist()} instead.")
    if (t_x < 0).any():
        raise ValueError("The 'recency' parameter must be non-negative (time from first to last purchase). "
                         f"Got values such as {t_x[t_x < 0][:5].tolist()} instead.")
    if (T_ < 0).any():
        raise ValueError("The 'T' parameter must be non-negative (time from first purchase to the end of the "
                         f"observation period). Got values such as {T_[T_ < 0][:5].tolist()} instead.")
    if (t_x > T_ + 1e-9).any():
        i = np.flatnonzero(t_x > T_ + 1e-9)[:5]
        raise ValueError("The 'recency' parameter must be at most 'T' for every customer. Got recency "
                         f"{t_x[i].tolist()} with T {T_[i].tolist()} instead.")
    if ((x == 0) & (t_x != 0)).any():
        raise ValueError("The 'recency' parameter must be 0 where 'frequency' is 0 (no repeat purchase). "
                         f"Got {int(((x == 0) & (t_x != 0)).sum())} customers with frequency 0 and recency > 0 instead.")
    return x, t_x, T_


def _check_t(t: Any) -> np.ndarray:
    arr = _vector("t", t)
    if (arr < 0).any():
        raise ValueError(f"The 't' parameter must be a non-negative time horizon. Got {arr[arr < 0][:5].tolist()} instead.")
    return arr


def _check_penalizer(penalizer_coef: float) -> float:
    if not isinstance(penalizer_coef, (int, float, np.floating)) or isinstance(penalizer_coef, bool) \
            or not np.isfinite(penalizer_coef) or penalizer_coef < 0:
        raise ValueError(f"The 'penalizer_coef' parameter must be a non-negative number. Got {penalizer_coef!r} instead.")
    return float(penalizer_coef)


def _check_freq(freq: str) -> str:
    try:
        pd.Period("2000-01-01", freq=freq)
    except (ValueError, TypeError):
        raise ValueError(f"The 'freq' parameter must be a pandas period alias such as 'D', 'W' or 'M'. "
                         f"Got {freq!r} instead.") from None
    return freq


def _check_multiplier(freq_multiplier: float) -> float:
    if isinstance(freq_multiplier, bool) or not isinstance(freq_multiplier, (int, float, np.integer, np.floating)) \
            or not freq_multiplier > 0:
        raise ValueError(f"The 'freq_multiplier' parameter must be a positive number. Got {freq_multiplier!r} instead.")
    return float(freq_multiplier)


# ---------------------------------------------------------------------------------------------
# Transactions → RFM summary
# ---------------------------------------------------------------------------------------------

def _split_freq(freq: str) -> str:
    """The resolution at which a calibration end date cuts transactions: ``freq`` if its periods are
    shorter than a day (e.g. 'h'), else a day, so a weekly or monthly model's calibration data never
    holds purchases dated after ``calibration_period_end`` (same-period purchases after it go to the holdout)."""
    period = pd.Period("2000-01-03", freq=freq)
    return freq if period.end_time - period.start_time < pd.Timedelta(days=1) else "D"


def _period_transactions(transactions: pd.DataFrame, customer_id_col: str, datetime_col: str,
                         monetary_value_col: str | None, freq: str, split_at: int | None = None) -> pd.DataFrame:
    """One row per (customer, purchase period): the period ordinal and the summed value.

    With ``split_at`` (an ordinal at :func:`_split_freq` resolution) also a boolean ``holdout``
    column (transaction later than ``split_at``), and rows are per (customer, holdout, period).
    """
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    _require_columns(transactions, cols)
    df = transactions[cols]
    for c in cols:
        if df[c].isna().any():
            raise ValueError(f"The '{c}' column must not have missing values. Got {int(df[c].isna().sum())} instead.")
    try:
        try:
            when = pd.to_datetime(df[datetime_col])
        except ValueError:  # strings in more than one layout, e.g. dates with and without times
            when = pd.to_datetime(df[datetime_col], format="mixed")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"The '{datetime_col}' column must hold dates or timestamps. Got values that do not "
                         f"parse ({exc}) instead.") from None
    if getattr(when.dt, "tz", None) is not None:
        when = when.dt.tz_localize(None)
    out = pd.DataFrame({"customer": df[customer_id_col].to_numpy(),
                        "period": when.dt.to_period(freq).array.asi8})
    if monetary_value_col:
        value = pd.to_numeric(df[monetary_value_col], errors="coerce")
        if value.isna().any():
            raise ValueError(f"The '{monetary_value_col}' column must be numeric. "
                             f"Got {int(value.isna().sum())} non-numeric values instead.")
        out["value"] = value.to_numpy(dtype=np.float64)
    else:
        out["value"] = 0.0
    if split_at is None:
        return out.groupby(["customer", "period"], sort=True, as_index=False)["value"].sum()
    out["holdout"] = when.dt.to_period(_split_freq(freq)).array.asi8 > split_at
    return out.groupby(["customer", "holdout", "period"], sort=True, as_index=False)["value"].sum()


def _period_ordinal(when: Any, name: str, freq: str) -> int:
    try:
        ts = pd.Timestamp(when)
    except (ValueError, TypeError):
        raise ValueError(f"The '{name}' parameter must be a date such as '1997-09-30'. Got {when!r} instead.") from None
    if ts is pd.NaT:
        raise ValueError(f"The '{name}' parameter must be a date such as '1997-09-30'. Got {when!r} instead.")
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    return int(ts.to_period(freq).ordinal)


def _rfm_from_periods(periods: pd.DataFrame, end: int, multiplier: float) -> pd.DataFrame:
    g = periods.groupby("customer", sort=True)
    first, last, count = g["period"].min(), g["period"].max(), g["period"].size()
    is_repeat = periods["period"].to_numpy() != periods["customer"].map(first).to_numpy()
    repeat_value = periods.loc[is_repeat].groupby("customer")["value"].mean()
    out = pd.DataFrame({"frequency": (count - 1).astype(np.int64),
                        "recency": (last - first).astype(np.float64) / multiplier,
                        "T": (end - first).astype(np.float64) / multiplier})
    out["monetary_value"] = repeat_value.reindex(out.index).fillna(0.0).astype(np.float64)
    return out


def summary_data_from_transactions(transactions: pd.DataFrame, *, customer_id_col: str = "customer_id",
                                   datetime_col: str = "date", monetary_value_col: str | None = None,
                                   observation_period_end: Any = None, freq: str = "D",
                                   freq_multiplier: float = 1) -> pd.DataFrame:
    """Per-customer RFM summary in the BG/NBD sense (same definitions as lifetimes / pymc-marketing).

    Timestamps are cut to periods of ``freq`` (a pandas period alias) and a customer's
    purchases in the same period are merged into one (their values summed). Only periods up to
    and including the period of ``observation_period_end`` count (default: the last
    transaction). Then, per customer:

    - ``frequency``: number of *repeat* purchase periods (distinct periods − 1);
    - ``recency``: periods between the first and the last purchase (0 if no repeat);
    - ``T``: periods between the first purchase and ``observation_period_end``;
    - ``monetary_value`` (if ``monetary_value_col``): mean value of the repeat purchase periods
      (the first purchase is excluded), 0 for customers without a repeat purchase.

    ``recency`` and ``T`` are divided by ``freq_multiplier``: ``freq="D", freq_multiplier=7``
    gives weeks measured in days, as in the CDNOW papers. The result is indexed by customer id,
    sorted.

    Example:
        >>> tx = pd.DataFrame({"id": [1, 1, 2], "day": pd.to_datetime(["2024-01-01", "2024-01-15", "2024-01-08"])})
        >>> summary_data_from_transactions(tx, customer_id_col="id", datetime_col="day",
        ...                                observation_period_end="2024-01-29", freq="D", freq_multiplier=7).reset_index()
           id  frequency  recency    T
        0   1          1      2.0  4.0
        1   2          0      0.0  3.0
    """
    _check_freq(freq)
    multiplier = _check_multiplier(freq_multiplier)
    periods = _period_transactions(transactions, customer_id_col, datetime_col, monetary_value_col, freq)
    end = (int(periods["period"].max()) if len(periods) else None) if observation_period_end is None \
        else _period_ordinal(observation_period_end, "observation_period_end", freq)
    periods = periods[periods["period"] <= end] if end is not None else periods
    if periods.empty:
        raise ValueError("The 'transactions' parameter must have at least one transaction on or before "
                         f"observation_period_end={observation_period_end!r}. Got none instead.")
    out = _rfm_from_periods(periods, end, multiplier)
    if not monetary_value_col:
        out = out.drop(columns="monetary_value")
    out.index.name = customer_id_col
    return out


def calibration_and_holdout_data(transactions: pd.DataFrame, *, customer_id_col: str = "customer_id",
                                 datetime_col: str = "date", monetary_value_col: str | None = None,
                                 calibration_period_end: Any, observation_period_end: Any = None,
                                 freq: str = "D", freq_multiplier: float = 1) -> pd.DataFrame:
    """Split transactions in time: an RFM summary of the calibration period and what followed.

    Columns ``frequency_cal``, ``recency_cal``, ``T_cal`` (and ``monetary_value_cal``) are
    :func:`summary_data_from_transactions` on the transactions dated on or before
    ``calibration_period_end`` (a date means the whole day), with ``T`` measured to its period;
    ``frequency_holdout`` counts the customer's purchase periods among the later transactions, up
    to ``observation_period_end`` (default: the last transaction). With periods longer than a day
    (``freq="W"``, as lifetimes) a period that straddles the cut is split: purchases after the
    cut count in the holdout only. ``monetary_value_holdout`` is
    the mean value of those periods (0 if none); ``duration_holdout`` is the holdout length in
    periods / ``freq_multiplier``. Only customers who bought in the calibration period are
    rows: the models say nothing about customers not yet acquired.

    Example:
        >>> tx = pd.DataFrame({"customer_id": [1, 1, 1, 2, 3],
        ...                    "date": ["2024-01-01", "2024-01-05", "2024-02-03", "2024-01-20", "2024-02-01"]})
        >>> ch = calibration_and_holdout_data(tx, calibration_period_end="2024-01-31",
        ...                                   observation_period_end="2024-02-29")
        >>> ch[["frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout"]].to_numpy().tolist()
        [[1.0, 4.0, 30.0, 1.0, 29.0], [0.0, 0.0, 11.0, 0.0, 29.0]]
        >>> ch.index.tolist()                        # customer 3 was acquired after the calibration period
        [1, 2]
    """
    _check_freq(freq)
    multiplier = _check_multiplier(freq_multiplier)
    split_at = _period_ordinal(calibration_period_end, "calibration_period_end", _split_freq(freq))
    periods = _period_transactions(transactions, customer_id_col, datetime_col, monetary_value_col, freq, split_at)
    cal_end = _period_ordinal(calibration_period_end, "calibration_period_end", freq)
    obs_end = int(periods["period"].max()) if observation_period_end is None \
        else _period_ordinal(observation_period_end, "observation_period_end", freq)
    if obs_end <= cal_end:
        raise ValueError("The 'observation_period_end' parameter must be later than 'calibration_period_end' "
                         f"(by at least one '{freq}' period). Got {observation_period_end!r} and "
                         f"{calibration_period_end!r} instead.")
    cal = periods[~periods["holdout"]]
    if cal.empty:
        raise ValueError("The 'transactions' parameter must have at least one transaction on or before "
                         f"calibration_period_end={calibration_period_end!r}. Got none instead.")
    out = _rfm_from_periods(cal, cal_end, multiplier)
    if not monetary_value_col:
        out = out.drop(columns="monetary_value")
    out.columns = [f"{c}_cal" for c in out.columns]
    hold = periods[periods["holdout"] & (periods["period"] <= obs_end)]
    hg = hold.groupby("customer")
    out["frequency_holdout"] = hg["period"].size().reindex(out.index).fillna(0).astype(np.int64)
    if monetary_value_col:
        out["monetary_value_holdout"] = hg["value"].mean().reindex(out.index).fillna(0.0)
    out["duration_holdout"] = (obs_end - cal_end) / multiplier
    out.index.name = customer_id_col
    return out


# ---------------------------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------------------------

def _bgnbd_loglik(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6) and its gradient w.r.t. log-params.

    L = Γ(r+x)α^r / (Γ(r)(α+T)^(r+x)) · B(a, b+x)/B(a, b)
        · [1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)],
    written as A1 + A2 + logaddexp(A3, A4) so no term overflows.
    """
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    bx1 = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
    mix = np.logaddexp(a3, a4)
    ll = a1 + a2 + mix
    w3, w4 = np.exp(a3 - mix), np.exp(a4 - mix)   # shares of the two terms, w3 + w4 = 1
    d_r = (special.digamma(r + x) - special.digamma(r) + np.log(alpha)
           - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x))
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = special.digamma(a + b) - special.digamma(a + b + x) + w4 / a
    d_b = (special.digamma(b + x) - special.digamma(a + b + x) - special.digamma(b) + special.digamma(a + b)
           - w4 / bx1)
    grad = np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b], axis=1)
    return ll, grad


def _fit_log_params(objective, start: np.ndarray, model: str) -> optimize.OptimizeResult:
    res = optimize.minimize(objective, start, jac=True, method="BFGS",
                            options={"gtol": 1e-9, "maxiter": 2000})
    # BFGS stops with "precision loss" when the gradient is already small: accept it. The objective
    # is a mean log-likelihood per customer, so a gradient below 1e-4 per unit of a log-parameter is
    # converged; on a flat ridge (a, b -> large: hardly any dropout) BFGS stalls around 1e-5.
    if not res.success and not (np.all(np.isfinite(res.x)) and np.max(np.abs(res.jac)) < 1e-4):
        raise RuntimeError(f"{model} fit did not converge: {res.message} Try a penalizer_coef > 0 "
                           "(e.g. 0.001) or check the input data.")
    return res


def _compress(*columns: np.ndarray, weights: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows with summed weights (many customers share the same summary)."""
    stacked = np.column_stack(columns)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
    return [uniq[:, i] for i in range(uniq.shape[1])], w


class BetaGeoFitter:
    """BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

    While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each repeat purchase
    they drop out with probability p ~ Beta(a, b). ``fit`` maximises the log-likelihood over
    log(r, α, a, b) with SciPy's BFGS and an analytic gradient, from a fixed start, so the result
    is deterministic. ``penalizer_coef`` adds ``penalizer_coef · (r² + α'² + a² + b²)`` to the
    mean negative log-likelihood, with α' the rate scale in time units where the longest ``T``
    is 10 (as lifetimes does, so the penalty does not depend on whether time is in days or
    weeks). Fitted: ``params_`` (dict r, alpha, a, b; alpha in the units of ``T``),
    ``log_likelihood_`` (total, unpenalised), ``n_customers_``.

    Note: P(alive) of every customer with frequency 0 is exactly 1 in this model (dropout can
    only happen after a repeat purchase), so P(alive) alone must not be used as a churn score.

    Example:
        >>> bgf = BetaGeoFitter().fit([0, 1, 2, 0, 3, 1, 0, 5], [0, 10, 20, 0, 35, 3, 0, 38], [40, 40, 39, 30, 40, 38, 20, 39])
        >>> sorted(bgf.params_)
        ['a', 'alpha', 'b', 'r']
        >>> bgf = BetaGeoFitter.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)   # FHL 2005, CDNOW
        >>> round(bgf.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86), 3)
        1.226
        >>> bgf.conditional_probability_alive(0, 0, 38.86)                              # never < 1 at x=0
        1.0
    """

    def __init__(self, *, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = _check_penalizer(penalizer_coef)

    @classmethod
    def from_params(cls, *, r: float, alpha: float, a: float, b: float) -> "BetaGeoFitter":
        """A fitter with known parameters (published, or saved from an earlier fit)."""
        self = cls()
        params = {"r": r, "alpha": alpha, "a": a, "b": b}
        for k, v in params.items():
            if not (isinstance(v, (int, float, np.floating)) and np.isfinite(v) and v > 0):
                raise ValueError(f"The '{k}' parameter must be a positive number. Got {v!r} instead.")
        self.params_ = {k: float(v) for k, v in params.items()}
        return self

    def fit(self, frequency: Any, recency: Any, T: Any, *, weights: Any = None,
            initial_params: Mapping[str, float] | None = None) -> "BetaGeoFitter":
        """Fit r, α, a, b to per-customer ``frequency`` (repeat purchases), ``recency`` and ``T``.

        ``weights`` (optional) counts how many customers each row stands for. ``initial_params``
        (dict r, alpha, a, b; default all 1 in scaled time) changes the optimiser's start.
        """
        x, t_x, T_ = _check_rfm(frequency, recency, T)
        w = np.ones_like(x) if weights is None else _vector("weights", weights)
        _same_length(frequency=x, weights=w)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("The 'weights' parameter must be non-negative with a positive sum. "
                             f"Got min {w.min()} and sum {w.sum()} instead.")
        scale = 10.0 / T_.max() if T_.max() > 0 else 1.0
        (x, t_x, T_), w = _compress(x, t_x * scale, T_ * scale, weights=w)
        total, pen = w.sum(), self.penalizer_coef

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ll, grad = _bgnbd_loglik(theta, x, t_x, T_)
            p = np.exp(theta)
            value = -(w @ ll) / total + pen * (p @ p)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(theta)
            return float(value), -(w @ grad) / total + pen * 2 * p * p

        if initial_params is None:
            start = np.zeros(4)
        else:
            missing = {"r", "alpha", "a", "b"} - set(initial_params)
            if missing or any(not np.isfinite(v) or v <= 0 for v in initial_params.values()):
                raise ValueError("The 'initial_params' parameter must be a dict of positive r, alpha, a, b. "
                                 f"Got {initial_params!r} instead.")
            start = np.log([initial_params["r"], initial_params["alpha"] * scale,
                            initial_params["a"], initial_params["b"]])
        res = _fit_log_params(objective, start, "BG/NBD")
        r, alpha, a, b = np.exp(res.x)
        self.params_ = {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}
        self.time_scale_ = scale
        # in original time units: the likelihood is a density over the x purchase times, each of
        # which picks up a factor `scale` when time is rescaled, hence + x·log(scale)
        self.log_likelihood_ = float(w @ _bgnbd_loglik(res.x, x, t_x, T_)[0] + np.log(scale) * (w @ x))
        self.n_customers_ = int(round(total))
        return self

    def _params(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise RuntimeError("This BetaGeoFitter is not fitted yet. Call 'fit' first (or use 'from_params').")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def conditional_probability_alive(self, frequency: Any, recency: Any, T: Any):
        """P(still active at T | x, t_x, T) = 1 / (1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)).

        Equal to 1 for every customer with frequency 0 (see the class note): not a churn score
        by itself.
        """
        r, alpha, a, b = self._params()
        x, t_x, T_ = _check_rfm(frequency, recency, T)
        log_odds_dead = np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0)) + (r + x) * (np.log(alpha + T_) - np.log(alpha + t_x))
        p = np.where(x > 0, special.expit(-log_odds_dead), 1.0)
        return _wrap(p, (frequency, recency, T), "p_alive")

    def conditional_expected_number_of_purchases_up_to_time(self, t: Any, frequency: Any, recency: Any, T: Any):
        """E[purchases in (T, T+t] | x, t_x, T] (FHL 2005, eq. 10).

        ``t`` is in the time units of ``T`` (a scalar, or one value per customer).
        """
        r, alpha, a, b = self._params()
        x, t_x, T_ = _check_rfm(frequency, recency, T)
        t_ = _check_t(t)
        if len(t_) not in (1, len(x)):
            raise ValueError(f"The 't' parameter must be a scalar or have one value per customer ({len(x)}). "
                             f"Got {len(t_)} values instead.")
        c = a + b + x - 1
        z = t_ / (alpha + T_ + t_)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_hyp = np.log(special.hyp2f1(r + x, b + x, c, z))
            # Euler's transformation when the direct series overflows (z close to 1)
            alt = np.log(special.hyp2f1(c - r - x, c - b - x, c, z)) + (c - r - x - b - x) * np.log1p(-z)
            log_hyp = np.where(np.isfinite(log_hyp), log_hyp, alt)
            tail = np.exp(log_hyp + (r + x) * (np.log(alpha + T_) - np.log(alpha + T_ + t_)))
        numerator = (a + b + x - 1) / (a - 1) * (1 - tail)
        log_ratio = np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0)) + (r + x) * (np.log(alpha + T_) - np.log(alpha + t_x))
        denominator = 1 + np.where(x > 0, np.exp(log_ratio), 0.0)
        return _wrap(numerator / denominator, (t, frequency, recency, T), "expected_purchases")

    def expected_number_of_purchases_up_to_time(self, t: Any):
        """E[X(t)]: expected repeat purchases of a new customer in their first ``t`` time units (eq. 9)."""
        r, alpha, a, b = self._params()
        t_ = _check_t(t)
        hyp = special.hyp2f1(r, b, a + b - 1, t_ / (alpha + t_))
        out = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t_)) ** r * hyp)
        return _wrap(out, (t,), "expected_purchases")


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------------------------

def _gg_loglik(log_params: np.ndarray, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-density of the mean spend m of x purchases (Fader, Hardie & Lee 2005, RFM and CLV)."""
    p, q, v = np.exp(log_params)
    px = p * x
    ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(v)
          + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(v + x * m))
    d_p = x * (special.digamma(px + q) - special.digamma(px) + np.log(m) + np.log(x) - np.log(v + x * m))
    d_q = special.digamma(px + q) - special.digamma(q) + np.log(v) - np.log(v + x * m)
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.stack([d_p * p, d_q * q, d_v * v], axis=1)


def _check_repeat_spend(frequency: Any, monetary_value: Any) -> tuple[np.ndarray, np.ndarray]:
    x, m = _vector("frequency", frequency), _vector("monetary_value", monetary_value)
    _same_length(frequency=x, monetary_value=m)
    if (x < 0).any() or (x != np.round(x)).any():
        raise ValueError("The 'frequency' parameter must hold non-negative whole numbers. "
                         f"Got values such as {x[(x < 0) | (x != np.round(x))][:5].tolist()} instead.")
    return x, m


def frequency_monetary_correlation(frequency: Any, monetary_value: Any) -> float:
    """Pearson correlation of frequency and mean spend among repeat buyers (frequency > 0).

    Gamma-Gamma assumes spend per purchase is independent of how often a customer buys; a
    correlation far from 0 (rule of thumb: |ρ| > 0.3) means the model's spend estimates are
    biased and a different spend model is needed.

    Example:
        >>> round(frequency_monetary_correlation([0, 1, 2, 3, 4], [0, 10, 12, 11, 13]), 3)
        0.8
    """
    x, m = _check_repeat_spend(frequency, monetary_value)
    keep = x > 0
    if keep.sum() < 3:
        raise ValueError("The 'frequency' parameter must have at least 3 repeat buyers (frequency > 0) to "
                         f"measure a correlation. Got {int(keep.sum())} instead.")
    if np.ptp(x[keep]) == 0 or np.ptp(m[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(x[keep], m[keep])[0, 1])


class GammaGammaFitter:
    """Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005; Colombo & Jiang 1999).

    A customer's purchases have values ~ Gamma(p, ν) with ν ~ Gamma(q, γ) across customers
    (``v`` below is γ). Fit on repeat buyers only (frequency > 0, monetary_value > 0 = their
    mean repeat-purchase value). Assumes spend is independent of purchase frequency: check with
    :func:`frequency_monetary_correlation`. ``penalizer_coef`` adds
    ``penalizer_coef · (p² + q² + v²)`` to the mean negative log-likelihood (as lifetimes).

    Example:
        >>> ggf = GammaGammaFitter.from_params(p=6.25, q=3.74, v=15.44)    # FHL 2005, CDNOW
        >>> round(ggf.conditional_expected_average_profit(2, 22.35), 2)      # customer 1 of CDNOW
        24.66
        >>> round(ggf.conditional_expected_average_profit(0, 0), 2)          # population mean
        35.22
    """

    def __init__(self, *, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = _check_penalizer(penalizer_coef)

    @classmethod
    def from_params(cls, *, p: float, q: float, v: float) -> "GammaGammaFitter":
        """A fitter with known parameters (published, or saved from an earlier fit)."""
        self = cls()
        params = {"p": p, "q": q, "v": v}
        for k, val in params.items():
            if not (isinstance(val, (int, float, np.floating)) and np.isfinite(val) and val > 0):
                raise ValueError(f"The '{k}' parameter must be a positive number. Got {val!r} instead.")
        self.params_ = {k: float(val) for k, val in params.items()}
        return self

    def fit(self, frequency: Any, monetary_value: Any, *, weights: Any = None,
            initial_params: Mapping[str, float] | None = None) -> "GammaGammaFitter":
        """Fit p, q, v to repeat buyers' ``frequency`` and mean repeat ``monetary_value``.

        Pass only customers with frequency > 0, e.g. ``s[s["frequency"] > 0]``.
        """
        x, m = _check_repeat_spend(frequency, monetary_value)
        if (x == 0).any():
            raise ValueError("The 'frequency' parameter must be > 0 for every customer: Gamma-Gamma is fitted "
                             "on repeat buyers only (pass summary[summary['frequency'] > 0]). "
                             f"Got {int((x == 0).sum())} customers with frequency 0 instead.")
        if (m <= 0).any():
            raise ValueError("The 'monetary_value' parameter must be > 0 for every repeat buyer. "
                             f"Got {int((m <= 0).sum())} values <= 0 instead.")
        w = np.ones_like(x) if weights is None else _vector("weights", weights)
        _same_length(frequency=x, weights=w)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("The 'weights' parameter must be non-negative with a positive sum. "
                             f"Got min {w.min()} and sum {w.sum()} instead.")
        (x, m), w = _compress(x, m, weights=w)
        total, pen = w.sum(), self.penalizer_coef

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ll, grad = _gg_loglik(theta, x, m)
            par = np.exp(theta)
            value = -(w @ ll) / total + pen * (par @ par)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(theta)
            return float(value), -(w @ grad) / total + pen * 2 * par * par

        if initial_params is None:
            start = np.zeros(3)
        else:
            if {"p", "q", "v"} - set(initial_params) or any(not np.isfinite(v) or v <= 0 for v in initial_params.values()):
                raise ValueError("The 'initial_params' parameter must be a dict of positive p, q, v. "
                                 f"Got {initial_params!r} instead.")
            start = np.log([initial_params["p"], initial_params["q"], initial_params["v"]])
        res = _fit_log_params(objective, start, "Gamma-Gamma")
        p, q, v = np.exp(res.x)
        self.params_ = {"p": float(p), "q": float(q), "v": float(v)}
        self.log_likelihood_ = float(w @ _gg_loglik(res.x, x, m)[0])
        self.n_customers_ = int(round(total))
        return self

    def conditional_expected_average_profit(self, frequency: Any, monetary_value: Any):
        """E[spend per purchase | x, m̄] = (1−w)·(p·v/(q−1)) + w·m̄ with w = p·x/(p·x+q−1).

        Customers without repeat purchases (x = 0) get the population mean p·v/(q−1).
        """
        if not hasattr(self, "params_"):
            raise RuntimeError("This GammaGammaFitter is not fitted yet. Call 'fit' first (or use 'from_params').")
        p, q, v = self.params_["p"], self.params_["q"], self.params_["v"]
        if q <= 1:
            raise ValueError(f"The fitted 'q' parameter must be > 1 for the mean spend to exist. Got {q:.4g} instead.")
        x, m = _check_repeat_spend(frequency, monetary_value)
        weight = p * x / (p * x + q - 1)
        out = (1 - weight) * (p * v / (q - 1)) + weight * m
        return _wrap(out, (frequency, monetary_value), "expected_average_profit")


# ---------------------------------------------------------------------------------------------
# CLV, baseline, holdout checks
# ---------------------------------------------------------------------------------------------

def customer_lifetime_value(bgf: BetaGeoFitter, ggf: GammaGammaFitter, frequency: Any, recency: Any, T: Any,
                            monetary_value: Any, *, time: int = 12, discount_rate: float = 0.01,
                            freq: str = "D"):
    """Discounted expected value over the next ``time`` months.

    CLV = Σ_{m=1..time} E[spend per purchase] · (E[purchases by month m] − E[purchases by
    month m−1]) / (1 + discount_rate)^m, with purchases from ``bgf`` (conditional on each
    customer's history), spend from ``ggf`` and ``discount_rate`` per month. ``freq`` is the time
    unit of ``recency``/``T`` the models were fitted in: 'D' (a month = 30 days), 'W' (4.345
    weeks), 'M' or 'h' (720 hours), the conventions of lifetimes.

    Example:
        >>> bgf = BetaGeoFitter.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> ggf = GammaGammaFitter.from_params(p=6.25, q=3.74, v=15.44)
        >>> round(customer_lifetime_value(bgf, ggf, 2, 30.43, 38.86, 22.35, time=12, freq="W"), 2)
        36.29
    """
    if freq not in _PERIODS_PER_MONTH:
        raise ValueError(f"The 'freq' parameter must be one of {list(_PERIODS_PER_MONTH)}. Got {freq!r} instead.")
    if isinstance(time, bool) or not isinstance(time, (int, np.integer)) or time < 1:
        raise ValueError(f"The 'time' parameter must be a positive whole number of months. Got {time!r} instead.")
    if not isinstance(discount_rate, (int, float, np.floating)) or not discount_rate > -1:
        raise ValueError(f"The 'discount_rate' parameter must be a number > -1 (per month). Got {discount_rate!r} instead.")
    x, t_x, T_ = _check_rfm(frequency, recency, T)
    spend = np.asarray(ggf.conditional_expected_average_profit(x, _vector("monetary_value", monetary_value)))
    factor = _PERIODS_PER_MONTH[freq]
    cumulative = [np.zeros_like(x)] + [
        np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(m * factor, x, t_x, T_))
        for m in range(1, int(time) + 1)]
    clv = sum(spend * (cumulative[m] - cumulative[m - 1]) / (1 + discount_rate) ** m for m in range(1, int(time) + 1))
    return _wrap(np.asarray(clv, dtype=np.float64), (frequency, recency, T, monetary_value), "clv")


def naive_rate_baseline(frequency: Any, T: Any, t: Any):
    """Expected purchases in the next ``t`` = (frequency / T) · t, each customer's own past rate.

    A customer with T = 0 (first purchase at the end of the data) has no rate: 0 expected.

    Example:
        >>> naive_rate_baseline([0, 2, 3], [10, 20, 0], 39).round(6).tolist()
        [0.0, 3.9, 0.0]
    """
    x, T_ = _vector("frequency", frequency), _vector("T", T)
    _same_length(frequency=x, T=T_)
    if (x < 0).any() or (T_ < 0).any():
        raise ValueError("The 'frequency' and 'T' parameters must be non-negative. "
                         f"Got min frequency {x.min()} and min T {T_.min()} instead.")
    t_ = _check_t(t)
    rate = np.divide(x, T_, out=np.zeros_like(x), where=T_ > 0)
    return _wrap(rate * t_, (frequency, T, t), "naive_expected_purchases")


def _holdout_predictions(bgf: BetaGeoFitter, data: pd.DataFrame, frequency_col: str, recency_col: str,
                         T_col: str, holdout_col: str, duration_col: str) -> pd.DataFrame:
    _require_columns(data, [frequency_col, recency_col, T_col, holdout_col, duration_col], "calibration_holdout")
    f, r, T_ = data[frequency_col].to_numpy(), data[recency_col].to_numpy(), data[T_col].to_numpy()
    duration = data[duration_col].to_numpy(dtype=np.float64)
    return pd.DataFrame({
        "frequency_cal": f,
        "actual": data[holdout_col].to_numpy(dtype=np.float64),
        "bg_nbd": np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(duration, f, r, T_)),
        "naive": np.asarray(naive_rate_baseline(f, T_, duration)),
    }, index=data.index)


def holdout_comparison(bgf: BetaGeoFitter, calibration_holdout: pd.DataFrame, *,
                       frequency_col: str = "frequency_cal", recency_col: str = "recency_cal",
                       T_col: str = "T_cal", holdout_col: str = "frequency_holdout",
                       duration_col: str = "duration_holdout") -> pd.DataFrame:
    """Predicted vs actual holdout purchases, BG/NBD against the naive per-customer rate.

    ``calibration_holdout`` is the output of :func:`calibration_and_holdout_data` (column
    names configurable). One row per model ('BG/NBD', 'naive rate') with per-customer ``mae``
    and ``rmse``, ``total_predicted``, ``total_actual`` and ``total_error`` = predicted /
    actual − 1.

    Example:
        >>> bgf = BetaGeoFitter.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> ch = pd.DataFrame({"frequency_cal": [0, 2, 5], "recency_cal": [0.0, 30.4, 20.0], "T_cal": [38.9, 38.9, 30.0],
        ...                    "frequency_holdout": [0, 1, 0], "duration_holdout": [39.0, 39.0, 39.0]})
        >>> holdout_comparison(bgf, ch)[["total_predicted", "total_actual"]].round(2).reset_index()
                model  total_predicted  total_actual
        0      BG/NBD             4.04           1.0
        1  naive rate             8.51           1.0
    """
    pred = _holdout_predictions(bgf, calibration_holdout, frequency_col, recency_col, T_col, holdout_col, duration_col)
    rows = {}
    for name, col in (("BG/NBD", "bg_nbd"), ("naive rate", "naive")):
        err = pred[col] - pred["actual"]
        total_actual = float(pred["actual"].sum())
        rows[name] = {"mae": float(err.abs().mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                      "total_predicted": float(pred[col].sum()), "total_actual": total_actual,
                      "total_error": float(pred[col].sum() / total_actual - 1) if total_actual else float("nan")}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    return out


def plot_holdout(bgf: BetaGeoFitter, calibration_holdout: pd.DataFrame, *, max_frequency: int = 7,
                 frequency_col: str = "frequency_cal", recency_col: str = "recency_cal", T_col: str = "T_cal",
                 holdout_col: str = "frequency_holdout", duration_col: str = "duration_holdout",
                 time_unit: str = "periods", ax=None):
    """Mean actual vs predicted holdout purchases by calibration frequency (last group 'N+').

    The check of lifetimes' ``plot_calibration_purchases_vs_holdout_purchases``, with the naive
    rate baseline added. Returns the matplotlib Figure.

    Example:
        >>> bgf = BetaGeoFitter.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        >>> ch = pd.DataFrame({"frequency_cal": [0, 2, 5], "recency_cal": [0.0, 30.4, 20.0], "T_cal": [38.9, 38.9, 30.0],
        ...                    "frequency_holdout": [0, 1, 0], "duration_holdout": [39.0, 39.0, 39.0]})
        >>> plot_holdout(bgf, ch, time_unit="weeks").axes[0].get_xlabel()
        'repeat purchases in the calibration period (weeks 0–38.9)'
    """
    import matplotlib.pyplot as plt

    if isinstance(max_frequency, bool) or not isinstance(max_frequency, (int, np.integer)) or max_frequency < 1:
        raise ValueError(f"The 'max_frequency' parameter must be a positive integer. Got {max_frequency!r} instead.")
    pred = _holdout_predictions(bgf, calibration_holdout, frequency_col, recency_col, T_col, holdout_col, duration_col)
    group = pred["frequency_cal"].clip(upper=max_frequency).astype(int)
    means = pred.groupby(group)[["actual", "bg_nbd", "naive"]].mean().reindex(range(max_frequency + 1))
    counts = group.value_counts().reindex(means.index).fillna(0).astype(int)
    labels = [str(i) for i in means.index[:-1]] + [f"{max_frequency}+"]
    fig = ax.figure if ax is not None else plt.subplots(figsize=(8, 4.5))[0]
    ax = ax or fig.axes[0]
    xs = np.arange(len(means))
    ax.plot(xs, means["actual"], "o-", color="#333333", label="actual")
    ax.plot(xs, means["bg_nbd"], "s--", color="#4C72B0", label="BG/NBD")
    ax.plot(xs, means["naive"], "^:", color="#C44E52", label="naive rate (frequency / T × holdout)")
    ax.set_xticks(xs, [f"{lab}\n(n={c})" for lab, c in zip(labels, counts)], fontsize=8)
    t_max = float(pd.to_numeric(calibration_holdout[T_col]).max())
    duration = float(pd.to_numeric(calibration_holdout[duration_col]).max())
    ax.set_xlabel(f"repeat purchases in the calibration period ({time_unit} 0–{t_max:.4g})")
    ax.set_ylabel(f"mean purchases in the holdout ({duration:.4g} {time_unit})")
    ax.set_title("Holdout check: actual vs predicted purchases per customer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

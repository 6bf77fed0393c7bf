"""BG/NBD (workbench.models.clv) on the full CDNOW master data (23,570 customers) against the
reference fit of lifetimes 0.11.3, and the weekly calibration cut that fit depends on."""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.models import clv
from workbench.models.clv import BetaGeoFitter, calibration_and_holdout_data, holdout_comparison

DATA = Path(__file__).parent / "data" / "cdnow"
MASTER = DATA / "CDNOW_master.txt.gz"
# SHA-256 of the uncompressed file, as listed in the RECORD of Lifetimes-0.11.3-py3-none-any.whl
MASTER_SHA256 = "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef"

# Reference: lifetimes 0.11.3 BetaGeoFitter on calibration_and_holdout_data(freq="W"),
# calibration to 1997-09-30, holdout to 1998-06-30 (39 weeks).
REFERENCE = {"r": 0.284, "alpha": 6.73, "a": 0.71, "b": 2.37}
# Tolerance = half a unit in the last reported digit (the rounding) + the same again as margin
# for lifetimes' looser optimiser: r has 3 decimals -> 0.0005 + 0.0005; alpha, a, b have 2 -> 0.005 + 0.005.
# (Measured here: r 0.28434, alpha 6.72452, a 0.70774, b 2.37230: alpha is 0.0055 from 6.73, just over
# the rounding alone, so the margin is needed.)
TOLERANCE = {"r": 0.001, "alpha": 0.01, "a": 0.01, "b": 0.01}
REFERENCE_MAE = 0.784              # purchase-weeks per customer, 3 decimals
REFERENCE_TOTAL_PREDICTED = 16_507  # rounded to a whole purchase
REFERENCE_TOTAL_ACTUAL = 18_440


@pytest.fixture(scope="module")
def master_tx() -> pd.DataFrame:
    return pd.read_csv(MASTER, sep=r"\s+", header=0, names=["customer_id", "date", "quantity", "amount"],
                       dtype={"date": str})


@pytest.fixture(scope="module")
def master_ch(master_tx) -> pd.DataFrame:
    return calibration_and_holdout_data(master_tx, customer_id_col="customer_id", datetime_col="date",
                                        calibration_period_end="1997-09-30", observation_period_end="1998-06-30",
                                        freq="W")


@pytest.fixture(scope="module")
def master_fit(master_ch) -> tuple[BetaGeoFitter, float]:
    f, r, T = master_ch["frequency_cal"], master_ch["recency_cal"], master_ch["T_cal"]
    t0 = time.perf_counter()
    bgf = BetaGeoFitter().fit(f, r, T)
    return bgf, time.perf_counter() - t0


def test_vendored_master_file(master_tx):
    with gzip.open(MASTER, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == MASTER_SHA256
    assert len(master_tx) == 69_659 and master_tx["customer_id"].nunique() == 23_570
    assert (master_tx["date"].min(), master_tx["date"].max()) == ("19970101", "19980630")
    # the 2,357-customer sample is a subset of the master (its first column is the master id)
    sample = pd.read_csv(DATA / "CDNOW_sample.txt", sep=r"\s+", header=None,
                         names=["master_id", "customer_id", "date", "quantity", "amount"], dtype={"date": str})
    keys = ["customer_id", "date", "quantity", "amount"]
    found = sample.rename(columns={"customer_id": "sample_id", "master_id": "customer_id"})[keys] \
        .merge(master_tx[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    assert (found["_merge"] == "both").all()


def test_master_calibration_summary(master_ch):
    # every customer made the first purchase in Q1 1997, i.e. in the calibration period
    assert len(master_ch) == 23_570
    assert (master_ch["duration_holdout"] == 39.0).all()
    assert (master_ch["recency_cal"] <= master_ch["T_cal"]).all()
    # T is counted in calendar weeks to the week of 1997-09-30: 39 for first buyers of 1997-01-01,
    # 27 for the last ones (1997-03-25, week of Monday 03-24)
    assert master_ch["T_cal"].max() == 39.0 and master_ch["T_cal"].min() == 27.0
    assert int(master_ch["frequency_holdout"].sum()) == REFERENCE_TOTAL_ACTUAL


def test_master_parameters_match_lifetimes_reference(master_fit):
    bgf, _ = master_fit
    print("\nCDNOW master BG/NBD:", {k: round(v, 5) for k, v in bgf.params_.items()},
          f"log-likelihood {bgf.log_likelihood_:.2f}")
    for name, value in REFERENCE.items():
        assert bgf.params_[name] == pytest.approx(value, abs=TOLERANCE[name]), name
    assert bgf.n_customers_ == 23_570


def test_master_fit_is_at_least_as_likely_as_the_reference(master_ch, master_fit):
    # the reference parameters, in the same (weekly) units, cannot beat our maximum
    bgf, _ = master_fit
    x, t_x, T = (master_ch[c].to_numpy(dtype=float) for c in ("frequency_cal", "recency_cal", "T_cal"))
    ll_reference = clv._bgnbd_loglik(np.log(list(REFERENCE.values())), x, t_x, T)[0].sum()
    assert bgf.log_likelihood_ >= ll_reference - 1e-6
    assert bgf.log_likelihood_ - ll_reference < 5.0   # and the reference is close to the optimum


def test_master_holdout_error_no_worse_than_reference(master_ch, master_fit):
    bgf, _ = master_fit
    table = holdout_comparison(bgf, master_ch)
    print("\n" + table.round(4).to_string())
    bg, naive = table.loc["BG/NBD"], table.loc["naive rate"]
    # measured: MAE 0.78445, 16,507.0 predicted vs 18,440 actual (-10.5%); naive rate MAE 0.939, +42.3%
    assert bg["total_actual"] == REFERENCE_TOTAL_ACTUAL
    assert bg["mae"] <= REFERENCE_MAE + 0.0005 + 0.0005          # rounding of 0.784 + margin
    # total predicted within 0.1% (±17 purchases) of the reference
    assert bg["total_predicted"] == pytest.approx(REFERENCE_TOTAL_PREDICTED, rel=1e-3)
    assert bg["mae"] < naive["mae"] and abs(bg["total_error"]) < abs(naive["total_error"])


def test_master_fit_time(master_fit):
    # regression guard only (the goal is <= 1 s; measured ~0.05 s): 23,570 customers compress to
    # ~2,100 distinct (frequency, recency, T) rows before the optimiser sees them
    _, seconds = master_fit
    print(f"\nCDNOW master BG/NBD fit: {seconds:.3f} s")
    assert seconds < 3.0


def test_weekly_cut_keeps_later_purchases_out_of_calibration():
    # 2024-01-02 is a Tuesday; its week is Mon 2024-01-01 .. Sun 2024-01-07. The Thursday purchase
    # of customer "a" is after the calibration end: it belongs to the holdout, not to frequency_cal.
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "d", "d"],
                       "date": ["2023-12-20", "2024-01-02", "2024-01-04", "2024-01-03", "2023-12-27",
                                "2023-12-20", "2024-01-05"]})
    ch = calibration_and_holdout_data(tx, calibration_period_end="2024-01-02", observation_period_end="2024-01-31",
                                      freq="W")
    assert ch.index.tolist() == ["a", "c", "d"]       # b's first purchase is after the cut
    assert ch.loc["a", ["frequency_cal", "recency_cal", "T_cal", "frequency_holdout"]].tolist() == [1, 2.0, 2.0, 1]
    assert ch.loc["c", ["frequency_cal", "T_cal", "frequency_holdout"]].tolist() == [0, 1.0, 0]
    assert ch.loc["d", ["frequency_cal", "recency_cal", "T_cal", "frequency_holdout"]].tolist() == [0, 0.0, 2.0, 1]
    assert (ch["duration_holdout"] == 4.0).all()
    # with daily periods nothing changes: the cut day itself is calibration
    daily = calibration_and_holdout_data(tx, calibration_period_end="2024-01-02", observation_period_end="2024-01-31")
    assert daily.loc["a", ["frequency_cal", "frequency_holdout"]].tolist() == [1, 1]

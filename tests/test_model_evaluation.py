"""Gains/lift tables, lift/capture at a fraction, the score report and figures
(workbench.models.evaluation)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from workbench.models.evaluation import (
    capture_at,
    classification_report_frame,
    gains_table,
    lift_at,
    plot_calibration,
    plot_gains,
    plot_lift,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# 20 customers in rank order; three tie blocks: A (0.80, ranks 4-7, straddles bins 1|2),
# B (0.40, ranks 11-13, straddles bins 3|4), C (0.00, ranks 17-20, inside bin 5).
RANKED = [  # (score, label, id)
    (0.99, 1, 11), (0.95, 1, 12), (0.90, 0, 13),
    (0.80, 1, 24), (0.80, 0, 21), (0.80, 1, 23), (0.80, 0, 22),   # A: ids 21..24 -> labels 0, 0, 1, 1
    (0.60, 1, 31), (0.55, 0, 32), (0.50, 0, 33),
    (0.40, 1, 43), (0.40, 0, 41), (0.40, 0, 42),                  # B: ids 41..43 -> labels 0, 0, 1
    (0.30, 0, 51), (0.20, 1, 52), (0.15, 0, 53),
    (0.00, 0, 61), (0.00, 0, 62), (0.00, 0, 63), (0.00, 1, 64),   # C
]


def ranked_frame() -> pd.DataFrame:
    return pd.DataFrame(RANKED, columns=["score", "y", "id"])


def test_gains_table_hand_computed_with_ties():
    df = ranked_frame()
    t = gains_table(df["y"], df["score"], bins=5)
    # bins of 4: ranks 1-4 | 5-8 | 9-12 | 13-16 | 17-20. A has 2 positives in 4 rows -> 0.5 per row,
    # B has 1 in 3 -> 1/3 per row. bin 1 = 1+1+0+0.5, bin 2 = 3*0.5+1, bin 3 = 0+0+2/3,
    # bin 4 = 1/3+0+1+0, bin 5 = 1. Overall rate 8/20 = 0.4.
    positives = np.array([2.5, 2.5, 2 / 3, 4 / 3, 1.0])
    np.testing.assert_allclose(t["positives"], positives, atol=1e-9)
    assert t["bin"].tolist() == [1, 2, 3, 4, 5]
    assert t["count"].tolist() == [4] * 5 and t["cumulative_count"].tolist() == [4, 8, 12, 16, 20]
    np.testing.assert_allclose(t["response_rate"], positives / 4)
    np.testing.assert_allclose(t["lift"], [1.5625, 1.5625, 5 / 12, 5 / 6, 0.625])
    np.testing.assert_allclose(t["cumulative_positives"], [2.5, 5, 17 / 3, 7, 8], atol=1e-9)
    np.testing.assert_allclose(t["capture"], [0.3125, 0.625, 17 / 24, 0.875, 1.0])
    np.testing.assert_allclose(t["cumulative_lift"], [1.5625, 1.5625, (17 / 3) / 12 / 0.4, 7 / 16 / 0.4, 1.0])
    assert t["max_score"].tolist() == [0.99, 0.80, 0.55, 0.40, 0.00]
    assert t["min_score"].tolist() == [0.80, 0.60, 0.40, 0.15, 0.00]


def test_gains_table_tie_breaker_key():
    df = ranked_frame()
    t = gains_table(df["y"], df["score"], bins=5, tie_breaker=df["id"])
    # ties ordered by id: A -> 0 | 0, 1, 1 ; B -> 0, 0 | 1
    assert t["positives"].tolist() == [2.0, 3.0, 0.0, 2.0, 1.0]
    assert t["capture"].tolist() == [0.25, 0.625, 0.625, 0.875, 1.0]


def test_uneven_bins_give_extra_rows_to_top_bins():
    df = ranked_frame()
    t = gains_table(df["y"], df["score"], bins=3)
    assert t["count"].tolist() == [7, 7, 6]
    assert t["positives"].sum() == pytest.approx(8)


@pytest.mark.parametrize("tie_breaker", [None, "id"])
def test_shuffling_rows_does_not_change_the_table(tie_breaker):
    df = ranked_frame()
    reference = gains_table(df["y"], df["score"], bins=5, tie_breaker=None if tie_breaker is None else df["id"])
    for seed in range(5):
        s = df.sample(frac=1, random_state=seed)
        t = gains_table(s["y"].to_numpy(), s["score"].to_numpy(), bins=5,
                        tie_breaker=None if tie_breaker is None else s["id"].to_numpy())
        pd.testing.assert_frame_equal(t, reference)
        assert lift_at(s["y"], s["score"], fraction=0.2) == lift_at(df["y"], df["score"], fraction=0.2)


def test_perfect_score_top_decile_lift_is_one_over_base_rate():
    rng = np.random.default_rng(0)
    y = rng.random(1000) < 0.25
    base_rate = y.mean()
    perfect = y.astype(float) + rng.random(1000) * 0.1       # every positive above every negative
    assert lift_at(y, perfect, fraction=0.1) == pytest.approx(1 / base_rate)
    assert gains_table(y, perfect)["lift"].iloc[0] == pytest.approx(1 / base_rate)
    assert capture_at(y, perfect, fraction=base_rate) == pytest.approx(1.0)
    # a constant score is one big tie: no information, lift exactly 1 everywhere
    np.testing.assert_allclose(gains_table(y, np.zeros(1000))["lift"], 1.0)


def test_random_score_lift_is_about_one():
    rng = np.random.default_rng(42)
    n = 200_000
    y = rng.random(n) < 0.2
    t = gains_table(y, rng.random(n))
    # each bin has 20,000 rows: sd of the lift = sqrt(0.2*0.8/20000)/0.2 = 0.014; allow 4 sd
    assert np.abs(t["lift"] - 1).max() < 0.06
    assert lift_at(y, rng.random(n)) == pytest.approx(1, abs=0.06)


def test_lift_and_capture_agree_with_the_table():
    df = ranked_frame()
    t = gains_table(df["y"], df["score"], bins=5)
    assert lift_at(df["y"], df["score"], fraction=0.2) == pytest.approx(t["lift"].iloc[0])
    assert capture_at(df["y"], df["score"], fraction=0.4) == pytest.approx(t["capture"].iloc[1])
    # a fraction that is not a whole number of rows rounds up: 0.1 of 20 rows = 2 rows, 0.12 -> 3
    assert capture_at(df["y"], df["score"], fraction=0.12) == pytest.approx(2 / 8)
    assert capture_at(df["y"], df["score"], fraction=1.0) == 1.0


def test_classification_report_frame():
    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.3
    p = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.15, 500), 0, 1)
    r = classification_report_frame(y, p)
    assert list(r.index) == ["n", "base_rate", "roc_auc", "average_precision", "brier_score",
                             "top_decile_lift", "top_decile_capture"]
    assert r["n"] == 500 and r["base_rate"] == pytest.approx(y.mean())
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert r["brier_score"] == pytest.approx(np.mean((p - y) ** 2))
    assert r["top_decile_lift"] == pytest.approx(gains_table(y, p)["lift"].iloc[0])
    assert r["top_decile_capture"] == pytest.approx(gains_table(y, p)["capture"].iloc[0])
    # not probabilities: ranking metrics still work, Brier is NaN
    r2 = classification_report_frame(y, p * 100 - 5)
    assert np.isnan(r2["brier_score"]) and r2["roc_auc"] == pytest.approx(r["roc_auc"])


def test_figures():
    rng = np.random.default_rng(5)
    y = rng.random(400) < 0.3
    scores = {"good": np.clip(y * 0.4 + rng.random(400) * 0.6, 0, 1), "random": rng.random(400)}
    for fig in (plot_gains(y, scores), plot_lift(y, scores), plot_calibration(y, scores)):
        assert isinstance(fig, matplotlib.figure.Figure)
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    gains = plot_gains(y, scores).axes[0]
    labels = [line.get_label() for line in gains.get_lines()]
    assert labels[2:] == ["random", "perfect"] and labels[0].startswith("good")
    good = gains.get_lines()[0]
    assert good.get_ydata()[-1] == pytest.approx(100) and good.get_xdata()[-1] == pytest.approx(100)
    lift_ax = plot_lift(y, scores, bins=5).axes[0]
    assert len(lift_ax.patches) >= 10                            # 5 bins x 2 models
    cal_ax = plot_calibration(y, {"good": scores["good"]}, n_bins=5).axes[0]
    assert cal_ax.get_lines()[0].get_label() == "perfectly calibrated"


@pytest.mark.parametrize("call, message", [
    (lambda: gains_table([0, 1, 2], [0.1, 0.2, 0.3], bins=2), r"'y_true' parameter must be binary .* Got values \[0, 1, 2\] instead."),
    (lambda: gains_table(["yes", "no"], [0.1, 0.2], bins=2), "'y_true' parameter must be binary"),
    (lambda: gains_table([0, 1, 1], [0.1, 0.2], bins=2), r"'y_score' parameter must have one score per row of 'y_true' \(3\). Got 2"),
    (lambda: gains_table([0, 1, 1], [0.1, 0.2, 0.3], bins=1), "The 'bins' parameter must be an integer >= 2. Got 1 instead."),
    (lambda: gains_table([0, 1, 1], [0.1, 0.2, 0.3], bins=2.5), "The 'bins' parameter must be an integer >= 2. Got 2.5 instead."),
    (lambda: gains_table([0, 1, 1], [0.1, 0.2, 0.3], bins=4), "at most the number of rows"),
    (lambda: gains_table([0, 1, 1], [0.1, np.nan, 0.3], bins=2), "finite numbers"),
    (lambda: gains_table([0, 0, 0], [0.1, 0.2, 0.3], bins=2), "at least one positive"),
    (lambda: gains_table([0, 1, 1], [0.1, 0.2, 0.3], bins=2, tie_breaker=[1, 2]), "'tie_breaker' parameter must have one key per row"),
    (lambda: lift_at([0, 1, 1], [0.1, 0.2, 0.3], fraction=0), r"'fraction' parameter must be a number in \(0, 1\]"),
    (lambda: capture_at([0, 1, 1], [0.1, 0.2, 0.3], fraction=1.5), r"'fraction' parameter must be a number in \(0, 1\]"),
    (lambda: classification_report_frame([1, 1, 1], [0.1, 0.2, 0.3]), "must contain both classes"),
    (lambda: plot_calibration([0, 1, 1], {"m": [0.1, 2.0, 0.3]}, n_bins=2), r"probabilities in \[0, 1\]"),
    (lambda: plot_gains([0, 1, 1], {}), "non-empty dict"),
    (lambda: plot_lift([0, 1, 1], {"m": [0.1, 0.2]}, bins=2), r"'scores\['m'\]' parameter must have one score per row"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()

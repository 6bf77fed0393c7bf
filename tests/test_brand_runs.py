"""Bring your own data, end to end: every notebook of the pipeline runs through ``workbench run``
on two brands shaped unlike the embedded sample, with their own mappings and identity settings
and no other parameter (tests/brands).

- **CDNOW**, an orders-only US retailer: no profile, no events, no phones — the sections whose
  inputs are absent say so; RFM agrees with an independent computation from the raw CSV; the
  canonical purchases reproduce the published BG/NBD fit; the models train on cutoffs derived
  from the data's own calendar (1997–98).
- **Lotus Tea House**, a Chinese tea retailer: a member table with Chinese headers, a line-item
  till export, returns in their own file, an app log with its own event names and a consent
  log; the 360 profile's revenue reconciles to the cent with a sum over the raw files and OneID
  is measured against the brand's truth.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.brands import USD_TO_CNY, raw_revenue
from workbench.canonical import load_canonical
from workbench.models.clv import BetaGeoFitter, calibration_and_holdout_data

NOTEBOOKS = ["01_ingest", "02_clean", "03_id_matching", "04_customer_360", "05_rfm", "06_kmeans", "07_churn",
             "08_propensity", "09_clv", "10_segment_report", "11_explore", "12_campaign_results"]
ABSENT = "Not available for this data"


@pytest.fixture(scope="module")
def cdnow(pipeline_runs):
    return pipeline_runs["cdnow"].paths, pipeline_runs["cdnow"]


@pytest.fixture(scope="module")
def lotus(pipeline_runs):
    return pipeline_runs["lotus"].paths, pipeline_runs["lotus"]


def _html(result, stem: str) -> str:
    return (result.run_dir / f"{stem}.html").read_text(encoding="utf-8")


def _person_of_oneid(paths) -> pd.Series:
    """OneID -> the truth's person (each brand's OneIDs are pure; checked in test_brands.py)."""
    from workbench.truth import record_key, truth_records

    reg = pd.read_parquet(paths.registry, columns=["record_id", "oneid"])
    t = reg.assign(record_key=record_key(reg["record_id"])).merge(truth_records(paths), on="record_key")
    return t.drop_duplicates("oneid").set_index("oneid")["person_id"]


# ----------------------------------------------------------------------------- CDNOW
def test_cdnow_every_notebook_runs_and_absent_sections_say_so(cdnow):
    paths, result = cdnow
    assert result.status == "ok"
    assert [nb.name.removesuffix(".ipynb") for nb in result.notebooks] == NOTEBOOKS
    assert all(nb.status == "ok" and nb.html_path.exists() for nb in result.notebooks)
    for f in ("customer_360.parquet", "rfm_segments.parquet", "clusters.parquet", "scores_churn.parquet",
              "scores_propensity.parquet", "clv.parquet"):
        assert (paths.processed / f).exists(), f
    assert not (paths.processed / "engagement_value.parquet").exists()   # no events: no engagement
    assert ABSENT in _html(result, "04_customer_360")      # no event mapping
    assert ABSENT in _html(result, "06_kmeans")            # engagement × value, live-stream list
    report = _html(result, "10_segment_report")
    assert ABSENT in report and "Customer segment report" in report
    assert ABSENT in _html(result, "12_campaign_results")   # no campaign export: no results, no uplift
    profile = pd.read_parquet(paths.customer_360)
    assert not any(c.startswith(("live_", "email_", "sessions", "consent_")) for c in profile.columns)


def test_cdnow_rfm_agrees_with_an_independent_computation(cdnow):
    paths, _ = cdnow
    raw = pd.read_csv(paths.raw / "orders" / "cdnow_order_history.csv", dtype={"Customer ID": str})
    raw["usd"] = raw["Order Total"].str.replace(r"[$,]", "", regex=True).astype(float)
    raw["at"] = (pd.to_datetime(raw["Order Date"], format="%m/%d/%Y %I:%M %p")
                 .dt.tz_localize("America/New_York").dt.tz_convert("UTC"))
    rfm = pd.read_parquet(paths.processed / "rfm_segments.parquet")
    as_of = pd.Timestamp(rfm.attrs["as_of"])
    before = raw[raw["at"] < as_of]
    bought = before[before["usd"] > 0].groupby("Customer ID")   # a $0 row is not a purchase (RFM's rule)
    expected = pd.DataFrame({"monetary": before.groupby("Customer ID")["usd"].sum() * USD_TO_CNY})
    expected["frequency"] = bought.size().reindex(expected.index, fill_value=0)
    expected["recency_days"] = ((as_of - bought["at"].max()).dt.total_seconds() / 86400).reindex(expected.index)
    person = _person_of_oneid(paths)
    got = rfm.assign(customer=person.reindex(rfm.index).astype(str).str.lstrip("0").to_numpy())
    got = got.set_index("customer")
    expected.index = expected.index.str.lstrip("0")
    assert len(got) == len(expected) == 23_570
    got = got.loc[expected.index]
    assert (got["frequency"].to_numpy() == expected["frequency"].to_numpy()).all()
    assert np.allclose(got["monetary"], expected["monetary"], atol=0.005)
    assert np.allclose(got["recency_days"], expected["recency_days"], atol=1e-6, equal_nan=True)
    assert (expected["frequency"] == 0).sum() > 0   # customers whose only orders were $0: prospects


def test_cdnow_clv_reproduces_the_published_fit_from_the_pipelines_purchases(cdnow):
    """lifetimes 0.11.3 on CDNOW master, weekly, calibration to 1997-09-30, holdout to 1998-06-30:
    r 0.284, alpha 6.73, a 0.71, b 2.37 (tests/test_clv_cdnow_master.py)."""
    paths, _ = cdnow
    layer = load_canonical(paths)
    assert layer.local_timezone == "America/New_York"
    tx = layer.purchases()
    # every paid order is a transaction, $0 ones included, as in the published fit
    tx = tx[tx["is_order"]].assign(day=lambda d: d["ordered_at"].dt.tz_convert(layer.local_timezone)
                                  .dt.tz_localize(None).dt.normalize())
    ch = calibration_and_holdout_data(tx, customer_id_col="oneid", datetime_col="day",
                                      calibration_period_end="1997-09-30", observation_period_end="1998-06-30",
                                      freq="W")
    bgf = BetaGeoFitter().fit(ch["frequency_cal"], ch["recency_cal"], ch["T_cal"])
    reference = {"r": 0.284, "alpha": 6.73, "a": 0.71, "b": 2.37}
    tolerance = {"r": 0.001, "alpha": 0.01, "a": 0.01, "b": 0.01}
    for k, v in reference.items():
        assert abs(bgf.params_[k] - v) <= tolerance[k], (k, bgf.params_[k])
    clv = pd.read_parquet(paths.processed / "clv.parquet")
    buyers = layer.purchases().query("net > 0")["oneid"].nunique()   # CLV counts purchases with a positive amount
    assert len(clv) == buyers > 23_000 and (clv["clv_12m"] >= 0).all()


def test_cdnow_models_train_on_cutoffs_derived_from_the_data(cdnow):
    paths, _ = cdnow
    for task in ("churn", "propensity"):
        card = json.loads((paths.models / f"{task}.card.json").read_text(encoding="utf-8"))
        w = card["data_window"]
        cuts = [pd.Timestamp(c) for c in w["train_cutoffs"] + [w["test_cutoff"]]]
        assert all(pd.Timestamp("1997-01-01", tz="UTC") < c < pd.Timestamp("1998-07-01", tz="UTC") for c in cuts)
        assert pd.Timestamp(w["test_label_window"][1]) <= pd.Timestamp("1998-07-01", tz="UTC")
        assert card["metrics"]["model"]["roc_auc"] > card["metrics"]["rule_baseline"]["roc_auc"]
        assert not any(f.startswith(("live_", "email_", "sessions")) for f in card["features"]["numeric"])


# ----------------------------------------------------------------------------- Lotus Tea House
def test_lotus_every_notebook_runs(lotus):
    paths, result = lotus
    assert result.status == "ok" and all(nb.status == "ok" for nb in result.notebooks)
    channels = json.loads((paths.canonical / "manifest.json").read_text(encoding="utf-8"))["roles"]
    assert channels["orders"] and channels["returns"] and channels["events"] and channels["profile"]
    from workbench.mapping import load_mappings

    sample = set(load_mappings())
    assert not sample & {c for cs in channels.values() for c in cs}, "the brand's channels are its own"


def test_lotus_profile_revenue_reconciles_with_the_raw_files(lotus):
    paths, _ = lotus
    profile = pd.read_parquet(paths.customer_360)
    assert round(float(profile["net_revenue"].sum()), 2) == round(raw_revenue(paths.raw), 2)


def test_lotus_oneid_is_measured_against_its_truth(lotus):
    paths, _ = lotus
    q = json.loads((paths.metrics / "identity.json").read_text(encoding="utf-8"))["quality"]
    assert q["pairwise"]["precision"] >= 0.985 and q["pairwise"]["recall"] >= 0.90, q["pairwise"]

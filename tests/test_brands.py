"""End to end on two brands shaped unlike the sample (tests/brands): ingest -> clean -> OneID ->
canonical layer with each brand's own mappings and identity settings, checked against each
brand's ground truth and against revenue counted straight from its raw files.

- **CDNOW**: 69,659 purchases of 23,570 customers of a US online retailer (1997–98), one CSV
  with English headers, ``$1,286.01`` amounts, US Eastern times, no order numbers.
- **Lotus Tea House**: a Chinese tea retailer — member export (UTF-8 BOM, Chinese headers),
  line-item till export (GB18030, ``¥`` amounts), returns in a file of their own, an app event
  log (JSON lines, epoch ms) and a consent log; 800 hidden persons, seed 11.

Rows spoiled on purpose (tests/brands/boutique_writer.py ``DELIBERATE``) and what the workbench
does with them — the only rows that may leave the pipeline:

- 12 app events without a time (``"ms": null``): ingest quarantines them, "required value
  missing (column 'ms')". Nothing else is quarantined, by ingest or clean, in either brand.
- 15 app events the SDK sent twice and 4 member rows exported twice, verbatim: clean drops
  them as exact duplicates.
- members re-exported later with a change (new tier, new phone, a corrected name): clean's
  ``dedupe`` keeps the latest version of each card.
- 6 returns naming a receipt from before the till export: not quarantined — they stay refunds
  of their own (``return_without_order``, negative net), so revenue still reconciles.

CDNOW note: the source has 255 rows that repeat another row exactly (same customer, day,
units and dollars — real repeat purchases). The export gives each purchase of a customer-day
its own time of day; with dates only, clean would drop those 255 as exact duplicates (an
"export overlap") and lose $4,332.88 of revenue — an orders mapping without order numbers
cannot tell a repeat purchase from a repeated row.
"""

from __future__ import annotations

import csv
import hashlib
import json

import pandas as pd
import pytest

from tests.brands import (BOUTIQUE_IDENTITY, BOUTIQUE_MAPPINGS, CDNOW_CHANNEL, CDNOW_IDENTITY, CDNOW_MAPPINGS,
                          DELIBERATE, FILES, USD_TO_CNY, cdnow_raw_revenue, raw_revenue, read_master,
                          run_pipeline, till_receipts, write_boutique, write_cdnow)
from workbench.canonical import load_canonical, totals_from_cleaned
from workbench.config import get_paths
from workbench.mapping import load_mappings


def _metrics(paths, stage: str) -> dict:
    return json.loads((paths.metrics / f"{stage}.json").read_text(encoding="utf-8"))


def _cent(x: float) -> int:
    return int(round(x * 100))


# ----------------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow")
    paths = get_paths(root / "data", root / "reports")
    info = write_cdnow(paths.raw)
    return info, run_pipeline(paths, CDNOW_MAPPINGS, CDNOW_IDENTITY)


def test_cdnow_ingest_and_clean_reconcile(cdnow):
    info, run = cdnow
    totals = run.ingest.totals()
    assert totals["read"] == totals["kept"] + totals["quarantined"] + totals["suppressed"]
    assert totals == {"read": info["rows"], "kept": info["rows"], "quarantined": 0, "suppressed": 0}
    assert info["rows"] == 69_659 and info["customers"] == 23_570
    clean = _metrics(run.paths, "clean")["totals"]
    assert clean == {"read": 69_659, "kept": 69_659, "quarantined": 0, "exact_duplicates": 0, "merged": 0}


def test_cdnow_identity_is_the_customer_number(cdnow):
    _, run = cdnow
    m = _metrics(run.paths, "identity")
    pair = m["quality"]["pairwise"]
    # one unique identifier that is the truth itself: anything but exact is a bug
    assert pair["precision"] == 1.0 and pair["recall"] == 1.0
    assert m["totals"]["oneids"] == m["quality"]["sample_persons"] == 23_570
    assert m["quality"]["clusters"]["over_merge_rate"] == 0 and m["quality"]["clusters"]["under_merge_rate"] == 0


def test_cdnow_revenue_reconciles_with_the_raw_file(cdnow):
    _, run = cdnow
    usd = cdnow_raw_revenue(run.paths.raw)
    assert _cent(usd) == _cent(read_master()["amount"].sum()) == 250_031_563  # the export lost nothing
    tx = load_canonical(run.paths).purchases()
    assert _cent(tx["net"].sum()) == _cent(usd * USD_TO_CNY)  # USD at 7.20 (workbench/conf/cleaning.yaml)
    assert _cent(totals_from_cleaned(run.paths, run.layer.config.mappings)["net_revenue"]) == _cent(usd * USD_TO_CNY)


def test_cdnow_every_row_is_an_order_at_its_eastern_date(cdnow):
    _, run = cdnow
    tx = load_canonical(run.paths).purchases()
    assert len(tx) == 69_659 and tx["is_order"].all() and (tx["status"] == "paid").all()
    assert tx["oneid"].nunique() == 23_570
    # back in New York wall time, each order falls on its source date (EST and EDT alike)
    row = tx["record_id"].str.rsplit(":", n=1).str[1].astype(int).to_numpy() - 1
    local = tx["ordered_at"].dt.tz_convert("America/New_York")
    assert (local.dt.strftime("%Y%m%d").to_numpy() == read_master()["date"].to_numpy()[row]).all()
    assert local.dt.hour.between(8, 22).all()
    assert tx["channel"].eq(CDNOW_CHANNEL).all()


# ----------------------------------------------------------------------------- Lotus Tea House
@pytest.fixture(scope="module")
def boutique(tmp_path_factory):
    root = tmp_path_factory.mktemp("boutique")
    paths = get_paths(root / "data", root / "reports")
    info = write_boutique(paths.raw)  # persons=800, seed=11
    return info, run_pipeline(paths, BOUTIQUE_MAPPINGS, BOUTIQUE_IDENTITY)


def _member_rows(raw) -> pd.DataFrame:
    return pd.read_csv(raw / FILES["lotus_members"], encoding="utf-8-sig", dtype=str, keep_default_na=False)


def test_boutique_ingest_and_clean_reconcile(boutique):
    info, run = boutique
    totals = run.ingest.totals()
    assert totals["read"] == totals["kept"] + totals["quarantined"] + totals["suppressed"]
    assert totals["read"] == info["rows"] < 60_000
    # quarantined: only the app events without a time, each for that reason
    per = run.ingest.summary()
    assert per["quarantined"].to_dict() == {c: (DELIBERATE["events_without_time"] if c == "lotus_app_log" else 0)
                                            for c in per.index}
    q = pd.read_parquet(run.paths.quarantine / "lotus_app_log.parquet")
    assert q["reason"].str.startswith("required value missing (column 'ms')").all()
    clean = run.clean.summary()
    assert clean["quarantined"].sum() == 0
    assert clean["exact_duplicates"].to_dict() == {
        "lotus_members": DELIBERATE["members_exported_twice"], "lotus_till": 0, "lotus_returns": 0,
        "lotus_app_log": DELIBERATE["events_resent"], "lotus_consents": 0}
    # re-exported members collapse to one record per card; nothing else is merged
    members = _member_rows(run.paths.raw)
    cards = members["会员卡号"].nunique()
    assert clean.loc["lotus_members", "kept"] == cards
    assert clean.loc["lotus_members", "merged"] == len(members) - cards - DELIBERATE["members_exported_twice"] > 0
    assert clean["merged"].drop("lotus_members").eq(0).all()


def test_boutique_truth_covers_every_raw_row(boutique):
    _, run = boutique
    truth = pd.read_parquet(run.paths.truth / "records.parquet")
    read = {f.file: f.read for f in run.ingest.files}
    assert truth.groupby("source_file", observed=True).size().to_dict() == read
    assert not truth.duplicated(["source_file", "source_row"]).any()
    assert json.loads((run.paths.truth / "sample.json").read_text(encoding="utf-8"))["persons"] == 800


def test_boutique_identity_quality(boutique):
    _, run = boutique
    q = _metrics(run.paths, "identity")["quality"]
    precision, recall = q["pairwise"]["precision"], q["pairwise"]["recall"]
    ceiling = q["identifier_recall_ceiling"]
    # Measured (persons=800, seed=11): precision 1.0, recall 0.9193, identifier recall ceiling
    # 0.9285 (gap 0.009). Seeds 1-9 of the same generator gave precision 0.9885-1.0, recall
    # 0.889-0.907 and a gap to the ceiling of 0.002-0.022. Precision falls below 1 only through
    # family tablets on which one of the two members never logs in (that member's anonymous
    # events join the other): floor 0.985, under the worst seed. Recall is bounded by the data —
    # baskets paid without card or phone, and anonymous events on a shared tablet (a device two
    # members log in on links nobody) belong to no known person — so it is held to 0.90 (0.02
    # under this seed's measure) and to within 0.025 of what any identifier-based linking could
    # reach on this data (the worst seed's gap plus a little).
    assert precision >= 0.985, q["pairwise"]
    assert recall >= 0.90, q["pairwise"]
    assert ceiling - recall <= 0.025, (recall, ceiling)
    assert q["sample_persons"] == 800


def test_boutique_revenue_reconciles_with_the_raw_files(boutique):
    _, run = boutique
    expected = raw_revenue(run.paths.raw)  # CNY: till line amounts - refunds, parsed with csv
    tx = load_canonical(run.paths).purchases()
    assert _cent(tx["net"].sum()) == _cent(expected)
    assert _cent(totals_from_cleaned(run.paths, run.layer.config.mappings)["net_revenue"]) == _cent(expected)
    # returns naming a receipt before the export stay refunds of their own
    orphans = tx[tx["status"] == "return_without_order"]
    assert len(orphans) == DELIBERATE["orphan_returns"] and (orphans["net"] < 0).all()


def test_boutique_till_lines_make_one_order_per_receipt(boutique):
    info, run = boutique
    layer = load_canonical(run.paths)
    tx = layer.purchases()
    till = tx[tx["channel"] == "lotus_till"]
    receipts = till_receipts(run.paths.raw)
    assert receipts == info["receipts"]
    assert int(till["is_order"].sum()) == len(till) == till["order_key"].nunique() == receipts
    assert layer.manifest["rows"]["order_lines"] == info["files"]["lotus_till"]["rows"]
    with open(run.paths.raw / FILES["lotus_returns"], encoding="utf-8", newline="") as fh:
        returned = list(csv.DictReader(fh))
    sold = {r["原小票号"] for r in returned} & set(till["order_key"].str.split(":", n=1).str[1])
    assert layer.manifest["refunds"] == {"matched": len(returned) - DELIBERATE["orphan_returns"],
                                         "unmatched": DELIBERATE["orphan_returns"]}
    assert len(sold) == len(returned) - DELIBERATE["orphan_returns"]  # each matched return names its own receipt


def test_boutique_events_and_consents(boutique):
    info, run = boutique
    layer = load_canonical(run.paths)
    events = layer.table("events")
    kept = run.clean.summary().loc["lotus_app_log", "kept"]
    assert len(events) == kept == info["files"]["lotus_app_log"]["rows"] - DELIBERATE["events_without_time"] \
        - DELIBERATE["events_resent"]
    custom = events[events["family"] == "custom"]["event_type"].unique()
    assert set(custom) == {"Product Shared", "Coupon Claimed", "Tea Class Booked"}
    assert {"Application Opened", "Product Viewed", "Signed In"} <= set(events["event_type"])
    consents = layer.table("consents")
    log = consents[consents["channel"] == "lotus_consents"]
    assert len(log) == info["files"]["lotus_consents"]["rows"] and log["granted"].notna().all()
    assert set(log["purpose"]) == {"sms", "email", "wechat"}


@pytest.mark.parametrize("mappings_dir", [BOUTIQUE_MAPPINGS, CDNOW_MAPPINGS], ids=["boutique", "cdnow"])
def test_brand_is_named_unlike_the_sample(mappings_dir):
    sample = load_mappings()  # the package's own: the sample's ten channels
    brand = load_mappings(mappings_dir)
    assert not set(brand) & set(sample)
    assert not {c for m in brand.values() for c in m.columns} & {c for m in sample.values() for c in m.columns}


def test_boutique_is_deterministic(tmp_path):
    def digest(d):
        write_boutique(d, persons=80, seed=5)
        return {rel: hashlib.sha256((d / rel).read_bytes()).hexdigest() for rel in FILES.values()}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")

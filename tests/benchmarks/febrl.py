"""``make bench`` for OneID as a general record linker: FEBRL3 and FEBRL4 beside Splink.

    python -m tests.benchmarks.febrl                  # both data sets, each in its own process
    python -m tests.benchmarks.febrl --data febrl3    # one

Each data set runs in one fresh process that holds both contenders (imports warmed first,
then OneID and Splink timed one after the other in the same conditions, three times each in
alternating order; the median time is reported):

- ``oneid``: :func:`workbench.identity.resolve_records` (FEBRL3, dedupe of 5,000 records) or
  :func:`workbench.identity.resolve_tables` (FEBRL4, link of 2 x 5,000), given a **column
  mapping only**: which column is which identifier or attribute and the attribute's comparison
  kind (``forename``, ``surname``, ``date``, ``postcode``, ``house_number``; the same six
  columns Splink's examples compare). No weights, levels, thresholds or blocking rules are set by hand: u comes from
  random sampling, m from EM on blocking rules derived from the settings, the prior from rules
  derived from the settings, the threshold is the default.
- ``splink``: Splink 5 with the settings of its own documented FEBRL examples
  (``docs/demos/examples/duckdb/febrl3`` and ``febrl4``, the detailed model of the latter):
  the same comparisons, blocking rules, prior rules and recall, u sampling and EM sessions;
  clusters at P(match) >= 0.99 as in the FEBRL4 example.

Both are scored the same way: pairwise precision, recall and F1 of the clusters against the
truth in the record ids (``rec-<k>-org`` / ``rec-<k>-dup-<j>`` are person ``k``). Results go
to ``reports/benchmarks/febrl.json`` and ``.md``. Timings on a shared machine are inflated by
whatever else runs; the two contenders of one data set share the conditions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tests.benchmarks.child import run_child

DATA = Path(__file__).parents[1] / "data" / "febrl"
DATASETS = ("febrl3", "febrl4")


def load(name: str) -> pd.DataFrame:
    """One FEBRL file as text columns (``rec_id`` kept), with the true person in ``person``."""
    df = pd.read_csv(DATA / name, skipinitialspace=True, dtype=str, keep_default_na=False, na_values=[""])
    df.columns = [c.strip() for c in df.columns]
    df = df.apply(lambda s: s.str.strip())
    df["person"] = df["rec_id"].str.extract(r"^rec-(\d+)-", expand=False)
    if df["person"].isna().any():
        raise ValueError(f"{name}: record ids without a person: {df.loc[df['person'].isna(), 'rec_id'].head(3).tolist()}")
    return df


# ----------------------------------------------------------------------------- OneID: a mapping, nothing else
#: what a user writes to link FEBRL with OneID: which column is which, and its kind
ONEID_SETTINGS = {
    "identifiers": [{"name": "soc_sec_id", "kind": "strong"}],
    "attributes": {
        "given_name": {"comparison": "forename", "term_frequency": True},
        "surname": {"comparison": "surname", "term_frequency": True},
        "date_of_birth": {"comparison": "date"},
        "postcode": {"comparison": "postcode", "term_frequency": True},
        "street_number": {"comparison": "house_number", "term_frequency": True},
    },
}
ONEID_IDENTIFIERS = {"soc_sec_id": "soc_sec_id"}
ONEID_ATTRIBUTES = {c: c for c in ONEID_SETTINGS["attributes"]}


def run_oneid(name: str, tables: list[pd.DataFrame]) -> pd.Series:
    """OneID cluster labels (aligned with the concatenated ``tables``)."""
    from workbench.identity import IdentitySettings, SourceSpec, resolve_records, resolve_tables

    settings = IdentitySettings.from_dict(ONEID_SETTINGS)
    if len(tables) == 1:
        res = resolve_records(tables[0], identifiers=ONEID_IDENTIFIERS, attributes=ONEID_ATTRIBUTES,
                              settings=settings, record_id="rec_id")
    else:
        spec = SourceSpec(identifiers=dict(ONEID_IDENTIFIERS), attributes=dict(ONEID_ATTRIBUTES))
        named = {f"{name}{'ab'[k]}": t for k, t in enumerate(tables)}
        res = resolve_tables(named, settings, sources={k: spec for k in named},
                             record_ids={k: t["rec_id"] for k, t in named.items()})
    rid = pd.concat([t["rec_id"] for t in tables], ignore_index=True)
    return res.records.set_index("record_id")["oneid"].reindex(rid).reset_index(drop=True)


# ----------------------------------------------------------------------------- Splink: its documented FEBRL settings
def _splink_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["person"])


def run_splink(name: str, tables: list[pd.DataFrame]) -> pd.Series:
    """Splink's cluster labels with the settings of its FEBRL3 / FEBRL4 example."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    db = DuckDBAPI(connection=con)
    frames = [db.register(_splink_frame(t)) for t in tables]
    if name == "febrl3":
        blocking = [block_on("soc_sec_id"), block_on("given_name"), block_on("surname"),
                    block_on("date_of_birth"), block_on("postcode")]
        settings = SettingsCreator(
            unique_id_column_name="rec_id", link_type="dedupe_only", blocking_rules_to_generate_predictions=blocking,
            comparisons=[cl.NameComparison("given_name"), cl.NameComparison("surname"),
                         cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
                         cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
                         cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
                         cl.ExactMatch("postcode").configure(term_frequency_adjustments=True)],
            retain_intermediate_calculation_columns=True)
        linker = Linker(frames[0], settings)
        linker.training.estimate_probability_two_random_records_match(
            [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth"),
             "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth"],
            recall=0.9)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    else:
        blocking = [block_on("given_name", "surname"), "l.given_name = r.surname and l.surname = r.given_name",
                    block_on("date_of_birth"), block_on("soc_sec_id"), block_on("state", "address_1"),
                    block_on("street_number", "address_1"), block_on("postcode")]
        settings = SettingsCreator(
            unique_id_column_name="rec_id", link_type="link_only", blocking_rules_to_generate_predictions=blocking,
            comparisons=[cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
                         cl.NameComparison("surname").configure(term_frequency_adjustments=True),
                         cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d",
                                                  invalid_dates_as_null=True),
                         cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
                         cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
                         cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                             term_frequency_adjustments=True)],
            retain_intermediate_calculation_columns=True)
        linker = Linker(frames, settings)
        linker.training.estimate_probability_two_random_records_match(
            [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("date_of_birth"), estimate_without_term_frequencies=True)
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("postcode"), estimate_without_term_frequencies=True)
    pred = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.99).as_pandas_dataframe()
    con.close()
    rid = pd.concat([t["rec_id"] for t in tables], ignore_index=True)
    return clusters.set_index("rec_id")["cluster_id"].astype(str).reindex(rid).reset_index(drop=True)


# ----------------------------------------------------------------------------- one process per data set
def files(name: str) -> list[str]:
    return ["dataset3.csv"] if name == "febrl3" else ["dataset4a.csv", "dataset4b.csv"]


def score(labels: pd.Series, truth: pd.Series) -> dict:
    """Pairwise precision, recall, F1 (every record pair, within and across tables)."""
    from workbench.identity.evaluate import pairwise_quality

    if labels.isna().any():
        raise ValueError(f"{int(labels.isna().sum())} records got no cluster.")
    return {k: round(float(v), 4) for k, v in pairwise_quality(labels, truth).items()}


def measure(name: str, repeats: int = 3) -> dict:
    """Both contenders on one data set, in this process, ``repeats`` times each in alternating
    order (OneID first, then Splink first, ...); the median time is reported beside every
    time, the quality of the last run (each contender is seeded: every run gives the same)."""
    import splink  # noqa: F401  (imports outside the clocks)

    import workbench.identity  # noqa: F401

    for logger in ("splink", "splink.internals"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    tables = [load(f) for f in files(name)]
    truth = pd.concat([t["person"] for t in tables], ignore_index=True)
    out = {"data": name, "records": int(len(truth)),
           "true_pairs": int(truth.value_counts().map(lambda n: n * (n - 1) // 2).sum())}
    runs = {"oneid": run_oneid, "splink": run_splink}
    times: dict[str, list[float]] = {m: [] for m in runs}
    for k in range(repeats):
        for method in (list(runs) if k % 2 == 0 else list(runs)[::-1]):
            t0 = time.perf_counter()
            labels = runs[method](name, tables)
            times[method].append(round(time.perf_counter() - t0, 2))
            quality = score(labels, truth)
            if method in out and out[method]["quality"] != quality:
                raise AssertionError(f"{method} gave another result on run {k + 1}: {quality} vs {out[method]['quality']}")
            out[method] = {"quality": quality}
    for method in runs:
        q = out[method].pop("quality")
        out[method] = {"seconds": float(np.median(times[method])), "runs_seconds": times[method], **q}
    out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| data | records | method | precision | recall | F1 | seconds |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        for m in ("oneid", "splink"):
            x = r[m]
            lines.append(f"| {r['data'].upper()} | {r['records']:,} | {'OneID' if m == 'oneid' else 'Splink 5'} | "
                         f"{x['precision']:.4f} | {x['recall']:.4f} | {x['f1']:.4f} | {x['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=DATASETS, nargs="+", default=list(DATASETS))
    ap.add_argument("--repeats", type=int, default=3, help="runs of each contender (median time reported)")
    ap.add_argument("--child", choices=DATASETS, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(measure(a.child, a.repeats)))
        return 0
    rows = []
    for name in a.data:
        r = run_child("tests.benchmarks.febrl", "--child", name, "--repeats", a.repeats)
        rows.append(r)
        print(json.dumps(r), flush=True)
    from workbench.config import get_paths

    out = get_paths().reports / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "results": rows}
    (out / "febrl.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    table = markdown(rows)
    (out / "febrl.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

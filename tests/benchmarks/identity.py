"""``make bench`` for OneID: our resolution and plain Splink on the same records, timed and scored.

    python -m tests.benchmarks.identity            # 20k, 200k, 1M persons; Splink at 20k and 200k
    python -m tests.benchmarks.identity --sizes 1000000 --splink-sizes --work /tmp/idbench

For each size the sample is generated, ingested and cleaned (not timed), then each
contender runs in its own process. ``peak_mb`` is the contender's own peak, before its
quality is measured (by DuckDB, out of core, with :func:`quality_sql`): for OneID the largest
resident set during any of its steps (also reported per step), for Splink the process's
maximum resident set.

- ``oneid``: :func:`workbench.identity.run_identity` (deterministic graph with guards +
  Splink between components);
- ``splink``: plain Splink 5 on DuckDB over the same cleaned records — one row per record
  with every identifier and fuzzy attribute, ExactMatch on each identifier, Jaro-Winkler on
  the name, blocking on each identifier and on (name, city) and the phone tail, prior from
  deterministic rules, u by random sampling, m by EM, clusters at P(match) >= 0.99. Rows
  with identical identity columns are collapsed first (they are certain matches; this only
  saves Splink work) and mapped back to every record.

Results go to ``reports/benchmarks/identity.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.child import run_child



def _prepare(data: Path, persons: int) -> None:
    from workbench.clean import clean_all
    from workbench.config import get_paths
    from workbench.ingest import ingest_all
    from workbench.sample import make_sample

    paths = get_paths(data, data.parent / "reports")
    make_sample(persons, seed=42, out=paths.raw)
    # ingest: one worker above 300k persons (not yet measured with two at 1M persons); the clean
    # stage reads large channels in slices (cleaning setting `slice_rows`), so two workers fit
    ingest_all(paths, progress=False, log=None, workers=1 if persons > 300_000 else None)
    clean_all(paths, progress=False)


def quality_sql(labels: Path, truth: Path, *, memory_limit: str = "4GB") -> dict:
    """Pairwise and cluster quality of ``labels`` (Parquet: record_id, oneid) against the
    sample's truth (``_truth/records.parquet``), computed by DuckDB from the contingency table
    (cluster, person) — the same definitions as :mod:`workbench.identity.evaluate`, but joined
    and counted out of core, so it works at 58 million records."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{labels.parent / '.duckdb_tmp'}'")
        con.execute(f"""
            CREATE TEMP TABLE cell AS
            WITH t AS (SELECT source_file || ':' || CAST(source_row AS VARCHAR) AS record_key,
                              person_id FROM read_parquet('{truth}')),
                 r AS (SELECT substr(record_id, strpos(record_id, ':') + 1) AS record_key, oneid
                       FROM read_parquet('{labels}'))
            SELECT r.oneid, t.person_id, count(*)::DOUBLE AS n
            FROM r LEFT JOIN t USING (record_key) GROUP BY ALL""")
        missing = con.sql("SELECT coalesce(sum(n), 0) FROM cell WHERE person_id IS NULL").fetchall()[0][0]
        if missing:
            raise ValueError(f"{int(missing)} records have no ground truth.")
        tp, = con.sql("SELECT sum(n * (n - 1) / 2) FROM cell").fetchall()[0]
        pred, clusters, pure = con.sql("""SELECT sum(m * (m - 1) / 2), count(*), sum(CASE WHEN k = 1 THEN 1 ELSE 0 END)
                                         FROM (SELECT sum(n) AS m, count(*) AS k FROM cell GROUP BY oneid)""").fetchall()[0]
        true, persons, whole = con.sql("""SELECT sum(m * (m - 1) / 2), count(*), sum(CASE WHEN k = 1 THEN 1 ELSE 0 END)
                                         FROM (SELECT sum(n) AS m, count(*) AS k FROM cell GROUP BY person_id)""").fetchall()[0]
    finally:
        con.close()
    precision, recall = (tp / pred if pred else 1.0), (tp / true if true else 1.0)
    return {"pairwise": {"precision": precision, "recall": recall,
                         "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0},
            "clusters": {"clusters": int(clusters), "persons": int(persons),
                         "over_merge_rate": 1 - pure / clusters, "under_merge_rate": 1 - whole / persons,
                         "cluster_precision": pure / clusters}}


def _run_oneid(data: Path) -> dict:
    from workbench.config import get_paths
    from workbench.identity import run_identity

    paths = get_paths(data, data.parent / "reports")
    t0 = time.perf_counter()
    res = run_identity(paths, evaluate=False)  # the quality is measured below, outside the clock
    seconds = time.perf_counter() - t0
    out = {"records": len(res.records), "seconds": seconds, "steps": res.seconds, "step_peak_mb": res.peak_mb,
           "peak_mb": max(res.peak_mb.values())}
    del res
    return {**out, **quality_sql(paths.processed / "oneid_records.parquet", paths.truth / "records.parquet")}


def _run_splink(data: Path) -> dict:
    import logging

    import pandas as pd
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    import splink.comparison_library as cl

    from workbench.config import get_paths
    from workbench.identity import IdentitySettings
    from workbench.identity.__init__ import _tables
    from workbench.identity.observations import observe

    paths = get_paths(data, data.parent / "reports")
    s = IdentitySettings.from_yaml()
    t0 = time.perf_counter()
    tables = _tables(paths, s)
    ids, attrs, rids, offset = [], [], [], 0
    for name in tables:
        df = tables[name]
        i, a, _ = observe(df, s.sources[name], s, record_offset=offset)
        ids.append(i), attrs.append(a), rids.append(df["record_id"])
        offset += len(df)
    obs = pd.concat(ids, ignore_index=True)
    obs["identifier"] = obs["identifier"].astype(str)
    wide = obs.drop_duplicates(["rec", "identifier"]).pivot(index="rec", columns="identifier", values="value")
    wide = wide.reindex(range(offset)).join(pd.concat(attrs, ignore_index=True))
    cols = [c for c in wide.columns]
    wide = wide.astype(object).where(wide.notna(), None)
    signature = pd.factorize(pd.util.hash_pandas_object(wide[cols].astype(str), index=False))[0]
    distinct = wide.groupby(signature).first()
    distinct.index.name = "unique_id"
    distinct = distinct.reset_index()
    idents = [i.name for i in s.identifiers if i.name in distinct]
    comparisons = [cl.ExactMatch(c) for c in idents]
    comparisons += [cl.JaroWinklerAtThresholds("name", [0.92, 0.8]), cl.ExactMatch("phone_tail"),
                    cl.ExactMatch("address_key"), cl.ExactMatch("city")]
    blocking = [block_on(c) for c in idents] + [block_on("name", "city"), block_on("phone_tail")]
    db = DuckDBAPI()
    settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=blocking, retain_matching_columns=False)
    linker = Linker(db.register(distinct), settings, log_level=logging.ERROR)
    det = [block_on(c) for c in ("member_id", "phone", "email") if c in idents]
    linker.training.estimate_probability_two_random_records_match(det, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=42)
    for rule in (block_on("name", "city"), block_on("phone_tail")):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except ValueError:  # a level never observed under this rule: keep the other estimates
            continue
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.99).as_pandas_dataframe()
    cluster_of = clusters.set_index("unique_id")["cluster_id"]
    labels = cluster_of.reindex(signature).to_numpy()
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = paths.processed / "splink_labels.parquet"
    pd.DataFrame({"record_id": pd.concat(rids, ignore_index=True), "oneid": labels.astype(str)}).to_parquet(out)
    q = quality_sql(out, paths.truth / "records.parquet")
    return {"records": int(offset), "distinct_rows": int(len(distinct)), "seconds": seconds, "peak_mb": peak_mb, **q}


def _child(args) -> int:
    data = Path(args.data)
    out = {"prepare": _prepare, "oneid": _run_oneid, "splink": _run_splink}[args.child]
    if args.child == "prepare":
        out(data, args.persons)
        result = {}
    else:
        result = out(data)
    # the contender's own peak (before the quality evaluation) when it reported one
    result["peak_mb"] = round(result.get("peak_mb") or max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                                           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1)
    print("RESULT " + json.dumps(result, default=float))
    return 0


def _prepared(data: Path, persons: int) -> bool:
    """Whether ``data`` already holds the cleaned sample of ``persons`` persons."""
    manifest = data / "raw" / "_truth" / "sample.json"
    cleaned = data / "interim" / "cleaned"
    return (manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")).get("persons") == persons
            and cleaned.exists() and len(list(cleaned.glob("*.parquet"))) >= 9)


def _spawn(kind: str, data: Path, persons: int) -> dict:
    return run_child("tests.benchmarks.identity", "--child", kind, "--data", data, "--persons", persons)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    ap.add_argument("--splink-sizes", type=int, nargs="*", default=[20_000, 200_000])
    ap.add_argument("--child", choices=["prepare", "oneid", "splink"])
    ap.add_argument("--data")
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--work", help="keep prepared data here (persons-N/data) and reuse it on the next run")
    a = ap.parse_args(argv)
    if a.child:
        return _child(a)
    rows = []
    for persons in a.sizes:
        if a.work:  # kept between runs: a size already prepared there is reused (the 1M sample takes 20 min)
            root = Path(a.work) / f"persons-{persons}"
        else:
            root = Path(tempfile.mkdtemp(prefix=f"wb-idbench-{persons}-"))
        data = root / "data"
        if not _prepared(data, persons):
            _spawn("prepare", data, persons)
        for kind in ("oneid", "splink"):
            if kind == "splink" and persons not in a.splink_sizes:
                continue
            r = _spawn(kind, data, persons)
            row = {"persons": persons, "method": kind, "records": r["records"], "seconds": round(r["seconds"], 1),
                   "records_per_s": round(r["records"] / r["seconds"]), "peak_mb": r["peak_mb"],
                   "precision": round(r["pairwise"]["precision"], 4), "recall": round(r["pairwise"]["recall"], 4),
                   "cluster_precision": round(r["clusters"]["cluster_precision"], 4), "steps": r.get("steps"),
                   "step_peak_mb": r.get("step_peak_mb"),
                   "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if not a.work:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    from workbench.config import get_paths

    out = get_paths().reports / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    # rows of sizes not run this time are kept from the previous results file
    old = json.loads((out / "identity.json").read_text(encoding="utf-8"))["results"] \
        if (out / "identity.json").exists() else []
    ran = {(r["persons"], r["method"]) for r in rows}
    rows = sorted([r for r in old if (r["persons"], r["method"]) not in ran] + rows,
                  key=lambda r: (r["persons"], r["method"] != "oneid"))
    (out / "identity.json").write_text(json.dumps({"measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                                   "results": rows}, indent=2), encoding="utf-8")
    lines = ["| persons | method | records | seconds | records/s | peak MB | pairwise precision | pairwise recall | cluster precision |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['persons']:,} | {r['method']} | {r['records']:,} | {r['seconds']} | {r['records_per_s']:,} | "
              f"{r['peak_mb']:,.0f} | {r['precision']} | {r['recall']} | {r['cluster_precision']} |" for r in rows]
    steps = [r for r in rows if r.get("steps")]
    if steps:
        lines += ["", "OneID per step (records/s = all records / step seconds; peak MB = largest resident set "
                      "during the step):", "",
                  "| persons | step | seconds | records/s | peak MB |", "|---:|---|---:|---:|---:|"]
        lines += [f"| {r['persons']:,} | {k} | {v} | {round(r['records'] / max(v, 1e-9)):,} | "
                  f"{(r.get('step_peak_mb') or {}).get(k, float('nan')):,.0f} |"
                  for r in steps for k, v in r["steps"].items()]
    (out / "identity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

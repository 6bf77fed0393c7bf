"""``make bench`` for OneID: our resolution and plain Splink on the same records, timed and scored.

    python -m tests.benchmarks.identity --sizes 20000 200000 --splink-sizes 20000

For each size the sample is generated, ingested and cleaned (not timed), then each
contender runs in its own process (``peak_mb`` = that process's maximum resident set):

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
    ingest_all(paths, progress=False, log=None)
    clean_all(paths, progress=False)


def _run_oneid(data: Path) -> dict:
    from workbench.config import get_paths
    from workbench.identity import quality_against_truth, run_identity

    paths = get_paths(data, data.parent / "reports")
    t0 = time.perf_counter()
    res = run_identity(paths, evaluate=False)  # the quality is measured below, outside the clock
    seconds = time.perf_counter() - t0
    q = quality_against_truth(res, paths)
    return {"records": len(res.records), "seconds": seconds, "steps": res.seconds, "step_peak_mb": res.peak_mb,
            "pairwise": q["pairwise"], "clusters": q["clusters"]}


def _run_splink(data: Path) -> dict:
    import logging

    import pandas as pd
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    import splink.comparison_library as cl

    from workbench.config import get_paths
    from workbench.identity import IdentitySettings, Resolution, quality_against_truth
    from workbench.identity.__init__ import _tables
    from workbench.identity.observations import observe

    paths = get_paths(data, data.parent / "reports")
    s = IdentitySettings.from_yaml()
    t0 = time.perf_counter()
    tables = _tables(paths, s)
    ids, attrs, rids, offset = [], [], [], 0
    for name, df in tables.items():
        i, a, _ = observe(df, s.sources[name], s, record_offset=offset)
        ids.append(i), attrs.append(a), rids.append(df["record_id"])
        offset += len(df)
    obs = pd.concat(ids, ignore_index=True)
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
    channel = [name for name, df in tables.items() for _ in range(len(df))]
    records = pd.DataFrame({"record_id": pd.concat(rids, ignore_index=True).to_numpy(), "oneid": labels.astype(str),
                            "channel": channel, "anchored": False})
    res = Resolution(records, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}, pd.DataFrame())
    q = quality_against_truth(res, paths)
    return {"records": int(offset), "distinct_rows": int(len(distinct)), "seconds": seconds,
            "pairwise": q["pairwise"], "clusters": q["clusters"]}


def _child(args) -> int:
    data = Path(args.data)
    out = {"prepare": _prepare, "oneid": _run_oneid, "splink": _run_splink}[args.child]
    if args.child == "prepare":
        out(data, args.persons)
        result = {}
    else:
        result = out(data)
    result["peak_mb"] = round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1)
    print("RESULT " + json.dumps(result, default=float))
    return 0


def _spawn(kind: str, data: Path, persons: int) -> dict:
    return run_child("tests.benchmarks.identity", "--child", kind, "--data", data, "--persons", persons)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--splink-sizes", type=int, nargs="*", default=[20_000, 200_000])
    ap.add_argument("--child", choices=["prepare", "oneid", "splink"])
    ap.add_argument("--data")
    ap.add_argument("--persons", type=int, default=20_000)
    a = ap.parse_args(argv)
    if a.child:
        return _child(a)
    rows = []
    for persons in a.sizes:
        root = Path(tempfile.mkdtemp(prefix=f"wb-idbench-{persons}-"))
        data = root / "data"
        _spawn("prepare", data, persons)
        for kind in ("oneid", "splink"):
            if kind == "splink" and persons not in a.splink_sizes:
                continue
            r = _spawn(kind, data, persons)
            row = {"persons": persons, "method": kind, "records": r["records"], "seconds": round(r["seconds"], 1),
                   "records_per_s": round(r["records"] / r["seconds"]), "peak_mb": r["peak_mb"],
                   "precision": round(r["pairwise"]["precision"], 4), "recall": round(r["pairwise"]["recall"], 4),
                   "cluster_precision": round(r["clusters"]["cluster_precision"], 4), "steps": r.get("steps"),
                   "step_peak_mb": r.get("step_peak_mb")}
            rows.append(row)
            print(json.dumps(row), flush=True)
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    from workbench.config import get_paths

    out = get_paths().reports / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
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

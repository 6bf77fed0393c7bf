"""The Spark engine beside the local engine, per heavy stage: time and peak memory (``make bench-spark``).

    python -m tests.benchmarks.spark --persons 200000 --stages canonical customer_360 rfm --memory-limit-mb 20000
    python -m tests.benchmarks.spark --persons 1000000 --stages canonical customer_360 rfm --memory-limit-mb 20000 \
        --layer-engine spark --data DIR                           # 1M: the local layer does not fit 24 GB
    python -m tests.benchmarks.spark --persons 5000 --keep        # quick

A seeded sample of ``--persons`` is made and taken through ingest, clean, OneID, the canonical
layer and the customer 360 profile (local engine, not compared: their times are in ``make bench``).
Then each stage with a Spark implementation runs on both engines, each in a fresh process
(:mod:`tests.benchmarks.spark_stage`): ``seconds`` is the work, the Spark session's start is
``start_seconds`` apart, ``peak_mb`` is the process's largest resident set plus its JVM's.

- customer_360: local = the whole profile build (``build_customer_360``, every block); Spark =
  its heavy blocks (always-present columns, orders, events, sessions: ``spark_customer_aggregates``);
- rfm: purchases view + summary + scores + segments on both (``rfm_segments`` / ``spark_rfm_segments``);
- identity: the OneID stage (``run_identity``) on a copy of the cleaned channels; Spark = the graph
  and the pair scoring on Spark. ``partition`` must be the same on both (same OneIDs up to relabelling);
- canonical: the canonical stage (``run_canonical``) on a copy of the cleaned tables and registry;
  Spark = every table's rules as Spark SQL (``engine.spark_canonical``).

Results: ``reports/benchmarks/spark_<persons>.json`` and ``.md``. Timings on a shared machine are
inflated by the other load (the 1-minute load average is recorded per run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.child import run_child

ROOT = Path(__file__).parents[2]
PREPARE = ("sample", "ingest", "clean", "identity", "canonical", "customer_360")
COMPARED = ("identity", "canonical", "customer_360", "rfm")


def prepare(data: Path, persons: int, stages: tuple[str, ...] = PREPARE) -> list[dict]:
    """Sample → canonical layer → profile in ``data`` (each stage in its own process, as make bench).

    Each stage that ends leaves ``.bench-prepared-<stage>`` (with its measurement) in ``data``: a
    rerun on the same folder goes on from the first stage without one."""
    done = []
    for stage in stages:
        marker = data / f".bench-prepared-{stage}"
        if marker.exists():
            done.append(json.loads(marker.read_text(encoding="utf-8")))
            continue
        cmd = [sys.executable, "-m", "tests.benchmarks.stage", stage, "--data", str(data), "--persons", str(persons)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  prepared {stage:<13} {r['seconds']:>8.1f} s  peak {r['peak_mb']:>7,.0f} MB", flush=True)
        marker.write_text(json.dumps(r), encoding="utf-8")
        done.append(r)
    return done


def markdown(persons: int, rows: list[dict]) -> str:
    lines = [f"Spark engine (local[2]) beside the local engine, {persons:,} persons "
             "(2-core machine; the load average says how busy it was)", "",
             "| stage | engine | rows | seconds | Spark start (s) | peak memory (MB) | status | load (1 min) |",
             "|---|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['engine']} | {r['rows']:,} | {r['seconds']:.1f} | "
                     f"{r['start_seconds']:.1f} | {r['peak_mb']:,.0f} | {r.get('status', 'ok')} | {r['load_1min']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--data", default=None, help="a data folder to use (and keep); default: a temporary one")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--shuffle-partitions", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    ap.add_argument("--stages", nargs="+", choices=COMPARED, default=list(COMPARED), help="the stages to compare")
    ap.add_argument("--memory-limit-mb", type=float, default=0.0,
                    help="a stage whose process and JVM pass this is stopped and reported as over the limit")
    ap.add_argument("--layer-engine", choices=("local", "spark"), default="local",
                    help="the engine that builds the folder's canonical layer; spark: where the local one does not "
                         "fit (1M persons on 24 GB). Its build is then the canonical stage's Spark measurement, and "
                         "no profile is prepared (the RFM population is the registry's OneIDs)")
    a = ap.parse_args(argv)
    root = None
    if a.data:
        data = Path(a.data).resolve()
    else:
        root = Path(tempfile.mkdtemp(prefix=f"wb-bench-spark-{a.persons}-"))
        data = root / "data"
    common = ("--master", a.master, "--driver-memory", a.driver_memory, "--shuffle-partitions", a.shuffle_partitions,
              "--memory-limit-mb", a.memory_limit_mb)
    try:
        results, prepared = [], []
        if a.layer_engine == "local":
            prepared = prepare(data, a.persons)
        else:
            prepared = prepare(data, a.persons, PREPARE[:4])   # sample .. identity
            marker = data / ".bench-prepared-canonical-spark"
            if marker.exists():
                built = json.loads(marker.read_text(encoding="utf-8"))
            else:
                built = run_child("tests.benchmarks.spark_stage", "canonical", "--engine", "spark", "--in-place",
                                  "--data", data, *common)
                if built.get("status") != "ok":
                    raise SystemExit(f"the Spark engine could not build the canonical layer: {built}")
                marker.write_text(json.dumps(built), encoding="utf-8")
            print(f"canonical     spark  {built['rows']:>10,} rows  {built['seconds']:>7.1f} s  peak "
                  f"{built['peak_mb']:>7,.0f} MB  (the folder's layer)", flush=True)
        for stage in a.stages:
            for engine in ("local", "spark"):
                if a.layer_engine == "spark" and stage == "canonical" and engine == "spark":
                    results.append(built)   # measured above: it built the layer the other stages read
                    continue
                r = run_child("tests.benchmarks.spark_stage", stage, "--engine", engine, "--data", data, *common)
                results.append(r)
                print(f"{stage:<13} {engine:<6} {r['rows']:>10,} rows  {r['seconds']:>7.1f} s  "
                      f"(start {r['start_seconds']:.1f} s)  peak {r['peak_mb']:>7,.0f} MB  {r.get('status', 'ok')}"
                      + (f"  partition {r['partition']}" if "partition" in r else ""), flush=True)
    finally:
        if root is not None and not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    doc = {"persons": a.persons, "master": a.master, "driver_memory": a.driver_memory,
           "memory_limit_mb": a.memory_limit_mb, "layer_engine": a.layer_engine, "prepared": prepared,
           "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "results": results}
    out = ROOT / "reports" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"spark_{a.persons}.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    table = markdown(a.persons, results)
    (out / f"spark_{a.persons}.md").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

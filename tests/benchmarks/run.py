"""``make bench``: time sample generation, ingestion, cleaning, OneID, the canonical layer and the
customer 360 profile at several sizes.

Each stage runs in a fresh process (peak memory = that process's maximum resident set,
including its worker processes). Results go to ``reports/benchmarks/<name>.json`` and a
Markdown table to ``reports/benchmarks/<name>.md`` (copied into the README by hand, with
the date and machine). Sizes are persons of the embedded sample; rows are all channel rows.

    python -m tests.benchmarks.run                     # 20,000 and 200,000 persons
    python -m tests.benchmarks.run --sizes 2000 20000  # quicker
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.config import get_paths

STAGES = ("sample", "ingest", "clean", "identity", "canonical", "customer_360")


def run_stage(stage: str, data: Path, persons: int) -> dict:
    cmd = [sys.executable, "-m", "tests.benchmarks.stage", stage, "--data", str(data), "--persons", str(persons)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict]) -> str:
    lines = ["| persons | stage | rows | seconds | rows/s | peak memory (MB) |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['persons']:,} | {r['stage']} | {r['rows']:,} | {r['seconds']:.1f} | "
                     f"{r['rows_per_s']:,} | {r['peak_mb']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--name", default="foundation")
    ap.add_argument("--keep", action="store_true", help="keep the generated data folders")
    a = ap.parse_args(argv)
    results = []
    for persons in a.sizes:
        root = Path(tempfile.mkdtemp(prefix=f"wb-bench-{persons}-"))
        try:
            data = root / "data"
            for stage in STAGES:
                r = run_stage(stage, data, persons)
                r["persons"] = persons
                results.append(r)
                print(f"{persons:>9,} persons  {stage:<7} {r['rows']:>11,} rows  {r['seconds']:>7.1f} s  "
                      f"{r['rows_per_s']:>9,} rows/s  peak {r['peak_mb']:>7,.0f} MB", flush=True)
            ing = next(x for x in results if x["persons"] == persons and x["stage"] == "ingest")
            cl = next(x for x in results if x["persons"] == persons and x["stage"] == "clean")
            both = ing["seconds"] + cl["seconds"]
            results.append({"persons": persons, "stage": "ingest+clean", "rows": ing["rows"],
                            "seconds": round(both, 3), "rows_per_s": round(ing["rows"] / both),
                            "peak_mb": max(ing["peak_mb"], cl["peak_mb"])})
        finally:
            if not a.keep:
                shutil.rmtree(root, ignore_errors=True)
    growth = {}
    if len(a.sizes) >= 2:
        lo, hi = min(a.sizes), max(a.sizes)
        for stage in (*STAGES, "ingest+clean"):
            t = {r["persons"]: r["seconds"] for r in results if r["stage"] == stage}
            if t.get(lo) and t.get(hi):
                growth[stage] = round(math.log(t[hi] / t[lo]) / math.log(hi / lo), 2)
    doc = {"name": a.name, "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "workers": os.environ.get("WORKBENCH_WORKERS", "default"),
           "results": results,
           "time_growth_exponent": growth}
    out = get_paths().reports / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{a.name}.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    table = markdown(results)
    if growth:
        table += "\n\nTime growth exponent between the smallest and largest size (1.0 = linear): " + \
                 ", ".join(f"{k} {v}" for k, v in growth.items())
    (out / f"{a.name}.md").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)
    print(f"\nwritten: {out / (a.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

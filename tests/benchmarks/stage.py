"""Run one pipeline stage in this process and print its measurements as JSON (rows: the stage's
input rows; for the canonical layer the source records it is built from, for the profile its OneIDs).

Used by ``tests/benchmarks/run.py`` so that each stage's peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["sample", "ingest", "clean", "identity", "canonical", "customer_360"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    from workbench.config import get_paths

    # imports happen before the clock starts: a stage's time is its work, not Python start-up
    import pandera.pandas  # noqa: F401  (imported lazily by ingest)

    from workbench.canonical import run_canonical
    from workbench.clean import clean_all
    from workbench.customer360 import run_customer_360
    from workbench.identity import run_identity
    from workbench.ingest import ingest_all
    from workbench.sample import make_sample

    paths = get_paths(a.data, a.data + "/../reports")
    t0 = time.perf_counter()
    if a.stage == "sample":
        rows = make_sample(a.persons, seed=a.seed, out=paths.raw)["rows"]
    elif a.stage == "ingest":
        rows = int(ingest_all(paths, progress=False, force=True, log=None).totals()["read"])
    elif a.stage == "clean":
        rows = int(clean_all(paths, progress=False).summary()["rows_in"].sum())
    elif a.stage == "identity":
        rows = len(run_identity(paths, evaluate=False).records)
    elif a.stage == "canonical":   # every table of the layer, validated and written (rows = source records)
        rows = int(run_canonical(paths, log=None).manifest["rows"]["records"])
    else:
        rows = len(run_customer_360(paths))
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    json.dump({"stage": a.stage, "rows": rows, "seconds": round(seconds, 3),
               "rows_per_s": round(rows / seconds), "peak_mb": round(max(peak_mb, children_mb), 1)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

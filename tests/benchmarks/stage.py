"""Run one pipeline stage in this process and print its measurements as JSON.

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
    ap.add_argument("stage", choices=["sample", "ingest", "clean"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    from workbench.config import get_paths

    # imports happen before the clock starts: a stage's time is its work, not Python start-up
    import pandera.pandas  # noqa: F401  (imported lazily by ingest)

    from workbench.clean import clean_all
    from workbench.ingest import ingest_all
    from workbench.sample import make_sample

    paths = get_paths(a.data, a.data + "/../reports")
    t0 = time.perf_counter()
    if a.stage == "sample":
        rows = make_sample(a.persons, seed=a.seed, out=paths.raw)["rows"]
    elif a.stage == "ingest":
        rows = int(ingest_all(paths, progress=False, force=True, log=None).summary()["read"].sum())
    else:
        rows = int(clean_all(paths, progress=False).summary()["rows_in"].sum())
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    json.dump({"stage": a.stage, "rows": rows, "seconds": round(seconds, 3),
               "rows_per_s": round(rows / seconds), "peak_mb": round(max(peak_mb, children_mb), 1)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One heavy stage on one engine, in this process, on a data folder with a canonical layer and a
customer 360 profile; prints its measurements as one JSON line (used by ``tests/benchmarks/spark.py``).

    python -m tests.benchmarks.spark_stage rfm --engine spark --data DIR [--master local[2]]
    python -m tests.benchmarks.spark_stage canonical --engine spark --data SCRATCH   # writes SCRATCH's layer

The ``canonical`` stage builds the canonical layer (``run_canonical``) from the data folder's
cleaned tables and OneID registry, and writes it there: give it a scratch copy.

``seconds`` is the stage's work; for Spark the session's start is ``start_seconds``, apart.
``peak_mb`` is the largest resident set of this process and, for Spark, of the JVM it started
(sampled every 0.2 s from /proc), added together: the whole engine's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path


def _children_rss_mb() -> float:
    """Resident memory of this process's descendants (the JVM), from /proc."""
    me, parents = os.getpid(), {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(d.name)] = int(stat[1])
            except (OSError, IndexError, ValueError):
                continue
    mine, grew = {me}, True
    while grew:
        new = {p for p, pp in parents.items() if pp in mine and p not in mine}
        grew = bool(new)
        mine |= new
    total = 0
    for p in mine - {me}:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class _Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, _children_rss_mb())
            self.stop.wait(0.2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["canonical", "customer_360", "rfm"])
    ap.add_argument("--engine", choices=["local", "spark"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--shuffle-partitions", type=int, default=8)
    a = ap.parse_args()

    import pandas as pd

    from workbench.canonical import load_canonical
    from workbench.config import get_paths
    from workbench.customer360 import build_customer_360
    from workbench.segments import rfm as R

    paths = get_paths(a.data, a.data + "/../reports")
    layer = load_canonical(paths) if a.stage != "canonical" else None
    as_of = layer.data_end if layer is not None else None
    population = pd.read_parquet(paths.customer_360, columns=["oneid"])["oneid"] if a.stage == "rfm" else None
    m = R.load_segment_map()
    sampler = _Sampler()
    sampler.start()
    start = 0.0
    if a.engine == "spark":
        from workbench.engine import EngineSettings
        from workbench.engine.session import spark_session, stop_spark

        t = time.perf_counter()
        spark = spark_session(EngineSettings(engine="spark", master=a.master, driver_memory=a.driver_memory,
                                             shuffle_partitions=a.shuffle_partitions,
                                             conf={"spark.ui.enabled": "false"}))
        spark.sparkContext.setLogLevel("ERROR")
        spark.range(1).count()
        start = time.perf_counter() - t
    t0 = time.perf_counter()
    if a.stage == "canonical":
        from workbench.canonical import run_canonical

        eng = {"engine": "local"} if a.engine == "local" else EngineSettings(
            engine="spark", master=a.master, driver_memory=a.driver_memory, shuffle_partitions=a.shuffle_partitions,
            conf={"spark.ui.enabled": "false"})
        rows = run_canonical(paths, engine=eng, log=None).manifest["rows"]["records"]
    elif a.stage == "customer_360":
        if a.engine == "local":   # the profile's whole build (the Spark side computes its heavy blocks)
            rows = len(build_customer_360(layer))
        else:
            from workbench.engine.spark_360 import spark_customer_aggregates

            rows = len(spark_customer_aggregates(spark, paths.canonical,
                                                 session_gap_minutes=layer.analysis.session_gap_minutes))
    else:
        if a.engine == "local":
            rows = len(R.rfm_segments(layer.purchases(as_of=as_of), customer_id_col="oneid", datetime_col="ordered_at",
                                      monetary_value_col="net", order_id_col="order_key", as_of=as_of,
                                      customers=population, segment_map=m))
        else:
            from workbench.engine.spark_rfm import spark_rfm_segments

            rows = len(spark_rfm_segments(spark, paths.canonical, as_of=as_of, population=population, segment_map=m))
    seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + sampler.peak
    if a.engine == "spark":
        stop_spark()
    print("RESULT " + json.dumps({"stage": a.stage, "engine": a.engine, "rows": rows, "seconds": round(seconds, 3),
                                  "start_seconds": round(start, 3), "peak_mb": round(peak_mb, 1),
                                  "load_1min": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

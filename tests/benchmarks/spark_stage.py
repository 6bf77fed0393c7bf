"""One heavy stage on one engine, in this process, on a data folder with a canonical layer and a
customer 360 profile; prints its measurements as one JSON line (used by ``tests/benchmarks/spark.py``).

    python -m tests.benchmarks.spark_stage rfm --engine spark --data DIR [--master local[2]]
    python -m tests.benchmarks.spark_stage identity --engine spark --data DIR    # on a copy of the cleaned channels
    python -m tests.benchmarks.spark_stage canonical --engine spark --data DIR   # on a copy of cleaned + registry

The ``canonical`` stage builds the canonical layer (``run_canonical``) from a temporary copy of
the data folder's cleaned tables and OneID registry (the folder's own layer is left alone).

``seconds`` is the stage's work; for Spark the session's start is ``start_seconds``, apart.
``peak_mb`` is the largest resident set of this process and, for Spark, of the JVM it started
(sampled every 0.2 s from /proc), added together: the whole engine's memory (``jvm_peak_mb``: the
JVM's part).

``identity`` runs the OneID stage (``run_identity``, no quality evaluation) on a private copy of the
folder's cleaned channels and recorded settings (the folder's own OneIDs are not touched); it also
prints ``oneids`` and ``partition`` (a SHA-256 of each record's first record of its OneID): two
engines with the same partition give the same OneIDs up to relabelling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path


def _rss_mb(pid: int | str) -> float:
    """Resident memory of one process (MB; 0 when it is gone), from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children_rss_mb() -> float:
    """Resident memory of this process's descendants (the JVM)."""
    return sum(_rss_mb(p) for p in _descendants())


def _descendants() -> list[int]:
    """The process ids of this process's descendants (the JVM), from /proc."""
    me, parents = os.getpid(), {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine, grew = {me}, True
    while grew:
        new = {p for p, pp in parents.items() if pp in mine and p not in mine}
        grew = bool(new)
        mine |= new
    return sorted(mine - {me})


class _Sampler(threading.Thread):
    """Peak memory of the JVM (every 0.2 s). With ``limit_mb``, the process and its JVM together
    may not pass it: the stage is then stopped and reported as over the limit (``status``), so a
    stage that does not fit the machine is a measurement, not a machine-wide out-of-memory kill."""

    def __init__(self, limit_mb: float = 0.0, report: dict | None = None, scratch: list | None = None):
        super().__init__(daemon=True)
        self.peak, self.stop = 0.0, threading.Event()
        self.limit_mb, self.report, self.scratch = limit_mb, report or {}, scratch if scratch is not None else []
        self.t0 = time.perf_counter()

    def run(self):
        while not self.stop.is_set():
            children = _children_rss_mb()
            self.peak = max(self.peak, children)
            if self.limit_mb and children + _rss_mb("self") > self.limit_mb:
                self._over(children + _rss_mb("self"))
            self.stop.wait(0.2)

    def _over(self, now_mb: float) -> None:
        import signal

        for pid in _descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for d in self.scratch:
            shutil.rmtree(d, ignore_errors=True)
        print("RESULT " + json.dumps({**self.report, "rows": 0, "seconds": round(time.perf_counter() - self.t0, 3),
                                      "start_seconds": 0.0, "peak_mb": round(now_mb, 1),
                                      "status": f"over the {self.limit_mb:,.0f} MB limit",
                                      "load_1min": round(os.getloadavg()[0], 2)}), flush=True)
        os._exit(0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["canonical", "customer_360", "rfm", "identity"])
    ap.add_argument("--engine", choices=["local", "spark"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--shuffle-partitions", type=int, default=8)
    ap.add_argument("--memory-limit-mb", type=float, default=0.0,
                    help="stop the stage (reported as over the limit) when this process and its JVM pass it")
    ap.add_argument("--in-place", action="store_true",
                    help="canonical: build the data folder's own layer (kept), not a temporary copy's")
    a = ap.parse_args()

    import pandas as pd

    from workbench.canonical import load_canonical
    from workbench.config import get_paths
    from workbench.customer360 import run_customer_360
    from workbench.segments import rfm as R

    paths = get_paths(a.data, a.data + "/../reports")
    if a.stage == "identity":
        return _identity(a, paths)
    scratch = None
    if a.stage == "canonical" and not a.in_place:   # a copy of what the stage reads; it writes the copy's layer
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="wb-bench-canonical-"))
        shutil.copytree(paths.data, scratch / "data", ignore=shutil.ignore_patterns(
            "raw", "canonical", "ingested", "quarantine", "segments", "models", "customer_360.parquet"))
        paths = get_paths(scratch / "data", scratch / "reports").ensure()
    layer = load_canonical(paths) if a.stage != "canonical" else None
    as_of = layer.data_end if layer is not None else None
    population = None
    if a.stage == "rfm":   # the profile's OneIDs; without a profile (too large to build here), the registry's
        population = (pd.read_parquet(paths.customer_360, columns=["oneid"])["oneid"] if paths.customer_360.exists()
                      else pd.Series(pd.read_parquet(paths.registry, columns=["oneid"])["oneid"].unique(),
                                     name="oneid").sort_values(ignore_index=True))
    m = R.load_segment_map()
    sampler = _Sampler(a.memory_limit_mb, {"stage": a.stage, "engine": a.engine},
                       [scratch] if scratch is not None else [])
    sampler.start()
    start = 0.0
    from workbench.engine import EngineSettings

    settings = EngineSettings(engine="local")
    if a.engine == "spark":
        from workbench.engine.session import spark_session, stop_spark

        t = time.perf_counter()
        settings = EngineSettings(engine="spark", master=a.master, driver_memory=a.driver_memory,
                                  shuffle_partitions=a.shuffle_partitions, conf={"spark.ui.enabled": "false"})
        spark = spark_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        spark.range(1).count()
        start = time.perf_counter() - t
    t0 = time.perf_counter()
    if a.stage == "canonical":
        from workbench.canonical import run_canonical

        rows = run_canonical(paths, engine=settings, log=None).manifest["rows"]["records"]
    elif a.stage == "customer_360":
        # the stage on either engine: the whole profile, written (Spark: its heavy blocks by Spark SQL)
        rows = len(run_customer_360(paths, layer=layer, engine=settings))
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
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    print("RESULT " + json.dumps({"stage": a.stage, "engine": a.engine, "rows": rows, "seconds": round(seconds, 3),
                                  "start_seconds": round(start, 3), "peak_mb": round(peak_mb, 1), "jvm_peak_mb": round(sampler.peak, 1),
                                  "status": "ok",
                                  "load_1min": round(os.getloadavg()[0], 2)}))
    return 0


def _identity(a, paths) -> int:
    """The OneID stage on one engine, on a copy of the cleaned channels (see the module docstring)."""
    import hashlib
    import shutil
    import tempfile

    import numpy as np
    import pandas as pd

    from workbench.config import get_paths
    from workbench.identity import run_identity

    work = Path(tempfile.mkdtemp(prefix="wb-bench-identity-"))
    try:
        shutil.copytree(paths.data, work / "data", ignore=shutil.ignore_patterns("raw", "processed", "canonical"))
        copy = get_paths(work / "data", work / "reports").ensure()
        engine = {"engine": "local"} if a.engine == "local" else {
            "engine": "spark", "master": a.master, "driver_memory": a.driver_memory,
            "shuffle_partitions": a.shuffle_partitions, "conf": {"spark.ui.enabled": "false"}}
        sampler = _Sampler(a.memory_limit_mb, {"stage": "identity", "engine": a.engine}, [work])
        sampler.start()
        start = 0.0
        if a.engine == "spark":
            from workbench.engine import EngineSettings
            from workbench.engine.session import spark_session

            t = time.perf_counter()
            spark = spark_session(EngineSettings.from_dict(engine))
            spark.sparkContext.setLogLevel("ERROR")
            spark.range(1).count()
            start = time.perf_counter() - t
        t0 = time.perf_counter()
        res = run_identity(copy, evaluate=False, engine=engine)
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + sampler.peak
        oneid = res.records["oneid"].to_numpy()
        first = pd.Series(np.arange(len(oneid))).groupby(oneid).transform("min").to_numpy(np.int64)
        if a.engine == "spark":
            from workbench.engine.session import stop_spark

            stop_spark()
        print("RESULT " + json.dumps({
            "stage": "identity", "engine": a.engine, "rows": int(len(oneid)), "oneids": int(len(np.unique(oneid))),
            "partition": hashlib.sha256(first.tobytes()).hexdigest()[:16], "seconds": round(seconds, 3),
            "start_seconds": round(start, 3), "peak_mb": round(peak_mb, 1), "jvm_peak_mb": round(sampler.peak, 1),
            "status": "ok",
            "step_seconds": {k: round(v, 1) for k, v in res.seconds.items()},
            "load_1min": round(os.getloadavg()[0], 2)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

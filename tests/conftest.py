"""Fixtures for the unit tests. The session's sample itself is made by the root conftest.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from workbench.config import get_paths


@pytest.fixture(scope="session")
def session_raw() -> Path:
    """The raw folder of the test session's 2,000-person sample (read-only for tests)."""
    return Path(os.environ["WORKBENCH_DATA_DIR"]) / "raw"


def _built_once(name: str, build) -> Path:
    """``build(root)`` into a folder of the test session, once for the whole session: with
    pytest-xdist the first worker to ask builds it (holding a lock), the other waits and reuses it."""
    import fcntl

    root = Path(os.environ["WORKBENCH_TEST_SESSION_DIR"]) / "fixtures" / name
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "built").exists():
            shutil.rmtree(root, ignore_errors=True)   # a build that died half-way
            build(root)
            (root / "built").touch()
    return root


@pytest.fixture(scope="session")
def cleaned_paths(session_raw):
    """A private copy of the sample, ingested and cleaned once for the whole session (read-only for tests)."""
    from workbench.clean import clean_all
    from workbench.ingest import ingest_all

    def build(root: Path) -> None:
        shutil.copytree(session_raw, root / "data" / "raw")
        paths = get_paths(root / "data", root / "reports")
        ingest_all(paths, progress=False, log=None)
        clean_all(paths, progress=False)

    root = _built_once("pipeline", build)
    return get_paths(root / "data", root / "reports")


@pytest.fixture(scope="session")
def resolved_paths(cleaned_paths):
    """A private copy of the cleaned sample with OneIDs resolved and the canonical layer built
    (read-only for tests)."""
    from workbench.canonical import run_canonical
    from workbench.identity import run_identity

    def build(root: Path) -> None:
        shutil.copytree(cleaned_paths.data, root / "data", ignore=shutil.ignore_patterns("processed"))
        paths = get_paths(root / "data", root / "reports").ensure()
        run_identity(paths)
        run_canonical(paths, log=None)

    root = _built_once("resolved", build)
    return get_paths(root / "data", root / "reports")


@pytest.fixture(scope="session")
def layer(resolved_paths):
    """The canonical layer of the resolved sample."""
    from workbench.canonical import load_canonical

    return load_canonical(resolved_paths)


@pytest.fixture(scope="session")
def profile_360(layer):
    """The customer 360 profile of the resolved sample (all data)."""
    from workbench.customer360 import build_customer_360

    return build_customer_360(layer)


class PipelineRun:
    """A finished ``workbench run``: its data paths, run folder and manifest (as the CLI left them)."""

    def __init__(self, paths, run_dir: Path):
        import json
        from types import SimpleNamespace

        self.paths, self.run_dir = paths, run_dir
        self.manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        self.status = self.manifest["status"]
        self.index_path = run_dir / "index.html"
        self.notebooks = [SimpleNamespace(name=nb["name"], status=nb["status"],
                                          html_path=run_dir / nb["html"] if nb.get("html") else None)
                          for nb in self.manifest["notebooks"]]


_RUNS = ("sample", "cdnow", "lotus")


def _runs_root() -> Path:
    return Path(os.environ["WORKBENCH_TEST_SESSION_DIR"]) / "pipeline-runs"


def _start_pipeline_runs(root: Path) -> None:
    """Start every notebook through ``workbench run`` (the CLI, as the README shows it) on three
    data folders, each in its own process: the session's sample with the package's settings, and
    the two brands of tests/brands with their own mappings and identity settings and no other
    parameter. They start as soon as the tests are collected and run beside the unit tests; the
    tests that read them come last (see the root conftest.py).

    Started once per test session, by whichever process collects first (``make test`` runs two
    pytest-xdist workers): the ``started`` folder is the lock. Each run writes its exit code to
    ``rc`` when it ends and its process group id to ``pgid``, so any worker can wait for it and the
    session's last process can stop what is left (:func:`stop_pipeline_runs`)."""
    import subprocess
    import sys

    try:
        (root / "started").mkdir(parents=True)
    except FileExistsError:
        return   # another worker of this session started them
    from tests.brands import (BOUTIQUE_IDENTITY, BOUTIQUE_MAPPINGS, CDNOW_IDENTITY, CDNOW_MAPPINGS, write_boutique,
                              write_cdnow)

    session_raw = Path(os.environ["WORKBENCH_DATA_DIR"]) / "raw"
    brands = {
        "sample": (lambda raw: shutil.copytree(session_raw, raw, dirs_exist_ok=True), []),
        "cdnow": (write_cdnow, ["-p", f"mappings_dir={CDNOW_MAPPINGS}", "-p", f"identity_settings={CDNOW_IDENTITY}"]),
        "lotus": (lambda raw: write_boutique(raw, persons=800, seed=11),
                  ["-p", f"mappings_dir={BOUTIQUE_MAPPINGS}", "-p", f"identity_settings={BOUTIQUE_IDENTITY}"]),
    }
    for name, (write, params) in brands.items():
        folder = root / f"run-{name}"
        paths = get_paths(folder / "data", folder / "reports")
        write(paths.raw)
        cmd = [sys.executable, "-m", "workbench.cli", "run", "--data-dir", str(paths.data), "--reports-dir",
               str(paths.reports), "--run-id", name, "--quiet", "--jobs", "1", *params]
        # --jobs 1: three runs already share two cores with the unit tests (two notebooks at once
        # in each would put up to six kernels and three worker start-ups on the machine)
        wrapper = ("import subprocess, sys, os; code = subprocess.call(sys.argv[2:]); "
                   "open(sys.argv[1] + '.tmp', 'w').write(str(code)); os.replace(sys.argv[1] + '.tmp', sys.argv[1])")
        env = {**os.environ, "MPLBACKEND": "agg", "WORKBENCH_WORKERS": "1"}
        with open(folder / "run.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen([sys.executable, "-c", wrapper, str(folder / "rc"), *cmd], stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).resolve().parents[1],
                                    start_new_session=True)
        (folder / "pgid").write_text(str(proc.pid), encoding="utf-8")


def stop_pipeline_runs() -> None:
    """Kill what is left of the session's pipeline runs (their whole process groups: kernels too)."""
    import signal

    if not os.environ.get("WORKBENCH_TEST_SESSION_DIR"):
        return
    for name in _RUNS:
        folder = _runs_root() / f"run-{name}"
        if (folder / "pgid").exists() and not (folder / "rc").exists():
            try:
                os.killpg(int((folder / "pgid").read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def pytest_collection_modifyitems(session, config, items):
    if any("pipeline_runs" in getattr(item, "fixturenames", ()) for item in items):
        _start_pipeline_runs(_runs_root())


def pytest_sessionfinish(session, exitstatus):
    if not hasattr(session.config, "workerinput"):   # the session's own process (xdist's controller)
        stop_pipeline_runs()                         # never leave a run behind


@pytest.fixture(scope="session")
def pipeline_runs():
    """The three pipeline runs started after collection (see :func:`_start_pipeline_runs`), waited for."""
    import time

    root = _runs_root()
    _start_pipeline_runs(root)   # a no-op when collection started them
    out, deadline = {}, time.monotonic() + 1500
    for name in _RUNS:
        folder = root / f"run-{name}"
        while not (folder / "rc").exists():
            assert time.monotonic() < deadline, f"workbench run of {name} did not end in 25 min"
            time.sleep(0.5)
        code = int((folder / "rc").read_text())
        assert code == 0, f"workbench run of {name} failed:\n" + (folder / "run.log").read_text(encoding="utf-8")[-3000:]
        paths = get_paths(folder / "data", folder / "reports")
        out[name] = PipelineRun(paths, paths.reports / name)
    return out


# The test sample is tiny: Spark's fixed cost per query (planning, code generation, shuffle
# stages) is what the tests pay, so they run interpreted (no whole-stage or expression code
# generation: Spark's own test setting factoryMode=NO_CODEGEN) and without adaptive re-planning,
# which only pay off on real data. Measured: tests/test_spark_engine.py 146.8 s -> 117.4 s.
# Results do not depend on them; without adaptive coalescing every ORDER BY writes two part
# files, so the tests also see what a large channel does (batches over several part files).
_SMALL_DATA_CONF = {k: v for k, v in (kv.split("=", 1) for kv in os.environ.get(
    "WORKBENCH_TEST_SPARK_CONF", "spark.sql.codegen.wholeStage=false,spark.sql.codegen.factoryMode=NO_CODEGEN,"
    "spark.sql.adaptive.enabled=false").split(",") if kv)}


@pytest.fixture(scope="session")
def spark_engine():
    """The engine settings of the tests' Spark session: local[2], 2 shuffle partitions, 1 GB driver,
    UI off; or the Spark Connect server named by ``WORKBENCH_TEST_SPARK_REMOTE``
    (``make test-spark-connect``). Tests that run a stage with ``engine: spark`` pass these."""
    from workbench.engine import EngineSettings

    remote = os.environ.get("WORKBENCH_TEST_SPARK_REMOTE")
    if remote:
        return EngineSettings(engine="spark", remote=remote, shuffle_partitions=2, app_name="workbench-tests")
    return EngineSettings(engine="spark", master="local[2]", shuffle_partitions=2, driver_memory="1g",
                          app_name="workbench-tests", conf={"spark.ui.enabled": "false", **_SMALL_DATA_CONF})


@pytest.fixture(scope="session")
def spark(spark_engine):
    """The Spark session of :func:`spark_engine` for the Spark engine's equality tests, started
    once and stopped when the session ends. Without Java or pyspark the tests fail with what to
    install: the Spark engine is part of what ``make test`` checks."""
    from workbench.engine.session import SparkUnavailable, spark_session, stop_spark

    try:
        session = spark_session(spark_engine)
    except SparkUnavailable as exc:
        pytest.fail(f"The Spark engine's tests cannot run: {exc}", pytrace=False)
    if not spark_engine.remote:
        session.sparkContext.setLogLevel("ERROR")
    yield session
    stop_spark()

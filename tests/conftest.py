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


@pytest.fixture(scope="session")
def cleaned_paths(session_raw, tmp_path_factory):
    """A private copy of the sample, ingested and cleaned once for the whole session."""
    from workbench.clean import clean_all
    from workbench.ingest import ingest_all

    root = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(session_raw, root / "data" / "raw")
    paths = get_paths(root / "data", root / "reports")
    ingest_all(paths, progress=False, log=None)
    clean_all(paths, progress=False)
    return paths


@pytest.fixture(scope="session")
def resolved_paths(cleaned_paths, tmp_path_factory):
    """A private copy of the cleaned sample with OneIDs resolved and the canonical layer built
    (read-only for tests)."""
    from workbench.canonical import run_canonical
    from workbench.identity import run_identity

    root = tmp_path_factory.mktemp("resolved")
    shutil.copytree(cleaned_paths.data, root / "data", ignore=shutil.ignore_patterns("processed"))
    paths = get_paths(root / "data", root / "reports").ensure()
    run_identity(paths)
    run_canonical(paths, log=None)
    return paths


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


_RUNS: dict = {}


def _start_pipeline_runs(root: Path) -> None:
    """Start every notebook through ``workbench run`` (the CLI, as the README shows it) on three
    data folders, each in its own process: the session's sample with the package's settings, and
    the two brands of tests/brands with their own mappings and identity settings and no other
    parameter. They start as soon as the tests are collected and run beside the unit tests, which
    leave the second core idle: ``make test`` stays within its time on two cores."""
    import subprocess
    import sys

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
        log = open(folder / "run.log", "w", encoding="utf-8")
        env = {**os.environ, "MPLBACKEND": "agg", "WORKBENCH_WORKERS": "1"}
        _RUNS[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        cwd=Path(__file__).resolve().parents[1]), paths, folder, log)


def pytest_collection_modifyitems(session, config, items):
    if any("pipeline_runs" in getattr(item, "fixturenames", ()) for item in items) and not _RUNS:
        root = Path(os.environ["WORKBENCH_TEST_SESSION_DIR"]) / "pipeline-runs"
        root.mkdir(parents=True, exist_ok=True)
        _start_pipeline_runs(root)


def pytest_sessionfinish(session, exitstatus):
    for proc, _paths, _folder, log in _RUNS.values():  # never leave a run behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def pipeline_runs(tmp_path_factory):
    """The three pipeline runs started after collection (see :func:`_start_pipeline_runs`), waited for."""
    if not _RUNS:   # the fixture was asked for outside a normal collection
        _start_pipeline_runs(tmp_path_factory.mktemp("pipeline-runs"))
    out = {}
    for name, (proc, paths, folder, log) in _RUNS.items():
        code = proc.wait(timeout=1500)
        log.flush()
        assert code == 0, f"workbench run of {name} failed:\n" + (folder / "run.log").read_text(encoding="utf-8")[-3000:]
        out[name] = PipelineRun(paths, paths.reports / name)
    return out


@pytest.fixture(scope="session")
def spark():
    """A Spark session (local[2], 2 shuffle partitions, 1 GB driver) for the Spark engine's equality
    tests, started once and stopped when the session ends. Without Java or pyspark the tests fail
    with what to install: the Spark engine is part of what ``make test`` checks."""
    from workbench.engine import EngineSettings
    from workbench.engine.session import SparkUnavailable, spark_session, stop_spark

    settings = EngineSettings(engine="spark", master="local[2]", shuffle_partitions=2, driver_memory="1g",
                              app_name="workbench-tests", conf={"spark.ui.enabled": "false"})
    try:
        session = spark_session(settings)
    except SparkUnavailable as exc:
        pytest.fail(f"The Spark engine's tests cannot run: {exc}", pytrace=False)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    stop_spark()

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

"""Test session set-up, shared by the unit tests (tests/) and nbval (notebooks/).

Before anything runs, the session generates a small sample (2,000 persons) into a temporary
data folder and points WORKBENCH_DATA_DIR / WORKBENCH_REPORTS_DIR at it. Kernels started by
nbval inherit the environment, so every notebook's default parameters run on that sample
and never touch the user's data/ or reports/.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TEST_PERSONS = int(os.environ.get("WORKBENCH_TEST_PERSONS", "2000"))
TEST_SEED = 7


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "agg")
    if os.environ.get("WORKBENCH_TEST_SESSION_DIR"):
        return  # nested pytest (e.g. a test that runs pytest) reuses the outer session's data
    root = Path(tempfile.mkdtemp(prefix="workbench-test-"))
    config._workbench_tmp = root
    os.environ["WORKBENCH_TEST_SESSION_DIR"] = str(root)
    os.environ["WORKBENCH_DATA_DIR"] = str(root / "data")
    os.environ["WORKBENCH_REPORTS_DIR"] = str(root / "reports")
    # the session's own pseudonymisation key: tests never read or create the user's key
    os.environ["WORKBENCH_KEY_FILE"] = str(root / "pseudonym.key")
    from workbench.sample import make_sample

    make_sample(TEST_PERSONS, seed=TEST_SEED, out=root / "data" / "raw")


def pytest_unconfigure(config):
    root = getattr(config, "_workbench_tmp", None)
    if root is not None and not os.environ.get("WORKBENCH_KEEP_TEST_DATA"):
        shutil.rmtree(root, ignore_errors=True)

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

import pytest

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

    from workbench.privacy.keys import load_key

    make_sample(TEST_PERSONS, seed=TEST_SEED, out=root / "data" / "raw")
    load_key(create=True, log=None)   # made once, before pytest-xdist starts its workers


def pytest_unconfigure(config):
    root = getattr(config, "_workbench_tmp", None)
    if root is not None and not os.environ.get("WORKBENCH_KEEP_TEST_DATA"):
        shutil.rmtree(root, ignore_errors=True)


# ``make test`` runs two pytest-xdist workers (``-n 2 --dist loadscope --no-loadscope-reorder``)
# with the scopes defined here: each test file is one unit of work (its module fixtures are built
# once), the notebooks are one unit (nbval runs them in order in one kernel each, on the session's
# sample, each reading what the one before it wrote), the Spark tests are one unit (one Spark
# session). Units are handed out in the order of the sorted items: the two long units first, the
# files that read the session's pipeline runs (started in the background after collection, see
# tests/conftest.py) last, so neither worker waits for them while other work is left.
_SPARK_FILES = ("tests/test_spark_engine.py", "tests/test_spark_identity.py", "tests/test_spark_canonical.py")


def _unit(nodeid: str) -> tuple[int, str]:
    path = nodeid.split("::", 1)[0]
    if path in _SPARK_FILES:
        return 0, "spark"
    if path.startswith("notebooks/"):
        return 1, "notebooks"
    return 2, path


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    reads_runs = {it.nodeid.split("::", 1)[0] for it in items if "pipeline_runs" in getattr(it, "fixturenames", ())}
    rank = {id(it): (3 if it.nodeid.split("::", 1)[0] in reads_runs else _unit(it.nodeid)[0]) for it in items}
    items.sort(key=lambda it: rank[id(it)])   # stable: file order and test order within a file are kept


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with this session's units (see above) as the scopes."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)[1]

    return UnitScheduling(config, log)

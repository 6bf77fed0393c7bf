"""Model features per cutoff, computed once and shared: the churn and propensity notebooks (and
reruns) read the same snapshot instead of rebuilding the profile at every cutoff.

The store is a cache, not a table of the pipeline: ``<data>/interim/feature_store/<key>/`` holds
one Parquet file per cutoff (``2026-06-18.parquet``), where ``<key>`` is a fingerprint of every
input of :func:`~workbench.models.dataset.build_features` — the canonical layer's files (tables,
manifest and the settings it records) and the workbench package itself (code and settings).
Any change to either gives a new key, so a stored snapshot is never stale; deleting the folder
changes nothing but time. Snapshots of other keys are removed when a store is opened, except
those a live process still uses: every open store holds a shared lock on ``<key>.use`` beside its
folder, and a folder is removed only under an exclusive lock on its ``.use`` file.

Two notebooks may ask for the same cutoff at the same time (the runner runs 07 and 08
concurrently): each cutoff is built under an exclusive file lock by whichever asks first, written
to a temporary file and renamed into place, and the other reads it — one writer per file.
While a cutoff is being built by another process, :meth:`FeatureStore.features` builds the
cutoffs nobody holds first and comes back to it.

Example:
    >>> store = FeatureStore(load_canonical())                         # doctest: +SKIP
    >>> feats = store.features(["2026-03-20", "2026-06-18"])           # doctest: +SKIP
    >>> feats["2026-06-18"].attrs["cutoff"]                            # doctest: +SKIP
    '2026-06-18T00:00:00+00:00'
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import PACKAGE_DIR
from ..fingerprint import digest, package_tree_hash, path_content_hash
from ..timeutil import to_utc
from .dataset import build_features

__all__ = ["FeatureStore", "cutoff_key"]

#: Folder of the store below the data folder's ``interim``.
STORE_DIR = "feature_store"


def cutoff_key(cutoff: Any) -> str:
    """The store's name of a cutoff: its UTC date (cutoffs are whole days).

    >>> cutoff_key("2026-06-18"), cutoff_key(pd.Timestamp("2026-06-18", tz="UTC"))
    ('2026-06-18', '2026-06-18')
    """
    c = to_utc(cutoff)
    if c is None or c != c.normalize():
        raise ValueError(f"The 'cutoff' parameter must be a date (midnight UTC). Got {cutoff!r} instead.")
    return c.strftime("%Y-%m-%d")


class FeatureStore:
    """Features of one canonical layer at any cutoff, built once per input fingerprint.

    ``root`` defaults to ``<data>/interim/feature_store``; ``build`` (default
    :func:`~workbench.models.dataset.build_features`) makes one cutoff's frame. ``engine``
    (:class:`~workbench.engine.EngineSettings`; default local): with ``engine: spark`` the order
    features of every cutoff to build are computed by Spark SQL in one pass
    (:func:`~workbench.engine.spark_features.spark_rfm_features`) and handed to ``build`` as
    ``order_features``; the other features are built here. The snapshots are the same either way
    (the equality tests pin the engines), so the engine is not part of the store's key.
    ``stats`` counts cutoffs ``built`` here, ``read`` from disk (built earlier or by another
    process) and seconds ``waited`` for another process's lock.
    """

    def __init__(self, layer: Any, *, root: str | os.PathLike | None = None,
                 build: Callable[..., pd.DataFrame] | None = None, engine: Any = None) -> None:
        self.layer = layer
        self.engine = engine
        self._orders: dict[str, pd.DataFrame] = {}   # order features computed by Spark, per cutoff key
        self.root = Path(root) if root is not None else layer.paths.interim / STORE_DIR
        self._build = build or build_features
        self.key = digest({"canonical": path_content_hash(layer.paths.canonical),
                           "package": package_tree_hash(PACKAGE_DIR)})[:20]
        self.folder = self.root / self.key
        self.stats = {"built": 0, "read": 0, "waited": 0.0}
        self._in_use: Any = None  # shared lock on <key>.use while this store is open

    def close(self) -> None:
        """Release this store's claim on its folder (done at exit anyway)."""
        if self._in_use is not None:
            self._in_use.close()
            self._in_use = None

    def _claim(self) -> None:
        """Hold a shared lock on ``<key>.use`` (other keys' stores then leave the folder alone)."""
        if self._in_use is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._in_use = open(self.root / f"{self.key}.use", "a+")
            fcntl.flock(self._in_use, fcntl.LOCK_SH)

    def path(self, cutoff: Any) -> Path:
        """Where the snapshot at ``cutoff`` is (or will be) stored."""
        return self.folder / f"{cutoff_key(cutoff)}.parquet"

    def features(self, cutoffs: Iterable[Any], *, progress: Callable[[str], None] | None = None
                 ) -> dict[str, pd.DataFrame]:
        """``{cutoff_key: features}`` for every cutoff, read when stored, built (and stored) when not."""
        keys = list(dict.fromkeys(cutoff_key(c) for c in cutoffs))
        self._claim()
        self._prune()
        self.folder.mkdir(parents=True, exist_ok=True)
        out: dict[str, pd.DataFrame] = {}
        self._orders = self._spark_order_features([k for k in keys if not self.path(k).exists()])
        pending = list(keys)
        blocking = False
        while pending:
            held = []
            for k in pending:
                frame = self._get(k, blocking=blocking, progress=progress, done=len(out), total=len(keys))
                if frame is None:
                    held.append(k)  # another process is building it: do the others first
                else:
                    out[k] = frame
            pending, blocking = held, True
        return {k: out[k] for k in keys}

    # ------------------------------------------------------------------ internals
    def _get(self, key: str, *, blocking: bool, progress, done: int, total: int) -> pd.DataFrame | None:
        target = self.folder / f"{key}.parquet"
        if target.exists():
            self.stats["read"] += 1
            return _read(target)
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{key}.lock", "a+") as lock:
            t0 = time.perf_counter()
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                return None
            self.stats["waited"] += time.perf_counter() - t0
            try:
                if target.exists():  # built by another process while we waited
                    self.stats["read"] += 1
                    return _read(target)
                if progress:
                    progress(f"[{done + 1}/{total}] features at {key} ...")
                given = self._orders.pop(key, None)
                frame = (self._build(self.layer, cutoff=key) if given is None
                         else self._build(self.layer, cutoff=key, order_features=given))
                tmp = target.with_name(f".{key}.{os.getpid()}.tmp")
                target.parent.mkdir(parents=True, exist_ok=True)
                frame.to_parquet(tmp)
                os.replace(tmp, target)
                self.stats["built"] += 1
                return _read(target)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _spark_order_features(self, keys: list[str]) -> dict[str, pd.DataFrame]:
        """The order features of the cutoffs ``keys`` from the Spark engine (none on the local engine)."""
        if not keys or self.engine is None or not self.engine.is_spark or not self.layer.has("orders"):
            return {}
        from ..engine.session import spark_session
        from ..engine.spark_features import spark_rfm_features
        from ..engine.spark_io import temporary_views

        spark = spark_session(self.engine)
        with temporary_views(spark):
            got = spark_rfm_features(spark, self.layer.paths.canonical, cutoffs=keys)
        return {cutoff_key(c): frame for c, frame in got.items()}

    def _prune(self) -> None:
        """Remove snapshots of other fingerprints that no open store uses (inputs that no longer exist)."""
        for other in sorted(self.root.iterdir()):
            if not other.is_dir() or other.name == self.key:
                continue
            with open(self.root / f"{other.name}.use", "a+") as use:
                try:
                    fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process reads or writes it
                shutil.rmtree(other, ignore_errors=True)  # (the empty .use file stays: unlinking it could
                # let a store that opened it a moment ago lose its claim)


def _read(path: Path) -> pd.DataFrame:
    """A stored snapshot exactly as :func:`build_features` returned it (attrs included)."""
    frame = pd.read_parquet(path)
    frame.index = frame.index.astype("string")
    frame.index.name = "oneid"
    return frame

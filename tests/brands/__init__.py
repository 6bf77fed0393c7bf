"""Two brands shaped unlike the embedded sample, for end-to-end tests of the workbench.

Each brand is a writer of raw exports (with ground truth under ``<raw>/_truth/``), a folder
of channel mappings, identity settings, and an independent revenue count straight from the
raw files:

=====================  ==============================  ===============================================
brand                  writer -> returns               mappings / identity settings
=====================  ==============================  ===============================================
CDNOW (US retailer)    :func:`write_cdnow` (raw_dir)   ``cdnow/mappings/`` (:data:`CDNOW_MAPPINGS`),
                       -> path, rows, customers, ...   ``cdnow/identity.yaml`` (:data:`CDNOW_IDENTITY`);
                                                       revenue: :func:`cdnow_raw_revenue` (USD)
Lotus Tea House        :func:`write_boutique`          ``boutique/mappings/`` (:data:`BOUTIQUE_MAPPINGS`),
(Chinese tea shops)    (raw_dir, persons=800,          ``boutique/identity.yaml``
                       seed=11) -> files, rows, ...    (:data:`BOUTIQUE_IDENTITY`); revenue:
                                                       :func:`raw_revenue` (CNY), receipts:
                                                       :func:`till_receipts`
=====================  ==============================  ===============================================

:func:`run_pipeline` runs ingest -> clean -> identity -> canonical on a raw folder with a
brand's mappings and identity settings.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as d:
    ...     info = write_boutique(Path(d), persons=60, seed=3)
    ...     print(sorted(info["files"]) == sorted(FILES), raw_revenue(Path(d)) > 0)
    True True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .boutique_writer import (BOUTIQUE_IDENTITY, BOUTIQUE_MAPPINGS, DELIBERATE, FILES, TILL_ENCODING, raw_revenue,
                              till_receipts, write_boutique)
from .cdnow_writer import (CDNOW_CHANNEL, CDNOW_FILE, CDNOW_IDENTITY, CDNOW_MAPPINGS, USD_TO_CNY, cdnow_raw_revenue,
                           read_master, write_cdnow)

__all__ = ["BOUTIQUE_IDENTITY", "BOUTIQUE_MAPPINGS", "DELIBERATE", "FILES", "TILL_ENCODING", "raw_revenue",
           "till_receipts", "write_boutique", "CDNOW_CHANNEL", "CDNOW_FILE", "CDNOW_IDENTITY", "CDNOW_MAPPINGS",
           "USD_TO_CNY", "cdnow_raw_revenue", "read_master", "write_cdnow", "PipelineRun", "run_pipeline"]


@dataclass
class PipelineRun:
    """What one run of the four stages left behind."""

    paths: object                 # workbench.config.Paths
    ingest: object                # workbench.ingest.IngestResult
    clean: object                 # workbench.clean.CleanResult
    identity: object              # workbench.identity.Resolution
    layer: object                 # workbench.canonical.CanonicalLayer
    seconds: dict = field(default_factory=dict)


def run_pipeline(paths, mappings_dir: str | Path, identity_settings: str | Path) -> PipelineRun:
    """Ingest (with the brand's mappings), clean, resolve identities (with the brand's identity
    settings) and build the canonical layer on ``paths`` (``paths.raw`` holds the exports)."""
    from workbench.canonical import run_canonical
    from workbench.clean import clean_all
    from workbench.identity import run_identity
    from workbench.ingest import ingest_all
    from workbench.mapping import load_mappings

    seconds = {}
    t = time.perf_counter()
    ing = ingest_all(paths, mappings=load_mappings(mappings_dir), progress=False, log=None)
    seconds["ingest"], t = time.perf_counter() - t, time.perf_counter()
    cl = clean_all(paths, progress=False)
    seconds["clean"], t = time.perf_counter() - t, time.perf_counter()
    res = run_identity(paths, settings=identity_settings)
    seconds["identity"], t = time.perf_counter() - t, time.perf_counter()
    layer = run_canonical(paths, log=None)
    seconds["canonical"] = time.perf_counter() - t
    return PipelineRun(paths, ing, cl, res, layer, {k: round(v, 2) for k, v in seconds.items()})

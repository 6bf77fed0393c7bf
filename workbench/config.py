"""Every path the workbench reads or writes, defined once.

The layout follows the layered-data convention::

    data/raw/          input as delivered; the pipeline never modifies it
    data/raw/_truth/   ground truth of the synthetic sample (evaluation code only)
    data/interim/      Parquet written by ingest and clean (+ quarantine/, metrics/)
    data/processed/    Parquet for analysis (customer 360, scores, ...)
    reports/<run_id>/  executed notebooks, HTML, manifest.json, exports

Two environment variables move the data and report folders, which is how the
test session points every notebook at its own small sample without touching the
user's ``data/``:

- ``WORKBENCH_DATA_DIR`` (default ``<project>/data``)
- ``WORKBENCH_REPORTS_DIR`` (default ``<project>/reports``)

Example:
    >>> from workbench.config import get_paths
    >>> paths = get_paths()
    >>> paths.raw.name
    'raw'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout that holds ``pyproject.toml`` (editable install), else the cwd."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd()


@dataclass(frozen=True)
class Paths:
    """Folders of one workbench data area. Build it with :func:`get_paths`."""

    data: Path
    reports: Path

    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def truth(self) -> Path:
        return self.raw / "_truth"

    @property
    def interim(self) -> Path:
        return self.data / "interim"

    @property
    def ingested(self) -> Path:
        """One Parquet per channel as ingested (canonical columns, raw values)."""
        return self.interim / "ingested"

    @property
    def cleaned(self) -> Path:
        """One Parquet per channel after standardisation and dedupe."""
        return self.interim / "cleaned"

    @property
    def quarantine(self) -> Path:
        return self.interim / "quarantine"

    @property
    def metrics(self) -> Path:
        """Per-stage row counts and timings; the runner copies them into the manifest."""
        return self.interim / "metrics"

    @property
    def quality(self) -> Path:
        return self.interim / "quality"

    @property
    def ingest_ledger(self) -> Path:
        """Checksums of files already ingested (incremental ingestion)."""
        return self.interim / "ingest_ledger.json"

    @property
    def processed(self) -> Path:
        return self.data / "processed"

    # one spelling of every processed table (each has one writer; see data/README.md)
    @property
    def registry(self) -> Path:
        """record -> OneID, written by the identity stage (also the registry that keeps ids stable)."""
        return self.processed / "oneid_records.parquet"

    @property
    def identity_links(self) -> Path:
        return self.processed / "identity_links.parquet"

    @property
    def canonical(self) -> Path:
        """The canonical customer layer: profiles, orders, events, consents ... keyed by OneID."""
        return self.processed / "canonical"

    @property
    def customer_360(self) -> Path:
        return self.processed / "customer_360.parquet"

    @property
    def segments(self) -> Path:
        """RFM segments, clusters, engagement groups (and their snapshots)."""
        return self.processed / "segments"

    @property
    def models(self) -> Path:
        return self.processed / "models"

    @property
    def notebooks(self) -> Path:
        return project_root() / "notebooks"

    def ensure(self) -> "Paths":
        """Create every output folder (never ``raw``'s content)."""
        for p in (self.raw, self.ingested, self.cleaned, self.quarantine, self.metrics,
                  self.quality, self.processed, self.reports):
            p.mkdir(parents=True, exist_ok=True)
        return self


def get_paths(data_dir: str | os.PathLike | None = None,
              reports_dir: str | os.PathLike | None = None) -> Paths:
    """Resolve the data and report folders.

    Explicit arguments win, then ``WORKBENCH_DATA_DIR`` / ``WORKBENCH_REPORTS_DIR``,
    then ``<project>/data`` and ``<project>/reports``.
    """
    root = project_root()
    data = Path(data_dir or os.environ.get("WORKBENCH_DATA_DIR") or root / "data")
    reports = Path(reports_dir or os.environ.get("WORKBENCH_REPORTS_DIR") or root / "reports")
    return Paths(data=data.resolve(), reports=reports.resolve())


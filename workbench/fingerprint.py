"""Fingerprints of notebook runs: what a notebook's result depends on, as one SHA-256.

A notebook's fingerprint (see :func:`notebook_fingerprint`) covers

- the notebook file's bytes,
- the parameters it receives (after filtering to its ``parameters`` cell), and the
  content of every file or folder a string parameter names,
- the kernel name, Python and the versions of the analysis packages,
- the workbench package: its version and a hash of every file in it (code, settings and
  channel mappings; a git commit alone misses a dirty tree) but the runner's own modules,
- its declaration in ``pipeline.yaml``, and
- the SHA-256 of every file it reads (:mod:`workbench.pipeline` globs).

Checksums are cached in ``<data>/.workbench-checksums.json`` by path, size, mtime,
ctime and inode, so an unchanged 300 MB data folder is "hashed" in milliseconds.

Example:
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "a.txt").write_text("hello")
    >>> cache = ChecksumCache(d / ".workbench-checksums.json")
    >>> cache.sha256(d / "a.txt")[:12]
    '2cf24dba5fb0'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKSUM_CACHE_NAME",
    "ChecksumCache",
    "digest",
    "notebook_fingerprint",
    "package_tree_hash",
    "path_content_hash",
]

CHECKSUM_CACHE_NAME = ".workbench-checksums.json"
_CACHE_VERSION = 1
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


def digest(value: Any) -> str:
    """SHA-256 (hex) of a JSON-serialisable value, keys sorted: equal data, equal digest.

    Example:
        >>> digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1})
        True
    """
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ChecksumCache:
    """SHA-256 of files, remembered by (size, mtime, ctime, inode) in one small JSON file.

    The cache also keeps small derived facts keyed by a content hash (``memo``), such as
    the parameter names of a notebook. :meth:`save` writes it atomically; a missing or
    unreadable file starts an empty cache.

    Example:
        >>> cache = ChecksumCache(Path("/nonexistent/.workbench-checksums.json"))
        >>> cache.memo("k", lambda: 42), cache.memo("k", lambda: 0)
        (42, 42)
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._files: dict[str, list[Any]] = {}
        self._memo: dict[str, Any] = {}
        self._dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == _CACHE_VERSION:
            self._files = data.get("files") or {}
            self._memo = data.get("memo") or {}

    def sha256(self, path: Path) -> str:
        """The file's SHA-256 (hex); read only when its size, times or inode changed."""
        path = Path(path)
        st = path.stat()
        key = str(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        hit = self._files.get(key)
        if hit is not None and hit[:4] == stamp:
            return str(hit[4])
        with open(path, "rb") as fh:
            value = hashlib.file_digest(fh, "sha256").hexdigest()
        self._files[key] = [*stamp, value]
        self._dirty = True
        return value

    def checksums(self, root: Path, relpaths: Iterable[str]) -> dict[str, str]:
        """``{relpath: sha256}`` of files below ``root`` (files that vanished are left out)."""
        out: dict[str, str] = {}
        for rel in relpaths:
            try:
                out[rel] = self.sha256(Path(root) / rel)
            except FileNotFoundError:
                continue
        return out

    def memo(self, key: str, compute: Any) -> Any:
        """``compute()`` once per ``key`` (a content hash); the JSON result is kept in the cache."""
        if key not in self._memo:
            self._memo[key] = compute()
            self._dirty = True
        return self._memo[key]

    def save(self) -> None:
        """Write the cache when something changed (entries of deleted files are dropped)."""
        if not self._dirty:
            return
        files = {k: v for k, v in self._files.items() if os.path.exists(k)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": _CACHE_VERSION, "files": files, "memo": self._memo},
                                  separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)
        self._dirty = False


def _tree_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames)
                  if not f.endswith((".pyc", ".pyo")) and not f.startswith(".")]
    return found


def path_content_hash(path: Path, cache: ChecksumCache | None = None, *,
                      exclude: Iterable[str] = ()) -> str | None:
    """Hash of a file's bytes or of every file below a folder (names and bytes); None if absent.

    ``exclude``: relative POSIX paths inside the folder to leave out.

    Example:
        >>> path_content_hash(Path("/nonexistent")) is None
        True
    """
    path = Path(path)
    sha = cache.sha256 if cache is not None else _plain_sha256
    if path.is_file():
        return sha(path)
    if path.is_dir():
        skip = set(exclude)
        files = {p.relative_to(path).as_posix(): p for p in _tree_files(path)}
        return digest({rel: sha(p) for rel, p in files.items() if rel not in skip})
    return None


def _plain_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def package_tree_hash(package_dir: Path, cache: ChecksumCache | None = None, *,
                      exclude: Iterable[str] = ()) -> dict[str, str | None]:
    """``{"version": ..., "tree": sha256}`` of an installed package folder (every file, not only code;
    ``exclude`` lists relative paths left out).

    Example:
        >>> from workbench.config import PACKAGE_DIR
        >>> sorted(package_tree_hash(PACKAGE_DIR))
        ['tree', 'version']
    """
    try:
        version: str | None = metadata.version(Path(package_dir).name)
    except metadata.PackageNotFoundError:
        version = None
    return {"version": version, "tree": path_content_hash(Path(package_dir), cache, exclude=exclude)}


def notebook_fingerprint(*, source_sha256: str, parameters: Mapping[str, Any],
                         parameter_files: Mapping[str, str | None], environment: Mapping[str, Any],
                         declaration: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """The fingerprint (SHA-256 hex) of one notebook run from its parts (see the module text).

    Example:
        >>> parts = dict(source_sha256="ab", parameters={"as_of": None}, parameter_files={},
        ...              environment={"workbench": "1"}, declaration={}, inputs={"x.parquet": "cd"})
        >>> a = notebook_fingerprint(**parts)
        >>> b = notebook_fingerprint(**{**parts, "parameters": {"as_of": "2026-01-31"}})
        >>> a == b, len(a)
        (False, 64)
    """
    return digest({"source": source_sha256, "parameters": dict(parameters),
                   "parameter_files": dict(parameter_files), "environment": dict(environment),
                   "declaration": dict(declaration), "inputs": dict(inputs)})

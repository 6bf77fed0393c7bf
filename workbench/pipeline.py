"""The pipeline's graph: what each notebook reads and writes, and what runs after what.

``notebooks/pipeline.yaml`` declares, per notebook, the files it reads and writes as
globs relative to the data folder (``*`` within one path segment, ``**`` any number
of segments, ``?`` one character), the files it writes into the run folder, and
optional explicit ``after:`` dependencies::

    version: 1
    notebooks:
      05_rfm:
        reads: [processed/customer_360.parquet, processed/segments/rfm_*.parquet]
        writes: [processed/rfm_segments.parquet, interim/metrics/rfm.json]
        run_writes: [rfm_report/**]        # below reports/<run_id>/ (optional)
        caches: [interim/features/**]      # shared through a file lock (optional)
        after: [04_customer_360]           # optional
        note: free text                    # optional

:func:`load_pipeline` validates the file (an unknown notebook or field is an error that
names it) and derives the graph, in pipeline (file-name) order. For two notebooks A
before B:

- B **depends on** A when B reads something A writes, or lists A in ``after:``. When A
  runs again, B runs again (incremental runs).
- B **waits for** A (no dependency) when B writes something A reads or writes: B must
  not overwrite a file A still reads, and the last writer must stay the last one.

Notebooks that neither depend on nor wait for each other may run at the same time;
by construction they never write the same file. A notebook in the folder with no
declaration reads and writes everything (``**``): it runs alone, after every earlier
notebook and before every later one, and is never reused — so a user's own notebook
still runs as it always did. ``caches`` are files several notebooks read and write
through a lock of their own and whose content never changes a result (a feature
cache): they order nothing and take no part in fingerprints.

Example:
    >>> p = Pipeline.from_mapping({"notebooks": {
    ...     "01_a": {"writes": ["x.parquet"]},
    ...     "02_b": {"reads": ["x.parquet"], "writes": ["y.parquet"]},
    ...     "03_c": {"reads": ["x.parquet"], "writes": ["z.parquet"]}}},
    ...     ["01_a", "02_b", "03_c"])
    >>> p.depends_on("03_c")
    ['01_a']
    >>> sorted(p.dependants("01_a"))
    ['02_b', '03_c']
    >>> p.concurrent("02_b", "03_c")
    True
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "DECLARATION_FILE",
    "NotebookSpec",
    "Pipeline",
    "PipelineError",
    "glob_matches",
    "globs_overlap",
    "iter_matching_files",
    "load_pipeline",
]

#: The declaration file, next to the notebooks.
DECLARATION_FILE = "pipeline.yaml"
#: Fields a notebook's declaration may have.
SPEC_FIELDS = ("reads", "writes", "run_writes", "caches", "after", "note")
#: Files of the runner itself in the data folder: never inputs or outputs of a notebook.
RUNNER_FILES = re.compile(r"(^|/)\.workbench-[^/]*$")
_EVERYTHING = ("**",)


class PipelineError(ValueError):
    """The declaration file is malformed or names something that does not exist."""


# --------------------------------------------------------------------------- globs


def _check_glob(pattern: Any, where: str) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise PipelineError(f"{where}: every entry must be a non-empty path pattern. Got {pattern!r} instead.")
    p = pattern.strip()
    if p.startswith("/") or "\\" in p or any(s in ("..", ".") for s in p.split("/")):
        raise PipelineError(f"{where}: {p!r} must be a relative path below the folder "
                            "(no leading '/', '.', '..' or backslash).")
    if "[" in p or "]" in p:
        raise PipelineError(f"{where}: {p!r}: only '*', '**' and '?' are supported as wildcards.")
    if any("**" in s and s != "**" for s in p.split("/")):
        raise PipelineError(f"{where}: {p!r}: '**' must be a whole path segment (like 'processed/**').")
    return p.rstrip("/")


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    segments = pattern.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        body = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in seg)
        parts.append(body if last else body + "/")
    return re.compile("".join(parts) + r"\Z")


def glob_matches(pattern: str, path: str) -> bool:
    """Whether the relative POSIX ``path`` matches the declaration glob ``pattern``.

    Example:
        >>> glob_matches("processed/**", "processed/canonical/orders.parquet")
        True
        >>> glob_matches("interim/metrics/*.json", "interim/metrics/sub/x.json")
        False
    """
    return _glob_regex(pattern).match(path) is not None


def _tokens_overlap(a: Sequence[str], b: Sequence[str], star: str, same: Any) -> bool:
    """Whether two sequences of tokens (``star`` = any run of tokens) can produce a common sequence."""
    memo: dict[tuple[int, int], bool] = {}

    def f(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(a) and j == len(b):
            out = True
        elif i < len(a) and a[i] == star:
            out = f(i + 1, j) or (j < len(b) and f(i, j + 1))
        elif j < len(b) and b[j] == star:
            out = f(i, j + 1) or (i < len(a) and f(i + 1, j))
        elif i < len(a) and j < len(b):
            out = same(a[i], b[j]) and f(i + 1, j + 1)
        else:
            out = False
        memo[key] = out
        return out

    return f(0, 0)


def _segments_overlap(a: str, b: str) -> bool:
    return _tokens_overlap(list(a), list(b), "*", lambda x, y: x == y or "?" in (x, y))


def globs_overlap(a: str, b: str) -> bool:
    """Whether some path matches both globs (used to derive the graph without any file).

    Example:
        >>> globs_overlap("processed/*.parquet", "processed/rfm_segments.parquet")
        True
        >>> globs_overlap("interim/metrics/rfm.json", "interim/metrics/clv.json")
        False
    """
    return _tokens_overlap(a.split("/"), b.split("/"), "**", _segments_overlap)


def _any_overlap(xs: Iterable[str], ys: Iterable[str]) -> bool:
    ys = list(ys)
    return any(globs_overlap(x, y) for x in xs for y in ys)


def _literal_prefix(pattern: str) -> str:
    out = []
    for seg in pattern.split("/")[:-1]:
        if "*" in seg or "?" in seg:
            break
        out.append(seg)
    return "/".join(out)


def iter_matching_files(root: Path, patterns: Iterable[str], *,
                        exclude: Iterable[str] = ()) -> Iterator[str]:
    """Relative POSIX paths of the files below ``root`` matching any of ``patterns``, sorted.

    Files matching ``exclude`` and the runner's own ``.workbench-*`` files are left out;
    folders are walked from the literal start of each pattern only.

    Example:
        >>> list(iter_matching_files(Path("/nonexistent"), ["**"]))
        []
    """
    root = Path(root)
    patterns = list(patterns)
    exclude = list(exclude)
    found: set[str] = set()
    starts = sorted({_literal_prefix(p) for p in patterns})
    starts = [s for s in starts if not any(s != t and (t == "" or s.startswith(t + "/")) for t in starts)]
    for start in starts:
        base = root / start if start else root
        if base.is_file():
            candidates: Iterable[str] = [start]
        elif base.is_dir():
            candidates = _walk(root, base)
        else:
            continue
        for rel in candidates:
            if RUNNER_FILES.search(rel) or rel in found:
                continue
            if any(glob_matches(p, rel) for p in patterns) and not any(glob_matches(x, rel) for x in exclude):
                found.add(rel)
    return iter(sorted(found))


def _walk(root: Path, base: Path) -> Iterator[str]:
    root_s = str(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root_s).replace(os.sep, "/")
        for name in sorted(filenames):
            yield name if rel_dir == "." else f"{rel_dir}/{name}"


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class NotebookSpec:
    """One notebook's declaration (``declared`` is False for a notebook the file does not name).

    Example:
        >>> NotebookSpec("05_rfm", reads=("processed/customer_360.parquet",)).declared
        True
    """

    name: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    run_writes: tuple[str, ...] = ()
    caches: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    note: str = ""
    declared: bool = True

    @classmethod
    def undeclared(cls, name: str) -> "NotebookSpec":
        """A notebook without a declaration: reads and writes everything."""
        return cls(name, reads=_EVERYTHING, writes=_EVERYTHING, run_writes=_EVERYTHING, declared=False)

    def to_dict(self) -> dict[str, Any]:
        """The declaration as plain data (part of a notebook's fingerprint)."""
        return {"reads": list(self.reads), "writes": list(self.writes), "run_writes": list(self.run_writes),
                "caches": list(self.caches), "after": list(self.after), "declared": self.declared}


@dataclass
class Pipeline:
    """Declarations of the notebooks of one folder, in pipeline order, and the graph between them.

    Build it with :func:`load_pipeline` (or :meth:`from_mapping`). ``names`` are notebook
    stems (``05_rfm``) in pipeline order.
    """

    names: list[str]
    specs: dict[str, NotebookSpec]
    source: Path | None = None
    _deps: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _waits: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, names: Sequence[str], *,
                     source: Path | None = None) -> "Pipeline":
        """Validate declarations (the parsed YAML) against the notebooks ``names`` (stems, any order).

        Example:
            >>> Pipeline.from_mapping({"notebooks": {"02_x": {}}}, ["01_a"])
            Traceback (most recent call last):
            ...
            workbench.pipeline.PipelineError: pipeline declarations: notebook '02_x' is declared but not in the folder (notebooks: 01_a).
        """
        where = f"{source}" if source is not None else "pipeline declarations"
        data = data or {}
        if not isinstance(data, Mapping):
            raise PipelineError(f"{where}: must be a mapping with a 'notebooks' key. Got {type(data).__name__}.")
        unknown_top = sorted(set(data) - {"version", "notebooks"})
        if unknown_top:
            raise PipelineError(f"{where}: unknown key(s) {unknown_top}; allowed: version, notebooks.")
        if data.get("version", 1) != 1:
            raise PipelineError(f"{where}: 'version' must be 1. Got {data.get('version')!r} instead.")
        declared = data.get("notebooks") or {}
        if not isinstance(declared, Mapping):
            raise PipelineError(f"{where}: 'notebooks' must map notebook names to declarations.")
        ordered = sorted(names)
        specs: dict[str, NotebookSpec] = {}
        for raw_name, body in declared.items():
            name = str(raw_name).removesuffix(".ipynb")
            if name not in ordered:
                raise PipelineError(f"{where}: notebook {name!r} is declared but not in the folder "
                                    f"(notebooks: {', '.join(ordered) or 'none'}).")
            body = body or {}
            if not isinstance(body, Mapping):
                raise PipelineError(f"{where}: {name}: the declaration must be a mapping of "
                                    f"{', '.join(SPEC_FIELDS)}.")
            unknown = sorted(set(body) - set(SPEC_FIELDS))
            if unknown:
                raise PipelineError(f"{where}: {name}: unknown field(s) {unknown}; allowed: {', '.join(SPEC_FIELDS)}.")

            def globs(key: str) -> tuple[str, ...]:
                value = body.get(key) or []
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list):
                    raise PipelineError(f"{where}: {name}.{key} must be a list of path patterns.")
                return tuple(_check_glob(v, f"{where}: {name}.{key}") for v in value)

            after = tuple(str(a).removesuffix(".ipynb") for a in (body.get("after") or []))
            for a in after:
                if a not in ordered or ordered.index(a) >= ordered.index(name):
                    raise PipelineError(f"{where}: {name}.after: {a!r} must be a notebook that comes before "
                                        f"{name} (one of {', '.join(ordered[:ordered.index(name)]) or 'none'}).")
            note = body.get("note") or ""
            specs[name] = NotebookSpec(name, reads=globs("reads"), writes=globs("writes"),
                                       run_writes=globs("run_writes"), caches=globs("caches"), after=after,
                                       note=str(note))
        for name in ordered:
            specs.setdefault(name, NotebookSpec.undeclared(name))
        pipeline = cls(names=ordered, specs=specs, source=source)
        pipeline._derive()
        return pipeline

    def _derive(self) -> None:
        self._deps = {n: [] for n in self.names}
        self._waits = {n: [] for n in self.names}
        for j, b in enumerate(self.names):
            sb = self.specs[b]
            for a in self.names[:j]:
                sa = self.specs[a]
                if a in sb.after or _any_overlap(sb.reads, sa.writes):
                    self._deps[b].append(a)
                elif _any_overlap(sb.writes, sa.reads) or _any_overlap(sb.writes, sa.writes) \
                        or _any_overlap(sb.run_writes, sa.run_writes):
                    self._waits[b].append(a)

    # ------------------------------------------------------------------ queries

    def depends_on(self, name: str) -> list[str]:
        """The notebooks ``name`` reads from (directly), in pipeline order."""
        return list(self._deps[self._key(name)])

    def waits_for(self, name: str) -> list[str]:
        """Every earlier notebook ``name`` must not overlap in time (dependencies and ordering only)."""
        key = self._key(name)
        return [n for n in self.names if n in self._deps[key] or n in self._waits[key]]

    def dependants(self, name: str) -> set[str]:
        """The notebooks that read, directly or through others, what ``name`` writes."""
        key = self._key(name)
        out: set[str] = set()
        for n in self.names[self.names.index(key) + 1:]:
            if any(d == key or d in out for d in self._deps[n]):
                out.add(n)
        return out

    def concurrent(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` may run at the same time (neither is ordered after the other)."""
        a, b = self._key(a), self._key(b)
        return a != b and b not in self._before(a) and a not in self._before(b)

    def _before(self, name: str) -> set[str]:
        out: set[str] = set()
        stack = list(self.waits_for(name))
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack.extend(self.waits_for(n))
        return out

    def fingerprint_excludes(self, name: str) -> list[str]:
        """Globs left out of ``name``'s inputs: its own outputs and caches and those of later declared
        notebooks (what a later notebook writes is not an input of this one; an undeclared one may
        write anything, so it excludes nothing)."""
        key = self._key(name)
        return list(self.specs[key].writes + self.specs[key].caches) + self.later_writes(key)

    def later_writes(self, name: str) -> list[str]:
        """What later declared notebooks write (and cache): a file ``name`` writes that a later
        notebook writes again (a table two stages share) is that later notebook's output."""
        key = self._key(name)
        later = [n for n in self.names[self.names.index(key) + 1:] if self.specs[n].declared]
        return [g for n in later for g in self.specs[n].writes + self.specs[n].caches]

    def _key(self, name: str) -> str:
        key = str(name).removesuffix(".ipynb")
        if key not in self.specs:
            raise KeyError(f"The notebook must be one of {self.names}. Got {name!r} instead.")
        return key


def load_pipeline(notebook_dir: Path, names: Sequence[str]) -> Pipeline:
    """Read ``notebook_dir/pipeline.yaml`` (absent: nothing declared) for the notebooks ``names`` (stems).

    Example:
        >>> p = load_pipeline(Path("/nonexistent"), ["01_a", "02_b"])
        >>> p.depends_on("02_b"), p.specs["02_b"].declared
        (['01_a'], False)
    """
    import yaml

    path = Path(notebook_dir) / DECLARATION_FILE
    if not path.is_file():
        return Pipeline.from_mapping(None, names)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML ({exc}).") from None
    return Pipeline.from_mapping(data, names, source=path)

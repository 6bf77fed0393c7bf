"""Headless pipeline runner: execute the numbered notebooks, keep every artefact.

``workbench run``, ``make report`` and schedulers (cron, Airflow) call
:func:`run_pipeline`. One run writes one folder ``reports/<run_id>/`` holding

- ``NN_name.ipynb``  the executed notebook (papermill), also when it failed
- ``NN_name.html``   a code-free HTML report of it (nbconvert)
- ``manifest.json``  parameters, timings, package versions, git commit, stage metrics,
                     and per notebook its fingerprint, inputs and outputs with checksums
- ``index.html``     a self-contained overview page linking everything

and, after a successful run only, points ``reports/latest`` at the run folder.

The graph: ``notebooks/pipeline.yaml`` declares what each notebook reads and writes
(:mod:`workbench.pipeline`); notebooks that do not depend on each other run at the same
time (``jobs``, default: the CPUs), each in a worker process of its own; the manifest and
index list them in pipeline order. Incremental: a notebook whose fingerprint
(:mod:`workbench.fingerprint`) matches an earlier successful run is reused — its
executed notebook, HTML and run-folder outputs are copied — unless ``force`` says
otherwise; a notebook that runs makes the notebooks reading its outputs run too.

The kernels see the runner's data area: ``WORKBENCH_DATA_DIR``,
``WORKBENCH_REPORTS_DIR`` and ``WORKBENCH_RUN_DIR`` are set in the environment of the
process that starts the kernel (a worker, or this process with ``jobs=1``) for the
duration of one notebook and restored afterwards. Because of that, do not run two
pipelines in threads of one process at the same time; separate processes are fine.

Example:
    >>> from workbench.runner import run_pipeline          # doctest: +SKIP
    >>> result = run_pipeline(parameters={"as_of": "2024-06-30"})  # doctest: +SKIP
    workbench run 20240701T020000Z: 11 notebook(s), up to 2 at once -> reports/20240701T020000Z
    [1/11] 01_ingest.ipynb ... reused from run 20240630T020000Z
    [4/11] 04_customer_360.ipynb ... (parameters changed: as_of)
    [4/11] 04_customer_360.ipynb ... ok in 24.2 s
    ...
    >>> result.status, result.index_path.name               # doctest: +SKIP
    ('ok', 'index.html')

papermill and nbconvert are imported lazily (each costs ~3 s to import here), so
importing this module is cheap, and a run that reuses every notebook imports neither.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from workbench.config import PACKAGE_DIR, Paths, get_paths, project_root
from workbench.i18n import DEFAULT_LANGUAGE, check_language, message, t
from workbench.i18n import keys as i18n_keys
from workbench.fingerprint import (CHECKSUM_CACHE_NAME, ChecksumCache, notebook_fingerprint, package_tree_hash,
                                   path_content_hash)
from workbench.pipeline import NotebookSpec, Pipeline, glob_matches, iter_matching_files, load_pipeline

if TYPE_CHECKING:  # pragma: no cover
    from nbconvert import HTMLExporter

__all__ = [
    "NotebookFailed",
    "NotebookResult",
    "RunResult",
    "collect_stages",
    "default_jobs",
    "discover_notebooks",
    "export_html",
    "filter_parameters",
    "git_info",
    "package_versions",
    "render_index",
    "index_language",
    "run_pipeline",
]

#: ``NN_<name>.ipynb``; no dot in the stem, so ``x.nbconvert.ipynb`` copies never match.
NOTEBOOK_NAME = re.compile(r"^\d{2}_[^./\\]+\.ipynb$")
#: Stems ending like this are checkpoints or executed copies, not sources.
EXECUTED_COPY_SUFFIXES = ("-checkpoint", "-executed", "_executed", "-output", "_output")

#: Cells with one of these tags never reach the HTML report.
REMOVE_CELL_TAGS = frozenset({"remove_cell", "widget", "parameters", "injected-parameters"})
#: Cells with one of these tags keep their (hidden) input but lose their outputs.
REMOVE_OUTPUT_TAGS = frozenset({"remove_output"})

#: Distributions whose versions go into the manifest (missing ones are skipped).
VERSIONED_PACKAGES = (
    "workbench", "pandas", "numpy", "pyarrow", "scikit-learn", "seaborn", "matplotlib",
    "papermill", "nbconvert", "nbval", "ipykernel", "phonenumbers", "pandera", "pypinyin", "scipy",
    "splink", "duckdb",
)

ENV_DATA_DIR = "WORKBENCH_DATA_DIR"
ENV_REPORTS_DIR = "WORKBENCH_REPORTS_DIR"
ENV_RUN_DIR = "WORKBENCH_RUN_DIR"

#: Modules that schedule notebooks but never run inside one: left out of the package's hash in
#: fingerprints, so a change to the runner does not make every notebook run again.
RUNNER_MODULES = ("runner.py", "cli.py", "pipeline.py")
#: Path segments of files being written atomically (``.x.json.123.tmp``, ``canonical.123.tmp/``).
_TRANSIENT = re.compile(r"(^|/)[^/]*\.tmp(/|$)")
_TRACEBACK_TAIL = 4000  # characters of traceback kept in the manifest
_ANSI = re.compile("\x1b\\[(K|.*?m)")


# --------------------------------------------------------------------------- results


@dataclass
class NotebookResult:
    """What happened to one notebook of a run.

    ``status`` is ``"ok"``, ``"failed"``, ``"reused"`` (copied from run ``reused_from``,
    whose inputs were the same) or ``"skipped"``. ``output_path`` is where the executed
    notebook is (or would have been, for skipped ones); ``html_path`` is ``None`` when no
    HTML was written. ``parameters`` are the values papermill injected (or would have).

    Example:
        >>> r = NotebookResult("01_a.ipynb", "ok", 1.5, Path("r/01_a.ipynb"), None, None)
        >>> r.status
        'ok'
    """

    name: str
    status: str
    seconds: float
    output_path: Path
    html_path: Path | None
    error: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    reused_from: str | None = None


@dataclass
class RunResult:
    """Outcome of :func:`run_pipeline` (``status`` is ``"ok"`` or ``"failed"``).

    Example:
        >>> r = RunResult("20240101T000000Z", Path("reports/20240101T000000Z"), "ok", [],
        ...               Path("m.json"), Path("index.html"))
        >>> r.run_id
        '20240101T000000Z'
    """

    run_id: str
    run_dir: Path
    status: str
    notebooks: list[NotebookResult]
    manifest_path: Path
    index_path: Path


class NotebookFailed(RuntimeError):
    """A notebook raised; raised by :func:`run_pipeline` after manifest and index are written.

    ``cell_index`` is the 0-based index of the failing cell in the *source* notebook
    (papermill's own index counts the injected-parameters cell; this one does not),
    ``None`` when the error is not tied to a source cell (kernel died, error inside the
    injected-parameters cell). ``exec_count`` is the ``In [n]`` number in the executed
    notebook. ``run_result`` is the :class:`RunResult` of the failed run.

    The message reads "Notebook 02_clean.ipynb failed in cell 7 (KeyError: 'phone'); the
    executed notebook is kept at reports/<run>/02_clean.ipynb" (path relative to the cwd
    when below it), or says that no executed notebook was written.

    Example:
        >>> e = NotebookFailed("02_clean.ipynb", 7, "KeyError", "'phone'",
        ...                    Path("/nowhere/r1/02_clean.ipynb"))
        >>> str(e)
        "Notebook 02_clean.ipynb failed in cell 7 (KeyError: 'phone'); no executed notebook was written (expected /nowhere/r1/02_clean.ipynb)"
    """

    def __init__(self, notebook: str, cell_index: int | None, ename: str, evalue: str,
                 output_path: Path, *, exec_count: int | None = None,
                 run_result: RunResult | None = None) -> None:
        self.notebook = notebook
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        self.output_path = Path(output_path)
        self.exec_count = exec_count
        self.run_result = run_result
        super().__init__(notebook, cell_index, ename, evalue, self.output_path)

    def __reduce__(self):  # keep the exception picklable (multiprocessing schedulers)
        return (_rebuild_notebook_failed,
                (self.notebook, self.cell_index, self.ename, self.evalue, self.output_path,
                 self.exec_count, self.run_result))

    def __str__(self) -> str:
        where = f" in cell {self.cell_index}" if self.cell_index is not None else ""
        what = f"{self.ename}: {self.evalue}" if self.evalue else self.ename
        if self.output_path.exists():
            kept = f"the executed notebook is kept at {_display_path(self.output_path)}"
        else:
            kept = f"no executed notebook was written (expected {_display_path(self.output_path)})"
        return f"Notebook {self.notebook} failed{where} ({what}); {kept}"


def _rebuild_notebook_failed(notebook, cell_index, ename, evalue, output_path, exec_count,
                             run_result) -> NotebookFailed:
    return NotebookFailed(notebook, cell_index, ename, evalue, output_path,
                          exec_count=exec_count, run_result=run_result)


# --------------------------------------------------------------------------- discovery


def discover_notebooks(notebook_dir: Path) -> list[Path]:
    """The pipeline notebooks of ``notebook_dir``: ``NN_*.ipynb``, sorted by name.

    Checkpoints (``.ipynb_checkpoints/``, ``*-checkpoint.ipynb``), executed copies
    (``*.nbconvert.ipynb``, ``*-output.ipynb``, ``*_executed.ipynb``, ...) and hidden
    files are ignored. The folder is not searched recursively; a missing folder
    gives ``[]``.

    Example:
        >>> [p.name for p in discover_notebooks(Path("notebooks"))]  # doctest: +SKIP
        ['01_ingest.ipynb', '02_clean.ipynb', '03_oneid.ipynb']
    """
    notebook_dir = Path(notebook_dir)
    if not notebook_dir.is_dir():
        return []
    found = [
        p for p in notebook_dir.iterdir()
        if p.is_file()
        and NOTEBOOK_NAME.match(p.name)
        and not p.stem.lower().endswith(EXECUTED_COPY_SUFFIXES)
    ]
    return sorted(found, key=lambda p: p.name)


def _resolve_notebooks(notebooks: Sequence[str | Path] | None, notebook_dir: Path) -> list[Path]:
    """Turn the caller's selection into existing notebook files, in the caller's order."""
    if notebooks is None:
        found = discover_notebooks(notebook_dir)
        if not found:
            raise FileNotFoundError(f"no NN_*.ipynb notebooks in {notebook_dir}")
        return [p.resolve() for p in found]
    if isinstance(notebooks, (str, Path)):
        notebooks = [notebooks]
    resolved: list[Path] = []
    for item in notebooks:
        given = Path(item)
        candidates = [given, notebook_dir / given]
        if given.suffix != ".ipynb":
            candidates += [given.with_name(given.name + ".ipynb"),
                           notebook_dir / (given.name + ".ipynb")]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            available = ", ".join(p.name for p in discover_notebooks(notebook_dir)) or "none"
            raise FileNotFoundError(f"notebook {str(item)!r} not found (looked in the current "
                                    f"folder and {notebook_dir}; available: {available})")
        resolved.append(hit.resolve())
    if not resolved:
        raise ValueError("no notebooks to run")
    names = [p.name for p in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"notebook names must be unique within a run: {', '.join(duplicates)}")
    return resolved


# --------------------------------------------------------------------------- parameters


def filter_parameters(parameters: Mapping[str, Any], declared: Sequence[str] | Mapping[str, Any]
                      ) -> dict[str, Any]:
    """The subset of ``parameters`` a notebook declares in its ``parameters`` cell.

    papermill injects whatever it is given (it only logs "Passed unknown parameter"),
    so the runner passes each notebook only the names it declares.

    Example:
        >>> filter_parameters({"as_of": "2024-06-30", "x": 5}, ["x", "y"])
        {'x': 5}
    """
    return {k: v for k, v in parameters.items() if k in declared}


def _declared_parameters(notebook: Path) -> dict[str, Any]:
    import papermill

    return papermill.inspect_notebook(str(notebook))


# --------------------------------------------------------------------------- environment facts


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (distributions that are not installed are left out).

    Example:
        >>> "papermill" in package_versions(["papermill", "surely-not-installed-xyz"])
        True
    """
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_info(root: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha | None, "dirty": bool | None}`` of the checkout at ``root``.

    ``None`` when ``root`` is not inside a git work tree or git is missing; ``commit``
    is ``None`` in a repository without commits.

    Example:
        >>> git_info(Path("/"))  # doctest: +SKIP
        None
    """
    root = Path(root) if root is not None else project_root()

    def git(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            return None

    inside = git("rev-parse", "--is-inside-work-tree")
    if inside is None or inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    head = git("rev-parse", "--verify", "--quiet", "HEAD")
    status = git("status", "--porcelain")
    return {
        "commit": (head.stdout.strip() or None) if head is not None and head.returncode == 0 else None,
        "dirty": bool(status.stdout.strip()) if status is not None and status.returncode == 0 else None,
    }


def collect_stages(metrics_dir: Path) -> dict[str, Any]:
    """Contents of every ``*.json`` in ``metrics_dir``, keyed by file stem.

    Unreadable files become ``{"error": "..."}`` instead of failing the run.

    Example:
        >>> collect_stages(Path("/nonexistent"))
        {}
    """
    metrics_dir = Path(metrics_dir)
    if not metrics_dir.is_dir():
        return {}
    stages: dict[str, Any] = {}
    for path in sorted(metrics_dir.glob("*.json")):
        if not path.is_file():
            continue
        try:
            stages[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            stages[path.stem] = {"error": f"could not read {path.name}: {exc}"}
    return stages


# --------------------------------------------------------------------------- HTML


def _html_exporter() -> "HTMLExporter":
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.exclude_input = True
    config.HTMLExporter.exclude_input_prompt = True
    config.HTMLExporter.exclude_output_prompt = True
    # TagRemovePreprocessor is among the exporter's default preprocessors, off by default.
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    config.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    return HTMLExporter(config=config)


def export_html(notebook_path: Path, html_path: Path | None = None, *, title: str | None = None,
                exporter: "HTMLExporter | None" = None) -> Path:
    """Write a code-free HTML report of an executed notebook; return its path.

    Inputs and prompts are excluded; cells tagged ``remove_cell``, ``widget``,
    ``parameters`` or ``injected-parameters`` are dropped, outputs of cells tagged
    ``remove_output`` are dropped. Markdown and outputs stay. ``html_path`` defaults to
    the notebook's path with ``.html``; ``title`` to the notebook's stem.

    Example:
        >>> export_html(Path("reports/r1/02_clean.ipynb"))  # doctest: +SKIP
        PosixPath('reports/r1/02_clean.html')
    """
    import nbformat

    notebook_path = Path(notebook_path)
    html_path = Path(html_path) if html_path is not None else notebook_path.with_suffix(".html")
    title = title or notebook_path.stem
    nb = nbformat.read(notebook_path, as_version=4)
    nb.metadata["title"] = title  # the template prefers metadata.title over resources
    exporter = exporter or _html_exporter()
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    _write_text_atomic(html_path, body)
    return html_path


_INDEX_CSS = """
body{font:15px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2328;max-width:1000px;margin:2em auto;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #d8dee4;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.meta th{width:12em;background:none}
.badge{display:inline-block;padding:.05em .55em;border-radius:1em;font-size:.85em;font-weight:600}
.ok{background:#dafbe1;color:#116329}.failed{background:#ffebe9;color:#a40e26}
.skipped,.running,.interrupted{background:#eaeef2;color:#57606a}.reused{background:#ddf4ff;color:#0550ae}
.failure{border:2px solid #cf222e;background:#fff5f5;border-radius:6px;padding:.8em 1em;margin:1em 0}
.failure h2{margin:0 0 .4em;color:#a40e26}
pre{white-space:pre-wrap;font-size:.85em;background:#f6f8fa;padding:.6em;border-radius:4px;overflow:auto}
code{font-size:.9em}.muted{color:#57606a}a{color:#0969da}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(relative: str) -> str:
    return html.escape(quote(relative), quote=True)


def _fmt_num(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return "" if value is None else str(value)


def _is_as_of(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return "as_of" in k or "asof" in k


def _stage_order(manifest: Mapping[str, Any]) -> list[str]:
    """Stages in the order notebooks wrote them, then the rest alphabetically."""
    stages = manifest.get("stages") or {}
    order: list[str] = []
    for nb in manifest.get("notebooks") or []:
        for stem in nb.get("stages_written") or []:
            if stem in stages and stem not in order:
                order.append(stem)
    return order + sorted(k for k in stages if k not in order)


def index_language(manifest: Mapping[str, Any]) -> str:
    """The language of a run's index: the manifest's ``language``, else the ``language`` parameter
    of the run, else English.

    >>> index_language({"parameters": {"language": "zh"}}), index_language({})
    ('zh', 'en')
    """
    params = manifest.get("parameters") or {}
    return check_language(manifest.get("language") or params.get("language") or DEFAULT_LANGUAGE)


def render_index(manifest: Mapping[str, Any]) -> str:
    """The run's ``index.html`` (self-contained, inline CSS) built from its manifest, in the
    run's language (:func:`index_language`; texts from :mod:`workbench.i18n`).

    Everything taken from the manifest is escaped with :func:`html.escape`.

    Example:
        >>> page = render_index({"run_id": "r1", "status": "ok", "notebooks": []})
        >>> "<title>workbench run r1</title>" in page
        True
        >>> "<h2>笔记本</h2>" in render_index({"run_id": "r1", "parameters": {"language": "zh"}})
        True
    """
    lang = index_language(manifest)

    def tr(key: str, **values: Any) -> str:
        return _e(t(f"index.{key}", lang, **values))

    def badge(st: str) -> str:
        label = t(f"status.{st}", lang) if f"status.{st}" in i18n_keys(lang) else st
        return f'<span class="badge {_e(st)}">{_e(label)}</span>'

    run_id = manifest.get("run_id", "")
    status = str(manifest.get("status", ""))
    params = manifest.get("parameters") or {}
    git = manifest.get("git")
    out: list[str] = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{tr('title', run_id=run_id)}</title>",
        f"<style>{_INDEX_CSS}</style></head><body>",
        f"<h1>{tr('title', run_id=run_id)} {badge(status)}</h1>",
    ]

    error = manifest.get("error")
    if status == "failed" and error:
        out.append(f'<div class="failure" role="alert"><h2>{tr("run_failed")}</h2>')
        out.append(f"<p>{_e(error.get('message'))}</p>")
        links = []
        if error.get("html"):
            links.append(f'<a href="{_href(error["html"])}">{tr("report")}</a>')
        if error.get("output"):
            links.append(f'<a href="{_href(error["output"])}">{tr("executed_notebook")}</a>')
        if links:
            out.append(f"<p>{tr('open_failed', links=chr(0)).replace(chr(0), ' · '.join(links))}</p>")
        if error.get("traceback"):
            out.append(f"<pre>{_e(error['traceback'])}</pre>")
        out.append("</div>")

    meta: list[tuple[str, str]] = [
        (t("index.status", lang), badge(status)),
        (t("index.started", lang), _e(manifest.get("started_utc"))),
        (t("index.finished", lang), _e(manifest.get("finished_utc"))),
        (t("index.duration", lang),
         _e(f"{manifest['seconds']:.1f} s") if isinstance(manifest.get("seconds"), (int, float)) else ""),
    ]
    if git is None:
        meta.append((t("index.git_commit", lang), f'<span class="muted">{tr("not_git")}</span>'))
    else:
        commit = git.get("commit")
        text = f"<code>{_e(commit)}</code>" if commit else f'<span class="muted">{tr("no_commit")}</span>'
        if git.get("dirty"):
            text += f' <span class="badge failed">{tr("uncommitted")}</span>'
        meta.append((t("index.git_commit", lang), text))
    as_of = {k: v for k, v in params.items() if _is_as_of(k)}
    other = {k: v for k, v in params.items() if not _is_as_of(k)}
    meta.append((t("index.as_of", lang), ", ".join(f"<code>{_e(k)}</code> = {_e(v)}" for k, v in as_of.items())
                 or f'<span class="muted">{tr("notebook_defaults")}</span>'))
    if other:
        meta.append((t("index.parameters", lang), ", ".join(f"<code>{_e(k)}</code> = {_e(json.dumps(v, default=str))}"
                                                           for k, v in other.items())))
    meta.append((t("index.language", lang), _e(t("language_name", lang))))
    for key, mkey in (("data_folder", "data_dir"), ("kernel", "kernel_name"), ("python", "python")):
        if manifest.get(mkey):
            meta.append((t(f"index.{key}", lang), f"<code>{_e(manifest[mkey])}</code>"))
    out.append('<table class="meta">')
    out += [f"<tr><th>{_e(label)}</th><td>{value}</td></tr>" for label, value in meta]
    out.append("</table>")

    report = next((nb for nb in manifest.get("notebooks") or [] if "segment_report" in str(nb.get("name"))
                   and nb.get("html")), None)
    if report is not None:
        out.append(f'<p class="lead"><a href="{_href(report["html"])}"><strong>{tr("open_segment_report")}</strong></a>'
                   f'{tr("segment_report_lead")}</p>')
    if (Path(manifest.get("run_dir") or ".") / "audiences").is_dir():
        out.append(f'<p>{tr("audiences_line")} <a href="audiences/">audiences/</a>'
                   ' · <a href="audiences/summary.json">summary.json</a></p>')
    reused = [nb for nb in manifest.get("notebooks") or [] if nb.get("status") == "reused"]
    out.append(f"<h2>{tr('notebooks')}</h2>")
    if reused:
        out.append(f'<p class="muted">{tr("reused_note", reused=len(reused), total=len(manifest.get("notebooks") or []))}</p>')
    out.append(f'<table><thead><tr><th class="num">#</th><th>{tr("col_notebook")}</th><th>{tr("col_status")}</th>'
               f'<th class="num">{tr("col_seconds")}</th><th>{tr("col_report")}</th><th>{tr("col_executed")}</th>'
               "</tr></thead><tbody>")
    listed = sorted(manifest.get("notebooks") or [], key=lambda nb: "segment_report" not in str(nb.get("name")))
    for i, nb in enumerate(listed, start=1):  # the segment report first, then pipeline order
        st = str(nb.get("status", ""))
        seconds = nb.get("seconds")
        report = f'<a href="{_href(nb["html"])}">HTML</a>' if nb.get("html") else '<span class="muted">–</span>'
        ipynb = f'<a href="{_href(nb["output"])}">.ipynb</a>' if nb.get("output") else '<span class="muted">–</span>'
        err = nb.get("error")
        detail = f'<div class="muted">{_e(err.get("ename"))}: {_e(err.get("evalue"))}</div>' if err else ""
        if st == "reused":
            ran = nb.get("original_seconds")
            ran = t("index.reused_ran", lang, seconds=f"{ran:.1f}") if isinstance(ran, (int, float)) else ""
            detail += f'<div class="muted">{tr("reused_from", run=nb.get("reused_from"), ran=ran)}</div>'
        elif st == "ok" and nb.get("reason") and nb.get("declared", True):
            detail += f'<div class="muted">{tr("ran", reason=message(nb["reason"], "reason", lang))}</div>'
        shown = isinstance(seconds, (int, float)) and st not in ("skipped", "reused")
        out.append(
            f'<tr><td class="num">{i}</td><td>{_e(nb.get("name"))}{detail}</td>'
            f"<td>{badge(st)}</td>"
            f'<td class="num">{_e(f"{seconds:.1f}") if shown else ""}</td>'
            f"<td>{report}</td><td>{ipynb}</td></tr>")
    out.append("</tbody></table>")

    stages = manifest.get("stages") or {}
    rows = []
    for stem in _stage_order(manifest):
        obj = stages.get(stem)
        totals = obj.get("totals") if isinstance(obj, Mapping) else None
        if not isinstance(totals, Mapping) or not any(k in totals for k in ("read", "kept", "quarantined")):
            continue
        seconds = obj.get("seconds")
        rows.append(
            f'<tr><td>{_e(obj.get("stage") or stem)}</td>'
            + "".join(f'<td class="num">{_e(_fmt_num(totals.get(k)))}</td>' for k in ("read", "kept", "quarantined"))
            + f'<td class="num">{_e(_fmt_num(seconds)) if isinstance(seconds, (int, float)) else ""}</td></tr>')
    out.append(f"<h2>{tr('row_counts')}</h2>")
    if rows:
        out.append(f'<table><thead><tr><th>{tr("stage")}</th><th class="num">{tr("read")}</th>'
                   f'<th class="num">{tr("kept")}</th><th class="num">{tr("quarantined")}</th>'
                   f'<th class="num">{tr("seconds")}</th></tr></thead><tbody>')
        out += rows
        out.append("</tbody></table>")
    else:
        out.append(f'<p class="muted">{tr("no_totals")}</p>')

    versions = manifest.get("versions") or {}
    out.append(f'<h2>{tr("details")}</h2><p><a href="manifest.json">manifest.json</a>'
               f' <span class="muted">· {_e(manifest.get("platform"))}</span></p>')
    if versions:
        out.append(f"<details><summary>{tr('package_versions')}</summary><table>")
        out += [f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in versions.items()]
        out.append("</table></details>")
    out.append("</body></html>\n")
    return "\n".join(out)


# --------------------------------------------------------------------------- small helpers


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _display_path(path: Path) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    _write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False,
                                        default=str) + "\n")


def _check_run_id(run_id: str) -> None:
    if (not run_id or run_id in {".", "..", "latest", "latest.txt"} or run_id.startswith(".")
            or "/" in run_id or "\\" in run_id or "\0" in run_id):
        raise ValueError(f"invalid run_id {run_id!r}: use a plain folder name")


def _create_run_dir(reports: Path, run_id: str | None, now: datetime) -> tuple[str, Path]:
    """Make ``reports/<run_id>`` (``-2``, ``-3`` ... appended when it already exists)."""
    base = now.strftime("%Y%m%dT%H%M%SZ") if run_id is None else run_id
    _check_run_id(base)
    reports.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = base if n == 1 else f"{base}-{n}"
        try:
            (reports / candidate).mkdir()
        except FileExistsError:
            continue
        return candidate, reports / candidate
    raise FileExistsError(f"could not create a fresh run folder for {base!r} in {reports}")


def _point_latest(reports: Path, run_dir: Path) -> Path:
    """Atomically point ``reports/latest`` at ``run_dir`` (relative symlink).

    Falls back to ``reports/latest.txt`` holding the run id when symlinks fail.
    """
    link = reports / "latest"
    tmp = reports / f".latest.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_dir.name, tmp, target_is_directory=True)
        os.replace(tmp, link)  # atomic on POSIX; fails if 'latest' is a real directory
    except (OSError, NotImplementedError):
        try:
            if tmp.is_symlink():
                tmp.unlink()
        except OSError:
            pass
        text_file = reports / "latest.txt"
        _write_text_atomic(text_file, run_dir.name + "\n")
        return text_file
    stale = reports / "latest.txt"
    if stale.is_file():
        try:
            stale.unlink()
        except OSError:
            pass
    return link


@contextmanager
def _kernel_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables (inherited by kernels) and restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class _Failure:
    cell_index: int | None
    exec_count: int | None
    ename: str
    evalue: str
    traceback: str


def _source_cell_index(source: Path, executed_index: int | None, injected: bool) -> int | None:
    """Map papermill's cell index (executed notebook) back to the source notebook."""
    if executed_index is None or not injected:
        return executed_index
    import nbformat

    try:
        nb = nbformat.read(source, as_version=4)
    except Exception:  # noqa: BLE001 - best effort; papermill's index is still useful
        return executed_index
    tags = [cell.get("metadata", {}).get("tags", []) for cell in nb.cells]
    if any("injected-parameters" in t for t in tags):
        return executed_index  # papermill replaced that cell in place: no shift
    params_at = next((i for i, t in enumerate(tags) if "parameters" in t), -1)
    injected_at = params_at + 1
    if executed_index == injected_at:
        return None  # the error is in the injected-parameters cell itself
    return executed_index - 1 if executed_index > injected_at else executed_index


def _ipc_kernel_manager():
    """A kernel manager that talks to its kernel over local IPC sockets (unique paths in the Jupyter
    runtime folder) instead of TCP ports on 127.0.0.1: no port to race for when notebooks start at
    the same time, and no "Kernel is running over TCP without encryption" warning per notebook."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            runtime = Path(jupyter_runtime_dir())
            runtime.mkdir(parents=True, exist_ok=True)
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(runtime / f"workbench-{uuid.uuid4().hex[:12]}"))
            super().__init__(**kwargs)

    return IPCKernelManager


def _execute(source: Path, output: Path, params: Mapping[str, Any], kernel_name: str,
             progress: bool) -> _Failure | None:
    """Run one notebook with papermill; return ``None`` on success."""
    import papermill

    try:
        papermill.execute_notebook(
            str(source), str(output),
            parameters=dict(params) or None,
            kernel_name=kernel_name,
            cwd=str(source.parent),
            progress_bar=progress,
            log_output=False,
            report_mode=False,
            kernel_manager_class=_ipc_kernel_manager(),
        )
    except papermill.PapermillExecutionError as exc:
        tb = _ANSI.sub("", "\n".join(exc.traceback or []))
        return _Failure(
            cell_index=_source_cell_index(source, exc.cell_index, bool(params)),
            exec_count=exc.exec_count,
            ename=str(exc.ename),
            evalue=str(exc.evalue),
            traceback=tb[-_TRACEBACK_TAIL:],
        )
    except Exception as exc:  # noqa: BLE001 - kernel died, no such kernel, timeout ...
        return _Failure(None, None, type(exc).__name__, str(exc), "")
    return None


# --------------------------------------------------------------------------- executing one notebook


@dataclass
class _Job:
    """What a worker needs to execute one notebook (picklable: it crosses to worker processes)."""

    source: Path
    output: Path
    html_path: Path | None
    params: dict[str, Any]
    kernel_name: str
    progress: bool
    env: dict[str, str]


@dataclass
class _JobOutcome:
    failure: _Failure | None
    seconds: float
    html_path: Path | None
    html_error: str | None


_EXPORTER: "HTMLExporter | None" = None  # one per process (worker or the runner itself)


def _run_job(job: _Job) -> _JobOutcome:
    """Execute one notebook and export its HTML, in the runner's process or in a worker.

    The kernel's environment (data, reports and run folders) is set in this process's
    ``os.environ`` for the duration and restored: a worker runs one notebook at a time.
    """
    global _EXPORTER
    t0 = time.perf_counter()
    with _kernel_environment(job.env):
        failure = _execute(job.source, job.output, job.params, job.kernel_name, job.progress)
    seconds = time.perf_counter() - t0
    html_path: Path | None = None
    html_error: str | None = None
    if job.html_path is not None and job.output.exists():
        try:
            if _EXPORTER is None:
                _EXPORTER = _html_exporter()
            html_path = export_html(job.output, job.html_path, title=job.source.stem, exporter=_EXPORTER)
        except Exception as exc:  # noqa: BLE001 - a report problem must not hide the run
            html_error = f"{type(exc).__name__}: {exc}"
    return _JobOutcome(failure, seconds, html_path, html_error)


class _InlineExecutor:
    """Runs jobs in the runner's own process, one at a time (``jobs=1``), with per-cell progress."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - reported like a worker's exception
            future.set_exception(exc)
        return future

    def shutdown(self, *, abort: bool = False) -> None:
        return None


class WorkerDied(RuntimeError):
    """A worker process ended while it ran a notebook (killed, out of memory ...)."""


_WORKER_KEY_ENV = "WORKBENCH_RUNNER_WORKER_KEY"


class _WorkerPool:
    """Up to ``size`` worker interpreters, each running one notebook at a time.

    papermill changes the process's working directory for each notebook and kernels inherit
    the process's environment: both are per-process state, so notebooks that run at the same
    time need processes, not threads (papermill issue #473). The workers are plain
    ``python -c`` processes talking to the runner over a ``multiprocessing.connection``
    (not a multiprocessing pool, whose ``spawn`` start would import the caller's ``__main__``
    again, running a scheduler's script without a main guard twice). All workers start at
    once and import papermill and nbconvert (~5 s) while the first notebooks run, so they
    are ready when the graph fans out; each is reused for later notebooks.
    """

    def __init__(self, size: int) -> None:
        from multiprocessing.connection import Listener

        self.size = size
        self._key = os.urandom(32)
        self._listener = Listener(authkey=self._key)
        self._all: list[tuple[subprocess.Popen, Any]] = []
        self._idle: list[tuple[subprocess.Popen, Any]] = []
        self._spawn(size)

    def _spawn(self, n: int) -> None:
        env = {**os.environ, _WORKER_KEY_ENV: self._key.hex()}
        code = "from workbench.runner import _worker_main; _worker_main()"
        procs = [subprocess.Popen([sys.executable, "-c", code, repr(self._listener.address)], env=env,
                                  stdin=subprocess.DEVNULL) for _ in range(n)]
        conns = {}
        for _ in procs:  # the workers connect in any order: each says its pid first
            conn = self._listener.accept()
            conns[conn.recv()] = conn
        workers = [(p, conns[p.pid]) for p in procs]
        self._all += workers
        self._idle = list(reversed(workers)) + self._idle

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        import threading

        if not self._idle:  # a worker died: replace it
            self._spawn(1)
        worker = self._idle.pop()
        future: Future = Future()
        proc, conn = worker
        conn.send((fn, args))

        def collect() -> None:
            try:
                kind, value = conn.recv()
            except (EOFError, OSError):
                proc.wait()
                future.set_exception(WorkerDied(f"the worker process ended with exit code {proc.returncode}"))
                return
            self._idle.append(worker)
            if kind == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)

        threading.Thread(target=collect, name="workbench-runner-collect", daemon=True).start()
        return future

    def shutdown(self, *, abort: bool = False) -> None:
        """Stop the workers; ``abort`` interrupts the notebooks still running (papermill then shuts
        their kernels down) instead of letting them finish."""
        import signal

        for worker in self._all:
            proc, conn = worker
            if abort and worker not in self._idle and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                conn.send(None)
            except OSError:
                pass
        for proc, conn in self._all:
            try:
                proc.wait(timeout=15 if abort else 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            conn.close()
        self._listener.close()


def _worker_main() -> None:
    """A worker's loop: run the jobs the runner sends until it sends ``None``."""
    import ast
    from multiprocessing.connection import Client

    key = bytes.fromhex(os.environ.pop(_WORKER_KEY_ENV))
    conn = Client(ast.literal_eval(sys.argv[1]), authkey=key)
    conn.send(os.getpid())
    import nbconvert  # noqa: F401 - imported once here, while the runner waits for the first result
    import papermill  # noqa: F401

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the runner
            reply = ("error", exc if _picklable(exc) else RuntimeError(f"{type(exc).__name__}: {exc}"))
        conn.send(reply)
        if isinstance(reply[1], KeyboardInterrupt):
            return


def _picklable(value: Any) -> bool:
    import pickle

    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001
        return False
    return True


# --------------------------------------------------------------------------- the runner


def default_jobs() -> int:
    """Notebooks run at once by default: the CPUs this process may use.

    Example:
        >>> default_jobs() >= 1
        True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_jobs(jobs: Any) -> int:
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"The 'jobs' parameter must be a positive integer. Got {jobs!r} instead.")
    return jobs


def run_pipeline(*, paths: Paths | None = None, notebooks: Sequence[str | Path] | None = None,
                 parameters: Mapping[str, Any] | None = None, run_id: str | None = None,
                 kernel_name: str = "python3", progress: bool = True, html: bool = True,
                 log: Callable[[str], None] | None = print, start_from: str | None = None,
                 jobs: int | None = None, force: bool | Sequence[str] = False, engine: Any = None) -> RunResult:
    """Execute the pipeline notebooks headless into ``paths.reports / run_id``.

    - ``notebooks``: names or paths (a bare name is looked up in ``paths.notebooks``;
      ``.ipynb`` may be omitted). Default: :func:`discover_notebooks`. They run in
      pipeline (file-name) order, as the graph of ``pipeline.yaml`` allows (see
      :mod:`workbench.pipeline`).
    - ``parameters``: one shared dict; each notebook receives only the names its
      ``parameters`` cell declares (see :func:`filter_parameters`).
    - ``start_from``: leave out the notebooks before this one.
    - ``jobs``: at most this many notebooks at once (default :func:`default_jobs`);
      independent notebooks run in worker processes. With ``jobs=1`` they run one after
      the other in this process, with papermill's per-cell progress bar.
    - Incremental: a declared notebook whose fingerprint (:mod:`workbench.fingerprint`)
      equals that of an earlier successful run in ``paths.reports``, whose recorded
      outputs are unchanged in the data folder and whose executed notebook (and HTML)
      are still there, is **reused**: its files are copied into this run's folder and
      it is marked ``reused`` with ``reused_from``. A notebook that runs makes every
      notebook reading its outputs run too. ``force=True`` runs everything;
      ``force=["05_rfm"]`` runs those notebooks and their dependants.
    - The run holds a lock on the data folder (:mod:`workbench.lock`): a second run on the
      same data refuses to start with a message naming the holder.
    - ``engine``: where the heavy stages run (:class:`workbench.engine.EngineSettings`, a mapping or
      a YAML path; default: the package's, ``engine: local``). Recorded for the run's stages
      (``data/interim/settings/engine.json``) and in ``manifest.json``; results are the same
      either way, so a change of engine alone does not make notebooks run again.
    - ``run_id``: default is the UTC start time ``YYYYmmddTHHMMSSZ``; ``-2``, ``-3`` ...
      is appended when the folder already exists (read the actual id from the result).
    - The kernels get ``WORKBENCH_DATA_DIR``/``WORKBENCH_REPORTS_DIR`` of ``paths`` and
      ``WORKBENCH_RUN_DIR`` (the run folder); the caller's environment is restored after.

    On a notebook error the executed notebook (with papermill's error banner) and its
    HTML are kept, notebooks depending on it are marked ``"skipped"`` (independent ones
    still run), ``manifest.json`` and ``index.html`` are written, ``reports/latest`` is
    left alone and :class:`NotebookFailed` is raised for the first failed notebook (its
    ``run_result`` holds the :class:`RunResult`).

    Example:
        >>> result = run_pipeline(notebooks=["01_ingest", "02_clean"],
        ...                       parameters={"as_of": "2024-06-30"}, progress=False)  # doctest: +SKIP
        >>> [(n.name, n.status) for n in result.notebooks]  # doctest: +SKIP
        [('01_ingest.ipynb', 'ok'), ('02_clean.ipynb', 'reused')]
    """
    jobs = _check_jobs(jobs)
    if not isinstance(force, (bool, list, tuple)):
        raise ValueError(f"The 'force' parameter must be True, False or a list of notebook names. "
                         f"Got {force!r} instead.")
    emit = log or (lambda _msg: None)
    paths = paths or get_paths()
    from .lock import data_lock
    from .runconfig import record, resolve_engine

    engine_settings = resolve_engine(None, engine)   # checked before anything runs
    with data_lock(paths.data, owner=f"workbench run {run_id or ''}".strip(), log=emit):
        record(paths, "engine", engine_settings.to_dict())
        return _run_locked(paths=paths, notebooks=notebooks, parameters=parameters, run_id=run_id,
                           kernel_name=kernel_name, progress=progress, html=html, emit=emit,
                           start_from=start_from, jobs=jobs, force=force)


def _recorded_engine(paths: Paths) -> dict[str, Any]:
    """The engine settings the run's stages use (recorded by :func:`run_pipeline`)."""
    from .runconfig import resolve_engine

    return resolve_engine(paths).to_dict()


def _start_from(sources: list[Path], start_from: str) -> list[Path]:
    """The notebooks from ``start_from`` (a name like ``04_customer_360`` or its number ``04``) on."""
    for i, src in enumerate(sources):
        if start_from in (src.name, src.stem, src.stem.split("_", 1)[0]):
            return sources[i:]
    raise ValueError(f"The 'from' notebook must be one of {[s.stem for s in sources]}. Got {start_from!r} instead.")


def _load_graph(sources: list[Path]) -> Pipeline:
    """The declarations of the folder holding the notebooks (none when they come from several folders)."""
    folders = {src.parent for src in sources}
    stems = [src.stem for src in sources]
    if len(folders) != 1:
        return Pipeline.from_mapping(None, stems)
    folder = folders.pop()
    names = sorted({p.stem for p in discover_notebooks(folder)} | set(stems))
    return load_pipeline(folder, names)


def _forced(force: bool | Sequence[str], sources: list[Path], graph: Pipeline) -> set[str]:
    """Stems to run whatever their fingerprint: all, none, or the named ones and their dependants."""
    stems = [s.stem for s in sources]
    if force is True:
        return set(stems)
    if not force:
        return set()
    out: set[str] = set()
    for item in force:
        name = Path(str(item)).name.removesuffix(".ipynb")
        hit = next((s for s in stems if name in (s, s.split("_", 1)[0])), None)
        if hit is None:
            raise ValueError(f"The 'force' notebooks must be among the notebooks of this run ({', '.join(stems)}). "
                             f"Got {str(item)!r} instead.")
        out |= {hit} | (graph.dependants(hit) & set(stems))
    return out


def _declared_parameters_cached(notebook: Path, cache: ChecksumCache) -> dict[str, Any]:
    """The notebook's ``parameters`` cell as papermill reads it, remembered by the notebook's checksum
    (papermill costs seconds to import: a run that reuses everything need not import it)."""
    return cache.memo(f"parameters:{cache.sha256(notebook)}",
                      lambda: json.loads(json.dumps(_declared_parameters(notebook), default=str)))


def _parameter_files(params: Mapping[str, Any], notebook_dir: Path, cache: ChecksumCache) -> dict[str, str]:
    """Content hashes of the files or folders that string parameters name (relative to the kernel's cwd)."""
    out: dict[str, str] = {}
    for key, value in sorted(params.items()):
        if not isinstance(value, str) or not value or "\n" in value or len(value) > 1024:
            continue
        candidate = Path(value).expanduser()
        candidate = candidate if candidate.is_absolute() else notebook_dir / candidate
        try:
            content = path_content_hash(candidate, cache)
        except OSError:
            continue
        if content is not None:
            out[key] = content
    return out


@dataclass
class _Prior:
    """A notebook's entry in an earlier run's manifest."""

    run_id: str
    run_dir: Path
    entry: dict[str, Any]
    environment: dict[str, Any]


class _EarlierRuns:
    """Manifests of earlier runs in the reports folder, newest first (read once, lazily)."""

    LIMIT = 200

    def __init__(self, reports: Path, current: str) -> None:
        self.reports, self.current = reports, current
        self._runs: list[tuple[str, Path, dict[str, Any]]] | None = None

    def _load(self) -> list[tuple[str, Path, dict[str, Any]]]:
        if self._runs is None:
            found = []
            try:
                dirs = [d for d in self.reports.iterdir() if d.name != self.current and not d.is_symlink()
                        and (d / "manifest.json").is_file()]
            except OSError:
                dirs = []
            dirs.sort(key=lambda d: (d / "manifest.json").stat().st_mtime_ns, reverse=True)
            for d in dirs[:self.LIMIT]:
                try:
                    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(manifest, dict):
                    found.append((str(manifest.get("started_utc") or ""), d, manifest))
            found.sort(key=lambda t: t[0], reverse=True)
            self._runs = found
        return self._runs

    def successes(self, name: str) -> Iterator[_Prior]:
        """Entries of ``name`` that ran or were reused successfully, newest first."""
        for _started, run_dir, manifest in self._load():
            for entry in manifest.get("notebooks") or []:
                if entry.get("name") == name and entry.get("status") in ("ok", "reused") and entry.get("fingerprint"):
                    yield _Prior(str(manifest.get("run_id") or run_dir.name), run_dir, entry,
                                 manifest.get("fingerprint_environment") or {})


def _why_rerun(inputs: Mapping[str, Any], environment: Mapping[str, Any], last: _Prior | None) -> str:
    """A short reason why a notebook's fingerprint differs from its last successful run."""
    if last is None:
        return "no earlier successful run"
    before = last.entry.get("inputs") or {}
    if before.get("source") != inputs.get("source"):
        return "the notebook changed"
    changed = sorted(k for k in set(before.get("parameters") or {}) | set(inputs.get("parameters") or {})
                     if (before.get("parameters") or {}).get(k, "<unset>") != (inputs.get("parameters") or {}).get(k, "<unset>"))
    if changed:
        return f"parameters changed: {', '.join(changed)}"
    if before.get("parameter_files") != inputs.get("parameter_files"):
        return "a file named by a parameter changed"
    if before.get("declaration") != inputs.get("declaration"):
        return "its declaration in pipeline.yaml changed"
    old_env = last.environment
    if old_env.get("workbench") != environment.get("workbench"):
        return "the workbench package changed"
    if old_env != environment:
        versions = sorted(k for k in set(old_env.get("versions") or {}) | set(environment.get("versions") or {})
                          if (old_env.get("versions") or {}).get(k) != (environment.get("versions") or {}).get(k))
        return f"package versions changed: {', '.join(versions)}" if versions else "the Python environment changed"
    old_reads, new_reads = before.get("reads") or {}, inputs.get("reads") or {}
    diff = sorted(k for k in set(old_reads) | set(new_reads) if old_reads.get(k) != new_reads.get(k))
    if diff:
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        return f"input changed: {diff[0]}{more}"
    return "its fingerprint changed"


@dataclass
class _Task:
    """One notebook of the run and what the runner knows about it."""

    index: int
    src: Path
    spec: NotebookSpec
    deps: list[str]
    waits: list[str]
    params: dict[str, Any]
    declared: dict[str, Any]
    status: str | None = None           # None: not started; running, ok, failed, reused, skipped
    fingerprint: str | None = None
    inputs: dict[str, Any] | None = None
    decided: bool = False
    reason: str | None = None
    prior: _Prior | None = None
    future: Any = None
    metrics_before: dict[str, tuple[int, int]] = field(default_factory=dict)
    data_before: dict[str, tuple[int, int]] = field(default_factory=dict)
    overlapped: set[str] = field(default_factory=set)   # notebooks running at some time while this one ran

    @property
    def name(self) -> str:
        return self.src.stem


def _run_locked(*, paths: Paths, notebooks, parameters, run_id, kernel_name, progress, html, emit,
                start_from, jobs: int, force) -> RunResult:
    shared = dict(parameters or {})
    if "language" in shared:  # the notebooks' and the index's language: refuse a wrong one before anything runs
        check_language(shared["language"])
    sources = _resolve_notebooks(notebooks, paths.notebooks)
    if start_from is not None:
        sources = _start_from(sorted(sources, key=lambda p: p.name), str(start_from))
    sources = sorted(sources, key=lambda p: p.name)  # pipeline order
    graph = _load_graph(sources)
    forced = _forced(force, sources, graph)
    cache = ChecksumCache(paths.data / CHECKSUM_CACHE_NAME)

    declared = {src: _declared_parameters_cached(src, cache) for src in sources}
    received = {src: filter_parameters(shared, declared[src]) for src in sources}
    unused = [k for k in shared if not any(k in received[src] for src in sources)]
    if unused:
        emit(f"note: parameter(s) {', '.join(unused)} not declared by any selected notebook; ignored")
    reuse = True
    if any(received[src].get("data_dir") not in (None, str(paths.data)) for src in sources):
        emit("note: a data_dir parameter points the notebooks at another folder than the runner's: "
             "nothing is reused in this run")
        reuse = False

    git = git_info(project_root())  # before the run writes anything
    started = _utc_now()
    t0 = time.perf_counter()
    run_id, run_dir = _create_run_dir(paths.reports, run_id, started)
    manifest_path = run_dir / "manifest.json"
    index_path = run_dir / "index.html"
    versions = package_versions()
    environment = {"kernel_name": kernel_name, "python": platform.python_version(), "versions": versions,
                   "workbench": package_tree_hash(PACKAGE_DIR, cache, exclude=RUNNER_MODULES)}

    manifest: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "started_utc": _iso(started),
        "finished_utc": None,
        "seconds": None,
        "parameters": shared,
        "engine": _recorded_engine(paths),
        "kernel_name": kernel_name,
        "jobs": jobs,
        "force": sorted(forced),
        "declarations": str(graph.source) if graph.source is not None else None,
        "notebooks": [],
        "error": None,
        "versions": versions,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "git": git,
        "fingerprint_environment": environment,
        "data_dir": str(paths.data),
        "reports_dir": str(paths.reports),
        "run_dir": str(run_dir),
        "stages": collect_stages(paths.metrics),
    }
    _write_json(manifest_path, manifest)

    selected = {src.stem for src in sources}
    tasks = [_Task(i, src, graph.specs[src.stem],
                   deps=[d for d in graph.depends_on(src.stem) if d in selected],
                   waits=[w for w in graph.waits_for(src.stem) if w in selected],
                   params=received[src], declared=declared[src])
             for i, src in enumerate(sources, start=1)]
    by_name = {t.name: t for t in tasks}
    entries: dict[str, dict[str, Any]] = {}
    results: dict[str, NotebookResult] = {}
    failures: dict[str, NotebookFailed] = {}
    earlier = _EarlierRuns(paths.reports, run_id)
    total = len(tasks)
    env = {ENV_DATA_DIR: str(paths.data), ENV_REPORTS_DIR: str(paths.reports), ENV_RUN_DIR: str(run_dir),
           # figures must land in the report even when the caller's environment says MPLBACKEND=agg
           # (CI, cron): the inline backend embeds them in the executed notebook
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    metrics_rel = paths.metrics.relative_to(paths.data).as_posix() if paths.metrics.is_relative_to(paths.data) \
        else None
    emit(f"workbench run {run_id}: {total} notebook(s), up to {jobs} at once -> {_display_path(run_dir)}")

    def tag(t: _Task) -> str:
        return f"[{t.index}/{total}] {t.src.name}"

    def metrics_of(t: _Task) -> dict[str, tuple[int, int]]:
        """mtime and size of the metrics files this notebook may write (only it writes them now)."""
        if metrics_rel is None:
            return {}
        snap = {}
        for rel in iter_matching_files(paths.data, [f"{metrics_rel}/*.json"]):
            if any(glob_matches(g, rel) for g in t.spec.writes):
                try:
                    st = (paths.data / rel).stat()
                except OSError:
                    continue
                snap[Path(rel).stem] = (st.st_mtime_ns, st.st_size)
        return snap

    def data_snapshot() -> dict[str, tuple[int, int]]:
        snap = {}
        for rel in iter_matching_files(paths.data, ["**"]):
            try:
                st = (paths.data / rel).stat()
            except OSError:
                continue
            snap[rel] = (st.st_mtime_ns, st.st_size)
        return snap

    def undeclared_writes(t: _Task) -> list[str]:
        """Files that changed while ``t`` ran and that no notebook running then declares it writes."""
        if not t.spec.declared:
            return []
        after = data_snapshot()
        allowed = [g for n in t.overlapped | {t.name} for g in by_name[n].spec.writes + by_name[n].spec.caches]
        changed = {rel for rel in set(t.data_before) | set(after) if t.data_before.get(rel) != after.get(rel)}
        return sorted(rel for rel in changed if not _TRANSIENT.search(rel)
                      and not any(glob_matches(g, rel) for g in allowed))

    def publish() -> None:
        manifest["notebooks"] = [entries[t.name] for t in tasks if t.name in entries]
        manifest["stages"] = collect_stages(paths.metrics)
        _write_json(manifest_path, manifest)

    def base_entry(t: _Task) -> dict[str, Any]:
        return {"name": t.src.name, "source": str(t.src), "parameters": t.params,
                "declared_parameters": sorted(t.declared), "declared": t.spec.declared,
                "depends_on": [f"{d}.ipynb" for d in t.deps], "fingerprint": t.fingerprint,
                "inputs": t.inputs, "reused_from": None, "executed_in": None, "reason": t.reason}

    def decide(t: _Task) -> None:
        """Fingerprint ``t`` (its inputs are final now) and find an earlier run to reuse."""
        t.decided = True
        if t.spec.declared:
            reads = list(iter_matching_files(paths.data, t.spec.reads, exclude=graph.fingerprint_excludes(t.name)))
            t.inputs = {"source": cache.sha256(t.src), "parameters": t.params,
                        "parameter_files": _parameter_files(t.params, t.src.parent, cache),
                        "declaration": t.spec.to_dict(), "reads": cache.checksums(paths.data, reads)}
            t.fingerprint = notebook_fingerprint(
                source_sha256=t.inputs["source"], parameters=t.params, parameter_files=t.inputs["parameter_files"],
                environment=environment, declaration=t.inputs["declaration"], inputs=t.inputs["reads"])
        if not t.spec.declared:
            t.reason = "not declared in pipeline.yaml"
        elif not reuse:
            t.reason = "data_dir parameter given"
        elif t.name in forced:
            t.reason = "forced"
        elif any(by_name[d].status == "ok" for d in t.deps):
            t.reason = f"{next(d for d in t.deps if by_name[d].status == 'ok')} ran again"
        else:
            t.prior, t.reason = find_prior(t)

    def find_prior(t: _Task) -> tuple[_Prior | None, str | None]:
        last = None
        problem = None
        for prior in earlier.successes(t.src.name):
            last = last or prior
            if prior.entry.get("fingerprint") != t.fingerprint:
                continue
            problem = reusable(prior)
            if problem is None:
                return prior, None
            break  # the newest run with this fingerprint decides
        return None, problem or _why_rerun(t.inputs or {}, environment, last)

    def reusable(prior: _Prior) -> str | None:
        entry = prior.entry
        if not entry.get("output") or not (prior.run_dir / entry["output"]).is_file():
            return f"the executed notebook of run {prior.run_id} is gone"
        if html and (not entry.get("html") or not (prior.run_dir / entry["html"]).is_file()):
            return f"run {prior.run_id} has no HTML report of it"
        for rel in entry.get("run_outputs") or []:
            if not (prior.run_dir / rel).is_file():
                return f"{rel} of run {prior.run_id} is gone"
        for rel, sha in (entry.get("outputs") or {}).items():
            try:
                now = cache.sha256(paths.data / rel)
            except FileNotFoundError:
                return f"its output {rel} is gone"
            if now != sha:
                return f"its output {rel} changed since run {prior.run_id}"
        return None

    def reuse_prior(t: _Task) -> None:
        prior, entry = t.prior, dict(t.prior.entry)
        t0_copy = time.perf_counter()
        output = run_dir / t.src.name
        shutil.copyfile(prior.run_dir / entry["output"], output)
        html_path = None
        if html and entry.get("html"):
            html_path = run_dir / f"{t.name}.html"
            shutil.copyfile(prior.run_dir / entry["html"], html_path)
        for rel in entry.get("run_outputs") or []:
            (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(prior.run_dir / rel, run_dir / rel)
        seconds = time.perf_counter() - t0_copy
        t.status = "reused"
        results[t.name] = NotebookResult(t.src.name, "reused", seconds, output, html_path, None, t.params,
                                         reused_from=prior.run_id)
        entries[t.name] = {
            **base_entry(t), "status": "reused", "seconds": round(seconds, 3), "output": output.name,
            "html": html_path.name if html_path else None, "html_error": None,
            "stages_written": entry.get("stages_written") or [], "error": None,
            "outputs": entry.get("outputs") or {}, "run_outputs": entry.get("run_outputs") or [],
            "reused_from": prior.run_id, "executed_in": entry.get("executed_in") or prior.run_id,
            "original_seconds": entry.get("original_seconds", entry.get("seconds")), "reason": None}
        emit(f"{tag(t)} ... reused from run {prior.run_id}")

    def skip(t: _Task, because: str) -> None:
        t.status = "skipped"
        output = run_dir / t.src.name
        results[t.name] = NotebookResult(t.src.name, "skipped", 0.0, output, None, None, t.params)
        entries[t.name] = {**base_entry(t), "status": "skipped", "seconds": 0.0, "output": None, "html": None,
                           "html_error": None, "stages_written": [], "error": None, "outputs": {},
                           "run_outputs": [], "reason": f"{because} failed or was skipped"}
        emit(f"{tag(t)} ... skipped ({because}.ipynb did not succeed)")

    def finish(t: _Task, outcome: _JobOutcome) -> None:
        output = run_dir / t.src.name
        after = metrics_of(t)
        written = sorted(k for k, v in after.items() if t.metrics_before.get(k) != v)
        unlisted = undeclared_writes(t)
        if unlisted:
            more = f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else ""
            emit(f"{tag(t)} ... note: wrote files its declaration in pipeline.yaml does not list: "
                 f"{', '.join(unlisted[:5])}{more}")
        if outcome.html_error:
            emit(f"{tag(t)} ... HTML export failed ({outcome.html_error})")
        entry = {**base_entry(t), "seconds": round(outcome.seconds, 3),
                 "output": output.name if output.exists() else None,
                 "html": outcome.html_path.name if outcome.html_path is not None else None,
                 "html_error": outcome.html_error, "stages_written": written, "error": None,
                 "outputs": {}, "run_outputs": [], "executed_in": run_id, "undeclared_writes": unlisted}
        failed = outcome.failure
        if failed is None:
            t.status = "ok"
            if t.spec.declared:
                entry["outputs"] = cache.checksums(paths.data, iter_matching_files(
                    paths.data, t.spec.writes, exclude=graph.later_writes(t.name)))
                own = {t.src.name, f"{t.name}.html"}
                entry["run_outputs"] = [rel for rel in iter_matching_files(run_dir, t.spec.run_writes)
                                        if rel not in own]
            results[t.name] = NotebookResult(t.src.name, "ok", outcome.seconds, output, outcome.html_path, None,
                                             t.params)
            emit(f"{tag(t)} ... ok in {outcome.seconds:.1f} s")
        else:
            t.status = "failed"
            failure = NotebookFailed(t.src.name, failed.cell_index, failed.ename, failed.evalue, output,
                                     exec_count=failed.exec_count)
            failures[t.name] = failure
            message = str(failure)
            results[t.name] = NotebookResult(t.src.name, "failed", outcome.seconds, output, outcome.html_path,
                                             message, t.params)
            entry["error"] = {
                "notebook": t.src.name, "cell_index": failed.cell_index, "exec_count": failed.exec_count,
                "ename": failed.ename, "evalue": failed.evalue, "message": message,
                "traceback": failed.traceback, "output": entry["output"], "html": entry["html"],
            }
            if manifest["error"] is None:
                manifest["error"] = entry["error"]
            what = f"{failed.ename}: {failed.evalue}" if failed.evalue else failed.ename
            cell = f", cell {failed.cell_index}" if failed.cell_index is not None else ""
            emit(f"{tag(t)} ... failed in {outcome.seconds:.1f} s ({what}{cell})")
        entries[t.name] = {**entry, "status": t.status}

    executor: Any = None
    running: dict[Any, _Task] = {}
    aborted: BaseException | None = None
    try:
        while True:
            progressed = True
            while progressed:  # start, reuse or skip whatever is ready, in pipeline order
                progressed = False
                for t in tasks:
                    if t.status is not None or any(by_name[w].status in (None, "running") for w in t.waits):
                        continue
                    bad = next((d for d in t.deps if by_name[d].status in ("failed", "skipped")), None)
                    if bad is not None:
                        skip(t, bad)
                        progressed = True
                        continue
                    if not t.decided:
                        decide(t)
                    if t.prior is not None:
                        reuse_prior(t)
                        publish()
                        progressed = True
                        continue
                    if len(running) >= jobs:
                        continue
                    if executor is None:  # no worker for a run that reuses everything
                        remaining = sum(u.status is None for u in tasks)
                        executor = _InlineExecutor() if jobs == 1 or remaining == 1 else \
                            _WorkerPool(min(jobs, remaining))
                    emit(f"{tag(t)} ..." + (f" ({t.reason})" if t.reason and t.spec.declared else ""))
                    t.metrics_before = metrics_of(t)
                    t.data_before = data_snapshot() if t.spec.declared else {}
                    t.overlapped = {u.name for u in running.values()}
                    for u in running.values():
                        u.overlapped.add(t.name)
                    t.status = "running"
                    job = _Job(t.src, run_dir / t.src.name, run_dir / f"{t.name}.html" if html else None,
                               t.params, kernel_name, progress and jobs == 1, env)
                    future = executor.submit(_run_job, job)
                    running[future] = t
                    progressed = True
                    if future.done():  # the inline executor has finished it already
                        break
            if not running:
                break
            from concurrent.futures import FIRST_COMPLETED, wait

            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f].index):
                t = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory ...)
                    outcome = _JobOutcome(_Failure(None, None, type(exc).__name__, str(exc), ""), 0.0, None, None)
                finish(t, outcome)
            publish()
    except BaseException as exc:  # Ctrl-C, or a bug: record what is known, stop the workers, re-raise
        aborted = exc
        raise
    finally:
        if executor is not None:
            executor.shutdown(abort=aborted is not None)
        cache.save()
        if aborted is not None:
            what = "interrupted" if isinstance(aborted, KeyboardInterrupt) else "failed"
            manifest.update(status=what, finished_utc=_iso(_utc_now()), seconds=round(time.perf_counter() - t0, 3))
            if manifest["error"] is None:
                manifest["error"] = {"message": f"the runner stopped: {type(aborted).__name__}: {aborted}"}
            publish()
            _write_text_atomic(index_path, render_index(manifest))

    finished = _utc_now()
    failure = next((failures[t.name] for t in tasks if t.name in failures), None)
    status = "failed" if failure is not None else "ok"
    if failure is not None:  # the first failure in pipeline order, whichever finished first
        manifest["error"] = entries[Path(failure.notebook).stem]["error"]
    manifest.update(status=status, finished_utc=_iso(finished), seconds=round(time.perf_counter() - t0, 3))
    publish()
    _write_text_atomic(index_path, render_index(manifest))

    ordered = [results[t.name] for t in tasks]
    result = RunResult(run_id, run_dir, status, ordered, manifest_path, index_path)
    counts = {s: sum(r.status == s for r in ordered) for s in ("ok", "reused", "failed", "skipped")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if failure is not None:
        emit(f"run {run_id} failed after {manifest['seconds']:.1f} s ({summary}); see {_display_path(index_path)}")
        failure.run_result = result
        raise failure
    latest = _point_latest(paths.reports, run_dir)
    emit(f"run {run_id} ok in {manifest['seconds']:.1f} s ({summary}); report {_display_path(index_path)}"
         f" (latest: {_display_path(latest)})")
    return result

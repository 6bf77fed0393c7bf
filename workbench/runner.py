"""Headless pipeline runner: execute the numbered notebooks, keep every artefact.

``workbench run``, ``make report`` and schedulers (cron, Airflow) call
:func:`run_pipeline`. One run writes one folder ``reports/<run_id>/`` holding

- ``NN_name.ipynb``  the executed notebook (papermill), also when it failed
- ``NN_name.html``   a code-free HTML report of it (nbconvert, in-process)
- ``manifest.json``  parameters, timings, package versions, git commit, stage metrics
- ``index.html``     a self-contained overview page linking everything

and, after a successful run only, points ``reports/latest`` at the run folder.

The kernels see the runner's data area: ``WORKBENCH_DATA_DIR``,
``WORKBENCH_REPORTS_DIR`` and ``WORKBENCH_RUN_DIR`` are set in ``os.environ``
for the duration of the run (kernels inherit the environment) and restored
afterwards. Because of that, do not run two pipelines in threads of one
process at the same time; separate processes are fine.

Example:
    >>> from workbench.runner import run_pipeline          # doctest: +SKIP
    >>> result = run_pipeline(parameters={"as_of": "2024-06-30"})  # doctest: +SKIP
    [1/5] 01_ingest.ipynb ...
    [1/5] 01_ingest.ipynb ... ok in 4.2 s
    ...
    >>> result.status, result.index_path.name               # doctest: +SKIP
    ('ok', 'index.html')

papermill and nbconvert are imported lazily (each costs ~3 s to import here), so
importing this module is cheap.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from workbench.config import Paths, get_paths, project_root

if TYPE_CHECKING:  # pragma: no cover
    from nbconvert import HTMLExporter

__all__ = [
    "NotebookFailed",
    "NotebookResult",
    "RunResult",
    "collect_stages",
    "discover_notebooks",
    "export_html",
    "filter_parameters",
    "git_info",
    "package_versions",
    "render_index",
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

_TRACEBACK_TAIL = 4000  # characters of traceback kept in the manifest
_ANSI = re.compile("\x1b\\[(K|.*?m)")


# --------------------------------------------------------------------------- results


@dataclass
class NotebookResult:
    """What happened to one notebook of a run.

    ``status`` is ``"ok"``, ``"failed"`` or ``"skipped"``. ``output_path`` is where the
    executed notebook is (or would have been, for skipped ones); ``html_path`` is
    ``None`` when no HTML was written. ``parameters`` are the values papermill injected.

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


def _metrics_snapshot(metrics_dir: Path) -> dict[str, tuple[int, int]]:
    if not metrics_dir.is_dir():
        return {}
    snap = {}
    for p in metrics_dir.glob("*.json"):
        try:
            st = p.stat()
        except OSError:
            continue
        snap[p.stem] = (st.st_mtime_ns, st.st_size)
    return snap


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
.skipped,.running{background:#eaeef2;color:#57606a}
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


def render_index(manifest: Mapping[str, Any]) -> str:
    """The run's ``index.html`` (self-contained, inline CSS) built from its manifest.

    Everything taken from the manifest is escaped with :func:`html.escape`.

    Example:
        >>> page = render_index({"run_id": "r1", "status": "ok", "notebooks": []})
        >>> "<title>workbench run r1</title>" in page
        True
    """
    run_id = manifest.get("run_id", "")
    status = str(manifest.get("status", ""))
    params = manifest.get("parameters") or {}
    git = manifest.get("git")
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>workbench run {_e(run_id)}</title>",
        f"<style>{_INDEX_CSS}</style></head><body>",
        f'<h1>workbench run {_e(run_id)} <span class="badge {_e(status)}">{_e(status)}</span></h1>',
    ]

    error = manifest.get("error")
    if status == "failed" and error:
        out.append('<div class="failure" role="alert"><h2>Run failed</h2>')
        out.append(f"<p>{_e(error.get('message'))}</p>")
        links = []
        if error.get("html"):
            links.append(f'<a href="{_href(error["html"])}">report</a>')
        if error.get("output"):
            links.append(f'<a href="{_href(error["output"])}">executed notebook</a>')
        if links:
            out.append(f"<p>Open the failed notebook: {' · '.join(links)}</p>")
        if error.get("traceback"):
            out.append(f"<pre>{_e(error['traceback'])}</pre>")
        out.append("</div>")

    meta: list[tuple[str, str]] = [
        ("Status", f'<span class="badge {_e(status)}">{_e(status)}</span>'),
        ("Started (UTC)", _e(manifest.get("started_utc"))),
        ("Finished (UTC)", _e(manifest.get("finished_utc"))),
        ("Duration", _e(f"{manifest['seconds']:.1f} s") if isinstance(manifest.get("seconds"), (int, float)) else ""),
    ]
    if git is None:
        meta.append(("Git commit", '<span class="muted">not a git checkout</span>'))
    else:
        commit = git.get("commit")
        text = f"<code>{_e(commit)}</code>" if commit else '<span class="muted">no commit</span>'
        if git.get("dirty"):
            text += ' <span class="badge failed">uncommitted changes</span>'
        meta.append(("Git commit", text))
    as_of = {k: v for k, v in params.items() if _is_as_of(k)}
    other = {k: v for k, v in params.items() if not _is_as_of(k)}
    meta.append(("As of", ", ".join(f"<code>{_e(k)}</code> = {_e(v)}" for k, v in as_of.items())
                 or '<span class="muted">notebook defaults</span>'))
    if other:
        meta.append(("Parameters", ", ".join(f"<code>{_e(k)}</code> = {_e(json.dumps(v, default=str))}"
                                             for k, v in other.items())))
    for label, key in (("Data folder", "data_dir"), ("Kernel", "kernel_name"), ("Python", "python")):
        if manifest.get(key):
            meta.append((label, f"<code>{_e(manifest[key])}</code>"))
    out.append('<table class="meta">')
    out += [f"<tr><th>{_e(label)}</th><td>{value}</td></tr>" for label, value in meta]
    out.append("</table>")

    report = next((nb for nb in manifest.get("notebooks") or [] if "segment_report" in str(nb.get("name"))
                   and nb.get("html")), None)
    if report is not None:
        out.append(f'<p class="lead"><a href="{_href(report["html"])}"><strong>Open the segment report</strong></a>'
                   " — headline numbers, segments, models and data quality on one page.</p>")
    if (Path(manifest.get("run_dir") or ".") / "audiences").is_dir():
        out.append('<p>Audience exports (hashed contacts, consent honoured): <a href="audiences/">audiences/</a>'
                   ' · <a href="audiences/summary.json">summary.json</a></p>')
    out.append("<h2>Notebooks</h2>")
    out.append('<table><thead><tr><th class="num">#</th><th>Notebook</th><th>Status</th>'
               '<th class="num">Seconds</th><th>Report</th><th>Executed notebook</th></tr></thead><tbody>')
    listed = sorted(manifest.get("notebooks") or [], key=lambda nb: "segment_report" not in str(nb.get("name")))
    for i, nb in enumerate(listed, start=1):  # the segment report first, then pipeline order
        st = str(nb.get("status", ""))
        seconds = nb.get("seconds")
        report = f'<a href="{_href(nb["html"])}">HTML</a>' if nb.get("html") else '<span class="muted">–</span>'
        ipynb = f'<a href="{_href(nb["output"])}">.ipynb</a>' if nb.get("output") else '<span class="muted">–</span>'
        err = nb.get("error")
        detail = f'<div class="muted">{_e(err.get("ename"))}: {_e(err.get("evalue"))}</div>' if err else ""
        out.append(
            f'<tr><td class="num">{i}</td><td>{_e(nb.get("name"))}{detail}</td>'
            f'<td><span class="badge {_e(st)}">{_e(st)}</span></td>'
            f'<td class="num">{_e(f"{seconds:.1f}") if isinstance(seconds, (int, float)) and st != "skipped" else ""}</td>'
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
    out.append("<h2>Row counts per stage</h2>")
    if rows:
        out.append('<table><thead><tr><th>Stage</th><th class="num">Read</th><th class="num">Kept</th>'
                   '<th class="num">Quarantined</th><th class="num">Seconds</th></tr></thead><tbody>')
        out += rows
        out.append("</tbody></table>")
    else:
        out.append('<p class="muted">No stage reported row totals.</p>')

    versions = manifest.get("versions") or {}
    out.append('<h2>Details</h2><p><a href="manifest.json">manifest.json</a>'
               f' <span class="muted">· {_e(manifest.get("platform"))}</span></p>')
    if versions:
        out.append("<details><summary>Package versions</summary><table>")
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


# --------------------------------------------------------------------------- the runner


def run_pipeline(*, paths: Paths | None = None, notebooks: Sequence[str | Path] | None = None,
                 parameters: Mapping[str, Any] | None = None, run_id: str | None = None,
                 kernel_name: str = "python3", progress: bool = True, html: bool = True,
                 log: Callable[[str], None] | None = print, start_from: str | None = None) -> RunResult:
    """Execute the pipeline notebooks headless into ``paths.reports / run_id``.

    - ``notebooks``: names or paths, run in the given order (a bare name is looked up in
      ``paths.notebooks``; ``.ipynb`` may be omitted). Default: :func:`discover_notebooks`.
    - ``parameters``: one shared dict; each notebook receives only the names its
      ``parameters`` cell declares (see :func:`filter_parameters`).
    - ``start_from``: skip the notebooks before this one (resume a failed run).
    - The run holds a lock on the data folder (:mod:`workbench.lock`): a second run on the
      same data refuses to start with a message naming the holder.
    - ``run_id``: default is the UTC start time ``YYYYmmddTHHMMSSZ``; ``-2``, ``-3`` ...
      is appended when the folder already exists (read the actual id from the result).
    - The kernels get ``WORKBENCH_DATA_DIR``/``WORKBENCH_REPORTS_DIR`` of ``paths`` and
      ``WORKBENCH_RUN_DIR`` (the run folder); the caller's environment is restored after.

    On a notebook error the executed notebook (with papermill's error banner) and its
    HTML are kept, later notebooks are marked ``"skipped"``, ``manifest.json`` and
    ``index.html`` are written, ``reports/latest`` is left alone and
    :class:`NotebookFailed` is raised (its ``run_result`` holds the :class:`RunResult`).

    Example:
        >>> result = run_pipeline(notebooks=["01_ingest", "02_clean"],
        ...                       parameters={"as_of": "2024-06-30"}, progress=False)  # doctest: +SKIP
        >>> [(n.name, n.status) for n in result.notebooks]  # doctest: +SKIP
        [('01_ingest.ipynb', 'ok'), ('02_clean.ipynb', 'ok')]
    """
    emit = log or (lambda _msg: None)
    paths = paths or get_paths()
    from .lock import data_lock

    with data_lock(paths.data, owner=f"workbench run {run_id or ''}".strip(), log=emit):
        return _run_locked(paths=paths, notebooks=notebooks, parameters=parameters, run_id=run_id,
                           kernel_name=kernel_name, progress=progress, html=html, emit=emit, start_from=start_from)


def _start_from(sources: list[Path], start_from: str) -> list[Path]:
    """The notebooks from ``start_from`` (a name like ``04_customer_360`` or its number ``04``) on."""
    for i, src in enumerate(sources):
        if start_from in (src.name, src.stem, src.stem.split("_", 1)[0]):
            return sources[i:]
    raise ValueError(f"The 'from' notebook must be one of {[s.stem for s in sources]}. Got {start_from!r} instead.")


def _run_locked(*, paths: Paths, notebooks, parameters, run_id, kernel_name, progress, html, emit,
                start_from) -> RunResult:
    shared = dict(parameters or {})
    sources = _resolve_notebooks(notebooks, paths.notebooks)
    if start_from is not None:
        sources = _start_from(sources, str(start_from))

    declared = {src: _declared_parameters(src) for src in sources}
    received = {src: filter_parameters(shared, declared[src]) for src in sources}
    unused = [k for k in shared if not any(k in received[src] for src in sources)]
    if unused:
        emit(f"note: parameter(s) {', '.join(unused)} not declared by any selected notebook; ignored")

    git = git_info(project_root())  # before the run writes anything
    started = _utc_now()
    t0 = time.perf_counter()
    run_id, run_dir = _create_run_dir(paths.reports, run_id, started)
    manifest_path = run_dir / "manifest.json"
    index_path = run_dir / "index.html"

    manifest: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "started_utc": _iso(started),
        "finished_utc": None,
        "seconds": None,
        "parameters": shared,
        "kernel_name": kernel_name,
        "notebooks": [],
        "error": None,
        "versions": package_versions(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "git": git,
        "data_dir": str(paths.data),
        "reports_dir": str(paths.reports),
        "run_dir": str(run_dir),
        "stages": collect_stages(paths.metrics),
    }

    def notebook_entry(src: Path, res: NotebookResult, stages_written: list[str],
                       error: dict[str, Any] | None, html_error: str | None) -> dict[str, Any]:
        return {
            "name": res.name,
            "source": str(src),
            "status": res.status,
            "seconds": round(res.seconds, 3),
            "parameters": res.parameters,
            "declared_parameters": sorted(declared[src]),
            "output": res.output_path.name if res.output_path.exists() else None,
            "html": res.html_path.name if res.html_path is not None else None,
            "html_error": html_error,
            "stages_written": stages_written,
            "error": error,
        }

    _write_json(manifest_path, manifest)
    emit(f"workbench run {run_id}: {len(sources)} notebook(s) -> {_display_path(run_dir)}")

    exporter = _html_exporter() if html else None
    results: list[NotebookResult] = []
    failure: NotebookFailed | None = None
    total = len(sources)
    env = {ENV_DATA_DIR: str(paths.data), ENV_REPORTS_DIR: str(paths.reports), ENV_RUN_DIR: str(run_dir),
           # figures must land in the report even when the caller's environment says MPLBACKEND=agg
           # (CI, cron): the inline backend embeds them in the executed notebook
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}

    with _kernel_environment(env):
        for i, src in enumerate(sources, start=1):
            tag = f"[{i}/{total}] {src.name}"
            output = run_dir / src.name
            if failure is not None:
                res = NotebookResult(src.name, "skipped", 0.0, output, None, None, received[src])
                results.append(res)
                manifest["notebooks"].append(notebook_entry(src, res, [], None, None))
                emit(f"{tag} ... skipped")
                continue

            emit(f"{tag} ...")
            before = _metrics_snapshot(paths.metrics)
            t_nb = time.perf_counter()
            failed = _execute(src, output, received[src], kernel_name, progress)
            seconds = time.perf_counter() - t_nb
            after = _metrics_snapshot(paths.metrics)
            written = sorted(k for k, v in after.items() if before.get(k) != v)

            html_path: Path | None = None
            html_error: str | None = None
            if exporter is not None and output.exists():
                try:
                    html_path = export_html(output, run_dir / f"{src.stem}.html", title=src.stem,
                                            exporter=exporter)
                except Exception as exc:  # noqa: BLE001 - a report problem must not hide the run
                    html_error = f"{type(exc).__name__}: {exc}"
                    emit(f"{tag} ... HTML export failed ({html_error})")

            error_entry = None
            if failed is None:
                res = NotebookResult(src.name, "ok", seconds, output, html_path, None, received[src])
                emit(f"{tag} ... ok in {seconds:.1f} s")
            else:
                failure = NotebookFailed(src.name, failed.cell_index, failed.ename, failed.evalue,
                                         output, exec_count=failed.exec_count)
                message = str(failure)
                res = NotebookResult(src.name, "failed", seconds, output, html_path, message,
                                     received[src])
                error_entry = {
                    "notebook": src.name,
                    "cell_index": failed.cell_index,
                    "exec_count": failed.exec_count,
                    "ename": failed.ename,
                    "evalue": failed.evalue,
                    "message": message,
                    "traceback": failed.traceback,
                    "output": output.name if output.exists() else None,
                    "html": html_path.name if html_path is not None else None,
                }
                manifest["error"] = error_entry
                what = f"{failed.ename}: {failed.evalue}" if failed.evalue else failed.ename
                cell = f", cell {failed.cell_index}" if failed.cell_index is not None else ""
                emit(f"{tag} ... failed in {seconds:.1f} s ({what}{cell})")
            results.append(res)
            manifest["notebooks"].append(notebook_entry(src, res, written, error_entry, html_error))
            manifest["stages"] = collect_stages(paths.metrics)
            _write_json(manifest_path, manifest)  # progress for anyone watching the run

    finished = _utc_now()
    status = "failed" if failure is not None else "ok"
    manifest.update(status=status, finished_utc=_iso(finished),
                    seconds=round(time.perf_counter() - t0, 3))
    _write_json(manifest_path, manifest)
    _write_text_atomic(index_path, render_index(manifest))

    result = RunResult(run_id, run_dir, status, results, manifest_path, index_path)
    if failure is not None:
        emit(f"run {run_id} failed after {manifest['seconds']:.1f} s; see {_display_path(index_path)}")
        failure.run_result = result
        raise failure
    latest = _point_latest(paths.reports, run_dir)
    emit(f"run {run_id} ok in {manifest['seconds']:.1f} s; report {_display_path(index_path)}"
         f" (latest: {_display_path(latest)})")
    return result

"""Tests of workbench.runner (headless papermill runs, HTML export, manifest, index).

Kernel starts cost ~2-4 s each here, so the whole module executes only three
notebooks: one passing run of two notebooks (shared by several tests through a
module-scoped fixture) and one failing run of which only the failing notebook
executes.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from workbench.config import get_paths
from workbench.runner import (
    NotebookFailed,
    collect_stages,
    discover_notebooks,
    export_html,
    filter_parameters,
    package_versions,
    render_index,
    run_pipeline,
)
from workbench import runner as runner_module

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _cell(source: str, *tags: str):
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _write_nb(path: Path, cells) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _params_notebook(folder: Path) -> Path:
    """Declares ``x``; writes a metrics file and an export; prints distinctive output."""
    return _write_nb(folder / "01_params.ipynb", [
        new_markdown_cell("# Params demo\nNarrative text stays in the report."),
        _cell("x = 1", "parameters"),
        _cell(
            "import json, os, pathlib\n"
            "SECRET_SOURCE_MARKER = 'only in the source'\n"
            "metrics = pathlib.Path(os.environ['WORKBENCH_DATA_DIR']) / 'interim' / 'metrics'\n"
            "metrics.mkdir(parents=True, exist_ok=True)\n"
            "(metrics / 'demo.json').write_text(json.dumps({'stage': 'demo', 'seconds': 0.5,\n"
            "    'totals': {'read': 1234, 'kept': 1200, 'quarantined': 34}}))\n"
            "pathlib.Path(os.environ['WORKBENCH_RUN_DIR'], 'export.txt').write_text(str(x))\n"
            "print(f'PRINTED_OUTPUT x={x} cwd={os.getcwd()}')"
        ),
        _cell("print('REMOVED_CELL_OUTPUT')", "remove_cell"),
        _cell("print('HIDDEN_OUTPUT')", "remove_output"),
        _cell("print('WIDGET_CELL_OUTPUT')", "widget"),
    ])


def _plain_notebook(folder: Path) -> Path:
    """Declares ``y`` only, so the shared ``x`` must not reach it."""
    return _write_nb(folder / "02_plain.ipynb", [
        _cell("y = 'default'", "parameters"),
        _cell("print('PLAIN_OUTPUT', y, 'x' in globals())"),
    ])


def _boom_notebook(folder: Path) -> Path:
    """Declares ``x`` and raises in its 3rd cell (source cell index 2)."""
    return _write_nb(folder / "03_boom.ipynb", [
        _cell("x = 1", "parameters"),
        _cell("a = 1"),
        _cell("raise ValueError('boom')"),
        _cell("print('never reached')"),
    ])


def _after_notebook(folder: Path) -> Path:
    return _write_nb(folder / "04_after.ipynb", [_cell("print('after')")])


# --------------------------------------------------------------------------- fast tests (no kernel)


def test_discover_notebooks_ignores_checkpoints_and_copies(tmp_path):
    for name in ["02_clean.ipynb", "01_ingest.ipynb", "10_report.ipynb", "scratch.ipynb",
                 "1_short.ipynb", "02_clean-checkpoint.ipynb", "02_clean.nbconvert.ipynb",
                 "02_clean-output.ipynb", "03_x_executed.ipynb", "01_ingest.py"]:
        (tmp_path / name).write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "01_ingest-checkpoint.ipynb").write_text("{}")
    (tmp_path / "05_folder.ipynb").mkdir()

    assert [p.name for p in discover_notebooks(tmp_path)] == [
        "01_ingest.ipynb", "02_clean.ipynb", "10_report.ipynb"]
    assert discover_notebooks(tmp_path / "missing") == []


def test_filter_parameters_keeps_declared_names_only():
    assert filter_parameters({"x": 5, "as_of": "2024-01-31"}, {"x": {}, "z": {}}) == {"x": 5}
    assert filter_parameters({}, ["x"]) == {}


@pytest.mark.parametrize("notebook", sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9]*.ipynb")),
                         ids=lambda p: p.stem)
def test_every_parameter_of_a_shipped_notebook_can_be_set(notebook):
    """The runner passes a notebook only the names papermill finds in its ``parameters``
    cell; a line papermill cannot parse (e.g. a comment holding ``=`` or quotes) would
    silently make that parameter impossible to set from ``workbench run -p``."""
    import ast

    import papermill

    cell = next(c for c in nbformat.read(notebook, as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))
    assigned = {t.id for node in ast.parse(cell.source).body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    declared = set(papermill.inspect_notebook(str(notebook)))
    assert assigned - declared == set(), f"{notebook.name}: papermill cannot parse {sorted(assigned - declared)}"


def test_collect_stages_reads_json_objects_and_survives_bad_files(tmp_path):
    (tmp_path / "ingest.json").write_text(json.dumps({"stage": "ingest", "totals": {"read": 3}}))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("ignored")
    stages = collect_stages(tmp_path)
    assert stages["ingest"] == {"stage": "ingest", "totals": {"read": 3}}
    assert "error" in stages["broken"]
    assert set(stages) == {"ingest", "broken"}


def test_package_versions_skips_missing():
    versions = package_versions(["papermill", "definitely-not-installed-pkg-123"])
    assert set(versions) == {"papermill"}


def test_render_index_escapes_everything():
    page = render_index({
        "run_id": "<script>alert(1)</script>",
        "status": "failed",
        "parameters": {"as_of": "<b>2024</b>"},
        "notebooks": [{"name": "01_<x>.ipynb", "status": "failed", "seconds": 1.0,
                       "html": "01_<x>.html", "output": "01_<x>.ipynb",
                       "error": {"ename": "ValueError", "evalue": "<img src=x>"}}],
        "error": {"message": "Notebook 01_<x>.ipynb failed", "traceback": "<tb>"},
        "stages": {"s": {"stage": "<s>", "totals": {"read": 10, "kept": 9, "quarantined": 1}}},
    })
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page
    assert "Run failed" in page
    assert 'href="01_%3Cx%3E.html"' in page


def test_latest_falls_back_to_text_file(tmp_path, monkeypatch):
    run_dir = tmp_path / "20240101T000000Z"
    run_dir.mkdir()

    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(runner_module.os, "symlink", no_symlinks)
    target = runner_module._point_latest(tmp_path, run_dir)
    assert target == tmp_path / "latest.txt"
    assert target.read_text().strip() == "20240101T000000Z"
    assert not (tmp_path / "latest").exists()


def test_run_dir_gets_suffix_when_it_exists(tmp_path):
    from datetime import datetime, timezone

    now = datetime(2024, 1, 31, 12, 0, 5, tzinfo=timezone.utc)
    first = runner_module._create_run_dir(tmp_path, None, now)
    second = runner_module._create_run_dir(tmp_path, None, now)
    assert first[0] == "20240131T120005Z"
    assert second[0].startswith("20240131T120005Z-") and second[1].is_dir()
    with pytest.raises(ValueError):
        runner_module._create_run_dir(tmp_path, "../escape", now)


def test_unknown_notebook_is_reported_before_anything_runs(tmp_path):
    paths = get_paths(data_dir=tmp_path / "data", reports_dir=tmp_path / "reports")
    with pytest.raises(FileNotFoundError, match="nope"):
        run_pipeline(paths=paths, notebooks=[tmp_path / "nope.ipynb"], log=None)
    assert not (tmp_path / "reports").exists()


def test_notebook_failed_message_and_pickling(tmp_path):
    kept = tmp_path / "02_clean.ipynb"
    kept.write_text("{}")
    err = NotebookFailed("02_clean.ipynb", 7, "KeyError", "'phone'", kept, exec_count=8)
    assert str(err).startswith("Notebook 02_clean.ipynb failed in cell 7 (KeyError: 'phone'); "
                               "the executed notebook is kept at ")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.notebook, clone.cell_index, clone.exec_count) == ("02_clean.ipynb", 7, 8)


# --------------------------------------------------------------------------- kernel runs


@pytest.fixture(scope="module")
def passing_run(tmp_path_factory):
    """One successful run of 01_params + 02_plain (two kernel starts, in this process: ``jobs=1``)."""
    root = tmp_path_factory.mktemp("runner")
    nb_dir = root / "nbs"
    sources = [_params_notebook(nb_dir), _plain_notebook(nb_dir)]
    paths = get_paths(data_dir=root / "data", reports_dir=root / "reports")
    env_before = {k: os.environ.get(k) for k in
                  ("WORKBENCH_DATA_DIR", "WORKBENCH_REPORTS_DIR", "WORKBENCH_RUN_DIR")}
    lines: list[str] = []
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect(level=logging.WARNING)
    logging.getLogger("papermill").addHandler(handler)
    try:
        result = run_pipeline(paths=paths, notebooks=sources,
                              parameters={"x": 5, "y": "shared", "as_of": "2024-01-31"},
                              run_id="run-ok", progress=False, log=lines.append, jobs=1)
    finally:
        logging.getLogger("papermill").removeHandler(handler)
    env_after = {k: os.environ.get(k) for k in env_before}
    return {"root": root, "paths": paths, "result": result, "lines": lines,
            "records": records, "env": (env_before, env_after), "sources": sources}


def test_passing_run_writes_executed_notebooks_and_logs(passing_run):
    result = passing_run["result"]
    assert result.status == "ok"
    assert result.run_id == "run-ok"
    assert result.run_dir == passing_run["paths"].reports / "run-ok"
    assert [(n.name, n.status) for n in result.notebooks] == [
        ("01_params.ipynb", "ok"), ("02_plain.ipynb", "ok")]
    for n in result.notebooks:
        assert n.output_path.is_file() and n.output_path.parent == result.run_dir
        assert n.html_path == result.run_dir / n.output_path.with_suffix(".html").name
        assert n.html_path.is_file()
        assert n.seconds > 0 and n.error is None
    lines = passing_run["lines"]
    assert "[1/2] 01_params.ipynb ..." in lines
    assert any(line.startswith("[2/2] 02_plain.ipynb ... ok in ") and line.endswith(" s")
               for line in lines)
    assert any("as_of" in line and "ignored" in line for line in lines)
    # the kernel saw the runner's paths, ran in the notebook's folder, could export
    executed = nbformat.read(result.notebooks[0].output_path, as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "PRINTED_OUTPUT x=5" in printed
    assert f"cwd={passing_run['sources'][0].parent}" in printed
    assert (result.run_dir / "export.txt").read_text() == "5"
    assert (passing_run["paths"].metrics / "demo.json").is_file()
    # environment restored
    before, after = passing_run["env"]
    assert before == after


def test_parameters_only_reach_notebooks_that_declare_them(passing_run):
    result = passing_run["result"]
    first, second = result.notebooks
    assert first.parameters == {"x": 5}
    assert second.parameters == {"y": "shared"}
    plain = nbformat.read(second.output_path, as_version=4)
    injected = [c for c in plain.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "y = \"shared\"" in injected[0].source and "x =" not in injected[0].source
    printed = "".join(o.get("text", "") for c in plain.cells for o in c.get("outputs", []))
    assert "PLAIN_OUTPUT shared False" in printed
    warnings = [r.getMessage() for r in passing_run["records"]]
    assert not any("unknown parameter" in w.lower() for w in warnings), warnings


def test_html_has_outputs_but_no_code(passing_run):
    page = passing_run["result"].notebooks[0].html_path.read_text(encoding="utf-8")
    assert "PRINTED_OUTPUT x=5" in page
    assert "Narrative text stays in the report." in page
    assert "SECRET_SOURCE_MARKER" not in page
    assert "json.dumps" not in page
    assert "REMOVED_CELL_OUTPUT" not in page
    assert "HIDDEN_OUTPUT" not in page
    assert "WIDGET_CELL_OUTPUT" not in page
    assert "injected-parameters" not in page and "x = 5" not in page
    assert "<title>01_params</title>" in page


def test_index_links_every_notebook(passing_run):
    result = passing_run["result"]
    page = result.index_path.read_text(encoding="utf-8")
    assert "<title>workbench run run-ok</title>" in page
    for n in result.notebooks:
        assert f'href="{n.html_path.name}"' in page
        assert f'href="{n.output_path.name}"' in page
    assert "2024-01-31" in page  # as-of parameter
    assert "1,234" in page and "1,200" in page  # demo stage totals
    assert "http://" not in page and "https://" not in page  # self-contained


def test_manifest_contents(passing_run):
    result = passing_run["result"]
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["run_id"] == "run-ok" and manifest["status"] == "ok"
    assert manifest["started_utc"].endswith("Z") and manifest["finished_utc"].endswith("Z")
    assert manifest["seconds"] > 0
    assert manifest["parameters"] == {"x": 5, "y": "shared", "as_of": "2024-01-31"}
    nbs = {n["name"]: n for n in manifest["notebooks"]}
    assert nbs["01_params.ipynb"]["parameters"] == {"x": 5}
    assert nbs["02_plain.ipynb"]["parameters"] == {"y": "shared"}
    assert nbs["01_params.ipynb"]["output"] == "01_params.ipynb"
    assert nbs["01_params.ipynb"]["html"] == "01_params.html"
    assert nbs["01_params.ipynb"]["stages_written"] == ["demo"]
    assert nbs["01_params.ipynb"]["error"] is None
    for pkg in ("papermill", "nbconvert", "pandas", "ipykernel"):
        assert pkg in manifest["versions"]
    assert manifest["python"] and manifest["platform"]
    assert "git" in manifest
    assert manifest["data_dir"] == str(passing_run["paths"].data)
    assert manifest["stages"]["demo"]["totals"] == {"read": 1234, "kept": 1200, "quarantined": 34}


def test_latest_points_at_run(passing_run):
    latest = passing_run["paths"].reports / "latest"
    assert latest.is_symlink()
    assert os.readlink(latest) == "run-ok"  # relative
    assert latest.resolve() == passing_run["result"].run_dir.resolve()


def test_failing_notebook_raises_keeps_output_and_skips_rest(passing_run):
    """Runs after passing_run in the same reports folder: 'latest' must not move."""
    nb_dir = passing_run["root"] / "nbs_fail"
    boom, after = _boom_notebook(nb_dir), _after_notebook(nb_dir)
    paths = passing_run["paths"]
    lines: list[str] = []
    with pytest.raises(NotebookFailed) as info:
        run_pipeline(paths=paths, notebooks=[boom, after], parameters={"x": 2},
                     progress=False, log=lines.append)
    err = info.value
    assert err.notebook == "03_boom.ipynb"
    assert err.cell_index == 2  # 3rd cell of the source notebook (injected cell not counted)
    assert (err.ename, err.evalue) == ("ValueError", "boom")
    assert err.output_path.is_file()
    assert str(err).startswith("Notebook 03_boom.ipynb failed in cell 2 (ValueError: boom); "
                               "the executed notebook is kept at ")

    result = err.run_result
    assert result is not None and result.status == "failed"
    assert err.output_path.parent == result.run_dir
    assert [(n.name, n.status) for n in result.notebooks] == [
        ("03_boom.ipynb", "failed"), ("04_after.ipynb", "skipped")]
    assert not (result.run_dir / "04_after.ipynb").exists()
    assert result.notebooks[0].html_path.is_file()
    assert "boom" in result.notebooks[0].html_path.read_text(encoding="utf-8")
    assert "[2/2] 04_after.ipynb ... skipped (03_boom.ipynb did not succeed)" in lines

    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"]["notebook"] == "03_boom.ipynb"
    assert manifest["error"]["cell_index"] == 2
    assert manifest["notebooks"][1]["status"] == "skipped"
    assert manifest["notebooks"][1]["output"] is None
    index = result.index_path.read_text(encoding="utf-8")
    assert "Run failed" in index and "03_boom.ipynb failed in cell 2" in index

    latest = paths.reports / "latest"
    assert os.readlink(latest) == "run-ok"


def test_export_html_default_path_and_title(passing_run, tmp_path):
    executed = passing_run["result"].notebooks[1].output_path
    copy = tmp_path / "copy.ipynb"
    copy.write_bytes(executed.read_bytes())
    out = export_html(copy)
    assert out == tmp_path / "copy.html"
    page = out.read_text(encoding="utf-8")
    assert "<title>copy</title>" in page and "PLAIN_OUTPUT" in page


def test_kernel_problems_fail_the_run_cleanly(tmp_path):
    """A missing kernel is not a PapermillExecutionError; still manifest + NotebookFailed."""
    source = _after_notebook(tmp_path / "nbs")
    paths = get_paths(data_dir=tmp_path / "data", reports_dir=tmp_path / "reports")
    with pytest.raises(NotebookFailed) as info:
        run_pipeline(paths=paths, notebooks=[source], kernel_name="no-such-kernel-xyz",
                     progress=False, log=None)
    err = info.value
    assert err.cell_index is None and err.ename == "NoSuchKernel"
    manifest = json.loads(err.run_result.manifest_path.read_text())
    assert manifest["status"] == "failed" and manifest["kernel_name"] == "no-such-kernel-xyz"
    assert not (paths.reports / "latest").exists()


# --------------------------------------------------------------------------- lock and --from
def test_second_run_on_the_same_data_is_refused(tmp_path):
    from workbench.lock import LOCK_NAME, RunLocked, data_lock

    with data_lock(tmp_path, owner="nightly"):
        with pytest.raises(RunLocked, match=r"Another run is using the data folder .*nightly"):
            with data_lock(tmp_path, owner="manual"):
                pass
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    import json
    import socket
    import subprocess
    import sys

    from workbench.lock import LOCK_NAME, data_lock

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "owner": "killed run"}))
    notes = []
    with data_lock(tmp_path, log=notes.append):
        pass
    assert notes and "stale lock" in notes[0]


def test_start_from_skips_earlier_notebooks(tmp_path):
    from workbench.runner import _start_from

    nbs = [tmp_path / f"{n}.ipynb" for n in ("01_a", "02_b", "03_c")]
    assert [p.stem for p in _start_from(nbs, "02")] == ["02_b", "03_c"]
    assert [p.stem for p in _start_from(nbs, "03_c")] == ["03_c"]
    with pytest.raises(ValueError, match="The 'from' notebook must be one of"):
        _start_from(nbs, "09")

"""The pipeline graph, concurrent notebooks and incremental runs (workbench.pipeline, .fingerprint, .runner).

Kernel time is the cost here, so the real-pipeline tests reuse the session's sample run
(``pipeline_runs``, see tests/conftest.py) on a copy of its data and reports: an immediate
rerun reuses every notebook (no kernel), and one parameter of 05_rfm reruns four small
notebooks. The scheduler itself is tested on four tiny notebooks.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from workbench.cli import main
from workbench.config import get_paths
from workbench.fingerprint import ChecksumCache
from workbench.lock import data_lock
from workbench.pipeline import (
    Pipeline,
    PipelineError,
    glob_matches,
    globs_overlap,
    iter_matching_files,
    load_pipeline,
)
from workbench.runner import NotebookFailed, discover_notebooks, run_pipeline

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SHIPPED = [p.stem for p in discover_notebooks(NOTEBOOKS)]


@pytest.fixture(scope="module")
def graph() -> Pipeline:
    return load_pipeline(NOTEBOOKS, SHIPPED)


# --------------------------------------------------------------------------- globs


@pytest.mark.parametrize("pattern, path, hit", [
    ("processed/**", "processed/canonical/orders.parquet", True),
    ("processed/**", "processed", False),
    ("raw/**", "raw/_truth/sample.json", True),
    ("interim/metrics/*.json", "interim/metrics/ingest.json", True),
    ("interim/metrics/*.json", "interim/metrics/old/ingest.json", False),
    ("processed/**/rfm_*.parquet", "processed/rfm_2026.parquet", True),
    ("processed/**/rfm_*.parquet", "processed/segments/a/rfm_2026.parquet", True),
    ("processed/models/churn.*", "processed/models/churn.card.json", True),
    ("processed/models/churn.*", "processed/models/propensity.card.json", False),
    ("processed/scores_?.parquet", "processed/scores_x.parquet", True),
])
def test_glob_matches(pattern, path, hit):
    assert glob_matches(pattern, path) is hit


@pytest.mark.parametrize("a, b, overlap", [
    ("processed/*.parquet", "processed/clv.parquet", True),
    ("processed/**", "processed/canonical/orders.parquet", True),
    ("processed/models/churn.*", "processed/models/*.card.json", True),
    ("processed/models/churn.*", "processed/models/propensity.*", False),
    ("interim/metrics/*.json", "interim/metrics/audiences.json", True),
    ("interim/metrics/rfm.json", "interim/metrics/clv.json", False),
    ("processed/scores_*.parquet", "processed/scores_churn.parquet", True),
    ("processed/segments/rfm_*.parquet", "processed/rfm_segments.parquet", False),
    ("a/**/x.json", "a/b/*/x.json", True),
    ("a/*/x.json", "a/x.json", False),
    ("**", "anything/at/all", True),
])
def test_globs_overlap_is_symmetric_and_exact(a, b, overlap):
    assert globs_overlap(a, b) is overlap
    assert globs_overlap(b, a) is overlap


def test_matching_files_leave_out_the_runners_own_files(tmp_path):
    for rel in ("processed/a.parquet", "processed/sub/b.parquet", ".workbench-run.lock",
                ".workbench-checksums.json", "interim/x.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    assert list(iter_matching_files(tmp_path, ["**"])) == [
        "interim/x.json", "processed/a.parquet", "processed/sub/b.parquet"]
    assert list(iter_matching_files(tmp_path, ["processed/**"], exclude=["processed/sub/**"])) == [
        "processed/a.parquet"]


# --------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("data, message", [
    ({"notebooks": {"07_nope": {}}}, "notebook '07_nope' is declared but not in the folder"),
    ({"notebooks": {"01_a": {"reeds": ["x"]}}}, r"01_a: unknown field\(s\) \['reeds'\]"),
    ({"notebooks": {"01_a": {"after": ["02_b"]}}}, r"01_a.after: '02_b' must be a notebook that comes before 01_a"),
    ({"notebooks": {"01_a": {"writes": ["../x"]}}}, r"01_a.writes: '../x' must be a relative path"),
    ({"notebooks": {"01_a": {"writes": ["a**/x"]}}}, "'\\*\\*' must be a whole path segment"),
    ({"notebooks": {"01_a": {"reads": "x", "writes": 3}}}, "01_a.writes must be a list of path patterns"),
    ({"version": 2}, "'version' must be 1. Got 2 instead."),
    ({"notebook": {}}, r"unknown key\(s\) \['notebook'\]"),
])
def test_declaration_errors_name_what_is_wrong(data, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline.from_mapping(data, ["01_a", "02_b"])


def test_invalid_yaml_names_the_file(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("notebooks: [unclosed")
    with pytest.raises(PipelineError, match="pipeline.yaml: not valid YAML"):
        load_pipeline(tmp_path, ["01_a"])


def test_an_undeclared_notebook_runs_alone_between_its_neighbours():
    p = Pipeline.from_mapping({"notebooks": {
        "01_a": {"writes": ["a.parquet"]},
        "03_c": {"reads": ["z.parquet"], "writes": ["c.parquet"]},
        "04_d": {"reads": ["a.parquet"], "writes": ["d.parquet"]}}}, ["01_a", "02_mine", "03_c", "04_d"])
    assert not p.specs["02_mine"].declared
    assert p.depends_on("02_mine") == ["01_a"]
    assert p.waits_for("03_c") == ["02_mine"] and p.depends_on("03_c") == ["02_mine"]
    assert not p.concurrent("01_a", "04_d") and p.concurrent("03_c", "04_d")  # both after 02_mine
    assert p.dependants("02_mine") == {"03_c", "04_d"}
    # a later undeclared notebook hides nothing from an earlier one's fingerprint
    assert p.fingerprint_excludes("01_a") == ["a.parquet", "c.parquet", "d.parquet"]


def test_a_later_writer_only_orders_and_a_cache_orders_nothing():
    p = Pipeline.from_mapping({"notebooks": {
        "01_a": {"reads": ["x.parquet"], "writes": ["a.parquet"], "caches": ["cache/**"]},
        "02_b": {"writes": ["x.parquet"], "caches": ["cache/**"]},
        "03_c": {"writes": ["a.parquet"]},
        "04_d": {"caches": ["cache/**"], "after": ["01_a"]}}}, ["01_a", "02_b", "03_c", "04_d"])
    assert p.waits_for("02_b") == ["01_a"] and p.depends_on("02_b") == []      # writes what 01 reads
    assert p.waits_for("03_c") == ["01_a"] and p.depends_on("03_c") == []      # writes what 01 writes
    assert p.depends_on("04_d") == ["01_a"] and p.dependants("01_a") == {"04_d"}
    assert p.concurrent("02_b", "04_d") and p.concurrent("02_b", "03_c")
    assert p.later_writes("01_a") == ["x.parquet", "cache/**", "a.parquet", "cache/**"]


def test_every_shipped_notebook_is_declared(graph):
    assert graph.source == NOTEBOOKS / "pipeline.yaml"
    assert [n for n in SHIPPED if not graph.specs[n].declared] == []
    assert len(SHIPPED) >= 11


def test_graph_of_the_shipped_pipeline(graph):
    assert graph.depends_on("02_clean") == ["01_ingest"]
    assert graph.depends_on("05_rfm") == ["04_customer_360"]
    assert graph.depends_on("09_clv") == ["04_customer_360", "05_rfm"]
    assert set(graph.depends_on("10_segment_report")) == {f"{n}" for n in SHIPPED[:9]}
    assert graph.dependants("05_rfm") == {"09_clv", "10_segment_report", "11_explore"}
    assert graph.dependants("07_churn") == {"10_segment_report", "11_explore"}
    assert graph.dependants("04_customer_360") == set(SHIPPED[4:])
    assert graph.dependants("11_explore") == set()
    concurrent = {(a, b) for a, b in itertools.combinations(SHIPPED, 2) if graph.concurrent(a, b)}
    assert ("07_churn", "08_propensity") in concurrent and ("10_segment_report", "11_explore") in concurrent
    assert not any(a in SHIPPED[:4] or b in SHIPPED[:4] for a, b in concurrent), "01-04 form a chain"


def test_notebooks_that_may_run_together_never_touch_the_same_file(graph):
    """Checked pair by pair on the declarations (not through the graph's own bookkeeping)."""
    for a, b in itertools.combinations(SHIPPED, 2):
        if not graph.concurrent(a, b):
            continue
        sa, sb = graph.specs[a], graph.specs[b]
        for mine, theirs in ((sa.writes, sb.writes + sb.reads), (sb.writes, sa.reads)):
            clash = [(x, y) for x in mine for y in theirs if globs_overlap(x, y)]
            assert clash == [], f"{a} and {b} may run at once but share {clash}"
        assert not any(globs_overlap(x, y) for x in sa.run_writes for y in sb.run_writes)


# --------------------------------------------------------------------------- checksums


def test_checksum_cache_sees_a_rewrite_that_keeps_size_and_mtime(tmp_path):
    f = tmp_path / "table.parquet"
    f.write_bytes(b"aaaa")
    cache = ChecksumCache(tmp_path / ".workbench-checksums.json")
    first = cache.sha256(f)
    cache.save()
    st = f.stat()
    f.write_bytes(b"bbbb")                                   # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))         # and the old mtime, as `cp -p` or a restore would
    reloaded = ChecksumCache(tmp_path / ".workbench-checksums.json")
    assert reloaded.sha256(f) != first                        # ctime moved: read again
    assert json.loads((tmp_path / ".workbench-checksums.json").read_text())["files"][str(f)][4] == first


def test_checksum_cache_does_not_read_an_unchanged_file(tmp_path, monkeypatch):
    import hashlib

    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(1 << 16))
    cache = ChecksumCache(tmp_path / ".workbench-checksums.json")
    expected = hashlib.sha256(f.read_bytes()).hexdigest()
    assert cache.sha256(f) == expected
    cache.save()
    monkeypatch.setattr(hashlib, "file_digest", lambda *a, **k: pytest.fail("an unchanged file was read"))
    assert ChecksumCache(tmp_path / ".workbench-checksums.json").sha256(f) == expected


# --------------------------------------------------------------------------- options and the lock


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2"])
def test_jobs_must_be_a_positive_integer(jobs, tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    with pytest.raises(ValueError, match=rf"^The 'jobs' parameter must be a positive integer. Got {jobs!r} instead.$"):
        run_pipeline(paths=paths, jobs=jobs, log=None)
    assert not (tmp_path / "reports").exists() and not (tmp_path / "data").exists()


def test_cli_rejects_zero_jobs_and_unknown_force(tmp_path, capsys):
    common = ["run", "--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports"), "--quiet"]
    assert main([*common, "--jobs", "0"]) == 2
    assert "The 'jobs' parameter must be a positive integer. Got 0 instead." in capsys.readouterr().err
    assert main([*common, "--only", "05_rfm", "--force", "06_kmeans"]) == 2
    err = capsys.readouterr().err
    assert "The 'force' notebooks must be among the notebooks of this run (05_rfm). Got '06_kmeans' instead." in err
    assert not (tmp_path / "reports").exists(), "nothing ran"


def test_a_second_run_on_the_same_data_is_refused_by_the_cli(tmp_path, capsys):
    data = tmp_path / "data"
    with data_lock(data, owner="workbench run nightly"):
        code = main(["run", "--data-dir", str(data), "--reports-dir", str(tmp_path / "reports"), "--quiet"])
    assert code == 2
    assert "Another run is using the data folder" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


# --------------------------------------------------------------------------- the scheduler on tiny notebooks

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
_PRELUDE = ("import os, time, pathlib\nD = pathlib.Path(os.environ['WORKBENCH_DATA_DIR'])\n"
            "R = pathlib.Path(os.environ['WORKBENCH_RUN_DIR'])\n")


# 02_b and 03_c each say they started and wait (up to 90 s) for the other: they both see the other
# only when they run at the same time. Later runs (the other one reused) do not wait.
_MEET = ("(D / '{me}_started').write_text('1')\n"
         "deadline = time.time() + (90 if not (D / '{me}_met').exists() else 0)\n"
         "while not (D / '{other}_started').exists() and time.time() < deadline:\n"
         "    time.sleep(0.05)\n"
         "(D / '{me}_met').write_text(str((D / '{other}_started').exists()))\n")


def _tiny(folder: Path, name: str, params: str, body: str) -> None:
    nb = new_notebook(cells=[new_code_cell(params), new_code_cell(_PRELUDE + body)])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """01_a -> {02_b (fails when fail=True), 03_c} -> 04_d; 02 and 03 record when they ran."""
    root = tmp_path_factory.mktemp("tiny")
    nbs = root / "nbs"
    nbs.mkdir()
    _tiny(nbs, "01_a", "x = 1", "D.mkdir(parents=True, exist_ok=True)\n(D / 'a.txt').write_text(str(x))")
    _tiny(nbs, "02_b", "fail = False", _MEET.format(me="b", other="c") +
          "assert not fail, 'asked to fail'\n(D / 'b.txt').write_text((D / 'a.txt').read_text())")
    _tiny(nbs, "03_c", "z = 1", _MEET.format(me="c", other="b") +
          "(D / 'c.txt').write_text((D / 'a.txt').read_text() + str(z))")
    _tiny(nbs, "04_d", "", "(R / 'out').mkdir()\n(R / 'out' / 'd.txt').write_text((D / 'b.txt').read_text() + (D / 'c.txt').read_text())")
    (nbs / "pipeline.yaml").write_text(
        "version: 1\nnotebooks:\n"
        "  01_a: {writes: [a.txt]}\n"
        "  02_b: {reads: [a.txt], writes: [b.txt, b_started, b_met]}\n"
        "  03_c: {reads: [a.txt], writes: [c.txt, c_started, c_met]}\n"
        "  04_d: {reads: [b.txt, c.txt], run_writes: [out/**]}\n")
    paths = get_paths(root / "data", root / "reports")
    sources = sorted(nbs.glob("*.ipynb"))
    lines: list[str] = []
    with pytest.raises(NotebookFailed) as info:
        run_pipeline(paths=paths, notebooks=sources, parameters={"fail": True}, run_id="fails", jobs=2,
                     progress=False, log=lines.append)
    return {"paths": paths, "sources": sources, "failed": info.value, "lines": lines}


def test_independent_notebooks_run_at_once_and_a_failure_skips_only_its_dependants(tiny):
    result = tiny["failed"].run_result
    assert tiny["failed"].notebook == "02_b.ipynb"
    assert [(n.name, n.status) for n in result.notebooks] == [
        ("01_a.ipynb", "ok"), ("02_b.ipynb", "failed"), ("03_c.ipynb", "ok"), ("04_d.ipynb", "skipped")]
    data = tiny["paths"].data
    assert (data / "b_met").read_text() == (data / "c_met").read_text() == "True", "02_b and 03_c did not overlap"
    manifest = json.loads(result.manifest_path.read_text())
    assert [nb["name"] for nb in manifest["notebooks"]] == [s.name for s in tiny["sources"]], "pipeline order"
    assert manifest["status"] == "failed" and manifest["error"]["notebook"] == "02_b.ipynb"
    assert manifest["jobs"] == 2
    assert all(nb.get("undeclared_writes") in (None, []) for nb in manifest["notebooks"])
    assert "[4/4] 04_d.ipynb ... skipped (02_b.ipynb did not succeed)" in tiny["lines"]
    assert not (tiny["paths"].reports / "latest").exists()


def test_a_rerun_reuses_what_succeeded_in_a_failed_run_and_reruns_what_changed(tiny):
    paths, sources = tiny["paths"], tiny["sources"]
    lines: list[str] = []
    result = run_pipeline(paths=paths, notebooks=sources, run_id="fixed", jobs=2, progress=False, log=lines.append)
    assert [(n.name, n.status, n.reused_from) for n in result.notebooks] == [
        ("01_a.ipynb", "reused", "fails"), ("02_b.ipynb", "ok", None), ("03_c.ipynb", "reused", "fails"),
        ("04_d.ipynb", "ok", None)]
    assert "[2/4] 02_b.ipynb ... (no earlier successful run)" in lines  # it failed last time
    assert (result.run_dir / "out" / "d.txt").read_text() == "111"
    for name in ("01_a", "03_c"):  # the reused notebooks' reports are in the new folder
        assert (result.run_dir / f"{name}.html").is_file() and (result.run_dir / f"{name}.ipynb").is_file()

    # a change to 03_c's parameter: 03_c and 04_d run (one at a time, in this process), 01_a and 02_b are reused
    again = run_pipeline(paths=paths, notebooks=sources, parameters={"z": 2}, run_id="z2", jobs=1,
                         progress=False, log=None)
    assert [(n.name, n.status) for n in again.notebooks] == [
        ("01_a.ipynb", "reused"), ("02_b.ipynb", "reused"), ("03_c.ipynb", "ok"), ("04_d.ipynb", "ok")]
    assert (again.run_dir / "out" / "d.txt").read_text() == "112"
    manifest = json.loads(again.manifest_path.read_text())
    entry = {nb["name"]: nb for nb in manifest["notebooks"]}
    assert entry["01_a.ipynb"]["reused_from"] == "fixed" and entry["01_a.ipynb"]["executed_in"] == "fails"
    assert entry["04_d.ipynb"]["reason"] == "03_c ran again"
    assert entry["04_d.ipynb"]["run_outputs"] == ["out/d.txt"]

    # an output changed behind the runner's back: its writer runs again, and so does what reads it
    (paths.data / "c.txt").write_text("tampered")
    third = run_pipeline(paths=paths, notebooks=sources, parameters={"z": 2}, run_id="tampered", jobs=1,
                         progress=False, log=None)
    assert [n.status for n in third.notebooks] == ["reused", "reused", "ok", "ok"]
    reasons = {nb["name"]: nb["reason"] for nb in json.loads(third.manifest_path.read_text())["notebooks"]}
    assert reasons["03_c.ipynb"] == "its output c.txt changed since run z2"


# --------------------------------------------------------------------------- the real pipeline


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for rel in iter_matching_files(root, ["**"]):
        st = (root / rel).stat()
        out[rel] = (st.st_mtime_ns, st.st_size)
    return out


@pytest.fixture(scope="module")
def sample_copy(pipeline_runs, tmp_path_factory):
    """A copy of the session's sample run (data and reports), so that reruns leave the shared run alone."""
    run = pipeline_runs["sample"]
    root = tmp_path_factory.mktemp("incremental")
    shutil.copytree(run.paths.data, root / "data", symlinks=True)
    shutil.copytree(run.paths.reports, root / "reports", symlinks=True)
    return get_paths(root / "data", root / "reports")


def test_the_session_runs_wrote_only_declared_files(pipeline_runs, graph):
    """Every notebook of the three real runs (sample, CDNOW, Lotus) wrote only what its entry lists,
    and notebooks that ran at the same time wrote disjoint sets of files."""
    for name, run in pipeline_runs.items():
        entries = {nb["name"]: nb for nb in run.manifest["notebooks"]}
        assert {n: e.get("undeclared_writes") for n, e in entries.items() if e.get("undeclared_writes")} == {}, name
        assert all(e["status"] == "ok" for e in entries.values()), name
        for a, b in itertools.combinations(SHIPPED, 2):
            if graph.concurrent(a, b):
                shared = set(entries[f"{a}.ipynb"]["outputs"]) & set(entries[f"{b}.ipynb"]["outputs"])
                assert shared == set(), f"{name}: {a} and {b} both wrote {shared}"
    sample = {nb["name"]: nb for nb in pipeline_runs["sample"].manifest["notebooks"]}
    assert "audiences/summary.json" in sample["10_segment_report.ipynb"]["run_outputs"]


def test_an_immediate_rerun_reuses_every_notebook(sample_copy, capsys):
    before = _snapshot(sample_copy.data)
    t0 = time.perf_counter()
    code = main(["run", "--data-dir", str(sample_copy.data), "--reports-dir", str(sample_copy.reports),
                 "--run-id", "again", "--quiet"])
    seconds = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = sample_copy.reports / "again"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [(nb["name"], nb["status"], nb["reused_from"]) for nb in manifest["notebooks"]] == [
        (f"{n}.ipynb", "reused", "sample") for n in SHIPPED]
    for nb in manifest["notebooks"]:  # a complete run folder
        assert (run_dir / nb["html"]).is_file() and (run_dir / nb["output"]).is_file()
        assert nb["fingerprint"] and (nb["outputs"] or nb["name"] == "11_explore.ipynb")  # 11 writes no data
    assert (run_dir / "audiences" / "summary.json").is_file()
    assert manifest["stages"].keys() >= {"ingest", "clean", "identity", "canonical", "customer_360", "audiences"}
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert f"{len(SHIPPED)} of {len(SHIPPED)} notebooks were reused" in index and "reused from run sample" in index
    assert os.readlink(sample_copy.reports / "latest") == "again"
    assert _snapshot(sample_copy.data) == before, "a run that reuses everything writes no data"
    assert seconds < 30, f"an all-reused rerun took {seconds:.1f} s"
    print(f"all-reused rerun of the 2,000-person sample: {seconds:.1f} s")


def test_a_parameter_of_05_rfm_reruns_05_and_only_what_reads_its_outputs(sample_copy, graph, capsys):
    before = _snapshot(sample_copy.data)
    cache = ChecksumCache(sample_copy.data / ".workbench-checksums.json")
    code = main(["run", "--data-dir", str(sample_copy.data), "--reports-dir", str(sample_copy.reports),
                 "--run-id", "compare60", "--quiet", "-p", "compare_days=60", "--jobs", "1"])  # no worker start-up
    assert code == 0, capsys.readouterr()
    manifest = json.loads((sample_copy.reports / "compare60" / "manifest.json").read_text())
    ran = {nb["name"].removesuffix(".ipynb") for nb in manifest["notebooks"] if nb["status"] == "ok"}
    reused = {nb["name"].removesuffix(".ipynb") for nb in manifest["notebooks"] if nb["status"] == "reused"}
    assert ran == {"05_rfm"} | graph.dependants("05_rfm") == {"05_rfm", "09_clv", "10_segment_report", "11_explore"}
    assert reused == set(SHIPPED) - ran
    entries = {nb["name"]: nb for nb in manifest["notebooks"]}
    assert entries["05_rfm.ipynb"]["reason"] == "parameters changed: compare_days"
    assert entries["09_clv.ipynb"]["reason"] == "05_rfm ran again"
    # what changed in the data folder is declared by the notebooks that ran; reused outputs are untouched
    after = _snapshot(sample_copy.data)
    changed = {rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel)}
    writes = [g for n in ran for g in graph.specs[n].writes]
    assert changed and all(any(glob_matches(g, rel) for g in writes) for rel in changed), changed
    for nb in manifest["notebooks"]:
        assert not nb.get("undeclared_writes"), nb["name"]
        if nb["status"] == "reused":
            assert cache.checksums(sample_copy.data, nb["outputs"]) == nb["outputs"]

"""The `workbench` command as the Makefile and schedulers call it."""

from __future__ import annotations

import json

import nbformat
import pytest

from workbench.cli import _parse_value, main


def test_sample_if_missing_does_not_overwrite(tmp_path, capsys):
    out = tmp_path / "raw"
    assert main(["sample", "--persons", "50", "--seed", "1", "--out", str(out)]) == 0
    before = (out / "_truth" / "sample.json").read_text()
    assert main(["sample", "--persons", "60", "--out", str(out), "--if-missing"]) == 0
    assert "not regenerated" in capsys.readouterr().out
    assert (out / "_truth" / "sample.json").read_text() == before
    assert main(["sample", "--persons", "60", "--out", str(out)]) == 2, "refuses to overwrite without --force"
    assert main(["sample", "--persons", "60", "--out", str(out), "--force"]) == 0
    assert json.loads((out / "_truth" / "sample.json").read_text())["persons"] == 60


@pytest.mark.parametrize("text, value", [("42", 42), ("0.5", 0.5), ("true", True), ("null", None),
                                         ("2026-01-31", "2026-01-31"), ("a b", "a b")])
def test_parameter_values_are_yaml_scalars(text, value):
    assert _parse_value(text) == value


def test_run_failure_exits_non_zero_and_names_notebook_and_cell(tmp_path, capsys):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell("x = 1")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("assert x == 2, 'x must be 2'")]
    nbformat.write(nb, nbdir / "01_fails.ipynb")
    code = main(["run", "--only", str(nbdir / "01_fails.ipynb"), "--data-dir", str(tmp_path / "data"),
                 "--reports-dir", str(tmp_path / "reports"), "--run-id", "r1", "--quiet", "--no-html"])
    err = capsys.readouterr().err
    assert code == 1
    assert "01_fails.ipynb failed in cell 1" in err and "AssertionError" in err
    assert (tmp_path / "reports" / "r1" / "01_fails.ipynb").exists(), "the failed notebook is kept"
    manifest = json.loads((tmp_path / "reports" / "r1" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    # the same notebook with x=2 passed as a parameter succeeds
    assert main(["run", "--only", str(nbdir / "01_fails.ipynb"), "--data-dir", str(tmp_path / "data"),
                 "--reports-dir", str(tmp_path / "reports"), "--run-id", "r2", "--quiet", "--no-html",
                 "-p", "x=2"]) == 0

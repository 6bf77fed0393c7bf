"""The sample is one brand among many: no code after ingestion may name its channels or columns.

Outside ``workbench/sample/`` and the sample's mapping and configuration files
(``workbench/channels/``, ``workbench/conf/``), no module of the package names a channel of the
embedded sample, nor a column of its raw files that is not a canonical name (a field of a role,
a person trait): such a line could not work on a brand's own data.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.campaign_export import ASSIGNMENT_COLUMNS, CAMPAIGN_FIELDS
from workbench.mapping import load_mappings
from workbench.roles import ROLES, TRAITS

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
ALLOWED = ("sample", "channels", "conf")
#: Ingestion reads raw columns through a mapping, whatever they are called; its modules know common
#: header words (the mapping drafter's vocabulary: 会员编号, order date ...), which raw files of any brand
#: share with the sample's. The column check covers the code after ingestion.
INGESTION = ("mapping.py", "ingest.py", "normalise.py", "clean.py", "draft.py", "quality.py")


def _sample_names() -> tuple[set[str], set[str]]:
    mappings = load_mappings()   # the package's own mappings are the sample's
    canonical = {f for r in ROLES.values() for f in r.fields} | set(TRAITS)
    # the workbench's own campaign record (a contract read by the campaign results) is canonical too:
    # its `campaign_id` is the id of a campaign the workbench exported, not the sample's e-mail column
    canonical |= set(CAMPAIGN_FIELDS) | set(ASSIGNMENT_COLUMNS)
    columns = {spec.column for m in mappings.values() for spec in m.fields.values() if spec.column}
    # raw column names that mean something only in the sample's files: snake_case or Chinese headers
    specific = {c for c in columns if c not in canonical and ("_" in c or re.search(r"[\u4e00-\u9fff]", c))}
    return set(mappings), specific


def _offending_lines(names: set[str], skip: tuple[str, ...] = ()) -> list[str]:
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(sorted(map(re.escape, names))) + r")(?![A-Za-z0-9_])")
    hits = []
    for f in sorted(PACKAGE.rglob("*.py")):
        if f.relative_to(PACKAGE).parts[0] in ALLOWED + skip:
            continue
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{f.relative_to(PACKAGE.parent)}:{i}: {line.strip()}")
    return hits


def test_no_module_names_a_sample_channel():
    channels, _ = _sample_names()
    assert "pos_returns" in channels and len(channels) == 11
    hits = _offending_lines(channels)
    assert not hits, "sample channel names outside the sample's files:\n" + "\n".join(hits)


def test_no_module_names_a_sample_only_column():
    _, columns = _sample_names()
    assert {"会员编号", "customer_phone", "watch_seconds"} <= columns
    hits = _offending_lines(columns, skip=INGESTION)
    assert not hits, "sample-only raw columns after ingestion:\n" + "\n".join(hits)


def test_the_guard_would_catch_a_sample_name(tmp_path):
    """The check is not vacuous: a module naming a sample channel is found."""
    channels, _ = _sample_names()
    bad = PACKAGE / "_probe_generic.py"
    bad.write_text('CHANNEL = "web_events"\n', encoding="utf-8")
    try:
        assert any("_probe_generic.py" in h for h in _offending_lines(channels))
    finally:
        bad.unlink()

"""The whole pipeline as `make report` runs it, on the test session's small sample:
the segment report, the index, the audience exports, and no raw personal data anywhere
that leaves data/."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd
import pytest



@pytest.fixture(scope="module")
def pipeline_run(pipeline_runs):
    run = pipeline_runs["sample"]
    return run.paths, run


def test_every_notebook_ran_and_the_index_puts_the_segment_report_first(pipeline_run):
    paths, result = pipeline_run
    assert result.status == "ok" and all(nb.status == "ok" for nb in result.notebooks)
    index = result.index_path.read_text(encoding="utf-8")
    links = re.findall(r'href="([0-9]{2}_[^"]+\.html)"', index)
    assert links[0] == "10_segment_report.html"
    assert {f"{nb.name[:-6]}.html" for nb in result.notebooks} <= set(links)
    assert (paths.reports / "latest").resolve() == result.run_dir.resolve()


def test_segment_report_html_holds_every_figure_and_no_code(pipeline_run):
    paths, result = pipeline_run
    executed = json.loads((result.run_dir / "10_segment_report.ipynb").read_text(encoding="utf-8"))
    figures = sum("image/png" in o.get("data", {}) for c in executed["cells"] for o in c.get("outputs", []))
    html = (result.run_dir / "10_segment_report.html").read_text(encoding="utf-8")
    expected = sum("".join(c["source"]).count("plt.show()") for c in executed["cells"] if c["cell_type"] == "code")
    assert figures == expected >= 3, (figures, expected)
    assert html.count("<img") >= figures and html.count("data:image/png;base64") >= figures
    # highlighted Python input (the CSS of the template names every class, so look for the code itself)
    assert "hl-ipython3" not in html and not re.search(r'<div[^>]*class="[^"]*jp-InputPrompt', html), \
        "no code cell in the report"
    for snippet in ("import ", "load_customer_360(", "plt.show()", "segment_stats("):
        assert snippet not in html
    assert "wb-card" in html and "What to do" in html  # the segment cards


def _raw_contacts(paths) -> set[str]:
    from workbench.clean import load_cleaned

    values: set[str] = set()
    for channel, cols in {"crm_members": ["phone", "email"], "service_tickets": ["phone", "email"],
                          "pos_receipts": ["phone"], "wechat_followers": ["phone"],
                          "email_events": ["email"]}.items():
        df = load_cleaned(channel, paths)
        for c in cols:
            v = df[c].dropna().astype(str)
            values |= set(v)
            if c == "phone":
                values |= {p[3:] for p in v if p.startswith("+86")}  # the national form, 138...
    return values


def test_no_raw_phone_or_email_leaves_data(pipeline_run):
    from workbench.privacy.scan import assert_no_pii

    paths, result = pipeline_run
    known = _raw_contacts(paths)
    assert len(known) > 1000
    assert_no_pii([result.run_dir, paths.processed / "models"], known_values=known)


def test_audience_exports_honour_consent_and_hash_contacts(pipeline_run):
    from workbench.audiences import EXPORT_COLUMNS
    from workbench.customer360 import load_customer_360

    paths, result = pipeline_run
    folder = result.run_dir / "audiences"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    profile = load_customer_360(paths).set_index("oneid")
    assert summary["audiences"] and summary["totals"]["exported"] > 0
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    for a in summary["audiences"]:
        out = pd.read_csv(folder / a["file"], dtype=str)
        assert tuple(out.columns) == EXPORT_COLUMNS and len(out) == a["exported"]
        assert a["members"] == (a["exported"] + a["excluded_no_consent"] + a["excluded_consent_revoked"]
                                + a["excluded_no_contact"])
        if out.empty:
            continue
        p = profile.loc[out["oneid"]]
        assert p["consent_ads"].fillna(False).astype(bool).all(), a["audience"]
        emails = p["email"].astype("string")
        expected = emails.map(lambda e: sha(e.strip().lower()), na_action="ignore")
        assert (out["email_sha256"].fillna("").to_numpy() == expected.fillna("").to_numpy()).all()
        phones = p["phone"].astype("string")
        assert (out["phone_sha256"].fillna("").to_numpy()
                == phones.map(sha, na_action="ignore").fillna("").to_numpy()).all()
    manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["audiences"]["totals"]["excluded_no_consent"] >= 0

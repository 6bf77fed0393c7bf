"""Chinese and English (workbench.i18n): the catalogues, number formats, the packaged CJK font,
the run index, and the Chinese segment report of a real run opened in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import pytest

from workbench import i18n
from workbench.i18n import check_language, money, name, number, percent, t

CJK = re.compile(r"[\u4e00-\u9fff]")


# --------------------------------------------------------------------------- catalogues


def test_both_catalogues_hold_every_key_with_the_same_placeholders():
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    assert len(en) > 150
    assert sorted(set(en) - set(zh)) == [] and sorted(set(zh) - set(en)) == []
    for key in en:
        assert en[key].strip() and zh[key].strip(), key
        assert i18n.placeholders(en[key]) == i18n.placeholders(zh[key]), key
    # the Chinese catalogue is Chinese: every text but a few names (ROC AUC, Python) has Chinese characters
    latin_only = sorted(k for k, v in zh.items() if not CJK.search(v))
    assert latin_only == ["index.python", "models.roc_auc"], latin_only


def test_a_missing_key_or_an_unknown_language_is_an_error():
    with pytest.raises(KeyError, match="No text 'report.nope' in the 'zh' catalogue"):
        t("report.nope", "zh")
    with pytest.raises(ValueError, match=re.escape("The 'language' parameter must be one of ['en', 'zh']. "
                                                   "Got 'fr' instead.")):
        t("report.title", "fr")
    with pytest.raises(ValueError, match="must be one of"):
        money(1, language="zh-CN")


def test_every_key_the_package_and_notebooks_use_exists():
    """Every literal t("…") / nb.heading("…") / intro="…" key in the package and the notebooks is in the catalogue."""
    from workbench.config import PACKAGE_DIR

    keys = i18n.keys("en")
    used: set[str] = set()
    files = list(PACKAGE_DIR.rglob("*.py")) + list((PACKAGE_DIR.parent / "notebooks").glob("*.ipynb"))
    pattern = re.compile(r'(?:\bt|heading|tr)\(\s*\\?["\']([a-z_]+(?:\.[a-z0-9_]+)+)\\?["\']|intro=\\?"([a-z_]+\.[a-z_]+)')
    for f in files:
        code = "\n".join(line for line in f.read_text(encoding="utf-8").splitlines() if ">>>" not in line)
        for m in pattern.finditer(code):
            used.add(m.group(1) or m.group(2))
    used |= {f"index.{k}" for f in [PACKAGE_DIR / "runner.py"]
             for k in re.findall(r'\btr\(["\']([a-z_]+)["\']', f.read_text(encoding="utf-8"))}
    assert len(used) > 60, sorted(used)
    assert sorted(k for k in used if k not in keys and not k.startswith("index.")) == []
    assert sorted(k for k in used if k.startswith("index.") and k not in keys) == []


def test_the_sample_settings_names_are_all_translated():
    from workbench.segments.clusters import DEFAULT_VOCABULARY
    from workbench.segments.engagement import ACTIONS, GROUPS
    from workbench.segments.rfm import load_segment_map

    m = load_segment_map()
    texts = [*m.order, *m.actions.values(), *GROUPS, *ACTIONS.values(),
             *{p for pair in DEFAULT_VOCABULARY.values() for p in pair},
             "high-value", "low-value", "low-activity", "typical customers"]
    untranslated = [x for x in texts if not CJK.search(name(x, "zh"))]
    assert untranslated == []
    assert all(name(x, "en") == x for x in texts)
    assert name("A brand's own segment", "zh") == "A brand's own segment"  # unknown: shown as written


def test_cluster_names_are_translated_phrase_by_phrase():
    import pandas as pd

    from workbench.segments.clusters import name_clusters

    profiles = pd.DataFrame({"orders": [0.9, -0.8, -0.6, -0.5], "net_revenue": [1.2, -0.7, -0.5, 0.0],
                             "live_stream_watched_minutes": [-0.3, 1.5, -0.6, -0.4],
                             "email_open_rate": [0.2, -0.1, -0.5, 1.1], "channels_present": [0.8, 0.1, -0.5, 0.0]})
    names = name_clusters(profiles)
    zh = {c: name(n, "zh") for c, n in names.items()}
    assert all(CJK.search(v) and not re.search(r"[A-Za-z]", v) for v in zh.values()), (names, zh)
    assert len(set(zh.values())) == len(zh)
    assert name("high-value multichannel, frequent buyers", "zh") == "高价值·多渠道、高频购买者"


# --------------------------------------------------------------------------- number formats


@pytest.mark.parametrize("value, kwargs, expected", [
    (1234.5, {"decimals": 2}, "¥1,234.50"),
    (1234.5, {}, "¥1,234"),
    (1234.5, {"language": "zh", "decimals": 2}, "¥1,234.50"),
    (14_012_345, {}, "¥14,012,345"),
    (14_012_345, {"language": "zh"}, "¥1,401.2万"),
    (12_000, {"language": "zh"}, "¥1.2万"),
    (3.2e8, {"language": "zh"}, "¥3.2亿"),
    (-5000.25, {"decimals": 2}, "-¥5,000.25"),
    (99, {"currency": "USD"}, "$99"),
    (7, {"currency": "SGD", "language": "zh"}, "SGD 7"),
    (None, {}, "–"),
])
def test_money(value, kwargs, expected):
    assert money(value, **kwargs) == expected


def test_counts_and_shares():
    assert number(12_000, "zh") == "1.2万" and number(12_000) == "12,000"
    assert number(9_999, "zh") == "9,999" and number(12_000, "zh", compact=False) == "12,000"
    assert number(123_456_789, "zh") == "1.2亿" and number(1_234_567, "en") == "1,234,567"
    assert percent(0.3712) == percent(0.3712, "zh") == "37.1%"
    from workbench.report import cards_html, headline_html

    assert "1.2万" in headline_html({"客户数": (12_000, "int")}, language="zh")
    assert "12,000" in headline_html({"customers": (12_000, "int")})


# --------------------------------------------------------------------------- the packaged CJK font


def _render(text: str):
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.set_title(text)
        ax.set_xlabel("客户数（占全部客户的百分比）")
        ax.barh([0, 1], [3, 5])
        ax.set_yticks([0, 1], ["冠军客户", "有流失风险"])
        fig.canvas.draw()
        plt.close(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_figures_draw_chinese_with_the_packaged_font(monkeypatch):
    import matplotlib
    from matplotlib import font_manager

    path = i18n.cjk_font_path()
    assert path.is_file() and path.stat().st_size > 10_000_000
    assert "site-packages" in str(path), "the font comes from an installed package, not the machine"
    with matplotlib.rc_context():
        # the control: without the packaged font, matplotlib reports missing glyphs (the check can fail)
        matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans"]
        matplotlib.rcParams["font.family"] = "sans-serif"
        assert _render("RFM 客户分群：共 1,234 位客户"), "the missing-glyph check did not see missing glyphs"
    with matplotlib.rc_context():
        assert i18n.use_cjk_font() == "Noto Sans CJK SC"
        found = font_manager.findfont(font_manager.FontProperties(family="Noto Sans CJK SC"), fallback_to_default=False)
        assert str(found) == str(path) or getattr(found, "path", None) == str(path), found
        assert _render("RFM 客户分群：共 1,234 位客户") == []
        assert matplotlib.rcParams["font.family"] == ["sans-serif", "Noto Sans CJK SC"]


def test_notebook_setup_registers_the_font(tmp_path):
    import matplotlib

    from workbench import notebook as nb

    with matplotlib.rc_context():
        nb.setup(tmp_path / "data", tmp_path / "reports")
        assert matplotlib.rcParams["font.family"] == ["sans-serif", "Noto Sans CJK SC"]
        assert _render("互动 × 价值") == []


# --------------------------------------------------------------------------- the run index


def test_the_run_index_is_written_in_the_run_language():
    from workbench.runner import render_index

    manifest = {"run_id": "r1", "status": "ok", "parameters": {"language": "zh"},
                "notebooks": [{"name": "10_segment_report.ipynb", "status": "ok", "html": "10_segment_report.html",
                               "output": "10_segment_report.ipynb", "seconds": 3.0, "reason": "parameters changed: language"},
                              {"name": "05_rfm.ipynb", "status": "reused", "reused_from": "a", "original_seconds": 2.0}]}
    zh = render_index(manifest)
    assert '<html lang="zh-CN">' in zh and "<h2>笔记本</h2>" in zh and "打开客户分群报告" in zh
    assert "沿用运行 a 的结果" in zh and ">成功<" in zh and "Notebooks" not in zh
    assert "运行原因：参数有变化：language" in zh
    en = render_index({**manifest, "parameters": {}})
    assert '<html lang="en">' in en and "<h2>Notebooks</h2>" in en and "Open the segment report" in en
    assert not CJK.search(en)
    with pytest.raises(ValueError, match="must be one of"):
        render_index({**manifest, "parameters": {"language": "de"}})


def test_every_reason_of_the_runner_has_a_template():
    """Each reason string the runner writes matches a `reason.*` template, so the Chinese index translates it."""
    from workbench.config import PACKAGE_DIR

    source = (PACKAGE_DIR / "runner.py").read_text(encoding="utf-8")
    body = source[source.index("def _why_rerun"):source.index("class _Task")]
    reasons = re.findall(r'return f?"([^"]+)"', body) + re.findall(r't\.reason = f?"([^"]+)"', source)
    reasons += [r for r in re.findall(r'"reason": f"([^"]+)"', source)]
    examples = [re.sub(r"\{[^}]*\}", "x", r).replace("x more", "2 more") for r in reasons]
    assert len(examples) >= 14, examples
    untranslated = [e for e in examples if i18n.message(e, "reason", "zh") == e]
    assert untranslated == []


def test_a_run_with_an_unknown_language_refuses_to_start(tmp_path, capsys):
    from workbench.cli import main

    code = main(["run", "--data-dir", str(tmp_path / "data"), "--reports-dir", str(tmp_path / "reports"),
                 "--language", "fr", "--quiet"])
    assert code == 2
    assert "The 'language' parameter must be one of ['en', 'zh']. Got 'fr' instead." in capsys.readouterr().err
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


# --------------------------------------------------------------------------- the Chinese report, end to end


@pytest.fixture(scope="module")
def zh_run(pipeline_runs, tmp_path_factory):
    """The session's sample run copied, then ``workbench run --language zh``: only the notebooks
    declaring ``language`` (the segment report and the campaign results) run again, the rest are
    reused, and the index is written in Chinese."""
    from workbench.cli import main
    from workbench.config import get_paths

    run = pipeline_runs["sample"]
    root = tmp_path_factory.mktemp("zh")
    shutil.copytree(run.paths.data, root / "data", symlinks=True)
    shutil.copytree(run.paths.reports, root / "reports", symlinks=True)
    paths = get_paths(root / "data", root / "reports")
    code = main(["run", "--data-dir", str(paths.data), "--reports-dir", str(paths.reports), "--run-id", "zh",
                 "--language", "zh", "--quiet"])
    assert code == 0
    return paths.reports / "zh"


def _check_zh_notebook(run: Path, name: str, *, keys: tuple[str, ...], texts: tuple[str, ...], min_figures: int) -> None:
    """The executed notebook ``name`` of the zh run: every catalogue heading of ``keys`` in its
    HTML, every text of ``texts`` in the page, at least ``min_figures`` figures, and no
    missing-glyph warning from matplotlib."""
    page = (run / f"{name}.html").read_text(encoding="utf-8")
    headings = [re.sub(r"<[^>]+>|¶", "", h).strip() for h in re.findall(r"<h[12][^>]*>(.*?)</h[12]>", page, flags=re.S)]
    for key in keys:
        assert t(key, "zh") in headings, (key, headings)
    for text in texts:
        assert text in page, text
    executed = json.loads((run / f"{name}.ipynb").read_text(encoding="utf-8"))
    figures = sum("image/png" in o.get("data", {}) for c in executed["cells"] for o in c.get("outputs", []))
    assert figures >= min_figures
    stderr = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
                     if o.get("name") == "stderr")
    assert "missing from font" not in stderr and "Glyph" not in stderr, stderr[:2000]


def test_the_chinese_report_has_chinese_headings_and_no_missing_glyphs(zh_run):
    manifest = json.loads((zh_run / "manifest.json").read_text(encoding="utf-8"))
    status = {nb["name"]: (nb["status"], nb.get("reason")) for nb in manifest["notebooks"]}
    translated = {"10_segment_report.ipynb", "12_campaign_results.ipynb"}
    for name in translated:
        assert status[name] == ("ok", "parameters changed: language"), (name, status[name])
    assert {s for n, (s, _) in status.items() if n not in translated} == {"reused"}
    _check_zh_notebook(zh_run, "10_segment_report",
                       keys=("report.title", "report.headline", "report.rfm", "report.clusters", "report.engagement",
                             "report.migration", "report.models", "report.data_quality", "report.audiences"),
                       texts=("冠军客户", "建议行动：", "客户占比", "RFM 客户分群"), min_figures=3)
    index = (zh_run / "index.html").read_text(encoding="utf-8")
    assert "<h2>笔记本</h2>" in index and "打开客户分群报告" in index and "中文" in index


def test_the_chinese_campaign_results_have_chinese_headings_labels_and_no_missing_glyphs(zh_run):
    _check_zh_notebook(zh_run, "12_campaign_results",
                       keys=("campaign.per_campaign", "campaign.by_segment", "campaign.uplift", "campaign.next"),
                       texts=("触达组人数", "转化率", "从未购买", "Qini 系数"), min_figures=2)


def test_the_chinese_report_and_index_open_in_headless_chromium(zh_run):
    from PIL import Image

    from tests.browser import screenshot

    shots = {"10_segment_report.html": (1280, 4200), "12_campaign_results.html": (1280, 3600),
             "index.html": (1280, 1400)}
    for page, (w, h) in shots.items():
        png = screenshot(zh_run / page, zh_run / "screenshots" / page.replace(".html", ".png"), width=w, height=h)
        with Image.open(png) as im:
            assert im.size == (w, h)
            colours = im.convert("L").getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 20, f"{png} looks blank"
    print(f"screenshots: {zh_run / 'screenshots'}")

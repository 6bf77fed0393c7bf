"""Chinese and English: one ``language`` parameter (``"en"`` or ``"zh"``) renders the segment
report, the run index and any notebook that declares it.

* :func:`t` looks a text up in the catalogue ``workbench/conf/i18n/<language>.yaml`` (dotted
  keys, ``str.format`` placeholders). Both catalogues hold the same keys; a key missing from
  either is an error (``KeyError``), never a silent fallback.
* :func:`name` translates a name or sentence that comes from data or settings (RFM segment
  names and actions of ``rfm_segments.yaml``, engagement groups, cluster names built from
  :data:`workbench.segments.clusters.DEFAULT_VOCABULARY`). In English it returns the name as
  given; in Chinese a name the catalogue's ``names`` table does not know stays as given (a
  brand's own segment names), so a report never fails on a name it cannot translate.
* :func:`money`, :func:`number` and :func:`percent` write numbers as each language's readers
  expect: ``¥1,234.50``; in Chinese, large counts and amounts in 万 / 亿 (``1.2万``).
* :func:`use_cjk_font` registers the Noto Sans CJK font that the ``noto-cjk-sans-otc`` wheel
  installs with matplotlib as the fallback of the sans-serif family, so figures draw Chinese
  text instead of empty boxes.

Example:
    >>> t("report.title", "zh")
    '客户分群报告'
    >>> money(1234.5, decimals=2), number(12345, "zh"), name("Champions", "zh")
    ('¥1,234.50', '1.2万', '冠军客户')
"""

from __future__ import annotations

import math
import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["LANGUAGES", "DEFAULT_LANGUAGE", "CURRENCY_SYMBOLS", "CJK_FONT_FAMILY", "check_language", "catalogue",
           "keys", "placeholders", "t", "name", "names", "message", "frame", "money", "number", "percent",
           "cjk_font_path", "use_cjk_font"]

#: The languages every catalogue exists in (the first is the default).
LANGUAGES: tuple[str, ...] = ("en", "zh")
DEFAULT_LANGUAGE = "en"
#: How amounts of a currency are written in reports (others: the code before the number).
CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "HKD": "HK$", "EUR": "€", "GBP": "£", "JPY": "JP¥"}
#: The face of the Noto Sans CJK collection used for Chinese (simplified forms).
CJK_FONT_FAMILY = "Noto Sans CJK SC"

CATALOGUE_DIR = Path(__file__).resolve().parent / "conf" / "i18n"


def check_language(language: Any) -> str:
    """``language`` if it is one of :data:`LANGUAGES`, else a ``ValueError`` naming the choices.

    >>> check_language("zh")
    'zh'
    >>> check_language("fr")
    Traceback (most recent call last):
    ...
    ValueError: The 'language' parameter must be one of ['en', 'zh']. Got 'fr' instead.
    """
    if language not in LANGUAGES:
        raise ValueError(f"The 'language' parameter must be one of {list(LANGUAGES)}. Got {language!r} instead.")
    return language


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, str):
            out[key] = v
        else:
            raise ValueError(f"Catalogue entry {key!r} must be a text or a section. Got {v!r} instead.")
    return out


@lru_cache(maxsize=None)
def _load(language: str) -> tuple[dict[str, str], dict[str, str]]:
    path = CATALOGUE_DIR / f"{language}.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    table = raw.pop("names", None) or {}
    if not isinstance(table, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise ValueError(f"The 'names' section of {path} must map texts to texts.")
    return _flatten(raw), dict(table)


def catalogue(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """Every text of a language by dotted key (a copy).

    >>> catalogue("en")["report.title"]
    'Customer segment report'
    """
    return dict(_load(check_language(language))[0])


def keys(language: str = DEFAULT_LANGUAGE) -> set[str]:
    """The dotted keys of a language's catalogue."""
    return set(_load(check_language(language))[0])


def names(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """The ``names`` table of a language: name or sentence as data and settings write it → display text."""
    return dict(_load(check_language(language))[1])


def placeholders(text: str) -> set[str]:
    """The ``{field}`` names of a catalogue text.

    >>> sorted(placeholders("{n:,} customers in {segment}"))
    ['n', 'segment']
    """
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def t(key: str, language: str = DEFAULT_LANGUAGE, /, **values: Any) -> str:
    """The text of ``key`` in ``language``, formatted with ``values``.

    >>> t("report.rfm", "en"), t("report.rfm", "zh")
    ('RFM segments', 'RFM 客户分群')
    >>> t("chart.rfm_suptitle", "zh", n="1,234")
    'RFM 客户分群：共 1,234 位客户'
    >>> t("report.no_such_heading", "zh")
    Traceback (most recent call last):
    ...
    KeyError: "No text 'report.no_such_heading' in the 'zh' catalogue (workbench/conf/i18n/zh.yaml)."
    """
    texts = _load(check_language(language))[0]
    if key not in texts:
        raise KeyError(f"No text {key!r} in the {language!r} catalogue (workbench/conf/i18n/{language}.yaml).")
    return texts[key].format(**values) if values else texts[key]


def name(value: Any, language: str = DEFAULT_LANGUAGE) -> str:
    """A name or sentence from data or settings, as ``language`` shows it.

    Cluster names (tier + phrases of the cluster vocabulary, joined by ", ") are translated
    phrase by phrase; anything the table does not know is returned unchanged.

    >>> name("At Risk", "zh"), name("At Risk", "en"), name("My own segment", "zh")
    ('有流失风险', 'At Risk', 'My own segment')
    >>> name("high-value multichannel, frequent buyers", "zh"), name("rfm: Champions", "zh")
    ('高价值·多渠道、高频购买者', 'rfm: 冠军客户')
    """
    text = "" if value is None else str(value)
    if check_language(language) == DEFAULT_LANGUAGE:
        return text
    table = _load(language)[1]
    if text in table:
        return table[text]
    kind = re.fullmatch(r"([a-z_]+): (.+)", text)  # an audience name: "rfm: Champions"
    if kind:
        return f"{kind.group(1)}: {name(kind.group(2), language)}"
    return _compose(text, table)


def message(text: str, section: str, language: str = DEFAULT_LANGUAGE) -> str:
    """A sentence made by code from an English template of the catalogue's ``section`` (such as the
    runner's reasons), in ``language``: the first template of the section that matches the whole
    sentence is taken, and its ``{fields}`` are carried over. A sentence no template matches is
    returned unchanged.

    >>> message("parameters changed: language", "reason", "zh"), message("forced", "reason", "zh")
    ('参数有变化：language', '强制运行')
    >>> message("something else", "reason", "zh")
    'something else'
    """
    if check_language(language) == DEFAULT_LANGUAGE:
        return text
    english, texts = _load(DEFAULT_LANGUAGE)[0], _load(language)[0]
    for key, template in english.items():
        if not key.startswith(section + "."):
            continue
        pattern = "".join(re.escape(lit) + (f"(?P<{field}>.+?)" if field else "")
                          for lit, field, _, _ in string.Formatter().parse(template))
        m = re.fullmatch(pattern, text)
        if m:
            return texts[key].format(**m.groupdict())
    return text


def _slug(label: Any) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(label).lower()).strip("_")


def frame(df: "pd.DataFrame", section: str, language: str = DEFAULT_LANGUAGE, *,
          names_in: tuple[str, ...] = ()) -> "pd.DataFrame":
    """A table as ``language`` shows it: column names and the index name through the catalogue
    keys ``<section>.<slug of the name>`` ("share of persons" → ``groups.share_of_persons``),
    index labels and the values of the ``names_in`` columns through :func:`name`. A column
    without a key keeps its name. In English the table is returned unchanged.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"persons": [3], "action": ["keep out of paid campaigns"]},
    ...                   index=pd.Index(["Dormant"], name="group"))
    >>> frame(df, "groups", "zh", names_in=("action",)).to_dict("index")
    {'沉睡客户': {'人数': 3, '建议行动': '不纳入付费投放'}}
    """
    if check_language(language) == DEFAULT_LANGUAGE:
        return df
    texts = _load(language)[0]

    def label(c: Any) -> Any:
        return texts.get(f"{section}.{_slug(c)}", c)

    out = df.copy()
    for c in names_in:
        if c in out.columns:
            out[c] = [name(v, language) for v in out[c]]
    index_name = out.index.name
    out.index = [name(v, language) for v in out.index]
    out.index.name = label(index_name) if index_name is not None else None
    return out.rename(columns=label)


def _compose(text: str, table: Mapping[str, str]) -> str:
    """Translate a composed cluster name (optional value tier, phrases joined by ", ", an extra
    phrase in brackets); unchanged when any part is unknown."""
    m = re.fullmatch(r"(.*?)(?: \((.*)\))?", text)
    core, extra = (m.group(1), m.group(2)) if m else (text, None)
    tier: str | None = ""
    for prefix in ("high-value ", "low-value "):
        if core.startswith(prefix):
            tier, core = table.get(prefix.strip()), core[len(prefix):]
            break
    parts = [table.get(p.strip()) for p in core.split(",")]
    if tier is None or any(p is None for p in parts):
        return text
    joined = "、".join(parts)  # type: ignore[arg-type]
    if tier:
        joined = f"{tier}·{joined}"
    if extra is not None:
        joined += f"（{_compose(extra, table)}）"
    return joined


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _compact_zh(value: float, decimals: int) -> str | None:
    """1.2万 / 3.4亿 for |value| ≥ 10,000, else None."""
    a = abs(value)
    if a >= 1e8:
        return f"{value / 1e8:,.{max(decimals, 1)}f}亿"
    if a >= 1e4:
        return f"{value / 1e4:,.{max(decimals, 1)}f}万"
    return None


def number(value: Any, language: str = DEFAULT_LANGUAGE, *, decimals: int = 0, compact: bool = True) -> str:
    """A count as ``language`` writes it: thousands separators; in Chinese 万 / 亿 from 10,000 on
    (one decimal) unless ``compact=False``. Missing values are "–".

    >>> number(1234567), number(1234567, "zh"), number(9876, "zh"), number(12000, "zh", compact=False)
    ('1,234,567', '123.5万', '9,876', '12,000')
    >>> number(250_000_000, "zh")
    '2.5亿'
    """
    check_language(language)
    if _is_missing(value):
        return "–"
    value = float(value)
    if language == "zh" and compact:
        c = _compact_zh(value, 1 if decimals == 0 else decimals)
        if c is not None:
            return c
    return f"{value:,.{decimals}f}"


def money(value: Any, currency: str = "CNY", language: str = DEFAULT_LANGUAGE, *, decimals: int = 0,
          compact: bool = True) -> str:
    """An amount: the currency's symbol (or its code) before the number, thousands separators;
    in Chinese 万 / 亿 from 10,000 on unless ``compact=False``. Missing values are "–".

    >>> money(1234.5, decimals=2), money(99, "USD"), money(7, "SGD"), money(14_012_345, language="zh")
    ('¥1,234.50', '$99', 'SGD 7', '¥1,401.2万')
    >>> money(-5000.25, decimals=2, language="zh")
    '-¥5,000.25'
    """
    check_language(language)
    if _is_missing(value):
        return "–"
    value = float(value)
    sym = CURRENCY_SYMBOLS.get(currency)
    sign, a = ("-" if value < 0 else ""), abs(value)
    body = _compact_zh(a, 1) if (language == "zh" and compact) else None
    body = body or f"{a:,.{decimals}f}"
    return f"{sign}{sym}{body}" if sym else f"{sign}{currency} {body}"


def percent(value: Any, language: str = DEFAULT_LANGUAGE, *, decimals: int = 1) -> str:
    """A 0–1 share as a percentage (the same in both languages).

    >>> percent(0.3712), percent(None, "zh")
    ('37.1%', '–')
    """
    check_language(language)
    return "–" if _is_missing(value) else f"{float(value) * 100:.{decimals}f}%"


def cjk_font_path() -> Path:
    """The Noto Sans CJK collection installed by the ``noto-cjk-sans-otc`` wheel (a project dependency).

    >>> cjk_font_path().name
    'NotoSansCJK-Regular.ttc'
    """
    import noto_cjk_sans_otc

    path = Path(str(noto_cjk_sans_otc.FONT_PATH))
    if not path.is_file():
        raise FileNotFoundError(f"The CJK font {path} is missing: reinstall the environment (make env).")
    return path


def use_cjk_font() -> str:
    """Register the packaged CJK font with matplotlib's font manager and make it the fallback of
    the sans-serif family (``font.family = ["sans-serif", "Noto Sans CJK SC"]``): Latin text keeps
    its look (DejaVu Sans), and every glyph it lacks, Chinese above all, comes from Noto Sans CJK
    SC. Returns the family name. Safe to call more than once.

    >>> import matplotlib; use_cjk_font() in matplotlib.rcParams["font.family"]
    True
    """
    import matplotlib
    from matplotlib import font_manager

    path = str(cjk_font_path())
    manager = font_manager.fontManager
    if not manager.ttflist or manager.ttflist[0].fname != path:
        # Debian's fonts-noto-cjk has the same family name: findfont keeps the first of equally good
        # matches, so the packaged file goes first and figures do not depend on what the machine has
        manager.ttflist = [f for f in manager.ttflist if f.fname != path]
        manager.addfont(path)   # appends the collection's faces and clears findfont's cache
        manager.ttflist.sort(key=lambda f: f.fname != path)   # stable: the rest keep their order
    matplotlib.rcParams["font.family"] = ["sans-serif", CJK_FONT_FAMILY]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return CJK_FONT_FAMILY

"""Building blocks of the manager-facing segment report (notebook 10): headline numbers and
one card per segment, as self-contained HTML that the code-free report keeps.

Nothing here prints personal data: cards are aggregates; OneIDs are pseudonyms.

Example:
    >>> import pandas as pd
    >>> p = pd.DataFrame({"segment": ["A", "A", "B"], "net_revenue": [100.0, 300.0, 0.0],
    ...                   "orders": [1, 2, 0], "main_sales_channel": ["tmall", "tmall", None],
    ...                   "favourite_category": ["makeup", "skincare", None]})
    >>> s = segment_stats(p, "segment")
    >>> int(s.loc["A", "customers"]), float(s.loc["A", "revenue_share"]), float(s.loc["A", "avg_revenue"])
    (2, 1.0, 200.0)
"""

from __future__ import annotations

import html
from typing import Iterable, Mapping

import pandas as pd

from . import i18n
from .i18n import CURRENCY_SYMBOLS, DEFAULT_LANGUAGE

_CSS = """
<style>
.wb-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px;margin:8px 0 16px}
.wb-card{border:1px solid #d0d7de;border-radius:8px;padding:10px 12px;background:#fff;font-size:13px}
.wb-card h4{margin:0 0 6px;font-size:15px}
.wb-card table{border-collapse:collapse;width:100%;margin:0}
.wb-card td{padding:1px 0;border:none;text-align:left}
.wb-card td.v{text-align:right;font-weight:600}
.wb-card .act{margin-top:6px;color:#444;font-style:italic}
.wb-head{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 16px}
.wb-num{border:1px solid #d0d7de;border-radius:8px;padding:8px 14px;min-width:150px;background:#f6f8fa}
.wb-num .n{font-size:22px;font-weight:700}
.wb-num .l{font-size:12px;color:#555}
</style>
"""


__all__ = ["CURRENCY_SYMBOLS", "money", "headline_html", "segment_stats", "cards_html"]


def money(value: float, currency: str = "CNY", language: str = DEFAULT_LANGUAGE) -> str:
    """An amount as reports write it (whole units; in Chinese large amounts in 万 / 亿,
    see :func:`workbench.i18n.money`).

    >>> money(1234.5), money(99, "USD"), money(7, "SGD"), money(1_234_567, language="zh")
    ('¥1,234', '$99', 'SGD 7', '¥123.5万')
    """
    return i18n.money(value, currency, language)


def _fmt(value, kind: str, currency: str = "CNY", language: str = DEFAULT_LANGUAGE) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if kind == "int":
        return i18n.number(int(value), language)
    if kind == "pct":
        return f"{value:.1%}"
    if kind in ("money", "cny"):
        return money(value, currency, language)
    if kind == "prob":
        return f"{value:.2f}"
    return html.escape(str(value))


def headline_html(numbers: Mapping[str, tuple[object, str]], *, currency: str = "CNY",
                  language: str = DEFAULT_LANGUAGE) -> str:
    """A row of big numbers: ``{label: (value, kind)}`` with kind int / pct / money / text;
    labels are shown as given, numbers as ``language`` writes them.

    >>> "1.2万" in headline_html({"客户数": (12345, "int")}, language="zh")
    True
    """
    i18n.check_language(language)
    items = "".join(f'<div class="wb-num"><div class="n">{_fmt(v, k, currency, language)}</div>'
                    f'<div class="l">{html.escape(label)}</div></div>' for label, (v, k) in numbers.items())
    return _CSS + f'<div class="wb-head">{items}</div>'


def _top(values: pd.Series, k: int = 2) -> str:
    counts = values.dropna().astype(str).value_counts()
    counts = counts[counts.index != ""]
    if counts.empty:
        return "–"
    share = counts / counts.sum()
    return ", ".join(f"{name} {s:.0%}" for name, s in share.head(k).items())


def segment_stats(profile: pd.DataFrame, segment_col: str, *, order: Iterable[str] | None = None,
                  revenue_col: str = "net_revenue", churn_col: str | None = None,
                  clv_col: str | None = None) -> pd.DataFrame:
    """Per segment: customers, share, revenue share, average revenue, mean churn risk and CLV
    (when given and present), top sales channels and categories (when the profile has them)."""
    g = profile.groupby(segment_col, observed=True, sort=False)
    total_rev = profile[revenue_col].sum()
    out = pd.DataFrame({
        "customers": g.size(),
        "share": g.size() / max(len(profile), 1),
        "revenue_share": g[revenue_col].sum() / total_rev if total_rev else 0.0,
        "avg_revenue": g[revenue_col].mean(),
    })
    if churn_col and churn_col in profile.columns:
        out["churn_risk"] = g[churn_col].mean()
    if clv_col and clv_col in profile.columns:
        out["clv_12m"] = g[clv_col].mean()
    if "main_sales_channel" in profile.columns:
        out["top_channels"] = g["main_sales_channel"].agg(_top)
    if "favourite_category" in profile.columns:
        out["top_categories"] = g["favourite_category"].agg(_top)
    if order is not None:
        out = out.reindex([o for o in order if o in out.index])
    return out


def cards_html(stats: pd.DataFrame, *, actions: Mapping[str, str] | None = None,
               colours: Mapping[str, str] | None = None, currency: str = "CNY",
               language: str = DEFAULT_LANGUAGE) -> str:
    """One card per row of :func:`segment_stats`, in ``language``: labels from the catalogue,
    segment names and actions through :func:`workbench.i18n.name`.

    >>> s = pd.DataFrame({"customers": [3], "share": [1.0]}, index=["Champions"])
    >>> page = cards_html(s, actions={"Champions": "Try one low-cost win-back campaign, then stop spending on them."},
    ...                   language="zh")
    >>> "冠军客户" in page and "客户占比" in page and "建议行动" in page
    True
    """
    i18n.check_language(language)
    rows = [("card.customers", "customers", "int"), ("card.share_customers", "share", "pct"),
            ("card.share_revenue", "revenue_share", "pct"), ("card.avg_revenue", "avg_revenue", "money"),
            ("card.churn_risk", "churn_risk", "prob"), ("card.clv", "clv_12m", "money"),
            ("card.top_channels", "top_channels", "text"), ("card.top_categories", "top_categories", "text")]
    what = html.escape(i18n.t("card.what_to_do", language))
    cards = []
    for name, r in stats.iterrows():
        body = "".join(f'<tr><td>{html.escape(i18n.t(label, language))}</td>'
                       f'<td class="v">{_fmt(r[col], kind, currency, language)}</td></tr>'
                       for label, col, kind in rows if col in stats.columns)
        act = (actions or {}).get(str(name))
        colour = (colours or {}).get(str(name), "#4C72B0")
        title = html.escape(i18n.name(name, language))
        cards.append(f'<div class="wb-card" style="border-top:4px solid {colour}"><h4>{title}</h4>'
                     f"<table>{body}</table>"
                     + (f'<div class="act">{what} {html.escape(i18n.name(act, language))}</div>' if act else "")
                     + "</div>")
    return _CSS + f'<div class="wb-cards">{"".join(cards)}</div>'

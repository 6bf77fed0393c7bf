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


#: How amounts of a currency are written in reports (others: the code before the number).
CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "HKD": "HK$", "EUR": "€", "GBP": "£", "JPY": "JP¥"}


def money(value: float, currency: str = "CNY") -> str:
    """An amount as reports write it.

    >>> money(1234.5), money(99, "USD"), money(7, "SGD")
    ('¥1,234', '$99', 'SGD 7')
    """
    sym = CURRENCY_SYMBOLS.get(currency)
    return f"{sym}{value:,.0f}" if sym else f"{currency} {value:,.0f}"


def _fmt(value, kind: str, currency: str = "CNY") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{value:.1%}"
    if kind in ("money", "cny"):
        return money(value, currency)
    if kind == "prob":
        return f"{value:.2f}"
    return html.escape(str(value))


def headline_html(numbers: Mapping[str, tuple[object, str]], *, currency: str = "CNY") -> str:
    """A row of big numbers: ``{label: (value, kind)}`` with kind int / pct / money / text."""
    items = "".join(f'<div class="wb-num"><div class="n">{_fmt(v, k, currency)}</div>'
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
               colours: Mapping[str, str] | None = None, currency: str = "CNY") -> str:
    """One card per row of :func:`segment_stats`."""
    rows = [("customers", "customers", "int"), ("share of customers", "share", "pct"),
            ("share of revenue", "revenue_share", "pct"), ("average net revenue", "avg_revenue", "money"),
            ("mean churn risk", "churn_risk", "prob"), ("mean 12-month CLV", "clv_12m", "money"),
            ("top sales channels", "top_channels", "text"), ("favourite categories", "top_categories", "text")]
    cards = []
    for name, r in stats.iterrows():
        body = "".join(f'<tr><td>{label}</td><td class="v">{_fmt(r[col], kind, currency)}</td></tr>'
                       for label, col, kind in rows if col in stats.columns)
        act = (actions or {}).get(str(name))
        colour = (colours or {}).get(str(name), "#4C72B0")
        cards.append(f'<div class="wb-card" style="border-top:4px solid {colour}"><h4>{html.escape(str(name))}</h4>'
                     f"<table>{body}</table>"
                     + (f'<div class="act">What to do: {html.escape(act)}</div>' if act else "") + "</div>")
    return _CSS + f'<div class="wb-cards">{"".join(cards)}</div>'

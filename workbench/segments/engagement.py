"""Engagement × value: who engages (live stream, site, app, WeChat, e-mail) against who pays.

The engagement score of a person is the mean of their percentile ranks on each
engagement signal (ties get the average rank, so the score does not depend on row
order); value is net revenue. Thresholds are quantiles, parameters of the notebook:

==========================  =====================  ====================================
group                       rule                   what to do
==========================  =====================  ====================================
VIP care                    high eng., high value  early access, personal service
Engaged, low value          high eng., some value  bundles and cross-sell to lift basket
Nurture (never bought)      high eng., no orders   first-purchase offer in the live room
At-risk VIP                 low eng., high value   win-back call before they lapse
Occasional buyers           low eng., some value   low-cost reminders around key dates
Dormant                     low eng., no orders    keep out of paid campaigns
==========================  =====================  ====================================

Example:
    >>> import pandas as pd
    >>> p = pd.DataFrame({"live_watch_minutes": [300, 0, 250, 5], "web_sessions": [9, 1, 8, 0],
    ...                   "net_revenue": [5000.0, 5000.0, 0.0, 0.0], "orders": [9, 5, 0, 0]},
    ...                  index=["a", "b", "c", "d"])
    >>> ev = engagement_value(p, signals=["live_watch_minutes", "web_sessions"],
    ...                       engagement_quantile=0.5, value_quantile=0.5)
    >>> ev["group"].tolist()
    ['VIP care', 'At-risk VIP', 'Nurture (never bought)', 'Dormant']
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

#: Engagement signals of the customer 360 profile used by default, when the profile has them.
DEFAULT_SIGNALS = ("live_stream_watched_minutes", "live_product_clicked", "sessions", "application_opened",
                   "wechat_following", "email_open_rate")


def available_signals(profile: pd.DataFrame, signals: Sequence[str] = DEFAULT_SIGNALS) -> list[str]:
    """The ``signals`` the profile has (a brand without a live-stream channel has no live-stream signal).

    >>> available_signals(pd.DataFrame(columns=["sessions", "orders"]))
    ['sessions']
    """
    return [c for c in signals if c in profile.columns]
GROUPS = ("VIP care", "Engaged, low value", "Nurture (never bought)", "At-risk VIP", "Occasional buyers",
          "Dormant")
ACTIONS = {
    "VIP care": "early access, personal service",
    "Engaged, low value": "bundles and cross-sell to lift the basket",
    "Nurture (never bought)": "first-purchase offer where they engage (live room, app)",
    "At-risk VIP": "win-back contact before they lapse",
    "Occasional buyers": "low-cost reminders around key dates",
    "Dormant": "keep out of paid campaigns",
}


def _check_quantile(q: float, name: str) -> float:
    if not isinstance(q, (int, float)) or not 0 < q < 1:
        raise ValueError(f"The '{name}' parameter must be a number in (0, 1). Got {q!r} instead.")
    return float(q)


def engagement_score(profile: pd.DataFrame, *, signals: Sequence[str] = DEFAULT_SIGNALS) -> pd.Series:
    """Engagement score 0–1: the mean over ``signals`` of the person's percentile rank among
    the people who show that signal (0 for those who do not; missing counts as 0). Each
    signal weighs the same however rare it is; ties get their average rank.

    >>> p = pd.DataFrame({"live": [0, 10, 20, 20], "web": [1, 0, 0, 3]})
    >>> engagement_score(p, signals=["live", "web"]).round(3).tolist()
    [0.25, 0.167, 0.417, 0.917]
    """
    missing = [c for c in signals if c not in profile.columns]
    if missing:
        raise KeyError(f"Engagement signals {missing} are not profile columns. Columns: {list(profile.columns)}.")
    if not len(signals):
        raise ValueError("The 'signals' parameter must name at least one column. Got an empty list instead.")
    def score(x: pd.Series) -> pd.Series:
        # percentile among the people who show the signal at all; 0 for those who do not
        x = x.astype(float).fillna(0.0)
        pos = x > 0
        out = pd.Series(0.0, index=x.index)
        if pos.any():
            out[pos] = x[pos].rank(method="average", pct=True)
        return out

    return pd.DataFrame({c: score(profile[c]) for c in signals}, index=profile.index).mean(axis=1).rename("engagement")


def engagement_value(profile: pd.DataFrame, *, signals: Sequence[str] = DEFAULT_SIGNALS,
                     value_col: str = "net_revenue", orders_col: str = "orders",
                     engagement_quantile: float = 0.75, value_quantile: float = 0.75) -> pd.DataFrame:
    """Engagement score, value and the named group of every person.

    High engagement = score at or above its ``engagement_quantile`` (over everyone);
    high value = value at or above its ``value_quantile`` among buyers (``orders`` > 0).
    Returns ``engagement``, ``value``, ``buyer``, ``high_engagement``, ``high_value``,
    ``group`` (ordered categorical, :data:`GROUPS`).
    """
    eq = _check_quantile(engagement_quantile, "engagement_quantile")
    vq = _check_quantile(value_quantile, "value_quantile")
    for c in (value_col, orders_col):
        if c not in profile.columns:
            raise KeyError(f"Column {c!r} is not in the profile. Columns: {list(profile.columns)}.")
    eng = engagement_score(profile, signals=signals)
    value = profile[value_col].astype(float).fillna(0.0)
    buyer = profile[orders_col].fillna(0).to_numpy() > 0
    e_cut = float(np.quantile(eng.to_numpy(), eq))
    v_cut = float(np.quantile(value[buyer].to_numpy(), vq)) if buyer.any() else np.inf
    high_e = (eng >= e_cut) & (eng > 0)
    high_v = pd.Series(buyer, index=profile.index) & (value >= v_cut)
    group = np.select(
        [high_e & high_v, high_e & buyer, high_e, ~high_e & high_v, ~high_e & buyer],
        list(GROUPS[:5]), default=GROUPS[5])
    out = pd.DataFrame({"engagement": eng, "value": value, "buyer": buyer, "high_engagement": high_e,
                        "high_value": high_v,
                        "group": pd.Categorical(group, categories=list(GROUPS), ordered=True)},
                       index=profile.index)
    out.attrs.update({"engagement_cut": e_cut, "value_cut": v_cut, "signals": list(signals)})
    return out


def group_summary(ev: pd.DataFrame, *, language: str = "en") -> pd.DataFrame:
    """Per group: persons, share, revenue, revenue share, mean engagement, suggested action.

    In ``language="zh"`` the column names, group names and actions are Chinese (the columns in
    the same order; see :mod:`workbench.i18n`).
    """
    from ..i18n import frame

    g = ev.groupby("group", observed=False)
    out = pd.DataFrame({"persons": g.size(), "revenue": g["value"].sum(), "mean engagement": g["engagement"].mean()})
    out["share of persons"] = out["persons"] / max(len(ev), 1)
    total = out["revenue"].sum()
    out["share of revenue"] = out["revenue"] / total if total else 0.0
    out["action"] = [ACTIONS[k] for k in out.index]
    out = out[["persons", "share of persons", "revenue", "share of revenue", "mean engagement", "action"]]
    return frame(out, "groups", language, names_in=("action",))


def plot_quadrants(ev: pd.DataFrame, *, sample: int = 6000, random_state: int = 0, language: str = "en"):
    """Scatter of engagement score against net revenue (log axis), coloured by group, cut lines
    drawn; labels and group names in ``language`` (:mod:`workbench.i18n`)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from ..i18n import check_language, number, t
    from ..i18n import name as display_name

    lang = check_language(language)
    d = ev if len(ev) <= sample else ev.sample(sample, random_state=random_state)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    shown = d.assign(revenue=d["value"].clip(lower=1.0),
                     group=d["group"].map(lambda g: display_name(g, lang)))
    sns.scatterplot(data=shown, x="engagement", y="revenue", hue="group",
                    hue_order=[display_name(g, lang) for g in GROUPS], s=12, alpha=0.6, linewidth=0, ax=ax)
    ax.set_yscale("log")
    ax.axvline(ev.attrs.get("engagement_cut", np.nan), color="grey", ls="--", lw=1)
    if np.isfinite(ev.attrs.get("value_cut", np.inf)):
        ax.axhline(ev.attrs["value_cut"], color="grey", ls="--", lw=1)
    signals = ", ".join(ev.attrs.get("signals", [])) or t("chart.engagement_signals_default", lang)
    ax.set_xlabel(t("chart.engagement_x", lang, signals=signals))
    ax.set_ylabel(t("chart.engagement_y", lang, currency=ev.attrs.get("currency", "CNY")))
    ax.set_title(t("chart.engagement_title", lang, shown=number(len(d), lang, compact=False),
                   total=number(len(ev), lang, compact=False)))
    ax.legend(title=t("chart.engagement_legend", lang), bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig

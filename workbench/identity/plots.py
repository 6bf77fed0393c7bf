"""Figures for the OneID notebook."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _plain_log_ticks(axis) -> None:
    """Counts on a log axis as plain numbers (1, 10, 1,000): matplotlib's default writes them
    as powers of ten with its math-text parser, whose first use costs a kernel ~0.1-0.5 s."""
    import matplotlib.ticker as mticker

    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


def plot_match_weights(scored: pd.DataFrame, threshold_probability: float, ax=None):
    """Histogram of Splink match weights of every scored pair, with the threshold."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(9, 3.8))[1]
    sns.histplot(scored["match_weight"], bins=60, ax=ax, color="#4C72B0")
    w = math.log2(threshold_probability / (1 - threshold_probability))
    ax.axvline(w, color="#C44E52", linestyle="--", label=f"threshold: P(match) ≥ {threshold_probability:g}")
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("match weight (log2 Bayes factor incl. prior)")
    ax.set_ylabel("profile pairs (log scale)")
    ax.set_title("Probabilistic stage: scores of candidate pairs")
    ax.legend()
    return ax


def plot_match_rates(rates: pd.DataFrame, ax=None):
    """Per channel: share of records that belong to a known person / are linked across channels."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 4))[1]
    rates[["known_person", "linked_across_channels"]].sort_values("known_person").plot.barh(
        ax=ax, color=["#55A868", "#4C72B0"], width=0.75)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the channel's records")
    ax.set_ylabel("channel")
    ax.set_title("Match rate per channel")
    ax.legend(["belongs to a known person", "linked to another channel"], loc="lower right", fontsize=8)
    return ax


def plot_oneid_sizes(records: pd.DataFrame, clip: int = 200, ax=None):
    """Histogram of records per OneID (clipped at ``clip``), OneIDs on a log scale."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3.5))[1]
    sizes = records["oneid"].value_counts()
    sizes.clip(upper=clip).plot.hist(bins=50, log=True, color="#4C72B0", ax=ax)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel(f"records per OneID (clipped at {clip})")
    ax.set_ylabel("OneIDs (log scale)")
    ax.set_title("Size distribution of OneIDs")
    return ax


def plot_person_graph(records: pd.DataFrame, links: pd.DataFrame, *, title: str = "", ax=None):
    """One person's records (a node per record, coloured by channel, on a circle) and the links
    that joined them (labelled with the identifier, or 'probabilistic')."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(8, 8))[1]
    recs = records.sort_values(["channel", "record_id"]).reset_index(drop=True)
    n = len(recs)
    angle = 2 * np.pi * np.arange(n) / max(n, 1)
    pos = {r: (np.cos(a), np.sin(a)) for r, a in zip(recs["record_id"], angle)}
    channels = sorted(recs["channel"].unique())
    palette = dict(zip(channels, sns.color_palette("tab10", len(channels))))
    hows = sorted(links["how"].unique())
    styles = dict(zip(hows, sns.color_palette("dark", len(hows))))
    for how, grp in links.groupby("how"):
        for a, b in zip(grp["record_a"], grp["record_b"]):
            if a in pos and b in pos:
                (x0, y0), (x1, y1) = pos[a], pos[b]
                ax.plot([x0, x1], [y0, y1], color=styles[how], lw=2.2 if how == "probabilistic" else 1,
                        ls="--" if how == "probabilistic" else "-", alpha=0.7)
    for ch in channels:
        pts = np.array([pos[r] for r in recs.loc[recs["channel"] == ch, "record_id"]])
        ax.scatter(pts[:, 0], pts[:, 1], s=70, color=palette[ch], label=f"record: {ch}", zorder=3, edgecolor="white")
    for how in hows:
        ax.plot([], [], color=styles[how], ls="--" if how == "probabilistic" else "-", label=f"link: {how}")
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or "How one person's records were joined")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    return ax


def plot_link_waterfall(link: pd.Series, prior: float, ax=None):
    """One fuzzy link's match weight built up from the prior and each comparison (the
    ``mw_*`` columns of a link from :func:`workbench.identity.explain`) — Splink's waterfall.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("agg")
        >>> ax = plot_link_waterfall(pd.Series({"match_weight": 9.0, "mw_name": 8.0, "mw_dob": 5.0,
        ...                                     "mw_tf_adj_name": -0.5}), prior=0.01)
        >>> [t.get_text() for t in ax.get_xticklabels()]
        ['prior', 'name', 'dob', 'tf_adj_name', 'total']
    """
    import matplotlib.pyplot as plt

    parts = {k[3:]: float(v) for k, v in link.items() if str(k).startswith("mw_") and pd.notna(v)}
    steps = {"prior": math.log2(prior / (1 - prior)), **parts}
    ax = ax or plt.subplots(figsize=(9, 3.8))[1]
    bottom = 0.0
    for k, (name, w) in enumerate(steps.items()):
        ax.bar(k, w, bottom=bottom, color="#55A868" if w >= 0 else "#C44E52")
        bottom += w
    ax.bar(len(steps), bottom, color="#4C72B0")
    ax.set_xticks(range(len(steps) + 1), [*steps, "total"], rotation=30, ha="right")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("match weight (log2 Bayes factor)")
    ax.set_title(f"One link: match weight {link.get('match_weight', bottom):.1f} from each comparison")
    return ax

"""Figures of the customer 360 profile (notebook 04). Each returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd


def channel_matrix(profile: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Persons × channels, True where the person was seen in the channel (columns in ``order``,
    e.g. the mappings' order, then any other channel alphabetically)."""
    # one row of dummies per distinct set of channels (there are few), then one per person
    codes, sets = pd.factorize(profile["channels"].fillna(""))
    dummies = pd.Series(sets).str.get_dummies(sep=",")
    chans = pd.DataFrame(dummies.to_numpy()[codes], index=profile.index, columns=dummies.columns).astype(bool)
    order = [c for c in (order or []) if c in chans.columns] + sorted(set(chans.columns) - set(order or []))
    return chans[order]


def plot_channel_coverage(profile: pd.DataFrame, order: list[str] | None = None):
    """Left: share of persons seen in each channel. Right: of those seen in channel A
    (row), the share also seen in channel B (column)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    m = channel_matrix(profile, order)
    share = m.mean()
    overlap = pd.DataFrame(m.T.astype(int).to_numpy() @ m.astype(int).to_numpy(), index=m.columns, columns=m.columns)
    overlap = overlap.div(np.diag(overlap).clip(min=1), axis=0)
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [1, 1.5]})
    sns.barplot(x=share.to_numpy(), y=share.index, color="#4C72B0", ax=a)
    a.set_xlabel("share of OneIDs seen in the channel")
    a.set_ylabel("channel")
    a.set_title(f"Channel coverage ({len(profile):,} OneIDs)")
    sns.heatmap(overlap, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=b,
                annot_kws={"fontsize": 7})
    b.set_xlabel("also seen in")
    b.set_ylabel("persons seen in")
    b.set_title("Channel overlap (row-normalised)")
    fig.tight_layout()
    return fig


def plot_value_distribution(profile: pd.DataFrame):
    """Distribution of orders and net revenue among buyers, and revenue by sales channel (when the
    profile has several: its ``revenue_<sales channel>`` columns)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    currency = profile.attrs.get("currency", "CNY")
    buyers = profile[profile["orders"] > 0]
    by_channel = [c for c in profile.columns if c.startswith("revenue_")]
    fig, axes = plt.subplots(1, 3 if by_channel else 2, figsize=(15 if by_channel else 10, 4))
    sns.histplot(buyers["orders"].clip(upper=30), bins=30, discrete=True, ax=axes[0], color="#4C72B0")
    axes[0].set_xlabel("paid orders per customer (clipped at 30)")
    axes[0].set_ylabel("customers")
    axes[0].set_title(f"Orders ({len(buyers):,} customers)")
    sns.histplot(buyers["net_revenue"].clip(lower=1), bins=40, log_scale=True, ax=axes[1], color="#55A868")
    axes[1].set_xlabel(f"net revenue per customer ({currency}, log scale)")
    axes[1].set_ylabel("customers")
    axes[1].set_title("Net revenue")
    if by_channel:
        rev = profile[by_channel].sum() / 1e6
        sns.barplot(x=[c.removeprefix("revenue_") for c in by_channel], y=rev.to_numpy(), ax=axes[2], color="#C44E52")
        axes[2].set_xlabel("sales channel")
        axes[2].set_ylabel(f"net revenue (million {currency})")
        axes[2].set_title("Revenue by sales channel")
    fig.tight_layout()
    return fig

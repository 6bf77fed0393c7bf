"""Behavioural features of the customer 360 profile for clustering (notebook 06).

Which persons: known persons (member id, phone or e-mail) by default — anonymous cookie
or device fragments are not marketable people. Which columns: those of
:data:`BEHAVIOUR_COLUMNS` the profile holds (a brand without a live-stream channel has no
live-stream columns) and that vary — purchase and engagement counts named after the
canonical event vocabulary. Missing values are not left to
a generic fill: a person who never ordered gets ``days_since_last_order`` = the longest
recency in the table + 30 days ("longer ago than anyone"), and no average order value
or e-mail rate counts as 0.

Example:
    >>> import pandas as pd
    >>> p = pd.DataFrame({"oneid": ["a", "b"], "is_known": [True, True], "orders": [2, 0],
    ...                   "days_since_last_order": [10.0, None]})
    >>> behaviour_features(p, columns=["orders", "days_since_last_order"])["days_since_last_order"].tolist()
    [10.0, 40.0]
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

#: Profile columns that describe behaviour (purchase, engagement, service), when present.
BEHAVIOUR_COLUMNS = (
    "orders", "net_revenue", "avg_order_value", "days_since_last_order", "sessions", "application_opened",
    "live_stream_watched", "live_stream_watched_minutes", "live_stream_commented", "live_gift_sent",
    "live_product_clicked", "email_open_rate", "service_ticket_opened", "n_channels",
)
POPULATIONS = ("known", "all", "customers")


def behaviour_features(profile: pd.DataFrame, *, columns: Sequence[str] | None = None,
                       population: str = "known") -> pd.DataFrame:
    """Feature table indexed by OneID for the chosen ``population`` ("known", "all", "customers").

    ``columns`` default to the :data:`BEHAVIOUR_COLUMNS` the profile has and that are not the
    same for everyone; columns given explicitly must all exist.
    """
    if population not in POPULATIONS:
        raise ValueError(f"The 'population' parameter must be one of {list(POPULATIONS)}. Got {population!r} instead.")
    p = profile.set_index("oneid") if "oneid" in profile.columns else profile
    if columns is None:
        columns = [c for c in BEHAVIOUR_COLUMNS if c in p.columns and p[c].nunique(dropna=False) > 1]
    missing = [c for c in columns if c not in p.columns]
    if missing:
        raise KeyError(f"Behaviour columns {missing} are not profile columns. Columns: {list(p.columns)}.")
    if population == "known":
        p = p[p["is_known"].to_numpy(bool)]
    elif population == "customers":
        if "orders" not in p.columns:
            raise KeyError("The 'customers' population needs orders, and the profile has none.")
        p = p[p["orders"].to_numpy() > 0]
    out = p[list(columns)].astype(float)
    if "days_since_last_order" in out.columns:
        longest = out["days_since_last_order"].max()
        out["days_since_last_order"] = out["days_since_last_order"].fillna((0.0 if pd.isna(longest) else longest) + 30.0)
    return out.fillna(0.0).sort_index()

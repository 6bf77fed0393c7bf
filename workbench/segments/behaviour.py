"""Behavioural features of the customer 360 profile for clustering (notebook 06).

Which persons: known persons (member id, phone or e-mail) by default — anonymous cookie
or device fragments are not marketable people. Which columns: :data:`BEHAVIOUR_COLUMNS`,
purchase and engagement counts the profile already holds. Missing values are not left to
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

#: Profile columns that describe behaviour (purchase, engagement, service).
BEHAVIOUR_COLUMNS = (
    "orders", "net_revenue", "avg_order_value", "days_since_last_order", "web_sessions", "app_sessions",
    "live_sessions", "live_watch_minutes", "live_comments", "live_gifts", "live_product_clicks",
    "email_open_rate", "service_tickets", "n_channels",
)
POPULATIONS = ("known", "all", "customers")


def behaviour_features(profile: pd.DataFrame, *, columns: Sequence[str] = BEHAVIOUR_COLUMNS,
                       population: str = "known") -> pd.DataFrame:
    """Feature table indexed by OneID for the chosen ``population`` ("known", "all", "customers")."""
    if population not in POPULATIONS:
        raise ValueError(f"The 'population' parameter must be one of {list(POPULATIONS)}. Got {population!r} instead.")
    p = profile.set_index("oneid") if "oneid" in profile.columns else profile
    missing = [c for c in columns if c not in p.columns]
    if missing:
        raise KeyError(f"Behaviour columns {missing} are not profile columns. Columns: {list(p.columns)}.")
    if population == "known":
        p = p[p["is_known"].to_numpy(bool)]
    elif population == "customers":
        p = p[p["orders"].to_numpy() > 0]
    out = p[list(columns)].astype(float)
    if "days_since_last_order" in out.columns:
        longest = out["days_since_last_order"].max()
        out["days_since_last_order"] = out["days_since_last_order"].fillna((0.0 if pd.isna(longest) else longest) + 30.0)
    return out.fillna(0.0).sort_index()

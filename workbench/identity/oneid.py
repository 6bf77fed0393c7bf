"""Stable OneIDs: a person keeps their id from run to run unless they were merged or split.

A new cluster takes the id its records had before (the registry of the previous run):

- all its previously seen records had one id, and that id is not split → it keeps the id;
- its records had several ids → **merge**: the id holding most of its records survives
  (ties: the smallest id), the others go to the history as ``old → new, merge``;
- one old id's records now lie in several clusters → **split**: the cluster holding most of
  them keeps it, the others get new ids, recorded as ``old → new, split``;
- no record seen before → a new id derived from its smallest record id (deterministic, so a
  rerun of the same data without a registry gives the same ids).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def new_oneid(seed_record: str) -> str:
    return "OID-" + hashlib.sha256(seed_record.encode()).hexdigest()[:12]


def assign_oneids(record_ids: pd.Series, labels: np.ndarray,
                  previous: pd.DataFrame | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """OneID per record (aligned with ``record_ids``) and the id-history rows of this run.

    ``previous`` is the last registry (columns ``record_id``, ``oneid``) or None.
    """
    df = pd.DataFrame({"record_id": record_ids.to_numpy(), "cluster": labels})
    seed = df.groupby("cluster")["record_id"].min()
    history = []
    if previous is None or previous.empty:
        ids = seed.map(new_oneid)
        return df["cluster"].map(ids).rename("oneid"), pd.DataFrame(columns=["old_oneid", "new_oneid", "why"])
    prev = df.merge(previous[["record_id", "oneid"]], on="record_id", how="left")
    seen = prev.dropna(subset=["oneid"])
    # how many records of each (cluster, old id)
    share = seen.groupby(["cluster", "oneid"]).size().rename("n").reset_index()
    # for each old id, the cluster holding most of its records keeps it (ties: smaller cluster)
    owner = share.sort_values(["oneid", "n", "cluster"], ascending=[True, False, True]).drop_duplicates("oneid")
    owner = owner.set_index("oneid")["cluster"]
    # for each cluster, the old id it owns with most records (ties: smallest id)
    share["owns"] = share["oneid"].map(owner) == share["cluster"]
    kept = (share[share["owns"]].sort_values(["cluster", "n", "oneid"], ascending=[True, False, True])
            .drop_duplicates("cluster").set_index("cluster")["oneid"])
    ids = seed.map(new_oneid)
    ids.loc[kept.index] = kept
    # guard: a fresh id must not collide with a surviving one
    ids = ids.where(~(ids.duplicated(keep=False) & ~ids.index.isin(kept.index)),
                    seed.map(lambda r: new_oneid(r + "#2")))
    for row in share.itertuples(index=False):
        old, cluster = row.oneid, row.cluster
        new = ids.loc[cluster]
        if old == new:
            continue
        # the old id's main cluster now carries a surviving id: merged; otherwise a part split off
        why = "merge" if owner[old] == cluster else "split"
        history.append({"old_oneid": old, "new_oneid": new, "why": why, "records": int(row.n)})
    hist = pd.DataFrame(history, columns=["old_oneid", "new_oneid", "why", "records"])
    return df["cluster"].map(ids).rename("oneid"), hist

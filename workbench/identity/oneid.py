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


def _positions(previous: pd.Series, current: pd.Series) -> np.ndarray:
    """Position of each current record id among the previous ones (-1: new). A rerun on the
    same records lists them in the same order: one comparison of the two columns then
    replaces the hash lookup of every id."""
    import pyarrow as pa

    if len(previous) == len(current):
        a, b = (pa.chunked_array([x]) if isinstance(x, pa.Array) else x
                for x in (pa.array(previous.array), pa.array(current.array)))
        if a.type == b.type and a.null_count == 0 and a.equals(b):
            return np.arange(len(current))
    return pd.Index(previous).get_indexer(current)


def assign_oneids(record_ids: pd.Series, labels: np.ndarray,
                  previous: pd.DataFrame | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """OneID per record (aligned with ``record_ids``) and the id-history rows of this run.

    ``previous`` is the last registry (columns ``record_id``, ``oneid``) or None.
    """
    df = pd.DataFrame({"record_id": record_ids.reset_index(drop=True), "cluster": labels})
    seed = df.groupby("cluster")["record_id"].min()
    if previous is None or previous.empty:
        ids = seed.map(new_oneid)
        return df["cluster"].map(ids).rename("oneid"), pd.DataFrame(columns=["old_oneid", "new_oneid", "why"])
    # previous id per record, as integer codes (codes sort like the ids: ties go to the smallest id)
    old_codes, old_ids = pd.factorize(previous["oneid"], sort=True)
    pos = _positions(previous["record_id"], df["record_id"])
    old = np.where(pos >= 0, old_codes[np.maximum(pos, 0)], -1)
    seen = old >= 0
    # how many records of each (cluster, old id)
    share = (pd.DataFrame({"cluster": df["cluster"].to_numpy()[seen], "old": old[seen]})
             .groupby(["cluster", "old"]).size().rename("n").reset_index())
    # for each old id, the cluster holding most of its records keeps it (ties: smaller cluster)
    owner = share.sort_values(["old", "n", "cluster"], ascending=[True, False, True]).drop_duplicates("old")
    owner = owner.set_index("old")["cluster"]
    # for each cluster, the old id it owns with most records (ties: smallest id)
    share["owns"] = share["old"].map(owner).to_numpy() == share["cluster"].to_numpy()
    kept = (share[share["owns"]].sort_values(["cluster", "n", "old"], ascending=[True, False, True])
            .drop_duplicates("cluster").set_index("cluster")["old"])
    ids = seed.copy()  # fresh ids for the clusters that keep none (hashing only those)
    fresh = ~ids.index.isin(kept.index)
    ids[fresh] = seed[fresh].map(new_oneid)
    ids.loc[kept.index] = np.asarray(old_ids)[kept.to_numpy()]
    # guard: a fresh id must not collide with a surviving one
    clash = ids.duplicated(keep=False) & fresh
    if clash.any():
        ids[clash] = seed[clash].map(lambda r: new_oneid(r + "#2"))
    old_str = np.asarray(old_ids, dtype=object)[share["old"].to_numpy()]
    new_str = ids.reindex(share["cluster"]).to_numpy(dtype=object)
    moved = old_str != new_str
    # the old id's main cluster now carries a surviving id: merged; otherwise a part split off
    merged = share["old"].map(owner).to_numpy() == share["cluster"].to_numpy()
    hist = pd.DataFrame({"old_oneid": old_str[moved], "new_oneid": new_str[moved],
                         "why": np.where(merged[moved], "merge", "split"),
                         "records": share["n"].to_numpy()[moved].astype(int)})
    return df["cluster"].map(ids).rename("oneid"), hist

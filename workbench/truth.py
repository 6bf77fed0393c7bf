"""Ground truth of the embedded sample, for evaluation only (the pipeline never reads it).

``data/raw/_truth/records.parquet`` says which person made each raw record;
``persons.parquet`` holds each person's hidden behaviour type. Real data has no truth:
these functions then return None and notebooks skip their quality checks.

Example:
    >>> from workbench.truth import oneid_truth
    >>> t = oneid_truth()                  # doctest: +SKIP
    >>> t["type"].value_counts()           # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd

from .config import Paths, get_paths


def record_key(record_ids: pd.Series) -> pd.Series:
    """The ``<file>:<row>`` part of record ids ``<channel>:<file>:<row>``: which physical row of
    which raw file a record is, whatever mapping read it (truth is kept per raw row).

    >>> record_key(pd.Series(["till_returns:till/till.csv:17"])).tolist()
    ['till/till.csv:17']
    """
    return record_ids.astype("string").str.split(":", n=1).str[1]


def truth_records(paths: Paths | None = None) -> pd.DataFrame | None:
    """``record_key`` (``<file>:<row>``, see :func:`record_key`) ``→ person_id`` of the sample
    (None when the data has no ground truth)."""
    paths = paths or get_paths()
    f = paths.truth / "records.parquet"
    if not f.exists():
        return None
    t = pd.read_parquet(f, columns=["source_file", "source_row", "person_id"])
    t["record_key"] = t["source_file"].astype(str) + ":" + t["source_row"].astype(str)
    return t[["record_key", "person_id"]]


def oneid_truth(paths: Paths | None = None, registry: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Per OneID: the person who made most of its records, that share (``purity``) and the
    person's hidden behaviour ``type`` (None without ground truth)."""
    from .canonical import load_registry

    paths = paths or get_paths()
    t = truth_records(paths)
    if t is None:
        return None
    registry = load_registry(paths) if registry is None else registry
    r = registry[["record_id", "oneid"]].assign(record_key=lambda d: record_key(d["record_id"]))
    r = r.merge(t, on="record_key", how="left")
    counts = r.groupby(["oneid", "person_id"]).size().rename("n").reset_index()
    counts = counts.sort_values(["oneid", "n", "person_id"], ascending=[True, False, True])
    top = counts.drop_duplicates("oneid").set_index("oneid")
    top["purity"] = top["n"] / counts.groupby("oneid")["n"].sum()
    pf = paths.truth / "persons.parquet"
    out = top.drop(columns="n")
    if pf.exists() and "type" in pd.read_parquet(pf).columns:   # hidden behaviour types, when the data has them
        persons = pd.read_parquet(pf, columns=["person_id", "type"]).astype({"person_id": out["person_id"].dtype})
        return out.join(persons.set_index("person_id"), on="person_id")
    return out.assign(type=pd.NA)


def sample_info(paths: Paths | None = None) -> dict:
    """What the data's generator recorded in ``raw/_truth/sample.json`` (``generator``, ``persons``,
    seed, window ...); empty for real data. Notebooks hold the embedded sample of 20,000 persons
    or more to its quality floors and smaller or foreign data to looser ones.

    >>> import tempfile
    >>> sample_info(get_paths(tempfile.mkdtemp(), tempfile.mkdtemp()))
    {}
    """
    import json

    f = (paths or get_paths()).truth / "sample.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else {}


def campaign_truth(paths: Paths | None = None) -> dict | None:
    """The true effects of the sample's past campaigns (``raw/_truth/campaigns.json``: per
    campaign the true conversion, orders and revenue lift per person, overall and per behaviour
    type), or None when the data has none."""
    import json

    f = (paths or get_paths()).truth / "campaigns.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else None

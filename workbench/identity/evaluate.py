"""Quality of a resolution against ground truth: pairwise and cluster-level, per channel.

Pairwise numbers come from the contingency table of (predicted cluster, true person), so no
pair is ever enumerated: true positives = Σ C(n_ij, 2), predicted pairs = Σ C(n_i, 2),
true pairs = Σ C(n_j, 2).

Example:
    >>> pairwise_quality(pd.Series(["a", "a", "b"]), pd.Series([1, 1, 1]))["precision"]
    1.0
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs(n: np.ndarray) -> float:
    n = n.astype(np.float64)
    return float((n * (n - 1) / 2).sum())


def _pair_codes(p: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """One integer per (p, t) pair of non-negative codes (None if it would overflow)."""
    k = int(t.max()) + 1 if len(t) else 1
    if len(p) and (int(p.max()) + 1) * k >= 2**62:
        return None
    return p.astype(np.int64) * k + t


def _joint_counts(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Records per (p, t) cell of the contingency table, for the cells that occur."""
    key = _pair_codes(p, t)
    if key is None:
        return pd.Series(1, index=pd.MultiIndex.from_arrays([p, t])).groupby(level=[0, 1]).size().to_numpy()
    return np.bincount(pd.factorize(key)[0])


def pairwise_quality(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision, recall and F1 of ``predicted`` cluster labels against ``truth``."""
    return _pairwise_codes(pd.factorize(predicted)[0], pd.factorize(truth)[0])


def _pairwise_codes(p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """:func:`pairwise_quality` of factorized labels (counts are integers: exact in any order)."""
    tp = _pairs(_joint_counts(p, t))
    pred_pairs = _pairs(np.bincount(p))
    true_pairs = _pairs(np.bincount(t))
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": true_pairs,
            "predicted_pairs": pred_pairs, "true_positive_pairs": tp}


def cluster_quality(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Over-merge: share of clusters holding records of 2+ persons. Under-merge: share of
    persons whose records are spread over 2+ clusters. Plus cluster precision (share of
    clusters that are pure)."""
    p, t = pd.factorize(predicted)[0], pd.factorize(truth)[0]
    if not len(p) or (p < 0).any() or (t < 0).any():  # none, or missing labels: pandas' rules for NA groups
        df = pd.DataFrame({"p": predicted.to_numpy(), "t": truth.to_numpy()})
        persons_per_cluster = df.groupby("p")["t"].nunique()
        clusters_per_person = df.groupby("t")["p"].nunique()
    else:
        persons_per_cluster, clusters_per_person = _cluster_counts(p, t)
    return _cluster_rates(persons_per_cluster, clusters_per_person)


def _cluster_counts(p: np.ndarray, t: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Distinct persons per cluster and clusters per person, from factorized labels."""
    key = _pair_codes(p, t)
    if key is None:
        cells = pd.DataFrame({"p": p, "t": t}).drop_duplicates()
        cp, ct = cells["p"].to_numpy(), cells["t"].to_numpy()
    else:
        k = int(t.max()) + 1
        cells = pd.unique(key)
        cp, ct = cells // k, cells % k
    return (pd.Series(np.bincount(cp, minlength=int(p.max()) + 1)),
            pd.Series(np.bincount(ct, minlength=int(t.max()) + 1)))


def _cluster_rates(persons_per_cluster: pd.Series, clusters_per_person: pd.Series) -> dict[str, float]:
    return {"clusters": int(len(persons_per_cluster)), "persons": int(len(clusters_per_person)),
            "over_merge_rate": float((persons_per_cluster > 1).mean()),
            "under_merge_rate": float((clusters_per_person > 1).mean()),
            "cluster_precision": float((persons_per_cluster == 1).mean())}


def channel_match_rates(records: pd.DataFrame) -> pd.DataFrame:
    """Per channel: share of records whose OneID is a *known* person (carries a unique or strong
    identifier) and share whose OneID also has records from another channel."""
    codes = pd.factorize(records["oneid"])[0]
    if not len(codes) or (codes < 0).any():  # none, or a record without a OneID: pandas' rules for NA keys
        known = records.groupby("oneid")["anchored"].max()
        n_channels = records.groupby("oneid")["channel"].nunique()
        r = records.assign(known=records["oneid"].map(known), cross=records["oneid"].map(n_channels) > 1)
    else:  # the same two columns by integer codes (no string lookups)
        known, cross = _known_and_cross(codes, records["anchored"].to_numpy(bool), records["channel"])
        r = records.assign(known=known, cross=cross)
    return r.groupby("channel").agg(records=("oneid", "size"), known_person=("known", "mean"),
                                    linked_across_channels=("cross", "mean"))


def _known_and_cross(codes: np.ndarray, anchored: np.ndarray, channel: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per record: its OneID holds an anchored record; its OneID spans 2+ channels."""
    n = int(codes.max()) + 1
    known = np.bincount(codes, weights=anchored, minlength=n) > 0
    ch = pd.factorize(channel)[0]
    cells = pd.unique(codes.astype(np.int64) * (int(ch.max()) + 2) + (ch + 1))  # NA channel: a value of its own
    k = int(ch.max()) + 2
    valid = cells % k > 0  # nunique leaves NA out
    n_channels = np.bincount(cells[valid] // k, minlength=n)
    return known[codes], n_channels[codes] > 1


def size_distribution(oneids: pd.Series) -> pd.Series:
    """How many OneIDs have 1, 2–5, 6–20, 21–100, 101–1000 and more records."""
    codes = pd.factorize(oneids)[0]
    sizes = pd.Series(np.bincount(codes[codes >= 0])) if len(codes) else oneids.value_counts()
    bins = [0, 1, 5, 20, 100, 1000, np.inf]
    labels = ["1", "2–5", "6–20", "21–100", "101–1000", ">1000"]
    return pd.cut(sizes, bins=bins, labels=labels).value_counts().reindex(labels)


def identifier_recall_ceiling(observations: pd.DataFrame, n_records: int, truth: pd.Series) -> float:
    """The best pairwise recall any identifier-based linking could reach on this data.

    Links are allowed only between records of the *same* true person that share an
    identifier value, so no guard, threshold or placeholder costs anything. The gap
    between this ceiling and the achieved recall is the algorithm's; the gap above it is
    the data's (records that share no identifier with the rest of their person).
    """
    from .deterministic import components

    person = truth.to_numpy()
    codes = _scoped_codes(observations, pd.factorize(truth)[0])
    if codes is None:
        scoped = observations["identifier"].astype(str) + "\x1f" + observations["value"].astype(str) + "\x1f" + \
            pd.Series(person[observations["rec"].to_numpy()], index=observations.index).astype(str)
        codes = pd.factorize(scoped)[0]
    labels = components(n_records, observations["rec"].to_numpy(), codes, int(codes.max()) + 1 if len(codes) else 0)
    return pairwise_quality(pd.Series(labels), truth.reset_index(drop=True))["recall"]


def _scoped_codes(observations: pd.DataFrame, person: np.ndarray) -> np.ndarray | None:
    """A code per distinct (identifier, value, true person) of the observations, by integer
    arithmetic (None when a part is missing or the codes would overflow). Observations with a
    ``vcode`` column (the deterministic stage's code of each (identifier, value)) skip hashing
    the values again."""
    who = person[observations["rec"].to_numpy()].astype(np.int64)
    if not len(who):
        return np.zeros(0, np.int64)
    if "vcode" in observations and not (who < 0).any():  # one code per (identifier, value) already
        vcode = observations["vcode"].to_numpy().astype(np.int64)
        kw = int(who.max()) + 1
        if vcode.min() >= 0 and (int(vcode.max()) + 1) * kw < 2**62:
            return pd.factorize(vcode * kw + who)[0]
    ident = pd.factorize(observations["identifier"])[0].astype(np.int64)
    value = pd.factorize(observations["value"])[0].astype(np.int64)
    if (ident < 0).any() or (value < 0).any() or (who < 0).any():
        return None
    ki, kv, kw = int(ident.max()) + 1, int(value.max()) + 1, int(who.max()) + 1
    if ki * kv * kw >= 2**62:
        return None
    return pd.factorize((value * ki + ident) * kw + who)[0]


def link_calibration(scored_pairs: pd.DataFrame, record_person: pd.Series,
                     bins: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)) -> pd.DataFrame:
    """How often a scored pair is truly one person, per band of Splink's P(match).

    ``scored_pairs`` has ``rec_a``, ``rec_b`` (record positions) and ``match_probability``;
    ``record_person`` is the true person per record position. A calibrated model has
    ``share_true`` close to ``mean_probability`` in each band; the threshold is only as good
    as the bands just above it.

    >>> sp = pd.DataFrame({"rec_a": [0, 0], "rec_b": [1, 2], "match_probability": [0.97, 0.2]})
    >>> link_calibration(sp, pd.Series([7, 7, 8]), bins=(0, 0.5, 1))["share_true"].tolist()
    [0.0, 1.0]
    """
    person = record_person.to_numpy()
    same = person[scored_pairs["rec_a"].to_numpy()] == person[scored_pairs["rec_b"].to_numpy()]
    p = scored_pairs["match_probability"].to_numpy()
    band = pd.cut(p, list(bins), right=False, include_lowest=True)
    df = pd.DataFrame({"band": band, "true": same, "p": p})
    df.loc[p >= bins[-1], "band"] = df["band"].cat.categories[-1]
    out = df.groupby("band", observed=False).agg(pairs=("true", "size"), share_true=("true", "mean"),
                                                mean_probability=("p", "mean"))
    out.index = out.index.astype(str)
    return out


def quality_report(records: pd.DataFrame, person: pd.Series, observations: pd.DataFrame | None = None,
                   scored_pairs: pd.DataFrame | None = None) -> dict:
    """Every quality measure of a resolution against the true ``person`` of each record:
    pairwise, the identifier recall ceiling (with the ``observations``), clusters, match rate
    per channel, size distribution and the calibration of the ``scored_pairs``. ``records``
    has ``oneid``, ``channel`` and ``anchored``; the labels are hashed once for all measures."""
    p, t = pd.factorize(records["oneid"])[0], pd.factorize(person)[0]
    q = {"pairwise": _pairwise_codes(p, t),
         "identifier_recall_ceiling": (identifier_recall_ceiling(observations, len(records), person)
                                       if observations is not None else None),
         "clusters": (_cluster_rates(*_cluster_counts(p, t)) if len(p) and (p >= 0).all() and (t >= 0).all()
                      else cluster_quality(records["oneid"], person)),
         "match_rate": channel_match_rates(records).round(4).to_dict(orient="index"),
         "size_distribution": size_distribution(records["oneid"]).to_dict()}
    if scored_pairs is not None and len(scored_pairs) and "rec_a" in scored_pairs:
        q["link_calibration"] = link_calibration(scored_pairs, person).round(4).to_dict(orient="index")
    return q


def truth_positions(record_ids: pd.Series, source_file: pd.Series, source_row: pd.Series) -> np.ndarray | None:
    """The row of the truth table (``source_file``, ``source_row``) of each record, -1 for none.

    A record id ``<channel>:<file>:<row>`` belongs to the truth row whose ``<file>:<row>``
    (see :func:`workbench.truth.record_key`) is the text after its first colon. Matched here
    on integer keys — the file's code and the row number — instead of the text, which is
    exact: that text is ``<file>:<row>`` only when its last part is the row number written
    the way Python writes it. Returns None when the integer keys cannot decide it exactly
    (a missing file, truth rows that repeat, numbers too large): the caller then joins on the text.

    >>> truth_positions(pd.Series(["a:f.csv:2", "a:f.csv:02", "b:g:h.csv:1", "x", None]),
    ...                 pd.Series(["g:h.csv", "f.csv"]), pd.Series([1, 2])).tolist()
    [1, -1, 0, -1, -1]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pd.api.types.is_integer_dtype(source_row.dtype) or source_file.isna().any():
        return None
    t_row = source_row.to_numpy().astype(np.int64)
    if len(t_row) and int(np.abs(t_row).max()) >= 10**18:
        return None
    if isinstance(source_file.dtype, pd.CategoricalDtype):
        t_codes, t_files = source_file.cat.codes.to_numpy(), pd.Index(source_file.cat.categories.astype(str))
    else:
        t_codes, t_files = pd.factorize(source_file.astype(str))
        t_files = pd.Index(t_files)
    if not t_files.is_unique:
        return None
    ids = pa.array(pd.Series(record_ids, dtype="str").array)  # Arrow-backed text: no copy, maybe chunked
    ids = ids if isinstance(ids, pa.ChunkedArray) else pa.chunked_array([ids])

    def split_at_colon(text, reverse=False):  # (has a colon, before, after) at the first or last colon
        has = pc.fill_null(pc.greater_equal(pc.find_substring(text, ":"), 0), False)
        parts = pc.split_pattern(pc.if_else(has, text, ":"), ":", max_splits=1, reverse=reverse)
        return has, pc.list_element(parts, 0), pc.list_element(parts, 1)

    has_key, _, key = split_at_colon(ids)
    has_file, file, row_text = split_at_colon(key, reverse=True)
    # only a row written the way Python writes an integer can equal str(source_row)
    canonical = pc.and_(pc.and_(has_key, has_file),
                        pc.match_substring_regex(row_text, r"^(0|-?[1-9][0-9]{0,17})$"))
    row = pc.cast(pc.if_else(canonical, row_text, "0"), pa.int64()).to_numpy()
    f_codes, f_uniq = pd.factorize(pd.Series(pd.array(file, dtype="str")))
    file_code = t_files.get_indexer(pd.Index(f_uniq))[f_codes] if len(f_uniq) else np.zeros(0, np.intp)
    found = canonical.to_numpy(zero_copy_only=False) & (file_code >= 0)
    if not len(t_row):
        return np.full(len(found), -1, np.intp)
    lo, hi = min(int(t_row.min()), int(row.min(initial=0))), max(int(t_row.max()), int(row.max(initial=0)))
    span = hi - lo + 1
    if len(t_files) * span >= 2**62:
        return None
    t_key = t_codes.astype(np.int64) * span + (t_row - lo)
    r_key = file_code.astype(np.int64) * span + (row - lo)
    order = np.argsort(t_key, kind="stable")
    sorted_keys = t_key[order]
    if (sorted_keys[1:] == sorted_keys[:-1]).any():
        return None  # repeated truth rows: the text join's duplicates
    i = np.minimum(np.searchsorted(sorted_keys, r_key), len(sorted_keys) - 1)
    found &= sorted_keys[i] == r_key
    return np.where(found, order[i], -1)

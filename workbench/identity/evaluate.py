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


def pairwise_quality(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision, recall and F1 of ``predicted`` cluster labels against ``truth``."""
    p = pd.factorize(predicted)[0]
    t = pd.factorize(truth)[0]
    joint = pd.Series(1, index=pd.MultiIndex.from_arrays([p, t])).groupby(level=[0, 1]).size().to_numpy()
    tp = _pairs(joint)
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
    df = pd.DataFrame({"p": predicted.to_numpy(), "t": truth.to_numpy()})
    persons_per_cluster = df.groupby("p")["t"].nunique()
    clusters_per_person = df.groupby("t")["p"].nunique()
    return {"clusters": int(len(persons_per_cluster)), "persons": int(len(clusters_per_person)),
            "over_merge_rate": float((persons_per_cluster > 1).mean()),
            "under_merge_rate": float((clusters_per_person > 1).mean()),
            "cluster_precision": float((persons_per_cluster == 1).mean())}


def channel_match_rates(records: pd.DataFrame) -> pd.DataFrame:
    """Per channel: share of records whose OneID is a *known* person (carries a unique or strong
    identifier) and share whose OneID also has records from another channel."""
    known = records.groupby("oneid")["anchored"].max()
    n_channels = records.groupby("oneid")["channel"].nunique()
    r = records.assign(known=records["oneid"].map(known), cross=records["oneid"].map(n_channels) > 1)
    return r.groupby("channel").agg(records=("oneid", "size"), known_person=("known", "mean"),
                                    linked_across_channels=("cross", "mean"))


def size_distribution(oneids: pd.Series) -> pd.Series:
    """How many OneIDs have 1, 2–5, 6–20, 21–100, 101–1000 and more records."""
    sizes = oneids.value_counts()
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
    scoped = observations["identifier"].astype(str) + "\x1f" + observations["value"].astype(str) + "\x1f" + \
        pd.Series(person[observations["rec"].to_numpy()], index=observations.index).astype(str)
    codes = pd.factorize(scoped)[0]
    labels = components(n_records, observations["rec"].to_numpy(), codes, int(codes.max()) + 1 if len(codes) else 0)
    return pairwise_quality(pd.Series(labels), truth.reset_index(drop=True))["recall"]


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

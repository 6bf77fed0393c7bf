"""Audiences as expressions, and campaign exports with a random, reproducible control group.

An audience is a boolean expression over tags, segments and scores (:mod:`workbench.expressions`):
``"frequent_rebuyer and not churn_high"``. :func:`audience_members` evaluates it on
:func:`audience_frame` (the tag inputs joined with this run's tags).

:func:`export_campaign` exports an audience for a campaign. Consent and contacts are checked
first (:func:`workbench.audiences.audience_rows`); the eligible people are then split into
treatment and control, per stratum (a segment column), with a seeded generator; only the
treatment group is written to the channel file. The record — a contract read by the campaign
results notebook — goes to ``data/processed/campaigns/<campaign_id>/``:

- ``assignment.parquet``: ``oneid``, ``group`` ("treatment" | "control"), ``stratum``,
  ``exported_at`` (UTC);
- ``campaign.json``: ``campaign_id``, ``name``, ``audience``, ``audience_sha256``, ``holdout``,
  ``seed``, ``stratify``, ``exported_at``, ``channel``, ``response_window_days``, ``counts``.

Example:
    >>> import pandas as pd
    >>> a = assign_holdout(pd.Index([f"p{i}" for i in range(100)]), pd.Series(["A", "B"] * 50,
    ...                    index=[f"p{i}" for i in range(100)]), holdout=0.2, seed=1)
    >>> a.groupby("stratum")["group"].apply(lambda g: int((g == "control").sum())).tolist()
    [10, 10]
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .audiences import audience_folder, audience_rows
from .config import Paths, get_paths
from .expressions import Expression, parse
from .expressions import evaluate as evaluate_expression

GROUPS = ("treatment", "control")
ASSIGNMENT_COLUMNS = ("oneid", "group", "stratum", "exported_at")
CAMPAIGN_FIELDS = ("campaign_id", "name", "audience", "audience_sha256", "holdout", "seed", "stratify",
                   "exported_at", "channel", "response_window_days", "counts")
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
#: Label of the stratum of people the stratify column has no value for.
NO_STRATUM = "(none)"


def campaigns_folder(paths: Paths | None = None) -> Path:
    """``data/processed/campaigns/``: one folder per exported campaign."""
    return (paths or get_paths()).processed / "campaigns"


def audience_frame(paths: Paths | None = None) -> pd.DataFrame:
    """What audience expressions read: :func:`workbench.tags.tag_inputs` (public profile,
    segments, scores, activity facts) joined with the tags written by this run (when written) and
    the uplift scores for the next campaign (``uplift``, ``uplift_decile``;
    when the uplift stage fitted a model: :func:`workbench.uplift.run_uplift`)."""
    from .tags import load_tag_table, tag_inputs, tags_path
    from .uplift import load_uplift_scores

    paths = paths or get_paths()
    frame = tag_inputs(paths)
    if tags_path(paths).exists():
        tags = load_tag_table(paths)
        frame.attrs["tags_left_out"] = json.loads(tags.attrs.get("notes") or "{}")
        tags = tags.drop(columns="tags")
        frame = frame.join(tags[[c for c in tags.columns if c not in frame.columns]], how="left")
        frame[list(tags.columns)] = frame[list(tags.columns)].fillna(False).astype(bool)
    uplift = load_uplift_scores(paths)
    if len(uplift):     # people first seen after the scoring date have no score: NaN, never in "uplift_decile >= 9"
        frame = frame.join(uplift[[c for c in uplift.columns if c not in frame.columns]], how="left")
    return frame


def parse_audience(expression: str, frame: pd.DataFrame) -> Expression:
    """Check ``expression`` against the names ``frame`` holds (tags, segments, scores, profile).

    >>> parse_audience("vip and not churn_hgh", pd.DataFrame(columns=["vip", "churn_high"]))
    Traceback (most recent call last):
    ...
    KeyError: "Unknown name 'churn_hgh' in the expression 'vip and not churn_hgh'. Did you mean 'churn_high'?"
    """
    left_out = frame.attrs.get("tags_left_out") or {}
    try:
        return parse(expression, names=frame.columns)
    except KeyError as e:
        name = re.search(r"Unknown name '([^']+)'", e.args[0])
        if name and name.group(1) in left_out:
            raise KeyError(f"The audience {expression!r} uses the tag {name.group(1)!r}: {left_out[name.group(1)]}") \
                from None
        raise


def audience_members(expression: str, frame: pd.DataFrame) -> pd.Index:
    """OneIDs (``frame``'s index) for which ``expression`` holds, sorted.

    >>> f = pd.DataFrame({"vip": [True, False, True]}, index=["c", "b", "a"])
    >>> list(audience_members("vip", f))
    ['a', 'c']
    """
    hit = evaluate_expression(parse_audience(expression, frame), frame)
    return pd.Index(frame.index[hit.to_numpy(bool)]).sort_values()


def declared_audiences(definitions: Iterable[Any], frame: pd.DataFrame, *,
                       left_out: Iterable[str] = ()) -> tuple[dict[str, pd.Index], dict[str, str]]:
    """Members of audiences declared in the tags file (objects with ``name`` and ``expression``),
    and a note for each one that names a tag this data left out (``left_out``: tag ids, e.g. a
    live-stream tag on a brand without live-stream events) — skipped, not a crash. Any other
    unknown name is an error.

    >>> from types import SimpleNamespace as A
    >>> f = pd.DataFrame({"vip": [True, False]}, index=["a", "b"])
    >>> members, notes = declared_audiences([A(name="v", expression="vip"), A(name="fans", expression="vip and live_fan")],
    ...                                     f, left_out=["live_fan"])
    >>> {k: list(v) for k, v in members.items()}, notes["fans"]
    ({'v': ['a']}, "The audience 'fans' uses the tag(s) ['live_fan'], which this data does not have.")
    """
    left_out = set(left_out)
    members: dict[str, pd.Index] = {}
    notes: dict[str, str] = {}
    for a in definitions:
        expr = parse(a.expression, names=set(frame.columns) | left_out)
        missing = sorted(expr.names & left_out - set(frame.columns))
        if missing:
            notes[a.name] = f"The audience {a.name!r} uses the tag(s) {missing}, which this data does not have."
            continue
        members[a.name] = audience_members(a.expression, frame)
    return members, notes


def audience_sha256(expression: str) -> str:
    """SHA-256 of the expression with whitespace collapsed (the same audience, the same hash).

    >>> audience_sha256("a  and b") == audience_sha256(" a and b")
    True
    """
    return hashlib.sha256(" ".join(expression.split()).encode("utf-8")).hexdigest()


def _check_holdout(holdout: Any) -> float:
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 0.5:
        raise ValueError(f"The 'holdout' parameter must be in [0, 0.5). Got {holdout!r} instead.")
    return float(holdout)


def _stratum_seed(seed: int, stratum: str) -> list[int]:
    return [int(seed), int.from_bytes(hashlib.sha256(stratum.encode("utf-8")).digest()[:8], "little")]


def assign_holdout(members: Iterable[str], strata: pd.Series | None = None, *, holdout: float,
                   seed: int) -> pd.DataFrame:
    """Split ``members`` (OneIDs) into treatment and control: in each stratum (``strata``: OneID ->
    value; missing = ``(none)``), round(holdout × size) people chosen at random become control.
    Reproducible: the same members, strata, holdout and seed give the same groups, whatever
    their order (members are sorted; each stratum has its own generator seeded by ``seed`` and
    the stratum's name). Columns ``oneid``, ``group``, ``stratum``.

    >>> assign_holdout(["a"], holdout=0.7, seed=1)
    Traceback (most recent call last):
    ...
    ValueError: The 'holdout' parameter must be in [0, 0.5). Got 0.7 instead.
    """
    holdout = _check_holdout(holdout)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"The 'seed' parameter must be a whole number >= 0. Got {seed!r} instead.")
    ids = pd.Index(pd.unique(pd.Series(list(members), dtype="string"))).sort_values()
    if strata is None:
        stratum = pd.Series("all", index=ids, dtype="string")
    else:
        stratum = pd.Series(strata).astype("string").reindex(ids).fillna(NO_STRATUM)
    group = np.full(len(ids), GROUPS[0], dtype=object)
    values = stratum.to_numpy(dtype=object)
    for s in sorted(set(values)):
        where = np.flatnonzero(values == s)
        n_control = int(np.floor(holdout * len(where) + 0.5))
        if n_control:
            pick = np.random.default_rng(_stratum_seed(seed, s)).permutation(len(where))[:n_control]
            group[where[pick]] = GROUPS[1]
    return pd.DataFrame({"oneid": pd.array(ids, dtype="string"), "group": group.astype(str),
                         "stratum": pd.array(values, dtype="string")})


def export_campaign(expression: str, *, campaign_id: str, profile: pd.DataFrame, frame: pd.DataFrame,
                    name: str | None = None, holdout: float = 0.1, seed: int = 0, stratify: str | None = "segment",
                    channel: str = "ads", response_window_days: int = 30, consent_col: str = "consent_ads",
                    paths: Paths | None = None, folder: Path | None = None, exported_at: Any = None,
                    platform: str = "google") -> dict[str, Any]:
    """Export the audience ``expression`` for campaign ``campaign_id`` with a control group.

    ``profile`` is the raw customer 360 (contacts to hash; :func:`workbench.customer360.load_customer_360`),
    ``frame`` what the expression reads (:func:`audience_frame`). People without consent or contact
    are left out first (counted by reason); the rest are split by :func:`assign_holdout`, stratified
    by ``frame[stratify]``. Writes the treatment group's hashed contacts to
    ``<folder>/<campaign_id>.csv`` (default folder: the run's ``audiences/``) and the record to
    ``data/processed/campaigns/<campaign_id>/``; refuses to overwrite an existing campaign.
    Returns the contents of ``campaign.json``.

    >>> export_campaign("vip", campaign_id="c1", profile=p, frame=f, holdout=0.1)   # doctest: +SKIP
    """
    paths = paths or get_paths()
    if not isinstance(campaign_id, str) or not _CAMPAIGN_ID.match(campaign_id):
        raise ValueError("The 'campaign_id' parameter must be letters, digits, '_', '-' or '.', starting with a letter "
                         f"or digit. Got {campaign_id!r} instead.")
    holdout = _check_holdout(holdout)
    if isinstance(response_window_days, bool) or not isinstance(response_window_days, int) \
            or response_window_days < 1:
        raise ValueError(f"The 'response_window_days' parameter must be a whole number >= 1. "
                         f"Got {response_window_days!r} instead.")
    if stratify is not None and stratify not in frame.columns:
        raise KeyError(f"The 'stratify' column {stratify!r} is not in the audience frame. "
                       f"Segment columns there: {[c for c in ('segment', 'cluster_name', 'group') if c in frame]}.")
    record_dir = campaigns_folder(paths) / campaign_id
    if record_dir.exists():
        raise FileExistsError(f"Campaign {campaign_id!r} was exported before ({record_dir}); its control group is a "
                              "record of what was sent. Choose another campaign id.")
    members = audience_members(expression, frame)
    rows, counts = audience_rows(profile, members, consent_col=consent_col, platform=platform)
    eligible = pd.Index(rows["oneid"].astype("string"))
    assignment = assign_holdout(eligible, frame[stratify] if stratify else None, holdout=holdout, seed=seed)
    at = pd.Timestamp.now(tz="UTC") if exported_at is None else pd.Timestamp(exported_at)
    at = (at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")).floor("s")
    assignment["exported_at"] = pd.Series(at, index=assignment.index, dtype="datetime64[us, UTC]")
    treated = set(assignment.loc[assignment["group"] == "treatment", "oneid"])
    sent = rows[rows["oneid"].isin(treated)].reset_index(drop=True)
    folder = Path(folder) if folder is not None else audience_folder(paths)
    folder.mkdir(parents=True, exist_ok=True)
    out_file = folder / f"{campaign_id}.csv"   # the id is file-name safe (checked above)
    counts = {**counts, "exported": int(len(sent)), "eligible": int(len(assignment)), "treatment": int(len(sent)),
              "control": int((assignment["group"] == "control").sum())}
    record = {"campaign_id": campaign_id, "name": name or campaign_id, "audience": expression,
              "audience_sha256": audience_sha256(expression), "holdout": holdout, "seed": int(seed),
              "stratify": stratify, "exported_at": at.isoformat().replace("+00:00", "Z"), "channel": channel,
              "response_window_days": response_window_days, "counts": counts}
    record_dir.mkdir(parents=True)
    assignment[list(ASSIGNMENT_COLUMNS)].to_parquet(record_dir / "assignment.parquet", index=False)
    (record_dir / "campaign.json").write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    sent.to_csv(out_file, index=False, encoding="utf-8")
    return {**record, "file": str(out_file)}


def load_campaign(campaign_id: str, paths: Paths | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """``campaign.json`` and ``assignment.parquet`` of an exported campaign."""
    d = campaigns_folder(paths) / campaign_id
    if not d.exists():
        raise FileNotFoundError(f"No campaign {campaign_id!r} in {d.parent}.")
    return json.loads((d / "campaign.json").read_text(encoding="utf-8")), pd.read_parquet(d / "assignment.parquet")

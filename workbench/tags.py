"""Tags: named yes/no marks on every person, declared in ``workbench/conf/tags.yaml``.

A **rule tag** is a boolean expression (:mod:`workbench.expressions`) over the columns of the
customer 360 profile (public view), the segment tables, the model scores and a few activity
facts computed here from the canonical layer (:func:`activity_features`: ``orders_365d``,
``net_revenue_365d``, ``peak_day_orders``, ``peak_day_order_share``). A **model tag** reads a
model's output (churn-risk band, propensity decile) or, with ``each: <column>``, becomes one
tag per value of a segmentation (``cluster_<name>``).

The file is checked when it is loaded: an unknown field names the tag and the field; a rule
naming a column that no brand's profile, segments or scores can have names the tag and the
column; a threshold outside a column's range (a decile of 11, a share of 1.5) is refused. A
column the vocabulary knows but this brand's data lacks (no live-stream events) leaves the tag
out, with a note saying why — never a crash.

:func:`run_tags` (stage ``tags``, notebook ``10_segment_report``) writes
``data/processed/tags.parquet`` (``oneid``, one boolean column per tag, ``tags``: the list of a
person's tags) and a snapshot per data date in ``data/processed/tags/``; :func:`tag_changes`
compares with the newest snapshot of an earlier date (gained / lost per tag).

Example:
    >>> import pandas as pd
    >>> defs = parse_tags({"tags": [{"id": "big", "kind": "rule", "name_zh": "大", "name_en": "Big",
    ...                              "description": "Three or more orders", "rule": "orders >= 3"}]})
    >>> frame = pd.DataFrame({"orders": [5, 1]}, index=pd.Index(["a", "b"], name="oneid"))
    >>> result = compute_tags(frame, defs)
    >>> result.table["big"].tolist(), result.table["tags"].tolist()
    ([True, False], [['big'], []])
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from .config import Paths, get_paths
from .expressions import Expression, ExpressionError, evaluate, parse
from .roles import EVENT_TYPES, event_slug

#: The package's tag definitions.
DEFAULT_TAGS_FILE = Path(__file__).parent / "conf" / "tags.yaml"
KINDS = ("rule", "model")
TAG_FIELDS = ("id", "kind", "name_zh", "name_en", "description", "rule", "each")
FILE_FIELDS = ("version", "tags", "audiences")
AUDIENCE_FIELDS = ("name", "expression", "description")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")

#: Activity facts :func:`activity_features` adds to the tag inputs (column -> meaning).
ACTIVITY_COLUMNS = {
    "orders_365d": "Paid orders in the 365 days before the end of the data",
    "net_revenue_365d": "Net revenue of the orders placed in the 365 days before the end of the data",
    "peak_day_orders": "Paid orders placed on the brand's peak days (analysis settings), all time",
    "peak_day_order_share": "Share of the paid orders placed on the brand's peak days (empty without orders)",
}
#: Profile columns any brand's customer 360 may have besides per-event, per-sales-channel and consent columns.
PROFILE_COLUMNS = (
    "oneid", "n_records", "first_seen", "last_seen", "channels", "n_channels", "n_identifiers", "is_known",
    "is_member", "member_level", "member_since", "gender", "age", "city", "name_masked", "phone_masked",
    "email_masked", "orders", "cancelled_orders", "refunded_orders", "gross_revenue", "refunds", "net_revenue",
    "avg_order_value", "first_order_at", "last_order_at", "days_since_last_order", "favourite_category",
    "top_categories", "main_sales_channel", "sessions", "email_open_rate", "email_click_rate", "wechat_following",
    "problem_tickets", "service_rating", "last_touch_at")
#: Columns of the segment tables and model scores (workbench.explore.load_segmentation).
SEGMENT_COLUMNS = (
    "segment", "rfm_cell", "r_score", "f_score", "m_score", "recency_days", "frequency", "monetary",
    "cluster", "cluster_name", "engagement", "value", "high_engagement", "high_value", "group",
    "clv_12m", "expected_purchases_12m", "p_alive", "avg_order_value_expected",
    "churn_risk", "churn_risk_decile", "purchase_propensity", "purchase_propensity_decile")
_PATTERNS = (re.compile(r"^consent_[a-z0-9_]+$"), re.compile(r"^revenue_[a-z0-9_]+$"))
#: Ranges a threshold must fall in, by column name pattern: (pattern, low, high).
RANGES = ((re.compile(r"_decile$"), 1, 10), (re.compile(r"(_share|_rate)$"), 0, 1),
          (re.compile(r"^(churn_risk|purchase_propensity|p_alive)$"), 0, 1), (re.compile(r"^[rfm]_score$"), 1, 5),
          (re.compile(r"^(orders|orders_365d|peak_day_orders|cancelled_orders|refunded_orders|n_channels|n_records"
                      r"|sessions|problem_tickets)$"), 0, float("inf")))


def possible_column(name: str) -> bool:
    """Whether some brand's tag inputs can hold ``name``: a profile column (fixed, per canonical
    event type, per sales channel, per consent purpose), a segment or score column, or an
    activity fact.

    >>> possible_column("live_stream_watched_minutes"), possible_column("live_stream_wached_minutes")
    (True, False)
    """
    if name in PROFILE_COLUMNS or name in SEGMENT_COLUMNS or name in ACTIVITY_COLUMNS:
        return True
    if any(p.match(name) for p in _PATTERNS):
        return True
    for t in EVENT_TYPES:
        s = event_slug(t)
        if name in (s, f"{s}_minutes", f"{s}_value", f"last_{s}_at"):
            return True
    return False


@dataclass(frozen=True)
class TagDefinition:
    """One declared tag: ``rule`` (an expression) or ``each`` (one tag per value of a column)."""

    id: str
    kind: str
    name_zh: str
    name_en: str
    description: str
    rule: Expression | None = None
    each: str | None = None


@dataclass(frozen=True)
class AudienceDefinition:
    """An audience declared in the tags file: a name and an expression over tags, segments, scores."""

    name: str
    expression: str
    description: str = ""


@dataclass(frozen=True)
class TagSet:
    """The checked contents of a tags file."""

    tags: tuple[TagDefinition, ...]
    audiences: tuple[AudienceDefinition, ...] = ()
    source: str = "<dict>"

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tags]


def _text(tag: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"Tag {tag!r}: the '{key}' field must be a non-empty text. Got {value!r} instead.")
    return value.strip()


def _check_thresholds(tag: str, expr: Expression) -> None:
    for column, op, value in expr.thresholds():
        if op == "top":
            continue
        for pattern, low, high in RANGES:
            if pattern.search(column):
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high:
                        raise ValueError(f"Tag {tag!r}: the threshold of {column!r} must be a number in "
                                         f"[{low}, {high}]. Got {v!r} instead.")
                break


def parse_tags(data: Mapping[str, Any], *, source: str = "<dict>") -> TagSet:
    """Check the contents of a tags file (see the module docstring) and return them.

    >>> parse_tags({"tags": [{"id": "x", "kind": "rule", "name_zh": "x", "name_en": "x",
    ...                       "description": "x", "rule": "orders >= 1", "colour": "red"}]})
    Traceback (most recent call last):
    ...
    ValueError: Tag 'x' has an unknown field 'colour'. Fields: ['id', 'kind', 'name_zh', 'name_en', 'description', 'rule', 'each'].
    >>> parse_tags({"tags": [{"id": "x", "kind": "rule", "name_zh": "x", "name_en": "x",
    ...                       "description": "x", "rule": "ordrs >= 1"}]})
    Traceback (most recent call last):
    ...
    ValueError: Tag 'x': its rule names the column 'ordrs', which no profile, segment table or score has. Did you mean 'orders'?
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"A tags file must hold a mapping with the keys {list(FILE_FIELDS)}. Got {type(data).__name__}.")
    extra = [k for k in data if k not in FILE_FIELDS]
    if extra:
        raise ValueError(f"{source}: unknown top-level key {extra[0]!r}. Keys: {list(FILE_FIELDS)}.")
    raw = data.get("tags")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{source}: 'tags' must be a non-empty list of tags. Got {raw!r} instead.")
    tags: list[TagDefinition] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        if not isinstance(t, Mapping) or "id" not in t:
            raise ValueError(f"{source}: tag number {i + 1} must be a mapping with an 'id'. Got {t!r} instead.")
        tid = t["id"]
        if not isinstance(tid, str) or not _ID.match(tid):
            raise ValueError(f"{source}: a tag id must be lower-case letters, digits and '_' starting with a letter "
                             f"(it is used in audience expressions). Got {tid!r} instead.")
        unknown = [k for k in t if k not in TAG_FIELDS]
        if unknown:
            raise ValueError(f"Tag {tid!r} has an unknown field {unknown[0]!r}. Fields: {list(TAG_FIELDS)}.")
        if tid in seen:
            raise ValueError(f"Tag {tid!r} is declared twice.")
        if possible_column(tid) and "each" not in t:
            raise ValueError(f"Tag {tid!r} has the name of a profile, segment or score column; choose another id.")
        kind = t.get("kind", "rule")
        if kind not in KINDS:
            raise ValueError(f"Tag {tid!r}: the 'kind' field must be one of {list(KINDS)}. Got {kind!r} instead.")
        texts = {k: _text(tid, k, t.get(k)) for k in ("name_zh", "name_en", "description")}
        if ("rule" in t) == ("each" in t):
            raise ValueError(f"Tag {tid!r} must have exactly one of 'rule' (an expression) and 'each' (a column).")
        rule = each = None
        if "rule" in t:
            try:
                rule = parse(_text(tid, "rule", t["rule"]), names=_Vocabulary(seen))
            except KeyError as e:
                name = re.search(r"Unknown name '([^']+)'", str(e)).group(1)
                close = difflib.get_close_matches(name, [*seen, *_all_columns_hint()], n=1, cutoff=0.6)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"Tag {tid!r}: its rule names the column {name!r}, which no profile, segment table "
                                 f"or score has.{hint}") from None
            except ExpressionError as e:
                raise ValueError(f"Tag {tid!r}: {e}") from None
            _check_thresholds(tid, rule)
        else:
            each = _text(tid, "each", t["each"])
            if not possible_column(each):
                raise ValueError(f"Tag {tid!r}: 'each' names the column {each!r}, which no profile, segment table or "
                                 "score has.")
            if "{value}" not in texts["name_zh"] or "{value}" not in texts["name_en"]:
                raise ValueError(f"Tag {tid!r}: with 'each', name_zh and name_en must contain '{{value}}' (the value "
                                 "of the column).")
        seen.add(tid)
        tags.append(TagDefinition(id=tid, kind=kind, rule=rule, each=each, **texts))
    audiences = []
    for a in data.get("audiences") or []:
        unknown = [k for k in a if k not in AUDIENCE_FIELDS] if isinstance(a, Mapping) else ["?"]
        if unknown or "name" not in a or "expression" not in a:
            raise ValueError(f"{source}: an audience needs 'name' and 'expression' (fields {list(AUDIENCE_FIELDS)}). "
                             f"Got {a!r} instead.")
        audiences.append(AudienceDefinition(str(a["name"]), str(a["expression"]), str(a.get("description", ""))))
    return TagSet(tuple(tags), tuple(audiences), source)


class _Vocabulary:
    """Names a rule may use: every possible column plus the tags declared before it."""

    def __init__(self, tags: set[str]):
        self.tags = tags

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.tags or possible_column(name))

    def __iter__(self):
        return iter(sorted(self.tags) + _all_columns_hint())

    def __len__(self) -> int:
        return len(self.tags) + len(_all_columns_hint())


def _all_columns_hint() -> list[str]:
    return [*PROFILE_COLUMNS, *SEGMENT_COLUMNS, *ACTIVITY_COLUMNS] + \
        [f"{event_slug(t)}{s}" for t in EVENT_TYPES for s in ("", "_minutes", "_value")]


def load_tags(path: str | Path | None = None) -> TagSet:
    """Read and check a tags file (default: the package's ``conf/tags.yaml``).

    >>> "frequent_rebuyer" in load_tags().ids
    True
    """
    path = Path(path) if path is not None else DEFAULT_TAGS_FILE
    return parse_tags(yaml.safe_load(path.read_text(encoding="utf-8")), source=str(path))


def activity_features(layer: Any) -> pd.DataFrame:
    """Per OneID with a paid order: ``orders_365d``, ``net_revenue_365d`` (orders in the 365 days
    before the end of the data) and, when the analysis settings name peak days, ``peak_day_orders``
    and ``peak_day_order_share`` (days counted in the brand's time zone). Index ``oneid``.

    >>> activity_features(layer)                        # doctest: +SKIP
    """
    if not layer.has("orders"):
        return pd.DataFrame(index=pd.Index([], name="oneid", dtype="string"))
    tx = layer.purchases()
    paid = tx[tx["is_order"].to_numpy(bool)]
    end = layer.data_end
    recent = paid[(paid["ordered_at"] >= end - pd.Timedelta(days=365)).to_numpy(bool)]
    by = recent.groupby("oneid", sort=True)
    out = pd.DataFrame({"orders_365d": by.size().astype("int64"), "net_revenue_365d": by["net"].sum()})
    out = out.reindex(pd.Index(sorted(paid["oneid"].unique()), name="oneid"))
    out["orders_365d"] = out["orders_365d"].fillna(0).astype("int64")
    out["net_revenue_365d"] = out["net_revenue_365d"].fillna(0.0)
    peaks = list(layer.analysis.peak_days)
    if peaks:
        local = paid["ordered_at"].dt.tz_convert(layer.local_timezone).dt.strftime("%m-%d")
        on_peak = local.isin(peaks).groupby(paid["oneid"]).agg(["sum", "mean"])
        out["peak_day_orders"] = on_peak["sum"].reindex(out.index).astype("int64")
        out["peak_day_order_share"] = on_peak["mean"].reindex(out.index).astype("float64")
    out.index = out.index.astype("string")
    return out


def tag_inputs(paths: Paths | None = None) -> pd.DataFrame:
    """What rules read: :func:`workbench.explore.load_segmentation` (public profile, segments,
    scores; index ``oneid``) joined with :func:`activity_features` (0 orders for non-buyers)."""
    from .canonical import load_canonical
    from .explore import load_segmentation

    paths = paths or get_paths()
    view = load_segmentation(paths)
    layer = load_canonical(paths)
    act = activity_features(layer)
    view = view.join(act[[c for c in act.columns if c not in view.columns]], how="left")
    for c in ("orders_365d", "peak_day_orders", "net_revenue_365d"):
        if c in view.columns and "orders" in view.columns:
            view[c] = view[c].fillna(0)
    view.attrs["data_end"] = None if layer.data_end is None else f"{layer.data_end:%Y-%m-%d}"
    return view


@dataclass
class TagResult:
    """Tags of every person (``table``: index ``oneid``, one bool column per tag and ``tags``),
    the tags computed (``tags``: id -> names, kind, description, members) and those left out
    with the reason (``notes``: id -> text)."""

    table: pd.DataFrame
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def coverage(self) -> pd.DataFrame:
        """Per tag: names, kind, persons tagged and their share of the persons."""
        n = max(len(self.table), 1)
        rows = [{"tag": t, "name_zh": m["name_zh"], "name_en": m["name_en"], "kind": m["kind"],
                 "persons": int(self.table[t].sum()), "share": float(self.table[t].sum()) / n}
                for t, m in self.tags.items()]
        return pd.DataFrame(rows, columns=["tag", "name_zh", "name_en", "kind", "persons", "share"]).set_index("tag")

    def overlap(self) -> pd.DataFrame:
        """Share of the persons with the row's tag who also have the column's tag (diagonal 1)."""
        ids = list(self.tags)
        m = self.table[ids].to_numpy(np.float64)
        both = m.T @ m
        size = np.diag(both).copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            share = both / np.where(size > 0, size, np.nan)[:, None]
        return pd.DataFrame(share, index=ids, columns=ids)


def _value_slug(value: object) -> str:
    s = re.sub(r"[^0-9a-z]+", "_", str(value).casefold()).strip("_")
    return s or "value"


def compute_tags(frame: pd.DataFrame, definitions: TagSet) -> TagResult:
    """Evaluate every tag on ``frame`` (index ``oneid``). A tag whose columns this data lacks (or
    holds no value in) is left out with a note; a later rule may use an earlier tag."""
    work = frame.copy(deep=False)
    cols: dict[str, np.ndarray] = {}
    meta: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    for t in definitions.tags:
        needs = sorted(t.rule.names) if t.rule is not None else [t.each]
        lacking = [c for c in needs if c not in work.columns or work[c].isna().all()]
        if lacking:
            tag_deps = [c for c in lacking if c in {d.id for d in definitions.tags}]
            why = (f"it uses the tag(s) {tag_deps}, left out too" if tag_deps else
                   f"it reads {lacking}, which this data does not have")
            notes[t.id] = f"{t.name_en} ({t.name_zh}) is not available for this data: {why}."
            continue
        base = {"name_zh": t.name_zh, "name_en": t.name_en, "kind": t.kind, "description": t.description}
        if t.rule is not None:
            try:
                v = evaluate(t.rule, work).to_numpy(bool)
            except ExpressionError as e:
                raise ValueError(f"Tag {t.id!r}: {e}") from None
            cols[t.id] = v
            work[t.id] = v
            meta[t.id] = {**base, "rule": t.rule.text}
        else:
            values = work[t.each]
            order = list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype) else \
                sorted(values.dropna().astype(str).unique())
            for val in order:
                tid = f"{t.id}_{_value_slug(val)}"
                v = (values.astype("string") == str(val)).fillna(False).to_numpy(bool)
                cols[tid] = v
                work[tid] = v
                meta[tid] = {**base, "name_zh": t.name_zh.replace("{value}", str(val)),
                             "name_en": t.name_en.replace("{value}", str(val)), "rule": f"{t.each} == {str(val)!r}"}
    table = pd.DataFrame(cols, index=frame.index) if cols else pd.DataFrame(index=frame.index)
    ids = np.asarray(list(cols), dtype=object)
    mat = table.to_numpy(bool) if cols else np.zeros((len(frame), 0), bool)
    table["tags"] = [list(ids[row]) for row in mat]
    table.index.name = "oneid"
    return TagResult(table=table, tags=meta, notes=notes)


def tags_path(paths: Paths) -> Path:
    """``data/processed/tags.parquet``: the tags of this run."""
    return paths.processed / "tags.parquet"


def snapshot_folder(paths: Paths) -> Path:
    """``data/processed/tags/``: one snapshot per data date (``tags_<YYYY-MM-DD>.parquet``)."""
    return paths.processed / "tags"


def previous_snapshot(paths: Paths, date: str) -> Path | None:
    """The newest snapshot of a data date before ``date`` (None without one)."""
    folder = snapshot_folder(paths)
    older = sorted(f for f in folder.glob("tags_*.parquet") if f.stem.removeprefix("tags_") < date)
    return older[-1] if older else None


def tag_changes(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Per tag of ``current``: persons tagged before and now, gained and lost (persons new to the
    data count as gained; a tag new since then has every member gained).

    >>> now = pd.DataFrame({"a": [True, True, False]}, index=["x", "y", "z"])
    >>> before = pd.DataFrame({"a": [True, False]}, index=["x", "z"])
    >>> tag_changes(now, before).loc["a"].tolist()
    [1, 2, 1, 0]
    """
    ids = [c for c in current.columns if c != "tags"]
    rows = []
    for t in ids:
        now = current[t].astype(bool)
        if previous is not None and t in previous.columns:
            before = previous[t].astype(bool).reindex(now.index.union(previous.index), fill_value=False)
        else:
            before = pd.Series(False, index=now.index)
        now = now.reindex(before.index.union(now.index), fill_value=False)
        before = before.reindex(now.index, fill_value=False)
        rows.append({"tag": t, "before": int(before.sum()), "now": int(now.sum()),
                     "gained": int((now & ~before).sum()), "lost": int((before & ~now).sum())})
    return pd.DataFrame(rows, columns=["tag", "before", "now", "gained", "lost"]).set_index("tag")


@dataclass
class TagRun:
    """What :func:`run_tags` did: the result, the changes since the previous snapshot and its name."""

    result: TagResult
    changes: pd.DataFrame
    previous: str | None


def run_tags(paths: Paths | None = None, *, tags_file: str | Path | None = None) -> TagRun:
    """Stage ``tags``: compute every tag of ``tags_file`` on this run's profile, segments and scores;
    write ``processed/tags.parquet``, the snapshot ``processed/tags/tags_<data date>.parquet`` and
    ``interim/metrics/tags.json``; compare with the newest snapshot of an earlier data date.

    >>> run = run_tags()                                  # doctest: +SKIP
    >>> run.changes.loc["frequent_rebuyer", "gained"]     # doctest: +SKIP
    """
    paths = paths or get_paths()
    definitions = load_tags(tags_file)
    frame = tag_inputs(paths)
    result = compute_tags(frame, definitions)
    date = frame.attrs.get("data_end") or "undated"
    prev_file = previous_snapshot(paths, date)
    previous = pd.read_parquet(prev_file).set_index("oneid") if prev_file is not None else None
    changes = tag_changes(result.table, previous)
    out = result.table.reset_index()
    out.attrs = {"tags": json.dumps(result.tags, ensure_ascii=False), "notes": json.dumps(result.notes,
                                                                                         ensure_ascii=False),
                 "data_end": date, "source": definitions.source}
    paths.processed.mkdir(parents=True, exist_ok=True)
    out.to_parquet(tags_path(paths), index=False)
    snapshot_folder(paths).mkdir(parents=True, exist_ok=True)
    out.to_parquet(snapshot_folder(paths) / f"tags_{date}.parquet", index=False)
    metrics = {"stage": "tags", "persons": int(len(out)), "data_end": date,
               "previous": prev_file.name if prev_file else None,
               "tags": {t: int(result.table[t].sum()) for t in result.tags}, "left_out": result.notes}
    paths.metrics.mkdir(parents=True, exist_ok=True)
    (paths.metrics / "tags.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    return TagRun(result=result, changes=changes, previous=prev_file.name if prev_file else None)


def load_tag_table(paths: Paths | None = None) -> pd.DataFrame:
    """``processed/tags.parquet`` with index ``oneid`` (the boolean tag columns and ``tags``)."""
    paths = paths or get_paths()
    return pd.read_parquet(tags_path(paths)).set_index("oneid")

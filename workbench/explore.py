"""Interactive explorers for notebook 11: segments, one customer's 360 view, and match review.

Everything here reads what the stages wrote — the canonical layer
(:mod:`workbench.canonical`), the customer 360 profile, the segment tables, the model scores
and the identity stage's registry and links — and nothing that depends on what a brand's
channels are called, so the explorers work for any brand's mappings. Pure functions do the
work and are tested without a browser; the ipywidgets builders only wire controls to them,
so what a widget shows is what the functions return:

=================  ==============================================  ======================
explorer           functions                                        widget
=================  ==============================================  ======================
segments           :func:`load_segmentation`, :func:`segment_table`,  :func:`segment_explorer`
                   :func:`segment_profile`, :func:`plot_segment`
one customer       :func:`find_customers`, :func:`customer_timeline`, :func:`customer_lookup`
                   :func:`timeline_from_tables`, :func:`person_evidence`
match review       :func:`review_candidates`, :func:`save_decision`,  :func:`match_review`
                   :func:`load_decisions`
=================  ==============================================  ======================

Privacy: raw names, phones and e-mails stay inside ``data/``. Searches may match raw values
internally (an e-mail typed in full is normalised and compared with the profile's ``email``),
but every table and figure shows only masked forms (``张*``, ``138****8000``, ``z***@qq.com``)
and hashed identifier values.

Match review writes ``data/processed/match_decisions.parquet`` (one row per record pair:
``accept`` = must-link, ``reject`` = cannot-link); the identity stage of the next
``make report`` applies it.

Every builder returns an ipywidgets container whose ``controls`` attribute (a
:class:`types.SimpleNamespace`) names its parts, so it can be driven headless:

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"segment": ["Champions", "Lost", "Lost"], "net_revenue": [900.0, 50.0, 0.0]},
    ...                      index=pd.Index(["a", "b", "c"], name="oneid"))
    >>> segment_table(frame, by="segment")[["persons", "share", "revenue"]]  # doctest: +NORMALIZE_WHITESPACE
               persons     share  revenue
    segment
    Lost             2  0.666667     50.0
    Champions        1  0.333333    900.0
    >>> explorer = segment_explorer(frame)
    >>> explorer.controls.segment.value = "Champions"
    >>> "1 person" in explorer.controls.summary.value
    True
"""

from __future__ import annotations

import html
import io
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from . import normalise as nz
from .config import Paths, get_paths

__all__ = [
    "DECISIONS", "DECISION_COLUMNS", "FIND_COLUMNS", "PROFILE_COLUMNS", "SEGMENTATIONS", "TIMELINE_COLUMNS",
    "TIMELINE_KINDS", "available_segmentations", "customer_lookup", "customer_timeline", "find_customers",
    "load_decisions", "load_segmentation", "match_review", "person_evidence", "plot_segment", "review_candidates",
    "save_decision", "segment_explorer", "segment_profile", "segment_table", "timeline_from_tables",
]

#: Segmentations the segment explorer offers (label -> column), when the column is present.
SEGMENTATIONS: dict[str, str] = {
    "RFM segment": "segment",
    "KMeans cluster": "cluster_name",
    "Engagement × value group": "group",
    "Churn-risk decile (1 = highest risk)": "churn_risk_decile",
    "Purchase-propensity decile (1 = most likely)": "purchase_propensity_decile",
    "Member level": "member_level",
    "Main sales channel": "main_sales_channel",
}
#: Behaviour columns compared between a segment and everyone — the customer 360's generic
#: columns (orders, events of the canonical vocabulary, consents) and the stages' scores; the
#: ones a brand's profile has are used.
PROFILE_COLUMNS: tuple[str, ...] = (
    "orders", "net_revenue", "avg_order_value", "days_since_last_order", "refunded_orders", "n_channels",
    "is_member", "is_known", "sessions", "application_opened", "product_viewed", "product_added",
    "live_stream_watched_minutes", "live_gift_sent_value", "wechat_following", "email_open_rate",
    "email_click_rate", "service_ticket_opened", "problem_tickets", "service_rating", "consent_ads", "engagement",
    "clv_12m", "p_alive", "churn_risk", "purchase_propensity",
)
#: Segment tables joined by :func:`load_segmentation` (file stem, columns taken; None = all);
#: the model scores are joined after them (:func:`workbench.models.classifiers.load_scores`).
SEGMENTATION_FILES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("rfm_segments", ("segment", "rfm_cell", "r_score", "f_score", "m_score", "recency_days", "frequency",
                      "monetary")),
    ("clusters", ("cluster", "cluster_name")),
    ("engagement_value", ("engagement", "value", "high_engagement", "high_value", "group")),
    ("clv", None),
)
#: Label of persons a segmentation does not cover (e.g. no cluster: never bought).
NOT_SEGMENTED = "(not segmented)"
#: Values of the ``decision`` column of the decisions file.
DECISIONS: tuple[str, ...] = ("accept", "reject")
#: Columns of ``data/processed/match_decisions.parquet``.
DECISION_COLUMNS: tuple[str, ...] = ("record_a", "record_b", "decision", "decided_at", "reviewer", "note")
#: Columns :func:`find_customers` returns (those present in the profile).
FIND_COLUMNS: tuple[str, ...] = ("oneid", "matched_on", "name_masked", "phone_masked", "email_masked", "city",
                                 "member_level", "channels", "orders", "net_revenue", "last_seen")
#: Columns of :func:`customer_timeline`.
TIMELINE_COLUMNS: tuple[str, ...] = ("time", "channel", "kind", "event", "detail", "amount", "duration_minutes",
                                     "record_id")
#: Values of the timeline's ``kind`` column: the canonical table a row comes from.
TIMELINE_KINDS: tuple[str, ...] = ("profile", "order", "order line", "refund", "event", "consent", "record")
#: Canonical tables a timeline is built from.
TIMELINE_TABLES: tuple[str, ...] = ("records", "profiles", "traits", "orders", "order_lines", "refunds", "events",
                                    "consents")
#: Person traits shown (masked) on a record's timeline row, with their masking kind.
_TIMELINE_TRAITS: tuple[tuple[str, str, str], ...] = (("name", "name", "name"), ("phone", "phone", "phone"),
                                                      ("email", "e-mail", "email"), ("city", "city", "none"),
                                                      ("address", "address", "address"))
#: Units of columns when the frame carries no data dictionary (the profile's dictionary wins).
_EXTRA_UNITS = {"engagement": "score 0–1", "p_alive": "probability", "churn_risk": "probability",
                "purchase_propensity": "probability", "expected_purchases_12m": "orders", "orders": "orders",
                "refunded_orders": "orders", "days_since_last_order": "days", "n_channels": "channels",
                "sessions": "sessions", "email_open_rate": "share 0–1", "email_click_rate": "share 0–1",
                "problem_tickets": "tickets", "service_ticket_opened": "events"}
_MASKED_PHONE = re.compile(r"^(?:\d{3}\*{4}\d{4}|\+\d{1,3} \d\*+\d{2,3}|\*+\d{2})$")
_ERROR_STYLE = "color:#b00020"


def _param_error(name: str, expected: str, got: Any) -> ValueError:
    return ValueError(f"The '{name}' parameter must be {expected}. Got {got!r} instead.")


def _require(df: Any, columns: Iterable[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"The '{what}' parameter must be a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"The '{what}' table is missing column(s) {missing}. "
                       f"Columns present: {list(map(str, df.columns))}.")


# ----------------------------------------------------------------------------- file access
def _sql_path(path: Path, *, row_numbers: bool = False) -> str:
    """``read_parquet('<path>')`` (with ``file_row_number`` when asked: to keep the file's order)."""
    extra = ", file_row_number = true" if row_numbers else ""
    return "read_parquet('" + str(path).replace("'", "''") + "'" + extra + ")"


def _duck(sql: str, **tables: Any) -> pd.DataFrame:
    """Run ``sql`` on DuckDB (filter push-down reads only the rows asked for) with ``tables`` registered."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(sql).to_arrow_table().to_pandas()
    finally:
        con.close()


def _values_table(values: Iterable[Any]):
    import pyarrow as pa

    return pa.table({"v": pa.array([str(v) for v in values], type=pa.string())})


def _rows_where_in(path: Path, column: str, values: Iterable[Any], columns: Sequence[str] | None = None
                   ) -> pd.DataFrame:
    """Rows of a Parquet file whose ``column`` is one of ``values`` (file order kept)."""
    cols = "* EXCLUDE (file_row_number)" if columns is None else \
        ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    return _duck(f'SELECT {cols} FROM {_sql_path(path, row_numbers=True)} WHERE "{column}" IN (SELECT v FROM wanted) '
                 "ORDER BY file_row_number", wanted=_values_table(values))


def _registry_file(paths: Paths) -> Path:
    f = paths.registry
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run the identity stage (notebook 03_id_matching) first.")
    return f


def _links_file(paths: Paths) -> Path:
    f = paths.identity_links
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run the identity stage (notebook 03_id_matching) first.")
    return f


def _with_oneid_index(df: pd.DataFrame) -> pd.DataFrame:
    if "oneid" in df.columns:
        df = df.set_index("oneid")
    df.index = df.index.astype("string")
    df.index.name = "oneid"
    return df


def _figure_png(fig) -> bytes:
    """PNG bytes of a figure for an Image widget; the figure is closed (nothing left for pyplot to show)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _html_table(df: pd.DataFrame, *, max_rows: int = 60, float_format: str = "{:,.2f}", index: bool = True) -> str:
    """A small HTML table for a widget (escaped; long tables are cut with a note)."""
    if df is None or len(df) == 0:
        return "<i>nothing to show</i>"
    shown = df.head(max_rows)
    out = shown.to_html(index=index, border=0, na_rep="–", escape=True,
                        float_format=lambda x: float_format.format(x))
    if len(df) > max_rows:
        out += f"<div><i>first {max_rows:,} of {len(df):,} rows</i></div>"
    return f'<div style="max-height:420px;overflow:auto;font-size:12px">{out}</div>'


# ============================================================================= segments
def load_segmentation(paths: Paths | None = None) -> pd.DataFrame:
    """The public customer 360 profile (no raw name, phone, e-mail or member id) joined with
    every segmentation written so far: RFM (``segment`` ...), KMeans (``cluster_name``),
    engagement × value (``group``), CLV (``clv_12m`` ...) and the model scores
    (``scores_<task>.parquet`` via :func:`workbench.models.classifiers.load_scores`:
    ``churn_risk``, ``purchase_propensity`` and their deciles, 1 = highest).

    Index ``oneid`` (sorted), one row per person of the profile; a person a table does not
    cover gets missing values. Tables not written yet are skipped and listed in
    ``attrs["missing"]`` (``attrs["sources"]`` lists those joined; ``scores`` stands for the
    model scores); a column already present is not taken again. ``attrs`` also keeps the
    profile's ``currency``, ``as_of`` and data ``dictionary`` (units of the columns).

    >>> frame = load_segmentation()                      # doctest: +SKIP
    >>> frame.attrs["sources"]                           # doctest: +SKIP
    ['customer_360', 'rfm_segments', 'clusters', 'engagement_value', 'clv', 'scores']
    """
    from .customer360 import load_customer_360, public_view
    from .models.classifiers import load_scores

    paths = paths or get_paths()
    profile = load_customer_360(paths)
    keep = {k: profile.attrs[k] for k in ("currency", "as_of", "dictionary") if k in profile.attrs}
    frame = _with_oneid_index(public_view(profile).copy())
    sources, missing = ["customer_360"], []
    for stem, columns in SEGMENTATION_FILES:
        f = paths.processed / f"{stem}.parquet"
        if not f.exists():
            missing.append(stem)
            continue
        part = _with_oneid_index(pd.read_parquet(f))
        take = [c for c in (columns or part.columns) if c in part.columns and c not in frame.columns]
        part = part[take]
        if not part.index.is_unique:
            raise ValueError(f"{f} must have one row per OneID. Got {int(part.index.duplicated().sum())} "
                             "duplicated OneIDs instead.")
        frame = frame.join(part, how="left")
        sources.append(stem)
    scores = load_scores(paths)
    if scores.shape[1]:
        scores = _with_oneid_index(scores)
        frame = frame.join(scores[[c for c in scores.columns if c not in frame.columns]], how="left")
        sources.append("scores")
    else:
        missing.append("scores")
    frame = frame.sort_index(kind="stable")
    frame.attrs = {"sources": sources, "missing": missing, **keep}
    return frame


def available_segmentations(frame: pd.DataFrame) -> dict[str, str]:
    """The entries of :data:`SEGMENTATIONS` whose column ``frame`` holds (with at least one value).

    >>> available_segmentations(pd.DataFrame({"segment": ["Lost"], "group": [None]}))
    {'RFM segment': 'segment'}
    """
    return {label: col for label, col in SEGMENTATIONS.items()
            if col in frame.columns and frame[col].notna().any()}


def _segment_labels(frame: pd.DataFrame, by: str, missing_label: str) -> tuple[pd.Series, list[str]]:
    """Each person's segment as text (missing -> ``missing_label``) and the display order of the segments.

    Order: categories in their declared order, numbers ascending, other values by size
    (largest first, ties alphabetical); ``missing_label`` last.
    """
    values = frame[by]
    labels = values.astype("string").fillna(missing_label)
    present = values.dropna()
    if isinstance(values.dtype, pd.CategoricalDtype):
        order = [str(c) for c in values.cat.categories if (values == c).any()]
    elif pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        uniq = pd.Series(present.unique())
        order = [str(v) for v in uniq.sort_values().astype("string")]
    else:
        counts = present.astype("string").value_counts()
        order = sorted(counts.index, key=lambda s: (-int(counts[s]), str(s)))
    if labels.eq(missing_label).any():
        order.append(missing_label)
    return labels, order


def segment_table(profile: pd.DataFrame, *, by: str = "segment", value: str | None = None,
                  clv_col: str = "clv_12m", churn_col: str = "churn_risk",
                  propensity_col: str = "purchase_propensity", missing_label: str = NOT_SEGMENTED) -> pd.DataFrame:
    """One row per segment of the ``by`` column: ``persons``, ``share`` of everyone, and — when
    the columns are present — ``revenue`` (sum of ``value``, default ``net_revenue``, in the
    base currency),
    ``revenue_share``, ``avg_revenue`` (per person) and the mean of ``clv_12m``, ``churn_risk``
    and ``purchase_propensity`` (persons without a score are left out of a mean).

    Persons without a segment are counted under ``missing_label``, so ``persons`` always sums
    to the number of rows. Row order: see :func:`_segment_labels` (categorical order, numbers
    ascending, otherwise largest first).

    >>> p = pd.DataFrame({"group": ["VIP", "Dormant", None, "VIP"], "net_revenue": [500.0, 0.0, 0.0, 300.0],
    ...                   "clv_12m": [120.0, None, None, 80.0]})
    >>> segment_table(p, by="group")[["persons", "revenue_share", "mean_clv_12m"]]  # doctest: +NORMALIZE_WHITESPACE
                     persons  revenue_share  mean_clv_12m
    group
    VIP                    2            1.0         100.0
    Dormant                1            0.0           NaN
    (not segmented)        1            0.0           NaN
    """
    if not isinstance(by, str):
        raise _param_error("by", "the name of a column such as 'segment'", by)
    _require(profile, [by], "profile")
    if value is not None:
        _require(profile, [value], "profile")
    value = value if value is not None else ("net_revenue" if "net_revenue" in profile.columns else None)
    labels, order = _segment_labels(profile, by, missing_label)
    g = profile.groupby(labels.to_numpy(), sort=False)
    n = len(profile)
    out = pd.DataFrame({"persons": g.size()})
    out["share"] = out["persons"] / n if n else 0.0
    if value is not None:
        v = pd.to_numeric(profile[value], errors="coerce").astype(float)
        total = float(v.sum())
        rev = v.groupby(labels.to_numpy(), sort=False).sum()
        out["revenue"] = rev
        out["revenue_share"] = rev / total if total else 0.0
        out["avg_revenue"] = rev / out["persons"]
    for col in (clv_col, churn_col, propensity_col):
        if col in profile.columns:
            out[f"mean_{col}"] = pd.to_numeric(profile[col], errors="coerce").astype(float).groupby(
                labels.to_numpy(), sort=False).mean()
    out = out.reindex(order)
    out.index = pd.Index(order, name=by, dtype="object")
    out["persons"] = out["persons"].astype("int64")
    out.attrs = {"currency": _currency(profile)}
    return out


def _currency(frame: pd.DataFrame) -> str:
    """The frame's money unit: ``attrs["currency"]`` (the profile's base currency), else the
    unit its data dictionary gives ``net_revenue``; empty when neither says."""
    cur = frame.attrs.get("currency")
    if cur:
        return str(cur)
    for d in frame.attrs.get("dictionary") or []:
        if d.get("name") == "net_revenue" and d.get("unit"):
            return str(d["unit"])
    return ""


def _column_units(frame: pd.DataFrame) -> dict[str, str]:
    """Unit of each column: the profile's data dictionary (``attrs["dictionary"]``), the model
    scores' dictionary, the segmentation columns; true/false columns are shares."""
    from .customer360 import SCORE_DICTIONARY

    cur = _currency(frame)
    units = dict(_EXTRA_UNITS)
    units.update({"clv_12m": cur, "expected_order_value": cur, "monetary": cur, "value": cur})
    units.update({c.name: c.unit for c in SCORE_DICTIONARY})
    units.update({d["name"]: d.get("unit") or "" for d in frame.attrs.get("dictionary") or [] if "name" in d})
    for c in frame.columns:
        if pd.api.types.is_bool_dtype(frame[c]):
            units[c] = "share 0–1"
    return units


def segment_profile(frame: pd.DataFrame, *, by: str, segment: str, columns: Sequence[str] | None = None,
                    missing_label: str = NOT_SEGMENTED) -> pd.DataFrame:
    """Means of behaviour columns in one segment beside everyone's, with an index (everyone = 100).

    ``columns`` default to the :data:`PROFILE_COLUMNS` present (the profile's columns follow
    the brand's data); true/false columns give shares. Rows are the columns, with their
    ``unit`` (from the profile's data dictionary when the frame carries it).

    >>> p = pd.DataFrame({"segment": ["A", "A", "B", "B"], "orders": [4, 2, 1, 1]})
    >>> segment_profile(p, by="segment", segment="A")  # doctest: +NORMALIZE_WHITESPACE
           unit  segment  everyone  index
    orders  orders      3.0       2.0  150.0
    """
    _require(frame, [by], "frame")
    labels, order = _segment_labels(frame, by, missing_label)
    if segment not in order:
        raise _param_error("segment", f"one of the segments of '{by}': {order}", segment)
    cols = [c for c in (columns if columns is not None else PROFILE_COLUMNS) if c in frame.columns]
    if columns is not None:
        _require(frame, columns, "frame")
    units = _column_units(frame)
    data = frame[cols].apply(lambda s: pd.to_numeric(s.astype("float64") if pd.api.types.is_bool_dtype(s) else s,
                                                     errors="coerce")).astype(float)
    inside = data[labels.eq(segment).to_numpy()].mean()
    everyone = data.mean()
    out = pd.DataFrame({"unit": [units.get(c, "") for c in cols], "segment": inside.to_numpy(),
                        "everyone": everyone.to_numpy()}, index=pd.Index(cols, dtype="object"))
    out["index"] = (100 * out["segment"] / out["everyone"].where(out["everyone"] != 0)).round(1)
    return out


def plot_segment(frame: pd.DataFrame, *, by: str, segment: str, revenue_col: str = "net_revenue",
                 channels_col: str = "channels", missing_label: str = NOT_SEGMENTED):
    """Figure of one segment against everyone: net revenue per buyer (histogram, log scale; in
    the frame's currency, ``attrs["currency"]``) and the channel mix (share of persons seen in
    each channel). Panels whose column is missing are left out (a brand without orders has no
    revenue panel). Returns the matplotlib Figure.

    >>> p = pd.DataFrame({"segment": ["A", "A", "B"], "net_revenue": [120.0, 900.0, 0.0],
    ...                   "channels": ["members,shop", "shop", "app"]})
    >>> p.attrs["currency"] = "EUR"
    >>> fig = plot_segment(p, by="segment", segment="A")
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['net revenue per buyer (EUR, log scale)', 'share of persons seen in the channel (%)']
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    _require(frame, [by], "frame")
    labels, order = _segment_labels(frame, by, missing_label)
    if segment not in order:
        raise _param_error("segment", f"one of the segments of '{by}': {order}", segment)
    inside = labels.eq(segment).to_numpy()
    panels = [c for c in (revenue_col, channels_col) if c in frame.columns]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.2 * max(len(panels), 1), 3.8), squeeze=False,
                             layout="constrained")
    axes = axes[0]
    who_seg, who_all = f"{segment}", "everyone"
    palette = {who_seg: "#C44E52", who_all: "#8C8C8C"}
    k, legend_drawn = 0, False
    if revenue_col in panels:
        ax = axes[k]
        k += 1
        rev = pd.to_numeric(frame[revenue_col], errors="coerce").astype(float)
        long = pd.concat([pd.DataFrame({"revenue": rev[inside & (rev > 0).to_numpy()], "who": who_seg}),
                          pd.DataFrame({"revenue": rev[(rev > 0).to_numpy()], "who": who_all})], ignore_index=True)
        if long["who"].eq(who_seg).any():
            sns.histplot(data=long, x="revenue", hue="who", stat="percent", common_norm=False, element="step",
                         log_scale=True, bins=30, palette=palette, ax=ax)
            if ax.get_legend() is not None:
                ax.get_legend().set_title(None)
                legend_drawn = True
        else:
            ax.text(0.5, 0.5, "no buyers in this segment", ha="center", va="center", transform=ax.transAxes)
        cur = _currency(frame)
        ax.set_xlabel(f"net revenue per buyer ({cur + ', ' if cur else ''}log scale)")
        ax.set_ylabel("share of the group's buyers (%)")
        ax.set_title("Revenue distribution")
    if channels_col in panels:
        ax = axes[k]
        ch = frame[channels_col].astype("string").fillna("").str.split(",")
        exploded = pd.DataFrame({"channel": ch, "inside": inside}).explode("channel")
        exploded = exploded[exploded["channel"].astype(str) != ""]
        share_all = exploded["channel"].value_counts() / max(len(frame), 1) * 100
        share_in = exploded.loc[exploded["inside"], "channel"].value_counts() / max(int(inside.sum()), 1) * 100
        chans = sorted(share_all.index)
        mix = pd.concat([pd.DataFrame({"channel": chans, "share": share_in.reindex(chans, fill_value=0).to_numpy(),
                                       "who": who_seg}),
                         pd.DataFrame({"channel": chans, "share": share_all.reindex(chans).to_numpy(),
                                       "who": who_all})], ignore_index=True)
        sns.barplot(data=mix, y="channel", x="share", hue="who", palette=palette, ax=ax, orient="h")
        if ax.get_legend() is not None:
            if legend_drawn:  # the revenue panel's legend already names the colours
                ax.get_legend().remove()
            else:
                ax.get_legend().set_title(None)
        ax.set_xlabel("share of persons seen in the channel (%)")
        ax.set_ylabel("channel")
        ax.set_title("Channel mix")
    if not panels:
        axes[0].text(0.5, 0.5, "no revenue or channel columns", ha="center", va="center")
        axes[0].set_axis_off()
    fig.suptitle(f"{by} = {segment} ({int(inside.sum()):,} persons) vs everyone ({len(frame):,})")
    return fig


def _summary_html(table: pd.DataFrame, by: str, segment: str, currency: str = "") -> str:
    row = table.loc[segment]
    unit = f" {currency}" if currency else ""
    n, total = int(row["persons"]), int(table["persons"].sum())
    parts = [(f"<b>{html.escape(str(segment))}</b>: {n:,} person{'s' if n != 1 else ''} "
              f"({row['share']:.1%} of {total:,})")]
    if "revenue" in table.columns:
        parts.append(f"net revenue {row['revenue']:,.0f}{unit} ({row['revenue_share']:.1%} of all), "
                     f"{row['avg_revenue']:,.0f}{unit} per person")
    for col, label, fmt in (("mean_clv_12m", "mean 12-month CLV", "{:,.0f}" + unit),
                            ("mean_churn_risk", "mean churn risk", "{:.1%}"),
                            ("mean_purchase_propensity", "mean purchase propensity", "{:.1%}")):
        if col in table.columns and pd.notna(row[col]):
            parts.append(f"{label} {fmt.format(row[col])}")
    return f"<div>{html.escape(by)} · " + " · ".join(parts) + "</div>"


def segment_explorer(source: Paths | pd.DataFrame | None = None):
    """Widget: pick a segmentation and one of its segments; see its size and share, its
    behaviour beside everyone's (:func:`segment_profile`), a chart (:func:`plot_segment`) and
    the whole segmentation's table (:func:`segment_table`).

    ``source`` is a frame like :func:`load_segmentation`'s (index or column ``oneid``) or the
    paths to load it from. ``.controls`` holds ``segmentation`` (Dropdown), ``segment``
    (Select), ``summary``, ``profile``, ``table`` (HTML) and ``chart`` (Image).

    >>> frame = pd.DataFrame({"segment": ["A", "B"], "group": ["VIP", "Dormant"], "net_revenue": [5.0, 0.0]})
    >>> w = segment_explorer(frame)
    >>> w.controls.segmentation.value = "group"
    >>> list(w.controls.segment.options)      # equal sizes: alphabetical
    ['Dormant', 'VIP']
    """
    import ipywidgets as widgets

    frame = source if isinstance(source, pd.DataFrame) else load_segmentation(source)
    if "oneid" in frame.columns:
        frame = frame.set_index("oneid")
    options = available_segmentations(frame)
    if not options:
        raise ValueError("The frame has no segmentation column: expected one of "
                         f"{list(SEGMENTATIONS.values())}. Columns present: {list(map(str, frame.columns))}.")
    c = SimpleNamespace(
        segmentation=widgets.Dropdown(options=list(options.items()), description="Segmentation",
                                      style={"description_width": "initial"}, layout=widgets.Layout(width="420px")),
        segment=widgets.Select(options=[], description="Segment", rows=8, layout=widgets.Layout(width="420px")),
        summary=widgets.HTML(), profile=widgets.HTML(), table=widgets.HTML(),
        chart=widgets.Image(format="png", layout=widgets.Layout(max_width="900px")),
    )
    state: dict[str, Any] = {}

    def show_segment(change=None) -> None:
        by, seg = c.segmentation.value, c.segment.value
        if seg is None:
            return
        c.summary.value = _summary_html(state["table"], by, seg, _currency(frame))
        c.profile.value = ("<b>Behaviour: segment vs everyone (means)</b>"
                           + _html_table(segment_profile(frame, by=by, segment=seg)))
        fig = plot_segment(frame, by=by, segment=seg)
        c.chart.value = _figure_png(fig)

    def show_segmentation(change=None) -> None:
        by = c.segmentation.value
        table = segment_table(frame, by=by)
        state["table"] = table
        c.table.value = f"<b>All segments of {html.escape(by)}</b>" + _html_table(table, float_format="{:,.3f}")
        segs = list(table.index)
        c.segment.unobserve(show_segment, names="value")
        c.segment.options = segs
        c.segment.value = segs[0]
        c.segment.observe(show_segment, names="value")
        show_segment()

    c.segmentation.observe(show_segmentation, names="value")
    c.segment.observe(show_segment, names="value")
    show_segmentation()
    box = widgets.VBox([
        widgets.HTML("<h3>Segment explorer</h3>"),
        widgets.HBox([c.segmentation]), c.segment, c.summary,
        widgets.HBox([c.profile, c.chart]), c.table,
    ])
    box.controls = c
    return box


# ============================================================================= one customer
def _empty_find(profile: pd.DataFrame, note: str | None = None) -> pd.DataFrame:
    cols = [c for c in FIND_COLUMNS if c in profile.columns or c == "matched_on"]
    out = pd.DataFrame({c: pd.Series(dtype=profile[c].dtype if c in profile.columns else "string") for c in cols})
    out.attrs = {"matches": 0, **({"note": note} if note else {})}
    return out


def _no_column(what: str) -> str:
    return f"The profile has no {what} (no channel of the brand carries one), so this search finds nobody."


def find_customers(profile: pd.DataFrame, query: str, *, limit: int | None = 20) -> pd.DataFrame:
    """Persons of the customer 360 ``profile`` that match ``query``, with masked columns only.

    The query is read as

    - an e-mail (has ``@``): normalised (trim, lower case) and compared with the profile's raw
      ``email`` (or, in a profile without it, masked and compared with ``email_masked``); a
      masked e-mail (``z***@qq.com``) is compared with ``email_masked``;
    - a masked phone (``138****8000``): compared with ``phone_masked``;
    - the last 4 digits of a phone (``8000``): compared with the end of ``phone`` (else of
      ``phone_masked``);
    - a full phone number (7+ digits, any format): normalised to E.164 and compared with
      ``phone`` (else masked and compared with ``phone_masked``);
    - otherwise a OneID, exact or a prefix (case-insensitive).

    Returns the :data:`FIND_COLUMNS` present (``oneid``, ``matched_on``, masked name, phone
    and e-mail, city, ...), sorted by OneID, at most ``limit`` rows (``attrs["matches"]``
    holds the number of matches). An empty query or one nobody matches gives no rows; so does
    a phone or e-mail query on a profile without phones or e-mails (a brand whose channels
    carry none), with the reason in ``attrs["note"]``.

    >>> p = pd.DataFrame({"oneid": ["OID-a1", "OID-b2"], "phone": ["+8613800138000", "+8613912345678"],
    ...                   "phone_masked": ["138****8000", "139****5678"], "email": ["zhang@qq.com", None],
    ...                   "email_masked": ["z***@qq.com", None]})
    >>> find_customers(p, " Zhang@QQ.com ")[["oneid", "matched_on", "phone_masked", "email_masked"]]
        oneid matched_on phone_masked email_masked
    0  OID-a1      email  138****8000  z***@qq.com
    >>> find_customers(p, "5678")["oneid"].tolist(), find_customers(p, "oid-")["oneid"].tolist()
    (['OID-b2'], ['OID-a1', 'OID-b2'])
    >>> find_customers(p[["oneid"]], "8000").attrs["note"]
    'The profile has no phone column (no channel of the brand carries one), so this search finds nobody.'
    """
    if not isinstance(query, str):
        raise _param_error("query", "a string (OneID, masked phone, last 4 digits or e-mail)", query)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1):
        raise _param_error("limit", "a positive integer or None", limit)
    if isinstance(profile, pd.DataFrame) and "oneid" not in profile.columns and profile.index.name == "oneid":
        profile = profile.reset_index()
    _require(profile, ["oneid"], "profile")
    q = query.strip()
    if not q:
        return _empty_find(profile)
    has = set(profile.columns)
    digits = re.sub(r"[\s\-()]", "", q)
    hit: pd.Series | None
    if "@" in q:
        if "*" in q:
            if "email_masked" not in has:
                return _empty_find(profile, _no_column("e-mail column"))
            hit, how = profile["email_masked"].astype("string").str.lower().eq(q.lower()), "masked e-mail"
        else:
            email = nz.normalise_emails(pd.Series([q]))["email"].iloc[0]
            if "email" in has:
                hit, how = (profile["email"].astype("string").eq(email) if pd.notna(email) else None), "email"
            elif "email_masked" in has:
                masked = nz.mask_email(pd.Series([email], dtype="string")).iloc[0] if pd.notna(email) else None
                hit = profile["email_masked"].astype("string").eq(masked) if pd.notna(masked) else None
                how = "masked e-mail"
            else:
                return _empty_find(profile, _no_column("e-mail column"))
    elif "*" in q and _MASKED_PHONE.match(q):
        if "phone_masked" not in has:
            return _empty_find(profile, _no_column("phone column"))
        hit, how = profile["phone_masked"].astype("string").eq(q), "masked phone"
    elif re.fullmatch(r"\d{4}", digits):
        col = "phone" if "phone" in has else ("phone_masked" if "phone_masked" in has else None)
        if col is None:
            return _empty_find(profile, _no_column("phone column"))
        hit, how = profile[col].astype("string").str.endswith(digits), "phone last 4"
    elif re.fullmatch(r"\+?\d{7,15}", digits):
        e164 = nz.normalise_phones(pd.Series([q]))["e164"].iloc[0]
        if "phone" in has:
            hit, how = (profile["phone"].astype("string").eq(e164) if pd.notna(e164) else None), "phone"
        elif "phone_masked" in has:
            masked = nz.mask_phone(pd.Series([e164], dtype="string")).iloc[0] if pd.notna(e164) else None
            hit = profile["phone_masked"].astype("string").eq(masked) if pd.notna(masked) else None
            how = "masked phone"
        else:
            return _empty_find(profile, _no_column("phone column"))
    else:
        ids = profile["oneid"].astype("string").str.lower()
        exact = ids.eq(q.lower())
        if exact.any():
            hit, how = exact, "oneid"
        else:
            hit, how = ids.str.startswith(q.lower()), "oneid prefix"
    if hit is None:
        return _empty_find(profile)
    hit_mask = hit.fillna(False).to_numpy(bool)
    cols = [c for c in FIND_COLUMNS if c in profile.columns]
    out = profile.loc[hit_mask, cols].copy()
    out.insert(1, "matched_on", how)
    out = out.sort_values("oneid", kind="stable").reset_index(drop=True)
    matches = len(out)
    if limit is not None:
        out = out.head(limit)
    out.attrs = {"matches": matches}
    return out


# ----------------------------------------------------------------------------- timeline
def _pieces(index: pd.Index, pieces: Sequence[tuple[str, pd.Series | None]]) -> pd.Series:
    """``label value; label value`` for each row, skipping missing and empty values."""
    cols = []
    for label, values in pieces:
        if values is None:
            continue
        v = pd.Series(values, index=index).astype("string") if not isinstance(values, pd.Series) \
            else values.astype("string")
        cols.append((label + " " + v if label else v).where(v.notna() & v.ne("")))
    if not cols:
        return pd.Series("", index=index, dtype="string")
    table = pd.concat(cols, axis=1)
    return pd.Series(["; ".join(x for x in row if isinstance(x, str)) for row in table.itertuples(index=False)],
                     index=index, dtype="string")


def _money(values: pd.Series, currency: str) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    unit = f" {currency}" if currency else ""
    return pd.Series([f"{x:,.2f}{unit}" if pd.notna(x) else pd.NA for x in v], index=values.index, dtype="string")


def _number(values: pd.Series, fmt: str = "{:g}") -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype(float)
    return pd.Series([fmt.format(x) if pd.notna(x) else pd.NA for x in v], index=values.index, dtype="string")


def _day(values: pd.Series) -> pd.Series:
    t = pd.to_datetime(values, utc=True)
    return pd.Series([x.strftime("%Y-%m-%d") if pd.notna(x) else pd.NA for x in t], index=values.index,
                     dtype="string")


def _item(d: pd.DataFrame) -> pd.Series:
    """``category: product × quantity`` from what a row has."""
    out = []
    for cat, prod, qty in zip(d["category"].astype("string"), d["product"].astype("string"), _number(d["quantity"])):
        text = ": ".join(x for x in (cat, prod) if isinstance(x, str) and x)
        if text and isinstance(qty, str):
            text += f" × {qty}"
        out.append(text or pd.NA)
    return pd.Series(out, index=d.index, dtype="string")


def _lenient(df: pd.DataFrame | None, table: str) -> pd.DataFrame:
    """``df`` with the canonical table's columns (missing ones empty), cast like the schema's
    (integers as floats, so a partial table never fails a cast)."""
    from .canonical.schema import COLUMNS

    df = pd.DataFrame() if df is None else df.reset_index(drop=True)
    out = {}
    for c, t in COLUMNS[table].items():
        s = df[c] if c in df.columns else pd.Series(pd.NA, index=df.index, dtype=object)
        if t.startswith("datetime64"):
            s = pd.to_datetime(s, utc=True).astype("datetime64[us, UTC]")
        elif t == "bool":
            s = s.astype("boolean").fillna(False).astype(bool)
        elif t in ("string", "boolean"):
            s = s.astype(t)
        else:
            s = pd.to_numeric(s, errors="coerce").astype(float)
        out[c] = s
    return pd.DataFrame(out, index=df.index)


def _timeline_part(d: pd.DataFrame, kind: str, time: Any, event: Any, detail: pd.Series,
                   amount: Any = np.nan, duration: Any = np.nan) -> pd.DataFrame:
    return pd.DataFrame({"time": time, "channel": d["channel"], "kind": kind, "event": event, "detail": detail,
                         "amount": amount, "duration_minutes": duration, "record_id": d["record_id"]},
                        index=d.index)


def _orders_of(o: pd.DataFrame, refunds: pd.DataFrame) -> pd.DataFrame:
    """The person's orders with the purchases view's status, refund and net (refunds netted)."""
    from .canonical import net_purchases

    pur = net_purchases(o.assign(status=o["status"].fillna("paid")), refunds)
    pur = pur[pur["order_key"].isin(o["order_key"]).to_numpy(bool)].drop_duplicates("order_key")
    return o.join(pur.set_index("order_key")[["status", "refund", "net"]].rename(columns={"status": "_status"}),
                  on="order_key")


def _consent_rows(c: pd.DataFrame) -> pd.DataFrame:
    """One row per consent statement (a record saying several purposes at once is one row)."""
    status = c["granted"].astype("boolean").map({True: "granted", False: "withdrawn"}).astype("string") \
        .fillna("unknown")
    c = c.assign(_status=status, _said=c["event"].astype("string").fillna("consent record"))
    rows = []
    for _, g in c.groupby(["record_id", "at", "_said"], sort=False, dropna=False):
        first = g.iloc[0]
        if len(g) == 1:
            event = f"consent {first['_status']}: {first['purpose']}"
        else:
            event = "consents recorded"
        said = ", ".join(f"{p} {s}" for p, s in zip(g["purpose"], g["_status"]))
        rows.append({"time": first["at"], "channel": first["channel"], "event": event,
                     "detail": f"{said}; said by {first['_said']}", "record_id": first["record_id"]})
    out = pd.DataFrame(rows, columns=["time", "channel", "event", "detail", "record_id"])
    return out.assign(kind="consent", amount=np.nan, duration_minutes=np.nan)


def _traits_text(traits: pd.DataFrame) -> pd.Series:
    """Per record id: its person traits, masked (``name 张*; phone 138****8000; city 上海``)."""
    from .privacy.masking import mask_series

    if traits is None or not len(traits):
        return pd.Series(dtype="string")
    parts = []
    for trait, label, kind in _TIMELINE_TRAITS:
        t = traits[(traits["trait"] == trait).to_numpy(bool)].drop_duplicates(["record_id"])
        if len(t):
            v = mask_series(t["value"].astype("string"), kind) if kind != "none" else t["value"].astype("string")
            parts.append(pd.Series(v.to_numpy(), index=pd.Index(t["record_id"].astype(str)), name=label))
    if not parts:
        return pd.Series(dtype="string")
    table = pd.concat(parts, axis=1)
    return _pieces(table.index, [(c, table[c]) for c in table.columns])


def timeline_from_tables(tables: Mapping[str, pd.DataFrame], *, currency: str = "") -> pd.DataFrame:
    """One person's timeline from their rows of the canonical tables (``records``, ``profiles``,
    ``traits``, ``orders``, ``order_lines``, ``refunds``, ``events``, ``consents``; missing
    tables count as empty) — the pure part of :func:`customer_timeline`.

    One row per canonical row, built from the canonical columns only (the same for every brand),
    ``kind`` saying which (:data:`TIMELINE_KINDS`):

    - ``profile``: "became a member" at the registration (else the record's time), member level,
      when the profile was last updated;
    - ``order``: "order (paid | refunded | cancelled)" — status, refund and net from
      :func:`workbench.canonical.net_purchases` (refunds netted) — sales channel, store,
      category, product × quantity, line count; ``amount`` = what was paid (0 when cancelled);
    - ``order line``: a line item of a multi-line order (or of an order booked to another
      OneID), with its amount in ``detail`` only (the order row carries the money);
    - ``refund``: a refund on an order or a return row, ``amount`` negative, with the date and
      sales channel of its order;
    - ``event``: the canonical event type (``Product Viewed``, ``Live Stream Watched`` ...) with
      quantity, duration (``duration_minutes``), value (``amount``), campaign, product,
      category, rating and platform;
    - ``consent``: a consent statement (purposes granted / withdrawn / unknown and what said it);
    - ``record``: a source record none of the above covers (its role and time only).

    Every record of ``records`` has at least one row. A record's person traits (name, phone,
    e-mail, city, address) are appended to the detail of its first row, **masked**. Sorted by
    time (undated rows last), then channel, record id and kind. The amounts of the ``order``
    and ``refund`` rows add up to the person's net revenue.

    >>> ts = pd.Timestamp("2026-03-01 10:00", tz="UTC")
    >>> t = timeline_from_tables({
    ...     "records": pd.DataFrame({"oneid": ["p"] * 2, "record_id": ["shop:f:1", "site:f:9"], "channel": ["shop", "site"],
    ...                              "role": ["orders", "events"], "at": [ts, ts + pd.Timedelta(hours=1)]}),
    ...     "orders": pd.DataFrame({"oneid": ["p"], "record_id": ["shop:f:1"], "channel": ["shop"], "order_key": ["shop:1"],
    ...                             "order_id": ["1"], "ordered_at": [ts], "status": ["paid"], "is_order": [True],
    ...                             "gross": [120.0], "category": ["tea"], "product": ["green tea"], "quantity": [2.0],
    ...                             "lines": [1], "sales_channel": ["store"], "store": ["S01"]}),
    ...     "traits": pd.DataFrame({"oneid": ["p"], "record_id": ["shop:f:1"], "trait": ["phone"],
    ...                             "value": ["+8613800138000"]}),
    ...     "events": pd.DataFrame({"oneid": ["p"], "record_id": ["site:f:9"], "channel": ["site"],
    ...                             "event_time": [ts + pd.Timedelta(hours=1)], "event_type": ["Product Viewed"],
    ...                             "quantity": [1.0], "category": ["tea"]})}, currency="EUR")
    >>> t[["kind", "event", "detail", "amount"]].to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'kind': 'order', 'event': 'order (paid)',
      'detail': 'sold via store; store S01; tea: green tea × 2; phone 138****8000', 'amount': 120.0},
     {'kind': 'event', 'event': 'Product Viewed', 'detail': 'category tea', 'amount': nan}]
    """
    t = {name: _lenient(tables.get(name), name) for name in TIMELINE_TABLES}
    parts: list[pd.DataFrame] = []

    p = t["profiles"]
    if len(p):
        reg = p["registered_at"]
        event = pd.Series(np.where(reg.notna().to_numpy(bool), "became a member", "member profile"), index=p.index)
        detail = _pieces(p.index, [("level", p["member_level"]), ("profile updated", _day(p["updated_at"]))])
        parts.append(_timeline_part(p, "profile", reg.fillna(p["at"]), event, detail))

    o = t["orders"]
    when = pd.Series(dtype="string")
    if len(o):
        o = _orders_of(o, t["refunds"])
        refunded = pd.to_numeric(o["refund"], errors="coerce").fillna(0.0) > 0
        detail = _pieces(o.index, [("sold via", o["sales_channel"]), ("store", o["store"]), ("", _item(o)),
                                   ("lines", _number(o["lines"].where(o["lines"] > 1))),
                                   ("refunded", _money(o["refund"].where(refunded), currency)),
                                   ("net", _money(o["net"].where(refunded), currency))])
        event = "order (" + o["_status"].astype("string").fillna(o["status"]).fillna("paid") + ")"
        parts.append(_timeline_part(o, "order", o["ordered_at"], event, detail, amount=o["gross"].astype(float)))
        when = pd.Series((_day(o["ordered_at"]) + " via " + o["sales_channel"].astype("string").fillna(o["channel"]))
                         .to_numpy(), index=pd.Index(o["order_key"].astype(str)), dtype="string")

    ol = t["order_lines"]
    if len(ol):
        single = set(o.loc[(o["lines"] <= 1).to_numpy(bool), "order_key"].astype(str)) if len(o) else set()
        ol = ol[~ol["order_key"].astype(str).isin(single).to_numpy(bool)]
        if len(ol):
            known = ol["order_key"].astype(str).map(when).astype("string")
            order = known.fillna("booked to another OneID")
            event = pd.Series(np.where(ol["cancelled"].to_numpy(bool), "order line (cancelled)", "order line"),
                              index=ol.index)
            detail = _pieces(ol.index, [("", _item(ol)), ("amount", _money(ol["amount"], currency)),
                                        ("order", order)])
            parts.append(_timeline_part(ol, "order line", ol["ordered_at"], event, detail))

    r = t["refunds"]
    if len(r):
        key = r["order_key"].astype(str)
        of = key.map(when).astype("string")
        matched = r["matched"].to_numpy(bool)
        note = of.fillna(pd.Series(np.where(matched, "booked to another OneID", "not in the data"), index=r.index)
                         .astype("string"))
        event = pd.Series(np.where(r["source"].astype("string").eq("return").fillna(False).to_numpy(bool),
                                   "return", "refund"), index=r.index)
        detail = _pieces(r.index, [("of the order", note),
                                   ("sold via", r["sales_channel"].where(of.isna().to_numpy(bool)))])
        parts.append(_timeline_part(r, "refund", r["refunded_at"], event, detail, amount=-r["amount"].astype(float)))

    e = t["events"]
    if len(e):
        qty = pd.to_numeric(e["quantity"], errors="coerce")
        minutes = pd.to_numeric(e["duration_seconds"], errors="coerce").astype(float) / 60.0
        detail = _pieces(e.index, [("×", _number(qty.where(qty.notna() & qty.ne(1.0)))),
                                   ("", _number(minutes, "{:,.0f} min")),
                                   ("value", _money(e["value"], currency)), ("campaign", e["campaign"]),
                                   ("product", e["product"]), ("category", e["category"]),
                                   ("rating", _number(e["rating"])), ("on", e["platform"])])
        parts.append(_timeline_part(e, "event", e["event_time"], e["event_type"], detail,
                                    amount=pd.to_numeric(e["value"], errors="coerce").astype(float),
                                    duration=minutes))

    c = t["consents"]
    if len(c):
        parts.append(_consent_rows(c))

    rec = t["records"]
    covered = set().union(*(set(x["record_id"].astype(str)) for x in parts)) if parts else set()
    rest = rec[~rec["record_id"].astype(str).isin(covered).to_numpy(bool)]
    if len(rest):
        parts.append(_timeline_part(rest, "record", rest["at"], "record (" + rest["role"].astype("string") + ")",
                                    pd.Series("", index=rest.index, dtype="string")))

    if parts:
        out = pd.concat([x.reset_index(drop=True) for x in parts], ignore_index=True)
    else:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in TIMELINE_COLUMNS})
    out["time"] = pd.to_datetime(out["time"], utc=True).astype("datetime64[us, UTC]")
    for col in ("amount", "duration_minutes"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("channel", "kind", "event", "detail", "record_id"):
        out[col] = out[col].astype("string")
    out["detail"] = out["detail"].fillna("")
    out["_k"] = out["kind"].map({k: i for i, k in enumerate(TIMELINE_KINDS)}).astype(float)
    out["_n"] = np.arange(len(out))
    out = out.sort_values(["time", "channel", "record_id", "_k", "_n"], kind="stable", na_position="last")
    out = out.drop(columns=["_k", "_n"]).reset_index(drop=True)
    traits = _traits_text(t["traits"])
    if len(traits) and len(out):
        first = ~out["record_id"].duplicated().to_numpy(bool)
        extra = out["record_id"].astype(str).map(traits).astype("string").where(first)
        has = (extra.notna() & extra.ne("")).fillna(False).to_numpy(bool)
        sep = np.where(out["detail"].eq("").fillna(True).to_numpy(bool), "", "; ")
        out.loc[has, "detail"] = (out["detail"] + sep + extra)[has]
    out.attrs = {"currency": currency}
    return out[list(TIMELINE_COLUMNS)]


def _person_rows(paths: Paths, oneid: str) -> dict[str, pd.DataFrame]:
    """The person's rows of every canonical table a timeline needs (DuckDB filter push-down: a
    lookup reads only this person's rows, however large the layer)."""
    import duckdb

    out = {}
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name in TIMELINE_TABLES:
            f = paths.canonical / f"{name}.parquet"
            if not f.exists():
                raise FileNotFoundError(f"{f} not found: build the canonical layer first (notebook 04_customer_360, "
                                        "or workbench.canonical.run_canonical).")
            out[name] = con.sql(f"SELECT * EXCLUDE (file_row_number) FROM {_sql_path(f, row_numbers=True)} "
                                "WHERE oneid = $1 ORDER BY file_row_number", params=[oneid]).to_arrow_table().to_pandas()
    finally:
        con.close()
    return out


def customer_timeline(paths: Paths | None, oneid: str) -> pd.DataFrame:
    """Every canonical row of one person, in time order, with personal values masked.

    Reads only the canonical layer (:func:`workbench.canonical.load_canonical`), this person's
    rows of it, and builds the rows with :func:`timeline_from_tables` — the same code for every
    brand, whatever its channels are called. Columns (:data:`TIMELINE_COLUMNS`): ``time``
    (UTC), ``channel`` (the source channel), ``kind`` (profile, order, order line, refund,
    event, consent, record), ``event`` (what happened: "order (refunded)", "Product Viewed",
    "Live Stream Watched", "consent withdrawn: email" ...), ``detail`` (sales channel,
    category, product, duration, campaign, rating ...; names, phones, e-mails and addresses
    only masked), ``amount`` (in the base currency, ``attrs["currency"]``: paid order amount,
    refunds negative, an event's value), ``duration_minutes`` and ``record_id``. Every record
    of the person has at least one row.

    >>> customer_timeline(get_paths(), "OID-00068a1973a7").head()   # doctest: +SKIP
    """
    from .canonical import load_canonical

    if not isinstance(oneid, str):
        raise _param_error("oneid", "a OneID string such as 'OID-00068a1973a7'", oneid)
    paths = paths or get_paths()
    layer = load_canonical(paths)
    rows = _person_rows(paths, oneid)
    if rows["records"].empty:
        known = paths.registry.exists() and not _rows_where_in(paths.registry, "oneid", [oneid], ["oneid"]).empty
        if known:
            raise ValueError(f"OneID {oneid!r} is in the OneID registry but not in the canonical layer: the layer is "
                             "older than the identity run. Rebuild it (notebook 04_customer_360, or "
                             "workbench.canonical.run_canonical).")
        raise KeyError(f"Unknown OneID {oneid!r}.")
    out = timeline_from_tables(rows, currency=layer.base_currency)
    out.attrs = {"oneid": oneid, "currency": layer.base_currency}
    return out


def person_evidence(paths: Paths | None, oneid: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The records of one OneID and the links that joined them — the same answer as
    :func:`workbench.identity.explain` (``oneid``, ``paths``) but reading only this person's rows
    of the registry (``paths.registry``) and the links (``paths.identity_links``) with DuckDB
    filter push-down, which keeps a lookup fast on a large registry.

    >>> records, links = person_evidence(get_paths(), "OID-00068a1973a7")   # doctest: +SKIP
    >>> links[["how", "value_hash"]].head(2)                                # doctest: +SKIP
    """
    paths = paths or get_paths()
    if not isinstance(oneid, str):
        raise _param_error("oneid", "a OneID string such as 'OID-00068a1973a7'", oneid)
    records = _rows_where_in(_registry_file(paths), "oneid", [oneid])
    if records.empty:
        raise KeyError(f"Unknown OneID {oneid!r}.")
    ids = _values_table(records["record_id"])
    links = _duck(f"SELECT * FROM {_sql_path(_links_file(paths))} "
                  "WHERE record_a IN (SELECT v FROM ids) OR record_b IN (SELECT v FROM ids)", ids=ids)
    return records.reset_index(drop=True), links.reset_index(drop=True)


def _person_card(profile: pd.DataFrame, oneid: str, currency: str = "") -> str:
    from .customer360 import public_view

    row = public_view(profile[profile["oneid"].astype("string").eq(oneid)])
    if row.empty:
        return ""
    r = row.iloc[0]
    money = f"net revenue ({currency})" if currency else "net revenue"
    fields = [("OneID", "oneid"), ("name", "name_masked"), ("phone", "phone_masked"), ("e-mail", "email_masked"),
              ("city", "city"), ("member level", "member_level"), ("channels", "channels"), ("orders", "orders"),
              (money, "net_revenue"), ("main sales channel", "main_sales_channel"),
              ("favourite category", "favourite_category"), ("first seen", "first_seen"), ("last seen", "last_seen")]
    cells = "".join(f"<tr><td>{html.escape(label)}</td><td>{html.escape(_fmt(r[col]))}</td></tr>"
                    for label, col in fields if col in row.columns)
    return f'<table style="font-size:12px">{cells}</table>'


def _fmt(v: Any) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M UTC")
    return str(v)


def _graph_png(records: pd.DataFrame, links: pd.DataFrame, oneid: str) -> bytes:
    from matplotlib.figure import Figure

    from .identity.plots import plot_person_graph

    fig = Figure(figsize=(7.5, 6), layout="constrained")
    ax = fig.subplots()
    plot_person_graph(records, links, title=f"How the records of {oneid} were joined", ax=ax)
    return _figure_png(fig)


def _timeline_html(timeline: pd.DataFrame, max_rows: int) -> str:
    cur = timeline.attrs.get("currency") or ""
    shown = timeline.assign(time=timeline["time"].dt.strftime("%Y-%m-%d %H:%M")).drop(columns="record_id")
    if cur:
        shown = shown.rename(columns={"amount": f"amount ({cur})"})
    return (f"<b>{timeline['record_id'].nunique():,} records, {len(timeline):,} rows, "
            f"{timeline['channel'].nunique()} channels</b>" + _html_table(shown, max_rows=max_rows, index=False))


def customer_lookup(paths: Paths | None = None, *, profile: pd.DataFrame | None = None, max_rows: int = 200):
    """Widget: search a person by OneID (or prefix), masked phone, last 4 digits or e-mail
    (:func:`find_customers`); pick one of the matches to see a masked profile card, the
    timeline (:func:`customer_timeline`), the evidence graph (:func:`person_evidence` and
    :func:`~workbench.identity.plots.plot_person_graph`) and the links with their value hashes.

    ``profile`` defaults to the customer 360 profile of ``paths`` (read once). ``.controls``
    holds ``query`` (Text; a search runs when it changes), ``search`` (Button), ``results``
    (HTML), ``person`` (Dropdown of matching OneIDs), ``card``, ``timeline``, ``links``
    (HTML), ``graph`` (Image) and ``message`` (HTML).

    >>> w = customer_lookup()                     # doctest: +SKIP
    >>> w.controls.query.value = "138****8000"    # doctest: +SKIP
    """
    import ipywidgets as widgets

    from .customer360 import load_customer_360

    paths = paths or get_paths()
    profile = load_customer_360(paths) if profile is None else profile
    if "oneid" not in profile.columns and profile.index.name == "oneid":
        profile = profile.reset_index()
    currency = str(profile.attrs.get("currency") or "")
    hints = ["OneID"] + (["138****8000", "last 4 digits"] if {"phone", "phone_masked"} & set(profile.columns) else []) \
        + (["e-mail"] if {"email", "email_masked"} & set(profile.columns) else [])
    c = SimpleNamespace(
        query=widgets.Text(placeholder=", ".join(hints), description="Find", continuous_update=False,
                           layout=widgets.Layout(width="420px")),
        search=widgets.Button(description="Search", icon="search"),
        message=widgets.HTML(), results=widgets.HTML(),
        person=widgets.Dropdown(options=[], description="Person", layout=widgets.Layout(width="420px")),
        card=widgets.HTML(), timeline=widgets.HTML(), links=widgets.HTML(),
        graph=widgets.Image(format="png", layout=widgets.Layout(max_width="760px")),
    )
    tabs = widgets.Tab(children=[c.timeline, c.graph, c.links])
    tabs.titles = ("Timeline", "Evidence graph", "Links")

    def show_person(change=None) -> None:
        oneid = c.person.value
        c.card.value = c.timeline.value = c.links.value = ""
        c.graph.value = b""
        if not oneid:
            return
        try:
            timeline = customer_timeline(paths, oneid)
            records, links = person_evidence(paths, oneid)
        except (KeyError, ValueError, FileNotFoundError) as exc:
            c.message.value = f'<span style="{_ERROR_STYLE}">{html.escape(str(exc))}</span>'
            return
        c.card.value = _person_card(profile, oneid, currency)
        c.timeline.value = _timeline_html(timeline, max_rows)
        cols = ["record_a", "record_b", "how", "value_hash", "match_weight", "match_probability"]
        c.links.value = (f"<b>{len(links):,} links</b> (identifier values are shown as hashes)"
                         + _html_table(links[[x for x in cols if x in links.columns]], max_rows=max_rows,
                                       float_format="{:.4g}", index=False))
        c.graph.value = _graph_png(records, links, oneid)

    def run_search(change=None) -> None:
        c.message.value = ""
        try:
            found = find_customers(profile, c.query.value)
        except KeyError as exc:
            c.message.value = f'<span style="{_ERROR_STYLE}">{html.escape(str(exc))}</span>'
            found = _empty_find(profile)
        n = found.attrs.get("matches", len(found))
        if found.attrs.get("note"):
            c.message.value = html.escape(found.attrs["note"])
        elif c.query.value.strip() and n == 0:
            c.message.value = f"No person matches {html.escape(c.query.value.strip())!s}."
        elif n > len(found):
            c.message.value = f"{n:,} persons match; the first {len(found):,} (by OneID) are listed."
        c.results.value = _html_table(found, index=False) if len(found) else ""
        ids = found["oneid"].astype(str).tolist()
        c.person.unobserve(show_person, names="value")
        c.person.options = ids
        c.person.value = ids[0] if ids else None
        c.person.observe(show_person, names="value")
        show_person()

    c.query.observe(run_search, names="value")
    c.search.on_click(run_search)
    c.person.observe(show_person, names="value")
    box = widgets.VBox([widgets.HTML("<h3>Customer 360 lookup</h3><div>Only masked values are shown; an e-mail "
                                     "typed in full is matched internally.</div>"),
                        widgets.HBox([c.query, c.search]), c.message, c.results, c.person,
                        widgets.HBox([c.card]), tabs])
    box.controls = c
    return box


# ============================================================================= match review
def _threshold(paths: Paths) -> float:
    """The posterior match threshold of the identity settings the run used (recorded by the
    identity stage; :func:`workbench.runconfig.resolve_identity`)."""
    from .runconfig import resolve_identity

    return float(resolve_identity(paths).match_threshold)


def _ordered(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    a, b = a.astype("string"), b.astype("string")
    swap = (a > b).fillna(False).to_numpy(bool)
    lo = a.where(~swap, b)
    hi = b.where(~swap, a)
    return lo, hi


def _weight(p: pd.Series) -> pd.Series:
    p = p.astype(float).clip(1e-12, 1 - 1e-12)
    return np.log2(p / (1 - p))


def _mode(df: pd.DataFrame, group: str, column: str) -> pd.Series:
    """Most frequent non-missing value of ``column`` per ``group`` (ties: the smallest value)."""
    v = df[[group, column]].dropna()
    if v.empty:
        return pd.Series(dtype="string")
    counts = v.groupby([group, column], observed=True).size().rename("n").reset_index()
    counts = counts.sort_values([group, "n", column], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates(group).set_index(group)[column].astype("string")


def _scopes_in(target: Any, present: set[str]) -> bool:
    """Whether every scope column of an identifier target (``buyer_nick@sales_channel``) is present."""
    targets = target if isinstance(target, list) else [target]
    return all(not sc or sc in present for sc in (str(t).partition("@")[2] for t in targets))


def _record_attributes(paths: Paths, records: pd.DataFrame) -> pd.DataFrame:
    """Per record: display name, name key, phone tail, address key and city — the fuzzy
    attributes exactly as the probabilistic stage compared them: each channel's cleaned rows
    read through the ``sources`` of the identity settings the run used
    (:func:`workbench.runconfig.resolve_identity`) and turned into evidence by
    :func:`workbench.identity.observations.observe`, for any brand's channels."""
    import pyarrow.parquet as pq

    from .identity.observations import observe
    from .identity.settings import SourceSpec
    from .runconfig import resolve_identity

    settings = resolve_identity(paths)
    parts = []
    for channel, recs in records.groupby("channel", sort=True):
        spec = settings.sources.get(str(channel))
        f = paths.cleaned / f"{channel}.parquet"
        if spec is None or not f.exists():
            continue
        present = set(pq.read_schema(f).names)

        idents = {c: t for c, t in spec.identifiers.items() if c in present and _scopes_in(t, present)}
        attrs = {c: a for c, a in spec.attributes.items() if c in present}
        if not attrs and not any("phone" in str(t) for t in idents.values()):
            continue  # nothing fuzzy to show
        display = {c: (c[:-4] if c.endswith("_key") and c[:-4] in present else c)
                   for c, a in attrs.items() if a == "name"}
        scopes = {str(t).partition("@")[2] for ts in idents.values() for t in (ts if isinstance(ts, list) else [ts])}
        cols = set(idents) | set(attrs) | set(display.values()) | (scopes - {""})
        cols |= {f"{c}_placeholder" for c in idents if f"{c}_placeholder" in present}
        d = _rows_where_in(f, "record_id", recs["record_id"], ["record_id", *sorted(cols)])
        _, ev, _ = observe(d, SourceSpec(identifiers=idents, attributes=attrs), settings, table=str(channel))
        out = pd.DataFrame({"record_id": d["record_id"].astype("string").to_numpy()})
        name = pd.Series(pd.NA, index=d.index, dtype="string")
        for c in display.values():
            name = name.fillna(d[c].astype("string"))
        out["name"] = name.to_numpy()
        out["name_key"] = ev["name"].astype("string").to_numpy()
        for c in ("phone_tail", "address_key", "city"):
            out[c] = ev[c].astype("string").to_numpy()
        parts.append(out)
    cols = ["record_id", "name", "name_key", "phone_tail", "address_key", "city"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in cols})
    out = pd.concat(parts, ignore_index=True)
    return out[cols].astype("string")


def _side_evidence(paths: Paths, record_ids: pd.Series) -> pd.DataFrame:
    """For each record: its OneID, channel, and the profile of its deterministic component (the
    records joined to it by shared identifiers — what the probabilistic stage compared): the most
    frequent name (masked), city, phone tail and address key, the channels and the record count."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    wanted = _values_table(record_ids.dropna().unique())
    reg = _registry_file(paths)
    recs = _duck(f"WITH r AS (SELECT record_id, channel, oneid FROM {_sql_path(reg)}) "
                 "SELECT * FROM r WHERE oneid IN (SELECT oneid FROM r WHERE record_id IN (SELECT v FROM wanted))",
                 wanted=wanted)
    recs = recs.astype({"record_id": "string", "channel": "string", "oneid": "string"}).reset_index(drop=True)
    idx = pd.Index(recs["record_id"])
    det = _duck(f"SELECT record_a, record_b FROM {_sql_path(_links_file(paths))} "
                "WHERE how <> 'probabilistic' AND value_hash IS NOT NULL AND record_a IN (SELECT v FROM ids)",
                ids=_values_table(recs["record_id"]))
    a, b = idx.get_indexer(det["record_a"]), idx.get_indexer(det["record_b"])
    keep = (a >= 0) & (b >= 0)
    n = len(recs)
    graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
    recs["component"] = connected_components(graph, directed=False)[1] if n else np.array([], dtype=int)
    attrs = _record_attributes(paths, recs).merge(recs[["record_id", "component"]], on="record_id", how="left")
    comp = pd.DataFrame(index=pd.Index(np.unique(recs["component"]), name="component"))
    for col in ("name", "name_key", "phone_tail", "address_key", "city"):
        comp[col] = _mode(attrs, "component", col).reindex(comp.index)
    g = recs.groupby("component")
    comp["records"] = g.size()
    comp["channels"] = g["channel"].agg(lambda s: ", ".join(sorted(set(map(str, s)))))
    out = recs.set_index("record_id")[["oneid", "channel", "component"]].join(comp, on="component")
    out["name"] = nz.mask_name(out["name"].astype("string"))
    return out.reindex(pd.Index(record_ids.astype("string")))


def _address_prefix(keys: pd.Series) -> pd.Series:
    """The first number of an address key and an ellipsis (``152-9-1020`` -> ``152-…``)."""
    k = keys.astype("string")
    return (k.str.split("-").str[0] + "-…").where(k.notna())


def _empty_candidates() -> pd.DataFrame:
    cols = {"record_a": "string", "record_b": "string", "source": "string", "match_probability": "float64",
            "match_weight": "float64", "decision": "string"}
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})


def review_candidates(paths: Paths | None = None, *, low: float = 0.5, high: float = 0.999, limit: int | None = 50,
                      include_decided: bool = False) -> pd.DataFrame:
    """Borderline pairs of the probabilistic OneID stage, most borderline first, with masked evidence.

    - ``accepted link``: probabilistic links of ``identity_links.parquet`` with
      ``low ≤ match_probability < high`` (merged, but the model was least sure);
    - ``below threshold``: when the identity stage wrote ``identity_scored_pairs.parquet``,
      scored pairs with ``low ≤ match_probability < min(high, threshold)`` that were not linked.

    Pairs are ordered so ``record_a < record_b`` (as in the decisions file), sorted by the
    distance of their match weight from the threshold's weight (then by record ids) and cut to
    ``limit``. Pairs with a saved decision are left out unless ``include_decided`` (the
    ``decision`` column shows it). Evidence per side (``_a``/``_b``): ``oneid``, ``channel`` of
    the record, ``channels`` and ``records`` of its deterministic component (the records joined
    to it by shared identifiers: what the model compared), and that component's most frequent
    ``name`` (masked), ``city``, ``phone_tail`` (``138****8000``) and ``address`` (first number
    of the address key, ``152-…``); ``agree``/``differ`` list the attributes both sides have
    that are equal/different.

    >>> review_candidates(get_paths(), low=0.5, high=0.999, limit=10)   # doctest: +SKIP
    """
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise _param_error(name, "a probability in [0, 1]", v)
    if low >= high:
        raise ValueError(f"The 'low' parameter must be below 'high'. Got low={low!r}, high={high!r} instead.")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1):
        raise _param_error("limit", "a positive integer or None", limit)
    paths = paths or get_paths()
    links_file = _links_file(paths)
    threshold = _threshold(paths)
    prob = _duck(f"SELECT record_a, record_b, match_weight, match_probability FROM {_sql_path(links_file)} "
                 "WHERE how = 'probabilistic'")
    prob["record_a"], prob["record_b"] = _ordered(prob["record_a"], prob["record_b"])
    accepted = prob[(prob["match_probability"] >= low) & (prob["match_probability"] < high)].assign(
        source="accepted link")
    parts = [accepted]
    scored_file = paths.processed / "identity_scored_pairs.parquet"
    if scored_file.exists():
        scored = pd.read_parquet(scored_file)
        _require(scored, ["record_a", "record_b", "match_probability"], "identity_scored_pairs")
        if "match_weight" not in scored:
            scored["match_weight"] = _weight(scored["match_probability"])
        scored = scored[["record_a", "record_b", "match_weight", "match_probability"]].copy()
        scored["record_a"], scored["record_b"] = _ordered(scored["record_a"], scored["record_b"])
        top = min(high, threshold)
        scored = scored[(scored["match_probability"] >= low) & (scored["match_probability"] < top)]
        linked = pd.MultiIndex.from_frame(prob[["record_a", "record_b"]])
        scored = scored[~pd.MultiIndex.from_frame(scored[["record_a", "record_b"]]).isin(linked)]
        parts.append(scored.assign(source="below threshold"))
    cand = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else _empty_candidates().drop(columns="decision")
    cand = cand.astype({"record_a": "string", "record_b": "string", "source": "string"})
    cand["match_weight"] = cand["match_weight"].astype(float).fillna(_weight(cand["match_probability"]))
    cand = cand.sort_values(["record_a", "record_b", "match_probability"], ascending=[True, True, False],
                            kind="stable").drop_duplicates(["record_a", "record_b"])
    decisions = load_decisions(paths)
    cand = cand.merge(decisions[["record_a", "record_b", "decision"]], on=["record_a", "record_b"], how="left")
    if not include_decided:
        cand = cand[cand["decision"].isna()]
    t_weight = math.log2(threshold / (1 - threshold)) if 0 < threshold < 1 else 0.0
    cand = cand.assign(_d=(cand["match_weight"] - t_weight).abs())
    cand = cand.sort_values(["_d", "record_a", "record_b"], kind="stable").drop(columns="_d")
    if limit is not None:
        cand = cand.head(limit)
    cand = cand.reset_index(drop=True)
    base = ["record_a", "record_b", "source", "match_probability", "match_weight"]
    if cand.empty:
        out = cand[base + ["decision"]]
        out.attrs["threshold"] = threshold
        return out
    ev = _side_evidence(paths, pd.concat([cand["record_a"], cand["record_b"]], ignore_index=True))
    n = len(cand)
    sides = {"a": ev.iloc[:n].reset_index(drop=True), "b": ev.iloc[n:].reset_index(drop=True)}
    out = cand[base].copy()
    for s, e in sides.items():
        out[f"oneid_{s}"] = e["oneid"].to_numpy()
        out[f"channel_{s}"] = e["channel"].to_numpy()
        out[f"channels_{s}"] = e["channels"].to_numpy()
        out[f"records_{s}"] = e["records"].astype("Int64").to_numpy()
    for col, shown in (("name", "name"), ("city", "city"), ("phone_tail", "phone_tail"), ("address", "address")):
        for s, e in sides.items():
            out[f"{shown}_{s}"] = (_address_prefix(e["address_key"]) if col == "address" else e[col]).to_numpy()
    agree, differ = [], []
    for i in range(n):
        a, b = sides["a"].iloc[i], sides["b"].iloc[i]
        same, diff = [], []
        for label, col in (("name", "name_key"), ("phone tail", "phone_tail"), ("address", "address_key"),
                           ("city", "city")):
            if pd.notna(a[col]) and pd.notna(b[col]):
                (same if a[col] == b[col] else diff).append(label)
        agree.append(", ".join(same))
        differ.append(", ".join(diff))
    out["agree"], out["differ"] = agree, differ
    out["decision"] = cand["decision"].to_numpy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].astype("string")
    out.attrs["threshold"] = threshold
    return out


def _decisions_file(paths: Paths) -> Path:
    return paths.processed / "match_decisions.parquet"


def _empty_decisions() -> pd.DataFrame:
    return pd.DataFrame({"record_a": pd.Series(dtype="string"), "record_b": pd.Series(dtype="string"),
                         "decision": pd.Series(dtype="string"),
                         "decided_at": pd.Series(dtype="datetime64[us, UTC]"),
                         "reviewer": pd.Series(dtype="string"), "note": pd.Series(dtype="string")})


def load_decisions(paths: Paths | None = None) -> pd.DataFrame:
    """The reviewers' decisions (``data/processed/match_decisions.parquet``): one row per record
    pair (``record_a < record_b``) with ``decision`` (``accept`` = must-link, ``reject`` =
    cannot-link), ``decided_at`` (UTC), ``reviewer`` and ``note``; empty when none were saved.

    >>> load_decisions(get_paths()).columns.tolist()    # doctest: +SKIP
    ['record_a', 'record_b', 'decision', 'decided_at', 'reviewer', 'note']
    """
    paths = paths or get_paths()
    f = _decisions_file(paths)
    if not f.exists():
        return _empty_decisions()
    df = pd.read_parquet(f)
    _require(df, DECISION_COLUMNS, "match_decisions")
    df = df[list(DECISION_COLUMNS)].astype({"record_a": "string", "record_b": "string", "decision": "string",
                                            "reviewer": "string", "note": "string"})
    df["decided_at"] = pd.to_datetime(df["decided_at"], utc=True).astype("datetime64[us, UTC]")
    return df.sort_values(["record_a", "record_b"], kind="stable").reset_index(drop=True)


def save_decision(paths: Paths | None, record_a: str, record_b: str, decision: str, *,
                  reviewer: str | None = None, note: str | None = None) -> pd.DataFrame:
    """Save a reviewer's decision on a record pair to ``data/processed/match_decisions.parquet``.

    ``decision`` is ``"accept"`` (the records are one person: must-link) or ``"reject"``
    (never join them: cannot-link). The pair is stored ordered (``record_a < record_b``);
    a new decision on a pair replaces the earlier one (the latest wins). Both records must be
    in the OneID registry. The file is replaced atomically; the identity stage of the next
    ``make report`` applies the decisions. Returns all decisions (:func:`load_decisions`).

    >>> save_decision(get_paths(), "members:members/export.csv:1",   # doctest: +SKIP
    ...               "shop:shop/orders.csv:14", "reject", reviewer="li")
    """
    if decision not in DECISIONS:
        raise _param_error("decision", f"one of {list(DECISIONS)} (accept = must-link, reject = cannot-link)",
                           decision)
    for name, v in (("record_a", record_a), ("record_b", record_b)):
        if not isinstance(v, str) or not v.strip():
            raise _param_error(name, "a record id such as 'members:members/export.csv:1'", v)
    for name, v in (("reviewer", reviewer), ("note", note)):
        if v is not None and not isinstance(v, str):
            raise _param_error(name, "a string or None", v)
    if record_a == record_b:
        raise ValueError(f"The 'record_a' and 'record_b' parameters must be two different records. "
                         f"Got {record_a!r} twice instead.")
    paths = paths or get_paths()
    found = set(_rows_where_in(_registry_file(paths), "record_id", [record_a, record_b], ["record_id"])["record_id"])
    unknown = [r for r in (record_a, record_b) if r not in found]
    if unknown:
        raise KeyError(f"Record id(s) {unknown} are not in the OneID registry ({_registry_file(paths)}): expected "
                       "ids of the last identity run such as 'members:members/export.csv:1'.")
    a, b = sorted((record_a, record_b))
    row = pd.DataFrame({"record_a": [a], "record_b": [b], "decision": [decision],
                        "decided_at": [pd.Timestamp.now(tz="UTC")], "reviewer": [reviewer], "note": [note]})
    row = row.astype({"record_a": "string", "record_b": "string", "decision": "string", "reviewer": "string",
                      "note": "string"})
    row["decided_at"] = row["decided_at"].astype("datetime64[us, UTC]")
    old = load_decisions(paths)
    old = old[~(old["record_a"].eq(a) & old["record_b"].eq(b)).to_numpy(bool)]
    table = pd.concat([old, row], ignore_index=True) if len(old) else row
    table = table.sort_values(["record_a", "record_b"], kind="stable").reset_index(drop=True)
    f = _decisions_file(paths)
    f.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".match_decisions.", suffix=".parquet", dir=f.parent)
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, f)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return table


def _pair_html(row: pd.Series) -> str:
    fields = [("record", "record"), ("OneID", "oneid"), ("channel of the record", "channel"),
              ("records joined by identifiers", "records"), ("their channels", "channels"), ("name", "name"),
              ("city", "city"), ("phone tail", "phone_tail"), ("address (first number)", "address")]
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{html.escape(_fmt(row.get(f'{col}_{s}')))}</td>" for s in ("a", "b")) + "</tr>"
        for label, col in fields)
    head = (f"<div><b>{html.escape(str(row['source']))}</b> · P(match) = {row['match_probability']:.4f} · "
            f"match weight = {row['match_weight']:.2f} · agree: {html.escape(_fmt(row.get('agree')) or '–')} · "
            f"differ: {html.escape(_fmt(row.get('differ')) or '–')}</div>")
    return (head + '<table style="font-size:12px"><tr><th></th><th>record A</th><th>record B</th></tr>'
            f"{body}</table>")


def match_review(paths: Paths | None = None, *, low: float = 0.5, high: float = 0.999, limit: int | None = 50,
                 reviewer: str | None = None):
    """Widget: review borderline OneID pairs (:func:`review_candidates`) one at a time with their
    masked evidence; **Accept** (must-link) and **Reject** (cannot-link) save the decision
    (:func:`save_decision`), **Skip** moves on. The next ``make report`` (identity stage)
    applies the saved decisions.

    ``.controls`` holds ``accept``, ``reject``, ``skip`` (Buttons), ``pair``, ``counter``,
    ``status`` (HTML), ``note`` and ``reviewer`` (Text) and ``candidates`` (the frame reviewed).

    >>> w = match_review(low=0.5, high=0.999)     # doctest: +SKIP
    >>> w.controls.accept.click()                  # doctest: +SKIP
    """
    import ipywidgets as widgets

    paths = paths or get_paths()
    cand = review_candidates(paths, low=low, high=high, limit=limit)
    c = SimpleNamespace(
        candidates=cand, pair=widgets.HTML(), counter=widgets.HTML(), status=widgets.HTML(),
        note=widgets.Text(placeholder="why (optional)", description="Note", layout=widgets.Layout(width="420px")),
        reviewer=widgets.Text(value=reviewer or "", placeholder="your name (optional)", description="Reviewer"),
        accept=widgets.Button(description="Accept (same person)", button_style="success", icon="check",
                              layout=widgets.Layout(width="200px")),
        reject=widgets.Button(description="Reject (different)", button_style="danger", icon="times",
                              layout=widgets.Layout(width="200px")),
        skip=widgets.Button(description="Skip", icon="forward"),
    )
    state = {"i": 0, "accept": 0, "reject": 0, "skip": 0}

    def render() -> None:
        i, n = state["i"], len(cand)
        done = state["accept"] + state["reject"]
        c.counter.value = (f"pair {min(i + 1, n)} of {n} · saved {done} (accept {state['accept']}, "
                           f"reject {state['reject']}) · skipped {state['skip']}")
        if i >= n:
            c.pair.value = ("<b>No more candidates.</b>" if n else
                            f"<b>No undecided pair with {low:g} ≤ P(match) &lt; {high:g}.</b>")
            for b in (c.accept, c.reject, c.skip):
                b.disabled = True
            return
        c.pair.value = _pair_html(cand.iloc[i])

    def decide(decision: str | None) -> None:
        i = state["i"]
        if i >= len(cand):
            return
        row = cand.iloc[i]
        if decision is not None:
            try:
                save_decision(paths, str(row["record_a"]), str(row["record_b"]), decision,
                              reviewer=c.reviewer.value.strip() or None, note=c.note.value.strip() or None)
            except (KeyError, ValueError) as exc:
                c.status.value = f'<span style="{_ERROR_STYLE}">{html.escape(str(exc))}</span>'
                return
            state[decision] += 1
            c.status.value = f"Saved: {decision} for pair {i + 1}."
        else:
            state["skip"] += 1
            c.status.value = f"Skipped pair {i + 1}."
        c.note.value = ""
        state["i"] += 1
        render()

    c.accept.on_click(lambda _: decide("accept"))
    c.reject.on_click(lambda _: decide("reject"))
    c.skip.on_click(lambda _: decide(None))
    render()
    note = widgets.HTML(
        "<h3>Match review</h3><div>Pairs the probabilistic OneID stage was least sure of. <b>Accept</b> = the "
        "records are one person (must-link); <b>Reject</b> = never join them (cannot-link). Decisions are saved "
        f"to <code>{html.escape(str(_decisions_file(paths)))}</code>; the next <code>make report</code> "
        "(identity stage) applies them. Names, phones and addresses are masked.</div>")
    box = widgets.VBox([note, c.counter, c.pair, widgets.HBox([c.note, c.reviewer]),
                        widgets.HBox([c.accept, c.reject, c.skip]), c.status])
    box.controls = c
    return box

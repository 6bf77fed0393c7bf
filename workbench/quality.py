"""Data-quality report: completeness, validity, uniqueness, consistency — before and after cleaning.

The clean stage records raw facts per field (``interim/quality/field_quality.parquet``);
this module turns them into rates, evaluates the declarative consistency rules of the
cleaning configuration, and draws the figures the ``02_clean`` notebook shows.

Definitions (per channel and field):

- completeness: share of rows with a value (before: not blank/``null``/``-``; after: not NA);
- conformity (before): share of present values already in the standard form cleaning produces;
- validity (after): of the values present in the source, the share that came out valid
  (an E.164 phone, a valid e-mail, a parsed timestamp, a known category, ...);
- uniqueness: distinct values / present values;
- consistency: rows that break a cross-field rule, and timestamps outside the plausible range.

Example:
    >>> from workbench.quality import field_quality    # doctest: +SKIP
    >>> field_quality().head()                           # doctest: +SKIP
"""

from __future__ import annotations

import json

import pandas as pd

from .clean import load_cleaned
from .runconfig import resolve_cleaning
from .config import Paths, get_paths


def field_quality(paths: Paths | None = None) -> pd.DataFrame:
    """One row per channel and field with before/after rates (0–1)."""
    paths = paths or get_paths()
    f = paths.quality / "field_quality.parquet"
    if not f.exists():
        raise FileNotFoundError(f"{f} not found: run the clean stage (notebook 02_clean) first.")
    q = pd.read_parquet(f)
    rows = q["rows"].where(q["rows"] > 0)
    out = q[["channel", "field", "type", "pii", "rows"]].copy()
    out["completeness_before"] = q["present_before"] / rows
    out["conformity_before"] = q["conforming_before"] / q["present_before"].where(q["present_before"] > 0)
    out["completeness_after"] = q["present_after"] / rows
    # validity: of the values the source had, the share that came out valid
    out["validity_after"] = (q["valid_after"] / q["present_before"].where(q["present_before"] > 0)).clip(upper=1)
    out["uniqueness_after"] = q["distinct_after"] / q["present_after"].where(q["present_after"] > 0)
    out["placeholders"] = q["placeholders"]
    out["out_of_range"] = q["inconsistent"]
    out["top_invalid_masked"] = q["top_invalid"]
    return out


def consistency_report(paths: Paths | None = None, config: dict | None = None) -> pd.DataFrame:
    """Evaluate every consistency rule on the cleaned tables: rows checked and violations."""
    paths = paths or get_paths()
    cfg = resolve_cleaning(paths, config)
    rows = []
    for rule in cfg.get("consistency", []):
        try:
            df = load_cleaned(rule["channel"], paths)
        except FileNotFoundError:
            continue
        try:
            ok = df.eval(rule["rule"], engine="python")
        except Exception as exc:  # a rule naming a column the channel does not have
            raise ValueError(f"Consistency rule {rule['rule']!r} for channel '{rule['channel']}' cannot be "
                             f"evaluated ({exc}). Columns: {list(df.columns)}.") from None
        ok = pd.Series(ok, index=df.index).astype("boolean").fillna(True)
        rows.append({"channel": rule["channel"], "rule": rule["rule"],
                     "description": rule.get("description", ""), "rows": len(df),
                     "violations": int((~ok).sum())})
    return pd.DataFrame(rows, columns=["channel", "rule", "description", "rows", "violations"])


def stage_counts(paths: Paths | None = None) -> pd.DataFrame:
    """Per channel: rows read by ingest, left to another mapping of the same file (``filtered``),
    suppressed, quarantined at ingest and clean, duplicates, merged, kept; ``reconciles`` when
    read = filtered + suppressed + quarantined + duplicates + merged + kept."""
    paths = paths or get_paths()
    ing = json.loads((paths.metrics / "ingest.json").read_text(encoding="utf-8"))["channels"]
    cl = json.loads((paths.metrics / "clean.json").read_text(encoding="utf-8"))["channels"]
    rows = []
    for ch in ing:
        c = cl.get(ch, {})
        rows.append({"channel": ch, "read": ing[ch]["read"], "filtered": ing[ch].get("filtered", 0),
                     "suppressed": ing[ch].get("suppressed", 0), "quarantined_ingest": ing[ch]["quarantined"],
                     "quarantined_clean": c.get("quarantined", 0), "exact_duplicates": c.get("exact_duplicates", 0),
                     "merged": c.get("merged", 0), "kept": c.get("kept", 0)})
    df = pd.DataFrame(rows).set_index("channel")
    df["reconciles"] = df["read"] == df[["filtered", "suppressed", "quarantined_ingest", "quarantined_clean",
                                          "exact_duplicates", "merged", "kept"]].sum(axis=1)
    return df


# ----------------------------------------------------------------------------- figures
def plot_stage_counts(counts: pd.DataFrame):
    """Two panels per channel: rows read (log scale) and the rows not kept, by reason."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True,
                                      gridspec_kw={"width_ratios": [1, 1.3]})
    counts["read"].plot.barh(ax=left, logx=True, color="#4C72B0", width=0.7)
    left.set_xlabel("rows read (log scale)")
    left.set_ylabel("channel")
    left.set_title("Rows read")
    parts = [c for c in ["merged", "exact_duplicates", "suppressed", "quarantined_ingest", "quarantined_clean"]
             if c in counts.columns]
    counts[parts].plot.barh(stacked=True, ax=right, width=0.7,
                            color=["#8172B3", "#CCB974", "#937860", "#C44E52", "#DD8452"][:len(parts)])
    right.set_xlabel("rows")
    right.set_title("Rows not kept, by reason")
    right.legend(title="reason", fontsize=8, loc="lower right")
    fig.suptitle("Every row read is kept, merged, a duplicate, suppressed or quarantined "
                 "(or kept by the other mapping of its file)")
    fig.tight_layout()
    return fig


def plot_before_after(quality: pd.DataFrame, *, metric_before: str = "conformity_before",
                      metric_after: str = "validity_after", types=("phone", "email", "name", "date",
                                                                      "category", "boolean"), ax=None):
    """Per standardised field: share in standard form before cleaning vs valid after."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    q = quality[quality["type"].isin(types)].copy()
    q["field"] = q["channel"] + "." + q["field"]
    long = q.melt(id_vars=["field"], value_vars=[metric_before, metric_after], var_name="when", value_name="share")
    long["when"] = long["when"].map({metric_before: "before: already in standard form",
                                     metric_after: "after: valid (share of source values)"})
    ax = ax or plt.subplots(figsize=(9, max(4, 0.28 * q["field"].nunique())))[1]
    sns.barplot(data=long, y="field", x="share", hue="when", ax=ax, palette=["#C44E52", "#55A868"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the values present in the source")
    ax.set_ylabel("channel.field")
    ax.set_title("Standard form before cleaning vs valid after cleaning")
    ax.legend(title="", loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)
    return ax


def plot_completeness(quality: pd.DataFrame, ax=None):
    """Heat map of completeness after cleaning: channels × field types (mean over fields)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    piv = quality.pivot_table(index="channel", columns="type", values="completeness_after", aggfunc="mean")
    ax = ax or plt.subplots(figsize=(9, 4.5))[1]
    sns.heatmap(piv, annot=True, fmt=".0%", cmap="RdYlGn", vmin=0, vmax=1, ax=ax,
                cbar_kws={"label": "completeness after cleaning"})
    ax.set_title("Completeness by channel and field type (blank = type not in channel)")
    ax.set_xlabel("field type")
    ax.set_ylabel("channel")
    return ax

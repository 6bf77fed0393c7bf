"""Data-quality report: completeness, validity, uniqueness, consistency — before and after cleaning.

The clean stage records raw facts per field (``interim/quality/field_quality.parquet``);
this module turns them into rates, evaluates the declarative consistency rules of the
cleaning configuration, and draws the figures the ``02_clean`` notebook shows.

Definitions (per channel and field):

- completeness: share of rows with a value (before: not blank/``null``/``-``; after: not NA);
- conformity (before): share of present values already in the standard form cleaning produces;
- validity (after): share of present values that pass the type's check (E.164 phone,
  valid e-mail, parsed timestamp, known category, ...);
- uniqueness: distinct values / present values;
- consistency: rows that break a cross-field rule, and timestamps outside the plausible range.

Example:
    >>> from workbench.quality import field_quality    # doctest: +SKIP
    >>> field_quality().head()                           # doctest: +SKIP
"""

from __future__ import annotations

import json

import pandas as pd

from .clean import load_cleaned, load_cleaning_config
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
    out["validity_after"] = q["valid_after"] / q["present_after"].where(q["present_after"] > 0)
    out["uniqueness_after"] = q["distinct_after"] / q["present_after"].where(q["present_after"] > 0)
    out["placeholders"] = q["placeholders"]
    out["out_of_range"] = q["inconsistent"]
    out["top_invalid_masked"] = q["top_invalid"]
    return out


def consistency_report(paths: Paths | None = None, config: dict | None = None) -> pd.DataFrame:
    """Evaluate every consistency rule on the cleaned tables: rows checked and violations."""
    paths = paths or get_paths()
    cfg = config or load_cleaning_config()
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
    """Per channel: rows read by ingest, quarantined at ingest and clean, duplicates, merged, kept."""
    paths = paths or get_paths()
    ing = json.loads((paths.metrics / "ingest.json").read_text(encoding="utf-8"))["channels"]
    cl = json.loads((paths.metrics / "clean.json").read_text(encoding="utf-8"))["channels"]
    rows = []
    for ch in ing:
        c = cl.get(ch, {})
        rows.append({"channel": ch, "read": ing[ch]["read"], "quarantined_ingest": ing[ch]["quarantined"],
                     "quarantined_clean": c.get("quarantined", 0), "exact_duplicates": c.get("exact_duplicates", 0),
                     "merged": c.get("merged", 0), "kept": c.get("kept", 0)})
    df = pd.DataFrame(rows).set_index("channel")
    df["reconciles"] = df["read"] == df[["quarantined_ingest", "quarantined_clean", "exact_duplicates",
                                          "merged", "kept"]].sum(axis=1)
    return df


# ----------------------------------------------------------------------------- figures
def plot_stage_counts(counts: pd.DataFrame, ax=None):
    """Horizontal stacked bars: what happened to every row read, per channel (log scale)."""
    import matplotlib.pyplot as plt

    parts = ["kept", "merged", "exact_duplicates", "quarantined_ingest", "quarantined_clean"]
    ax = ax or plt.subplots(figsize=(9, 4.5))[1]
    counts[parts].plot.barh(stacked=True, ax=ax, logx=True, width=0.75,
                            color=["#4C72B0", "#8172B3", "#CCB974", "#C44E52", "#DD8452"])
    ax.set_xlabel("rows (log scale)")
    ax.set_ylabel("channel")
    ax.set_title("Every row read: kept, merged, duplicate or quarantined")
    ax.legend(title="outcome", loc="lower right", fontsize=8)
    return ax


def plot_before_after(quality: pd.DataFrame, *, metric_before: str = "conformity_before",
                      metric_after: str = "validity_after", types=("phone", "email", "name", "date",
                                                                      "category", "boolean"), ax=None):
    """Per standardised field: share in standard form before cleaning vs valid after."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    q = quality[quality["type"].isin(types)].copy()
    q["field"] = q["channel"] + "." + q["field"]
    long = q.melt(id_vars=["field"], value_vars=[metric_before, metric_after], var_name="when", value_name="share")
    long["when"] = long["when"].map({metric_before: "before: already standard", metric_after: "after: valid"})
    ax = ax or plt.subplots(figsize=(9, max(4, 0.28 * q["field"].nunique())))[1]
    sns.barplot(data=long, y="field", x="share", hue="when", ax=ax, palette=["#C44E52", "#55A868"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of present values")
    ax.set_ylabel("channel.field")
    ax.set_title("Standard form before cleaning vs valid after cleaning")
    ax.legend(title="", loc="lower right", fontsize=8)
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

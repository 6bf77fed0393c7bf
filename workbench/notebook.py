"""Small helpers every notebook uses: one look for figures and tables, masking for display.

Example:
    >>> from workbench import notebook as nb
    >>> paths = nb.setup()          # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd

from .config import Paths, get_paths
from .i18n import DEFAULT_LANGUAGE, check_language, t, use_cjk_font


def setup(data_dir: str | None = None, reports_dir: str | None = None) -> Paths:
    """Set the figure style and pandas display options; return the paths of this run."""
    import matplotlib
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)
    # Chinese glyphs: the Noto Sans CJK font the project's own dependencies install
    # (noto-cjk-sans-otc), after DejaVu Sans for Latin text: never empty boxes
    use_cjk_font()
    matplotlib.rcParams["figure.dpi"] = 100
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 80)
    return get_paths(data_dir, reports_dir).ensure()


def percent(df: pd.DataFrame, columns: list[str]):
    """A styler that shows the given 0–1 columns as percentages."""
    return df.style.format({c: "{:.1%}" for c in columns}, na_rep="–")


def absent(text: str, language: str = DEFAULT_LANGUAGE) -> None:
    """Say in the report that a section has nothing to show for this brand's data (and why),
    instead of failing or drawing an empty figure.

    >>> absent("No orders in this brand's data: RFM needs purchases.")   # doctest: +SKIP
    """
    from IPython.display import Markdown, display

    display(Markdown(f"> **{t('absent.prefix', check_language(language))}** {text}"))


def heading(key: str, language: str = DEFAULT_LANGUAGE, *, level: int = 2, intro: str | None = None) -> None:
    """Show a report heading (and an optional introduction) from the catalogue of
    :mod:`workbench.i18n`, in the report's language.

    >>> heading("report.rfm", "zh", intro="report.rfm_intro")   # doctest: +SKIP
    """
    from IPython.display import Markdown, display

    text = "#" * level + " " + t(key, language)
    if intro is not None:
        text += "\n\n" + t(intro, language)
    display(Markdown(text))


def table(df: pd.DataFrame, section: str, language: str = DEFAULT_LANGUAGE, *, formats: dict | None = None,
          names_in: tuple[str, ...] = (), index: bool = False):
    """A table as the report shows it: numbers formatted (``formats``: column -> format string,
    applied before translation), then column names and the values of ``names_in`` columns in
    ``language`` (:func:`workbench.i18n.frame`), as a styler without the index unless ``index``.

    >>> import pandas as pd
    >>> table(pd.DataFrame({"lift": [0.0123], "verdict": ["lift"]}), "campaign", "zh",
    ...       formats={"lift": "{:+.3f}"}, names_in=("verdict",)).data.to_dict("records")
    [{'提升': '+0.012', '结论': '有提升'}]
    """
    from .i18n import frame

    out = df.copy()
    for c, f in (formats or {}).items():
        if c in out.columns:
            out[c] = [("–" if pd.isna(v) else f.format(v)) for v in out[c]]
    styler = frame(out, section, check_language(language), names_in=names_in).style
    return styler if index else styler.hide(axis="index")

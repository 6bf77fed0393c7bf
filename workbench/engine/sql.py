"""The rules the engines share, as SQL text: one definition of each, in ``workbench/engine/rules/``.

Each ``<name>.sql`` is one query over named tables (its header says which) with ``{parameters}``
filled in by :func:`rule`. The Spark engine runs them as Spark SQL over the canonical Parquet; the
local engine's pandas/numpy code computes the same rules, and the equality tests
(``tests/test_spark_engine.py``) pin both engines to the same answers on the test sample.

Example:
    >>> print(rule("purchases").splitlines()[6])
    WITH o AS (
    >>> timestamp_literal("2026-06-01")
    "TIMESTAMP '2026-06-01 00:00:00'"
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from ..timeutil import to_utc

__all__ = ["RULES_DIR", "rule", "rule_names", "string_literal", "timestamp_literal"]

RULES_DIR = Path(__file__).resolve().parent / "rules"


def rule_names() -> list[str]:
    """The rules there are (file names without ``.sql``), sorted.

    >>> "rfm_scores" in rule_names()
    True
    """
    return sorted(p.stem for p in RULES_DIR.glob("*.sql"))


@lru_cache(maxsize=None)
def _text(name: str) -> str:
    return (RULES_DIR / f"{name}.sql").read_text(encoding="utf-8")


def rule(name: str, **params: Any) -> str:
    """The SQL of rule ``name`` with its ``{parameters}`` filled in (each must be given, no others).

    >>> rule("rfm_scores", bins=5)
    Traceback (most recent call last):
    ...
    ValueError: The rule 'rfm_scores' needs the parameters ['bins', 'no_purchase']. Got ['bins'] instead.
    """
    if name not in rule_names():
        raise ValueError(f"The 'name' parameter must be one of {rule_names()}. Got {name!r} instead.")
    text = _text(name)
    needed = sorted({f for _, f, _, _ in string.Formatter().parse(text) if f})
    if sorted(params) != needed:
        raise ValueError(f"The rule {name!r} needs the parameters {needed}. Got {sorted(params)} instead.")
    return text.format(**params)


def timestamp_literal(value: Any) -> str:
    """A UTC instant as a SQL timestamp literal (the engines' sessions run in UTC).

    >>> timestamp_literal(pd.Timestamp("2026-06-01 08:00", tz="Asia/Shanghai"))
    "TIMESTAMP '2026-06-01 00:00:00'"
    """
    ts = to_utc(value)
    if ts is None or pd.isna(ts):
        raise ValueError(f"The 'value' parameter must be a date or time. Got {value!r} instead.")
    return f"TIMESTAMP '{ts.tz_convert('UTC').tz_localize(None).isoformat(sep=' ')}'"


def string_literal(value: str) -> str:
    """A Spark SQL string literal (quotes and backslashes escaped with a backslash, Spark's rule).

    >>> print(string_literal("Can't Lose"))
    'Can\\'t Lose'
    """
    if not isinstance(value, str):
        raise TypeError(f"The 'value' parameter must be a string. Got {type(value).__name__} instead.")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

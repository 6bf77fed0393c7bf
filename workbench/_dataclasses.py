"""Building settings dataclasses from plain dicts (YAML/JSON) with errors that say what is allowed."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def build(cls, spec: Any, where: str, error: type[Exception] = ValueError):
    """``cls(**spec)``, but unknown or missing keys raise ``error`` naming ``where`` and the allowed keys.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class P:
    ...     x: int
    >>> build(P, {"x": 1}, "point")
    P(x=1)
    """
    check_keys(spec, cls, where, error)
    try:
        return cls(**spec)
    except TypeError as exc:  # a required key is missing
        raise error(f"{where}: {exc}") from None


def check_keys(spec: Any, cls, where: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` unless ``spec`` is a dict whose keys are all fields of ``cls``."""
    if not isinstance(spec, dict):
        raise error(f"{where}: expected a mapping. Got {spec!r} instead.")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise error(f"{where}: unknown keys {unknown}. Allowed: {sorted(allowed)}.")

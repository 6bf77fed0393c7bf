"""OneID settings: identifiers and their kinds, fuzzy attributes, blocking, threshold.

A :class:`IdentitySettings` round-trips to YAML and JSON (``from_dict(s.to_dict()) == s``)
and validates on construction, so a typo fails early with what was expected and what was
given.

Example:
    >>> s = IdentitySettings.from_dict({
    ...     "identifiers": [{"name": "member_id", "kind": "unique"}, {"name": "phone", "kind": "strong"}],
    ...     "attributes": {"name": {"comparison": "jaro_winkler"}},
    ...     "match_threshold": 0.99})
    >>> [i.name for i in s.identifiers], s.priority("phone")
    (['member_id', 'phone'], 1)
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._dataclasses import build, check_keys
from ..config import PACKAGE_DIR

KINDS = ("unique", "strong", "weak")
#: comparison kinds of a fuzzy attribute (see :mod:`workbench.identity.comparisons` for their levels)
COMPARISONS = ("exact", "jaro_winkler", "levenshtein", "date", "name", "forename", "surname", "postcode",
               "house_number", "address", "numeric")
DEFAULT_SETTINGS_PATH = PACKAGE_DIR / "conf" / "identity.yaml"


class SettingsError(ValueError):
    """Identity settings that cannot work, with what was expected and what was given."""


@dataclass
class IdentifierSpec:
    """One identifier: its kind, how many persons one value may join, an optional pattern."""

    name: str
    kind: str
    max_persons: int = 1
    pattern: str | None = None
    # a value one or two characters off another (a typed id number, a phone with two digits
    # swapped) is fuzzy evidence in the probabilistic stage; None: yes for strong identifiers
    typos: bool | None = None

    @property
    def compares_typos(self) -> bool:
        """Whether the probabilistic stage compares this identifier's values with an edit distance."""
        return self.kind == "strong" and self.typos is not False

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise SettingsError(f"Identifier '{self.name}': kind must be one of {list(KINDS)}. "
                                f"Got {self.kind!r} instead.")
        if not isinstance(self.max_persons, int) or self.max_persons < 1:
            raise SettingsError(f"Identifier '{self.name}': max_persons must be a positive integer. "
                                f"Got {self.max_persons!r} instead.")
        if self.typos is not None and not isinstance(self.typos, bool):
            raise SettingsError(f"Identifier '{self.name}': typos must be true, false or null. "
                                f"Got {self.typos!r} instead.")
        if self.typos and self.kind != "strong":
            raise SettingsError(f"Identifier '{self.name}': only a strong identifier can take typos (a unique one "
                                f"conflicts, a weak one is no evidence on its own). Got kind {self.kind!r}.")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise SettingsError(f"Identifier '{self.name}': pattern {self.pattern!r} is not a regular "
                                    f"expression ({exc}).") from None


@dataclass
class AttributeSpec:
    """A fuzzy attribute compared by the probabilistic stage.

    ``comparison`` is its kind: ``exact``, ``jaro_winkler`` / ``levenshtein`` (``thresholds``:
    similarities in (0, 1) / edit distances), ``name`` / ``forename`` / ``surname`` (exact,
    Jaro-Winkler levels; a forename and a surname also catch each other swapped), ``date``
    (exact, transposed day and month, one field off, one typed character, a month, a year, ten
    years apart), ``postcode`` (full, one character, prefix of ``thresholds[0]`` characters,
    default 3), ``house_number`` (exact), ``address`` (free text: exact, Jaro-Winkler 0.9, 0.8),
    ``numeric`` (equal, absolute difference within ``thresholds``, default [1, 5]).
    """

    comparison: str = "exact"
    thresholds: list[float] | None = None
    term_frequency: bool = False  # weigh a match by how rare the value is (common names count less)

    def validate(self, name: str) -> None:
        if self.comparison not in COMPARISONS:
            raise SettingsError(f"Attribute '{name}': comparison must be one of {list(COMPARISONS)}. "
                                f"Got {self.comparison!r} instead.")
        if not isinstance(self.term_frequency, bool):
            raise SettingsError(f"Attribute '{name}': term_frequency must be true or false. "
                                f"Got {self.term_frequency!r} instead.")
        for t in self.thresholds or []:
            if not isinstance(t, (int, float)) or isinstance(t, bool):
                raise SettingsError(f"Attribute '{name}': thresholds must be numbers. Got {t!r} instead.")
            if self.comparison == "jaro_winkler" and not 0 < t < 1:
                raise SettingsError(f"Attribute '{name}': thresholds must lie in (0, 1). Got {t!r} instead.")
            if self.comparison in ("levenshtein", "postcode") and (t < 1 or int(t) != t):
                raise SettingsError(f"Attribute '{name}': thresholds of a {self.comparison} comparison must be "
                                    f"positive whole numbers. Got {t!r} instead.")
            if self.comparison == "numeric" and t <= 0:
                raise SettingsError(f"Attribute '{name}': thresholds of a numeric comparison must be positive. "
                                    f"Got {t!r} instead.")


@dataclass
class SourceSpec:
    """Which column of one table is which identifier (``column: identifier``) or attribute."""

    identifiers: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class IdentitySettings:
    """Everything identity resolution needs to know. See ``workbench/conf/identity.yaml``."""

    identifiers: list[IdentifierSpec]
    attributes: dict[str, AttributeSpec] = field(default_factory=dict)
    blocked_values: list[str] = field(default_factory=list)
    blocking_rules: list[list[str]] = field(default_factory=list)
    match_threshold: float = 0.90
    max_links_per_person: int = 25
    random_seed: int = 42
    sources: dict[str, SourceSpec] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "IdentitySettings":
        check_keys(d, cls, "Identity settings", SettingsError)
        if "identifiers" not in d:
            raise SettingsError("Identity settings need `identifiers` (a list of {name, kind}).")
        ids = [_build(IdentifierSpec, x, "identifier") for x in d["identifiers"]]
        attrs = {k: _build(AttributeSpec, v or {}, f"attribute '{k}'") for k, v in (d.get("attributes") or {}).items()}
        srcs = {k: _build(SourceSpec, v or {}, f"source '{k}'") for k, v in (d.get("sources") or {}).items()}
        s = cls(identifiers=ids, attributes=attrs, sources=srcs,
                **{k: d[k] for k in ("blocked_values", "blocking_rules", "match_threshold",
                                     "max_links_per_person", "random_seed") if k in d})
        s.validate()
        return s

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> "IdentitySettings":
        p = Path(path) if path else DEFAULT_SETTINGS_PATH
        return cls.from_dict(yaml.safe_load(p.read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    # ------------------------------------------------------------------ checks and lookups
    def validate(self) -> None:
        names = [i.name for i in self.identifiers]
        if not names:
            raise SettingsError("Identity settings need at least one identifier.")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SettingsError(f"Identifiers listed twice: {dupes}.")
        for i in self.identifiers:
            i.validate()
        for name, a in self.attributes.items():
            a.validate(name)
        if not isinstance(self.match_threshold, (int, float)) or not 0 < self.match_threshold < 1:
            raise SettingsError(f"The 'match_threshold' setting must lie in (0, 1). Got {self.match_threshold!r} instead.")
        if not isinstance(self.max_links_per_person, int) or self.max_links_per_person < 1:
            raise SettingsError(f"The 'max_links_per_person' setting must be a positive integer. "
                                f"Got {self.max_links_per_person!r} instead.")
        clash = sorted(set(names) & set(self.attributes))
        if clash:
            raise SettingsError(f"{clash} are named both as identifiers and as attributes: give each its own name.")
        comparable = sorted(self.attributes) + [i.name for i in self.identifiers if i.compares_typos]
        for rule in self.blocking_rules:
            bad = [c for c in rule if c not in comparable]
            if bad:
                raise SettingsError(f"Blocking rule {rule} names {bad}, which are not attributes. "
                                    f"Attributes: {sorted(self.attributes)}.")
        for src, spec in self.sources.items():
            for column, target in spec.identifiers.items():
                for t in (target if isinstance(target, list) else [target]):
                    ident = str(t).split("@", 1)[0]
                    if ident not in names:
                        raise SettingsError(f"Source '{src}', column '{column}': unknown identifier {ident!r}. "
                                            f"Known identifiers: {names}.")
            for column, attr in spec.attributes.items():
                if attr not in self.attributes:
                    raise SettingsError(f"Source '{src}', column '{column}': unknown attribute {attr!r}. "
                                        f"Known attributes: {sorted(self.attributes)}.")

    def identifier(self, name: str) -> IdentifierSpec:
        for i in self.identifiers:
            if i.name == name:
                return i
        raise SettingsError(f"Unknown identifier {name!r}. Known identifiers: {[i.name for i in self.identifiers]}.")

    def priority(self, name: str) -> int:
        """0 for the strongest identifier; higher numbers yield first in a conflict."""
        return [i.name for i in self.identifiers].index(name)

    def names_of_kind(self, *kinds: str) -> list[str]:
        return [i.name for i in self.identifiers if i.kind in kinds]


def _build(cls, spec: Any, where: str):
    return build(cls, spec, f"The {where}", SettingsError)

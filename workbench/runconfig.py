"""The settings a run uses: resolved once, recorded beside the outputs, handed down.

Four kinds of settings shape a run:

===========  ==============================  =========================================  ====================
settings     package default                 introduced by (notebook parameter)         recorded as
===========  ==============================  =========================================  ====================
mappings     ``workbench/channels/*.yaml``   ingest (``mappings_dir``)                   ``mappings.json``
cleaning     ``workbench/conf/cleaning.yaml`` clean (``cleaning_config``)               ``cleaning.json``
identity     ``workbench/conf/identity.yaml`` identity (``identity_settings``)          ``identity.json``
analysis     ``workbench/conf/analysis.yaml`` canonical layer (``analysis_settings``)   ``analysis.json``
engine       ``workbench/conf/engine.yaml``   ``workbench run --engine`` / a stage's     ``engine.json``
                                             ``engine`` parameter
===========  ==============================  =========================================  ====================

The stage that introduces a setting takes it from its parameter (a path) or the package
default and records what it used in ``data/interim/settings/``; every later stage — and
``workbench forget`` / ``access`` / the explorers — reads the recorded copy, never the
package default. So a brand's own mappings and identity settings, given once to the
stage that uses them first, carry through the whole run.

Example:
    >>> import tempfile
    >>> from workbench.config import get_paths
    >>> paths = get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())
    >>> a = resolve_analysis(paths)                       # nothing recorded: the package default
    >>> a.peak_days
    ['06-18', '11-11']
    >>> _ = record(paths, "analysis", AnalysisSettings(peak_days=["11-29"]).to_dict())
    >>> resolve_analysis(paths).peak_days                 # later stages read what was recorded
    ['11-29']
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._dataclasses import check_keys
from .config import PACKAGE_DIR, Paths

__all__ = ["SETTING_NAMES", "AnalysisSettings", "RunConfig", "load_cleaning_config", "record", "recorded",
           "resolve_analysis", "resolve_cleaning", "resolve_engine", "resolve_identity", "resolve_mappings",
           "settings_dir"]

SETTING_NAMES = ("mappings", "cleaning", "identity", "analysis", "engine")
DEFAULT_CLEANING_CONFIG = PACKAGE_DIR / "conf" / "cleaning.yaml"
DEFAULT_ANALYSIS_SETTINGS = PACKAGE_DIR / "conf" / "analysis.yaml"


class SettingsNotFound(FileNotFoundError):
    """A stage needs settings an earlier stage should have recorded."""


def settings_dir(paths: Paths) -> Path:
    """``data/interim/settings``: the settings each stage used, as JSON."""
    return paths.interim / "settings"


def record(paths: Paths, name: str, data: Any) -> Path:
    """Write ``data`` (plain JSON) as the recorded ``name`` settings; returns the file.

    An unchanged file is not rewritten, so a run that changes nothing writes nothing.
    """
    if name not in SETTING_NAMES:
        raise ValueError(f"The 'name' parameter must be one of {list(SETTING_NAMES)}. Got {name!r} instead.")
    d = settings_dir(paths)
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"{name}.json"
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if f.exists() and f.read_text(encoding="utf-8") == text:
        return f   # the same settings: leave the file (and its time) alone, a reused run writes nothing
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, f)
    return f


def recorded(paths: Paths, name: str) -> Any | None:
    """The recorded ``name`` settings (plain JSON), or None when no stage recorded them yet."""
    f = settings_dir(paths) / f"{name}.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.exists() else None


# ----------------------------------------------------------------------------- cleaning
def load_cleaning_config(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The cleaning settings (currency rates, placeholders, ...) from YAML (default: the package's)."""
    from .mapping import MappingError

    p = Path(path) if path else DEFAULT_CLEANING_CONFIG
    if not p.exists():
        raise MappingError(f"Cleaning settings {p} not found.")
    cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
    required = ["base_currency", "currency_rates", "default_phone_region", "region_timezones", "placeholders"]
    missing = [k for k in required if k not in (cfg or {})]
    if missing:
        raise MappingError(f"{p}: missing keys {missing}. Present keys: {sorted(cfg or {})}.")
    return cfg


# ----------------------------------------------------------------------------- analysis
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


@dataclass
class AnalysisSettings:
    """Brand facts the analysis needs and the data cannot tell (``workbench/conf/analysis.yaml``).

    - ``peak_days``: the brand's big sales days as month-day (the sample's: 6.18 and
      Double 11); a model feature and a report fact.
    - ``local_timezone``: the zone calendar days are counted in (peak days, CLV periods); None:
      the time zone of the brand's orders mappings (else of its first mapping).
    - ``problem_ticket_categories``: service-ticket category codes that signal a problem.
    - ``session_gap_minutes``: a gap longer than this starts a new digital session.

    >>> AnalysisSettings.from_dict({"peak_days": ["6-18"]})
    Traceback (most recent call last):
    ...
    ValueError: The 'peak_days' setting must list month-days such as '11-11'. Got ['6-18'] instead.
    """

    peak_days: list[str] = field(default_factory=list)
    local_timezone: str | None = None
    problem_ticket_categories: list[str] = field(default_factory=list)
    session_gap_minutes: int = 30

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "AnalysisSettings":
        d = dict(d or {})
        check_keys(d, cls, "Analysis settings", ValueError)
        s = cls(**d)
        s.validate()
        return s

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None = None) -> "AnalysisSettings":
        p = Path(path) if path else DEFAULT_ANALYSIS_SETTINGS
        if not p.exists():
            raise FileNotFoundError(f"Analysis settings {p} not found.")
        return cls.from_dict(yaml.safe_load(p.read_text(encoding="utf-8")) or {})

    def validate(self) -> None:
        from zoneinfo import ZoneInfo

        days = [str(x) for x in self.peak_days]
        if not isinstance(self.peak_days, list) or not all(_MONTH_DAY.match(x) for x in days):
            raise ValueError(f"The 'peak_days' setting must list month-days such as '11-11'. "
                             f"Got {self.peak_days!r} instead.")
        try:
            if self.local_timezone is not None:
                ZoneInfo(str(self.local_timezone))
        except Exception:
            raise ValueError(f"The 'local_timezone' setting must be an IANA zone such as 'Asia/Shanghai'. "
                             f"Got {self.local_timezone!r} instead.") from None
        if not isinstance(self.session_gap_minutes, int) or self.session_gap_minutes < 1:
            raise ValueError(f"The 'session_gap_minutes' setting must be a positive whole number. "
                             f"Got {self.session_gap_minutes!r} instead.")
        if not isinstance(self.problem_ticket_categories, list):
            raise ValueError(f"The 'problem_ticket_categories' setting must be a list of category codes. "
                             f"Got {self.problem_ticket_categories!r} instead.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- resolution
def resolve_mappings(paths: Paths, mappings_dir: str | os.PathLike | None = None, *,
                     introduce: bool = False) -> dict:
    """Channel mappings: from ``mappings_dir`` when given; else the recorded ones (unless this
    stage ``introduce``\\ s them), else the package's."""
    from .mapping import ChannelMapping, check_mappings, load_mappings

    if mappings_dir is not None:
        return load_mappings(mappings_dir)
    rec = None if introduce else recorded(paths, "mappings")
    if rec is None:
        return load_mappings()
    out = {c: ChannelMapping.from_dict(d) for c, d in rec.items()}
    check_mappings(out)
    return out


def resolve_cleaning(paths: Paths, config: str | os.PathLike | dict | None = None, *,
                     introduce: bool = False) -> dict[str, Any]:
    """Cleaning settings: the given dict or file; else the recorded ones (unless introduced here);
    else the package's."""
    if isinstance(config, dict):
        return config
    if config is not None:
        return load_cleaning_config(config)
    rec = None if introduce else recorded(paths, "cleaning")
    return rec if rec is not None else load_cleaning_config()


def resolve_identity(paths: Paths, settings: Any = None, *, introduce: bool = False):
    """Identity settings: given object or file; else the recorded ones (unless introduced here);
    else the package's."""
    from .identity.settings import IdentitySettings

    if isinstance(settings, IdentitySettings):
        return settings
    if settings is not None:
        return IdentitySettings.from_yaml(settings)
    rec = None if introduce else recorded(paths, "identity")
    return IdentitySettings.from_dict(rec) if rec is not None else IdentitySettings.from_yaml(None)


def resolve_analysis(paths: Paths, settings: Any = None, *, introduce: bool = False) -> AnalysisSettings:
    """Analysis settings: given object or file; else the recorded ones (unless introduced here);
    else the package's."""
    if isinstance(settings, AnalysisSettings):
        return settings
    if settings is not None:
        return AnalysisSettings.from_yaml(settings)
    rec = None if introduce else recorded(paths, "analysis")
    return AnalysisSettings.from_dict(rec) if rec is not None else AnalysisSettings.from_yaml(None)


def resolve_engine(paths: Paths, settings: Any = None):
    """Engine settings (:class:`workbench.engine.EngineSettings`): the given object, mapping or file;
    else the recorded ones (``workbench run --engine`` records them for the run); else the
    package's (``engine: local``).

    >>> import tempfile
    >>> from workbench.config import get_paths
    >>> resolve_engine(get_paths(tempfile.mkdtemp(), tempfile.mkdtemp())).engine
    'local'
    >>> resolve_engine(None, {"engine": "spark", "master": "local[4]"}).master
    'local[4]'
    """
    from .engine.settings import EngineSettings

    if isinstance(settings, EngineSettings):
        return settings
    if isinstance(settings, dict):
        return EngineSettings.from_dict(settings)
    if settings is not None:
        return EngineSettings.from_yaml(settings)
    rec = recorded(paths, "engine") if paths is not None else None
    return EngineSettings.from_dict(rec) if rec is not None else EngineSettings.from_yaml(None)


@dataclass
class RunConfig:
    """Everything a stage after the identity stage needs to know, read once from what the
    earlier stages recorded (see the module docstring).

    >>> cfg = RunConfig.load()                     # doctest: +SKIP
    >>> cfg.base_currency, sorted(cfg.mappings)[:2]  # doctest: +SKIP
    ('CNY', ['app_log', 'members'])
    """

    paths: Paths
    mappings: dict
    cleaning: dict[str, Any]
    identity: Any
    analysis: AnalysisSettings
    engine: Any = None   # EngineSettings; None: the recorded ones, else the package's (local)

    def __post_init__(self) -> None:
        if self.engine is None or isinstance(self.engine, dict):
            self.engine = resolve_engine(self.paths, self.engine)

    @classmethod
    def load(cls, paths: Paths | None = None, *, analysis_settings: Any = None, engine: Any = None) -> "RunConfig":
        from .config import get_paths

        paths = paths or get_paths()
        return cls(paths=paths, mappings=resolve_mappings(paths), cleaning=resolve_cleaning(paths),
                   identity=resolve_identity(paths), analysis=resolve_analysis(paths, analysis_settings),
                   engine=resolve_engine(paths, engine))

    @property
    def base_currency(self) -> str:
        return str(self.cleaning.get("base_currency", "CNY"))

    @property
    def local_timezone(self) -> str:
        """The zone calendar days are counted in: the analysis settings', else the time zone of the
        orders mappings (the most common), else of the first mapping."""
        if self.analysis.local_timezone:
            return self.analysis.local_timezone
        zones = [m.timezone for m in self.mappings.values() if m.role == "orders"] or \
            [m.timezone for m in self.mappings.values()]
        return max(dict.fromkeys(zones), key=zones.count) if zones else "UTC"

    def roles(self) -> dict[str, str]:
        """channel -> role."""
        return {c: m.role for c, m in self.mappings.items()}

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON (what a run records)."""
        return {"mappings": {c: m.to_dict() for c, m in self.mappings.items()}, "cleaning": self.cleaning,
                "identity": self.identity.to_dict(), "analysis": self.analysis.to_dict(),
                "engine": self.engine.to_dict()}

"""Which engine runs the heavy stages, and where: the ``engine`` settings of a run.

``engine: local`` (the default) computes in this Python process with pandas and numpy;
``engine: spark`` runs the stages that have a Spark implementation (:mod:`workbench.engine`)
as Spark SQL on ``master`` (``local[2]``, ``spark://…``, ``yarn``, ``k8s://…``) or on a Spark
Connect server (``remote: sc://host:15002``). Both read the same canonical Parquet and the same
settings and write the same Parquet, so notebooks and reports do not know which one ran.

Example:
    >>> s = EngineSettings.from_dict({"engine": "spark", "master": "local[2]"})
    >>> s.engine, s.is_spark
    ('spark', True)
    >>> EngineSettings.from_dict(s.to_dict()) == s           # round-trips through JSON / YAML
    True
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._dataclasses import check_keys
from ..config import PACKAGE_DIR

__all__ = ["DEFAULT_ENGINE_SETTINGS", "ENGINES", "EngineSettings"]

ENGINES = ("local", "spark")
DEFAULT_ENGINE_SETTINGS = PACKAGE_DIR / "conf" / "engine.yaml"
_MEMORY = re.compile(r"^[1-9][0-9]*[kmgt]$", re.IGNORECASE)
_MASTER = re.compile(r"^(local(\[([1-9][0-9]*|\*)(,[1-9][0-9]*)?\])?|spark://\S+|yarn|k8s://\S+|mesos://\S+)$")


@dataclass
class EngineSettings:
    """The ``engine`` settings (``workbench/conf/engine.yaml``; see the module docstring).

    >>> EngineSettings.from_dict({"engine": "dask"})
    Traceback (most recent call last):
    ...
    ValueError: The 'engine' setting must be one of ['local', 'spark']. Got 'dask' instead.
    """

    engine: str = "local"
    master: str = "local[2]"
    remote: str | None = None
    app_name: str = "workbench"
    driver_memory: str = "2g"
    shuffle_partitions: int = 8
    conf: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "EngineSettings":
        """Settings from a plain mapping (missing keys: the defaults); validated."""
        d = dict(d or {})
        check_keys(d, cls, "Engine settings", ValueError)
        s = cls(**d)
        s.validate()
        return s

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None = None) -> "EngineSettings":
        """Settings from a YAML file (default: the package's ``conf/engine.yaml``, ``engine: local``)."""
        p = Path(path) if path else DEFAULT_ENGINE_SETTINGS
        if not p.exists():
            raise FileNotFoundError(f"Engine settings {p} not found.")
        return cls.from_dict(yaml.safe_load(p.read_text(encoding="utf-8")) or {})

    @property
    def is_spark(self) -> bool:
        return self.engine == "spark"

    def validate(self) -> None:
        """Raise ValueError naming the first setting that is not allowed."""
        if self.engine not in ENGINES:
            raise ValueError(f"The 'engine' setting must be one of {list(ENGINES)}. Got {self.engine!r} instead.")
        if not isinstance(self.master, str) or not _MASTER.match(self.master):
            raise ValueError("The 'master' setting must be a Spark master URL such as 'local[2]', "
                             f"'spark://host:7077', 'yarn' or 'k8s://https://host:443'. Got {self.master!r} instead.")
        if self.remote is not None and (not isinstance(self.remote, str) or not self.remote.startswith("sc://")):
            raise ValueError("The 'remote' setting must be a Spark Connect URL such as 'sc://host:15002', or null. "
                             f"Got {self.remote!r} instead.")
        if not isinstance(self.app_name, str) or not self.app_name.strip():
            raise ValueError(f"The 'app_name' setting must be a non-empty string. Got {self.app_name!r} instead.")
        if not isinstance(self.driver_memory, str) or not _MEMORY.match(self.driver_memory):
            raise ValueError("The 'driver_memory' setting must be a JVM memory size such as '2g' or '512m'. "
                             f"Got {self.driver_memory!r} instead.")
        if isinstance(self.shuffle_partitions, bool) or not isinstance(self.shuffle_partitions, int) \
                or self.shuffle_partitions < 1:
            raise ValueError("The 'shuffle_partitions' setting must be a positive whole number. "
                             f"Got {self.shuffle_partitions!r} instead.")
        if not isinstance(self.conf, dict) or not all(isinstance(k, str) and k.startswith("spark.") for k in self.conf):
            raise ValueError("The 'conf' setting must map Spark setting names ('spark.…') to values. "
                             f"Got {self.conf!r} instead.")

    def spark_conf(self) -> dict[str, str]:
        """The Spark settings a session is built with (``conf`` wins over the named settings).

        >>> EngineSettings(shuffle_partitions=4).spark_conf()["spark.sql.shuffle.partitions"]
        '4'
        """
        out = {"spark.app.name": self.app_name, "spark.driver.memory": self.driver_memory,
               "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
               # the canonical tables' times are UTC instants: read, compare and write them as such
               "spark.sql.session.timeZone": "UTC",
               "spark.sql.execution.arrow.pyspark.enabled": "true",
               "spark.ui.showConsoleProgress": "false"}
        out.update({k: str(v) for k, v in self.conf.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (what a run records)."""
        return asdict(self)

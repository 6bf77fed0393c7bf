"""Engines for the heavy stages: ``local`` (pandas/numpy, this process) or ``spark`` (Spark SQL).

The engine is a run setting (:class:`EngineSettings`, ``workbench/conf/engine.yaml``), recorded
with the run like the mappings and identity settings (:func:`workbench.runconfig.resolve_engine`).
A stage with a Spark implementation reads the same canonical Parquet and settings and writes the
same Parquet either way; its rule is written once, as SQL text (:mod:`workbench.engine.sql`) that
Spark runs and DuckDB runs too, and tests pin both engines to the same answers.

Modules, one per concern (none imports pyspark at import time):

- :mod:`~workbench.engine.settings` — :class:`EngineSettings` (validation, YAML/JSON round-trip);
- :mod:`~workbench.engine.session` — a Spark session from the settings (Java and pyspark
  checked with a message saying what to install; Splink's similarity jar added);
- :mod:`~workbench.engine.sql` — the shared SQL rules and how each engine runs them;
- :mod:`~workbench.engine.spark_rfm`, :mod:`~workbench.engine.spark_360` — the stages on Spark;
- :mod:`~workbench.engine.spark_identity` — OneID's graph and pair scoring on Spark.

Example:
    >>> EngineSettings.from_dict({"engine": "local"}).is_spark
    False
"""

from .settings import DEFAULT_ENGINE_SETTINGS, ENGINES, EngineSettings

__all__ = ["DEFAULT_ENGINE_SETTINGS", "ENGINES", "EngineSettings"]

"""A Spark session for the ``spark`` engine, built from :class:`~workbench.engine.EngineSettings`.

What a fresh machine lacks is said plainly, never as a Py4J traceback: without pyspark (the
``spark`` extra) or without Java the error says what to install. Splink's bundled similarity jar
(``jaro_winkler`` and friends as Spark SQL functions, 29 KB inside the splink wheel) is added to
every local session (and sent to a Spark Connect server as a session artifact), so OneID's Splink
on Spark needs no Maven.

Example:
    >>> from workbench.engine import EngineSettings
    >>> spark = spark_session(EngineSettings(engine="spark"))     # doctest: +SKIP
    >>> spark.range(3).count()                                     # doctest: +SKIP
    3
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

from .settings import EngineSettings

__all__ = ["SparkUnavailable", "check_java", "check_pyspark", "spark_session", "stop_spark"]

JAVA_HINT = ("install Java 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; elsewhere a JDK 17 or 21 "
             "from https://adoptium.net) or set JAVA_HOME to one")
PYSPARK_HINT = "install the Spark extra: pip install -e '.[spark]' (or `make env-spark`, which installs requirements-spark.lock)"


class SparkUnavailable(RuntimeError):
    """The Spark engine cannot start here; the message says what to install."""


def check_pyspark() -> str:
    """The installed pyspark's version, or :class:`SparkUnavailable` saying how to install it."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(f"The Spark engine needs pyspark, which is not installed: {PYSPARK_HINT}.") from None
    return str(pyspark.__version__)


def check_java() -> str:
    """The ``java -version`` line of the Java Spark will use, or :class:`SparkUnavailable` saying
    what to install (Spark 4 needs Java 17 or later)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        where = f"JAVA_HOME={home} has no bin/java" if home else "no 'java' on the PATH"
        raise SparkUnavailable(f"The Spark engine needs Java 17 or later ({where}): {JAVA_HINT}.")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SparkUnavailable(f"The Spark engine needs a working Java 17 or later ({java}: {exc}): {JAVA_HINT}.") from None
    line = (out.stderr or out.stdout).strip().splitlines()[:1]
    version = line[0] if line else ""
    major = _java_major(version)
    if out.returncode != 0 or major is None or major < 17:
        raise SparkUnavailable(f"The Spark engine needs Java 17 or later. Got {version or 'no version'!r} "
                               f"from {java} instead: {JAVA_HINT}.")
    return version


def _java_major(version_line: str) -> int | None:
    """17 from 'openjdk version "17.0.15" 2025-04-15', 8 from '"1.8.0_392"'.

    >>> _java_major('openjdk version "17.0.15" 2025-04-15'), _java_major('java version "1.8.0_392"')
    (17, 8)
    """
    import re

    m = re.search(r'"(\d+)(?:\.(\d+))?', version_line)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def _splink_jar() -> str | None:
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:
        return None
    jar = similarity_jar_location()
    return jar if os.path.exists(jar) else None


#: Spark Connect sessions that already hold splink's jar.
_JAR_SENT: set[str] = set()


def spark_session(settings: EngineSettings) -> Any:
    """The Spark session of ``settings`` (the running one when there is one; else a new one).

    ``remote`` (Spark Connect) wins over ``master``. A local master gets ``SPARK_LOCAL_IP`` =
    127.0.0.1 and the running Python as the workers' (UDFs need the same packages).

    >>> spark_session(EngineSettings(engine="local"))
    Traceback (most recent call last):
    ...
    ValueError: The 'settings' parameter must select the Spark engine (engine: spark). Got engine 'local' instead.
    """
    if not isinstance(settings, EngineSettings):
        raise TypeError(f"The 'settings' parameter must be EngineSettings. Got {type(settings).__name__} instead.")
    if not settings.is_spark:
        raise ValueError("The 'settings' parameter must select the Spark engine (engine: spark). "
                         f"Got engine {settings.engine!r} instead.")
    check_pyspark()
    from pyspark.sql import SparkSession

    conf = settings.spark_conf()
    if settings.remote:
        builder = SparkSession.builder.remote(settings.remote)
        for k, v in conf.items():
            if k not in ("spark.driver.memory", "spark.ui.showConsoleProgress"):   # the server's, not ours
                builder = builder.config(k, v)
        session = builder.getOrCreate()
        jar = _splink_jar()
        if jar and session.session_id not in _JAR_SENT:
            # splink's similarity functions (jaro_winkler …) for OneID on Spark: the jar goes to the
            # server as a session artifact; splink then registers its functions from it
            session.addArtifacts(jar)
            _JAR_SENT.add(session.session_id)
        return session
    check_java()
    if settings.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    jar = _splink_jar()
    if jar:
        jars = ",".join(x for x in (conf.get("spark.jars"), jar) if x)
        conf["spark.jars"] = jars
    builder = SparkSession.builder.master(settings.master)
    for k, v in conf.items():
        builder = builder.config(k, v)
    try:
        return builder.getOrCreate()
    except Exception as exc:   # pyspark's JAVA_GATEWAY_EXITED and friends
        raise SparkUnavailable(f"Spark did not start on master {settings.master!r} ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}). If Java is missing: {JAVA_HINT}.") from exc


def stop_spark() -> None:
    """Stop the running Spark session of this process, if any (tests, benchmarks)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return
    s = SparkSession.getActiveSession()
    if s is not None:
        s.stop()

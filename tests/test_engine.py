"""Engine settings, their recording, and the Spark engine's start-up checks (no Spark started here)."""

from __future__ import annotations

import json

import pytest
import yaml

from workbench.config import get_paths
from workbench.engine import EngineSettings
from workbench.engine.session import SparkUnavailable, check_java, spark_session
from workbench.engine.sql import rule, rule_names, timestamp_literal
from workbench.runconfig import RunConfig, record, resolve_engine


def test_settings_round_trip_yaml_and_json(tmp_path):
    s = EngineSettings(engine="spark", master="spark://head:7077", app_name="brand-x", driver_memory="4g",
                       shuffle_partitions=64, conf={"spark.executor.memory": "8g"})
    f = tmp_path / "engine.yaml"
    f.write_text(yaml.safe_dump(s.to_dict()), encoding="utf-8")
    assert EngineSettings.from_yaml(f) == s
    assert EngineSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.spark_conf()["spark.executor.memory"] == "8g"
    assert s.spark_conf()["spark.sql.session.timeZone"] == "UTC"
    assert EngineSettings.from_yaml(None) == EngineSettings()          # the package default: local
    remote = EngineSettings.from_dict({"engine": "spark", "remote": "sc://spark.example:15002"})
    assert remote.remote == "sc://spark.example:15002"


@pytest.mark.parametrize("bad, message", [
    ({"engine": "dask"}, "The 'engine' setting must be one of ['local', 'spark']. Got 'dask' instead."),
    ({"master": "localhost"}, "The 'master' setting must be a Spark master URL"),
    ({"remote": "http://x:15002"}, "The 'remote' setting must be a Spark Connect URL"),
    ({"driver_memory": "2 GB"}, "The 'driver_memory' setting must be a JVM memory size"),
    ({"shuffle_partitions": 0}, "The 'shuffle_partitions' setting must be a positive whole number"),
    ({"conf": {"executor.memory": "8g"}}, "The 'conf' setting must map Spark setting names"),
    ({"executors": 4}, "Engine settings: unknown keys ['executors']"),
])
def test_bad_settings_say_what_is_allowed(bad, message):
    with pytest.raises(ValueError) as err:
        EngineSettings.from_dict(bad)
    assert message in str(err.value)


def test_engine_is_a_recorded_run_setting(tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    assert resolve_engine(paths).engine == "local"
    record(paths, "engine", EngineSettings(engine="spark", master="local[4]").to_dict())
    assert resolve_engine(paths).master == "local[4]"                   # later stages read what was recorded
    assert resolve_engine(paths, {"engine": "local"}).engine == "local"  # a stage's parameter wins
    cfg = RunConfig(paths, {}, {}, None, None)
    assert cfg.engine.is_spark and cfg.engine.master == "local[4]"


def test_missing_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(SparkUnavailable, match="apt-get install openjdk-17-jre-headless"):
        check_java()


def test_spark_session_needs_the_spark_engine():
    with pytest.raises(ValueError, match="must select the Spark engine"):
        spark_session(EngineSettings())


def test_rules_fill_every_parameter():
    assert {"purchases", "rfm_summary", "rfm_scores", "c360_core", "c360_orders", "c360_events",
            "c360_sessions", "c360_email", "c360_wechat", "c360_tickets",
            "c360_categories", "c360_sales_channels"} <= set(rule_names())
    text = rule("rfm_summary", as_of=timestamp_literal("2026-06-01"))
    assert "TIMESTAMP '2026-06-01 00:00:00'" in text and "{" not in text
    with pytest.raises(ValueError, match="needs the parameters"):
        rule("rfm_summary", as_of="x", bins=5)


def test_run_checks_the_engine_before_it_starts(tmp_path):
    from workbench.runner import run_pipeline

    paths = get_paths(tmp_path / "data", tmp_path / "reports")
    with pytest.raises(ValueError, match="The 'engine' setting must be one of"):
        run_pipeline(paths=paths, engine={"engine": "dask"}, progress=False, log=None)
    assert not (tmp_path / "data").exists()

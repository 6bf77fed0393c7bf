# workbench — every command a newcomer or a scheduler needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SPARK_STAMP := $(VENV)/.spark-stamp
PERSONS ?= 20000
SEED ?= 42
# extra arguments for `workbench run`, e.g. make report ARGS="-p force=true --run-id nightly"
ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help env env-spark lock sample report test test-spark test-spark-connect bench bench-spark lab strip clean-data browser

help:
	@echo "make report  - create .venv if needed, make the sample data if data/raw is empty, run every notebook into reports/<run_id>/"
	@echo "make test    - unit tests + every notebook under nbval, on a small sample made by the test session"
	@echo "make test-spark - only the identity and canonical stages on Spark against the local engine (also in make test)"
	@echo "make test-spark-connect - every Spark test through a local Spark Connect server"
	@echo "make bench   - benchmarks (sample, ingest, clean; OneID at 20k/200k/1M persons beside plain Splink; FEBRL3/4 beside Splink; RFM; KMeans; models; the whole report cold and rerun, results vs a reference) -> reports/benchmarks/*.json"
	@echo "make bench-spark - the Spark engine (local[2]) beside the local engine per stage, time and peak memory (BENCH_PERSONS=200000) -> reports/benchmarks/spark_*.json"
	@echo "make lab     - JupyterLab in the project environment"
	@echo "make strip   - strip outputs from notebooks/ (keeps cell tags)"
	@echo "make browser - install Debian's chromium and fonts-noto-cjk when missing (the screenshot test of the Chinese report)"
	@echo "make lock    - re-resolve requirements.lock from pyproject.toml (LOCK_ARGS=--upgrade to move every pin)"

# The environment is made from the project's own files only: requirements.lock pins every
# package (Python 3.11, Linux; written by `make lock` from pyproject.toml), uv installs it
# exactly (`uv pip sync` also removes what the lock does not list), then workbench itself
# goes in editable without touching the pins. Rebuilt when the lock or pyproject.toml changes.
UV_VERSION := 0.13.9
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the locked environment into $(VENV) ..."
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) 2> >(grep -v "is ignored: it is neither" >&2)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip sync --quiet --compile-bytecode requirements.lock
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip install --quiet --no-deps -e .
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip check --quiet
	@touch $(STAMP)

# Re-resolve the pins from pyproject.toml (keeps current versions where they still fit;
# `make lock LOCK_ARGS=--upgrade` moves everything to the newest allowed release).
lock:
	@test -x $(BIN)/uv || { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra sql --python-version 3.11.7 --python-platform linux --quiet -o requirements.lock $(LOCK_ARGS)
	cp requirements.lock requirements-spark.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra sql --extra spark --python-version 3.11.7 --python-platform linux --quiet -o requirements-spark.lock

env: $(STAMP)

# The Spark engine's extra (pyspark, ~300 MB) for `make test` and `make bench-spark` only: `make report`
# installs requirements.lock, which has no pyspark. requirements-spark.lock is requirements.lock plus
# the `spark` extra (same pins: `make lock` writes both). Needs Java 17 to run (apt-get install openjdk-17-jre-headless).
$(SPARK_STAMP): requirements-spark.lock $(STAMP)
	@echo "installing the Spark engine's locked environment into $(VENV) ..."
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip sync --quiet --compile-bytecode requirements-spark.lock
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip install --quiet --no-deps -e .
	@touch $(SPARK_STAMP)

env-spark: $(SPARK_STAMP)

# Headless Chromium and a CJK font for page text, from Debian's packages (needs root), for the test that
# opens the Chinese segment report and the run index and keeps screenshots in the run folder.
browser:
	@if command -v chromium >/dev/null && fc-list :lang=zh family 2>/dev/null | grep -q .; then \
	  echo "chromium and a CJK font are installed"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fontconfig; fi

sample: env
	$(BIN)/workbench sample --if-missing --persons $(PERSONS) --seed $(SEED)

report: sample
	@$(BIN)/workbench key
	$(BIN)/workbench run $(ARGS)
	@echo "open reports/latest/index.html"

test: env-spark
	MPLBACKEND=agg $(BIN)/python -m pytest --nbval-lax --nbval-current-env -q -n 2 --dist loadscope --no-loadscope-reorder

test-spark: env-spark
	MPLBACKEND=agg $(BIN)/python -m pytest -q -m spark_stages tests/test_spark_identity.py tests/test_spark_canonical.py

# every Spark test through a Spark Connect server (the one inside the pyspark wheel, started on a
# free local port and stopped afterwards by tests/spark_connect.py)
test-spark-connect: env-spark
	MPLBACKEND=agg $(BIN)/python -m tests.spark_connect -- $(BIN)/python -m pytest -q tests/test_spark_engine.py tests/test_spark_identity.py tests/test_spark_canonical.py

bench: env
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.run $(BENCH_ARGS)
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.identity $(IDENTITY_BENCH_ARGS)
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.febrl $(FEBRL_BENCH_ARGS)
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.rfm $(RFM_BENCH_ARGS)
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.clusters $(CLUSTERS_BENCH_ARGS)
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.models $(MODELS_BENCH_ARGS)
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.pipeline $(PIPELINE_BENCH_ARGS)

bench-spark: env-spark
	MPLBACKEND=agg $(BIN)/python -m tests.benchmarks.spark $(SPARK_BENCH_ARGS)

lab: env
	$(BIN)/jupyter lab --no-browser --ip 127.0.0.1 $(ROOT_FLAG) --ServerApp.root_dir=$(CURDIR)

strip: env
	$(BIN)/nbstripout notebooks/*.ipynb

clean-data:
	rm -rf data/interim data/processed

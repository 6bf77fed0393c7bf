"""Every pipeline stage as one function the notebooks, the CLI and the tests call.

``workbench stage <name> -p key=value`` runs one of them on a data folder; each writes only its
own tables (see data/README.md) and reads the settings earlier stages recorded.

================  ======================================================  ===================
stage             function                                                notebook
================  ======================================================  ===================
ingest            :func:`workbench.ingest.ingest_all`                     01_ingest
clean             :func:`workbench.clean.clean_all`                       02_clean
identity          :func:`workbench.identity.run_identity`                 03_id_matching
canonical         :func:`workbench.canonical.run_canonical`               04_customer_360
customer_360      :func:`workbench.customer360.run_customer_360`          04_customer_360
rfm               :func:`workbench.segments.stage.run_rfm`                05_rfm
clusters          :func:`workbench.segments.stage.run_clusters`           06_kmeans
engagement        :func:`workbench.segments.stage.run_engagement`         06_kmeans
churn             :func:`workbench.models.workflow.run_task`              07_churn
propensity        :func:`workbench.models.workflow.run_task`              08_propensity
clv               :func:`workbench.models.clv_stage.run_clv`              09_clv
tags              :func:`workbench.tags.run_tags`                         10_segment_report
campaign_results  :func:`workbench.campaigns.run_campaign_results`        12_campaign_results
uplift            :func:`workbench.uplift.run_uplift`                     12_campaign_results
consents          :func:`workbench.privacy.consent.write_consent_ledger`  (CLI only)
================  ======================================================  ===================

Example:
    >>> sorted(STAGES)[:3]
    ['campaign_results', 'canonical', 'churn']
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .config import Paths

#: stage name -> (module, function, fixed keyword arguments)
STAGES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ingest": ("workbench.ingest", "ingest_all", {}),
    "clean": ("workbench.clean", "clean_all", {}),
    "identity": ("workbench.identity", "run_identity", {}),
    "canonical": ("workbench.canonical", "run_canonical", {}),
    "customer_360": ("workbench.customer360", "run_customer_360", {}),
    "rfm": ("workbench.segments.stage", "run_rfm", {}),
    "clusters": ("workbench.segments.stage", "run_clusters", {}),
    "engagement": ("workbench.segments.stage", "run_engagement", {}),
    "churn": ("workbench.models.workflow", "run_task", {"task": "churn", "horizon_days": 90}),
    "propensity": ("workbench.models.workflow", "run_task", {"task": "propensity", "horizon_days": 30}),
    "clv": ("workbench.models.clv_stage", "run_clv", {}),
    "tags": ("workbench.tags", "run_tags", {}),
    "campaign_results": ("workbench.campaigns", "run_campaign_results", {}),
    "uplift": ("workbench.uplift", "run_uplift", {}),
    "consents": ("workbench.privacy.consent", "write_consent_ledger", {}),
}


def stage_function(name: str) -> Callable[..., Any]:
    """The function of stage ``name`` (imported when asked for)."""
    if name not in STAGES:
        raise ValueError(f"The 'name' parameter must be one of {sorted(STAGES)}. Got {name!r} instead.")
    module, func, _ = STAGES[name]
    return getattr(importlib.import_module(module), func)


def run_stage(name: str, paths: Paths, **params: Any) -> Any:
    """Run one stage on ``paths`` with keyword ``params`` (over the stage's fixed ones).

    >>> run_stage("nowhere", None)
    Traceback (most recent call last):
    ...
    ValueError: The 'name' parameter must be one of ['campaign_results', 'canonical', 'churn', 'clean', 'clusters', 'clv', 'consents', 'customer_360', 'engagement', 'identity', 'ingest', 'propensity', 'rfm', 'tags', 'uplift']. Got 'nowhere' instead.
    """
    func = stage_function(name)
    return func(paths, **{**STAGES[name][2], **params})

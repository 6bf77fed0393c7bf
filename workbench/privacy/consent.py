"""The consent ledger: one row per OneID and purpose, reconciled across channels.

Every source that says something about consent is a dated *event* of the canonical
``consents`` table (:mod:`workbench.canonical`); per OneID and purpose the **latest event wins**:

=============================  ==========================================================
event                          says
=============================  ==========================================================
``profile record``             a profile's ``consent_<purpose>`` at its ``updated_at``:
                               True = granted, False = revoked (refused or withdrawn),
                               empty = unknown
``consent record``             a row of a consents mapping (given or withdrawn, with a time)
``Unsubscribed``               e-mail revoked at the event's time
``WeChat Unfollowed``          WeChat revoked
``WeChat Followed``            WeChat granted (following the official account is an opt-in
                               to its messages) unless a later event revokes it
=============================  ==========================================================

Choices where the sources are silent:

- A profile record with an empty consent field is an event too: the system of record says
  "unknown" at that time, so an older unsubscribe does not decide.
- Events at the same instant: the profile / consent record wins, then revocations, then grants.
- Events without a time cannot be ordered and are ignored; ``as_of`` ignores events at or
  after it.
- A OneID with no event for a purpose is ``unknown``. ``granted_at`` / ``revoked_at`` are
  the latest grant / revocation seen, whichever decided; ``source`` is the channel and
  ``source_record_id`` the record of the deciding event.

The customer 360's ``consent_<purpose>`` columns and the audience exports use this rule.

Example:
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"oneid": ["A", "A", "B"], "purpose": ["email"] * 3,
    ...                    "granted": pd.array([True, False, True], dtype="boolean"),
    ...                    "at": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-01-01"], utc=True)})
    >>> reconcile_consents(ev)[["oneid", "status"]].values.tolist()
    [['A', 'revoked'], ['B', 'granted']]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..config import Paths, get_paths
from ..roles import CONSENT_PURPOSES
from ..timeutil import to_utc

__all__ = ["LEDGER_COLUMNS", "PURPOSES", "STATUSES", "consent_events", "consent_ledger", "reconcile_consents",
           "write_consent_ledger"]

#: Marketing purposes every ledger lists (a brand's data may add others).
PURPOSES: tuple[str, ...] = CONSENT_PURPOSES
#: Values of the ``status`` column.
STATUSES: tuple[str, ...] = ("granted", "revoked", "unknown")
#: Columns of :func:`consent_ledger`, in order.
LEDGER_COLUMNS: tuple[str, ...] = ("oneid", "purpose", "status", "granted_at", "revoked_at", "source",
                                   "source_record_id", "event")
_EVENT_COLUMNS = ("oneid", "purpose", "granted", "at", "source", "source_record_id", "event", "priority")


def reconcile_consents(events: pd.DataFrame, *, oneid_col: str = "oneid", purpose_col: str = "purpose",
                       granted_col: str = "granted", time_col: str = "at") -> pd.DataFrame:
    """Per (OneID, purpose), the status of the latest event, plus the latest grant and revocation.

    ``granted_col`` is a nullable boolean (True grant, False revocation, NA "unknown").
    Optional columns ``source``, ``source_record_id`` and ``event`` are carried from the
    deciding event; ``priority`` (smaller wins) breaks ties at equal times, then the
    larger ``source_record_id``. Events without a time are ignored. The result does not
    depend on the row order of ``events``.

    >>> ev = pd.DataFrame({"oneid": ["A", "A"], "purpose": ["sms", "sms"],
    ...                    "granted": pd.array([pd.NA, True], dtype="boolean"),
    ...                    "at": pd.to_datetime(["2026-03-01", "2026-01-01"], utc=True)})
    >>> row = reconcile_consents(ev).iloc[0]
    >>> row["status"], str(row["granted_at"].date())
    ('unknown', '2026-01-01')
    """
    if not isinstance(events, pd.DataFrame):
        raise ValueError(f"The 'events' parameter must be a pandas DataFrame. Got {type(events).__name__} instead.")
    missing = [c for c in (oneid_col, purpose_col, granted_col, time_col) if c not in events.columns]
    if missing:
        raise KeyError(f"Columns {missing} are not in the events table. Columns: {list(events.columns)}.")
    ev = pd.DataFrame({
        "oneid": events[oneid_col].astype("string"),
        "purpose": events[purpose_col].astype("string"),
        "granted": events[granted_col].astype("boolean"),
        "at": pd.to_datetime(events[time_col], utc=True),
        "source": events["source"].astype("string") if "source" in events else pd.NA,
        "source_record_id": (events["source_record_id"].astype("string") if "source_record_id" in events
                             else pd.NA),
        "event": events["event"].astype("string") if "event" in events else pd.NA,
        "priority": events["priority"].astype("int64") if "priority" in events else 0,
    }).dropna(subset=["oneid", "purpose", "at"])
    ev["source_record_id"] = ev["source_record_id"].astype("string")
    # latest last: time ascending, then priority descending (the smallest priority is last),
    # then record id ascending; every key is a column, so the input order does not matter
    ev = ev.sort_values(["oneid", "purpose", "at", "priority", "source_record_id", "granted"],
                        ascending=[True, True, True, False, True, True], kind="stable", na_position="first")
    keys = ["oneid", "purpose"]
    last = ev.drop_duplicates(keys, keep="last").set_index(keys)
    status = pd.Series(np.select([last["granted"].eq(True).fillna(False).to_numpy(bool),
                                  last["granted"].eq(False).fillna(False).to_numpy(bool)],
                                 ["granted", "revoked"], default="unknown"), index=last.index, dtype="string")
    granted_at = ev[ev["granted"].eq(True).fillna(False).to_numpy(bool)].groupby(keys)["at"].max()
    revoked_at = ev[ev["granted"].eq(False).fillna(False).to_numpy(bool)].groupby(keys)["at"].max()
    out = pd.DataFrame({"status": status,
                        "granted_at": granted_at.reindex(last.index),
                        "revoked_at": revoked_at.reindex(last.index),
                        "source": last["source"].astype("string"),
                        "source_record_id": last["source_record_id"].astype("string"),
                        "event": last["event"].astype("string")}, index=last.index)
    for c in ("granted_at", "revoked_at"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out.reset_index()[list(LEDGER_COLUMNS)].reset_index(drop=True)


def consent_events(layer=None, *, as_of: Any = None) -> pd.DataFrame:
    """Every consent event of the canonical layer before ``as_of``.

    Columns: oneid, purpose, granted (nullable boolean), at (UTC), source (channel),
    source_record_id, event, priority.

    >>> events = consent_events(as_of="2026-06-01")                      # doctest: +SKIP
    >>> events.groupby(["purpose", "event"]).size()                      # doctest: +SKIP
    """
    from ..canonical import CanonicalLayer, load_canonical

    layer = layer if isinstance(layer, CanonicalLayer) else load_canonical(layer)
    ev = layer.table("consents", as_of=as_of).dropna(subset=["at"])
    return ev.rename(columns={"channel": "source", "record_id": "source_record_id"})[list(_EVENT_COLUMNS)] \
        .reset_index(drop=True)


def consent_ledger(layer=None, *, as_of: Any = None) -> pd.DataFrame:
    """One row per OneID (every OneID of the layer) × purpose with the reconciled status.

    Purposes: :data:`PURPOSES` and any other the data knows. Columns :data:`LEDGER_COLUMNS`;
    sorted by OneID, then purpose. See the module docstring for the rules.

    >>> ledger = consent_ledger()                                   # doctest: +SKIP
    >>> ledger.pivot(index="oneid", columns="purpose", values="status").head()  # doctest: +SKIP
    """
    from ..canonical import CanonicalLayer, load_canonical

    layer = layer if isinstance(layer, CanonicalLayer) else load_canonical(layer)
    events = consent_events(layer, as_of=as_of)
    decided = reconcile_consents(events)
    purposes = list(PURPOSES) + sorted(set(events["purpose"].dropna()) - set(PURPOSES))
    records = layer.table("records", columns=["oneid"])
    oneids = pd.Index(pd.unique(records["oneid"].astype("string")), dtype="string").sort_values()
    grid = pd.DataFrame({"oneid": np.repeat(oneids.to_numpy(), len(purposes)),
                         "purpose": np.tile(np.array(purposes, dtype=object), len(oneids))})
    grid["oneid"] = grid["oneid"].astype("string")
    grid["purpose"] = grid["purpose"].astype("string")
    out = grid.merge(decided, on=["oneid", "purpose"], how="left", validate="one_to_one")
    out["status"] = out["status"].fillna("unknown").astype("string")
    for c in ("source", "source_record_id", "event"):
        out[c] = out[c].astype("string")
    for c in ("granted_at", "revoked_at"):
        out[c] = pd.to_datetime(out[c], utc=True)
    out.attrs["as_of"] = None if to_utc(as_of) is None else to_utc(as_of).isoformat()
    return out[list(LEDGER_COLUMNS)]


def write_consent_ledger(paths: Paths | None = None, *, as_of: Any = None) -> pd.DataFrame:
    """Build the ledger and write ``data/processed/consents.parquet``. Returns the ledger.

    >>> ledger = write_consent_ledger(get_paths())                      # doctest: +SKIP
    """
    from ..canonical import load_canonical

    paths = (paths or get_paths()).ensure()
    ledger = consent_ledger(load_canonical(paths), as_of=as_of)
    tmp = paths.processed / "consents.parquet.tmp"
    ledger.to_parquet(tmp, index=False)
    tmp.replace(paths.processed / "consents.parquet")
    return ledger

"""Audience exports: who to upload to an ad platform, as hashed contacts, honouring consent.

One CSV per audience in ``reports/<run_id>/audiences/<name>.csv`` with the columns

- ``oneid`` — the person's OneID (a pseudonym: a hash of a record id, no personal data);
- ``email_sha256`` — SHA-256 of the trimmed, lower-case e-mail;
- ``phone_sha256`` — SHA-256 of the E.164 phone (``+8613800138000``; Google Customer Match form).

Consent: a person is exported only when their consent for the audience's purpose
(default ``consent_ads``) is present and True — consents are already reconciled in the
customer 360 profile (latest wins; an e-mail unsubscribe revokes e-mail consent). Persons
left out are counted, by reason, in ``audiences/summary.json`` (and the run manifest via
``interim/metrics/audiences.json``): no consent, consent revoked, no contact.

Example:
    >>> import pandas as pd
    >>> p = pd.DataFrame({"oneid": ["a", "b", "c"], "email": ["Z@x.com", "y@x.com", None],
    ...                   "phone": [None, "+8613800138000", "+8613900139000"],
    ...                   "consent_ads": [True, False, None]})
    >>> out, counts = audience_rows(p, ["a", "b", "c"])
    >>> out["oneid"].tolist(), counts["excluded_no_consent"], counts["excluded_consent_revoked"]
    (['a'], 1, 1)
    >>> out["email_sha256"].iloc[0][:12]  # hashlib.sha256(b"z@x.com"), lower-cased first
    '628baf61a9fc'
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from .config import Paths, get_paths
from .privacy.keys import ad_platform_hash

EXPORT_COLUMNS = ("oneid", "email_sha256", "phone_sha256")


def audience_rows(profile: pd.DataFrame, members: Iterable[str], *, consent_col: str = "consent_ads",
                  platform: str = "google") -> tuple[pd.DataFrame, dict[str, int]]:
    """The export rows of ``members`` (OneIDs) and the counts of who was left out and why.

    A member with ``consent_col`` NA has no recorded consent; False means revoked or refused
    (the profile's reconciled status). Both are excluded; so is a consenting member with no
    usable e-mail or phone. A profile without the consent column (the brand's data records no
    such consent) or without contact columns excludes everyone, counted by reason.
    """
    if not isinstance(consent_col, str) or not consent_col.startswith("consent_"):
        raise ValueError(f"The 'consent_col' parameter must name a profile consent column such as 'consent_ads'. "
                         f"Got {consent_col!r} instead.")
    if "oneid" not in profile.columns:
        raise KeyError(f"Column 'oneid' is not in the profile. Columns: {list(profile.columns)}.")
    wanted = pd.Index(pd.unique(pd.Series(list(members), dtype="string")))
    p = profile.set_index("oneid")
    for c in ("email", "phone", consent_col):
        if c not in p.columns:
            p = p.assign(**{c: pd.Series(pd.NA, index=p.index, dtype="boolean" if c == consent_col else "string")})
    unknown = wanted.difference(p.index)
    if len(unknown):
        raise KeyError(f"{len(unknown)} audience members are not OneIDs of the profile, e.g. {list(unknown[:3])}.")
    p = p.loc[wanted.sort_values()]
    consent = p[consent_col].astype("boolean")
    ok = consent.fillna(False).to_numpy(bool)
    email = ad_platform_hash(p["email"], kind="email", platform=platform).where(ok)
    phone = ad_platform_hash(p["phone"], kind="phone", platform=platform).where(ok)
    has_contact = (email.notna() | phone.notna()).to_numpy()
    keep = ok & has_contact
    out = pd.DataFrame({"oneid": p.index[keep], "email_sha256": email[keep].to_numpy(),
                        "phone_sha256": phone[keep].to_numpy()})
    counts = {"members": int(len(p)), "exported": int(keep.sum()),
              "excluded_no_consent": int(consent.isna().sum()),
              "excluded_consent_revoked": int((consent == False).fillna(False).sum()),  # noqa: E712
              "excluded_no_contact": int((ok & ~has_contact).sum())}
    assert counts["members"] == counts["exported"] + counts["excluded_no_consent"] + \
        counts["excluded_consent_revoked"] + counts["excluded_no_contact"]
    return out, counts


def audience_folder(paths: Paths | None = None) -> Path:
    """``<run dir>/audiences`` inside a ``workbench run`` (``WORKBENCH_RUN_DIR``), else
    ``reports/interactive/audiences`` for a notebook run by hand."""
    run_dir = os.environ.get("WORKBENCH_RUN_DIR")
    base = Path(run_dir) if run_dir else (paths or get_paths()).reports / "interactive"
    return base / "audiences"


def slug(name: str) -> str:
    """A file-name-safe audience name: ``"Can't Lose"`` → ``cant_lose``.

    >>> slug("rfm: Can't Lose"), slug("Nurture (never bought)")
    ('rfm_cant_lose', 'nurture_never_bought')
    """
    s = re.sub(r"[^0-9a-z]+", "_", name.lower().replace("'", "")).strip("_")
    if not s:
        raise ValueError(f"The audience name must contain letters or digits. Got {name!r} instead.")
    return s


def export_audiences(profile: pd.DataFrame, audiences: dict[str, Iterable[str]], *, paths: Paths | None = None,
                     folder: Path | None = None, consent_col: str = "consent_ads",
                     platform: str = "google") -> pd.DataFrame:
    """Write one CSV per audience and ``summary.json``; return the summary (one row per audience).

    ``audiences`` maps a name (e.g. ``"rfm: Champions"``) to its members' OneIDs. The counts
    also go to ``interim/metrics/audiences.json`` so the run manifest lists them.
    """
    paths = paths or get_paths()
    folder = Path(folder) if folder is not None else audience_folder(paths)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, members in audiences.items():
        out, counts = audience_rows(profile, members, consent_col=consent_col, platform=platform)
        f = folder / f"{slug(name)}.csv"
        out.to_csv(f, index=False, encoding="utf-8")
        rows.append({"audience": name, "file": f.name, **counts})
    summary = pd.DataFrame(rows)
    meta = {"stage": "audiences", "consent": consent_col, "platform": platform, "folder": str(folder),
            "hashing": "SHA-256 of the lower-case e-mail and of the E.164 phone",
            "audiences": rows,
            "totals": {k: int(summary[k].sum()) for k in ("members", "exported", "excluded_no_consent",
                                                          "excluded_consent_revoked", "excluded_no_contact")}
            if len(summary) else {}}
    (folder / "summary.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    paths.metrics.mkdir(parents=True, exist_ok=True)
    (paths.metrics / "audiences.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary


def standard_audiences(view: pd.DataFrame, *, segment_map=None, propensity_top_deciles: int = 1) -> dict[str, pd.Index]:
    """The report's audiences from a segmentation view (index ``oneid``): one per RFM segment with
    buyers, cluster and engagement group, and the top purchase-propensity deciles — for whichever
    of these the view has.

    >>> v = pd.DataFrame({"segment": ["Lost", "Champions"], "group": ["Dormant", None]}, index=["a", "b"])
    >>> sorted(standard_audiences(v))
    ['engagement: Dormant', 'rfm: Champions', 'rfm: Lost']
    """
    if not isinstance(propensity_top_deciles, int) or not 1 <= propensity_top_deciles <= 10:
        raise ValueError(f"The 'propensity_top_deciles' parameter must be a whole number from 1 to 10. "
                         f"Got {propensity_top_deciles!r} instead.")
    out: dict[str, pd.Index] = {}
    no_purchase = getattr(segment_map, "no_purchase", "Prospect (no purchase)")
    for col, prefix in (("segment", "rfm"), ("cluster_name", "cluster"), ("group", "engagement")):
        if col not in view.columns:
            continue
        values = view[col]
        order = list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype) else \
            sorted(values.dropna().astype(str).unique())
        for v in order:
            if col == "segment" and v == no_purchase:
                continue
            members = view.index[(values.astype("string") == str(v)).fillna(False).to_numpy(bool)]
            if len(members):
                out[f"{prefix}: {v}"] = members
    if "purchase_propensity_decile" in view.columns:
        top = (view["purchase_propensity_decile"] <= propensity_top_deciles).fillna(False).to_numpy(bool)
        out[f"propensity: top {propensity_top_deciles} decile(s)"] = view.index[top]
    return out

"""Display masking: what people-facing output (reports, notebooks, exports for staff) shows.

Phones, e-mails and names are masked by :mod:`workbench.normalise`'s
``mask_phone``, ``mask_email`` and ``mask_name`` (after normalising, so raw
input in any format masks the same way); this module adds ids and addresses and
applies them to whole columns. Masked output is for reading, not for joining:
use :func:`workbench.privacy.keys.pseudonymise` for identifiers that must stay
linkable.

=========  ======================================  =====================
kind       rule                                    example
=========  ======================================  =====================
phone      CN mobile: first 3 + ``****`` + last 4   ``138****8000``
email      first character of the local part       ``z***@example.com``
name       first character of each word            ``张*``
id         first 2 + ``****`` + last 2             ``M3****80``
address    leading admin units, then ``…``         ``北京市丰台区…``
none       unchanged
=========  ======================================  =====================

>>> mask_frame(pd.DataFrame({"phone": ["13800138000"], "email": ["zhangwei@example.com"], "name": ["张伟"]}),
...            {"phone": "phone", "email": "email", "name": "name"}).iloc[0].tolist()
['138****8000', 'z***@example.com', '张*']
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.normalise import _CJK, mask_email, mask_name, mask_phone, normalise_emails, normalise_phones

__all__ = ["ADDRESS_PREFIX_CHARS", "KINDS", "mask_frame", "mask_series", "mask_value"]

#: The kinds of value :func:`mask_series` knows.
KINDS: tuple[str, ...] = ("phone", "email", "name", "id", "address", "none")
#: At most this many leading CJK characters of an address are ever shown.
ADDRESS_PREFIX_CHARS = 6
_ID_MIN_LENGTH = 8  # shorter ids are fully hidden, so at most half of an id is shown
_ADMIN_SUFFIXES = "省市区县州旗盟"  # province, city, district, county, prefecture, banner, league
_STRING = pd.StringDtype()


def _check_kind(kind: Any, name: str = "kind") -> str:
    if kind not in KINDS:
        raise ValueError(f"The '{name}' parameter must be one of {KINDS}. Got {kind!r} instead.")
    return kind


def _text(values: pd.Series) -> pd.Series:
    """Stripped text, empty as NA (string dtype)."""
    text = values.astype(_STRING).str.strip()
    return text.mask(text.eq(""))


def _mask_phones(values: pd.Series) -> pd.Series:
    phones = normalise_phones(values)
    return mask_phone(phones["e164"]).fillna(phones["masked"])  # already-masked input keeps its masked form


def _mask_emails(values: pd.Series) -> pd.Series:
    masked = mask_email(normalise_emails(values)["email"])
    text = _text(values).str.lower()
    already = text.str.fullmatch(r"[^@ *]?\*+@[^@ ]+\.[a-z]{2,}").fillna(False).astype(bool)
    return masked.fillna(text.where(already))


def _mask_ids(values: pd.Series) -> pd.Series:
    text = _text(values)
    long = (text.str.len() >= _ID_MIN_LENGTH).fillna(False).astype(bool)
    return (text.str[:2] + "****" + text.str[-2:]).where(long, text.where(text.isna(), "****"))


def _mask_addresses(values: pd.Series) -> pd.Series:
    text = _text(values)
    head = text.str.extract(f"^([{_CJK}]{{1,{ADDRESS_PREFIX_CHARS}}})", expand=False)
    units = head.str.extract(f"^(.*[{_ADMIN_SUFFIXES}])", expand=False).fillna("")
    return (units + "…").where(text.notna())


def mask_series(values: pd.Series, kind: str) -> pd.Series:
    """Mask one column for display; NA stays NA, values that cannot be read become NA.

    ``phone``: normalised to E.164 first, then ``mask_phone`` (``138****8000``,
    ``+852 9****567``); already-masked input keeps its canonical masked form;
    invalid numbers become NA. ``email``: normalised (trim, lower-case), then
    ``mask_email``; invalid addresses become NA. ``name``: ``mask_name``.
    ``id``: first 2 + ``****`` + last 2 characters (``M33702180`` ->
    ``M3****80``); ids of under 8 characters become ``****``, so at most half
    of an id shows and the length never does. ``address``: of the leading run of
    up to 6 CJK characters, the part up to its last administrative unit
    (省/市/区/县/州/旗/盟) is kept, then ``…`` (``北京市丰台区新华路152号`` ->
    ``北京市丰台区…``, ``上海市浦东新区…`` -> ``上海市…``); with no such unit,
    or no CJK prefix, only ``…`` remains. ``none``: returned unchanged.

    >>> mask_series(pd.Series(["M33702180", "M12", None]), "id").tolist()
    ['M3****80', '****', <NA>]
    >>> mask_series(pd.Series(["北京市丰台区新华路152号", "余杭区和平路548号", "12 Queen's Road"]), "address").tolist()
    ['北京市丰台区…', '余杭区…', '…']
    """
    _check_kind(kind)
    if not isinstance(values, pd.Series):
        raise ValueError(f"The 'values' parameter must be a pandas Series. Got {type(values).__name__} instead.")
    if kind == "none":
        return values
    masker = {"phone": _mask_phones, "email": _mask_emails, "name": mask_name, "id": _mask_ids,
              "address": _mask_addresses}[kind]
    out = masker(values)
    return pd.Series(out.astype(_STRING).array, index=values.index, name=values.name)


def mask_value(value: Any, kind: str) -> str | None:
    """Mask a single value (see :func:`mask_series`); None when it cannot be shown.

    >>> [mask_value("13800138000", "phone"), mask_value("zhang@example.com", "email"), mask_value("张伟", "name")]
    ['138****8000', 'z***@example.com', '张*']
    """
    _check_kind(kind)
    if kind == "none":
        return value
    out = mask_series(pd.Series([value], dtype=object), kind).iloc[0]
    return None if pd.isna(out) else str(out)


def mask_frame(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """A copy of ``df`` with each column in ``columns`` masked by its kind (see :func:`mask_series`).

    >>> mask_frame(pd.DataFrame({"member_id": ["M33702180"], "city": ["杭州"]}), {"member_id": "id"})
      member_id city
    0  M3****80   杭州
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"The 'df' parameter must be a pandas DataFrame. Got {type(df).__name__} instead.")
    if not isinstance(columns, dict):
        raise ValueError("The 'columns' parameter must be a dict mapping column names to kinds such as "
                         f"{{'phone': 'phone'}}. Got {type(columns).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"Columns {missing} are missing from the data. Columns present: {list(df.columns)}.")
    for column, kind in columns.items():
        _check_kind(kind, f"columns[{column!r}]")
    out = df.copy()
    for column, kind in columns.items():
        out[column] = mask_series(df[column], kind)
    return out

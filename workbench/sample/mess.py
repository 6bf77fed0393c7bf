"""Vectorised ways real exports damage clean values (formats, case, typos, placeholders)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import vocab

_FULLWIDTH = str.maketrans("0123456789+-()@.", "０１２３４５６７８９＋－（）＠．")


def _pick(rng: np.random.Generator, n: int, weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(w.size, size=n, p=w / w.sum())


def messy_phones(e164: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Write E.164 phones the many ways Chinese systems export them.

    >>> s = messy_phones(pd.Series(["+8613800138000"] * 3), np.random.default_rng(1))
    >>> s.str.replace(r"\\D", "", regex=True).str[-11:].tolist() == ["13800138000"] * 3
    True
    """
    e = e164.astype(object)
    out = e.copy()
    ok = e.notna().to_numpy()
    s = e[ok].astype(str)
    cn = s.str.startswith("+86").to_numpy()
    nat = np.where(cn, s.str[3:], s.str[4:])
    nat = pd.Series(nat, index=s.index, dtype=object)
    style = _pick(rng, len(s), [40, 12, 10, 8, 6, 6, 3, 15])
    n3, n4a, n4b = nat.str[:3], nat.str[3:7], nat.str[7:]
    cn_forms = [
        nat,                                  # 13800138000
        "+86 " + n3 + " " + n4a + " " + n4b,  # +86 138 0013 8000
        "0086-" + nat,                        # 0086-13800138000
        n3 + "-" + n4a + "-" + n4b,           # 138-0013-8000
        "86 " + nat,                          # 86 13800138000
        "(+86)" + nat,                        # (+86)13800138000
        nat.str.translate(_FULLWIDTH),        # full-width digits
        " " + nat + " ",                      # stray spaces
    ]
    hk_forms = [  # local 8-digit forms (ambiguous without a region) are the rarer ones
        "+852" + nat,
        "+852 " + nat.str[:4] + " " + nat.str[4:],
        "852-" + nat,
        nat,                                  # 91234567 (local)
        nat.str[:4] + " " + nat.str[4:],      # 9123 4567 (local)
        "+852 " + nat,
        ("+852" + nat).str.translate(_FULLWIDTH),
        " +852" + nat + " ",
    ]
    res = np.empty(len(s), dtype=object)
    for k in range(len(cn_forms)):
        m = style == k
        res[m & cn] = cn_forms[k].to_numpy()[m & cn]
        res[m & ~cn] = hk_forms[k].to_numpy()[m & ~cn]
    out[ok] = res
    return out


def masked_phones(e164: pd.Series) -> pd.Series:
    """E-commerce platforms show ``138****8000``: first three and last four digits."""
    s = e164.astype("string")
    nat = s.str.replace(r"^\+86", "", regex=True).str.replace(r"^\+852", "", regex=True)
    return (nat.str[:3] + "****" + nat.str[-4:]).astype(object)


def messy_emails(emails: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Case changes, stray spaces, full-width characters and trailing dots."""
    e = emails.astype(object)
    ok = e.notna().to_numpy()
    s = e[ok].astype(str)
    style = _pick(rng, len(s), [70, 10, 8, 5, 4, 3])
    forms = [
        s,
        s.str.upper(),
        " " + s + " ",
        s.str.capitalize(),
        s.str.translate(str.maketrans("@.", "＠．")),
        s + ".",
    ]
    res = np.empty(len(s), dtype=object)
    for k, f in enumerate(forms):
        m = style == k
        res[m] = f.to_numpy()[m]
    out = e.copy()
    out[ok] = res
    return out


_SIMILAR = {c: alt for c, alt in zip(
    [c for c, _ in vocab.GIVEN_FEMALE + vocab.GIVEN_MALE],
    [c for c, _ in vocab.GIVEN_FEMALE[1:] + vocab.GIVEN_FEMALE[:1] + vocab.GIVEN_MALE[1:] + vocab.GIVEN_MALE[:1]],
)}


def typo_names(names: pd.Series, rng: np.random.Generator, rate: float) -> pd.Series:
    """Replace the last character of a share of names with a look-alike (a typing slip)."""
    s = names.astype(object).copy()
    hit = (rng.random(len(s)) < rate) & s.notna().to_numpy()
    if hit.any():
        vals = s[hit].astype(str)
        s[hit] = (vals.str[:-1] + vals.str[-1].map(lambda c: _SIMILAR.get(c, c))).to_numpy()
    return s


def pinyin_names(surname_py: pd.Series, given_py: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Romanised names as foreign-facing systems store them: ``ZHANG Wei``, ``Wei Zhang``."""
    style = rng.integers(0, 4, len(surname_py))
    sp, gp = surname_py.astype(str), given_py.astype(str)
    forms = [sp.str.upper() + " " + gp.str.capitalize(), gp.str.capitalize() + " " + sp.str.capitalize(),
             sp + " " + gp, sp.str.capitalize() + gp.str.capitalize()]
    out = np.empty(len(sp), dtype=object)
    for k, f in enumerate(forms):
        out[style == k] = f.to_numpy()[style == k]
    return pd.Series(out, index=surname_py.index)


def full_width(s: pd.Series, rng: np.random.Generator, rate: float) -> pd.Series:
    """Turn a share of values into full-width characters (an IME left in full-width mode)."""
    out = s.astype(object).copy()
    hit = (rng.random(len(out)) < rate) & out.notna().to_numpy()
    table = {i: i + 0xFEE0 for i in range(0x21, 0x7F)}
    table[0x20] = 0x3000
    out[hit] = out[hit].astype(str).str.translate(table).to_numpy()
    return out


def blank(s: pd.Series, rng: np.random.Generator, rate: float,
          tokens: tuple[str, ...] = ("", "null", "NULL", "-")) -> pd.Series:
    """Blank out a share of values, written as the tokens exports use for 'missing'."""
    out = s.astype(object).copy()
    hit = rng.random(len(out)) < rate
    out[hit] = np.array(tokens, dtype=object)[rng.integers(0, len(tokens), hit.sum())]
    return out

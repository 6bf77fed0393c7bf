"""Vectorised standardisers for the cleaning stage.

Every function takes a pandas Series and returns pandas objects index-aligned
with it. Per-value work runs on the *unique* values only: inputs are factorized
(skipped for columns that are almost all distinct), the unique values are
processed, and results are mapped back with the integer codes. Text work uses
pandas ``.str`` methods written so that pandas can run them in pyarrow (``[0-9]``
and explicit whitespace classes, no lookarounds on hot paths), plus a few
pyarrow kernels pandas does not use (NFKC, joining words). ``phonenumbers`` is
called only where a vectorised check on its own metadata cannot decide, and
``pypinyin`` once per distinct character. Options are keyword-only; bad
arguments raise ``ValueError`` in scikit-learn style ("The 'x' parameter must
be ... Got ... instead.").

Text-valued outputs use the nullable ``"string"`` dtype (missing is ``<NA>``);
timestamps are ``datetime64[us, UTC]`` and dates ``datetime64[us]`` -- the
pandas 3 default resolution for parsed strings.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "COMMON_SURNAME_PINYINS", "CURRENCY_ALIASES", "DEFAULT_PLACEHOLDER_PATTERNS",
    "MISSING_TOKENS", "UNKNOWN_TOKENS", "convert_currency", "flag_placeholders",
    "mask_email", "mask_name", "mask_phone", "normalise_emails", "normalise_names",
    "normalise_phones", "parse_dates", "parse_timestamps",
]

#: Lower-cased strings that stand for "no value" (compared after NFKC + strip).
MISSING_TOKENS: frozenset[str] = frozenset({
    "", "null", "none", "nil", "nan", "nat", "<na>", "n/a", "#n/a", "na", "undefined",
    "(null)", "\\n", "-", "--", "---", "—", "/", "无", "空", "暂无",
})
#: "Stated unknown". Kept apart from MISSING_TOKENS because for some fields (a
#: gender column, say) 未知 is a real category; the standardisers here treat
#: both sets as missing.
UNKNOWN_TOKENS: frozenset[str] = frozenset({"unknown", "未知", "不详", "不明"})
_ABSENT = MISSING_TOKENS | UNKNOWN_TOKENS
_STRING = pd.StringDtype()
# Regexes on the hot path use [0-9] and explicit whitespace (text is NFKC'd first):
# pandas runs those in pyarrow's RE2, while \s, \d and lookarounds fall back to Python.
_WS = "[ \t\n\r\f\v]"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"  # real chars: ok for re and RE2


# --------------------------------------------------------------------------- helpers
def _as_series(values: Any, name: str = "values") -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"The '{name}' parameter must be a pandas Series. Got {type(values).__name__} instead.")
    return pd.Series(values)


def _aligned(other: pd.Series, values: pd.Series, name: str) -> pd.Series:
    if not isinstance(other, pd.Series) or not other.index.equals(values.index):
        raise ValueError(f"The '{name}' parameter must be a pandas Series with the same index as the values. "
                         f"Got {type(other).__name__} with a different index instead.")
    return other


def _scalar_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else (str(int(value)) if float(value).is_integer() else repr(float(value)))
    return str(value)


def _mostly_unique(values: pd.Series, sample: int = 20_000) -> bool:
    """True for large string columns whose evenly spaced sample has (almost) no repeats.

    A column with k distinct values shows ~sample**2 / (2k) repeats in such a
    sample, so the test only says yes when k is in the order of len(values).
    """
    if len(values) < 5 * sample or not isinstance(values.dtype, pd.StringDtype):
        return False
    picked = values.iloc[:: len(values) // sample]
    return picked.nunique(dropna=False) > 0.99 * len(picked)


def _unique_text(values: pd.Series, *, absent_to_na: bool = True) -> tuple[np.ndarray, pd.Series]:
    """Factorize ``values`` (NA is a value of its own) and clean the unique values.

    Returns the integer codes and the unique values as ``str`` dtype text, NFKC
    normalised (full-width to half-width) and stripped; with ``absent_to_na``
    the MISSING/UNKNOWN tokens become NA.
    """
    if _mostly_unique(values):  # factorizing would cost more than it saves
        codes, uniques = np.arange(len(values)), pd.Index(values.array)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if isinstance(uniques.dtype, pd.StringDtype):
        text = pd.Series(uniques.array, dtype="str")
    else:
        text = pd.Series([_scalar_text(v) for v in np.asarray(uniques, dtype=object)], dtype="str")
    wide = text.str.contains("[^\x00-\x7f\u3400-\u4dbf\u4e00-\u9fff]", regex=True).to_numpy(bool)
    if wide.any():  # NFKC leaves ASCII and unified CJK ideographs alone  # pyarrow's utf8_normalize: pandas' .str.normalize loops in Python
        text[wide] = pd.Series(pc.utf8_normalize(pa.array(text[wide].array), "NFKC"), dtype="str").to_numpy()
    text = text.str.strip()
    if absent_to_na:
        text = text.mask(text.str.lower().isin(_ABSENT))
    return codes, text


def _patch(text: pd.Series, rows: np.ndarray, edit: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``edit`` applied to the selected rows only: a cheap test first saves regex passes over all rows."""
    if rows.any():
        text = text.copy()
        text[rows] = edit(text[rows])
    return text


def _map_unique(values: pd.Series, func: Callable[[str], str | None]) -> pd.Series:
    """Apply a Python function to each unique non-NA value; NA stays NA."""
    codes, text = _unique_text(values, absent_to_na=False)
    out = [None if pd.isna(t) else func(t) for t in text]
    return pd.Series(pd.array(out, dtype=_STRING).take(codes), index=values.index, name=values.name)


def _small_codes(values: pd.Series, normalise: Callable[[Any], Hashable]) -> tuple[np.ndarray, list]:
    """Codes into the list of distinct *normalised* labels of a low-cardinality Series."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    normalised = [normalise(u) for u in np.asarray(uniques, dtype=object)]
    labels = list(dict.fromkeys(normalised))
    position = {label: i for i, label in enumerate(labels)}
    return np.array([position[x] for x in normalised], dtype=np.intp)[codes], labels


# --------------------------------------------------------------------------- phones
_STATUSES = pd.array(["valid", "masked", "invalid", "missing"], dtype=_STRING)


_CN_META = phonenumbers.PhoneMetadata.metadata_for_region("CN")
_CN_GENERAL = _CN_META.general_desc.national_number_pattern.replace(r"\d", "[0-9]")
_CN_MOBILE = _CN_META.mobile.national_number_pattern.replace(r"\d", "[0-9]")
_CN_GENERAL_RE, _CN_MOBILE_RE = re.compile(_CN_GENERAL), re.compile(_CN_MOBILE)


def _check_region(region: Any, name: str = "default_region") -> str:
    code = region.strip().upper() if isinstance(region, str) else None
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"The '{name}' parameter must be a two-letter region code such as 'CN'. Got {region!r} instead.")
    return code


@functools.cache
def _region_rules(region: str) -> tuple[str, re.Pattern, re.Pattern | None, re.Pattern | None] | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.national_prefix_transform_rule:
        return None
    national_prefix, idd = (re.compile(p) if p else None for p in (meta.national_prefix_for_parsing,
                                                                   meta.international_prefix))
    return str(meta.country_code), re.compile(meta.general_desc.national_number_pattern), national_prefix, idd


def _could_be_valid(digits: str, region: str) -> bool:
    """Cheap necessary condition for ``parse(digits, region)`` to be valid.

    The national number phonenumbers derives is the digits, minus the region's
    country code and/or national prefix; it must match the region's general
    pattern. Numbers starting with the region's IDD are not ruled out.
    """
    rules = _region_rules(region)
    if rules is None:
        return True
    cc, general, national_prefix, idd = rules
    if idd is not None and idd.match(digits):
        return True
    candidates = [digits, digits[len(cc):]] if digits.startswith(cc) else [digits]
    if national_prefix is not None:
        candidates += [c[m.end():] for c in candidates if (m := national_prefix.match(c))]
    return any(general.fullmatch(c) for c in candidates)


def _parse_phone(number: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_valid_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def _cn_mobile(digits: str) -> str | None:
    nsn = digits[2:] if len(digits) == 13 and digits.startswith("861") else digits
    ok = len(nsn) == 11 and _CN_GENERAL_RE.fullmatch(nsn) and _CN_MOBILE_RE.fullmatch(nsn)
    return "+86" + nsn if ok else None


def _phone_slow(digits: str, plus: bool, region: str, default_region: str) -> str | None:
    """Row region, then default region, then international; the first valid reading wins.

    The international reading needs 11+ digits and no leading 1: an 11-digit
    number starting with 1 has a CN mobile's shape and is not taken for +1.
    """
    if plus:
        return _parse_phone("+" + digits, "ZZ")
    for r in dict.fromkeys((region, default_region)):
        found = _cn_mobile(digits) if r == "CN" else None
        if found is None and _could_be_valid(digits, r):
            found = _parse_phone(digits, r)
        if found:
            return found
    return _parse_phone("+" + digits, "ZZ") if len(digits) >= 11 and digits[0] != "1" else None


def _cn_mobile_fast(digits: pd.Series, plus: np.ndarray, cn: np.ndarray) -> pd.Series:
    """E.164 of CN mobiles, vectorised with phonenumbers' own CN general + mobile patterns.

    That is exactly what ``is_valid_number`` accepts as a CN mobile; the rest goes to :func:`_phone_slow`.
    """
    bare = ~plus & cn & digits.str.fullmatch("1[0-9]{10}").to_numpy(bool)
    prefixed = (plus | cn) & digits.str.fullmatch("861[0-9]{10}").to_numpy(bool)
    nsn = digits.where(bare, digits.str[2:].where(prefixed))
    ok = nsn.str.fullmatch(_CN_GENERAL).to_numpy(bool) & nsn.str.fullmatch(_CN_MOBILE).to_numpy(bool)
    return ("+86" + nsn).where(ok)


def _masked_evidence(text: pd.Series) -> pd.Series:
    """``138****8000`` style evidence: first 3 + ``****`` + last 4 digits, unseen digits as ``*``."""
    out = pd.Series(np.nan, index=text.index, dtype="str")
    has_mask = text.str.contains("[*×●•xX]", regex=True).to_numpy(bool)
    if has_mask.any():
        compact = text[has_mask].str.replace(r"[ \t\n\r\f\v\-().]", "", regex=True)
        parts = compact.str.extract(r"^\+?([0-9]+)(?:[*×●•]+|[xX]{2,})([0-9]+)$")
        lead = parts[0].str.replace(r"^(?:0086|86)(?=[0-9]{3})", "", regex=True)
        ok = (lead.str.len() >= 3) & (parts[1].str.len() >= 3)
        evidence = lead.str[:3] + "****" + parts[1].str[-4:].str.pad(4, side="left", fillchar="*")
        out[has_mask] = evidence.where(ok.fillna(False)).astype("str")
    return out


def normalise_phones(values: pd.Series, *, default_region: str = "CN",
                     regions: pd.Series | None = None) -> pd.DataFrame:
    """Phone numbers to E.164 with a status: ``valid``, ``masked``, ``invalid`` or ``missing``.

    Text is NFKC normalised, everything but digits and a leading ``+`` is
    dropped and a leading ``00`` becomes ``+``. A number without ``+`` is read
    in the row's region (``regions``; missing or unknown codes fall back to
    ``default_region``), then in ``default_region``, then (11+ digits, not
    starting with 1) as an international number: ``85291234567`` is found,
    ``14012345678`` is not taken for +1.
    Validity is ``phonenumbers.is_valid_number``. Masked inputs (``138****8000``)
    are partial evidence: ``e164`` stays NA and ``masked`` holds the canonical
    first-3 + ``****`` + last-4 form, unseen digits as ``*`` (``1380****000``
    -> ``138*****000``).

    >>> df = normalise_phones(pd.Series(["+86 138 0013 8000", "138****8000", "abc", None]))
    >>> df["e164"].tolist(), df["phone_status"].tolist()
    (['+8613800138000', <NA>, <NA>, <NA>], ['valid', 'masked', 'invalid', 'missing'])
    """
    values = _as_series(values)
    default_region = _check_region(default_region)
    codes, text = _unique_text(values)
    masked = _masked_evidence(text)
    digits = text.str.replace("[^0-9]", "", regex=True)
    intl = digits.str.startswith("00").to_numpy(bool)
    plus = text.str.contains(r"^[^0-9+]*\+", regex=True).to_numpy(bool) | intl
    digits = digits.where(~intl, digits.str[2:])

    # Work on the distinct (value, region) pairs.
    if regions is None:
        pair_codes, raw, region_labels = codes, np.arange(len(text)), [default_region]
        region_of_pair = np.zeros(len(text), dtype=np.intp)
    else:
        def to_region(r: Any) -> str:
            r = r.strip().upper() if isinstance(r, str) else None
            return r if r in phonenumbers.SUPPORTED_REGIONS else default_region
        region_codes, region_labels = _small_codes(_aligned(regions, values, "regions"), to_region)
        pair_codes, pairs = pd.factorize(codes * len(region_labels) + region_codes)
        raw, region_of_pair = pairs // len(region_labels), pairs % len(region_labels)
    d = digits.take(raw).reset_index(drop=True)
    p = plus[raw]
    region = np.asarray(region_labels, dtype=object)[region_of_pair]
    masked = masked.take(raw).reset_index(drop=True)
    candidate = masked.isna().to_numpy() & (d.str.len() >= 3).to_numpy(bool)
    e164 = _cn_mobile_fast(d, p, region == "CN").where(candidate)
    todo = np.flatnonzero(candidate & e164.isna().to_numpy())
    if len(todo):
        e164.iloc[todo] = [_phone_slow(x, bool(pp), r, default_region)
                           for x, pp, r in zip(d.to_numpy(object)[todo], p[todo], region[todo])]
    missing = text.isna().to_numpy()[raw]
    status = np.select([e164.notna().to_numpy(), masked.notna().to_numpy(), ~missing], [0, 1, 2], default=3)
    return pd.DataFrame({"e164": e164.astype(_STRING).array.take(pair_codes),
                         "phone_status": _STATUSES.take(status[pair_codes]),
                         "masked": masked.astype(_STRING).array.take(pair_codes)}, index=values.index)


def _mask_one_phone(number: str) -> str | None:
    sizes = [k for k in (1, 2, 3) if int(number[1:1 + k] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    if not re.fullmatch(r"\+[0-9]{6,15}", number) or not sizes:
        return None
    cc, nsn = number[1:1 + sizes[0]], number[1 + sizes[0]:]  # country codes are prefix-free
    if cc == "86" and len(nsn) == 11 and nsn.startswith("1"):
        return nsn[:3] + "****" + nsn[-4:]
    lead, tail = (1, 3) if len(nsn) >= 8 else (0, 2)
    return f"+{cc} {nsn[:lead]}{'*' * (len(nsn) - lead - tail)}{nsn[-tail:]}"


def mask_phone(e164: pd.Series) -> pd.Series:
    """Display masking of E.164 numbers for people-facing output.

    CN mobiles become ``138****8000`` (first 3 + last 4 digits). Other numbers
    keep the country code, the first national digit and the last 3 digits
    (``+852 9****567``); numbers of under 8 national digits keep only the last
    2. Anything that is not E.164 (or NA) becomes NA, so nothing leaks.

    >>> mask_phone(pd.Series(["+8613800138000", "+85291234567", None])).tolist()
    ['138****8000', '+852 9****567', <NA>]
    """
    return _map_unique(_as_series(e164, "e164"), _mask_one_phone)


# --------------------------------------------------------------------------- emails
_EMAIL_RE = (r"[a-z0-9_%+\-]+(?:\.[a-z0-9_%+\-]+)*"  # local part: no leading/trailing/double dots
             r"@(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,}")


def normalise_emails(values: pd.Series) -> pd.DataFrame:
    """Normalise and validate e-mail addresses (``email``, ``email_status``).

    NFKC (full-width ``＠``), strip, drop internal whitespace and ``mailto:``,
    lower-case, ``。``/``，``/``,`` -> ``.``, trailing dots removed. Valid means
    ``local@domain.tld`` with a tld of 2+ letters and no empty dot-separated
    parts. Invalid and missing addresses get ``email`` NA.

    >>> normalise_emails(pd.Series([" Zhang.Wei@QQ.COM ", "foo@bar", ""]))["email"].tolist()
    ['zhang.wei@qq.com', <NA>, <NA>]
    """
    values = _as_series(values)
    codes, text = _unique_text(values)
    email = (text.str.replace(_WS + "+", "", regex=True).str.lower()
             .str.replace(r"^mailto:", "", regex=True)
             .str.replace(r"[。，,]", ".", regex=True).str.rstrip("."))
    email = email.mask(email.eq(""))
    valid = email.str.fullmatch(_EMAIL_RE).to_numpy(bool)
    status = np.select([valid, email.notna().to_numpy()], [0, 2], default=3)  # indexes into _STATUSES
    return pd.DataFrame({"email": email.where(valid).astype(_STRING).array.take(codes),
                         "email_status": _STATUSES.take(status[codes])}, index=values.index)


def mask_email(emails: pd.Series) -> pd.Series:
    """First character of the local part, then ``***``: ``zhangwei@163.com`` -> ``z***@163.com``.

    >>> mask_email(pd.Series(["zhangwei@163.com", None, "no-at-sign"])).tolist()
    ['z***@163.com', <NA>, <NA>]
    """
    def one(e: str) -> str | None:
        local, at, domain = e.partition("@")
        return f"{local[:1]}***@{domain}" if local and at and domain else None
    return _map_unique(_as_series(emails, "emails"), one)


# --------------------------------------------------------------------------- names
#: The ~100 most common Chinese surnames (pinyin, most frequent first; homophones
#: such as 张/章 share an entry) plus common compound surnames.
COMMON_SURNAME_PINYINS: tuple[str, ...] = (
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun",
    "ma", "zhu", "hu", "guo", "he", "lin", "gao", "luo", "zheng", "liang", "xie", "song",
    "tang", "han", "feng", "deng", "cao", "peng", "zeng", "xiao", "tian", "dong", "pan",
    "yuan", "cai", "jiang", "yu", "du", "ye", "cheng", "wei", "su", "lv", "lyu", "ding", "ren",
    "lu", "yao", "shen", "zhong", "cui", "tan", "fan", "liao", "shi", "jin", "jia", "xia",
    "fu", "fang", "zou", "xiong", "bai", "meng", "qin", "qiu", "hou", "yin", "xue", "yan",
    "duan", "lei", "long", "tao", "mao", "hao", "gu", "gong", "shao", "wan", "qian", "dai",
    "mo", "kong", "xiang", "chang", "kang", "yi", "qiao", "lai", "wen", "niu", "hong", "ou",
    "zhai", "geng", "guan", "lan", "ni", "bao", "ning", "ge", "an", "ji", "rao", "ouyang",
    "sima", "shangguan", "zhuge", "situ", "dongfang", "huangfu", "murong", "xiahou",
    "zhangsun", "yuchi", "linghu", "gongsun", "yuwen", "duanmu", "nangong",
)
_SURNAME_RANK = {s: i for i, s in enumerate(COMMON_SURNAME_PINYINS)}  # entries are distinct
#: Compound surnames, and single-character surnames whose surname reading differs
#: from the character's default reading (曾 is "zeng" as a surname, not "ceng").
_COMPOUND_SURNAMES = {
    "欧阳": "ou yang", "司马": "si ma", "上官": "shang guan", "诸葛": "zhu ge", "司徒": "si tu",
    "东方": "dong fang", "皇甫": "huang fu", "慕容": "mu rong", "夏侯": "xia hou", "长孙": "zhang sun",
    "尉迟": "yu chi", "万俟": "mo qi", "令狐": "ling hu", "公孙": "gong sun", "宇文": "yu wen",
    "端木": "duan mu", "南宫": "nan gong", "澹台": "tan tai", "单于": "chan yu", "钟离": "zhong li",
}
_SURNAME_READINGS = {
    "曾": "zeng", "单": "shan", "仇": "qiu", "区": "ou", "朴": "piao", "查": "zha", "乐": "yue",
    "翟": "zhai", "覃": "qin", "缪": "miao", "解": "xie", "柏": "bai", "盖": "ge", "秘": "bi",
    "召": "shao", "种": "chong", "员": "yun", "重": "chong",
}
_TITLES = ("先生", "女士", "小姐", "太太", "夫人")
_NAME_PLACEHOLDERS = frozenset({
    "test", "testing", "测试", "abc", "xxx", "anonymous", "匿名", "客户", "顾客", "会员", "用户",
    "姓名", "name", "先生", "女士", "小姐", "dummy", "demo", "asdf",
})
_CHAR_PINYIN: dict[str, str] = {}  # filled lazily, one lazy_pinyin call per distinct character
_CJK_CHAR = re.compile(f"[{_CJK}]")
_NAME_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_NOT_ALNUM = re.compile(r"[\W_]+")


def _cjk_tokens(name: str) -> list[str]:
    """Pinyin per character (surnames from the tables); other runs lower-cased."""
    tokens: list[str] = []
    if name[:2] in _COMPOUND_SURNAMES:
        tokens, name = _COMPOUND_SURNAMES[name[:2]].split(), name[2:]
    elif name[0] in _SURNAME_READINGS:
        tokens, name = [_SURNAME_READINGS[name[0]]], name[1:]
    for piece in _NAME_TOKEN.findall(name):
        token = _CHAR_PINYIN.get(piece) or _NOT_ALNUM.sub("", piece.lower())
        if token:
            tokens.append(token)
    return tokens


def _latin_tokens(name: str) -> list[str]:
    """Lower-cased words, the surname moved first."""
    words = name.split(" ")
    if len(words) == 1:
        return [t] if (t := _NOT_ALNUM.sub("", name.lower())) else []
    tokens = [_NOT_ALNUM.sub("", w.lower()) for w in words]
    caps = [] if name.isupper() or name.islower() else [i for i, w in enumerate(words) if len(w) > 1 and w.isupper()]
    if len(caps) == 1:  # "Wei ZHANG": capitals mark the surname
        surname = caps[0]
    else:               # "Wei Zhang": the last word if it is the likelier surname
        last, first = _SURNAME_RANK.get(tokens[-1]), _SURNAME_RANK.get(tokens[0])
        surname = len(words) - 1 if last is not None and (first is None or last < first) else 0
    tokens.insert(0, tokens.pop(surname))
    return [t for t in tokens if t]


def _lookup(keys: pd.Series, table: dict, default: Any = None, dtype: str = "str") -> pd.Series:
    """``table.get(key, default)`` per row, looked up once per distinct key."""
    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    return pd.Series(pd.array([table.get(k, default) for k in uniques], dtype=dtype).take(codes), index=keys.index)


def _join_words(parts: list[pd.Series]) -> pd.Series:
    """Join string Series with single spaces, skipping NA parts (pyarrow, vectorised)."""
    arrays = [pa.array(p.array).cast(pa.large_string()) for p in parts]
    joined = pc.binary_join_element_wise(*arrays, pa.scalar(" ", pa.large_string()), null_handling="skip")
    return pd.Series(joined, index=parts[0].index, dtype="str")


def _learn_pinyin(chars: Iterable[str]) -> None:
    from pypinyin import lazy_pinyin  # imported here: ~0.2 s, and most callers of this module never need it

    for char in set(chars) - _CHAR_PINYIN.keys():
        if isinstance(char, str) and _CJK_CHAR.fullmatch(char):
            _CHAR_PINYIN[char] = lazy_pinyin(char)[0].lower()


def _cjk_pinyin(names: pd.Series) -> pd.Series:
    """Vectorised :func:`_cjk_tokens` for names made of CJK characters only."""
    chars = [names.str[k].replace("", np.nan) for k in range(int(names.str.len().max()))]
    for c in chars:
        _learn_pinyin(c.unique())
    tokens = [_lookup(c, _CHAR_PINYIN) for c in chars]
    compound = _lookup(names.str[:2], _COMPOUND_SURNAMES)
    tokens[0] = compound.fillna(_lookup(chars[0], _SURNAME_READINGS)).fillna(tokens[0])
    if len(tokens) > 1:
        tokens[1] = tokens[1].where(compound.isna())
    return _join_words(tokens)


def _latin_pinyin(names: pd.Series) -> pd.Series:
    """Vectorised :func:`_latin_tokens` for names of 1-3 ASCII words."""
    rest = names.str.replace("^[^ ]+ ?", "", regex=True)
    words = [names.str.replace(" .*$", "", regex=True), rest.str.replace(" .*$", "", regex=True),
             rest.str.replace("^[^ ]+ ?", "", regex=True)]
    words = [w.mask(w.eq("")) for w in words]
    lower = [w.str.lower() for w in words]
    n = 1 + words[1].notna().to_numpy() + words[2].notna().to_numpy()
    caps = np.column_stack([(w.str.isupper() & (w.str.len() > 1)).to_numpy(bool) for w in words])
    caps &= ~(names.str.isupper() | names.str.islower()).to_numpy(bool)[:, None]
    surnames = pa.array(COMMON_SURNAME_PINYINS, type=pa.large_string())
    rank = [pc.index_in(pa.array(w.array), value_set=surnames).to_numpy(zero_copy_only=False) for w in lower]
    rank = [np.nan_to_num(r.astype(float), nan=np.inf) for r in rank]  # not a surname: rank inf
    last_rank = np.choose(n - 1, rank)
    surname = np.where(caps.sum(axis=1) == 1, caps.argmax(axis=1),
                       np.where((n > 1) & (last_rank < rank[0]), n - 1, 0))
    order = [surname, np.where(surname == 0, 1, 0), np.where(surname == 2, 1, 2)]  # surname, then the rest
    return _join_words([lower[0].where(k == 0, lower[1].where(k == 1, lower[2])) for k in order])


def normalise_names(values: pd.Series) -> pd.DataFrame:
    """Display name, pinyin (surname first) and a matching key for personal names.

    NFKC, trim, collapse whitespace, drop spaces between CJK characters and
    leading Latin titles (Mr/Ms/Dr...). A trailing 先生/女士/小姐/太太/夫人 is
    dropped when at least 2 CJK characters remain (``王小明先生`` -> ``王小明``;
    ``王先生`` is kept, as a lone ``王`` would pass for a full name). Latin words
    written all-lower or all-upper become Title Case (``ZHANG wei`` -> ``Zhang
    Wei``); mixed-case words (``McDonald``) are kept. CJK characters become
    pinyin per character (lazy_pinyin's default reading, cached), with compound
    and polyphonic surnames read from a table, so a character always maps the
    same way. Latin names are put surname first when one word is in capitals
    (``Wei ZHANG``) or when the last word is a common surname that is more
    common than the first (``Wei Zhang`` -> ``zhang wei``; ``Zhang Wei`` stays).
    The display name keeps the written order. Placeholders (null, test, -,
    ***, digits only) are missing.

    >>> df = normalise_names(pd.Series(["张 伟", "Wei Zhang", "欧阳娜娜", "null"]))
    >>> df["name"].tolist(), df["name_key"].tolist()
    (['张伟', 'Wei Zhang', '欧阳娜娜', <NA>], ['zhangwei', 'zhangwei', 'ouyangnana', <NA>])
    """
    values = _as_series(values)
    codes, text = _unique_text(values)
    text = _patch(text, text.str.contains("[\t\n\r\f\v]|  ", regex=True).to_numpy(bool),
                  lambda t: t.str.replace(_WS + "+", " ", regex=True))
    has_cjk = text.str.contains(f"[{_CJK}]", regex=True).to_numpy(bool)
    spaced = text.str.contains(" ", regex=False).to_numpy(bool)
    between = f"([{_CJK}]) ([{_CJK}])"  # twice, as matches cannot overlap ("张 伟 明")
    text = _patch(text, has_cjk & spaced, lambda t: t.str.replace(between, r"\1\2", regex=True)
                  .str.replace(between, r"\1\2", regex=True))
    text = _patch(text, ~has_cjk & spaced,
                  lambda t: t.str.replace(r"^(?i:mr|mrs|ms|miss|dr|prof)\.? ([^ ])", r"\1", regex=True))
    text = _patch(text, has_cjk & text.str.endswith(_TITLES).to_numpy(bool),
                  lambda t: t.str.replace(f"^([{_CJK}]{{2,}})(?:{'|'.join(_TITLES)})$", r"\1", regex=True))
    letters = has_cjk | text.str.contains("[A-Za-z\u00c0-\u024f]", regex=True).to_numpy(bool)
    text = text.mask(text.str.lower().isin(_NAME_PLACEHOLDERS | _ABSENT).to_numpy(bool) | ~letters)
    pinyin = pd.Series("", index=text.index, dtype="str")
    simple_cjk = text.str.fullmatch(f"[{_CJK}]{{1,8}}").to_numpy(bool)
    simple_latin = text.str.fullmatch("[A-Za-z]+(?: [A-Za-z]+){0,2}").to_numpy(bool)
    if simple_cjk.any():
        pinyin[simple_cjk] = _cjk_pinyin(text[simple_cjk])
    if simple_latin.any():
        pinyin[simple_latin] = _latin_pinyin(text[simple_latin])
    other = np.flatnonzero(text.notna().to_numpy() & ~simple_cjk & ~simple_latin)
    others = text.iloc[other].tolist()
    _learn_pinyin("".join(n for n, cjk in zip(others, has_cjk[other]) if cjk))
    pinyin.iloc[other] = [" ".join(_cjk_tokens(n) if cjk else _latin_tokens(n)) for n, cjk in zip(others, has_cjk[other])]
    pinyin = pinyin.astype(_STRING).replace("", pd.NA)
    display = text.where(pinyin.notna().to_numpy()).astype(_STRING)
    # Title Case for all-lower / all-upper words; only names having such a word go through Python.
    latin = ~has_cjk & display.notna().to_numpy() & text.str.contains(
        "(?:^| )(?:[^A-Z ]+|[^a-z ]+)(?: |$)", regex=True).to_numpy(bool)
    display[latin] = [" ".join(w.title() if w.islower() or w.isupper() else w for w in n.split())
                      for n in text[latin].tolist()]
    columns = {"name": display, "name_pinyin": pinyin, "name_key": pinyin.str.replace(" ", "", regex=False)}
    return pd.DataFrame({k: v.array.take(codes) for k, v in columns.items()}, index=values.index)


def mask_name(names: pd.Series) -> pd.Series:
    """Keep the first character of each word, star the rest.

    ``张伟`` -> ``张*``, ``欧阳娜娜`` -> ``欧***``, ``Zhang Wei`` -> ``Z**** W**``
    (word lengths are kept; a one-character name is unchanged).

    >>> mask_name(pd.Series(["张伟", "Zhang Wei", None])).tolist()
    ['张*', 'Z**** W**', <NA>]
    """
    return _map_unique(_as_series(names, "names"), lambda n: re.sub(r"\B\w", "*", n))


# --------------------------------------------------------------------------- timestamps
_UNITS = ("s", "ms", "us", "ns")
_TIME_OFFSET = r"([0-9]:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?) ?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$"  # group 1: the time
_HAS_OFFSET = _TIME_OFFSET.replace("(", "(?:", 1)
_RFC2822 = ("%a, %d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S %z", "%a, %d %b %Y %H:%M %z")


def _check_timezone(name: Any) -> str:
    try:
        ZoneInfo(name)
        return name
    except Exception:  # ZoneInfoNotFoundError, ValueError, TypeError
        raise ValueError("The 'timezone' parameter must be an IANA time-zone name such as "
                         f"'Asia/Shanghai'. Got {name!r} instead.") from None


def _check_formats(formats: Any) -> list[str]:
    if formats is None:
        return []
    if isinstance(formats, str) or not all(isinstance(f, str) for f in formats):
        raise ValueError("The 'formats' parameter must be a list of strftime-style strings such as "
                         f"['%d.%m.%Y %H:%M']. Got {formats!r} instead.")
    return list(formats)


def _rewrite_datetime_text(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Rewrite Chinese, slashed, dotted and GMT forms into ISO-like text; also flag 下午 (pm)."""
    s = s.str.replace(_WS + "+", " ", regex=True)
    pm = s.str.contains("下午|晚上|中午", regex=True).to_numpy(bool)
    cn = s.str.contains("[年月日号时点分秒午晚凌早]", regex=True).to_numpy(bool)
    if cn.any():
        c = s[cn]
        c = (c.str.replace("([0-9]{4}) ?年 ?([0-9]{1,2}) ?月 ?([0-9]{1,2}) ?[日号]?", r"\1-\2-\3 ", regex=True)
             .str.replace("上午|下午|晚上|中午|凌晨|早上", "", regex=True)
             .str.replace("([0-9]{1,2}) ?[时点] ?([0-9]{1,2}) ?分 ?([0-9]{1,2}) ?秒", r"\1:\2:\3", regex=True)
             .str.replace("([0-9]{1,2}) ?[时点] ?([0-9]{1,2}) ?分?", r"\1:\2", regex=True)
             .str.replace("([0-9]{1,2}) ?[时点]", r"\1:00", regex=True)
             .str.replace("  +", " ", regex=True))
        s = s.copy()
        s[cn] = c
    s = (s.str.replace("^([0-9]{4})[/.]([0-9]{1,2})[/.]([0-9]{1,2})", r"\1-\2-\3", regex=True)
         .str.replace("^([0-9]{1,2})[.-]([0-9]{1,2})[.-]([0-9]{4})", r"\1/\2/\3", regex=True)
         .str.replace(" ?(?:GMT|UTC)$", " +0000", regex=True).str.strip())
    return s, pm


def _parse_datetime_text(text: pd.Series, formats: list[str], dayfirst: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parse text (RangeIndex); returns UTC instants -- wall times where naive -- and the naive mask.

    Each pass only sees rows still unparsed; clean ISO 8601 data never reaches
    the rewriting and fallback passes.
    """
    result = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    naive = np.zeros(len(text), dtype=bool)

    def attempt(s: pd.Series, fmt: str, wall: bool | None = None) -> None:
        s = s[np.isnat(result[s.index.to_numpy()])]
        if s.empty:
            return
        parsed = pd.to_datetime(s, format=fmt, errors="coerce", utc=True)
        parsed = parsed.dt.tz_localize(None).to_numpy("datetime64[us]").copy()
        if fmt == "ISO8601":  # "2025" and "2025-03" are not timestamps
            parsed[(s.str.len() < 8).to_numpy(bool)] = np.datetime64("NaT")
        if wall is None:
            wall = ~s.str.contains(_HAS_OFFSET, regex=True).to_numpy(bool)
        pos = s.index.to_numpy()
        result[pos] = parsed
        naive[pos] = wall & ~np.isnat(parsed)

    def iso_like(s: pd.Series) -> pd.Series:  # failing rows are slow in to_datetime: gate them out
        return s[s.str.contains("^[0-9]{4}-|^[0-9]{8}(?:$|T)", regex=True).to_numpy(bool)]

    s = text.dropna()
    for fmt in formats:
        attempt(s, fmt, wall="%z" not in fmt and "%Z" not in fmt)
    attempt(iso_like(s), "ISO8601")
    rest = s[np.isnat(result[s.index.to_numpy()])]
    if not rest.empty:
        rest, pm = _rewrite_datetime_text(rest)
        attempt(iso_like(rest), "ISO8601")
        attempt(rest[rest.str.fullmatch("[0-9]{14}").to_numpy(bool)], "%Y%m%d%H%M%S", wall=True)
        slashed = rest[rest.str.contains("^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}", regex=True).to_numpy(bool)]
        for order in (("%d/%m", "%m/%d") if dayfirst else ("%m/%d", "%d/%m")):
            for fmt in (f"{order}/%Y %H:%M:%S", f"{order}/%Y %H:%M", f"{order}/%Y"):
                attempt(slashed, fmt, wall=True)
        rfc = rest[rest.str.contains("^(?:[A-Za-z]{3}, )?[0-9]{1,2} [A-Za-z]{3} [0-9]{4} ", regex=True).to_numpy(bool)]
        for fmt in _RFC2822:
            attempt(rfc, fmt, wall=False)
        afternoon = rest.index.to_numpy()[pm]
        afternoon = afternoon[naive[afternoon]]
        hours = (result[afternoon] - result[afternoon].astype("datetime64[D]")) // np.timedelta64(1, "h")
        result[afternoon[hours < 12]] += np.timedelta64(12, "h")
    return result, naive


def _localise(wall: np.ndarray, tz: str) -> np.ndarray:
    """Wall times in ``tz`` to naive UTC instants (ambiguous: standard time; gaps: shift forward)."""
    if tz == "UTC" or len(wall) == 0:
        return wall
    local = pd.DatetimeIndex(wall).tz_localize(tz, ambiguous=np.zeros(len(wall), dtype=bool),
                                               nonexistent="shift_forward")
    return local.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[us]")


_EPOCH_UNITS = {10: "s", 13: "ms", 16: "us", 19: "ns"}  # digits of an epoch number of 2001-2286 in each unit


def _epoch_unit(values: pd.Series) -> pd.Series:
    """The epoch unit a value looks written in (``"ms"`` for ``1772330400000``), NA for anything else.

    A whole number (a fraction allowed) whose digits put it between 2001 and 2286 in a unit:
    10 digits are seconds, 13 milliseconds, 16 microseconds, 19 nanoseconds. Computed per
    distinct value; used to explain why an unparseable timestamp failed.

    >>> _epoch_unit(pd.Series(["1772330400000", "1772330400", "2026-03-01", "123"])).tolist()
    ['ms', 's', <NA>, <NA>]
    """
    codes, text = _unique_text(_as_series(values))
    digits = text.str.extract("^([0-9]+)(?:[.][0-9]*)?$", expand=False).str.len()
    unit = digits.map(_EPOCH_UNITS).astype("string")
    return pd.Series(unit.to_numpy()[codes], index=values.index, dtype="string")


def parse_timestamps(values: pd.Series, *, formats: list[str] | None = None, timezone: str | pd.Series = "UTC",
                     unit: str | None = None, dayfirst: bool = False) -> pd.Series:
    """Parse event timestamps to ``datetime64[us, UTC]``; NaT where unparseable.

    With ``unit`` ("s", "ms", "us", "ns") numbers are epoch values in that unit
    (UTC instants) and any other text is parsed as without ``unit``, so one
    column may mix ``1772330400000`` and ``2026-03-01 10:00:00``. Text: the
    explicit ``formats`` are tried in order, then ISO 8601 (``T`` or space,
    with or without offset), ``2025/03/05 14:22:01``, ``20250305142201``,
    Chinese ``2025年3月5日 下午2点22分``, ``05/03/2025`` (day first if
    ``dayfirst``, the other order as fallback) and RFC 2822; each pass only
    fills rows still missing. Text with an offset (``Z``, ``+08:00``, ``GMT``)
    uses it -- mixed offsets are fine; naive times are local to ``timezone``
    (an IANA name, or a Series of names aligned with ``values``; NA -> UTC).
    Work is done on unique values.

    >>> parse_timestamps(pd.Series(["2025-03-05 14:22", "2025-03-05T14:22:00+00:00"]),
    ...                  timezone="Asia/Shanghai").dt.strftime("%H:%M").tolist()
    ['06:22', '14:22']
    >>> parse_timestamps(pd.Series(["2026-03-01 10:00:00", "1772330400000"]), unit="ms",
    ...                  timezone="Asia/Shanghai").dt.strftime("%d %H:%M").tolist()
    ['01 02:00', '01 02:00']
    """
    values = _as_series(values)
    formats = _check_formats(formats)
    if unit is not None and unit not in _UNITS:
        raise ValueError(f"The 'unit' parameter must be one of {_UNITS} or None. Got {unit!r} instead.")
    if isinstance(timezone, pd.Series):
        tz_codes, tz_labels = _small_codes(_aligned(timezone, values, "timezone"),
                                           lambda z: z.strip() if isinstance(z, str) and z.strip() else "UTC")
        for label in tz_labels:
            _check_timezone(label)
    else:
        tz_codes, tz_labels = np.zeros(len(values), dtype=np.intp), [_check_timezone(timezone)]

    if pd.api.types.is_datetime64_any_dtype(values.dtype):  # aware: an instant; naive: a wall time
        aware = isinstance(values.dtype, pd.DatetimeTZDtype)
        codes = np.arange(len(values))
        instants = (values.dt.tz_convert("UTC").dt.tz_localize(None) if aware else values).to_numpy("datetime64[us]")
        naive = np.zeros(len(values), dtype=bool) if aware else ~np.isnat(instants)
    elif unit is not None:
        codes, text = _unique_text(values)
        numbers = pd.to_numeric(text, errors="coerce")
        instants = pd.to_datetime(numbers, unit=unit, errors="coerce").to_numpy("datetime64[us]").copy()
        naive = np.zeros(len(text), dtype=bool)
        words = (text.notna() & numbers.isna()).to_numpy(bool)  # not a number: a written date and time
        if words.any():
            instants[words], naive[words] = _parse_datetime_text(text[words].reset_index(drop=True), formats, dayfirst)
    else:
        codes, text = _unique_text(values)
        instants, naive = _parse_datetime_text(text, formats, dayfirst)

    if len(tz_labels) == 1:  # localise the unique values, then spread them out
        instants = instants.copy()
        instants[naive] = _localise(instants[naive], tz_labels[0])
        out = instants[codes]
    else:
        out, naive_rows = instants[codes], naive[codes]
        for k, tz in enumerate(tz_labels):
            rows = naive_rows & (tz_codes == k)
            out[rows] = _localise(out[rows], tz)
    return pd.Series(out, index=values.index, name=values.name).dt.tz_localize("UTC")


def parse_dates(values: pd.Series, *, formats: list[str] | None = None, dayfirst: bool = False) -> pd.Series:
    """Parse calendar dates (birth dates) to naive ``datetime64[us]`` at midnight.

    Accepts the forms of :func:`parse_timestamps` (``1990-03-05``, ``1990/3/5``,
    ``19900305``, ``1990年3月5日``, ``05/03/1990`` with ``dayfirst``); a time or
    offset is ignored (the written date is kept). Dates before 1900-01-01 or
    after today, and junk, are NaT.

    >>> parse_dates(pd.Series(["1990年3月5日", "05/03/1990", "2999-01-01"]), dayfirst=True).tolist()
    [Timestamp('1990-03-05 00:00:00'), Timestamp('1990-03-05 00:00:00'), NaT]
    """
    values = _as_series(values)
    formats = _check_formats(formats)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        codes = np.arange(len(values))
        walls = (values.dt.tz_localize(None) if values.dt.tz else values).to_numpy("datetime64[us]")
    else:
        codes, text = _unique_text(values)
        text = text.str.replace(_TIME_OFFSET, r"\1", regex=True)
        walls, _ = _parse_datetime_text(text, formats, dayfirst)
    days = walls.astype("datetime64[D]")
    days[(days < np.datetime64("1900-01-01")) | (days > np.datetime64(date.today()))] = np.datetime64("NaT")
    return pd.Series(days.astype("datetime64[us]")[codes], index=values.index, name=values.name)


# --------------------------------------------------------------------------- money
#: Currency symbols and names mapped to ISO 4217 codes (keys are upper-cased).
#: "¥" means CNY here (Chinese data), "$" means USD.
CURRENCY_ALIASES: dict[str, str] = {
    "RMB": "CNY", "¥": "CNY", "CN¥": "CNY", "元": "CNY", "人民币": "CNY",
    "HK$": "HKD", "港币": "HKD", "港元": "HKD", "$": "USD", "US$": "USD", "美元": "USD",
    "MOP$": "MOP", "澳门元": "MOP", "NT$": "TWD", "新台币": "TWD", "€": "EUR", "欧元": "EUR",
    "£": "GBP", "英镑": "GBP", "日元": "JPY", "円": "JPY",
}


def _currency_code(value: Any) -> str | None:
    text = _scalar_text(value)
    if text is None:
        return None
    code = unicodedata.normalize("NFKC", text).strip().upper()
    return None if code.lower() in _ABSENT else CURRENCY_ALIASES.get(code, code)


def _parse_amounts(amounts: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(amounts.dtype) and not pd.api.types.is_bool_dtype(amounts.dtype):
        return amounts.to_numpy(dtype="float64", na_value=np.nan)
    codes, text = _unique_text(amounts)
    text = text.str.replace("[, \t\n\r\f\v]", "", regex=True)
    negative = text.str.fullmatch(r"\(.*\)").fillna(False).to_numpy(bool)
    number = text.str.extract(r"^[^0-9.+\-]*([+\-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))[^0-9]*$")[0]
    parsed = pd.to_numeric(number, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(negative, -parsed, parsed)[codes]


def convert_currency(amounts: pd.Series, currencies: pd.Series | str, *, rates: dict[str, float],
                     base: str = "CNY") -> pd.Series:
    """Convert amounts to ``base`` (float64); ``rates`` are units of base per 1 unit of currency.

    Codes are NFKC'd, stripped, upper-cased and aliased (RMB/¥/人民币 -> CNY,
    HK$ -> HKD, $/US$ -> USD, see ``CURRENCY_ALIASES``). Amount text such as
    ``1,299.00``, ``¥1299`` or full-width digits is parsed; unparseable amounts
    and rows without a currency are NaN. A currency missing from ``rates``
    raises ``ValueError``.

    >>> convert_currency(pd.Series(["1,000", "¥10"]), pd.Series(["HK$", "RMB"]),
    ...                  rates={"HKD": 0.92}).tolist()
    [920.0, 10.0]
    """
    amounts = _as_series(amounts, "amounts")
    base_code = _currency_code(base) if isinstance(base, str) else None
    if not base_code:
        raise ValueError(f"The 'base' parameter must be a currency code such as 'CNY'. Got {base!r} instead.")
    if not isinstance(rates, dict):
        raise ValueError(f"The 'rates' parameter must be a dict such as {{'HKD': 0.92}}. Got {rates!r} instead.")
    table: dict[str, float] = {base_code: 1.0}
    for code, rate in rates.items():
        ok = isinstance(rate, (int, float)) and not isinstance(rate, bool) and np.isfinite(rate) and rate > 0
        key = _currency_code(code)
        if not ok or key is None or (key == base_code and rate != 1.0):
            raise ValueError("The 'rates' parameter must map currency codes to positive numbers (the base "
                             f"currency to 1.0). Got {code!r}: {rate!r} instead.")
        table[key] = float(rate)
    if isinstance(currencies, str):
        codes, labels = np.zeros(len(amounts), dtype=np.intp), [_currency_code(currencies)]
    else:
        codes, labels = _small_codes(_aligned(currencies, amounts, "currencies"), _currency_code)
    unknown = sorted(c for c in labels if c is not None and c not in table)
    if unknown:
        raise ValueError(f"Unknown currency codes {unknown}: no rate given. Known codes: {sorted(table)}.")
    factor = np.array([np.nan if c is None else table[c] for c in labels], dtype="float64")[codes]
    return pd.Series(_parse_amounts(amounts) * factor, index=amounts.index, name=amounts.name, dtype="float64")


# --------------------------------------------------------------------------- placeholders
#: Regexes (``re.search`` semantics, anchored; RE2 syntax so they run vectorised) marking
#: placeholder values: one digit repeated 8+ times after an optional + and up to 3 country-code digits
#: (``+8611111111111``, ``88888888``); ``138`` + eight 0s or 8s (with or without
#: +86); only zeros and dashes; ``-1``; ascending runs ``12345678(9(0))``; word
#: placeholders (null, none, anonymous, unknown, test, void, abc123, 匿名, 测试,
#: ...); only asterisks; e-mails with a local part such as test/null/none/
#: noreply/a, or at test.com/example.com (and .cn/.org/.net).
DEFAULT_PLACEHOLDER_PATTERNS: tuple[str, ...] = (
    r"^\+?\d{0,3}?(?:0{8,}|1{8,}|2{8,}|3{8,}|4{8,}|5{8,}|6{8,}|7{8,}|8{8,}|9{8,})$",
    r"^(?:\+?86)?138(?:0{8}|8{8})$",
    r"^[0-]*$",
    r"^-1$",
    r"^\+?(?:86)?0?12345678(?:9|90)?$",
    r"(?i)^(?:null|none|nil|nan|n/?a|undefined|anonymous|anon|unknown|test|testing|void|abc123|abc"
    r"|x{3,}|asdf|qwerty|dummy|demo|sample|匿名|未知|测试|无|空|不详)$",
    r"^\*+$",
    r"(?i)^(?:test|null|none|noreply|no-reply|donotreply|a|abc|xxx|asdf)@",
    r"(?i)@(?:test|example)\.(?:com|cn|org|net)$",
)


def _matches_any(text: pd.Series, compiled: list[re.Pattern]) -> np.ndarray:
    """True where a value matches any pattern: one vectorised RE2 pass (pyarrow) when every
    pattern is RE2 syntax, else Python's ``re`` value by value (e.g. for backreferences)."""
    if not compiled:
        return np.zeros(len(text), dtype=bool)
    scoped = []
    for p in compiled:  # inline (?i) at the start becomes a scoped group so patterns can be joined
        src = p.pattern
        scoped.append(f"(?i:{src[4:]})" if src.startswith("(?i)") else f"(?:{src})")
    try:
        import pyarrow.compute as pc

        arr = arrow_strings(text)
        hit = pc.match_substring_regex(arr, "|".join(scoped))
        return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
    except Exception:  # not RE2 syntax: fall back to Python's re
        return np.array([isinstance(t, str) and any(p.search(t) for p in compiled) for t in text.tolist()],
                        dtype=bool)


def flag_placeholders(values: pd.Series, *, blocklist: Iterable[str] = (),
                      patterns: Iterable[str] = DEFAULT_PLACEHOLDER_PATTERNS,
                      max_records_per_value: int | None = None) -> pd.Series:
    """True where a (normalised) value is a placeholder rather than an identifier.

    A value is flagged when it is in ``blocklist`` (case-insensitive), matches
    one of ``patterns`` (see ``DEFAULT_PLACEHOLDER_PATTERNS``), or occurs in
    more than ``max_records_per_value`` rows. NA is never flagged.

    >>> flag_placeholders(pd.Series(["+8611111111111", "+8613912345678", "test@example.com", None])).tolist()
    [True, False, True, False]
    """
    values = _as_series(values)
    if max_records_per_value is not None and (
            not isinstance(max_records_per_value, (int, np.integer)) or max_records_per_value < 1):
        raise ValueError("The 'max_records_per_value' parameter must be a positive integer or None. "
                         f"Got {max_records_per_value!r} instead.")
    compiled = []
    for pattern in ([patterns] if isinstance(patterns, str) else list(patterns)):
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError):
            raise ValueError(f"The 'patterns' parameter must hold regular expressions. Got {pattern!r} instead.") from None
    blocked = {b.strip().casefold() for b in blocklist}
    codes, text = _unique_text(values, absent_to_na=False)
    flags = text.str.casefold().isin(blocked).to_numpy(bool) | _matches_any(text, compiled)
    if max_records_per_value is not None:
        flags |= np.bincount(codes, minlength=len(text)) > max_records_per_value
    flags &= text.notna().to_numpy()
    return pd.Series(flags[codes], index=values.index, name=values.name, dtype=bool)


# ----------------------------------------------------------------------------- text and missing values
@functools.lru_cache(maxsize=1)
def _missing_set():
    """MISSING_TOKENS as a pyarrow value set (built on first use; keeps imports light)."""
    return pa.array(sorted(MISSING_TOKENS), type=pa.large_string())


def arrow_strings(s: pd.Series):
    """The values of a text Series as one pyarrow ``large_string`` array (nulls kept)."""
    if not isinstance(s.dtype, pd.StringDtype) or s.dtype.storage != "pyarrow":
        s = s.astype("string[pyarrow]")
    arr = pa.chunked_array(s.array._pa_array) if hasattr(s.array, "_pa_array") else pa.array(s.array)
    return arr.cast(pa.large_string())


def is_missing(s: pd.Series) -> pd.Series:
    """True for NA and for the spellings exports use for 'nothing' ("", "null", "-", ...).

    >>> is_missing(pd.Series([" NULL ", "x", None, "-"], dtype="string")).tolist()
    [True, False, True, True]
    """
    if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
        return s.isna()
    norm = pc.utf8_lower(pc.utf8_trim_whitespace(arrow_strings(s)))
    hit = pc.or_kleene(pc.is_null(norm), pc.is_in(norm, value_set=_missing_set()))
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=s.index)


def parse_number(s: pd.Series) -> pd.Series:
    """Numbers as exports write them: thousands separators, currency signs, full-width digits.

    Work happens once per distinct value; plain numbers take a fast path.

    >>> parse_number(pd.Series(["1,299.00", "¥5", "１２", "N/A", None])).tolist()
    [1299.0, 5.0, 12.0, nan, nan]
    """
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    u = pd.Series(uniq, dtype="string")
    num = pd.to_numeric(u, errors="coerce").astype("float64")
    slow = num.isna() & u.notna()
    if slow.any():
        cleaned = (u[slow].str.normalize("NFKC").str.strip()
                   .str.replace(r"[,\s¥￥$]|HK\$|US\$|RMB|CNY|HKD|USD", "", regex=True))
        num[slow] = pd.to_numeric(cleaned, errors="coerce").astype("float64")
    values = num.to_numpy()[np.where(codes < 0, 0, codes)] if len(num) else np.full(len(s), np.nan)
    return pd.Series(np.where(codes < 0, np.nan, values), index=s.index, dtype="float64")


def normalise_text(s: pd.Series) -> pd.Series:
    """NFKC, trimmed, with 'missing' spellings turned into NA (computed once per distinct value).

    >>> normalise_text(pd.Series(["  ａｂｃ ", "N/A", None])).tolist()
    ['abc', <NA>, <NA>]
    """
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    u = pd.Series(uniq, dtype="string")
    u = u.str.normalize("NFKC").str.strip()
    u = u.mask(is_missing(u))
    out = u.take(np.where(codes < 0, 0, codes)) if len(u) else pd.Series(pd.NA, index=range(len(s)), dtype="string")
    out = out.where(codes >= 0) if len(u) else out
    out.index = s.index
    return out.astype("string")


def category_codes(s: pd.Series, values: dict[str, list[str]]) -> pd.Series:
    """Codes of a category: each spelling (case-insensitive, NFKC, trimmed) or code itself maps to its code.

    >>> category_codes(pd.Series(["女", " F", "x"]), {"F": ["女", "female"]}).tolist()
    ['F', 'F', <NA>]
    """
    lookup = {str(v).strip().casefold(): code for code, spellings in values.items() for v in spellings}
    lookup.update({code.casefold(): code for code in values})
    t = normalise_text(s)
    return t.str.casefold().map(lookup).astype("string")


def typed_values(values: pd.Series, identifier: str, pattern: str | None = None) -> pd.Series:
    r"""Values that qualify as ``identifier`` — normalised (E.164 phones, lower-case e-mails,
    trimmed ids matching ``pattern``) — and NA elsewhere. The identity stage and the erasure
    suppression list type values the same way with it.

    >>> typed_values(pd.Series(["13800138000", "M00000001"]), "phone").tolist()
    ['+8613800138000', <NA>]
    >>> typed_values(pd.Series(["M00000001", "x1"]), "member_id", r"^M\d{8}$").tolist()
    ['M00000001', <NA>]
    """
    v = values.astype("string").str.strip()
    if identifier == "phone":
        ph = normalise_phones(v)
        return ph["e164"].where(ph["phone_status"] == "valid")
    if identifier == "email":
        em = normalise_emails(v)
        return em["email"].where(em["email_status"] == "valid")
    if pattern:
        return v.where(v.str.fullmatch(pattern).fillna(False))
    return v

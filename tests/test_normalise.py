"""Tests for workbench.normalise: real-world inputs, NA handling, alignment, caching."""

from __future__ import annotations

import doctest
from datetime import date

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from workbench import normalise as nz
from workbench.normalise import (
    MISSING_TOKENS,
    convert_currency,
    flag_placeholders,
    mask_email,
    mask_name,
    mask_phone,
    normalise_emails,
    normalise_names,
    normalise_phones,
    parse_dates,
    parse_timestamps,
)

NA = pd.NA
ODD_INDEX = ["r9", "r2", "r7"]


def test_docstring_examples_run():
    result = doctest.testmod(nz, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 9
    assert result.failed == 0


def test_missing_tokens_keep_unknown_apart():
    assert {"", "null", "none", "nan", "n/a", "na", "-", "--", "无", "空"} <= MISSING_TOKENS
    assert "未知" not in MISSING_TOKENS and "unknown" not in MISSING_TOKENS


# --------------------------------------------------------------------------- phones
PHONE_CASES = [
    # raw, e164, status, masked
    ("+86 138 0013 8000", "+8613800138000", "valid", NA),
    ("0086-13800138000", "+8613800138000", "valid", NA),
    ("86 13800138000", "+8613800138000", "valid", NA),
    ("8613800138000", "+8613800138000", "valid", NA),
    ("13800138000", "+8613800138000", "valid", NA),
    ("138-0013-8000", "+8613800138000", "valid", NA),
    ("(+86)13800138000", "+8613800138000", "valid", NA),
    ("１３８００１３８０００", "+8613800138000", "valid", NA),
    (" \t13800138000\n ", "+8613800138000", "valid", NA),
    ("+852 9123 4567", "+85291234567", "valid", NA),
    ("852-91234567", "+85291234567", "valid", NA),
    ("021-6234 5678", "+862162345678", "valid", NA),
    ("abc", NA, "invalid", NA),
    ("123", NA, "invalid", NA),
    ("13800", NA, "invalid", NA),
    ("14012345678", NA, "invalid", NA),  # 140 is not a CN mobile range
    ("138****8000", NA, "masked", "138****8000"),
    ("138＊＊＊＊8000", NA, "masked", "138****8000"),
    ("+86 138****8000", NA, "masked", "138****8000"),
    ("138xxxx8000", NA, "masked", "138****8000"),
    ("1380****000", NA, "masked", "138*****000"),
    ("****", NA, "invalid", NA),
    ("", NA, "missing", NA),
    (None, NA, "missing", NA),
    (np.nan, NA, "missing", NA),
    ("null", NA, "missing", NA),
    ("NULL", NA, "missing", NA),
    ("none", NA, "missing", NA),
    ("-", NA, "missing", NA),
    ("N/A", NA, "missing", NA),
    ("未知", NA, "missing", NA),
]


@pytest.mark.parametrize(("raw", "e164", "status", "masked"), PHONE_CASES)
def test_normalise_phones_cases(raw, e164, status, masked):
    out = normalise_phones(pd.Series([raw], dtype=object))
    row = out.iloc[0]
    assert (row["e164"] is NA and e164 is NA) or row["e164"] == e164
    assert row["phone_status"] == status
    assert (row["masked"] is NA and masked is NA) or row["masked"] == masked


def test_normalise_phones_whole_table_at_once_matches_row_by_row():
    raws = pd.Series([c[0] for c in PHONE_CASES], dtype=object)
    out = normalise_phones(raws)
    assert out["phone_status"].tolist() == [c[2] for c in PHONE_CASES]
    assert out["e164"].fillna("").tolist() == [c[1] if isinstance(c[1], str) else "" for c in PHONE_CASES]


def test_normalise_phones_numbers_stored_as_numbers():
    out = normalise_phones(pd.Series([13800138000, 8613800138000.0, np.nan]))
    assert out["e164"].tolist() == ["+8613800138000", "+8613800138000", NA]


def test_normalise_phones_dtypes_columns_and_index():
    values = pd.Series(["13800138000", None, "138****8000"], index=ODD_INDEX)
    out = normalise_phones(values)
    assert list(out.columns) == ["e164", "phone_status", "masked"]
    assert out.index.tolist() == ODD_INDEX
    assert all(out[c].dtype == pd.StringDtype() for c in out.columns)
    assert out.loc["r7", "masked"] == "138****8000" and out.loc["r2", "phone_status"] == "missing"


@pytest.mark.parametrize(("raw", "region", "e164"), [
    ("91234567", "HK", "+85291234567"),
    ("91234567", "hk ", "+85291234567"),   # region codes are normalised
    ("91234567", None, NA),                 # missing region -> default CN: not valid
    ("91234567", "XX", NA),                 # unknown region -> default CN
    ("13800138000", "HK", "+8613800138000"),  # mainland mobile at an HK store: default region next
    ("8613800138000", "HK", "+8613800138000"),
    ("2123 4567", "HK", "+85221234567"),
    ("02162345678", "HK", "+862162345678"),
])
def test_normalise_phones_per_row_regions(raw, region, e164):
    out = normalise_phones(pd.Series([raw], index=[5]), regions=pd.Series([region], index=[5]))
    got = out.loc[5, "e164"]
    assert (got is NA and e164 is NA) or got == e164


def test_normalise_phones_default_region_hk():
    out = normalise_phones(pd.Series(["91234567", "8613800138000", "13800138000"]), default_region="HK")
    # a bare CN mobile is not a HK number, and 11 digits starting with 1 are never read as +1
    assert out["e164"].tolist() == ["+85291234567", "+8613800138000", NA]


def test_normalise_phones_same_value_different_regions():
    values = pd.Series(["91234567"] * 4)
    regions = pd.Series(["HK", "CN", None, "HK"])
    assert normalise_phones(values, regions=regions)["phone_status"].tolist() == ["valid", "invalid", "invalid", "valid"]


@pytest.mark.parametrize("bad", ["XYZ", "cn1", "", None, 86])
def test_normalise_phones_bad_default_region(bad):
    with pytest.raises(ValueError) as err:
        normalise_phones(pd.Series(["13800138000"]), default_region=bad)
    assert str(err.value) == ("The 'default_region' parameter must be a two-letter region code such as 'CN'. "
                              f"Got {bad!r} instead.")


def test_normalise_phones_regions_must_be_aligned():
    with pytest.raises(ValueError, match="'regions' parameter"):
        normalise_phones(pd.Series(["1"], index=[1]), regions=pd.Series(["HK"], index=[2]))


def test_normalise_phones_unique_cache_matches_small_input():
    small = pd.Series([c[0] for c in PHONE_CASES], dtype=object)
    expected = normalise_phones(small)
    big = pd.Series(np.tile(small.to_numpy(), 100_000 // len(small) + 1)[:100_000], dtype=object)
    out = normalise_phones(big)
    reps = np.arange(100_000) % len(small)
    pd.testing.assert_frame_equal(out.reset_index(drop=True), expected.iloc[reps].reset_index(drop=True))


def _reference_e164(digits: str, plus: bool, region: str, default: str) -> str | None:
    """The documented reading order with plain phonenumbers calls: the oracle for the fast paths."""
    def attempt(number, reg):
        try:
            parsed = phonenumbers.parse(number, reg)
        except phonenumbers.NumberParseException:
            return None
        ok = phonenumbers.is_valid_number(parsed)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) if ok else None
    if plus:
        return attempt("+" + digits, None)
    for reg in dict.fromkeys((region, default)):
        if found := attempt(digits, reg):
            return found
    return attempt("+" + digits, None) if len(digits) >= 11 and not digits.startswith("1") else None


def test_normalise_phones_fast_paths_agree_with_phonenumbers():
    rng = np.random.default_rng(7)
    prefixes = ["13", "14", "15", "16", "17", "18", "19", "10", "12", "86", "861", "852", "0", "02", "9", "2", "6",
                "1", "0086", "853", "886", "44", "65"]
    raws, regions = [], []
    for _ in range(4000):
        p = prefixes[rng.integers(len(prefixes))]
        digits = p + "".join(map(str, rng.integers(0, 10, rng.integers(5, 12))))
        raws.append(("+" if rng.random() < 0.2 else "") + digits)
        regions.append(["CN", "HK", "MO", "TW", "US", "GB", "SG", None][rng.integers(8)])
    out = normalise_phones(pd.Series(raws), regions=pd.Series(regions))
    for raw, region, got in zip(raws, regions, out["e164"]):
        plus = raw.startswith("+")
        digits = raw.lstrip("+")
        if digits.startswith("00"):
            plus, digits = True, digits[2:]
        expected = _reference_e164(digits, plus, region or "CN", "CN")
        assert (None if got is NA else got) == expected, (raw, region)


@pytest.mark.parametrize(("e164", "masked"), [
    ("+8613800138000", "138****8000"),
    ("+85291234567", "+852 9****567"),
    ("+862162345678", "+86 2******678"),
    ("+12125551234", "+1 2******234"),
    ("13800138000", NA),     # not E.164: nothing shown
    (None, NA),
])
def test_mask_phone(e164, masked):
    got = mask_phone(pd.Series([e164], index=[3]))
    assert got.index.tolist() == [3]
    assert (got[3] is NA and masked is NA) or got[3] == masked


# --------------------------------------------------------------------------- emails
@pytest.mark.parametrize(("raw", "email", "status"), [
    (" Zhang.Wei@QQ.COM ", "zhang.wei@qq.com", "valid"),
    ("zhangwei@163.com.", "zhangwei@163.com", "valid"),
    ("ＺＨＡＮＧ＠ｑｑ．ｃｏｍ", "zhang@qq.com", "valid"),
    ("li na@gmail.com", "lina@gmail.com", "valid"),
    ("wang。li@qq，com", "wang.li@qq.com", "valid"),
    ("mailto:A@B.CN", "a@b.cn", "valid"),
    ("first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk", "valid"),
    ("foo@bar", NA, "invalid"),
    ("@qq.com", NA, "invalid"),
    ("a..b@x.com", NA, "invalid"),
    (".a@x.com", NA, "invalid"),
    ("a.@x.com", NA, "invalid"),
    ("a@b@c.com", NA, "invalid"),
    ("a@x.c", NA, "invalid"),
    ("13800138000", NA, "invalid"),
    ("", NA, "missing"),
    (None, NA, "missing"),
    ("null", NA, "missing"),
    ("  ", NA, "missing"),
])
def test_normalise_emails_cases(raw, email, status):
    out = normalise_emails(pd.Series([raw], index=["x"], dtype=object))
    assert out.loc["x", "email_status"] == status
    got = out.loc["x", "email"]
    assert (got is NA and email is NA) or got == email


def test_normalise_emails_alignment_and_cache():
    values = pd.Series(["A@QQ.COM", None, "bad"], index=ODD_INDEX)
    out = normalise_emails(values)
    assert out.index.tolist() == ODD_INDEX
    assert out["email"].dtype == pd.StringDtype()
    big = normalise_emails(pd.Series(["A@QQ.COM", None, "bad"] * 40_000))
    assert big["email_status"].value_counts().to_dict() == {"valid": 40_000, "missing": 40_000, "invalid": 40_000}


@pytest.mark.parametrize(("email", "masked"), [
    ("zhangwei@163.com", "z***@163.com"), ("a@b.cn", "a***@b.cn"), (None, NA), ("nonsense", NA)])
def test_mask_email(email, masked):
    got = mask_email(pd.Series([email]))[0]
    assert (got is NA and masked is NA) or got == masked


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize(("raw", "name", "pinyin", "key"), [
    ("张伟", "张伟", "zhang wei", "zhangwei"),
    ("张 伟", "张伟", "zhang wei", "zhangwei"),
    (" 张伟 ", "张伟", "zhang wei", "zhangwei"),
    ("张 小 明", "张小明", "zhang xiao ming", "zhangxiaoming"),
    ("ＺＨＡＮＧ　Ｗｅｉ", "Zhang Wei", "zhang wei", "zhangwei"),
    ("zhang wei", "Zhang Wei", "zhang wei", "zhangwei"),
    ("ZHANG wei", "Zhang Wei", "zhang wei", "zhangwei"),
    ("Wei Zhang", "Wei Zhang", "zhang wei", "zhangwei"),
    ("Wei ZHANG", "Wei Zhang", "zhang wei", "zhangwei"),
    ("Xiao Ming Wang", "Xiao Ming Wang", "wang xiao ming", "wangxiaoming"),
    ("Nana Ouyang", "Nana Ouyang", "ouyang nana", "ouyangnana"),
    ("欧阳娜娜", "欧阳娜娜", "ou yang na na", "ouyangnana"),
    ("司马光", "司马光", "si ma guang", "simaguang"),
    ("曾伟", "曾伟", "zeng wei", "zengwei"),          # surname reading, not "ceng"
    ("单雄", "单雄", "shan xiong", "shanxiong"),
    ("王小明先生", "王小明", "wang xiao ming", "wangxiaoming"),
    ("张伟女士", "张伟", "zhang wei", "zhangwei"),
    ("王先生", "王先生", "wang xian sheng", "wangxiansheng"),  # a lone surname is not stripped bare
    ("Mr. John McDonald", "John McDonald", "john mcdonald", "johnmcdonald"),
    ("Lucy", "Lucy", "lucy", "lucy"),
    ("阿依古丽·买买提", "阿依古丽·买买提", "a yi gu li mai mai ti", "ayigulimaimaiti"),
    ("null", NA, NA, NA),
    ("test", NA, NA, NA),
    ("测试", NA, NA, NA),
    ("-", NA, NA, NA),
    ("***", NA, NA, NA),
    ("123", NA, NA, NA),
    ("", NA, NA, NA),
    (None, NA, NA, NA),
])
def test_normalise_names_cases(raw, name, pinyin, key):
    row = normalise_names(pd.Series([raw], dtype=object)).iloc[0]
    for column, expected in (("name", name), ("name_pinyin", pinyin), ("name_key", key)):
        assert (row[column] is NA and expected is NA) or row[column] == expected, column


def test_normalise_names_western_order_matches_chinese_key():
    out = normalise_names(pd.Series(["张伟", "Wei Zhang", "zhang wei", "Zhang Wei"], index=[4, 3, 2, 1]))
    assert out.index.tolist() == [4, 3, 2, 1]
    assert out["name_key"].nunique() == 1
    assert all(out[c].dtype == pd.StringDtype() for c in out.columns)


def test_normalise_names_cache_matches_small():
    small = pd.Series(["张伟", "Wei Zhang", None, "欧阳娜娜", "null"])
    big = pd.Series(np.tile(small.to_numpy(dtype=object), 20_000))
    out = normalise_names(big)
    assert out["name_key"].iloc[:5].tolist() == normalise_names(small)["name_key"].tolist()
    assert out["name_key"].iloc[-5:].tolist() == ["zhangwei", "zhangwei", NA, "ouyangnana", NA]


def test_normalise_names_vectorised_paths_agree_with_python_tokenisers():
    rng = np.random.default_rng(3)
    latin_words = ["wei", "zhang", "li", "wang", "xiao", "ming", "ouyang", "lucy", "nana", "Ab", "q"]
    cased = [str.lower, str.upper, str.title]
    latin = [" ".join(cased[rng.integers(3)](latin_words[rng.integers(len(latin_words))])
                      for _ in range(rng.integers(1, 4))) for _ in range(3000)]
    chars = list("张王李欧阳司马曾单伟娜明小长孙尉迟万俟") + ["欧阳", "长孙", "万俟", "尉迟"]
    cjk = ["".join(chars[rng.integers(len(chars))] for _ in range(rng.integers(1, 5))) for _ in range(3000)]
    normalise_names(pd.Series(cjk))  # fills the per-character pinyin cache
    assert nz._latin_pinyin(pd.Series(latin)).tolist() == [" ".join(nz._latin_tokens(n)) for n in latin]
    assert nz._cjk_pinyin(pd.Series(cjk)).tolist() == [" ".join(nz._cjk_tokens(n)) for n in cjk]


@pytest.mark.parametrize(("name", "masked"), [
    ("张伟", "张*"), ("欧阳娜娜", "欧***"), ("Zhang Wei", "Z**** W**"), ("王", "王"), (None, NA)])
def test_mask_name(name, masked):
    got = mask_name(pd.Series([name]))[0]
    assert (got is NA and masked is NA) or got == masked


# --------------------------------------------------------------------------- timestamps
@pytest.mark.parametrize(("raw", "timezone", "expected_utc"), [
    ("2025-03-05T14:22:01Z", "Asia/Shanghai", "2025-03-05 14:22:01"),
    ("2025-03-05T14:22:01+08:00", "UTC", "2025-03-05 06:22:01"),
    ("2025-03-05T14:22:01.5-05:00", "Asia/Shanghai", "2025-03-05 19:22:01.500"),
    ("2025-03-05 14:22:01", "Asia/Shanghai", "2025-03-05 06:22:01"),
    ("2025-03-05 14:22:01", "UTC", "2025-03-05 14:22:01"),
    ("2025-03-05 14:22", "Asia/Hong_Kong", "2025-03-05 06:22:00"),
    ("2025/03/05 14:22:01", "Asia/Shanghai", "2025-03-05 06:22:01"),
    ("2025/3/5 14:22", "Asia/Shanghai", "2025-03-05 06:22:00"),
    ("2025年3月5日 14:22", "Asia/Shanghai", "2025-03-05 06:22:00"),
    ("2025年3月5日下午2点22分", "Asia/Shanghai", "2025-03-05 06:22:00"),
    ("2025年3月5日", "Asia/Shanghai", "2025-03-04 16:00:00"),
    ("Wed, 05 Mar 2025 06:22:01 +0000", "Asia/Shanghai", "2025-03-05 06:22:01"),
    ("Wed, 05 Mar 2025 14:22:01 +0800", "UTC", "2025-03-05 06:22:01"),
    ("Wed, 05 Mar 2025 06:22:01 GMT", "Asia/Shanghai", "2025-03-05 06:22:01"),
    ("20250305142201", "Asia/Shanghai", "2025-03-05 06:22:01"),
    ("２０２５－０３－０５　１４：２２", "Asia/Shanghai", "2025-03-05 06:22:00"),
    ("2025-07-01 12:00", "Europe/London", "2025-07-01 11:00:00"),   # summer time
    ("junk", "UTC", None),
    ("123", "UTC", None),
    ("2025", "UTC", None),
    ("2025-02-30 10:00", "UTC", None),
    ("", "UTC", None),
    (None, "UTC", None),
])
def test_parse_timestamps_cases(raw, timezone, expected_utc):
    out = parse_timestamps(pd.Series([raw], index=[42], dtype=object), timezone=timezone)
    assert str(out.dtype) == "datetime64[us, UTC]"
    expected = pd.NaT if expected_utc is None else pd.Timestamp(expected_utc, tz="UTC")
    assert (pd.isna(out[42]) and expected is pd.NaT) or out[42] == expected


def test_parse_timestamps_mixed_offsets_in_one_series():
    values = pd.Series(["2025-03-05T14:22:01+08:00", "2025-03-05T06:22:01Z", "2025-03-05T01:22:01-05:00",
                        "2025-03-05 14:22:01"], index=ODD_INDEX + ["r0"])
    out = parse_timestamps(values, timezone="Asia/Shanghai")
    assert out.index.tolist() == ODD_INDEX + ["r0"]
    assert (out == pd.Timestamp("2025-03-05 06:22:01", tz="UTC")).all()


def test_parse_timestamps_timezone_per_row():
    values = pd.Series(["2025-07-01 10:00"] * 5 + ["2025-07-01T10:00:00Z"])
    zones = pd.Series(["Asia/Shanghai", "Asia/Hong_Kong", "Europe/London", "America/New_York", None, "Asia/Shanghai"])
    out = parse_timestamps(values, timezone=zones)
    assert out.dt.strftime("%H:%M").tolist() == ["02:00", "02:00", "09:00", "14:00", "10:00", "10:00"]


@pytest.mark.parametrize("bad", ["Mars/Base", "Asia/Shang hai", "", 8])
def test_parse_timestamps_bad_timezone_names_it(bad):
    with pytest.raises(ValueError, match="'timezone' parameter") as err:
        parse_timestamps(pd.Series(["2025-03-05"]), timezone=bad)
    assert repr(bad) in str(err.value)
    with pytest.raises(ValueError, match="Mars/Base"):
        parse_timestamps(pd.Series(["2025-03-05"] * 2), timezone=pd.Series(["UTC", "Mars/Base"]))


@pytest.mark.parametrize(("values", "unit"), [
    (["1741155721", 1741155721, " 1741155721 "], "s"),
    (["1741155721000", 1741155721000, 1741155721000.0], "ms"),
])
def test_parse_timestamps_epoch(values, unit):
    out = parse_timestamps(pd.Series(values + ["x", None], dtype=object), unit=unit, timezone="Asia/Shanghai")
    assert out.iloc[:3].tolist() == [pd.Timestamp("2025-03-05 06:22:01", tz="UTC")] * 3
    assert out.iloc[3:].isna().all()


def test_parse_timestamps_explicit_formats_first_then_builtins():
    values = pd.Series(["05.03.2025 14:22", "2025-03-05 14:22", "14:22 05-03-2025"])
    out = parse_timestamps(values, formats=["%d.%m.%Y %H:%M", "%H:%M %d-%m-%Y"], timezone="UTC")
    assert (out == pd.Timestamp("2025-03-05 14:22", tz="UTC")).all()


@pytest.mark.parametrize(("dayfirst", "expected"), [(True, "2025-03-05"), (False, "2025-05-03")])
def test_parse_timestamps_dayfirst(dayfirst, expected):
    out = parse_timestamps(pd.Series(["05/03/2025", "25/03/2025"]), dayfirst=dayfirst)
    assert out[0] == pd.Timestamp(expected, tz="UTC")
    assert out[1] == pd.Timestamp("2025-03-25", tz="UTC")  # only one reading possible


def test_parse_timestamps_datetime_input():
    naive = pd.Series(pd.to_datetime(["2025-03-05 14:22"]))
    aware = naive.dt.tz_localize("Asia/Tokyo")
    assert parse_timestamps(naive, timezone="Asia/Shanghai")[0] == pd.Timestamp("2025-03-05 06:22", tz="UTC")
    assert parse_timestamps(aware, timezone="Asia/Shanghai")[0] == pd.Timestamp("2025-03-05 05:22", tz="UTC")


def test_parse_timestamps_bad_arguments():
    with pytest.raises(ValueError, match="'unit' parameter"):
        parse_timestamps(pd.Series(["1"]), unit="days")
    with pytest.raises(ValueError, match="'formats' parameter"):
        parse_timestamps(pd.Series(["1"]), formats="%Y")


def test_parse_timestamps_cache_matches_small():
    small = pd.Series(["2025-03-05 14:22", "2025年3月5日 14:22", None, "junk", "2025-03-05T14:22:00+08:00"])
    expected = parse_timestamps(small, timezone="Asia/Shanghai")
    big = parse_timestamps(pd.Series(np.tile(small.to_numpy(dtype=object), 20_000)), timezone="Asia/Shanghai")
    pd.testing.assert_series_equal(big.iloc[-5:].reset_index(drop=True), expected)


def test_parse_timestamps_large_unique_column():
    stamps = pd.date_range("2024-01-01", periods=200_000, freq="37s")
    values = pd.Series(stamps.strftime("%Y-%m-%d %H:%M:%S"), dtype="str")
    out = parse_timestamps(values, timezone="Asia/Shanghai")
    assert (out.dt.tz_localize(None) == stamps - pd.Timedelta(hours=8)).all()


@pytest.mark.parametrize(("raw", "expected"), [
    ("1990-03-05", "1990-03-05"),
    ("1990/3/5", "1990-03-05"),
    ("19900305", "1990-03-05"),
    ("1990年3月5日", "1990-03-05"),
    ("05/03/1990", "1990-03-05"),
    ("1990-03-05 23:30:00", "1990-03-05"),
    ("1990-03-05T23:30:00+08:00", "1990-03-05"),  # the written date, not its UTC date
    ("1899-12-31", None),
    ("2990-01-01", None),
    ("junk", None),
    ("0000-00-00", None),
    (None, None),
])
def test_parse_dates_cases(raw, expected):
    out = parse_dates(pd.Series([raw], index=["k"], dtype=object), dayfirst=True)
    assert str(out.dtype) == "datetime64[us]"
    assert (pd.isna(out["k"]) and expected is None) or out["k"] == pd.Timestamp(expected)


def test_parse_dates_future_relative_to_today():
    tomorrow = pd.Timestamp(date.today()) + pd.Timedelta(days=1)
    out = parse_dates(pd.Series([tomorrow.strftime("%Y-%m-%d"), date.today().isoformat()]))
    assert pd.isna(out[0]) and out[1] == pd.Timestamp(date.today())


# --------------------------------------------------------------------------- currency
RATES = {"CNY": 1.0, "HKD": 0.92, "USD": 7.2}


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("1,299.00", "CNY", 1299.0),
    ("¥1299", "RMB", 1299.0),
    ("１２９９", "人民币", 1299.0),
    ("100", "¥", 100.0),
    ("100", " hkd ", 92.0),
    ("HK$ 100", "HK$", 92.0),
    ("10", "$", 72.0),
    ("10", "US$", 72.0),
    ("(10)", "USD", -72.0),
    (10, "usd", 72.0),
    ("abc", "CNY", np.nan),
    ("1.2.3", "CNY", np.nan),
    (None, "CNY", np.nan),
    ("100", None, np.nan),
])
def test_convert_currency_cases(amount, currency, expected):
    out = convert_currency(pd.Series([amount], index=[7], dtype=object), pd.Series([currency], index=[7]),
                           rates=RATES)
    assert out.dtype == "float64" and out.index.tolist() == [7]
    assert (np.isnan(out[7]) and np.isnan(expected)) or out[7] == pytest.approx(expected)


def test_convert_currency_scalar_code_and_numeric_amounts():
    out = convert_currency(pd.Series([1.0, 2.5, np.nan], index=ODD_INDEX), "HKD", rates={"HKD": 0.92})
    assert out.index.tolist() == ODD_INDEX
    np.testing.assert_allclose(out.to_numpy(), [0.92, 2.3, np.nan])


def test_convert_currency_unknown_code_lists_unknown_and_known():
    with pytest.raises(ValueError) as err:
        convert_currency(pd.Series(["1", "2", "3"]), pd.Series(["EUR", "JPY", "CNY"]), rates=RATES)
    assert str(err.value) == ("Unknown currency codes ['EUR', 'JPY']: no rate given. "
                              "Known codes: ['CNY', 'HKD', 'USD'].")


@pytest.mark.parametrize("rates", [{"HKD": -1}, {"HKD": "0.9"}, {"CNY": 2.0}, {"HKD": float("nan")}])
def test_convert_currency_bad_rates(rates):
    with pytest.raises(ValueError, match="'rates' parameter"):
        convert_currency(pd.Series(["1"]), "CNY", rates=rates)


def test_convert_currency_misaligned_currencies():
    with pytest.raises(ValueError, match="'currencies' parameter"):
        convert_currency(pd.Series(["1"], index=[1]), pd.Series(["CNY"], index=[2]), rates=RATES)


# --------------------------------------------------------------------------- placeholders
@pytest.mark.parametrize(("value", "flagged"), [
    ("+8611111111111", True),
    ("11111111111", True),
    ("+85288888888", True),
    ("+8613800000000", True),
    ("+8613888888888", True),
    ("13800000000", True),
    ("0000", True),
    ("-1", True),
    ("12345678", True),
    ("null", True),
    ("Anonymous", True),
    ("UNKNOWN", True),
    ("abc123", True),
    ("匿名", True),
    ("***", True),
    ("test@qq.com", True),
    ("noreply@jd.com", True),
    ("a@163.com", True),
    ("zhang@example.com", True),
    ("li@test.com", True),
    ("+8613912345678", False),
    ("+85291234567", False),
    ("zhang@qq.com", False),
    ("张伟", False),
    ("testing.zhang@qq.com", False),
    (None, False),
])
def test_flag_placeholders_default_patterns(value, flagged):
    assert flag_placeholders(pd.Series([value], dtype=object)).tolist() == [flagged]


def test_flag_placeholders_blocklist_frequency_and_alignment():
    values = pd.Series(["+8613912345678"] * 3 + ["+8613700000001", "vip@qq.com", None, None, None],
                       index=list("abcdefgh"))
    out = flag_placeholders(values, blocklist=["VIP@qq.com "], max_records_per_value=2)
    assert out.index.tolist() == list("abcdefgh")
    assert out.dtype == bool
    assert out.tolist() == [True, True, True, False, True, False, False, False]
    assert not flag_placeholders(values, patterns=()).any()


def test_flag_placeholders_custom_patterns_and_bad_arguments():
    assert flag_placeholders(pd.Series(["门店001", "张伟"]), patterns=[r"^门店\d+$"]).tolist() == [True, False]
    with pytest.raises(ValueError, match="'max_records_per_value' parameter"):
        flag_placeholders(pd.Series(["x"]), max_records_per_value=0)
    with pytest.raises(ValueError, match="'patterns' parameter"):
        flag_placeholders(pd.Series(["x"]), patterns=["("])


def test_flag_placeholders_cache_matches_small():
    values = pd.Series(["+8611111111111", "+8613912345678", None] * 50_000)
    out = flag_placeholders(values)
    assert out.sum() == 50_000 and out.iloc[:3].tolist() == [True, False, False]


# --------------------------------------------------------------------------- edge inputs
@pytest.mark.parametrize("values", [pd.Series([], dtype=object), pd.Series([None, np.nan], index=[8, 9]),
                                    pd.Series(["13800138000", None], dtype="category")])
def test_every_function_accepts_empty_all_na_and_categorical_input(values):
    frames = [normalise_phones(values), normalise_emails(values), normalise_names(values)]
    series = [parse_timestamps(values), parse_dates(values), convert_currency(values, "CNY", rates={}),
              flag_placeholders(values), mask_phone(values), mask_email(values), mask_name(values)]
    for out in frames + series:
        assert out.index.equals(values.index)
    assert str(series[0].dtype) == "datetime64[us, UTC]" and str(series[1].dtype) == "datetime64[us]"
    assert series[2].dtype == "float64" and series[3].dtype == bool


def test_placeholder_patterns_outside_re2_fall_back_to_python_re():
    from workbench.normalise import flag_placeholders

    s = pd.Series(["1111", "1212", "abab", None], index=[3, 4, 5, 6])
    got = flag_placeholders(s, patterns=[r"^(\d)\1{3}$", r"^(ab)\1$"])  # backreferences: not RE2
    assert got.tolist() == [True, False, True, False] and got.index.tolist() == [3, 4, 5, 6]
    assert flag_placeholders(pd.Series(["+8699999999999", "+8613912345678"])).tolist() == [True, False]

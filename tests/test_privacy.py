"""Privacy primitives: keyed pseudonyms, the key, ad-platform hashes, display masking and the PII scanner."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat

import joblib
import numpy as np
import pandas as pd
import pytest

from workbench.privacy.keys import (KEY_ENV, KEY_FILE_ENV, ad_platform_hash, key_fingerprint, key_path, load_key,
                                    pseudonymise)
from workbench.privacy.masking import mask_frame, mask_series, mask_value
from workbench.privacy.scan import FINDING_COLUMNS, assert_no_pii, scan_paths, scan_text_for_pii

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _hmac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def no_key_env(monkeypatch, tmp_path):
    """No key in the environment; the default key file lives under a temporary HOME."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


# --------------------------------------------------------------------------- pseudonymise
def test_pseudonymise_is_hmac_sha256_of_namespace_and_value():
    values = pd.Series(["M33702180", "13800138000", "张伟"], index=[10, 11, 12], name="member_id")
    out = pseudonymise(values, key=KEY, namespace="member")
    assert out.tolist() == [_hmac(KEY, "member\x1fM33702180"), _hmac(KEY, "member\x1f13800138000"),
                            _hmac(KEY, "member\x1f张伟")]
    assert out.index.tolist() == [10, 11, 12] and out.name == "member_id"
    assert pseudonymise(["M33702180"], key=KEY).iloc[0] == _hmac(KEY, "\x1fM33702180")  # empty namespace


def test_pseudonymise_deterministic_and_separated_by_key_and_namespace():
    values = pd.Series([f"M{i:08d}" for i in range(200)] * 2)
    first = pseudonymise(values, key=KEY)
    assert first.equals(pseudonymise(values, key=KEY))
    assert first.iloc[:200].tolist() == first.iloc[200:].tolist()  # equal values, equal pseudonyms
    assert first.iloc[:200].nunique() == 200
    assert not (first == pseudonymise(values, key=OTHER_KEY)).any()
    assert not (first == pseudonymise(values, key=KEY, namespace="phone")).any()
    assert pseudonymise(values, key=KEY, length=16).tolist() == first.str[:16].tolist()
    shuffled = values.sample(frac=1, random_state=0)
    assert pseudonymise(shuffled, key=KEY).equals(first.loc[shuffled.index])  # row order does not matter


def test_pseudonymise_keeps_missing_and_reads_integral_floats_as_integers():
    out = pseudonymise(pd.Series([1.0, None, np.nan, 2.5]), key=KEY, length=12)
    assert out.isna().tolist() == [False, True, True, False]
    assert out.iloc[0] == pseudonymise(pd.Series([1]), key=KEY, length=12).iloc[0] == _hmac(KEY, "\x1f1")[:12]
    assert pseudonymise(pd.Series([pd.NA, None], dtype="string"), key=KEY).isna().all()
    assert pseudonymise((v for v in ["a", "b"]), key=KEY).tolist() == [_hmac(KEY, "\x1fa"), _hmac(KEY, "\x1fb")]


def test_pseudonymise_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'length' parameter must be an integer from 8 to 64. Got 4"):
        pseudonymise(["a"], key=KEY, length=4)
    with pytest.raises(ValueError, match="'key' parameter must be at least 32 bytes"):
        pseudonymise(["a"], key=b"short")
    with pytest.raises(ValueError, match="'values' parameter must be a pandas Series or an iterable"):
        pseudonymise("M1", key=KEY)


def test_pseudonymise_loads_the_key_when_none_is_given(no_key_env, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY.hex())
    assert pseudonymise(["x"], key=None).iloc[0] == _hmac(KEY, "\x1fx")


# --------------------------------------------------------------------------- load_key
def test_load_key_environment_variable_wins_over_key_file(no_key_env, monkeypatch):
    key_file = no_key_env / "file.key"
    key_file.write_text(OTHER_KEY.hex() + "\n")
    key_file.chmod(0o600)
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    monkeypatch.setenv(KEY_ENV, KEY.hex())
    assert load_key() == KEY
    monkeypatch.delenv(KEY_ENV)
    assert load_key() == OTHER_KEY


def test_load_key_creates_key_file_with_owner_only_permissions(no_key_env, monkeypatch):
    key_file = no_key_env / "secrets" / "nested" / "pseudonym.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    messages: list[str] = []
    key = load_key(create=True, log=messages.append)
    assert len(key) == 32 and key_file.read_text().strip() == key.hex()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(messages) == 1 and str(key_file) in messages[0]
    assert "git" in messages[0] and "back it up" in messages[0] and key_fingerprint(key) in messages[0]
    assert load_key(create=True, log=messages.append) == key == load_key()  # reused, not recreated
    assert len(messages) == 1


def test_load_key_default_file_is_under_home(no_key_env):
    expected = no_key_env / "home" / ".config" / "workbench" / "pseudonym.key"
    assert key_path() == expected
    key = load_key(create=True, log=None)
    assert expected.read_text().strip() == key.hex()
    assert stat.S_IMODE(expected.stat().st_mode) == 0o600


def test_load_key_without_key_explains_how_to_create_one(no_key_env):
    with pytest.raises(FileNotFoundError) as err:
        load_key()
    message = str(err.value)
    assert KEY_ENV in message and "make report" in message and "workbench key" in message
    assert str(key_path()) in message
    assert not key_path().exists()  # create=False never writes


def test_load_key_rejects_malformed_keys_without_echoing_them(no_key_env, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "not-hex-secret-value")
    with pytest.raises(ValueError, match=f"{KEY_ENV} environment variable must be hex") as err:
        load_key()
    assert "not-hex-secret-value" not in str(err.value)
    monkeypatch.setenv(KEY_ENV, "ab" * 16)
    with pytest.raises(ValueError, match="at least 32 bytes .* Got 16 bytes instead"):
        load_key()
    monkeypatch.delenv(KEY_ENV)
    key_file = no_key_env / "bad.key"
    key_file.write_text("zz" * 40)
    key_file.chmod(0o600)
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    with pytest.raises(ValueError, match="key file .*bad.key must be hex"):
        load_key()


def test_load_key_warns_about_a_key_file_others_can_read(no_key_env, monkeypatch):
    key_file = no_key_env / "open.key"
    key_file.write_text(KEY.hex())
    key_file.chmod(0o644)
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    with pytest.warns(UserWarning, match="chmod 600"):
        assert load_key() == KEY


def test_key_fingerprint_is_first_8_hex_of_sha256():
    assert key_fingerprint(KEY) == hashlib.sha256(KEY).hexdigest()[:8]
    assert key_fingerprint(KEY) != key_fingerprint(OTHER_KEY)


# --------------------------------------------------------------------------- ad_platform_hash
def test_ad_platform_hash_email_vectors():
    out = ad_platform_hash(pd.Series(["test@example.com", "  Test@Example.COM ", "not-an-email", None]), kind="email")
    assert out.tolist() == [_sha("test@example.com"), _sha("test@example.com"), pd.NA, pd.NA]
    assert ad_platform_hash(["zhang.wei@qq.com"], kind="email", platform="meta").iloc[0] == _sha("zhang.wei@qq.com")


def test_ad_platform_hash_phone_formats_give_one_hash_per_platform():
    phones = pd.Series(["138 0013 8000", "+86 13800138000", "0086-138-0013-8000", "13800138000",
                        "138****8000", "abc", None])
    google = ad_platform_hash(phones, kind="phone")
    assert google.iloc[:4].tolist() == [_sha("+8613800138000")] * 4
    assert google.iloc[4:].isna().all()  # masked, invalid and missing are not hashed
    meta = ad_platform_hash(phones, kind="phone", platform="meta")
    assert meta.iloc[:4].tolist() == [_sha("8613800138000")] * 4 and meta.iloc[4:].isna().all()
    assert ad_platform_hash(["+852 9123 4567"], kind="phone").iloc[0] == _sha("+85291234567")


def test_ad_platform_hash_rejects_bad_options():
    with pytest.raises(ValueError, match="'kind' parameter must be 'email' or 'phone'. Got 'name'"):
        ad_platform_hash(["x"], kind="name")
    with pytest.raises(ValueError, match="'platform' parameter must be 'google' or 'meta'"):
        ad_platform_hash(["x"], kind="email", platform="tiktok")


# --------------------------------------------------------------------------- masking
def test_mask_value_brief_examples():
    assert mask_value("13800138000", "phone") == "138****8000"
    assert mask_value("+86 138-0013-8000", "phone") == "138****8000"
    assert mask_value("zhangwei@example.com", "email") == "z***@example.com"
    assert mask_value(" Zhangwei@Example.com", "email") == "z***@example.com"
    assert mask_value("张伟", "name") == "张*"
    assert mask_value("M33702180", "id") == "M3****80"
    assert mask_value("北京市丰台区新华路152号9栋1020室", "address") == "北京市丰台区…"
    assert mask_value("raw", "none") == "raw"
    assert mask_value(None, "phone") is None and mask_value("12345", "phone") is None


def test_mask_series_ids_and_addresses_hide_enough():
    ids = mask_series(pd.Series(["M33702180", "ABC123", None]), "id")
    assert ids.tolist() == ["M3****80", "****", pd.NA]  # short ids show nothing
    addresses = mask_series(pd.Series(["上海市浦东新区张江路163号", "余杭区和平路548号", "和平路548号", "Queen's Road"]),
                            "address")
    assert addresses.tolist() == ["上海市…", "余杭区…", "…", "…"]


def test_mask_frame_masks_named_columns_only():
    df = pd.DataFrame({"member_id": ["M33702180"], "phone": ["13800138000"], "email": ["zhangwei@example.com"],
                       "name": ["张伟"], "city": ["杭州市"]})
    out = mask_frame(df, {"member_id": "id", "phone": "phone", "email": "email", "name": "name"})
    assert out.iloc[0].tolist() == ["M3****80", "138****8000", "z***@example.com", "张*", "杭州市"]
    assert df.loc[0, "phone"] == "13800138000"  # the input is not modified
    with pytest.raises(ValueError, match=r"Columns \['mobile'\] are missing .* Columns present: \['member_id'"):
        mask_frame(df, {"mobile": "phone"})
    with pytest.raises(ValueError, match="must be one of .* Got 'ssn' instead"):
        mask_frame(df, {"phone": "ssn"})


# --------------------------------------------------------------------------- scanner: text
RAW_TEXT = ("phone 13800138000; spaced 139 1234 5678; intl +86-150-0000-1234; "
            "hk +852 9123 4567; mail Zhang.Wei@QQ.com\nline two: 手机15812345678")


def test_scan_text_finds_raw_phones_and_emails_with_masked_excerpts():
    findings = scan_text_for_pii(RAW_TEXT)
    found = [(f.kind, RAW_TEXT[f.start:f.end], f.line, f.excerpt) for f in findings]
    assert found == [
        ("cn_mobile", "13800138000", 1, "138****8000"),
        ("cn_mobile", "139 1234 5678", 1, "139****5678"),
        ("cn_mobile", "+86-150-0000-1234", 1, "150****1234"),
        ("e164_phone", "+852 9123 4567", 1, "+852 9****567"),
        ("email", "Zhang.Wei@QQ.com", 1, "z***@qq.com"),
        ("cn_mobile", "15812345678", 2, "158****5678"),
    ]
    assert "13800138000" not in repr(findings)


@pytest.mark.parametrize("text", [
    "138****8000", "+86 138****8000", "z***@example.com", "z***@qq.com",
    _sha("13800138000"), pseudonymise(["13800138000"], key=KEY).iloc[0],
    "T100000081372", "JD100000081248", "order 100000081372", "2024-11-01 08:11:05", "20241101081105",
    "1732377600000", "913800138000123", "0.13800138000", "13912345678.57", "a13800138000", "13800138000x",
    "oUda3d067a9c75677ef3f5de5ec9", f"{_sha('x')[:32]}@example.org", "@property", "logo@2x.png",
    "1 138 0013 8000 5", "[13 8 0 0 1 3 8 0 0 0]",
])
def test_scan_text_ignores_masked_values_hashes_and_other_numbers(text):
    assert scan_text_for_pii(text) == []


def test_scan_text_reads_json_escapes_as_separators():
    text = json.dumps({"note": "手机13800138000\nzhang@163.com"})  # \u624b\u673a13800138000\nzhang@...
    assert [f.kind for f in scan_text_for_pii(text)] == ["cn_mobile", "email"]


def test_scan_text_skips_placeholders_unless_asked():
    text = "13800000000 test@test.com user@example.com"
    assert scan_text_for_pii(text) == []
    assert [f.kind for f in scan_text_for_pii(text, ignore_placeholders=False)] == ["cn_mobile", "email", "email"]


def test_scan_text_known_values_are_exact_substrings():
    text = "tel13912345678 and landline 021-61234567 and M33702180"
    assert scan_text_for_pii(text) == []  # letter-adjacent and landline: the patterns pass them
    found = scan_text_for_pii(text, known_values=["13912345678", "021-61234567", "M337021", "nothere99"])
    assert [(f.kind, text[f.start:f.end], f.excerpt) for f in found] == [
        ("known_value", "13912345678", "139****5678"),
        ("known_value", "021-61234567", "+86 2******567"),  # masked as the landline it is
        ("known_value", "M337021", "****"),
    ]
    assert [f.start for f in scan_text_for_pii(text, known_values=[13912345678.0])] == [3]  # float ids read as integers


# --------------------------------------------------------------------------- scanner: files
def _write_report(folder, *, leak: bool) -> None:
    """A report folder in every scanned format; with ``leak`` each file holds one raw value."""
    folder.mkdir(parents=True, exist_ok=True)
    phone = "15912345678" if leak else "159****5678"
    email = "li.na@163.com" if leak else "l***@163.com"
    hashed = _sha("15912345678")
    (folder / "index.html").write_text(f"<table><tr><td>T100000081372</td><td>{phone}</td><td>{hashed}</td>"
                                       "<td>2024-11-01 08:11:05</td></tr></table>", encoding="utf-8")
    (folder / "export.csv").write_bytes(f"会员,邮箱,金额\nM3****80,{email},166.07\n".encode("gb18030"))
    (folder / "manifest.json").write_text(json.dumps({"run": "20261123T164307Z", "note": f"手机{phone}"}))
    notebook = {"cells": [{"cell_type": "code", "source": ["print(x)"], "outputs": [
        {"output_type": "stream", "name": "stdout", "text": [f"customer {email}\n", "rows 1732377600000\n"]}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "01_clean.ipynb").write_text(json.dumps(notebook, indent=1))
    pd.DataFrame({"customer": pseudonymise([f"M{i}" for i in range(3)], key=KEY),
                  "phone": [phone, None, "138****8000"],
                  "mobile_number": [15912345678 if leak else 0, 1, 2]}).to_parquet(folder / "scores.parquet")
    joblib.dump({"classes": np.array([phone, "a-longer-label"]), "phones": np.array([phone, phone])},
                folder / "model.joblib", compress=3)


def test_scan_paths_finds_a_leak_in_every_format(tmp_path):
    _write_report(tmp_path / "report", leak=True)
    (tmp_path / "report" / "notes.log").write_text("15912345678")  # not a scanned suffix
    findings = scan_paths(tmp_path / "report")
    assert list(findings.columns) == FINDING_COLUMNS
    found = {(os.path.basename(f), part, kind) for f, part, kind in findings[["file", "part", "kind"]].itertuples(
        index=False)}
    assert found == {
        ("index.html", "text", "cn_mobile"),
        ("export.csv", "text", "email"),
        ("manifest.json", "text", "cn_mobile"),
        ("01_clean.ipynb", "text", "email"),
        ("scores.parquet", "column phone", "cn_mobile"),
        ("scores.parquet", "column mobile_number", "cn_mobile"),
        ("model.joblib", "decompressed, utf-32-le strings", "cn_mobile"),
    }
    html = findings[findings["file"].str.endswith("index.html")].iloc[0]
    assert html["line"] == 1 and html["position"] == len("<table><tr><td>T100000081372</td><td>")
    assert set(findings["excerpt"]) == {"159****5678", "l***@163.com"}
    assert "15912345678" not in findings.to_string() and "li.na" not in findings.to_string()
    assert scan_paths(tmp_path / "report" / "notes.log")["kind"].tolist() == ["cn_mobile"]  # named: scanned


def test_scan_paths_passes_a_clean_report(tmp_path):
    _write_report(tmp_path / "report", leak=False)
    assert scan_paths(tmp_path / "report").empty
    assert_no_pii(tmp_path / "report", known_values=["15912345678", "li.na@163.com"])


def test_scan_paths_known_values_in_files(tmp_path):
    (tmp_path / "a.csv").write_bytes("id,name,tel\n1,欧阳娜娜娜娜,tel15912345678\n".encode("gb18030"))
    assert scan_paths(tmp_path).empty
    findings = scan_paths(tmp_path, known_values=pd.Series(["欧阳娜娜娜娜", "15912345678", None]))
    assert findings["kind"].tolist() == ["known_value", "known_value"]
    assert findings["line"].tolist() == [2, 2]
    assert findings["excerpt"].tolist() == ["****", "159****5678"]


def test_scan_paths_pickled_arrow_strings(tmp_path):
    frame = pd.DataFrame({"phone": ["13912345678", "15012345678"], "email": ["li.na@163.com", "wang@qq.com"]})
    joblib.dump(frame, tmp_path / "frame.pkl")
    kinds = scan_paths(tmp_path)["kind"].value_counts().to_dict()
    assert kinds.get("cn_mobile") == 2 and kinds.get("email", 0) >= 1


def test_scan_paths_fails_closed_on_unreadable_files(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    (tmp_path / "model.joblib").write_bytes(b"\x04\x22\x4d\x18 lz4 frame we cannot open")
    findings = scan_paths(tmp_path)
    assert findings["kind"].tolist() == ["unreadable", "unreadable"]
    with pytest.raises(FileNotFoundError, match="must name existing files or folders"):
        scan_paths(tmp_path / "missing")


def test_assert_no_pii_lists_masked_findings_and_count(tmp_path):
    rows = "\n".join(f"{i},139{i:08d}" for i in range(25))
    (tmp_path / "leak.csv").write_text("id,phone\n" + rows + "\n")
    with pytest.raises(AssertionError) as err:
        assert_no_pii(tmp_path)
    message = str(err.value)
    assert message.startswith("25 raw personal value(s) found in 1 file(s)")
    assert "... and 5 more" in message and "leak.csv:2 [text] cn_mobile: 139****0000" in message
    assert "13900000000" not in message


def test_masked_frame_output_passes_the_scanner(tmp_path):
    df = pd.DataFrame({"member_id": ["M33702180", "M93088836"], "phone": ["15910835921", "158-2331-0191"],
                       "email": ["caofengfeng@qq.com", "Chen.YuRan@163.com"], "name": ["曹峰峰", "陈宇然"]})
    (tmp_path / "raw.html").write_text(df.to_html())
    assert len(scan_paths(tmp_path / "raw.html")) == 4
    kinds = {"member_id": "id", "phone": "phone", "email": "email", "name": "name"}
    (tmp_path / "masked.html").write_text(mask_frame(df, kinds).to_html())
    assert_no_pii(tmp_path / "masked.html", known_values=df["phone"].tolist() + df["email"].tolist())


# --------------------------------------------------------------------------- brand-neutral privacy modules
SAMPLE_CHANNELS = ("crm_members", "ecommerce_orders", "web_events", "app_events", "pos_receipts", "pos_returns",
                   "livestream_interactions", "wechat_followers", "email_events", "service_tickets")
NEUTRAL_MODULES = ("erasure.py", "access.py", "suppression.py")


def test_erasure_access_and_suppression_name_no_sample_channel():
    """They work from the recorded mappings and the canonical layer, whatever a brand's channels are
    called: no sample channel name in their code, docstrings or doctests."""
    from workbench.mapping import load_mappings
    from workbench.privacy import access

    folder = os.path.dirname(access.__file__)
    names = set(SAMPLE_CHANNELS) | set(load_mappings())
    for module in NEUTRAL_MODULES:
        with open(os.path.join(folder, module), encoding="utf-8") as fh:
            text = fh.read()
        found = sorted(n for n in names if n in text)
        assert not found, f"{module} names the sample channel(s) {found}"


def test_suppression_module_imports_no_stage():
    """Ingest depends on the suppression list, so the list must not depend on any stage."""
    import subprocess
    import sys

    code = ("import json, sys, workbench.privacy.suppression; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('workbench'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    stages = ("workbench.ingest", "workbench.clean", "workbench.identity", "workbench.canonical",
              "workbench.customer360", "workbench.segments", "workbench.models", "workbench.privacy.erasure")
    assert not [m for m in loaded if m.startswith(stages)], loaded

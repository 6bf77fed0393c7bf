"""The embedded sample: deterministic, nine channels, ground truth, real behavioural signal."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from workbench.sample import CHANNEL_FILES, has_raw_data, make_sample


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    make_sample(300, seed=3, out=tmp_path / "a")
    make_sample(300, seed=3, out=tmp_path / "b")
    make_sample(300, seed=4, out=tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_nine_channels_and_truth_for_every_row(session_raw):
    truth = pd.read_parquet(session_raw / "_truth" / "records.parquet")
    assert set(truth["channel"]) == set(CHANNEL_FILES) and len(CHANNEL_FILES) >= 9
    for channel, (rel, _) in CHANNEL_FILES.items():
        rows = truth[truth["channel"] == channel]
        assert (session_raw / rel).exists()
        assert rows["source_row"].tolist() == list(range(1, len(rows) + 1))
    assert truth["person_id"].notna().all()


def test_files_use_their_declared_encodings(session_raw):
    crm = (session_raw / CHANNEL_FILES["crm_members"][0]).read_bytes()
    assert crm.startswith(b"\xef\xbb\xbf")
    orders = (session_raw / CHANNEL_FILES["ecommerce_orders"][0]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        orders.decode("utf-8")
    assert "订单编号" in orders.decode("gbk")


def test_the_mess_is_there(session_raw):
    crm = pd.read_csv(session_raw / CHANNEL_FILES["crm_members"][0], dtype=str, encoding="utf-8-sig")
    phones = crm["手机号"].dropna()
    assert phones.str.startswith("+86 ").any() and phones.str.startswith("0086-").any()
    assert phones.str.contains("[０-９]").any(), "full-width digits"
    assert (phones == "13800000000").any(), "placeholder phone"
    assert crm["会员编号"].duplicated().any(), "re-exported members"
    orders = pd.read_csv(session_raw / CHANNEL_FILES["ecommerce_orders"][0], dtype=str, encoding="gbk")
    assert orders["联系手机"].str.fullmatch(r"\d{3}\*{4}\d{4}").all(), "masked phones"
    assert set(orders["币种"]) == {"CNY", "USD"} and orders.duplicated().any()
    assert set(orders["订单状态"]) == {"交易成功", "已退款", "交易关闭"}


def test_hidden_behaviour_drives_activity(session_raw):
    persons = pd.read_parquet(session_raw / "_truth" / "persons.parquet")
    truth = pd.read_parquet(session_raw / "_truth" / "records.parquet")
    orders = truth[truth["channel"].isin(["ecommerce_orders", "pos_receipts"])]
    per_person = orders.groupby("person_id").size().reindex(persons["person_id"], fill_value=0)
    by_type = per_person.groupby(persons.set_index("person_id")["type"]).mean()
    assert by_type["loyal_vip"] > 3 * by_type["occasional"]
    assert by_type["anonymous_visitor"] == 0
    live = truth[truth["channel"] == "livestream_interactions"].groupby("person_id").size()
    live_by_type = live.reindex(persons["person_id"], fill_value=0).groupby(persons.set_index("person_id")["type"]).mean()
    assert live_by_type.idxmax() == "livestream_fan"


def test_churners_stop_buying_after_their_churn_date(session_raw):
    persons = pd.read_parquet(session_raw / "_truth" / "persons.parquet").set_index("person_id")
    truth = pd.read_parquet(session_raw / "_truth" / "records.parquet")
    rows = truth[truth["channel"] == "ecommerce_orders"]
    orders = pd.read_csv(session_raw / CHANNEL_FILES["ecommerce_orders"][0], dtype=str, encoding="gbk")
    t = pd.to_datetime(orders["下单时间"], format="%Y/%m/%d %H:%M:%S").dt.tz_localize("Asia/Shanghai")
    ts = t.astype("int64") // 10**9
    churn = persons.loc[rows["person_id"], "churn_ts"].to_numpy()
    has = ~np.isnan(churn)
    assert has.sum() > 0
    assert (ts.to_numpy()[has] <= churn[has]).all()


def test_households_share_address_and_some_share_a_device(session_raw):
    persons = pd.read_parquet(session_raw / "_truth" / "persons.parquet")
    assert persons["household_partner"].notna().sum() >= 20
    assert persons["shares_family_device"].sum() >= 10
    assert persons["phone2"].notna().sum() > 0, "someone has two phones"


def test_has_raw_data_ignores_truth(tmp_path):
    assert not has_raw_data(tmp_path)
    (tmp_path / "_truth").mkdir()
    (tmp_path / "_truth" / "x.parquet").write_text("x")
    assert not has_raw_data(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "f.csv").write_text("a\n")
    assert has_raw_data(tmp_path)


def test_too_few_persons_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="The 'persons' parameter must be at least 10. Got 3 instead."):
        make_sample(3, out=tmp_path)


def test_record_ids_do_not_repeat_across_generation_chunks(tmp_path, monkeypatch):
    """A sample bigger than one chunk must not reuse order, receipt or ticket numbers in the next
    chunk: the clean stage would take them for re-exports and merge different persons' rows."""
    import workbench.sample as sample

    monkeypatch.setattr(sample, "CHUNK_PERSONS", 1_000)  # households come in blocks of 1,000
    make_sample(2_500, seed=5, out=tmp_path)
    truth = pd.read_parquet(tmp_path / "_truth" / "records.parquet")
    for channel, column in (("ecommerce_orders", "订单编号"), ("pos_receipts", "receipt_no"),
                            ("service_tickets", "ticket_id")):
        rel, opts = CHANNEL_FILES[channel]
        path, encoding = tmp_path / rel, opts.get("encoding", "utf-8")
        header = pd.read_csv(path, encoding=encoding, nrows=0).columns.tolist()

        def blank(fields: list[str]) -> list[None]:
            return [None] * len(header)

        # damaged rows (an unquoted comma) stay as blank rows, so file rows line up with the truth
        df = pd.read_csv(path, encoding=encoding, dtype=str, engine="python", on_bad_lines=blank)
        rows = truth[truth["channel"] == channel].sort_values("source_row")
        assert len(df) == len(rows), channel
        chunk = (rows["person_id"].str[1:].astype(int).to_numpy() - 1) // 1_000
        chunks_per_id = pd.Series(chunk).groupby(df[column].to_numpy()).nunique()
        assert set(chunk) == {0, 1, 2}, channel
        assert (chunks_per_id == 1).all(), (channel, chunks_per_id[chunks_per_id > 1].head())

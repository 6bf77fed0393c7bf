"""The clean stage in slices gives exactly the whole-channel result (issue 16: bounded memory)."""

from __future__ import annotations

import shutil
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from workbench.clean import clean_all, clean_channel
from workbench.clean_slices import exact_repeats, slice_rows_setting
from workbench.config import get_paths
from workbench.ingest import ingested_parts, load_ingested, load_quarantine
from workbench.normalise import normalise_text
from workbench.runconfig import load_cleaning_config, resolve_mappings

#: channel: about the rows of a slice (every channel is cut into five or more slices); the sample's
#: exact duplicates are neighbours, so the slice size is moved to put a border between a pair
SLICES = {"crm_members": 200, "ecommerce_orders": 1500, "web_events": 8000}


def _straddling(df: pd.DataFrame, fields: list[str], near: int) -> int:
    """The first slice size from ``near`` on whose border falls between two exact duplicates."""
    dup = np.flatnonzero(df.duplicated(subset=fields, keep="first").to_numpy())
    dup = dup[dup >= near]
    return int(dup[0]) if len(dup) else near


def _copy(src, dst):
    for sub in ("ingested", "settings", "quarantine"):
        shutil.copytree(src.interim / sub, dst / "data" / "interim" / sub)
    return get_paths(dst / "data", dst / "reports")


def _spoil_web_events(paths) -> None:
    """Quarantined rows, a cookie shared by strangers and exact duplicates, all far apart."""
    part, = ingested_parts("web_events", paths)
    df = pd.read_parquet(part)
    n = len(df)
    df.loc[[5, n // 2, n - 3], "event_time"] = "not a time"
    spread = np.linspace(10, n - 10, 12).astype(int)
    df.loc[spread, "cookie_id"] = "shared-cookie"
    df.loc[spread, "login_id"] = [f"M{i:05d}" for i in range(12)]
    copies = df.iloc[100:105].copy()
    copies["_source_row"] = df["_source_row"].max() + 1 + np.arange(5)
    pd.concat([df, copies], ignore_index=True).to_parquet(part, index=False)


@pytest.fixture(scope="module")
def both(cleaned_paths, tmp_path_factory):
    """Each channel of ``SLICES`` cleaned at once and in slices, from the same (spoilt) input."""
    whole = _copy(cleaned_paths, tmp_path_factory.mktemp("whole"))
    _spoil_web_events(whole)
    sliced = get_paths(tmp_path_factory.mktemp("sliced") / "data", whole.reports)
    shutil.copytree(whole.interim, sliced.interim)
    mappings = resolve_mappings(whole)
    cfg = load_cleaning_config()
    out, sizes = {}, {}
    for channel, near in SLICES.items():
        sizes[channel] = (near if channel == "web_events" else  # its duplicates are the copies at the end
                          _straddling(load_ingested(channel, whole), list(mappings[channel].fields), near))
        out[channel] = (clean_channel(mappings[channel], whole, {**cfg, "slice_rows": None}),
                        clean_channel(mappings[channel], sliced, {**cfg, "slice_rows": sizes[channel]}))
    return whole, sliced, mappings, out, sizes


def test_the_data_crosses_slice_borders(both):
    """Exact duplicates and dedupe pairs whose rows lie in different slices (else the test proves little)."""
    whole, _, mappings, out, sizes = both
    for channel in ("crm_members", "ecommerce_orders", "web_events"):
        df = load_ingested(channel, whole)
        rows, fields = sizes[channel], list(mappings[channel].fields)
        assert len(df) > 4 * rows
        dup = df[df.duplicated(subset=fields, keep=False)]
        first_slice = dup.groupby(fields, dropna=False, sort=False).apply(
            lambda g: (g.index // rows).nunique(), include_groups=False)
        assert (first_slice > 1).any(), f"{channel}: no exact duplicate across a slice border"
        if channel == "web_events":  # no dedupe rule
            continue
        key = [normalise_text(df[k]) for k in mappings[channel].dedupe.key]
        spans = (pd.Series(df.index // rows).groupby(key).nunique())
        assert (spans > 1).any(), f"{channel}: no dedupe key across a slice border"
    crm, web = out["crm_members"][0][0], out["web_events"][0][0]
    assert crm.exact_duplicates > 0 and crm.merged > 0
    assert web.quarantined == 3 and web.exact_duplicates == 5 and web.placeholders["cookie_id"] >= 12


@pytest.mark.parametrize("channel", list(SLICES))
def test_slices_give_the_whole_channel_result(both, channel):
    whole, sliced, _, out, _ = both
    (rep_w, q_w), (rep_s, q_s) = out[channel]
    assert {**asdict(rep_w), "seconds": 0} == {**asdict(rep_s), "seconds": 0}
    assert rep_s.reconciles()
    assert [asdict(q) for q in q_w] == [asdict(q) for q in q_s]
    pd.testing.assert_frame_equal(pd.read_parquet(whole.cleaned / f"{channel}.parquet"),
                                  pd.read_parquet(sliced.cleaned / f"{channel}.parquet"))
    pd.testing.assert_frame_equal(load_quarantine(channel, whole), load_quarantine(channel, sliced))
    assert not list(sliced.cleaned.glob(".*")), "scratch slices left behind"


def test_exact_repeats_are_duplicated_of_the_whole(both):
    whole, _, mappings, _, _ = both
    fields = list(mappings["crm_members"].fields)
    expected = load_ingested("crm_members", whole).duplicated(subset=fields).to_numpy()
    got = exact_repeats(ingested_parts("crm_members", whole), fields, rows=97)
    assert got.any() and (got == expected).all()


@pytest.mark.parametrize("bad", [0, -5, 1.5, "1M", True])
def test_a_bad_slice_size_is_named(bad, tmp_path):
    with pytest.raises(ValueError, match=r"The 'slice_rows' cleaning setting must be a positive integer.*Got"):
        slice_rows_setting({"slice_rows": bad})
    with pytest.raises(ValueError, match="slice_rows"):
        clean_all(get_paths(tmp_path / "data", tmp_path / "reports"), mappings={},
                  config={**load_cleaning_config(), "slice_rows": bad}, progress=False)

"""Campaign exports with a control group: reproducible, stratified, recorded in the contract format,
and no control-group member in any exported file; the `workbench audience` command."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from workbench.campaign_export import (ASSIGNMENT_COLUMNS, CAMPAIGN_FIELDS, assign_holdout, audience_sha256,
                                 export_campaign, load_campaign)
from workbench.config import get_paths


def _population(n: int = 3000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A raw profile (contacts, consent) and the frame audiences read (tags, segment), index oneid."""
    rng = np.random.default_rng(seed)
    ids = [f"OID-{i:06d}" for i in range(n)]
    consent = pd.array(rng.choice([True, True, True, False, None], n), dtype="boolean")
    email = pd.array([f"p{i}@example.com" if rng.random() < 0.8 else None for i in range(n)], dtype="string")
    phone = pd.array([f"+86138{i:08d}" if rng.random() < 0.7 else None for i in range(n)], dtype="string")
    profile = pd.DataFrame({"oneid": ids, "email": email, "phone": phone, "consent_ads": consent})
    frame = pd.DataFrame({"vip": rng.random(n) < 0.6, "churn_high": rng.random(n) < 0.2,
                          "segment": rng.choice(["Champions", "Loyal", "At Risk", "Lost", "New"], n,
                                                p=[0.1, 0.3, 0.3, 0.25, 0.05])},
                         index=pd.Index(ids, name="oneid"))
    frame.loc[frame.index[:40], "segment"] = None
    return profile, frame


def test_holdout_is_reproducible_and_independent_of_order():
    ids = pd.Index([f"p{i}" for i in range(2000)])
    strata = pd.Series(np.where(np.arange(2000) % 3 == 0, "A", "B"), index=ids)
    a = assign_holdout(ids, strata, holdout=0.1, seed=42)
    b = assign_holdout(ids[::-1], strata.sample(frac=1, random_state=1), holdout=0.1, seed=42)
    assert a.equals(b)
    c = assign_holdout(ids, strata, holdout=0.1, seed=43)
    assert not a["group"].equals(c["group"])
    assert set(a["group"]) == {"treatment", "control"}


@pytest.mark.parametrize("holdout", [0.05, 0.1, 0.3])
def test_holdout_is_stratified(holdout):
    rng = np.random.default_rng(0)
    ids = pd.Index([f"p{i}" for i in range(5000)])
    strata = pd.Series(rng.choice(["big", "mid", "small", "tiny"], 5000, p=[0.6, 0.3, 0.09, 0.01]), index=ids)
    a = assign_holdout(ids, strata, holdout=holdout, seed=7)
    for s, g in a.groupby("stratum"):
        n = len(g)
        share = float((g["group"] == "control").mean())
        assert abs(share - holdout) <= 0.5 / n + 1e-12, (s, n, share)
    # a simple random draw would miss the share in the small strata far more often than this does
    assert abs(float((a["group"] == "control").mean()) - holdout) < 0.002


@pytest.mark.parametrize("holdout", [0.5, 0.7, -0.1, True, "0.1"])
def test_holdout_must_be_below_a_half(holdout):
    with pytest.raises(ValueError, match=r"The 'holdout' parameter must be in \[0, 0.5\). Got .* instead."):
        assign_holdout(["a", "b"], holdout=holdout, seed=1)


def test_campaign_export_record_contract_and_no_control_member_exported(tmp_path):
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    profile, frame = _population()
    out = tmp_path / "out"
    expr = "vip and not churn_high"
    record = export_campaign(expr, campaign_id="winback-01", name="Win-back", profile=profile, frame=frame,
                             holdout=0.1, seed=11, stratify="segment", channel="sms", response_window_days=14,
                             paths=paths, folder=out, exported_at="2026-12-05T06:00:00Z")
    folder = paths.processed / "campaigns" / "winback-01"
    meta = json.loads((folder / "campaign.json").read_text(encoding="utf-8"))
    assert tuple(meta) == CAMPAIGN_FIELDS
    assert meta["audience"] == expr and meta["audience_sha256"] == hashlib.sha256(expr.encode()).hexdigest()
    assert (meta["holdout"], meta["seed"], meta["stratify"], meta["channel"], meta["response_window_days"]) == \
        (0.1, 11, "segment", "sms", 14)
    assert meta["exported_at"] == "2026-12-05T06:00:00Z"
    assignment = pd.read_parquet(folder / "assignment.parquet")
    assert tuple(assignment.columns) == ASSIGNMENT_COLUMNS
    assert str(assignment["exported_at"].dt.tz) == "UTC" and assignment["exported_at"].nunique() == 1
    assert set(assignment["group"]) == {"treatment", "control"}
    # who was eligible: audience members with ads consent and a contact
    members = frame.index[frame["vip"] & ~frame["churn_high"]]
    p = profile.set_index("oneid").loc[members]
    eligible = p.index[p["consent_ads"].fillna(False).to_numpy(bool) & (p["email"].notna() | p["phone"].notna())]
    assert sorted(assignment["oneid"]) == sorted(eligible)
    c = meta["counts"]
    assert c["members"] == len(members) and c["eligible"] == len(eligible)
    assert c["treatment"] + c["control"] == c["eligible"] and c["exported"] == c["treatment"]
    assert c["members"] == c["eligible"] + c["excluded_no_consent"] + c["excluded_consent_revoked"] + \
        c["excluded_no_contact"]
    # stratified by segment (missing segment: its own stratum)
    assert set(assignment["stratum"]) == {"Champions", "Loyal", "At Risk", "Lost", "New", "(none)"}
    for _, g in assignment.groupby("stratum"):
        assert abs(float((g["group"] == "control").mean()) - 0.1) <= 0.5 / len(g) + 1e-12
    # no control-group member in any exported file; every treated person is in the channel file
    control = set(assignment.loc[assignment["group"] == "control", "oneid"])
    files = list(out.glob("*.csv"))
    assert files and record["file"] == str(out / "winback-01.csv")
    for f in files:
        sent = pd.read_csv(f, dtype=str)
        assert not control & set(sent["oneid"]), f
        text = f.read_text(encoding="utf-8")
        assert "@example.com" not in text and "+86138" not in text     # hashed contacts only
    sent = pd.read_csv(out / "winback-01.csv", dtype=str)
    assert sorted(sent["oneid"]) == sorted(assignment.loc[assignment["group"] == "treatment", "oneid"])
    back, assigned = load_campaign("winback-01", paths)
    assert back == meta and assigned.equals(assignment)


def test_a_campaign_is_recorded_once_and_the_same_seed_gives_the_same_groups(tmp_path):
    profile, frame = _population(800)
    groups = []
    for run in ("a", "b"):
        paths = get_paths(tmp_path / run / "data", tmp_path / run / "reports").ensure()
        export_campaign("vip", campaign_id="c1", profile=profile, frame=frame, holdout=0.2, seed=5, paths=paths,
                        folder=tmp_path / run / "out")
        groups.append(pd.read_parquet(paths.processed / "campaigns" / "c1" / "assignment.parquet")
                      .drop(columns="exported_at"))
        with pytest.raises(FileExistsError, match="Campaign 'c1' was exported before"):
            export_campaign("vip", campaign_id="c1", profile=profile, frame=frame, holdout=0.2, seed=5,
                            paths=paths, folder=tmp_path / run / "out")
    assert groups[0].equals(groups[1])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"campaign_id": "../x"}, ValueError, "The 'campaign_id' parameter must be letters"),
    ({"stratify": "segmnt"}, KeyError, "The 'stratify' column 'segmnt' is not in the audience frame"),
    ({"holdout": 0.6}, ValueError, "The 'holdout' parameter must be in [0, 0.5). Got 0.6 instead."),
    ({"response_window_days": 0}, ValueError, "The 'response_window_days' parameter must be a whole number >= 1"),
    ({"expression": "vip and not churn_hgh"}, KeyError, "Unknown name 'churn_hgh'"),
])
def test_campaign_export_errors(tmp_path, kwargs, error, message):
    paths = get_paths(tmp_path / "data", tmp_path / "reports").ensure()
    profile, frame = _population(100)
    args = {"campaign_id": "c1", "profile": profile, "frame": frame, "paths": paths, "folder": tmp_path / "out",
            **kwargs}
    expression = args.pop("expression", "vip")
    with pytest.raises(error) as e:
        export_campaign(expression, **args)
    assert message in (e.value.args[0] if isinstance(e.value, KeyError) else str(e.value))
    assert not (paths.processed / "campaigns" / "c1").exists()


def test_audience_hash_ignores_spacing_only():
    assert audience_sha256("a and  b") == audience_sha256("a and b") != audience_sha256("a or b")


@pytest.fixture(scope="module")
def tagged_paths(resolved_paths, tmp_path_factory):
    import shutil

    from workbench.customer360 import run_customer_360
    from workbench.segments.stage import run_rfm
    from workbench.tags import run_tags

    root = tmp_path_factory.mktemp("campaign-cli")
    shutil.copytree(resolved_paths.data, root / "data")
    paths = get_paths(root / "data", root / "reports").ensure()
    run_customer_360(paths)
    run_rfm(paths)
    run_tags(paths)
    return paths


def test_audience_command(tagged_paths, tmp_path, capsys):
    from workbench.cli import main

    d = ["--data-dir", str(tagged_paths.data), "--reports-dir", str(tagged_paths.reports)]
    assert main(["audience", "frequent_rebuyer and not lapsing_buyer", "--count-only", *d]) == 0
    assert "persons match" in capsys.readouterr().out
    assert main(["audience", "frequent_rebuyer and not churn_hgh", *d]) == 2
    assert "Unknown name 'churn_hgh'" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["audience", "frequent_rebuyer", "--out", str(out), *d]) == 0
    plain = pd.read_csv(out / "frequent_rebuyer.csv", dtype=str)
    spec = tmp_path / "campaign.yaml"
    spec.write_text("campaign_id: rebuy-1\naudience: frequent_rebuyer\nholdout: 0.2\nseed: 3\nchannel: sms\n"
                    "response_window_days: 21\n", encoding="utf-8")
    assert main(["audience", "--campaign-file", str(spec), "--out", str(out), *d]) == 0
    meta, assignment = load_campaign("rebuy-1", tagged_paths)
    assert (meta["audience"], meta["holdout"], meta["stratify"], meta["response_window_days"]) == \
        ("frequent_rebuyer", 0.2, "segment", 21)
    # the campaign's eligible people are those the plain export sent; the control group is held back
    assert sorted(assignment["oneid"]) == sorted(plain["oneid"])
    sent = pd.read_csv(out / "rebuy-1.csv", dtype=str)
    assert not set(sent["oneid"]) & set(assignment.loc[assignment["group"] == "control", "oneid"])
    assert meta["counts"]["control"] > 0
    spec.write_text("campaign_id: rebuy-2\naudience: frequent_rebuyer\nhold_out: 0.2\n", encoding="utf-8")
    assert main(["audience", "--campaign-file", str(spec), *d]) == 2
    assert "unknown key 'hold_out'" in capsys.readouterr().err


def test_audiences_naming_a_tag_this_data_left_out_say_so():
    from types import SimpleNamespace

    from workbench.campaign_export import audience_members, declared_audiences

    _, frame = _population(50)
    frame.attrs["tags_left_out"] = {"live_stream_fan": "Live-stream fan (直播粉丝) is not available for this data: "
                                                       "it reads ['live_stream_watched_minutes'] ..."}
    with pytest.raises(KeyError) as e:
        audience_members("vip and live_stream_fan", frame)
    assert "uses the tag 'live_stream_fan': Live-stream fan (直播粉丝) is not available" in e.value.args[0]
    members, notes = declared_audiences([SimpleNamespace(name="fans", expression="live_stream_fan and vip"),
                                         SimpleNamespace(name="vips", expression="vip")], frame,
                                        left_out=frame.attrs["tags_left_out"])
    assert list(members) == ["vips"] and len(members["vips"]) == int(frame["vip"].sum())
    assert "['live_stream_fan']" in notes["fans"]
    with pytest.raises(KeyError, match="Unknown name 'vipp'"):   # a typo is still an error
        declared_audiences([SimpleNamespace(name="x", expression="vipp")], frame, left_out=["live_stream_fan"])


def test_next_campaign_audience_chosen_by_uplift(tagged_paths, tmp_path, capsys):
    """The uplift stage scores everyone for the next campaign; an audience expression reads
    ``uplift_decile``; the people it picks are truly more persuadable than everyone (sample truth);
    the export holds out a control group again and sends only the treated."""
    import json

    from workbench.campaigns import run_campaign_results
    from workbench.cli import main
    from workbench.truth import campaign_truth, oneid_truth
    from workbench.uplift import load_uplift_scores, run_uplift

    run_campaign_results(tagged_paths, n_boot=200)
    run = run_uplift(tagged_paths, folds=3, seed=0)
    assert run.fitted, run.info
    scores = load_uplift_scores(tagged_paths)
    assert scores.index.is_unique and scores["uplift"].notna().all()
    sizes = scores["uplift_decile"].value_counts().sort_index()
    assert list(sizes.index) == list(range(1, 11)) and sizes.max() - sizes.min() <= 1, sizes
    info = json.loads((tagged_paths.processed / "uplift.json").read_text(encoding="utf-8"))
    assert info["like_campaign"] == info["campaigns"][-1] and info["qini"]["uplift"] > 0

    truth = campaign_truth(tagged_paths)[info["like_campaign"]]["effects_by_type"]
    effect = oneid_truth(tagged_paths)["type"].reindex(scores.index).map(truth).fillna(0.0)
    top = scores["uplift_decile"] > 8
    assert effect[top].mean() > 1.5 * effect.mean(), (effect[top].mean(), effect.mean())

    d = ["--data-dir", str(tagged_paths.data), "--reports-dir", str(tagged_paths.reports)]
    out = tmp_path / "out"
    assert main(["audience", "uplift_decile > 8 and not frequent_rebuyer", "--campaign", "next-1", "--holdout", "0.2",
                 "--seed", "5", "--out", str(out), *d]) == 0
    meta, assignment = load_campaign("next-1", tagged_paths)
    assert meta["audience"] == "uplift_decile > 8 and not frequent_rebuyer"
    assert set(assignment["oneid"]) <= set(scores.index[top])
    sent = pd.read_csv(out / "next-1.csv", dtype=str)
    assert not set(sent["oneid"]) & set(assignment.loc[assignment["group"] == "control", "oneid"])
    assert meta["counts"]["control"] > 0 and len(sent) == meta["counts"]["treatment"]


def test_uplift_stage_without_enough_campaign_members_says_why(tagged_paths, tmp_path):
    import shutil

    from workbench.uplift import load_uplift_scores, run_uplift

    root = tmp_path / "few"
    shutil.copytree(tagged_paths.data / "processed" / "canonical", root / "data" / "processed" / "canonical")
    paths = get_paths(root / "data", root / "reports").ensure()
    run = run_uplift(paths, min_members=10**9)
    assert not run.fitted and "at least 1000000000 campaign members" in run.info["reason"]
    assert load_uplift_scores(paths).empty
    with pytest.raises(ValueError, match="The 'folds' parameter must be an integer >= 2. Got 1 instead."):
        run_uplift(paths, folds=1)

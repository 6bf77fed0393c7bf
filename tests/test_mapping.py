"""Channel mappings: validation errors say what was expected and what was given; round trips."""

from __future__ import annotations

import json

import pytest
import yaml

from workbench.mapping import ChannelMapping, MappingError, load_mapping, load_mappings

BASE = {"channel": "c", "role": "profile", "source": {"pattern": "c/*.csv"},
        "fields": {"x": {"column": "X"}, "email": {"column": "E", "type": "email"}}}


def with_(**changes):
    d = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        node = d
        *head, last = path.split("__")
        for k in head:
            node = node[k]
        node[last] = value
    return d


@pytest.mark.parametrize("d, message", [
    ({"channel": "c", "fields": {}}, r"missing keys \['role', 'source'\].*`role` says what the channel is"),
    (with_(fields__x={"column": "X", "type": "telephone"}), r"type must be one of .*Got 'telephone'"),
    (with_(fields__x={"column": "X", "pii": "secret"}), r"pii must be one of \['direct', 'quasi', 'none'\]"),
    (with_(fields__x={"column": "X", "colour": 1}), r"unknown keys \['colour'\]"),
    (with_(fields__x={"type": "string"}), r"field 'x'.*column"),
    (with_(source__format="xml"), r"source format must be one of \['csv', 'jsonl', 'parquet', 'excel', 'sql'\]"),
    (with_(source__encoding="latin-9"), r"encoding must be one of .*Got 'latin-9'"),
    (with_(fields__x={"column": "X", "type": "category"}), r"a category needs `values`"),
    (with_(fields__x={"column": "X", "type": "timestamp", "timezone_field": "tz"}),
     r"timezone_field names 'tz', which is not a field of this mapping. Fields: \['email', 'x'\]"),
    (with_(fields__x={"column": "X", "type": "timestamp", "unit": "us"}), r"unit must be 's' or 'ms'"),
    (with_(dedupe={"key": ["nope"]}), r"dedupe refers to unknown fields \['nope'\]"),
    (with_(fields={"x": {"column": "X"}, "y": {"column": "X"}, "email": {"column": "E", "type": "email"}}),
     r"source columns mapped twice: \['X'\]"),
    (with_(role="orders"), r"the orders role needs the fields \['ordered_at', 'amount'\]"),
    (with_(fields={"x": {"column": "X"}}), r"the profile role needs at least one of the fields \['member_id', 'phone', 'email'\]"),
    (with_(fields__x={"column": "X", "constant": "a"}), r"field 'x': give either `column`.*Got both"),
    (with_(filter={"field": "x", "values": ["a"]}), r"filter field 'x' must be a category field"),
    (with_(wat=1), r"unknown keys \['wat'\]"),
])
def test_bad_mappings_raise_clear_errors(d, message):
    with pytest.raises(MappingError, match=message):
        ChannelMapping.from_dict(d)


SQL = {"format": "sql", "url": "CRM_DATABASE_URL", "table": "crm.members"}


@pytest.mark.parametrize("source, message", [
    ({**SQL, "pattern": "c/*.csv"}, r"a sql source reads a database, not files: drop `pattern`"),
    ({"format": "sql", "url": "CRM_DATABASE_URL"}, r"needs either `table` .* or `query` .*Got neither"),
    ({**SQL, "query": "SELECT 1"}, r"needs either `table` .* or `query` .*Got both"),
    ({**SQL, "url": ""}, r"a sql source needs `url`: a SQLAlchemy URL"),
    ({**SQL, "chunksize": 0}, r"`chunksize` must be a positive whole number of rows. Got 0 instead"),
    ({**SQL, "incremental": ""}, r"source `incremental` must be a non-empty text"),
    ({"pattern": "c/*.csv", "table": "t"}, r"\['table'\] belong to a database source \(`format: sql`\)"),
    ({"format": "csv"}, r"a csv source needs `pattern`"),
])
def test_bad_sql_sources_raise_clear_errors(source, message):
    with pytest.raises(MappingError, match=message):
        ChannelMapping.from_dict({**BASE, "source": source})


def test_sql_source_round_trips_and_masks_a_literal_password():
    d = {**BASE, "source": {**SQL, "incremental": "updated_at", "chunksize": 1000}}
    m = ChannelMapping.from_dict(d)
    assert ChannelMapping.from_dict(m.to_dict()) == m
    assert m.to_dict()["source"] == {"format": "sql", "url": "CRM_DATABASE_URL", "table": "crm.members",
                                     "incremental": "updated_at", "chunksize": 1000}
    assert m.files("/nonexistent") == []
    lit = ChannelMapping.from_dict({**BASE, "source": {**SQL, "url": "postgresql+psycopg://crm:pa:ss@w0rd@db:5432/crm"}})
    assert lit.source.url.endswith("@db:5432/crm")  # the mapping itself keeps it, to connect
    assert "pa:ss@w0rd" not in lit.to_yaml() and lit.to_dict()["source"]["url"] == "postgresql+psycopg://crm:***@db:5432/crm"
    assert lit.source.label == "table 'crm.members' at postgresql+psycopg://crm:***@db:5432/crm"


def test_package_mappings_load_and_round_trip_yaml_and_json(tmp_path):
    ms = load_mappings()
    assert len(ms) >= 9
    for m in ms.values():
        assert ChannelMapping.from_dict(yaml.safe_load(m.to_yaml())) == m
        assert ChannelMapping.from_dict(json.loads(json.dumps(m.to_dict(), ensure_ascii=False))) == m
        (tmp_path / f"{m.channel}.yaml").write_text(m.to_yaml(), encoding="utf-8")
        assert load_mapping(tmp_path / f"{m.channel}.yaml") == m


def test_every_mapped_field_has_a_personal_data_class():
    for m in load_mappings().values():
        assert all(f.pii in ("direct", "quasi", "none") for f in m.fields.values())
        assert m.pii_fields(), f"{m.channel} declares no personal data"


def test_invalid_yaml_and_duplicate_channels(tmp_path):
    (tmp_path / "a.yaml").write_text("channel: [unclosed", encoding="utf-8")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(tmp_path / "a.yaml")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(MappingError, match="Channel 'c' is mapped twice"):
        load_mappings(tmp_path)

"""The embedded omnichannel sample: a hidden population seen through nine silos.

``make_sample`` writes one folder per channel under ``out`` in that channel's own format
(GBK CSV with Chinese headers, UTF-8-with-BOM CSV, JSON lines, Parquet, ...), and the
ground truth — which person is behind every source row — under ``out/_truth/``. The
pipeline never reads ``_truth``; only evaluation code does.

Example:
    >>> import tempfile
    >>> from workbench.sample import make_sample
    >>> summary = make_sample(200, seed=1, out=tempfile.mkdtemp())
    >>> summary["files"]["crm_members"]["rows"] > 0
    True
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import campaigns, channels
from .population import BEHAVIOURS, Window, make_population

__all__ = ["make_sample", "CHANNEL_FILES", "BEHAVIOURS", "DEFAULT_START", "DEFAULT_END"]

DEFAULT_START = "2024-11-01"
DEFAULT_END = "2026-11-01"

#: channel -> (relative path, writer options). The mappings in workbench/channels/ match these.
CHANNEL_FILES = {
    "crm_members": ("crm_members/crm_members_export.csv", {"encoding": "utf-8-sig"}),
    "ecommerce_orders": ("ecommerce_orders/orders_tmall_jd.csv", {"encoding": "gbk"}),
    "web_events": ("web_events/web_events.jsonl", {}),
    "app_events": ("app_events/app_events.parquet", {}),
    "pos_receipts": ("pos_receipts/pos_receipts.csv", {"encoding": "utf-8"}),
    "livestream_interactions": ("livestream_interactions/live_sessions.jsonl", {}),
    "wechat_followers": ("wechat_followers/wechat_followers.csv", {"encoding": "utf-8"}),
    "email_events": ("email_events/email_events.csv", {"encoding": "utf-8"}),
    "service_tickets": ("service_tickets/service_tickets.csv", {"encoding": "utf-8", "lineterminator": "\r\n"}),
    # the campaign tool's export of past campaigns (members, group, send time); see sample/campaigns.py
    "crm_campaigns": ("crm_campaigns/campaign_members_export.csv", {"encoding": "utf-8"}),
}


#: persons per generation chunk: bounds memory for the 1,000,000-person sample
CHUNK_PERSONS = 100_000


class _ChannelWriter:
    """Appends chunks of one channel to its file, numbering source rows as it goes."""

    def __init__(self, path: Path, opts: dict):
        self.path, self.opts, self.rows, self._pq = path, opts, 0, None
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()

    def append(self, df: pd.DataFrame) -> None:
        first = self.rows == 0
        if self.path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq
            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, table.schema)
            self._pq.write_table(table.cast(self._pq.schema))
        elif self.path.suffix == ".jsonl":
            df.to_json(self.path, orient="records", lines=True, force_ascii=False, mode="a")
        else:
            enc = self.opts.get("encoding", "utf-8")
            if not first and enc == "utf-8-sig":
                enc = "utf-8"  # the byte-order mark belongs at the start of the file only
            df.to_csv(self.path, index=False, header=first, mode="a", encoding=enc,
                      lineterminator=self.opts.get("lineterminator", "\n"))
        self.rows += len(df)

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()


def _break_rows(path: Path, encoding: str, rows: np.ndarray) -> None:
    """Damage a few data rows the way hand-edited exports are damaged (an unquoted comma)."""
    lines = path.read_text(encoding=encoding).split("\n")
    for r in rows:  # r is the 1-based data row; line 0 is the header
        lines[r] = lines[r].replace(",", ",,", 1)
    path.write_text("\n".join(lines), encoding=encoding)


def make_sample(persons: int = 20_000, *, seed: int = 42, out: str | os.PathLike = "data/raw",
                start: str = DEFAULT_START, end: str = DEFAULT_END, progress: bool = False) -> dict:
    """Generate the sample into ``out`` and return a summary (rows per file, seconds).

    The same ``persons``, ``seed``, ``start`` and ``end`` always give byte-identical files.
    Persons are written in chunks of ``CHUNK_PERSONS`` (households never straddle a chunk),
    so memory stays bounded at a million persons.
    """
    t0 = time.perf_counter()
    out = Path(out)
    window = Window.from_dates(start, end)
    rng = np.random.default_rng(seed)
    pop = make_population(persons, window=window, rng=rng)

    writers = {name: _ChannelWriter(out / rel, opts) for name, (rel, opts) in CHANNEL_FILES.items()}
    truth_parts = []
    # past campaigns draw from a stream of their own and are written after every ordinary row,
    # so the ordinary rows are the same with or without them
    crng = campaigns.campaign_rng(seed)
    specs = campaigns.campaign_specs(window)
    late: list[tuple[str, pd.DataFrame, np.ndarray]] = []   # (channel, rows, person ids)
    campaign_truth = []
    chunks = range(0, len(pop), CHUNK_PERSONS)
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="sample", unit="chunk")
    for lo in chunks:
        p = pop.iloc[lo: lo + CHUNK_PERSONS].reset_index(drop=True)
        orders = channels.make_orders(p, window, rng)
        tables = {
            "crm_members": channels.crm_members(p, window, rng),
            # ids unique across chunks: numbering continues after the rows already written
            "ecommerce_orders": channels.ecommerce_orders(p, orders, window, rng,
                                                          id_offset=writers["ecommerce_orders"].rows),
            "web_events": channels.web_events(p, window, rng),
            "app_events": channels.app_events(p, window, rng),
            "pos_receipts": channels.pos_receipts(p, orders, window, rng, id_offset=writers["pos_receipts"].rows),
            "livestream_interactions": channels.livestream_interactions(p, window, rng),
            "wechat_followers": channels.wechat_followers(p, window, rng),
            "email_events": channels.email_events(p, window, rng),
            "service_tickets": channels.service_tickets(p, window, rng, id_offset=writers["service_tickets"].rows),
        }
        for name, df in tables.items():
            if name == "pos_receipts" and lo == 0:  # receipts whose amount the till could not print
                bad = rng.choice(len(df), size=min(2, len(df)), replace=False)
                df.loc[bad, "amount"] = "N/A"
            w = writers[name]
            truth_parts.append(pd.DataFrame({
                "channel": name, "source_file": CHANNEL_FILES[name][0],
                "source_row": np.arange(w.rows + 1, w.rows + len(df) + 1, dtype=np.int64),
                "person_id": p["person_id"].to_numpy()[df["_person"].to_numpy()],
            }))
            w.append(df.drop(columns="_person"))
        members, extra, ctruth = campaigns.draw_campaigns(p, orders, specs, crng)
        if len(members):
            pid = p["person_id"].to_numpy()
            late.append(("crm_campaigns", members.sort_values(["_ts", "_person"], kind="stable")
                         .drop(columns="_ts").reset_index(drop=True), pid))
            campaign_truth.append(ctruth.assign(person_id=pid[ctruth["_person"].to_numpy()]).drop(columns="_person"))
            for name, make in (("ecommerce_orders", channels.ecommerce_orders), ("pos_receipts", channels.pos_receipts)):
                part = extra[extra["channel"] == ("online" if name == "ecommerce_orders" else "pos")]
                if len(part):
                    late.append((name, make(p, part.reset_index(drop=True), window, crng, id_offset=10**7 + len(late)
                                            * 10**5), pid))
    pos = writers["pos_receipts"]
    pos_ordinary_rows = pos.rows
    for name, df, pid in late:
        w = writers[name]
        truth_parts.append(pd.DataFrame({
            "channel": name, "source_file": CHANNEL_FILES[name][0],
            "source_row": np.arange(w.rows + 1, w.rows + len(df) + 1, dtype=np.int64),
            "person_id": pid[df["_person"].to_numpy()],
        }))
        w.append(df.drop(columns="_person"))
    if writers["crm_campaigns"].rows == 0:   # a window too short for the campaigns: an export without rows
        writers["crm_campaigns"].path.write_text(",".join(campaigns.EXPORT_COLUMNS) + "\n", encoding="utf-8")
    for w in writers.values():
        w.close()
    if pos_ordinary_rows > 10:
        _break_rows(pos.path, "utf-8", np.sort(rng.choice(np.arange(1, pos_ordinary_rows + 1), 3, replace=False)))

    truth = out / "_truth"
    truth.mkdir(parents=True, exist_ok=True)
    records = pd.concat(truth_parts, ignore_index=True)
    records["channel"] = records["channel"].astype("category")
    records["source_file"] = records["source_file"].astype("category")
    records.to_parquet(truth / "records.parquet", index=False)
    keep = ["person_id", "type", "gender", "birth_date", "name", "city", "phone", "phone2", "email",
            "member_id", "unionid", "openid", "household_partner", "shares_family_device",
            "signup_ts", "churn_ts", "intensity", "engagement", "aov"]
    people = pop[keep].copy()
    people["churn_ts"] = people["churn_ts"].where(people["churn_ts"] < np.iinfo(np.int64).max)
    people.to_parquet(truth / "persons.parquet", index=False)
    members = (pd.concat(campaign_truth, ignore_index=True) if campaign_truth else
               pd.DataFrame(columns=["campaign_id", "type", "group", "effect", "natural_conversion", "extra_order",
                                     "expected_extra_revenue", "person_id"]))
    members.to_parquet(truth / "campaign_members.parquet", index=False)
    (truth / "campaigns.json").write_text(json.dumps(campaigns.campaign_truth(specs, members), indent=2,
                                                     ensure_ascii=False), encoding="utf-8")
    files = {name: {"path": CHANNEL_FILES[name][0], "rows": w.rows, "bytes": w.path.stat().st_size}
             for name, w in writers.items()}
    summary = {
        "generator": "workbench.sample", "persons": int(persons), "seed": int(seed), "start": start, "end": end,
        "files": files, "rows": int(sum(f["rows"] for f in files.values())),
    }
    # no timings in the file: same inputs give byte-identical output
    (truth / "sample.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return {**summary, "seconds": round(time.perf_counter() - t0, 3)}


def has_raw_data(raw: str | os.PathLike) -> bool:
    """True when ``raw`` holds any channel file (the ground-truth folder does not count)."""
    raw = Path(raw)
    return raw.exists() and any(p.is_file() and "_truth" not in p.parts[len(raw.parts):]
                                for p in raw.rglob("*") if not p.name.startswith("."))

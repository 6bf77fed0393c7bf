"""Past campaigns of the sample: random control groups and true effects that depend on the
hidden behaviour type, so campaign results and uplift models can be checked against truth.

Two campaigns, dated from the end of the sample window (the default window puts them on
2026-03-10 and 2026-08-20):

- **WB** — a win-back SMS to lapsing buyers (a paid order 45–365 days before the send, none
  since; SMS consent), half held out; occasional buyers and live-stream fans respond; loyal VIPs
  (who come back anyway), churners and bargain hunters (who wait for 618 and Double 11) hardly.
- **LIVE** — a live-stream invitation to engaged people who never bought (live-stream activity,
  no order before the send; SMS consent), half held out; live-stream fans respond most.

A treated member whose latent draw falls under their type's effect places an extra order in
the response window, on top of their ordinary orders. The campaign tool's export lists every
member with their group; the extra orders arrive as ordinary Tmall / JD and till orders; the
true effects go to ``_truth/campaigns.json`` and ``_truth/campaign_members.parquet``.

Every draw here comes from a random stream of its own (:func:`campaign_rng`), so the rest of
the sample is unchanged by the campaigns.

Example:
    >>> from workbench.sample.population import Window
    >>> specs = campaign_specs(Window.from_dates("2024-11-01", "2026-11-01"))
    >>> [(s.campaign_id, s.sent_at.strftime("%Y-%m-%d")) for s in specs]
    [('WB-2026-03', '2026-03-10'), ('LIVE-2026-08', '2026-08-20')]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .population import DAY, Window

__all__ = ["EXPORT_COLUMNS", "CampaignSpec", "CAMPAIGNS", "campaign_specs", "campaign_rng", "draw_campaigns", "AMOUNT_SIGMA"]

#: columns of the campaign tool's export (workbench/channels/10_crm_campaigns.yaml reads them)
EXPORT_COLUMNS = ("campaign_id", "campaign_name", "member_no", "mobile", "group", "response_window", "sent_time")
#: log-normal spread of a response order's amount around the person's usual order value
AMOUNT_SIGMA = 0.35


@dataclass(frozen=True)
class CampaignSpec:
    """One past campaign: who it targets, when, its holdout share and its true effect per type
    (the chance that a treated member places an extra order in the response window)."""

    key: str
    name: str
    audience: str                      # "lapsing_buyers" or "engaged_never_bought"
    days_before_end: int               # sent this many days before the window ends
    response_window_days: int
    holdout: float
    effects: dict[str, float] = field(default_factory=dict)
    sent_at: pd.Timestamp | None = None

    @property
    def campaign_id(self) -> str:
        return f"{self.key}-{self.sent_at:%Y-%m}"


CAMPAIGNS: tuple[CampaignSpec, ...] = (
    CampaignSpec("WB", "老客召回短信 win-back SMS", "lapsing_buyers", days_before_end=236, response_window_days=30,
                 holdout=0.5, effects={"loyal_vip": 0.0, "bargain_hunter": 0.05, "livestream_fan": 0.25,
                                       "churning": 0.0, "new": 0.0, "occasional": 0.30, "anonymous_visitor": 0.0}),
    CampaignSpec("LIVE", "直播间邀请 live-stream invitation", "engaged_never_bought", days_before_end=73,
                 response_window_days=14, holdout=0.5,
                 effects={"loyal_vip": 0.0, "bargain_hunter": 0.04, "livestream_fan": 0.25, "churning": 0.0,
                          "new": 0.0, "occasional": 0.03, "anonymous_visitor": 0.0}),
)


def campaign_specs(window: Window) -> list[CampaignSpec]:
    """The campaigns that fit the window (a year of history before the send, the response
    window inside), with their send times (10:00 in Shanghai)."""
    out = []
    for c in CAMPAIGNS:
        day = pd.Timestamp(window.end - c.days_before_end * DAY, unit="s", tz="UTC").tz_convert("Asia/Shanghai")
        sent = day.normalize() + pd.Timedelta(hours=10)
        t = int(sent.timestamp())
        if t - 365 * DAY >= window.start and t + c.response_window_days * DAY <= window.end:
            out.append(CampaignSpec(**{**c.__dict__, "sent_at": sent}))
    return out


def campaign_rng(seed: int) -> np.random.Generator:
    """The campaigns' own random stream: the other draws of the sample do not move."""
    return np.random.default_rng([int(seed), 0xCA3])


def _audience(spec: CampaignSpec, p: pd.DataFrame, orders: pd.DataFrame) -> np.ndarray:
    """Indexes (into ``p``) of the persons the campaign targets, from what the brand knew at the send."""
    t = int(spec.sent_at.timestamp())
    paid = orders[(orders["status"] != "cancelled") & (orders["ts"] < t)]
    last = paid.groupby("_person")["ts"].max().reindex(range(len(p))).to_numpy()
    reach = p["consent_sms"].to_numpy(bool) & (p["signup_ts"].to_numpy() < t)
    if spec.audience == "lapsing_buyers":
        lapsing = (last >= t - 365 * DAY) & (last < t - 45 * DAY)
        return np.flatnonzero(reach & np.nan_to_num(lapsing, nan=0).astype(bool))
    if spec.audience == "engaged_never_bought":
        engaged = p["rate_live"].to_numpy() * p["engagement"].to_numpy() >= 1.5
        return np.flatnonzero(reach & engaged & np.isnan(last))
    raise ValueError(f"Unknown audience {spec.audience!r}.")


def draw_campaigns(p: pd.DataFrame, orders: pd.DataFrame, specs: list[CampaignSpec],
                   rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The campaigns of one chunk of persons: (members export, extra orders, member truth).

    ``orders`` are the chunk's ordinary orders (truth, :func:`workbench.sample.channels.make_orders`).
    The extra orders have the same columns, so the channel writers turn them into Tmall / JD
    rows and till receipts.
    """
    members, extra, truth = [], [], []
    for spec in specs:
        t = int(spec.sent_at.timestamp())
        i = _audience(spec, p, orders)
        n = i.size
        control = rng.random(n) < spec.holdout
        # the campaign tool sends over the following hour
        sent = t + rng.integers(0, 3600, n)
        types = p["type"].to_numpy()[i]
        tau = np.array([spec.effects.get(x, 0.0) for x in types], dtype=float)
        respond = ~control & (rng.random(n) < tau)
        w_end = t + spec.response_window_days * DAY
        o = orders[(orders["status"] != "cancelled") & (orders["ts"] >= t) & (orders["ts"] < w_end)]
        natural = np.isin(i, o["_person"].to_numpy())
        k = int(respond.sum())
        j = i[respond]
        when = sent[respond] + (rng.random(k) * 0.8 * spec.response_window_days * DAY).astype(np.int64)
        aov = p["aov"].to_numpy()[j]
        extra.append(pd.DataFrame({
            "_person": j, "ts": when,
            "channel": np.where(rng.random(k) < p["rate_pos"].to_numpy()[j], "pos", "online"),
            "category": np.asarray(["护肤", "彩妆", "香水"], dtype=object)[rng.integers(0, 3, k)],
            "amount_cny": np.round(aov * rng.lognormal(0.0, AMOUNT_SIGMA, k), 2),
            "status": "completed", "qty": rng.integers(1, 3, k)}))
        mid = p["member_id"].to_numpy()[i]
        members.append(pd.DataFrame({
            "campaign_id": spec.campaign_id, "campaign_name": spec.name,
            "member_no": np.where(pd.notna(mid), mid, None),
            "mobile": p["phone"].to_numpy()[i],
            "group": np.where(control, "control", "treatment"),
            "response_window": spec.response_window_days,
            "sent_time": pd.to_datetime(sent, unit="s", utc=True).tz_convert("Asia/Shanghai")
                           .strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
            "_person": i, "_ts": sent}))
        truth.append(pd.DataFrame({
            "campaign_id": spec.campaign_id, "_person": i, "type": types,
            "group": np.where(control, "control", "treatment"), "effect": tau, "natural_conversion": natural,
            "extra_order": respond, "expected_extra_revenue": tau * p["aov"].to_numpy()[i]
            * np.exp(AMOUNT_SIGMA ** 2 / 2)}))
    cat = lambda parts: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()  # noqa: E731
    return cat(members), cat(extra), cat(truth)


def campaign_truth(specs: list[CampaignSpec], members: pd.DataFrame) -> dict:
    """The true effects of each campaign, over its members (both groups):

    - ``conversion_lift``: mean over members of effect x (1 - converted anyway) — what a
      treated-minus-control difference in conversion estimates;
    - ``orders_per_person_lift``: mean effect (each response is one extra order);
    - ``revenue_per_person_lift``: mean effect x expected order value;
    - the same per behaviour type.
    """
    out = {}
    for spec in specs:
        m = members[members["campaign_id"] == spec.campaign_id]
        conv = m["effect"] * (1 - m["natural_conversion"].astype(float))

        def summary(idx: pd.Series) -> dict:
            return {"members": int(idx.sum()),
                    "conversion_lift": float(conv[idx].mean()) if idx.any() else None,
                    "orders_per_person_lift": float(m.loc[idx, "effect"].mean()) if idx.any() else None,
                    "revenue_per_person_lift": float(m.loc[idx, "expected_extra_revenue"].mean()) if idx.any()
                    else None}

        everyone = pd.Series(True, index=m.index)
        out[spec.campaign_id] = {
            "name": spec.name, "audience": spec.audience, "sent_at": spec.sent_at.isoformat(),
            "response_window_days": spec.response_window_days, "holdout": spec.holdout,
            "effects_by_type": spec.effects,
            "treated": int((m["group"] == "treatment").sum()), "control": int((m["group"] == "control").sum()),
            "extra_orders": int(m["extra_order"].sum()),
            **summary(everyone),
            "by_type": {t: summary(m["type"] == t) for t in sorted(m["type"].unique())},
        }
    return out

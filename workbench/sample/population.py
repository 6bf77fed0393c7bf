"""The hidden population behind the sample: persons, their identifiers and behaviour.

Every column here is ground truth. Channel writers (:mod:`workbench.sample.channels`)
derive what each silo would see from it, with that silo's ids, formats and mess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import vocab

DAY = 86_400
#: households never cross a block boundary (see make_population); chunks are multiples of it
HOUSEHOLD_BLOCK = 1_000

#: Latent behaviour types: share of the population and the yearly rates that drive activity.
#: orders = orders per active year; aov = mean order value (CNY); web/app/live = sessions
#: per year; open = email open rate; tickets = service tickets per year; pos = share of
#: orders made in shops; member = chance of being a CRM member; app = chance of using the app.
BEHAVIOURS = pd.DataFrame(
    [
        # type,              share, orders, aov, web, app, live, open, tickets, pos, member, app_user
        ("loyal_vip",         0.10,  8.0, 650.0,  6, 10,  3, 0.45, 1.0, 0.40, 0.95, 0.80),
        ("bargain_hunter",    0.18,  5.0, 160.0,  5,  4,  2, 0.22, 0.6, 0.10, 0.60, 0.45),
        ("livestream_fan",    0.15,  0.5, 220.0,  2,  3, 20, 0.12, 0.2, 0.15, 0.30, 0.55),
        ("churning",          0.17,  6.0, 350.0,  4,  5,  1.5, 0.30, 1.4, 0.35, 0.70, 0.50),
        ("new",               0.12,  4.0, 280.0,  6,  6,  3, 0.35, 0.4, 0.30, 0.55, 0.50),
        ("occasional",        0.23,  1.2, 300.0,  1.5, 1,  0.4, 0.10, 0.2, 0.40, 0.40, 0.20),
        ("anonymous_visitor", 0.05,  0.0,   0.0,  3,  2,  0, 0.00, 0.0, 0.00, 0.00, 0.40),
    ],
    columns=["type", "share", "orders", "aov", "web", "app", "live", "open", "tickets",
             "pos", "member", "app_user"],
).set_index("type")


@dataclass(frozen=True)
class Window:
    """The period the sample covers (UTC epoch seconds, end exclusive)."""

    start: int
    end: int

    @classmethod
    def from_dates(cls, start: str, end: str) -> "Window":
        s = int(pd.Timestamp(start, tz="UTC").timestamp())
        e = int(pd.Timestamp(end, tz="UTC").timestamp())
        if e <= s:
            raise ValueError(f"The sample window must end after it starts. Got {start} .. {end}.")
        return cls(s, e)

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY


def _unique_ints(rng: np.random.Generator, n: int, low: int, high: int,
                 exclude: set[int] = frozenset()) -> np.ndarray:
    """``n`` distinct integers in [low, high), drawn without a Python loop per value."""
    if n > (high - low) - len(exclude):
        raise ValueError(f"Cannot draw {n:,} distinct integers from [{low:,}, {high:,}).")
    out = np.empty(0, dtype=np.int64)
    while out.size < n:
        draw = rng.integers(low, high, size=int((n - out.size) * 1.1) + 16, dtype=np.int64)
        out = np.concatenate([out, draw])
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)]
        if exclude:
            out = out[~np.isin(out, list(exclude))]
    return out[:n]


def _hex_ids(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` distinct lower-case hex strings of ``width`` characters."""
    head = min(width, 15)
    body = np.char.mod(f"%0{head}x", _unique_ints(rng, n, 0, 16 ** head))
    rest = width - head
    while rest > 0:
        k = min(rest, 15)
        body = np.char.add(np.char.mod(f"%0{k}x", rng.integers(0, 16 ** k, size=n)), body)
        rest -= k
    return body.astype(object)


def make_population(n_persons: int, *, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n_persons`` persons with identity, demographics and latent behaviour.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> w = Window.from_dates("2024-11-01", "2026-11-01")
        >>> bool(make_population(50, window=w, rng=rng)["type"].isin(BEHAVIOURS.index).all())
        True
    """
    n = int(n_persons)
    if n < 10:
        raise ValueError(f"The 'persons' parameter must be at least 10. Got {n} instead.")
    idx = np.arange(n)
    p = pd.DataFrame({"person_id": np.char.mod("P%07d", idx + 1).astype(object)})

    shares = BEHAVIOURS["share"].to_numpy()
    p["type"] = rng.choice(BEHAVIOURS.index.to_numpy(), size=n, p=shares / shares.sum())
    beh = BEHAVIOURS.loc[p["type"]].reset_index(drop=True)

    # --- demographics ---------------------------------------------------------------
    p["gender"] = np.where(rng.random(n) < 0.68, "F", "M")
    age_days = rng.integers(18 * 365, 62 * 365, size=n)
    birth = pd.Timestamp("2026-11-01") - pd.to_timedelta(age_days, unit="D")
    p["birth_date"] = birth.normalize()

    sw = np.array([s[2] for s in vocab.SURNAMES])
    s_idx = rng.choice(len(vocab.SURNAMES), size=n, p=sw / sw.sum())
    surname = np.array([s[0] for s in vocab.SURNAMES], dtype=object)[s_idx]
    surname_py = np.array([s[1] for s in vocab.SURNAMES], dtype=object)[s_idx]
    female = p["gender"].to_numpy() == "F"
    fchars, mchars = vocab.GIVEN_FEMALE, vocab.GIVEN_MALE
    g1 = np.where(female, rng.integers(0, len(fchars), n), rng.integers(0, len(mchars), n))
    g2 = np.where(female, rng.integers(0, len(fchars), n), rng.integers(0, len(mchars), n))
    two_char = rng.random(n) < 0.7
    f_c = np.array([c for c, _ in fchars], dtype=object)
    f_p = np.array([y for _, y in fchars], dtype=object)
    m_c = np.array([c for c, _ in mchars], dtype=object)
    m_p = np.array([y for _, y in mchars], dtype=object)
    c1 = np.where(female, f_c[g1 % len(f_c)], m_c[g1 % len(m_c)])
    c2 = np.where(female, f_c[g2 % len(f_c)], m_c[g2 % len(m_c)])
    y1 = np.where(female, f_p[g1 % len(f_p)], m_p[g1 % len(m_p)])
    y2 = np.where(female, f_p[g2 % len(f_p)], m_p[g2 % len(m_p)])
    given = np.where(two_char, c1 + c2, c1)
    given_py = np.where(two_char, y1 + y2, y1)
    p["name"] = surname + given
    p["surname_pinyin"] = surname_py
    p["given_pinyin"] = given_py

    cw = np.array([c[3] for c in vocab.CITIES], dtype=float)
    c_idx = rng.choice(len(vocab.CITIES), size=n, p=cw / cw.sum())
    p["province"] = np.array([c[0] for c in vocab.CITIES], dtype=object)[c_idx]
    p["city"] = np.array([c[1] for c in vocab.CITIES], dtype=object)[c_idx]
    p["city_pinyin"] = np.array([c[2] for c in vocab.CITIES], dtype=object)[c_idx]
    dist = np.array([c[4][i % len(c[4])] for c, i in zip(
        (vocab.CITIES[j] for j in c_idx), rng.integers(0, 10, size=n))], dtype=object)
    road = np.array(vocab.ROADS, dtype=object)[rng.integers(0, len(vocab.ROADS), n)]
    no = rng.integers(1, 999, n).astype(str).astype(object)
    bld = rng.integers(1, 40, n).astype(str).astype(object)
    room = rng.integers(101, 2999, n).astype(str).astype(object)
    p["address"] = dist + road + no + "号" + bld + "栋" + room + "室"
    p["is_hk"] = p["city_pinyin"].to_numpy() == "hongkong"

    # --- households: ~12% of persons live with another person (same address) ----------
    # partners are drawn inside blocks of HOUSEHOLD_BLOCK persons so that a chunked writer
    # never separates a household
    hh = rng.random(n) < 0.06
    partner = np.full(n, -1)
    heads = np.flatnonzero(hh)
    block = (heads // HOUSEHOLD_BLOCK) * HOUSEHOLD_BLOCK
    size = np.minimum(HOUSEHOLD_BLOCK, n - block)
    mates = block + (heads - block + 1 + rng.integers(0, np.maximum(size - 1, 1))) % size
    ok = ~np.isin(mates, heads) & (mates != heads)
    heads, mates = heads[ok], mates[ok]
    _, first = np.unique(mates, return_index=True)
    heads, mates = heads[first], mates[first]
    partner[heads] = mates
    partner[mates] = np.where(partner[mates] >= 0, partner[mates], heads)
    for col in ("province", "city", "city_pinyin", "address", "is_hk"):
        vals = p[col].to_numpy().copy()
        vals[mates] = vals[heads]
        p[col] = vals
    p["household_partner"] = np.where(partner >= 0, p["person_id"].to_numpy()[np.maximum(partner, 0)], None)
    # a family tablet: half of the households share one app device
    p["shares_family_device"] = False
    fam = rng.random(heads.size) < 0.5
    p.loc[heads[fam], "shares_family_device"] = True
    p.loc[mates[fam], "shares_family_device"] = True

    # --- identifiers ----------------------------------------------------------------
    pre = np.array(vocab.MOBILE_PREFIXES).astype(np.int64)
    placeholders = {int(x) for x in vocab.PLACEHOLDER_PHONES}
    mob = _unique_ints(rng, 2 * n, 0, 10**8) + pre[rng.integers(0, pre.size, 2 * n)] * 10**8
    mob = np.unique(mob)
    mob = mob[~np.isin(mob, list(placeholders))]
    mob = rng.permutation(mob)[: 2 * n] if mob.size >= 2 * n else np.resize(mob, 2 * n)
    hk_pre = np.array([51, 52, 53, 54, 55, 56, 59, 61, 62, 63, 64, 65, 66, 67, 68, 69, 90, 91, 92, 93, 94, 95, 96, 97, 98])
    # distinct over prefix and suffix together: 25 prefixes x 10^6 numbers
    hk_code = _unique_ints(rng, 2 * n, 0, hk_pre.size * 10**6)
    hk = hk_pre[hk_code // 10**6] * 10**6 + hk_code % 10**6
    is_hk = p["is_hk"].to_numpy()
    phone = np.where(is_hk, "+852" + hk[:n].astype(str).astype(object), "+86" + mob[:n].astype(str).astype(object))
    p["phone"] = phone
    second = rng.random(n) < 0.04
    phone2 = np.where(is_hk, "+852" + hk[n:].astype(str).astype(object), "+86" + mob[n:].astype(str).astype(object))
    p["phone2"] = np.where(second, phone2, None)

    has_email = rng.random(n) < 0.65
    dom_w = np.array(vocab.EMAIL_DOMAIN_WEIGHTS, dtype=float)
    dom = np.array(vocab.EMAIL_DOMAINS, dtype=object)[rng.choice(dom_w.size, n, p=dom_w / dom_w.sum())]
    style = rng.integers(0, 3, n)
    local = np.select(
        [style == 0, style == 1],
        [surname_py + given_py, given_py + "." + surname_py],
        default=surname_py + "_" + given_py,
    ).astype(object)
    qq = dom == "qq.com"
    local = np.where(qq & (rng.random(n) < 0.7), rng.integers(10**6, 10**10, n).astype(str).astype(object), local)
    # uniqueness: a per-person suffix for all but a fifth of addresses
    suffix = np.where(rng.random(n) < 0.8, (idx * 7919 % 9973).astype(str).astype(object), "")
    email = local + suffix + "@" + dom
    email = pd.Series(email)
    dup = email.duplicated(keep="first").to_numpy()
    email = np.where(dup, local + "_" + idx.astype(str).astype(object) + "@" + dom, email)
    p["email"] = np.where(has_email, email, None)

    p["member_id"] = np.where(rng.random(n) < beh["member"].to_numpy(),
                              np.char.mod("M%08d", _unique_ints(rng, n, 10**7, 10**8)).astype(object), None)
    p["unionid"] = np.where(rng.random(n) < 0.70,
                            np.char.add("oU", _hex_ids(rng, n, 26).astype(str)).astype(object), None)
    p["openid"] = np.char.add("oO", _hex_ids(rng, n, 26).astype(str)).astype(object)
    p["app_user"] = rng.random(n) < beh["app_user"].to_numpy()
    p["device_id"] = _hex_ids(rng, n, 32)
    p["device_id2"] = np.where(rng.random(n) < 0.25, _hex_ids(rng, n, 32), None)
    p["cookie_ids"] = pd.Series(list(_hex_ids(rng, 3 * n, 20).reshape(n, 3)))
    p["n_cookies"] = rng.integers(1, 4, n)
    p["tmall_nick"] = np.char.add("tb", _unique_ints(rng, n, 10**8, 10**9).astype(str)).astype(object)
    p["jd_pin"] = np.char.add("jd_", _hex_ids(rng, n, 12).astype(str)).astype(object)
    p["douyin_id"] = np.char.add("dy", _unique_ints(rng, n, 10**9, 10**10).astype(str)).astype(object)
    p["taobao_live_id"] = np.char.add("tbl", _unique_ints(rng, n, 10**8, 10**9).astype(str)).astype(object)
    p["live_binds_unionid"] = rng.random(n) < 0.8
    p["prefers_tmall"] = rng.random(n) < 0.7

    # --- behaviour over time ----------------------------------------------------------
    w0, w1 = window.start, window.end
    span = w1 - w0
    # activity starts before the window for most; 'new' persons arrive in the last 200 days
    signup = w0 - rng.integers(0, 3 * 365 * DAY, n)
    new = p["type"].to_numpy() == "new"
    signup = np.where(new, w1 - rng.integers(20 * DAY, 200 * DAY, n), signup)
    p["signup_ts"] = signup
    churn = p["type"].to_numpy() == "churning"
    churn_at = w0 + rng.integers(int(0.25 * span), int(0.80 * span), n)
    p["churn_ts"] = np.where(churn, churn_at, np.iinfo(np.int64).max)
    # personal intensity multipliers (log-normal) so a type is a tendency, not a clone
    p["intensity"] = rng.lognormal(0.0, 0.45, n)
    p["engagement"] = rng.lognormal(0.0, 0.45, n)
    p["aov"] = beh["aov"].to_numpy() * rng.lognormal(0.0, 0.25, n)
    for col in ("orders", "web", "app", "live", "open", "tickets", "pos"):
        p[f"rate_{col}"] = beh[col].to_numpy()
    p["consent_sms"] = rng.random(n) < 0.55
    p["consent_email"] = rng.random(n) < 0.70
    p["consent_wechat"] = rng.random(n) < 0.60
    p["consent_ads"] = rng.random(n) < 0.45
    return p

"""What each silo sees of the hidden population, written in that silo's own format.

Every writer returns the channel's table with a private ``_person`` column (the ground
truth); :func:`workbench.sample.make_sample` strips it, numbers the rows and writes the
truth apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import mess, vocab
from .population import DAY, Window

_NEVER = np.iinfo(np.int64).max


# ----------------------------------------------------------------------------- timing
def draw_events(p: pd.DataFrame, rate: np.ndarray, window: Window, rng: np.random.Generator,
                *, after_churn: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Poisson activity per person inside the window: (person index, UTC epoch seconds).

    A person is active from sign-up; churners keep ``after_churn`` of their rate after
    their churn date (engagement fades, it does not vanish).
    """
    start = np.maximum(p["signup_ts"].to_numpy(), window.start)
    churn = np.minimum(p["churn_ts"].to_numpy(), window.end)
    end = np.full(len(p), window.end)
    years_before = np.clip(churn - start, 0, None) / (365 * DAY)
    years_after = np.clip(end - np.maximum(churn, start), 0, None) / (365 * DAY)
    lam_b = rate * years_before
    lam_a = rate * years_after * after_churn
    n_b = rng.poisson(lam_b)
    n_a = rng.poisson(lam_a)
    ib = np.repeat(np.arange(len(p)), n_b)
    ia = np.repeat(np.arange(len(p)), n_a)
    tb = start[ib] + (rng.random(ib.size) * (churn[ib] - start[ib])).astype(np.int64)
    a0 = np.maximum(churn, start)
    ta = a0[ia] + (rng.random(ia.size) * (end[ia] - a0[ia])).astype(np.int64)
    idx = np.concatenate([ib, ia])
    ts = np.concatenate([tb, ta])
    order = np.lexsort((ts, idx))
    return idx[order], ts[order]


def _promo_shift(ts: np.ndarray, hit: np.ndarray, window: Window, rng: np.random.Generator) -> np.ndarray:
    """Move a share of events onto 618 and Double-11 sales days."""
    years = range(pd.Timestamp(window.start, unit="s").year, pd.Timestamp(window.end, unit="s").year + 1)
    days = [int(pd.Timestamp(f"{y}-{md}", tz="Asia/Shanghai").timestamp())
            for y in years for md in ("06-18", "11-11")]
    days = np.array([d for d in days if window.start <= d < window.end - DAY])
    if days.size == 0 or not hit.any():
        return ts
    out = ts.copy()
    out[hit] = days[rng.integers(0, days.size, hit.sum())] + rng.integers(0, DAY, hit.sum())
    return out


def _local(ts: np.ndarray, tz: str | np.ndarray, fmt: str) -> np.ndarray:
    t = pd.to_datetime(ts, unit="s", utc=True)
    if isinstance(tz, str):
        return np.asarray(t.tz_convert(tz).strftime(fmt), dtype=object)
    out = np.empty(len(ts), dtype=object)
    for z in np.unique(tz):
        m = tz == z
        out[m] = np.asarray(t[m].tz_convert(z).strftime(fmt), dtype=object)
    return out


def _choose(rng: np.random.Generator, options: list, n: int, weights: list[float] | None = None) -> np.ndarray:
    w = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=n, p=w)]


# ----------------------------------------------------------------------------- orders
def make_orders(p: pd.DataFrame, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """Every purchase of every person (truth), before it is split into e-commerce and POS."""
    rate = p["rate_orders"].to_numpy() * p["intensity"].to_numpy()
    # live-stream fans buy more the more they watch: engagement drives their conversion
    fan = (p["type"] == "livestream_fan").to_numpy()
    rate = np.where(fan, rate * p["engagement"].to_numpy() ** 2, rate)
    idx, ts = draw_events(p, rate, window, rng, after_churn=0.0)
    bargain = (p["type"].to_numpy()[idx] == "bargain_hunter") & (rng.random(idx.size) < 0.55)
    ts = _promo_shift(ts, bargain, window, rng)
    n = idx.size
    pos_share = p["rate_pos"].to_numpy()[idx]
    female = (p["gender"].to_numpy()[idx] == "F")
    cat_w_f = [30, 25, 12, 10, 10, 1, 7, 5]
    cat_w_m = [25, 3, 12, 10, 8, 30, 7, 5]
    cat = np.where(female, _choose(rng, vocab.CATEGORIES, n, cat_w_f), _choose(rng, vocab.CATEGORIES, n, cat_w_m))
    amount = np.round(p["aov"].to_numpy()[idx] * rng.lognormal(0, 0.35, n), 2)
    status = _choose(rng, ["completed", "refunded", "cancelled"], n, [90, 5, 5])
    return pd.DataFrame({
        "_person": idx, "ts": ts,
        "channel": np.where(rng.random(n) < pos_share, "pos", "online"),
        "category": cat, "amount_cny": amount, "status": status,
        "qty": rng.integers(1, 4, n),
    })


def ecommerce_orders(p: pd.DataFrame, orders: pd.DataFrame, window: Window,
                     rng: np.random.Generator, *, id_offset: int = 0) -> pd.DataFrame:
    """Tmall / JD order export (Chinese headers, GBK): masked phone, receiver name and address.

    Order numbers start after ``id_offset`` (the rows of earlier chunks), so they are unique
    across the chunks of a large sample."""
    o = orders[orders["channel"] == "online"].reset_index(drop=True)
    i = o["_person"].to_numpy()
    n = len(o)
    tmall = np.where(p["prefers_tmall"].to_numpy()[i], rng.random(n) < 0.9, rng.random(n) < 0.15)
    platform = np.where(tmall, "天猫", "京东")
    oid = np.where(tmall, "T", "JD") + np.char.mod("%012d", rng.permutation(n) + 10**11 + id_offset).astype(object)
    nick = np.where(tmall, p["tmall_nick"].to_numpy()[i], p["jd_pin"].to_numpy()[i])
    member = p["member_id"].to_numpy()[i]
    bound = pd.Series(member).notna().to_numpy() & (rng.random(n) < 0.45)
    # receiver: usually the buyer; sometimes a gift to the household partner
    partner = p["household_partner"].to_numpy()[i]
    pid_pos = pd.Series(np.arange(len(p)), index=p["person_id"])
    gift = pd.notna(partner) & (rng.random(n) < 0.15)
    recv = i.copy()
    recv[gift] = pid_pos.loc[partner[gift]].to_numpy()
    name = pd.Series(p["name"].to_numpy()[recv])
    name = mess.typo_names(name, rng, 0.03)
    py = mess.pinyin_names(p["surname_pinyin"].iloc[recv].reset_index(drop=True),
                           p["given_pinyin"].iloc[recv].reset_index(drop=True), rng)
    name = pd.Series(np.where(rng.random(n) < 0.03, py, name))
    phone = p["phone"].to_numpy()[recv]
    ph2 = p["phone2"].to_numpy()[recv]
    phone = np.where(pd.notna(ph2) & (rng.random(n) < 0.4), ph2, phone)
    addr = p["province"].to_numpy()[recv] + p["city"].to_numpy()[recv] + p["address"].to_numpy()[recv]
    addr = pd.Series(addr)
    addr = pd.Series(np.where(rng.random(n) < 0.08, addr.str.replace("室", "", regex=False)
                              .str.replace("栋", "幢", regex=False), addr))
    usd = rng.random(n) < 0.03
    amount = np.where(usd, np.round(o["amount_cny"].to_numpy() / 7.2, 2), o["amount_cny"].to_numpy())
    status_cn = o["status"].map({"completed": "交易成功", "refunded": "已退款", "cancelled": "交易关闭"}).to_numpy()
    refund = np.where(o["status"].to_numpy() == "refunded", amount, 0.0)
    prod = np.array([vocab.PRODUCTS[c][k % len(vocab.PRODUCTS[c])]
                     for c, k in zip(o["category"], rng.integers(0, 10, n))], dtype=object)
    df = pd.DataFrame({
        "平台": platform, "订单编号": oid, "买家昵称": nick,
        "会员编号": np.where(bound, member, None),
        "收货人": name.to_numpy(), "联系手机": mess.masked_phones(pd.Series(phone)).to_numpy(),
        "收货地址": addr.to_numpy(),
        "省份": p["province"].to_numpy()[recv], "城市": p["city"].to_numpy()[recv],
        "下单时间": _local(o["ts"].to_numpy(), "Asia/Shanghai", "%Y/%m/%d %H:%M:%S"),
        "订单状态": status_cn, "币种": np.where(usd, "USD", "CNY"),
        "实付金额": np.char.mod("%.2f", amount.astype(float)).astype(object),
        "退款金额": np.char.mod("%.2f", refund.astype(float)).astype(object),
        "商品类目": o["category"].to_numpy(), "商品名称": prod, "数量": o["qty"].to_numpy(),
        "_person": i, "_ts": o["ts"].to_numpy(),
    })
    df = df.sort_values("_ts", kind="stable").drop(columns="_ts").reset_index(drop=True)
    # export overlap: ~1% of rows appear twice
    dup = df.sample(frac=0.01, random_state=int(rng.integers(1 << 31)))
    return pd.concat([df, dup]).sort_index(kind="stable").reset_index(drop=True)


def pos_receipts(p: pd.DataFrame, orders: pd.DataFrame, window: Window,
                 rng: np.random.Generator, *, id_offset: int = 0) -> pd.DataFrame:
    """Shop tills: member card or phone, day-first local times, HKD in Hong Kong stores."""
    o = orders[orders["channel"] == "pos"].reset_index(drop=True)
    i = o["_person"].to_numpy()
    n = len(o)
    stores = pd.DataFrame(vocab.STORES, columns=["code", "city", "region", "tz", "currency"])
    hk_stores = stores.index[stores["region"] == "HK"].to_numpy()
    cn_stores = stores.index[stores["region"] == "CN"].to_numpy()
    by_city = {c: stores.index[stores["city"] == c].to_numpy() for c in stores["city"].unique()}
    city = p["city_pinyin"].to_numpy()[i]
    home = np.array([by_city.get(c, cn_stores)[k % len(by_city.get(c, cn_stores))]
                     for c, k in zip(city, rng.integers(0, 4, n))])
    is_hk = p["is_hk"].to_numpy()[i]
    store = np.where(is_hk, hk_stores[rng.integers(0, hk_stores.size, n)], home)
    travel = rng.random(n) < 0.05  # mainland shoppers in Hong Kong and vice versa
    store = np.where(travel & ~is_hk, hk_stores[rng.integers(0, hk_stores.size, n)], store)
    st = stores.iloc[store].reset_index(drop=True)
    member = p["member_id"].to_numpy()[i]
    has_card = pd.notna(member) & (rng.random(n) < 0.75)
    give_phone = ~has_card & (rng.random(n) < 0.97)  # e-receipt and points need a phone
    phone = p["phone"].to_numpy()[i]
    ph2 = p["phone2"].to_numpy()[i]
    phone = np.where(pd.notna(ph2) & (rng.random(n) < 0.5), ph2, phone)
    phone = np.where(give_phone, phone, None)
    placeholder = give_phone & (rng.random(n) < 0.01)   # cashier types a dummy number
    phone_txt = mess.messy_phones(pd.Series(phone), rng)
    phone_txt[placeholder] = "13800000000"
    name = np.where(rng.random(n) < 0.35, mess.typo_names(pd.Series(p["name"].to_numpy()[i]), rng, 0.03), None)
    hkd = st["currency"].to_numpy() == "HKD"
    amount = np.where(hkd, np.round(o["amount_cny"].to_numpy() / 0.92, 1), o["amount_cny"].to_numpy())
    refunded = o["status"].to_numpy() == "refunded"
    receipt = st["code"].to_numpy() + "-" + np.char.mod("%08d", rng.permutation(n) + 1 + id_offset).astype(object)
    df = pd.DataFrame({
        "store_code": st["code"].to_numpy(), "store_region": st["region"].to_numpy(),
        "receipt_no": receipt,
        "member_card": np.where(has_card, member, None),
        "customer_phone": phone_txt.to_numpy(), "customer_name": name,
        "txn_time": _local(o["ts"].to_numpy(), st["tz"].to_numpy(), "%d/%m/%Y %H:%M"),
        "currency": st["currency"].to_numpy(),
        "amount": np.char.mod("%.2f", amount.astype(float)).astype(object),
        "txn_type": "sale", "original_receipt": None,
        "category": o["category"].map(vocab.CATEGORY_EN).to_numpy(), "items": o["qty"].to_numpy(),
        "_person": i, "_ts": o["ts"].to_numpy(),
    })
    # returns: a negative receipt some days later that points at the sale
    ret = df[refunded].copy()
    ret["_ts"] = ret["_ts"] + rng.integers(1, 15, len(ret)) * DAY
    ret = ret[ret["_ts"] < window.end]
    ret["original_receipt"] = ret["receipt_no"]
    ret["receipt_no"] = ret["receipt_no"].str.replace("-", "-R", n=1, regex=False)
    ret["txn_type"] = "return"
    ret["amount"] = "-" + ret["amount"]
    tz = stores.set_index("code").loc[ret["store_code"], "tz"].to_numpy()
    ret["txn_time"] = _local(ret["_ts"].to_numpy(), tz, "%d/%m/%Y %H:%M")
    df = pd.concat([df, ret]).sort_values("_ts", kind="stable").drop(columns="_ts").reset_index(drop=True)
    return df


# ----------------------------------------------------------------------------- CRM
def crm_members(p: pd.DataFrame, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """Member master data (Chinese headers, UTF-8 with BOM), re-exports and placeholders."""
    m = p[p["member_id"].notna()].reset_index()
    n = len(m)
    name = mess.typo_names(m["name"], rng, 0.02)
    py = mess.pinyin_names(m["surname_pinyin"], m["given_pinyin"], rng)
    name = pd.Series(np.where(rng.random(n) < 0.05, py, name))
    name = mess.full_width(name, rng, 0.01)
    gender = np.where(m["gender"] == "F", _choose(rng, ["F", "女", "2", "female"], n, [60, 30, 8, 2]),
                      _choose(rng, ["M", "男", "1", "male"], n, [60, 30, 8, 2]))
    b = m["birth_date"]
    fmt = rng.integers(0, 5, n)
    birth = np.select(
        [fmt == 0, fmt == 1, fmt == 2, fmt == 3],
        [b.dt.strftime("%Y-%m-%d"), b.dt.year.astype(str) + "/" + b.dt.month.astype(str) + "/" + b.dt.day.astype(str),
         b.dt.strftime("%Y%m%d"), b.dt.year.astype(str) + "年" + b.dt.month.astype(str) + "月" + b.dt.day.astype(str) + "日"],
        default=b.dt.strftime("%Y-%m-%d %H:%M:%S"),
    ).astype(object)
    birth = mess.blank(pd.Series(birth), rng, 0.08).to_numpy()
    phone = mess.messy_phones(m["phone"], rng)
    phone = mess.blank(phone, rng, 0.02)
    phone[rng.random(n) < 0.006] = "13800000000"
    phone[rng.random(n) < 0.002] = "13888888888"
    email = mess.messy_emails(m["email"], rng)
    email[(rng.random(n) < 0.004)] = "test@test.com"
    reg = np.maximum(m["signup_ts"].to_numpy(), window.start - 3 * 365 * DAY)
    level = np.select([m["type"] == "loyal_vip", m["type"].isin(["churning", "bargain_hunter"])],
                      ["钻石", "金卡"], default="普通")
    yn = lambda col: np.where(m[col], _choose(rng, ["Y", "是", "1"], n, [80, 15, 5]),
                              _choose(rng, ["N", "否", "0", ""], n, [70, 15, 5, 10]))
    upd = np.minimum(reg + rng.integers(0, 700 * DAY, n), window.end - DAY)
    df = pd.DataFrame({
        "会员编号": m["member_id"].to_numpy(), "姓名": name.to_numpy(), "性别": gender,
        "出生日期": birth, "手机号": phone.to_numpy(), "邮箱": email.to_numpy(),
        "城市": m["city"].to_numpy(), "地址": m["address"].to_numpy(),
        # members who logged in to the brand's mini-program have their WeChat unionid on file
        "微信UnionID": np.where(m["unionid"].notna() & (rng.random(n) < 0.75), m["unionid"], None),
        "注册时间": _local(reg, "Asia/Shanghai", "%Y-%m-%d %H:%M:%S"), "会员等级": level,
        "短信营销同意": yn("consent_sms"), "邮件营销同意": yn("consent_email"),
        "微信营销同意": yn("consent_wechat"), "广告营销同意": yn("consent_ads"),
        "更新时间": _local(upd, "Asia/Shanghai", "%Y-%m-%d %H:%M:%S"),
        "_person": m["index"].to_numpy(),
    })
    # re-exports: a later version of 3% of members (new phone format, later update time)
    again = df.sample(frac=0.03, random_state=int(rng.integers(1 << 31))).copy()
    again["手机号"] = mess.messy_phones(m.loc[again.index, "phone"], rng).to_numpy()
    again["更新时间"] = _local(np.minimum(upd[again.index] + 30 * DAY, window.end - DAY), "Asia/Shanghai",
                            "%Y-%m-%d %H:%M:%S")
    exact = df.sample(frac=0.01, random_state=int(rng.integers(1 << 31)))
    return pd.concat([df, again, exact]).sort_index(kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- web / app
def _sessions(p: pd.DataFrame, rate: np.ndarray, window: Window, rng: np.random.Generator):
    idx, ts = draw_events(p, rate, window, rng)
    n_events = 1 + rng.poisson(2.5, idx.size)
    return idx, ts, n_events


def _login_ids(p: pd.DataFrame, i: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a person types to log in: member id, or a phone (SMS code login)."""
    member = p["member_id"].to_numpy()[i]
    phone = p["phone"].to_numpy()[i]
    nat = pd.Series(phone).str.replace(r"^\+86", "", regex=True).to_numpy()
    return np.where(pd.notna(member) & (rng.random(i.size) < 0.8), member, nat)


def web_events(p: pd.DataFrame, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """Site clickstream (JSON lines): cookie always, login id only in logged-in sessions."""
    rate = p["rate_web"].to_numpy() * p["engagement"].to_numpy()
    i, ts, k = _sessions(p, rate, window, rng)
    c = rng.integers(0, 3, i.size) % p["n_cookies"].to_numpy()[i]
    cookies = np.stack(p["cookie_ids"].to_numpy())
    cookie = cookies[i, c]
    anon = p["type"].to_numpy()[i] == "anonymous_visitor"
    # the first session on each cookie logs in (that is how the site knows the cookie)
    first = ~pd.Series(cookie).duplicated().to_numpy()
    logged = ~anon & (first | (rng.random(i.size) < 0.3))
    login = np.where(logged, _login_ids(p, i, rng), None)
    rows = np.repeat(np.arange(i.size), k)
    step = np.arange(rows.size) - np.repeat(np.cumsum(k) - k, k)
    t = ts[rows] + step * rng.integers(5, 120, rows.size)
    event = np.where(step == 0, "page_view", _choose(rng, ["page_view", "product_view", "search", "add_to_cart"],
                                                      rows.size, [40, 35, 15, 10]))
    event = np.where((step == 0) & logged[rows], "login", event)
    cat = _choose(rng, list(vocab.CATEGORY_EN.values()), rows.size)
    iso_z = np.char.add(np.datetime_as_string(t.astype("datetime64[s]"), unit="s"), "Z")
    iso_8 = np.char.add(np.datetime_as_string((t + 8 * 3600).astype("datetime64[s]"), unit="s"), "+08:00")
    ts_txt = np.where(rng.random(rows.size) < 0.7, iso_z, iso_8).astype(object)
    return pd.DataFrame({
        "ts": ts_txt, "cookie_id": cookie[rows],
        "login_id": np.where(step == 0, login[rows], None),
        "event": event, "page": "/" + cat + "/" + rng.integers(100, 999, rows.size).astype(str).astype(object),
        "category": cat, "_person": i[rows],
    })


def app_events(p: pd.DataFrame, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """App analytics (Parquet): device id, user id when logged in, epoch-millisecond times."""
    users = p["app_user"].to_numpy()
    rate = np.where(users, p["rate_app"].to_numpy() * p["engagement"].to_numpy(), 0.0)
    i, ts, k = _sessions(p, rate, window, rng)
    dev = p["device_id"].to_numpy()[i]
    dev2 = p["device_id2"].to_numpy()[i]
    dev = np.where(pd.notna(dev2) & (rng.random(i.size) < 0.4), dev2, dev)
    # the family tablet: household members who share one device use the head's device id
    partner = p["household_partner"].to_numpy()[i]
    fam = p["shares_family_device"].to_numpy()[i] & pd.notna(partner) & (rng.random(i.size) < 0.5)
    pid_pos = pd.Series(np.arange(len(p)), index=p["person_id"])
    head_dev = dev.copy()
    if fam.any():
        mate_idx = pid_pos.loc[partner[fam]].to_numpy()
        lower = np.minimum(i[fam], mate_idx)  # both partners agree on the same tablet
        head_dev[fam] = p["device_id"].to_numpy()[lower]
    dev = head_dev
    anon = p["type"].to_numpy()[i] == "anonymous_visitor"
    first = ~pd.Series(list(zip(dev, i))).duplicated().to_numpy()
    logged = ~anon & (first | (rng.random(i.size) < 0.5))
    user = np.where(logged, _login_ids(p, i, rng), None)
    rows = np.repeat(np.arange(i.size), k)
    step = np.arange(rows.size) - np.repeat(np.cumsum(k) - k, k)
    t_ms = (ts[rows] + step * rng.integers(3, 90, rows.size)) * 1000 + rng.integers(0, 1000, rows.size)
    event = _choose(rng, ["app_open", "product_view", "add_to_cart", "search", "live_entry"], rows.size,
                    [25, 40, 10, 15, 10])
    event = np.where(step == 0, "app_open", event)
    os_ = np.where(pd.Series(dev).str[0].isin(list("01234567")).to_numpy()[rows], "iOS", "Android")
    return pd.DataFrame({
        "device_id": dev[rows], "user_id": user[rows], "event_time_ms": t_ms.astype(np.int64),
        "event_name": event, "os": os_, "app_version": _choose(rng, ["5.2.0", "5.3.1", "6.0.0"], rows.size),
        "_person": i[rows],
    })


# ----------------------------------------------------------------------------- live-stream
def livestream_interactions(p: pd.DataFrame, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """Douyin / Taobao Live / WeChat Channels viewing sessions (JSON lines)."""
    rate = p["rate_live"].to_numpy() * p["engagement"].to_numpy()
    i, ts = draw_events(p, rate, window, rng, after_churn=0.2)
    n = i.size
    has_union = pd.notna(p["unionid"].to_numpy()[i])
    plat = _choose(rng, ["douyin", "taobao_live", "wechat_channels"], n, [50, 35, 15])
    plat = np.where((plat == "wechat_channels") & ~has_union, "douyin", plat)
    viewer = np.select([plat == "douyin", plat == "taobao_live"],
                       [p["douyin_id"].to_numpy()[i], p["taobao_live_id"].to_numpy()[i]], default=None)
    bound = p["live_binds_unionid"].to_numpy()[i] | (p["type"].to_numpy()[i] == "livestream_fan")
    show_union = (plat == "wechat_channels") | (bound & has_union & (rng.random(n) < 0.6))
    member = p["member_id"].to_numpy()[i]
    # Douyin and Taobao Live brand memberships (会员通) show the member id on bound accounts
    show_member = (plat != "wechat_channels") & pd.notna(member) & ~show_union & (rng.random(n) < 0.6)
    fan = p["type"].to_numpy()[i] == "livestream_fan"
    watch = np.round(rng.lognormal(np.where(fan, 7.0, 5.6), 0.8)).astype(int)
    # sessions start at the top of an evening hour, local time, written without a zone
    day = (ts // DAY) * DAY
    start = day + (11 + rng.integers(0, 4, n)) * 3600   # 19:00–22:00 Beijing time in UTC
    nick = _choose(rng, vocab.NICK_WORDS, n) + rng.integers(10, 99, n).astype(str).astype(object)
    return pd.DataFrame({
        "platform": plat, "room_id": np.char.add("room_", (day // DAY % 97).astype(str)).astype(object),
        "session_start": _local(start, "Asia/Shanghai", "%Y-%m-%d %H:%M:%S"),
        "viewer_id": viewer, "unionid": np.where(show_union, p["unionid"].to_numpy()[i], None),
        "member_id": np.where(show_member, member, None),
        # fan-club / shop members authorise their phone on the platform (shown on some rows)
        "bound_phone": np.where((plat != "wechat_channels") & (rng.random(n) < 0.35),
                                pd.Series(p["phone"].to_numpy()[i]).str.replace(r"^\+86", "", regex=True).to_numpy(),
                                None),
        "nickname": nick,
        "watch_seconds": watch,
        "comments": rng.poisson(np.where(fan, 2.5, 0.4)),
        "gifts": rng.poisson(np.where(fan, 0.6, 0.05)),
        "gift_value_cny": np.round(rng.poisson(np.where(fan, 0.6, 0.05)) * rng.choice([1, 6.6, 52, 99], n), 1),
        "product_clicks": rng.poisson(np.where(fan, 1.5, 0.3)),
        "_person": i,
    })


# ----------------------------------------------------------------------------- WeChat
def wechat_followers(p: pd.DataFrame, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """Official-account followers: openid, unionid when bound, bound phone for some."""
    t = p["type"].to_numpy()
    prob = np.select([t == "loyal_vip", t == "livestream_fan", t == "anonymous_visitor"], [0.8, 0.7, 0.0], 0.45)
    has_union = pd.notna(p["unionid"].to_numpy())
    bound_phone = rng.random(len(p)) < 0.8  # phone authorised in the brand's mini-program
    follows = (rng.random(len(p)) < prob) & (has_union | bound_phone)
    f = p[follows].reset_index()
    n = len(f)
    sub = np.maximum(f["signup_ts"].to_numpy(), window.start) + rng.integers(0, 200 * DAY, n)
    sub = np.minimum(sub, window.end - DAY)
    unsub = np.where(rng.random(n) < 0.1, np.minimum(sub + rng.integers(10, 400, n) * DAY, window.end - 1), -1)
    phone = np.where(bound_phone[follows], f["phone"].str.replace(r"^\+86", "", regex=True), None)
    nick = _choose(rng, vocab.NICK_WORDS, n) + _choose(rng, ["", "🌸", "✨", "~", "🍊"], n)
    df = pd.DataFrame({
        "openid": f["openid"].to_numpy(), "unionid": f["unionid"].to_numpy(), "nickname": nick,
        "bound_phone": phone, "subscribe_time": sub, "unsubscribe_time": np.where(unsub > 0, unsub, None),
        "subscribe_scene": _choose(rng, ["ADD_SCENE_QR_CODE", "ADD_SCENE_SEARCH", "ADD_SCENE_PROFILE_CARD"], n),
        "city": f["city"].str.replace("市", "", regex=False).to_numpy(),
        "sex": np.where(f["gender"] == "F", 2, 1), "_person": f["index"].to_numpy(),
    })
    return df.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)


# ----------------------------------------------------------------------------- email
def email_events(p: pd.DataFrame, window: Window, rng: np.random.Generator) -> pd.DataFrame:
    """ESP export: one row per sent / open / click / unsubscribe, RFC 2822 times."""
    # the ESP list is exported from the CRM: members with an e-mail who agreed to e-mail
    eligible = p["email"].notna().to_numpy() & p["consent_email"].to_numpy() & p["member_id"].notna().to_numpy()
    e = p[eligible].reset_index()
    camp_ts = np.arange(window.start + 9 * 3600, window.end, 30 * DAY)[:24]
    n_c = camp_ts.size
    pi = np.repeat(np.arange(len(e)), n_c)
    ci = np.tile(np.arange(n_c), len(e))
    active = e["signup_ts"].to_numpy()[pi] <= camp_ts[ci]
    churned = camp_ts[ci] > e["churn_ts"].to_numpy()[pi]
    # unsubscribe: a per-campaign hazard, higher after churn; nothing is sent afterwards
    hazard = np.where(churned, 0.06, 0.004)
    unsub_now = active & (rng.random(pi.size) < hazard)
    first_unsub = pd.Series(np.where(unsub_now, ci, n_c)).groupby(pi).transform("min").to_numpy()
    sent = active & (ci <= first_unsub)
    op_rate = np.clip(e["rate_open"].to_numpy()[pi] * e["engagement"].to_numpy()[pi], 0, 0.95)
    op_rate = np.where(churned, op_rate * 0.1, op_rate)
    opened = sent & (rng.random(pi.size) < op_rate)
    clicked = opened & (rng.random(pi.size) < 0.3)
    unsub = sent & (ci == first_unsub)
    parts = []
    for ev, mask, delay in (("sent", sent, 0), ("open", opened, 3600), ("click", clicked, 4000),
                            ("unsubscribe", unsub, 5000)):
        k = np.flatnonzero(mask)
        parts.append(pd.DataFrame({"_pi": pi[k], "_ci": ci[k], "event_type": ev,
                                   "_t": camp_ts[ci[k]] + delay + rng.integers(0, 86_400, k.size) * (delay > 0)}))
    df = pd.concat(parts, ignore_index=True).sort_values(["_t", "_pi"], kind="stable")
    emails = mess.messy_emails(e["email"].iloc[df["_pi"].to_numpy()].reset_index(drop=True), rng)
    t = pd.to_datetime(df["_t"].to_numpy(), unit="s", utc=True)
    return pd.DataFrame({
        "email": emails.to_numpy(),
        "campaign_id": np.char.mod("C%03d", df["_ci"].to_numpy() + 1).astype(object),
        "event_type": df["event_type"].to_numpy(),
        "event_time": np.asarray(t.strftime("%a, %d %b %Y %H:%M:%S +0000"), dtype=object),
        "_person": e["index"].to_numpy()[df["_pi"].to_numpy()],
    })


# ----------------------------------------------------------------------------- service
def service_tickets(p: pd.DataFrame, window: Window, rng: np.random.Generator, *, id_offset: int = 0) -> pd.DataFrame:
    """Customer-service tickets: phone or email or WeChat, multi-line quoted descriptions."""
    rate = p["rate_tickets"].to_numpy() * p["intensity"].to_numpy() ** 0.5
    i, ts = draw_events(p, rate, window, rng, after_churn=0.05)
    n = i.size
    # churners complain in the weeks before they leave
    churn = p["churn_ts"].to_numpy()[i]
    pull = (churn < _NEVER) & (rng.random(n) < 0.5)
    ts = np.where(pull, np.maximum(churn - rng.integers(1, 60, n) * DAY, window.start), ts)
    via = _choose(rng, ["hotline", "online_chat", "email", "wechat"], n, [45, 25, 15, 15])
    has_email = pd.notna(p["email"].to_numpy()[i])
    has_union = pd.notna(p["unionid"].to_numpy()[i])
    via = np.where((via == "email") & ~has_email, "hotline", via)
    via = np.where((via == "wechat") & ~has_union, "online_chat", via)
    phone = p["phone"].to_numpy()[i]
    ph2 = p["phone2"].to_numpy()[i]
    phone = np.where(pd.notna(ph2) & (rng.random(n) < 0.6), ph2, phone)
    use_phone = np.isin(via, ["hotline", "online_chat"]) | (rng.random(n) < 0.7)  # forms ask for a phone
    phone_txt = mess.messy_phones(pd.Series(np.where(use_phone, phone, None)), rng)
    phone_txt[use_phone & (rng.random(n) < 0.005)] = "11111111111"
    email_txt = mess.messy_emails(pd.Series(np.where(via == "email", p["email"].to_numpy()[i], None)), rng)
    cat = _choose(rng, vocab.TICKET_CATEGORIES, n)
    cat = np.where(pull, _choose(rng, ["投诉", "产品质量", "退换货"], n), cat)
    desc = np.where(rng.random(n) < 0.3, "客户反馈:\n" + cat + ", 希望尽快处理", cat + "相关问题")
    member = p["member_id"].to_numpy()[i]
    sat = np.where(pull, rng.integers(1, 3, n), rng.integers(3, 6, n)).astype(object)
    sat[rng.random(n) < 0.4] = None
    df = pd.DataFrame({
        "ticket_id": np.char.mod("TK%09d", np.arange(n) + 1 + id_offset).astype(object),
        "created_at": _local(ts, "Asia/Shanghai", "%Y-%m-%dT%H:%M:%S+08:00"),
        "contact_channel": via, "contact_phone": phone_txt.to_numpy(), "contact_email": email_txt.to_numpy(),
        "wechat_unionid": np.where(via == "wechat", p["unionid"].to_numpy()[i], None),
        "customer_name": np.where(rng.random(n) < 0.8, mess.typo_names(pd.Series(p["name"].to_numpy()[i]), rng, 0.05), None),
        "member_id": np.where(pd.notna(member) & (rng.random(n) < 0.35), member, None),
        "category": cat, "description": desc, "satisfaction": sat,
        "status": _choose(rng, ["closed", "resolved", "open"], n, [60, 30, 10]),
        "_person": i, "_ts": ts,
    })
    return df.sort_values("_ts", kind="stable").drop(columns="_ts").reset_index(drop=True)

"""Lotus Tea House (莲心茶舍): a Chinese tea and tea-ware retailer shaped unlike the sample.

A deterministic generator draws hidden persons and writes what each of the brand's five
systems would export of them, plus the ground truth (which person is behind every data row
of every file). Nothing here reuses the sample's channels, column names or formats:

========================================  ===================================================
file (under the raw folder)               what it is
========================================  ===================================================
``members/lotus_members_export.csv``      member master data: UTF-8 with BOM, Chinese headers
                                          (会员卡号, 会员姓名, 手机号码, 电子邮箱, 会员性别 男/女/保密,
                                          生日 ``1990年3月5日``, 所在城市, 入会日期, 卡级别 金卡/银卡/普通,
                                          短信营销 是/否, 最后修改时间); a few members re-exported
                                          later (new tier, new phone, a typo fixed), a few rows
                                          exported twice verbatim
``till/lotus_pos_lines.csv``              the till's **line items** (GB18030): several rows per
                                          receipt (小票号 + 行号), local times, store, member card
                                          and/or phone (often neither), product, Chinese category,
                                          quantity, unit price and line amount as ``¥1,280.00``;
                                          gold members get a discount line (``¥-35.60`` or
                                          ``-¥35.60``, as two till versions print it)
``returns/lotus_returns.csv``             returns in a file of their own (CRLF): return number,
                                          original receipt, ``2024年6月3日 15:20`` times, refund
                                          (full basket or one line), the name and phone on the
                                          return form (names sometimes typed differently); a few
                                          name a receipt from before the export (not in the data)
``app_log/lotus_app_events.jsonl``        app / H5 / mini-program event log: epoch milliseconds,
                                          a device id on every event, the member card or phone of
                                          the logged-in user (devices browse anonymously before
                                          they log in), the brand's own event names; a few events
                                          re-sent by the SDK (exact duplicates) and a few without
                                          a time (quarantined by ingest, on purpose)
``consent/lotus_marketing_consent.csv``   marketing opt-ins / opt-outs: one contact column that
                                          holds a phone or an e-mail, channel 短信/邮件/微信, 是/否
========================================  ===================================================

Phones come in many spellings (``138 1234 5678``, ``+86-138-1234-5678``, ``0086 …``, full-width
digits); cashiers sometimes type a dummy phone (``13800000000``); family tablets are shared
by two members. Amounts are CNY.

The mappings are ``tests/brands/boutique/mappings/`` and the identity settings
``tests/brands/boutique/identity.yaml`` (:data:`BOUTIQUE_MAPPINGS`, :data:`BOUTIQUE_IDENTITY`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BOUTIQUE_MAPPINGS = HERE / "boutique" / "mappings"
BOUTIQUE_IDENTITY = HERE / "boutique" / "identity.yaml"

#: channel -> file under the raw folder
FILES = {
    "lotus_members": "members/lotus_members_export.csv",
    "lotus_till": "till/lotus_pos_lines.csv",
    "lotus_returns": "returns/lotus_returns.csv",
    "lotus_app_log": "app_log/lotus_app_events.jsonl",
    "lotus_consents": "consent/lotus_marketing_consent.csv",
}
TILL_ENCODING = "gb18030"
#: rows the generator spoils on purpose, and what the pipeline does with them
DELIBERATE = {
    "events_without_time": 12,   # app log: "ms": null -> ingest quarantine (required value missing)
    "events_resent": 15,         # app log: a line repeated verbatim -> clean drops it as an exact duplicate
    "members_exported_twice": 4,  # member export: a row repeated verbatim -> clean exact duplicate
    "orphan_returns": 6,         # returns naming a receipt from before the export -> refunds without order
}

START = np.datetime64("2024-01-01")
END = np.datetime64("2026-01-01")  # exclusive

__all__ = ["BOUTIQUE_MAPPINGS", "BOUTIQUE_IDENTITY", "FILES", "DELIBERATE", "TILL_ENCODING", "write_boutique",
           "raw_revenue", "till_receipts"]

# ----------------------------------------------------------------------------- vocabulary
SURNAMES = [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
            ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
            ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
            ("罗", "luo"), ("高", "gao"), ("梁", "liang"), ("宋", "song"), ("郑", "zheng"), ("谢", "xie"),
            ("韩", "han"), ("唐", "tang"), ("冯", "feng"), ("邓", "deng"), ("沈", "shen"), ("陆", "lu"),
            ("钱", "qian"), ("顾", "gu"), ("蒋", "jiang"), ("叶", "ye"), ("欧阳", "ouyang")]
GIVEN_F = [("芳", "fang"), ("静", "jing"), ("婷", "ting"), ("雪", "xue"), ("颖", "ying"), ("佳怡", "jiayi"),
           ("欣怡", "xinyi"), ("梓涵", "zihan"), ("雨桐", "yutong"), ("思琪", "siqi"), ("晓燕", "xiaoyan"),
           ("慧敏", "huimin"), ("诗涵", "shihan"), ("若兰", "ruolan"), ("清芬", "qingfen"), ("书瑶", "shuyao"),
           ("一诺", "yinuo"), ("可馨", "kexin"), ("梦琪", "mengqi")]
GIVEN_M = [("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("杰", "jie"), ("涛", "tao"), ("浩然", "haoran"),
           ("子轩", "zixuan"), ("俊杰", "junjie"), ("宇航", "yuhang"), ("志强", "zhiqiang"), ("建华", "jianhua"),
           ("明辉", "minghui"), ("文博", "wenbo"), ("一鸣", "yiming"), ("思远", "siyuan"), ("承泽", "chengze"),
           ("嘉禾", "jiahe"), ("立新", "lixin")]
# a look-alike for a typing slip on the last character
TYPO = {"芳": "方", "静": "晶", "婷": "亭", "雪": "雲", "颖": "影", "怡": "仪", "涵": "含", "桐": "彤", "琪": "棋",
        "燕": "艳", "敏": "民", "兰": "岚", "芬": "分", "瑶": "遥", "诺": "娜", "馨": "欣", "伟": "玮", "强": "墙",
        "磊": "垒", "杰": "洁", "涛": "滔", "然": "燃", "轩": "宣", "航": "杭", "华": "桦", "辉": "晖", "博": "搏",
        "鸣": "明", "远": "源", "泽": "则", "禾": "和", "新": "欣"}
CITIES = ["上海", "上海", "上海", "杭州", "杭州", "北京", "北京", "成都", "苏州", "南京"]
#: store code, name, city
STORES = [("SH01", "上海静安嘉里店", "上海"), ("SH02", "上海新天地店", "上海"), ("HZ01", "杭州西湖店", "杭州"),
          ("BJ01", "北京三里屯店", "北京"), ("CD01", "成都太古里店", "成都")]
#: sku, name, category (Chinese), price (CNY), weight
PRODUCTS = [
    ("G001", "西湖龙井·明前特级 50g", "绿茶", 368.0, 6), ("G002", "洞庭碧螺春 100g", "绿茶", 198.0, 5),
    ("G003", "安吉白茶 100g", "绿茶", 228.0, 4), ("B001", "正山小种 100g", "红茶", 158.0, 5),
    ("B002", "金骏眉 50g", "红茶", 688.0, 2), ("B003", "滇红古树 100g", "红茶", 138.0, 4),
    ("O001", "武夷大红袍 100g", "乌龙茶", 428.0, 4), ("O002", "安溪铁观音 125g", "乌龙茶", 168.0, 5),
    ("O003", "凤凰单丛·蜜兰香 100g", "乌龙茶", 258.0, 3), ("P001", "普洱熟茶饼 357g", "普洱茶", 1280.0, 2),
    ("P002", "冰岛古树生普 357g", "普洱茶", 2680.0, 1), ("W001", "白毫银针 50g", "白茶", 560.0, 2),
    ("W002", "福鼎寿眉饼 300g", "白茶", 128.0, 4), ("H001", "茉莉花茶 100g", "花草茶", 88.0, 5),
    ("H002", "玫瑰红茶 罐装", "花草茶", 68.0, 4), ("T001", "汝窑盖碗", "茶具", 268.0, 3),
    ("T002", "宜兴紫砂壶·西施", "茶具", 1880.0, 1), ("T003", "玻璃公道杯", "茶具", 98.0, 4),
    ("T004", "便携旅行茶具套装", "茶具", 358.0, 2), ("X001", "中秋臻品礼盒", "礼盒", 888.0, 2),
    ("X002", "新春团圆礼盒", "礼盒", 1288.0, 2), ("D001", "冷泡乌龙", "现制茶饮", 32.0, 10),
    ("D002", "桂花龙井拿铁", "现制茶饮", 28.0, 10), ("D003", "柠檬红茶", "现制茶饮", 22.0, 8),
]
APP_ACTIONS = ["view_list", "view_item", "search_kw", "add_cart", "del_cart", "share", "coupon_get",
               "go_checkout", "pay_ok", "book_class", "page_view"]
APP_WEIGHTS = [14, 34, 10, 12, 3, 5, 5, 6, 3, 2, 6]
KEYWORDS = ["龙井", "普洱", "白茶", "礼盒", "紫砂壶", "盖碗", "大红袍", "茉莉", "冷泡", "金骏眉"]
RETURN_REASONS = ["质量问题", "不喜欢口味", "送礼退回", "重复购买", "包装破损"]

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


# ----------------------------------------------------------------------------- helpers
def _messy_phone(national: str, rng: np.random.Generator) -> str:
    """One of the ways staff and customers type a mainland mobile number."""
    a, b, c = national[:3], national[3:7], national[7:]
    forms = [national, f"{a} {b} {c}", f"{a}-{b}-{c}", f"+86 {national}", f"+86-{a}-{b}-{c}",
             f"0086 {national}", f"86-{national}", national.translate(_FULLWIDTH), f" {national} "]
    k = rng.choice(len(forms), p=[.50, .10, .10, .08, .05, .05, .04, .03, .05])
    return forms[k]


def _money(x: float, minus_first: bool = False) -> str:
    """``¥1,280.00``; negative amounts as tills print them: ``¥-35.60``, or ``-¥35.60``."""
    if x >= 0:
        return f"¥{x:,.2f}"
    return f"-¥{-x:,.2f}" if minus_first else f"¥-{-x:,.2f}"


def _cents(text: str) -> int:
    """Integer cents of ``¥1,280.00`` / ``¥-35.60`` / ``-¥35.60`` (parsed by hand, independently of the
    workbench)."""
    t = text.strip().replace("¥", "").replace("￥", "").replace(",", "")
    sign = -1 if t.startswith("-") else 1
    whole, _, frac = t.lstrip("+-").partition(".")
    return sign * (int(whole or "0") * 100 + int((frac + "00")[:2]))


def _cn_date(d: np.datetime64) -> str:
    ts = pd.Timestamp(d)
    return f"{ts.year}年{ts.month}月{ts.day}日"


def _cn_minute(t: np.datetime64) -> str:
    ts = pd.Timestamp(t)
    return f"{ts.year}年{ts.month}月{ts.day}日 {ts.hour}:{ts.minute:02d}"


def _rand_time(rng: np.random.Generator, n: int, lo: np.datetime64, hi: np.datetime64,
               hours: tuple[int, int] = (10, 22)) -> np.ndarray:
    """``n`` local wall times: a day in [lo, hi), a second within ``hours``."""
    days = (hi - lo).astype("timedelta64[D]").astype(int)
    d = lo.astype("datetime64[D]") + rng.integers(0, days, n).astype("timedelta64[D]")
    s = rng.integers(hours[0] * 3600, hours[1] * 3600, n).astype("timedelta64[s]")
    return d.astype("datetime64[s]") + s


# ----------------------------------------------------------------------------- persons
def _persons(n: int, rng: np.random.Generator) -> pd.DataFrame:
    kind = rng.choice(["member", "phone_only", "walk_in", "browser"], size=n, p=[.70, .12, .10, .08])
    female = rng.random(n) < 0.68  # tea shops: mostly women
    sur = rng.integers(0, len(SURNAMES), n)
    gf = rng.integers(0, len(GIVEN_F), n)
    gm = rng.integers(0, len(GIVEN_M), n)
    given = [GIVEN_F[g][0] if f else GIVEN_M[m][0] for f, g, m in zip(female, gf, gm)]
    given_py = [GIVEN_F[g][1] if f else GIVEN_M[m][1] for f, g, m in zip(female, gf, gm)]
    names = [SURNAMES[s][0] + g for s, g in zip(sur, given)]
    # unique mobile numbers; never a placeholder-looking one
    prefixes = np.array(["135", "136", "137", "139", "150", "151", "152", "158", "159", "186", "187", "188",
                         "189", "177", "199", "130", "131", "133", "166", "180"])
    phones: list[str] = []
    seen: set[str] = set()
    while len(phones) < 2 * n:
        p = str(prefixes[rng.integers(0, len(prefixes))]) + f"{rng.integers(0, 10**8):08d}"
        if p not in seen and len(set(p[3:])) > 2:
            seen.add(p)
            phones.append(p)
    member = kind == "member"
    cards = np.full(n, None, dtype=object)
    nums: set[int] = set()
    while len(nums) < member.sum():
        nums.add(int(rng.integers(10_000, 99_999_999)))
    cards[member] = [f"LT{x:08d}" for x in sorted(nums)]
    domains = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com"]
    email = np.full(n, None, dtype=object)
    has_mail = member & (rng.random(n) < 0.6)
    width = len(str(n))
    for i in np.flatnonzero(has_mail):  # the fixed-width person number keeps addresses distinct
        local = SURNAMES[sur[i]][1] + given_py[i] + (str(rng.integers(1, 999)) if rng.random() < .7 else "")
        email[i] = f"{local}.{i:0{width}d}@{domains[rng.integers(0, len(domains))]}" if rng.random() < .1 else \
            f"{local}{i:0{width}d}@{domains[rng.integers(0, len(domains))]}"
    birth = np.datetime64("1958-01-01") + rng.integers(0, 365 * 46, n).astype("timedelta64[D]")
    registered = _rand_time(rng, n, np.datetime64("2016-03-01"), np.datetime64("2025-10-01"), (9, 22))
    # a few members changed their phone during the export window (the re-export has the new one)
    changes = member & (registered < np.datetime64("2024-01-01")) & (rng.random(n) < 0.025)
    change_at = np.where(changes, _rand_time(rng, n, np.datetime64("2024-04-01"), np.datetime64("2025-09-01")),
                         np.datetime64("NaT"))
    p = pd.DataFrame({
        "person_id": [f"LOTUS-P{i + 1:05d}" for i in range(n)], "kind": kind, "female": female, "name": names,
        "surname": [SURNAMES[s][0] for s in sur], "given": given,
        "pinyin": [SURNAMES[s][1].capitalize() + " " + g.capitalize() for s, g in zip(sur, given_py)],
        "phone": phones[:n], "new_phone": np.where(changes, phones[n:], None), "phone_change_at": change_at,
        "card": cards, "email": email, "birth": birth,
        "city": np.array(CITIES)[rng.integers(0, len(CITIES), n)], "registered": registered,
        "level": rng.choice(["金卡", "银卡", "普通"], size=n, p=[.12, .25, .63]),
        "sms": rng.random(n) < 0.6,
    })
    return p


def _phone_at(rows: list[dict], i: int, t: np.datetime64) -> str:
    """The person's phone at time ``t`` (a changed phone from its change date on); ``rows``:
    the persons as records."""
    row = rows[i]
    if pd.notna(row["new_phone"]) and pd.notna(row["phone_change_at"]) and t >= row["phone_change_at"]:
        return row["new_phone"]
    return row["phone"]


# ----------------------------------------------------------------------------- members
def _members(p: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    people = p.to_dict("records")
    m = p[p["kind"] == "member"]
    now = np.datetime64("2025-12-31T20:00:00")
    rows = []
    for i, r in m.iterrows():
        upd = r["registered"] + pd.Timedelta(seconds=int(rng.integers(0, max(1, (now - r["registered"]).total_seconds()))))
        rows.append({"i": i, "card": r["card"], "name": r["name"], "phone": r["phone"], "email": r["email"],
                     "gender": "女" if r["female"] else "男", "birth": r["birth"], "city": r["city"],
                     "registered": r["registered"], "level": r["level"], "sms": r["sms"], "updated": upd})
    base = pd.DataFrame(rows)
    base["gender"] = np.where(rng.random(len(base)) < 0.04, "保密", base["gender"])
    base["birth"] = np.where(rng.random(len(base)) < 0.05, np.datetime64("NaT"), base["birth"].to_numpy())
    # members re-exported later: the first export holds an older version
    changed = p.loc[base["i"], "new_phone"].notna().to_numpy() | (rng.random(len(base)) < 0.03)
    old = base[changed].copy()
    new = base[changed].copy()
    for k, (idx, r) in enumerate(old.iterrows()):
        person = people[int(r["i"])]
        if pd.notna(person["new_phone"]):
            new.at[idx, "phone"] = person["new_phone"]
            new.at[idx, "updated"] = person["phone_change_at"] + np.timedelta64(int(rng.integers(60, 86400)), "s")
            old.at[idx, "updated"] = min(r["updated"], person["phone_change_at"] - np.timedelta64(1, "D"))
        elif k % 3 == 0:  # the name was typed differently at first, corrected later
            last = r["name"][-1]
            old.at[idx, "name"] = r["name"][:-1] + TYPO.get(last, last)
            old.at[idx, "updated"] = r["updated"] - np.timedelta64(30, "D")
        elif k % 3 == 1:
            old.at[idx, "level"] = "普通" if r["level"] != "普通" else "银卡"
            old.at[idx, "updated"] = r["updated"] - np.timedelta64(200, "D")
        else:
            old.at[idx, "email"] = None
            old.at[idx, "updated"] = r["updated"] - np.timedelta64(90, "D")
    first = pd.concat([base[~changed], old]).sort_values("card", kind="stable")
    out = pd.concat([first, new], ignore_index=True)  # the re-exported records come at the end
    phone = [_messy_phone(x, rng) for x in out["phone"]]
    email = [None if pd.isna(e) else (e.upper() if rng.random() < .08 else (f" {e} " if rng.random() < .05 else e))
             for e in out["email"]]
    df = pd.DataFrame({
        "会员卡号": out["card"], "会员姓名": out["name"], "手机号码": phone, "电子邮箱": email,
        "会员性别": out["gender"], "生日": [None if pd.isna(b) else _cn_date(b) for b in out["birth"]],
        "所在城市": [c + ("市" if k % 4 == 0 else "") for k, c in enumerate(out["city"])],
        "入会日期": pd.to_datetime(out["registered"]).dt.strftime("%Y-%m-%d"),
        "卡级别": out["level"], "短信营销": np.where(out["sms"], "是", "否"),
        "最后修改时间": pd.to_datetime(out["updated"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "_person": out["i"].to_numpy(),
    })
    # a few rows exported twice, verbatim (right after the first copy)
    twice = rng.choice(len(df), size=DELIBERATE["members_exported_twice"], replace=False)
    df = pd.concat([df, df.iloc[twice]]).sort_index(kind="stable").reset_index(drop=True)
    return df


# ----------------------------------------------------------------------------- till and returns
def _baskets(p: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    mean = {"member": 4.0, "phone_only": 1.5, "walk_in": 0.6, "browser": 0.0}
    rows = []
    store_of_city = {c: [k for k, s in enumerate(STORES) if s[2] == c] for c in CITIES}
    rows_p = p.to_dict("records")
    for i, r in enumerate(rows_p):
        if r["kind"] == "browser":
            continue
        lam = rng.gamma(2.0, mean[r["kind"]] / 2.0)
        n = 1 + rng.poisson(lam)
        t = np.sort(_rand_time(rng, n, START, END))
        home = store_of_city.get(r["city"]) or [int(rng.integers(0, len(STORES)))]
        for tt in t:
            store = home[int(rng.integers(0, len(home)))] if rng.random() < .85 else int(rng.integers(0, len(STORES)))
            rows.append({"i": i, "t": tt, "store": store})
    b = pd.DataFrame(rows).sort_values(["t", "i"], kind="stable").reset_index(drop=True)
    # receipt numbers: store + date + running number of the store's day
    day = pd.to_datetime(b["t"]).dt.strftime("%Y%m%d")
    code = b["store"].map(lambda k: STORES[k][0])
    seq = b.groupby([code, day]).cumcount() + 1
    b["receipt"] = code + day + seq.map(lambda x: f"{x:04d}")
    # how the customer was identified at the till
    card, phone = [], []
    for i, tt in zip(b["i"], b["t"]):
        r = rows_p[i]
        c = ph = None
        u = rng.random()
        if r["kind"] == "member":
            if u < .65:
                c = r["card"]
                if rng.random() < .2:
                    ph = _phone_at(rows_p, i, tt)
            elif u < .85:
                ph = _phone_at(rows_p, i, tt)
        elif r["kind"] == "phone_only" and u < .85:
            ph = _phone_at(rows_p, i, tt)
        card.append(c)
        phone.append(ph)
    b["card"], b["phone"] = card, phone
    return b


def _till(p: pd.DataFrame, b: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    weights = np.array([x[4] for x in PRODUCTS], float)
    rows = []
    rows_p = p.to_dict("records")
    for k, r in enumerate(b.to_dict("records")):
        n_lines = int(rng.choice([1, 2, 3, 4, 5], p=[.38, .30, .18, .10, .04]))
        picks = rng.choice(len(PRODUCTS), size=n_lines, replace=False, p=weights / weights.sum())
        phone_txt = None
        if pd.notna(r["phone"]):
            phone_txt = _messy_phone(r["phone"], rng)
        elif rng.random() < 0.04:  # the cashier types a dummy number to get past the field
            phone_txt = "13800000000" if rng.random() < .7 else "11111111111"
        lines = []
        for j, pi in enumerate(picks, start=1):
            sku, name, cat, price, _ = PRODUCTS[pi]
            qty = int(rng.choice([1, 2, 3], p=[.80, .15, .05])) if cat != "现制茶饮" else int(rng.integers(1, 5))
            lines.append((j, sku, name, cat, qty, price, round(qty * price, 2)))
        gold = pd.notna(r["card"]) and rows_p[r["i"]]["level"] == "金卡"
        if gold:  # gold members: 5% off the basket, printed as a line of its own
            off = -round(0.05 * sum(x[6] for x in lines), 2)
            lines.append((len(lines) + 1, "ZK95", "金卡会员95折", "折扣", 1, off, off))
        t = pd.Timestamp(r["t"]).strftime("%Y/%m/%d %H:%M:%S")
        minus_first = bool(rng.random() < .5)  # two till firmware versions print negatives differently
        for j, sku, name, cat, qty, price, amount in lines:
            rows.append({"小票号": r["receipt"], "行号": j, "交易时间": t, "门店": STORES[r["store"]][1],
                         "会员卡号": r["card"], "顾客手机": phone_txt, "商品编码": sku, "品名": name, "品类": cat,
                         "销售数量": qty, "单价": _money(price, minus_first), "行金额": _money(amount, minus_first),
                         "_person": r["i"], "_basket": k, "_cents": int(round(amount * 100))})
    return pd.DataFrame(rows)


def _name_on_form(p: list[dict], i: int, rng: np.random.Generator) -> str | None:
    """The name written on a return form: as registered, spaced, in pinyin, mistyped or left out."""
    r = p[i]
    u = rng.random()
    if u < .68:
        return r["name"]
    if u < .78:
        return r["surname"] + " " + r["given"]
    if u < .88:
        return r["pinyin"]
    if u < .94:
        last = r["name"][-1]
        return r["name"][:-1] + TYPO.get(last, last)
    return None


def _returns(p: pd.DataFrame, b: pd.DataFrame, till: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows_p = p.to_dict("records")
    chosen = np.sort(rng.choice(len(b), size=max(1, int(0.05 * len(b))), replace=False))
    baskets = b.to_dict("records")
    by_basket: dict[int, list[dict]] = {}
    for line in till[["_basket", "品类", "销售数量", "单价", "_cents"]].to_dict("records"):
        by_basket.setdefault(line["_basket"], []).append(line)
    rows = []
    for k in chosen:
        r = baskets[k]
        lines = by_basket[k]
        total = sum(x["_cents"] for x in lines)
        goods = [x for x in lines if x["品类"] != "折扣"]
        if rng.random() < .6 or len(goods) == 0:
            refund = total                                     # the whole basket
        else:
            line = goods[int(rng.integers(0, len(goods)))]
            unit = _cents(line["单价"])
            refund = unit if line["销售数量"] > 1 and rng.random() < .5 else int(line["_cents"])  # one unit / one line
        sold = np.datetime64(r["t"], "D")
        when = _rand_time(rng, 1, sold + np.timedelta64(1, "D"), sold + np.timedelta64(21, "D"))[0]
        rows.append({"i": r["i"], "receipt": r["receipt"], "t": when, "store": r["store"], "cents": refund})
    for j in range(DELIBERATE["orphan_returns"]):  # sold before the export starts
        i = int(rng.choice(np.flatnonzero(p["kind"].isin(["member", "phone_only"]).to_numpy())))
        store = int(rng.integers(0, len(STORES)))
        sold = np.datetime64("2023-12-01") + np.timedelta64(int(rng.integers(0, 30)), "D")
        receipt = STORES[store][0] + pd.Timestamp(sold).strftime("%Y%m%d") + f"{int(rng.integers(1, 60)):04d}"
        price = PRODUCTS[int(rng.integers(0, len(PRODUCTS)))][3]
        rows.append({"i": i, "receipt": receipt, "store": store, "cents": int(round(price * 100)),
                     "t": _rand_time(rng, 1, np.datetime64("2024-01-02"), np.datetime64("2024-01-22"))[0]})
    rt = pd.DataFrame(rows).sort_values("t", kind="stable").reset_index(drop=True)
    day = pd.to_datetime(rt["t"]).dt.strftime("%Y%m%d")
    code = rt["store"].map(lambda s: STORES[s][0])
    seq = rt.groupby([code, day]).cumcount() + 1
    phone = []
    for i, t in zip(rt["i"], rt["t"]):
        phone.append(_messy_phone(_phone_at(rows_p, int(i), t), rng) if rng.random() < .85 else None)
    return pd.DataFrame({
        "退货单号": "TH" + code + day + seq.map(lambda x: f"{x:03d}"), "原小票号": rt["receipt"],
        "退货时间": [_cn_minute(t) for t in rt["t"]], "退货门店": rt["store"].map(lambda s: STORES[s][1]),
        "实退金额": [_money(c / 100) for c in rt["cents"]],
        "退货人": [_name_on_form(rows_p, int(i), rng) for i in rt["i"]], "联系电话": phone,
        "退货原因": rng.choice(RETURN_REASONS, size=len(rt)), "_person": rt["i"].to_numpy()})


# ----------------------------------------------------------------------------- app log
def _app_log(p: pd.DataFrame, rng: np.random.Generator) -> tuple[list[dict], list[int]]:
    use = {"member": .55, "phone_only": .20, "walk_in": .05, "browser": 1.0}
    users = [i for i, k in enumerate(p["kind"]) if rng.random() < use[k]]
    devices: dict[int, list[tuple[str, str]]] = {}

    def new_device() -> tuple[str, str]:
        src = str(rng.choice(["ios", "android", "h5", "mini"], p=[.35, .35, .15, .15]))
        prefix = {"ios": "ios-", "android": "and-", "h5": "h5-", "mini": "wxmp-"}[src]
        return prefix + "".join(rng.choice(list("0123456789abcdef"), size=16)), src

    for i in users:
        devices[i] = [new_device() for _ in range(1 if rng.random() < .8 else 2)]
    # family tablets: two members of a household log in on one device
    rows_p = p.to_dict("records")
    members = [i for i in users if rows_p[i]["kind"] == "member"]
    for a, c in rng.choice(members, size=(5, 2), replace=False):
        tablet = ("and-pad" + "".join(rng.choice(list("0123456789abcdef"), size=13)), "android")
        devices[int(a)].append(tablet)
        devices[int(c)].append(tablet)
    events, persons = [], []
    for i in users:
        r = rows_p[i]
        logs_in = r["kind"] in ("member", "phone_only")
        # browses anonymously until the first login (a share of users were logged in from the start)
        login_from = (START if rng.random() < .4 else _rand_time(rng, 1, START, END)[0]) if logs_in else None
        by_card = r["kind"] == "member" and rng.random() < .65
        for dev, src in devices[i]:
            n_sessions = 1 + rng.poisson(2.0 if r["kind"] == "browser" else 6.0)
            starts = np.sort(_rand_time(rng, n_sessions, START, END, (7, 24)))
            announced = False
            for s in starts:
                logged = login_from is not None and s >= login_from
                t = s
                first = "open_app" if src in ("ios", "android") else "page_view"
                seq = [first] + list(rng.choice(APP_ACTIONS, size=1 + rng.poisson(4),
                                                p=np.array(APP_WEIGHTS) / sum(APP_WEIGHTS)))
                if logged and not announced:  # the device's first login: anonymous until the login event
                    seq.insert(1, "login")
                    announced, logged = True, False
                for a in seq:
                    t = t + np.timedelta64(int(rng.integers(3, 150)), "s")
                    logged = logged or a == "login"
                    login = None
                    if logged:
                        login = r["card"] if by_card else _phone_at(rows_p, i, t)
                    ev = {"ms": int((t - np.datetime64("1970-01-01T08:00:00")) / np.timedelta64(1, "ms"))
                          + int(rng.integers(0, 1000)), "device": dev, "login": login, "action": str(a),
                          "sku": None, "cat": None, "kw": None, "src": src}
                    if a in ("view_item", "add_cart", "del_cart", "share"):
                        prod = PRODUCTS[int(rng.integers(0, len(PRODUCTS)))]
                        ev["sku"], ev["cat"] = prod[0], prod[2]
                    elif a == "view_list":
                        ev["cat"] = PRODUCTS[int(rng.integers(0, len(PRODUCTS)))][2]
                    elif a == "search_kw":
                        ev["kw"] = str(rng.choice(KEYWORDS))
                    events.append(ev)
                    persons.append(i)
    order = np.argsort([e["ms"] for e in events], kind="stable")
    events = [events[k] for k in order]
    persons = [persons[k] for k in order]
    # the SDK lost its clock on a few events, and re-sent a few others
    for k in rng.choice(len(events), size=DELIBERATE["events_without_time"], replace=False):
        events[k] = {**events[k], "ms": None}
    again = {int(k) for k in rng.choice(len(events), size=DELIBERATE["events_resent"], replace=False)}
    out_e, out_p = [], []
    for k, (e, who) in enumerate(zip(events, persons)):
        out_e.append(e)
        out_p.append(who)
        if k in again and e["ms"] is not None:
            out_e.append(dict(e))
            out_p.append(who)
    return out_e, out_p


# ----------------------------------------------------------------------------- consents
def _consents(p: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows_p = p.to_dict("records")
    who = np.flatnonzero(p["kind"].isin(["member", "phone_only"]).to_numpy())
    pick = rng.choice(who, size=int(0.35 * len(who)), replace=False)
    rows = []
    for i in np.sort(pick):
        r = rows_p[i]
        for _ in range(1 if rng.random() < .8 else 2):
            t = _rand_time(rng, 1, START, END, (8, 23))[0]
            if pd.notna(r["email"]) and rng.random() < .3:
                contact, purpose = (r["email"].upper() if rng.random() < .1 else r["email"]), "邮件"
            else:
                contact, purpose = _messy_phone(_phone_at(rows_p, i, t), rng), ("短信" if rng.random() < .75 else "微信")
            rows.append({"t": t, "联系方式": contact, "授权渠道": purpose,
                         "是否同意": "是" if rng.random() < .7 else "否",
                         "来源": str(rng.choice(["门店", "小程序", "官网", "客服"])), "_person": i})
    df = pd.DataFrame(rows).sort_values("t", kind="stable").reset_index(drop=True)
    df.insert(3, "操作时间", pd.to_datetime(df["t"]).dt.strftime("%Y-%m-%dT%H:%M:%S+08:00"))
    return df.drop(columns="t")


# ----------------------------------------------------------------------------- the brand
def write_boutique(raw_dir: str | Path, *, persons: int = 800, seed: int = 11) -> dict:
    """Write Lotus Tea House's five exports and their ground truth under ``raw_dir``.

    The same ``persons`` and ``seed`` give byte-identical files. Returns ``{"persons": ...,
    "seed": ..., "files": {channel: {"path": <Path>, "rows": <data rows>}}, "rows": <total>,
    "receipts": <distinct receipts in the till export>, "deliberate": DELIBERATE}``.
    """
    raw_dir = Path(raw_dir)
    rng = np.random.default_rng(seed)
    p = _persons(persons, rng)
    members = _members(p, rng)
    b = _baskets(p, rng)
    till = _till(p, b, rng)
    returns = _returns(p, b, till, rng)
    events, event_persons = _app_log(p, rng)
    consents = _consents(p, rng)

    written: dict[str, dict] = {}
    truth = []

    def csv_out(channel: str, df: pd.DataFrame, encoding: str, newline: str = "\n") -> None:
        path = raw_dir / FILES[channel]
        path.parent.mkdir(parents=True, exist_ok=True)
        data = df.drop(columns=[c for c in df.columns if c.startswith("_")])
        data.to_csv(path, index=False, encoding=encoding, lineterminator=newline)
        written[channel] = {"path": path, "rows": int(len(df))}
        truth.append(pd.DataFrame({"channel": channel, "source_file": FILES[channel],
                                   "source_row": np.arange(1, len(df) + 1, dtype=np.int64),
                                   "person_id": p["person_id"].to_numpy()[df["_person"].to_numpy(int)]}))

    csv_out("lotus_members", members, "utf-8-sig")
    csv_out("lotus_till", till, TILL_ENCODING)
    csv_out("lotus_returns", returns, "utf-8", "\r\n")
    csv_out("lotus_consents", consents, "utf-8")
    path = raw_dir / FILES["lotus_app_log"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for e in events:
            fh.write(json.dumps(e, ensure_ascii=False) + "\n")
    written["lotus_app_log"] = {"path": path, "rows": len(events)}
    truth.append(pd.DataFrame({"channel": "lotus_app_log", "source_file": FILES["lotus_app_log"],
                               "source_row": np.arange(1, len(events) + 1, dtype=np.int64),
                               "person_id": p["person_id"].to_numpy()[np.asarray(event_persons, int)]}))

    tdir = raw_dir / "_truth"
    tdir.mkdir(parents=True, exist_ok=True)
    pd.concat(truth, ignore_index=True).to_parquet(tdir / "records.parquet", index=False)
    p_out = p.assign(phone_change_at=pd.to_datetime(p["phone_change_at"]), birth=pd.to_datetime(p["birth"]),
                     registered=pd.to_datetime(p["registered"]))
    p_out.to_parquet(tdir / "persons.parquet", index=False)
    summary = {"brand": "Lotus Tea House", "persons": int(persons), "seed": int(seed),
               "files": {c: {"path": FILES[c], "rows": v["rows"]} for c, v in written.items()},
               "rows": int(sum(v["rows"] for v in written.values())),
               "receipts": int(till["小票号"].nunique()), "deliberate": DELIBERATE}
    (tdir / "sample.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return {**summary, "files": written}


# ----------------------------------------------------------------------------- independent checks
def till_receipts(raw_dir: str | Path) -> int:
    """Distinct receipt numbers in the till export, read straight from the file."""
    with open(Path(raw_dir) / FILES["lotus_till"], encoding=TILL_ENCODING, newline="") as fh:
        return len({row["小票号"] for row in csv.DictReader(fh)})


def raw_revenue(raw_dir: str | Path) -> float:
    """Net revenue in CNY from the raw files alone: every line amount of the till export minus
    every refund of the returns file (parsed by hand with :mod:`csv`, summed in integer cents)."""
    raw_dir = Path(raw_dir)
    with open(raw_dir / FILES["lotus_till"], encoding=TILL_ENCODING, newline="") as fh:
        sold = sum(_cents(row["行金额"]) for row in csv.DictReader(fh))
    with open(raw_dir / FILES["lotus_returns"], encoding="utf-8", newline="") as fh:
        refunded = sum(abs(_cents(row["实退金额"])) for row in csv.DictReader(fh))
    return (sold - refunded) / 100

"""Draft a channel mapping from a data file: what ``workbench map FILE`` prints.

:func:`draft_mapping` reads the start of a file (at most ``sample_rows`` rows) and guesses
everything a mapping (:mod:`workbench.mapping`) declares:

* **how to read it** — the format from the extension or the content (csv/tsv/txt, JSON
  lines, Parquet, Excel), the encoding (UTF-8, UTF-8 with BOM, GB18030 for GBK exports,
  Big5, UTF-16), the delimiter (``,`` ``;`` tab ``|``), whether there is a header row;
* **what each column is** — a field type (phone, masked phone, e-mail, timestamp with its
  ``formats`` or epoch ``unit``, date, amount with a currency, integer, float, boolean,
  category with its ``values``, identifier, key, name, string), a canonical field name from
  English and Chinese header words (``下单时间`` -> ``ordered_at``), ``pii`` and ``required``;
* **what the file is** — its role (profile, orders, returns, events, consents), the grain
  of an orders file (``line`` when an order key repeats over product rows), the event
  vocabulary for an events file.

The result is a :class:`Draft`: the mapping as a plain dict (it always passes
``ChannelMapping.from_dict``), the per-column guesses, and YAML text with a comment on
every uncertain guess — a starting point to edit, not a finished mapping.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "orders.csv"
    >>> _ = p.write_text("order_no,order_time,amount\\nA1,2025-03-01 10:00:00,12.50\\n"
    ...                  "A2,2025-03-02 11:30:00,8.00\\n", encoding="utf-8")
    >>> d = draft_mapping(p)
    >>> d.role, d.mapping["fields"]["ordered_at"]["formats"], d.mapping["source"]["pattern"]
    ('orders', ['%Y-%m-%d %H:%M:%S'], 'orders.csv')
"""

from __future__ import annotations

import argparse
import codecs
import csv
import functools
import io
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .mapping import ENCODINGS, FIELD_TYPES, ChannelMapping, MappingError
from .normalise import (
    COMMON_SURNAME_PINYINS,
    MISSING_TOKENS,
    UNKNOWN_TOKENS,
    normalise_emails,
    normalise_phones,
    parse_number,
)
from .roles import (
    CONSENT_PURPOSES,
    EVENT_TYPES,
    ORDER_STATUSES,
    ROLES,
    TRAITS,
    event_slug,
)

__all__ = [
    "ColumnGuess",
    "Draft",
    "SourceGuess",
    "add_map_arguments",
    "cli_map",
    "draft_mapping",
    "main",
    "map_command",
    "sniff_source",
]

DEFAULT_SAMPLE_ROWS = 50_000
_MAX_UNIQUE = 5_000          # distinct values examined per column
_MAX_CATEGORY = 30           # at most this many distinct spellings make a category
_MAX_EVENT_NAMES = 300       # an event-name column stays a category up to this many names
_HEAD_BYTES = 1 << 20        # bytes read for encoding and delimiter sniffing
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_ABSENT = {t.casefold() for t in MISSING_TOKENS | UNKNOWN_TOKENS}


# ============================================================================ results
@dataclass
class SourceGuess:
    """How to read the file: what goes under ``source:`` plus what was noticed on the way."""

    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    header: bool = True
    newlines_in_values: bool = False
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ColumnGuess:
    """What one source column was taken for.

    ``confidence`` is ``high``, ``medium`` or ``low``; ``note`` says why (it becomes the
    column's YAML comment, as ``# guess: ...; check`` unless the confidence is high).
    """

    column: str
    field: str
    type: str
    spec: dict[str, Any]
    confidence: str
    note: str
    present: int = 0
    distinct: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """A drafted mapping: ``mapping`` (a plain dict, valid for ``ChannelMapping.from_dict``),
    ``yaml`` (the same with comments, to edit), the per-column guesses and the role guess."""

    mapping: dict[str, Any]
    yaml: str
    columns: list[ColumnGuess]
    role: str
    role_confidence: str
    role_note: str
    source: SourceGuess
    rows_sampled: int
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_mapping(self) -> ChannelMapping:
        """The drafted mapping as a :class:`~workbench.mapping.ChannelMapping`."""
        return ChannelMapping.from_dict(self.mapping)

    def column(self, name: str) -> ColumnGuess:
        """The guess for source column ``name``."""
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(f"No column {name!r} in the drafted file. Columns: {[c.column for c in self.columns]}.")

    def field(self, name: str) -> ColumnGuess:
        """The guess behind field ``name`` of the mapping."""
        for c in self.columns:
            if c.field == name:
                return c
        raise KeyError(f"No field {name!r} in the draft. Fields: {[c.field for c in self.columns]}.")


# ============================================================================ text helpers
def _nfkc(text: Any) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip()


@functools.lru_cache(maxsize=4096)
def _pinyin(text: str) -> list[str]:
    from pypinyin import lazy_pinyin

    return lazy_pinyin(text)


def _slug(text: Any) -> str:
    """snake_case ASCII name for a header (Chinese via pinyin); '' when nothing is left.

    >>> _slug("Order ID"), _slug("微信UnionID"), _slug("customerPhone"), _slug("2nd name")
    ('order_id', 'wei_xin_union_id', 'customer_phone', 'f_2nd_name')
    """
    t = _nfkc(text)
    if _CJK_RE.search(t):
        t = " ".join(_pinyin(t))
    t = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", t)
    t = re.sub(r"[^0-9A-Za-z]+", "_", t).strip("_").lower()
    return f"f_{t}" if t[:1].isdigit() else t


def _header_tokens(header: str) -> tuple[list[str], str]:
    """(latin word tokens, lower-cased text) of a header, camelCase split."""
    t = _nfkc(header)
    t = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", t)
    low = t.lower()
    return re.findall(r"[a-z0-9]+", low), low


def _words(text: str) -> set[str]:
    """Word tokens of a file name or channel (camel and snake split), plus its Chinese text."""
    toks, low = _header_tokens(text)
    return set(toks) | ({low} if _CJK_RE.search(low) else set())


def _has_any(words: set[str], text: str, needles: Sequence[str]) -> bool:
    """Any needle among the words (latin) or inside the text (Chinese or multi-word)."""
    for n in needles:
        if _CJK_RE.search(n) or " " in n or "_" in n:
            if n in text:
                return True
        elif n in words or any(w.startswith(n) and len(n) >= 5 for w in words):
            return True
    return False


# ============================================================================ header concepts
# concept -> (English phrases, Chinese words). A header matches a phrase when the phrase's words
# appear in a row among its words (or joined: "orderid"), a Chinese word when it is inside the
# header. Longer matches score higher; on a tie the concept listed first wins, so specific
# concepts come before generic ones.
_CONCEPTS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("return_ref", ("return id", "return no", "return number", "refund id", "refund no", "refund number", "rma",
                    "aftersale id", "return receipt"), ("退货单号", "退款单号", "售后单号", "退货编号", "退单号", "退货单")),
    ("original_ref", ("original order", "original receipt", "orig order", "orig receipt", "original", "ref order",
                      "reference", "parent order", "original txn", "original transaction", "orig"),
     ("原订单", "原单号", "原小票", "关联订单", "原始订单", "原交易", "原单")),
    ("refund_amount", ("refund amount", "refund", "refunded amount", "refund value", "return amount",
                       "refund total"), ("退款金额", "退款", "退货金额", "退款额")),
    ("return_time", ("return time", "return date", "returned at", "refund time", "refund date", "refunded at",
                     "returned"), ("退货时间", "退款时间", "退货日期", "退款日期", "售后时间")),
    ("order_time", ("order time", "order date", "ordered at", "order datetime", "purchase time", "purchase date",
                    "txn time", "txn date", "transaction time", "transaction date", "trade time", "pay time", "paid at",
                    "payment time", "sale time", "sale date", "checkout time", "order created"),
     ("下单时间", "下单日期", "订单时间", "订单日期", "成交时间", "付款时间", "支付时间", "交易时间", "交易日期", "购买时间",
      "销售时间", "消费时间", "下单")),
    ("registered_time", ("registered at", "register time", "registration time", "registration date", "registered",
                         "signup time", "sign up time", "signup date", "join date", "joined at", "join time", "joined",
                         "member since", "registration"),
     ("注册时间", "注册日期", "入会时间", "入会日期", "开卡时间", "开卡日期", "加入时间", "注册")),
    ("updated_time", ("updated at", "update time", "updated", "last update", "modified at", "modify time",
                      "last modified", "modified", "update date"), ("更新时间", "修改时间", "最后更新", "更新日期")),
    ("consent_time", ("consent time", "consented at", "opt in time", "agreed at", "consent date"),
     ("同意时间", "授权时间")),
    ("birth", ("birthday", "birth date", "date of birth", "dob", "birthdate", "birth", "born"),
     ("出生日期", "生日", "出生")),
    ("openid", ("openid", "open id"), ()),
    ("unionid", ("unionid", "union id"), ()),
    ("cookie", ("cookie", "cookie id", "anonymous id", "anon id", "visitor id", "client id", "distinct id"),
     ("访客",)),
    ("device", ("device", "device id", "idfa", "imei", "oaid", "android id", "gaid", "advertising id", "udid"),
     ("设备",)),
    ("buyer", ("buyer", "buyer id", "buyer nick", "buyer name", "buyer account"), ("买家",)),
    ("viewer", ("viewer", "viewer id", "fan id", "follower id", "audience id"), ("观众", "粉丝")),
    ("login", ("login", "login id", "login name", "account", "account id", "username", "user name"),
     ("登录", "账号", "账户")),
    ("order_ref", ("order", "order id", "order no", "order number", "order code", "receipt", "receipt no",
                   "receipt number", "receipt id", "invoice", "invoice no", "bill no", "txn id", "txn no",
                   "transaction id", "transaction no", "trade no", "trade id", "tid"),
     ("订单编号", "订单号", "订单", "单号", "小票号", "小票", "流水号", "交易号", "交易单号", "发票号")),
    ("ticket_ref", ("ticket", "ticket id", "ticket no", "case id", "case no", "session id", "message id", "log id",
                    "event id", "record id", "row id", "request id"),
     ("工单", "工单号", "记录编号", "会话")),
    ("currency", ("currency", "ccy", "currency code", "cur"), ("币种", "货币", "币别")),
    ("amount", ("amount", "total", "total amount", "paid", "paid amount", "payment", "pay amount", "revenue",
                "sales", "value", "gmv", "spend", "actual paid", "net amount", "order amount", "line total",
                "line amount", "subtotal", "sum", "gift value"),
     ("实付金额", "实付", "金额", "总价", "总额", "支付金额", "付款金额", "销售额", "应付", "消费金额", "成交金额")),
    ("price", ("price", "unit price", "list price", "retail price", "original price"), ("单价", "价格", "原价", "售价")),
    ("status", ("status", "order status", "trade status", "state", "txn status"), ("订单状态", "状态", "交易状态")),
    ("quantity", ("quantity", "qty", "items", "item count", "units", "pieces", "pcs", "number of items", "count",
                  "num"), ("数量", "件数", "购买数量", "商品数量")),
    ("category", ("category", "product category", "cat", "category name", "department", "dept"),
     ("类目", "品类", "分类", "商品类目", "类别", "商品分类")),
    ("product", ("product", "sku", "item", "goods", "product name", "item name", "product id", "sku id", "item id",
                 "article", "product code", "sku code", "item code"),
     ("商品名称", "商品", "产品", "货品", "品名", "商品编码", "货号")),
    ("store", ("store", "shop", "store code", "store id", "branch", "outlet", "store name", "shop id", "shop name",
               "pos"), ("门店", "店铺", "店号", "门店编号", "门店名称", "店名")),
    ("channel", ("platform", "channel", "sales channel", "source", "site", "marketplace"),
     ("平台", "渠道", "来源", "销售渠道")),
    ("region", ("region", "country", "store region", "country code", "region code", "market"),
     ("地区", "国家", "区域")),
    ("event", ("event", "event type", "event name", "action", "activity", "behavior", "behaviour", "event action",
               "act", "action type"), ("事件", "行为", "动作", "事件类型", "行为类型", "操作")),
    ("duration", ("duration", "seconds", "watch seconds", "watch time", "dwell", "dwell time", "stay", "time spent",
                  "duration seconds", "secs", "watch duration"), ("时长", "观看时长", "停留时长", "停留时间")),
    ("campaign", ("campaign", "campaign id", "campaign name", "utm campaign", "template", "mailing"),
     ("活动", "营销活动", "活动编号")),
    ("group", ("group", "test group", "arm", "variant", "treatment group", "experiment group", "holdout"),
     ("分组", "组别", "实验分组")),
    ("sent_time", ("sent time", "sent at", "send time", "sent", "send date", "sent date", "delivered at"),
     ("发送时间", "触达时间", "推送时间")),
    ("window", ("window days", "response window", "window", "attribution window"), ("响应窗口", "观察期")),
    ("rating", ("rating", "satisfaction", "score", "stars", "csat", "nps"), ("评分", "满意度", "评价", "星级")),
    ("page", ("page", "url", "path", "page url", "screen", "referrer", "referer", "page path"),
     ("页面", "网址", "链接")),
    ("room", ("room", "room id", "live room", "room name", "stream id"), ("直播间", "房间")),
    ("version", ("version", "app version", "ver", "sdk version"), ("版本",)),
    ("phone", ("phone", "mobile", "tel", "telephone", "cell", "cellphone", "phone number", "mobile number",
               "contact phone", "bound phone", "mobile phone"), ("手机", "电话", "手机号", "联系电话", "联系手机", "手机号码")),
    ("email", ("email", "e mail", "mail", "email address"), ("邮箱", "邮件", "电子邮件", "电子邮箱")),
    ("nickname", ("nickname", "nick", "nick name", "screen name", "display name"), ("昵称", "网名")),
    ("name", ("name", "customer name", "full name", "real name", "contact name", "recipient", "receiver",
              "consignee", "member name", "user name cn"), ("姓名", "收货人", "联系人", "客户姓名", "真实姓名", "收件人", "名字")),
    ("gender", ("gender", "sex"), ("性别",)),
    ("city", ("city",), ("城市", "所在城市")),
    ("province", ("province",), ("省份", "省")),
    ("address", ("address", "addr", "street", "shipping address", "delivery address"),
     ("地址", "收货地址", "住址", "详细地址", "收件地址")),
    ("level", ("level", "tier", "member level", "grade", "vip level", "membership level", "membership tier"),
     ("会员等级", "等级", "级别")),
    ("purpose", ("purpose", "consent type", "topic", "consent purpose", "consent for"),
     ("用途", "目的", "授权类型", "同意类型")),
    ("granted", ("granted", "consent given", "opted in", "opt in", "optin", "agreed", "is granted", "consented"),
     ("是否同意", "授权状态", "同意状态")),
    ("consent", ("consent", "permission", "marketing", "subscribe", "subscribed", "opt"),
     ("同意", "授权", "订阅", "营销")),
    ("description", ("description", "desc", "remark", "remarks", "note", "notes", "content", "memo", "comment text",
                     "body", "message"), ("描述", "备注", "内容", "说明", "留言")),
    ("os", ("os", "operating system", "system"), ("系统",)),
    ("points", ("points", "point", "loyalty points", "credits", "bonus points"), ("积分",)),
    ("payment_method", ("payment method", "pay method", "payment type", "pay type", "tender"),
     ("支付方式", "付款方式", "支付类型")),
    ("member", ("member id", "member no", "member number", "member card", "card no", "card number", "customer id",
                "customer no", "customer number", "cust id", "vip no", "vip id", "user id", "userid", "uid",
                "member code", "member", "customer", "client", "user", "vip", "card"),
     ("会员编号", "会员号", "会员卡号", "会员卡", "会员id", "客户编号", "客户号", "客户id", "用户id", "用户编号", "会员", "卡号",
      "客户", "用户")),
    ("time", ("time", "timestamp", "ts", "date", "datetime", "at", "created", "created at", "create time",
              "occurred at", "event time", "happened at", "start", "start time", "session start", "logged at",
              "log time", "dt", "when", "begin", "sent at", "opened at", "clicked at"),
     ("时间", "日期", "发生时间", "创建时间", "开始时间")),
    ("txn_type", ("txn type", "transaction type", "trade type", "sale type", "record type", "type", "kind"),
     ("交易类型", "类型", "单据类型")),
    ("id", ("id", "no", "number", "code", "key"), ("编号", "号码", "编码", "id", "号")),
]
_CONCEPT_ORDER = {c: i for i, (c, _, _) in enumerate(_CONCEPTS)}
_IDENTITY_CONCEPTS = {"openid": "openid", "unionid": "unionid", "cookie": "cookie_id", "device": "device_id",
                      "buyer": "buyer_id", "viewer": "viewer_id", "login": "login_id", "member": "member_id"}
_KEY_CONCEPTS = ("order_ref", "return_ref", "original_ref", "ticket_ref")
_TIME_CONCEPTS = ("order_time", "return_time", "registered_time", "updated_time", "consent_time", "sent_time", "birth",
                  "time")
_OPEN_VOCABULARY = {"room", "city", "province", "address", "name", "nickname", "store", "product", "description",
                    "page",
                    "version", "campaign", "buyer", "member", "login", "viewer", "device", "cookie", "openid",
                    "unionid", "phone", "email", "id"} | set(_KEY_CONCEPTS)
# own names for columns of a known concept whose header is not ASCII (ASCII headers keep their own words)
_CONCEPT_NAMES = {**_IDENTITY_CONCEPTS, "currency": "currency", "province": "province", "nickname": "nickname",
                  "region": "region", "page": "page", "version": "app_version", "description": "description",
                  "os": "os", "store": "store", "channel": "channel", "product": "product", "category": "category",
                  "quantity": "quantity", "campaign": "campaign", "rating": "rating", "duration": "duration_seconds",
                  "level": "member_level", "status": "status", "original_ref": "original_order_id",
                  "return_ref": "return_id", "ticket_ref": "record_id", "order_ref": "order_id",
                  "return_time": "returned_at", "order_time": "ordered_at", "refund_amount": "refund_amount",
                  "amount": "amount", "registered_time": "registered_at", "updated_time": "updated_at",
                  "time": "time", "birth": "birth_date", "city": "city", "address": "address", "gender": "gender",
                  "purpose": "purpose", "granted": "granted", "consent_time": "consented_at", "event": "event",
                  "name": "name", "phone": "phone", "email": "email", "room": "room_id", "txn_type": "txn_type",
                  "points": "points", "payment_method": "payment_method"}
_RECEIVER_WORDS = ("receiver", "recipient", "consignee", "shipping", "ship", "delivery", "收货", "收件")


@functools.cache
def _phrases() -> list[tuple[str, list[str], str, str | None, float]]:
    out = []
    for order, (concept, en, zh) in enumerate(_CONCEPTS):
        for p in en:
            out.append((concept, p.split(), "".join(p.split()), None, order))
        for w in zh:
            out.append((concept, [], "", w, order))
    return out


def header_concepts(header: str) -> dict[str, float]:
    """Scores of the concepts a header's words name, best first.

    >>> list(header_concepts("下单时间"))[0], list(header_concepts("customer_phone"))[0]
    ('order_time', 'phone')
    >>> list(header_concepts("OrderID"))[0], list(header_concepts("会员卡号"))[0]
    ('order_ref', 'member')
    >>> list(header_concepts("Order Total"))[0], list(header_concepts("Order Date"))[0]
    ('amount', 'order_time')
    """
    toks, low = _header_tokens(header)
    scores: dict[str, float] = {}
    for concept, ptoks, joined, zh, order in _phrases():
        s = 0.0
        if zh is not None:
            if zh in low:
                s = 6 * len(zh) + (4 if low.strip() == zh else 0)
        elif toks:
            n = len(ptoks)
            hit = any(toks[i:i + n] == ptoks for i in range(len(toks) - n + 1)) or (n > 1 and joined in toks)
            if hit:
                s = 10 * n + (4 if n == len(toks) or (n > 1 and [joined] == toks) else 0)
                s += 2 if toks[-n:] == ptoks else 0   # English puts the head noun last: "Order Total" is a total
        if s:
            s -= order * 1e-3  # ties: the concept listed first
            scores[concept] = max(scores.get(concept, 0.0), s)
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


# ============================================================================ value vocabularies
_TRUE = {"y", "yes", "true", "t", "1", "是", "同意", "已同意", "on", "1.0"}
_FALSE = {"n", "no", "false", "f", "0", "否", "不同意", "未同意", "off", "0.0"}
_GENDER = {"m": "M", "male": "M", "man": "M", "男": "M", "男性": "M", "先生": "M", "boy": "M",
           "f": "F", "female": "F", "woman": "F", "女": "F", "女性": "F", "女士": "F", "girl": "F",
           "u": "U", "unknown": "U", "未知": "U", "保密": "U", "其他": "U", "other": "U", "0": "U"}
_GENDER_NUMERIC = {"1": "M", "2": "F", "0": "U"}   # the WeChat / ID-card convention
_STATUS = {
    "paid": ("交易成功", "已完成", "完成", "已付款", "付款成功", "支付成功", "已支付", "待发货", "已发货", "已签收", "交易完成", "成功",
             "已收货", "completed", "complete", "paid", "success", "successful", "shipped", "delivered", "done",
             "fulfilled", "sale", "closed_won", "finished", "confirmed"),
    "refunded": ("已退款", "退款成功", "退款", "已退货", "退货", "refunded", "refund", "returned", "partially_refunded"),
    "cancelled": ("交易关闭", "已取消", "取消", "关闭", "已关闭", "订单关闭", "交易取消", "cancelled", "canceled", "cancel", "closed",
                  "void", "voided", "failed", "rejected"),
}
_STATUS_LOOKUP = {s.casefold(): code for code, spellings in _STATUS.items() for s in spellings}
# normalised source event name -> canonical event type (see workbench.roles.EVENT_TYPES)
_EVENT_WORDS: dict[str, tuple[str, ...]] = {
    "Product Viewed": ("view", "product_view", "view_item", "viewitem", "item_view", "product_detail", "detail_view",
                       "pdp_view", "view_product", "浏览", "浏览商品", "商品浏览", "查看商品", "商品详情"),
    "Page Viewed": ("page_view", "pageview", "page", "pv", "visit", "screen_view", "页面浏览", "访问", "浏览页面"),
    "Product List Viewed": ("product_list_view", "list_view", "category_view", "view_item_list", "列表浏览"),
    "Product Clicked": ("product_click", "select_item", "item_click", "点击商品"),
    "Product Added": ("add_to_cart", "addtocart", "add_cart", "cart_add", "addcart", "加购", "加入购物车", "加购物车"),
    "Product Removed": ("remove_from_cart", "cart_remove", "removefromcart", "移出购物车"),
    "Cart Viewed": ("view_cart", "cart_view", "cart", "查看购物车"),
    "Products Searched": ("search", "searched", "product_search", "搜索"),
    "Checkout Started": ("checkout", "begin_checkout", "checkout_start", "结算", "去结算"),
    "Payment Info Entered": ("add_payment_info", "payment_info"),
    "Order Completed": ("purchase", "order", "buy", "order_completed", "pay", "payment", "paid", "payment_success",
                        "order_paid", "购买", "下单", "支付", "支付成功"),
    "Order Refunded": ("refund", "order_refunded", "退款"),
    "Order Cancelled": ("cancel", "order_cancelled", "cancel_order", "取消订单"),
    "Coupon Applied": ("coupon_applied", "use_coupon", "apply_coupon", "用券"),
    "Coupon Entered": ("coupon_entered",),
    "Promotion Viewed": ("promotion_view", "banner_view", "ad_view", "view_promotion", "impression"),
    "Promotion Clicked": ("promotion_click", "banner_click", "ad_click", "select_promotion"),
    "Signed In": ("login", "log_in", "signin", "sign_in", "logon", "登录", "登陆"),
    "Signed Up": ("signup", "sign_up", "register", "registration", "注册"),
    "Application Opened": ("app_open", "open_app", "app_launch", "launch", "app_start", "session_start", "启动",
                           "打开app", "打开应用"),
    "Application Installed": ("install", "app_install", "first_open", "安装"),
    "Email Sent": ("sent", "send", "email_sent", "processed"),
    "Email Delivered": ("delivered", "delivery", "email_delivered"),
    "Email Opened": ("open", "opened", "email_open", "email_opened", "打开"),
    "Email Link Clicked": ("click", "clicked", "link_click", "email_click", "email_link_clicked", "点击"),
    "Email Bounced": ("bounce", "bounced", "hard_bounce", "soft_bounce", "dropped", "退信"),
    "Email Marked as Spam": ("spam", "spamreport", "spam_report", "complaint", "marked_as_spam"),
    "Unsubscribed": ("unsubscribe", "unsubscribed", "unsub", "opt_out", "optout", "退订"),
    "Live Stream Entered": ("live_entry", "enter_live", "live_enter", "enter_room", "进入直播间", "进房"),
    "Live Stream Watched": ("watch", "live_watch", "watch_live", "观看", "观看直播"),
    "Live Stream Commented": ("comment", "live_comment", "评论", "弹幕"),
    "Live Gift Sent": ("gift", "send_gift", "live_gift", "送礼", "打赏"),
    "Live Product Clicked": ("live_product_click", "直播商品点击"),
    "WeChat Followed": ("follow", "subscribe", "关注", "订阅"),
    "WeChat Unfollowed": ("unfollow", "取消关注"),
    "Service Ticket Opened": ("ticket", "ticket_opened", "complaint_ticket", "工单", "咨询", "投诉"),
}
_EVENT_LOOKUP = {w: et for et, words in _EVENT_WORDS.items() for w in words}
_EVENT_LOOKUP.update({event_slug(et): et for et in EVENT_TYPES})
# codes for common category spellings that are not English (left: the code)
_CODE_WORDS = {"tmall": ("天猫",), "taobao": ("淘宝",), "jd": ("京东",), "douyin": ("抖音",), "pinduoduo": ("拼多多",),
               "xiaohongshu": ("小红书",), "kuaishou": ("快手",), "wechat": ("微信",), "store": ("门店", "线下"),
               "online": ("线上",), "skincare": ("护肤",), "makeup": ("彩妆",), "fragrance": ("香水",),
               "haircare": ("洗护",), "bodycare": ("身体护理",), "men": ("男士",), "gift_set": ("礼盒",),
               "samples": ("小样",), "sale": ("销售", "售出"), "return": ("退货",), "diamond": ("钻石",),
               "gold": ("金卡",), "silver": ("银卡",), "standard": ("普通", "普卡"), "platinum": ("白金",)}
#: spellings of a campaign member's group
_GROUP_WORDS = {**{w: "treatment" for w in ("treatment", "treated", "test", "t", "target", "exposed", "实验组", "实验",
                                            "发送组", "干预组")},
                **{w: "control" for w in ("control", "holdout", "hold out", "c", "ctrl", "对照组", "对照", "留存组",
                                          "控制组")}}
_CODE_LOOKUP = {w: code for code, words in _CODE_WORDS.items() for w in words}
_PURPOSES = {"sms": ("sms", "短信", "text"), "email": ("email", "mail", "邮件", "edm"),
             "wechat": ("wechat", "weixin", "微信"), "ads": ("ads", "ad", "advert", "advertising", "广告")}
_CURRENCY_CODES = {"CNY", "RMB", "HKD", "USD", "EUR", "GBP", "JPY", "MOP", "TWD", "SGD", "KRW", "AUD", "CAD", "CHF",
                   "MYR", "THB", "人民币", "港币", "港元", "美元", "欧元", "英镑", "日元", "澳门元", "新台币"}
_SYMBOLS = [("HK$", "HKD"), ("US$", "USD"), ("MOP$", "MOP"), ("NT$", "TWD"), ("CN¥", "CNY"), ("RMB", "CNY"),
            ("CNY", "CNY"), ("HKD", "HKD"), ("USD", "USD"), ("¥", "CNY"), ("￥", "CNY"), ("元", "CNY"), ("€", "EUR"),
            ("£", "GBP"), ("$", "USD")]

# timestamp formats tried on text columns (first the more specific)
_TS_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y%m%d%H%M%S",
    "%Y%m%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%d/%m/%Y %I:%M:%S %p", "%d/%m/%Y %I:%M %p",
    "%Y-%m-%d %I:%M:%S %p", "%Y-%m-%d %I:%M %p",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
    "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日%H:%M:%S", "%Y年%m月%d日%H:%M",
    "%Y年%m月%d日 %H时%M分%S秒", "%Y年%m月%d日 %H时%M分", "%Y年%m月%d日%H时%M分",
    "%a, %d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S %z", "%a, %d %b %Y %H:%M %z", "%a %b %d %H:%M:%S %Y",
    "%d %b %Y %H:%M", "%b %d, %Y %H:%M:%S", "%b %d %Y %H:%M:%S",
)
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y",
                 "%Y年%m月%d日", "%d %b %Y", "%b %d, %Y")
_EPOCH_S = (946_684_800, 4_102_444_800)   # 2000-01-01 .. 2100-01-01
_TIMEISH = re.compile(r"[0-9]{1,4}[-/.年:][0-9]{1,2}|^(?:19|20)[0-9]{6}|[A-Za-z]{3},? [0-9]{1,2} [A-Za-z]{3}"
                      r"|[0-9]{1,2} [A-Za-z]{3} [0-9]{4}")
_MASKED = re.compile(r"^\+?[0-9]{2,6}[*×●•]{2,}[0-9]{2,4}$|^\+?[0-9]{3,6}[xX]{3,}[0-9]{2,4}$")
_DIGITS = re.compile(r"^[-+]?[0-9]+(?:\.0+)?$")
_DIGIT = re.compile(r"[0-9]")
_NOT_DIGIT = re.compile(r"[^0-9]")
_NOT_PHONE = re.compile(f"[A-Za-z@{_CJK}]")
_PHONE_LAYOUT = re.compile(r"[0-9][ \-][0-9]|^\+|^\(")
_LONG_INT = re.compile(r"^[0-9]{9,}$")
_TWO_DECIMALS = re.compile(r"\.[0-9]{2}$")
_IDLIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.:@/+=]{2,80}$")
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "尉迟", "公孙", "长孙", "宇文", "司徒")
_SURNAMES = frozenset(COMMON_SURNAME_PINYINS)
_NOT_NAME_END = set("市省区县路号店街镇村楼室栋巷道园里厦场站馆部司行")


# ============================================================================ reading the file
_EXT_FORMATS = {".csv": "csv", ".tsv": "csv", ".tab": "csv", ".txt": "csv", ".dat": "csv", ".psv": "csv",
                ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet",
                ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel"}


def _check_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: file not found. Expected a data file (csv, tsv, txt, jsonl, parquet, xlsx) "
                                "to draft a mapping from.")
    if p.is_dir():
        raise MappingError(f"{p}: is a folder. Expected one data file (csv, tsv, txt, jsonl, parquet, xlsx); "
                           "draft from one of its files.")
    return p


def _format_of(path: Path, head: bytes) -> tuple[str, str | None]:
    """(format, note) from the extension, checked against the content."""
    ext = path.suffix.lower()
    if ext in (".gz", ".zip", ".bz2", ".xz", ".7z", ".rar"):
        raise MappingError(f"{path}: a compressed file ({ext}). Expected an uncompressed data file (csv, tsv, txt, "
                           "jsonl, parquet, xlsx): unpack it under the raw folder first.")
    by_content = None
    if head.startswith(b"PAR1"):
        by_content = "parquet"
    elif head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        by_content = "excel"
    fmt = _EXT_FORMATS.get(ext)
    if fmt in ("parquet", "excel") and by_content != fmt:
        raise MappingError(f"{path}: the extension says {fmt}, but the content does not start like a {fmt} file "
                           f"(found {head[:8]!r}). Expected a real {fmt} file; check the export.")
    if fmt is None and by_content is None:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if b"\x00" in head[:4096] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise MappingError(f"{path}: unknown format {ext or '(no extension)'!r}, and the content looks binary. "
                               f"Expected one of the extensions {sorted(_EXT_FORMATS)} (formats csv, jsonl, parquet, "
                               "excel).")
        guess = "jsonl" if text.startswith(b"{") else "csv"
        return guess, (f"unknown extension {ext or '(none)'!r}: read as {guess} from the content; rename the file "
                       f"(.{'jsonl' if guess == 'jsonl' else 'csv'}) so the pattern says what it is")
    if by_content and fmt not in (None, by_content):
        raise MappingError(f"{path}: the extension {ext!r} says {fmt}, but the content is {by_content}. "
                           f"Expected matching extension and content; rename the file.")
    return fmt or by_content, None


def _chunks(path: Path, size: int) -> list[bytes]:
    """The head of the file, plus a middle and a tail chunk of big files (cut at line ends)."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
        out = [head]
        if size > 3 * _HEAD_BYTES:
            for pos in (size // 2, size - _HEAD_BYTES // 2):
                fh.seek(pos)
                block = fh.read(_HEAD_BYTES // 2)
                nl = block.find(b"\n")
                if nl >= 0:
                    out.append(block[nl + 1:])
    return out


def _decodes(chunk: bytes, encoding: str, final: bool) -> bool:
    if not final:  # cut at the last line end so no character is split
        nl = chunk.rfind(b"\n")
        chunk = chunk[:nl + 1] if nl > 0 else chunk
    try:
        codecs.getincrementaldecoder(encoding)().decode(chunk, final=final)
        return True
    except UnicodeDecodeError:
        return False


def _detect_encoding(path: Path, size: int) -> tuple[str, str]:
    """(encoding, why) of a text file."""
    chunks = _chunks(path, size)
    head = chunks[0]
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", "UTF-8 with a byte-order mark"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise MappingError(f"{path}: UTF-32 text (byte-order mark {head[:4]!r}). Expected one of the encodings "
                           f"{list(ENCODINGS)}: save it as UTF-8.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", "UTF-16 with a byte-order mark"
    if head[:4096].count(b"\x00") > len(head[:4096]) // 4:
        raise MappingError(f"{path}: looks like UTF-16 without a byte-order mark (every other byte is zero). "
                           f"Expected one of the encodings {list(ENCODINGS)} with a BOM for UTF-16: save it as "
                           "UTF-8 (or UTF-16 with BOM).")
    whole = size <= len(head)
    if all(_decodes(c, "utf-8", final=whole) for c in chunks):
        return "utf-8", ("UTF-8" if any(b > 127 for b in head[:65536]) else
                         "ASCII only in the sampled bytes, read as UTF-8")
    for enc, why in (("gb18030", "not UTF-8; decodes as GB18030 (covers GBK/GB2312 exports)"),
                     ("big5", "not UTF-8 nor GB18030; decodes as Big5")):
        if all(_decodes(c, enc, final=whole) for c in chunks):
            return enc, why
    raise MappingError(f"{path}: cannot tell the encoding — the text is not UTF-8, GB18030 or Big5. Expected one of "
                       f"{list(ENCODINGS)}: save the file as UTF-8.")


def _sniff_delimiter(text: str, ext: str) -> tuple[str, bool, str]:
    """(delimiter, newlines inside quoted values, why) from the first lines of decoded text."""
    cut = text.rfind("\n")
    text = text[:cut + 1] if cut > 0 else text
    candidates = [",", ";", "\t", "|"]
    if ext in (".tsv", ".tab"):
        candidates = ["\t", ",", ";", "|"]
    elif ext == ".psv":
        candidates = ["|", ",", ";", "\t"]
    best: tuple[float, int, str, bool, float] | None = None
    for d in candidates:
        try:
            rows = list(csv.reader(io.StringIO(text[:200_000]), delimiter=d))[:300]
        except csv.Error:
            continue
        rows = [r for r in rows if r]
        if len(rows) > 2:
            rows = rows[:-1]  # the last one may be cut
        if not rows:
            continue
        counts = Counter(len(r) for r in rows)
        width, n = counts.most_common(1)[0]
        if width < 2:
            continue
        share = n / len(rows)
        score = share + (0.01 if len(rows[0]) == width else 0)
        multiline = any("\n" in v or "\r" in v for r in rows for v in r)
        if best is None or (score, width) > (best[0], best[1]):
            best = (score, width, d, multiline, share)
    if best is None:
        return ",", False, "one column only (no , ; tab or | splits the lines)"
    names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
    return best[2], best[3], f"{names[best[2]]}: {best[1]} fields on {best[4]:.0%} of the first lines"


def _looks_like_data(v: str) -> bool:
    t = _nfkc(v)
    if not t or t.casefold() in _ABSENT:
        return True
    if re.fullmatch(r"[-+]?[0-9][0-9,]*(\.[0-9]+)?", t) or _TIMEISH.match(t):
        return True
    return bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", t) or re.fullmatch(r"\+?[0-9 ()\-]{7,}", t))


def _has_header(rows: list[list[str]]) -> tuple[bool, str]:
    """Is the first row a header? Compares it with the rows below it, column by column."""
    if len(rows) < 2:
        first = rows[0] if rows else []
        ok = bool(first) and not any(_looks_like_data(v) for v in first)
        return ok, "one row only: " + ("it reads as names" if ok else "it reads as data")
    first, body = rows[0], rows[1:]
    header_votes, data_votes = 0, 0
    for j, v in enumerate(first):
        col = [r[j] for r in body if j < len(r) and r[j].strip()]
        if not col:
            continue
        typed = sum(_looks_like_data(x) for x in col) / len(col)
        if _looks_like_data(v) and v.strip():
            if typed >= 0.5:
                data_votes += 1
        elif typed >= 0.8:
            header_votes += 1
        if v.strip() and v in col:
            data_votes += 1
    if len(set(first)) < len(first) and not any(v.strip() == "" for v in first):
        data_votes += 1
    if data_votes > header_votes:
        return False, f"the first row looks like data ({data_votes} column(s) hold values like those below it)"
    return True, ("the first row names the columns" if header_votes else
                  "the first row reads as names (all columns are text: check)")


def _header_row(text: str, delimiter: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter), [])
    return first


def sniff_source(path: str | Path) -> SourceGuess:
    """Guess how to read a file: format, encoding, delimiter, header row.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_bytes("会员;手机\\nM1;13800138000\\n".encode("utf-8-sig"))
    >>> s = sniff_source(p)
    >>> s.format, s.encoding, s.delimiter, s.header
    ('csv', 'utf-8-sig', ';', True)
    """
    path = _check_path(path)
    size = path.stat().st_size
    if size == 0:
        raise MappingError(f"{path}: the file is empty. Expected a header row and some data rows to draft from.")
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    fmt, note = _format_of(path, head)
    src = SourceGuess(format=fmt)
    if note:
        src.notes.append(note)
    if fmt in ("parquet", "excel"):
        src.encoding = "utf-8"
        return src
    enc, why = _detect_encoding(path, size)
    src.encoding = enc
    src.notes.append(f"encoding {enc}: {why}")
    text = head.decode("utf-8-sig" if enc == "utf-8-sig" else enc, errors="ignore")
    if fmt == "jsonl":
        stripped = text.lstrip()
        if stripped.startswith("["):
            raise MappingError(f"{path}: a JSON array. Expected JSON lines (one object per line); convert it, e.g. "
                               "`jq -c '.[]' file.json > file.jsonl`.")
        if not stripped.startswith("{"):
            raise MappingError(f"{path}: expected JSON lines (one object per line). Found a first line starting with "
                               f"{stripped[:30]!r}.")
        if enc not in ("utf-8", "utf-8-sig"):
            src.notes.append(f"the jsonl reader takes UTF-8 (pyarrow does not check the declared encoding): "
                             f"convert this {enc} file to UTF-8 before ingesting it")
        return src
    src.delimiter, src.newlines_in_values, why = _sniff_delimiter(text, path.suffix.lower())
    src.notes.append(f"delimiter {src.delimiter!r}: {why}")
    if src.newlines_in_values:
        src.notes.append("quoted values span several lines: newlines_in_values is on")
    rows = list(csv.reader(io.StringIO(text[:200_000].lstrip("\ufeff")), delimiter=src.delimiter))[:200]
    rows = [r for r in rows if r]
    src.header, why = _has_header(rows[:-1] if len(rows) > 2 else rows)
    src.notes.append(("header row: " if src.header else "no header row: ") + why)
    return src


def _csv_sample(path: Path, src: SourceGuess, sample_rows: int) -> tuple[pd.DataFrame, int]:
    """The first ``sample_rows`` rows of a csv as strings (as ingest reads them); rows the parser skipped."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    enc = "utf8" if src.encoding in ("utf-8", "utf-8-sig") else src.encoding
    with open(path, encoding=src.encoding, errors="ignore", newline="") as fh:
        first = fh.read(1 << 16)
    header = _header_row(first, src.delimiter)
    if src.header:
        names, read = header, {}
    else:
        names = [f"col_{i + 1}" for i in range(len(header))]
        read = {"column_names": names}
    skipped = [0]

    def on_invalid(row) -> str:
        skipped[0] += 1
        return "skip"

    reader = pcsv.open_csv(
        path, read_options=pcsv.ReadOptions(encoding=enc, use_threads=False, block_size=1 << 20, **read),
        parse_options=pcsv.ParseOptions(delimiter=src.delimiter, newlines_in_values=src.newlines_in_values,
                                        invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                            strings_can_be_null=False, quoted_strings_can_be_null=False))
    batches, n = [], 0
    for batch in reader:
        batches.append(batch)
        n += batch.num_rows
        if n >= sample_rows:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema) if batches else reader.schema.empty_table()
    df = table.slice(0, sample_rows).to_pandas(types_mapper=pd.ArrowDtype)
    df = df.astype({c: "string" for c in df.columns}) if len(df.columns) else df
    return df, skipped[0]


def _jsonl_sample(path: Path, src: SourceGuess, sample_rows: int) -> tuple[pd.DataFrame, int]:
    import pyarrow.json as pjson

    lines: list[bytes] = []
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                lines.append(raw)
            if len(lines) >= sample_rows:
                break
    if src.encoding not in ("utf-8", "utf-8-sig"):
        lines = [ln.decode(src.encoding, errors="replace").encode("utf-8") for ln in lines]
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    bad = 0
    try:
        df = pjson.read_json(io.BytesIO(b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines))).to_pandas()
    except ValueError:  # a malformed line (pyarrow.ArrowInvalid): line by line, as ingest does
        records = []
        for ln in lines:
            try:
                obj = json.loads(ln)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                records.append(obj)
            else:
                bad += 1
        df = pd.DataFrame.from_records(records)
    df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
    zoned: dict[str, str] = {}
    dt_cols = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c].dtype)]
    if dt_cols:  # pyarrow reads "...+08:00" as a UTC instant without a zone: look at the text itself
        for ln in lines[:200]:
            try:
                obj = json.loads(ln)
            except ValueError:
                continue
            for c in dt_cols:
                v = obj.get(c) if isinstance(obj, dict) else None
                if isinstance(v, str) and re.search(r"(?:Z|[+-][0-9]{2}:?[0-9]{2})$", v.strip()):
                    zoned.setdefault(c, v.strip())
    df.attrs["zoned_text"] = zoned
    return df, bad


def _parquet_sample(path: Path, sample_rows: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    batch = next(pf.iter_batches(batch_size=sample_rows), None)
    df = (batch.to_pandas() if batch is not None else pf.schema_arrow.empty_table().to_pandas())
    return df.astype({c: "string" for c in df.columns if df[c].dtype == object})


def _excel_sample(path: Path, src: SourceGuess, sample_rows: int) -> pd.DataFrame:
    try:
        xl = pd.ExcelFile(path)
    except ImportError as exc:
        raise MappingError(f"{path}: reading {path.suffix} needs a package that is not installed ({exc}). Expected "
                           ".xlsx (openpyxl is installed): save the sheet as .xlsx or csv.") from None
    sheets = xl.sheet_names
    src.sheet = None
    if len(sheets) > 1:
        src.notes.append(f"the workbook has {len(sheets)} sheets {sheets}: the first ({sheets[0]!r}) is drafted; set "
                         "`source.sheet` for another")
    head = pd.read_excel(xl, sheet_name=0, dtype=str, header=None, nrows=200)
    rows = [["" if pd.isna(v) else str(v) for v in r] for r in head.itertuples(index=False)]
    src.header, why = _has_header(rows)
    src.notes.append(("header row: " if src.header else "no header row: ") + why)
    df = pd.read_excel(xl, sheet_name=0, dtype=str, nrows=sample_rows, header=0 if src.header else None)
    if not src.header:
        df.columns = [f"col_{i + 1}" for i in range(len(df.columns))]
    df.columns = [str(c) for c in df.columns]
    return df.astype("string")


# ============================================================================ one column
@dataclass
class _Col:
    """Internal: what was measured on one column."""

    index: int
    column: str
    n: int
    present: int
    distinct: int
    values: pd.Series          # distinct present values (text, stripped), count-sorted, at most _MAX_UNIQUE
    counts: np.ndarray         # their counts
    numeric_dtype: bool = False
    fixed: bool = False        # a date-time column of the file itself (Parquet, or JSON that pyarrow typed)
    concepts: dict[str, float] = field(default_factory=dict)
    concept: str | None = None
    type: str = "string"
    spec: dict[str, Any] = field(default_factory=dict)
    confidence: str = "high"
    note: str = ""
    receiver: bool = False
    codes: dict[str, list[str]] | None = None   # category: code -> spellings (generic codes)
    fill: float = 0.0
    max_repeat: int = 0
    unique_ratio: float = 0.0
    id_like: float = 0.0
    phone_share: float = 0.0

    def frac(self, ok: np.ndarray) -> float:
        """Share of the present rows (weighted by count) whose distinct value passes ``ok``."""
        total = self.counts.sum()
        return float(self.counts[ok].sum() / total) if total else 0.0

    def share(self, test: re.Pattern | Any, *, limit: int = 1000) -> float:
        """Share of the rows (weighted by count) among the ``limit`` most frequent distinct values
        that pass ``test`` (a compiled regex, searched, or a predicate)."""
        texts, counts = self.texts[:limit], self.counts[:limit]
        pred = test.search if isinstance(test, re.Pattern) else test
        ok = np.fromiter((bool(pred(t)) for t in texts), dtype=bool, count=len(texts))
        total = counts.sum()
        return float(counts[ok].sum() / total) if total else 0.0

    @property
    def texts(self) -> list[str]:
        return self.values.tolist()


_DIGIT_FORMATS = {"%Y%m%d": r"(?:19|20)[0-9]{6}", "%Y%m%d%H%M%S": r"(?:19|20)[0-9]{12}",
                  "%Y%m%d %H:%M:%S": r"(?:19|20)[0-9]{6} [0-9]{2}:[0-9]{2}:[0-9]{2}"}


_DIRECTIVES = {"%Y": "[0-9]{4}", "%m": "[0-9]{1,2}", "%d": "[0-9]{1,2}", "%H": "[0-9]{1,2}", "%M": "[0-9]{1,2}",
               "%S": "[0-9]{1,2}", "%f": "[0-9]{1,9}", "%z": "(?:Z|[+-][0-9]{2}:?[0-9]{2})", "%a": "[A-Za-z]{3}",
               "%b": "[A-Za-z]{3}", "%I": "[0-9]{1,2}", "%p": "(?:[AaPp][Mm])"}


@functools.cache
def _format_shape(fmt: str) -> re.Pattern:
    """A regex for the shape of text ``fmt`` writes (a cheap gate before pandas parses)."""
    parts = re.split(r"(%[a-zA-Z])", fmt)
    return re.compile("".join(_DIRECTIVES.get(x, re.escape(x)) for x in parts if x))


def _format_hits(values: pd.Series, fmt: str) -> np.ndarray:
    """Which values ``fmt`` reads as a plausible time (years 1900-2100; digit runs of the exact length)."""
    parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    ok = (parsed.notna() & parsed.dt.year.between(1900, 2100)).to_numpy(bool)
    if fmt in _DIGIT_FORMATS:
        ok = ok & values.str.fullmatch(_DIGIT_FORMATS[fmt]).fillna(False).to_numpy(bool)
    return ok


def _time_formats(c: _Col) -> tuple[list[str], float, bool, bool]:
    """(formats, share covered, date only, day/month order unsure) for a column of text times."""
    vals = pd.Series(c.values.iloc[:2000].astype(str).str.replace(r"\s+", " ", regex=True).to_numpy(object))
    counts = c.counts[:2000].astype(float)
    if vals.empty:
        return [], 0.0, False, False
    trial = vals.iloc[:400]
    gate = trial.iloc[:100].tolist()
    hits: dict[str, np.ndarray] = {}
    for fmt in _TS_FORMATS + _DATE_FORMATS:
        shape = _format_shape(fmt)
        if not any(shape.fullmatch(v) for v in gate):
            continue
        ok = _format_hits(trial, fmt)
        if ok.any():
            hits[fmt] = ok
    if not hits:
        return [], 0.0, False, False
    # greedy cover on the trial values, then measured on all examined values
    chosen: list[str] = []
    covered = np.zeros(len(trial), bool)
    w = counts[:len(trial)]
    while len(chosen) < 5:
        gains = {f: w[h & ~covered].sum() for f, h in hits.items() if f not in chosen}
        if not gains:
            break
        best = max(gains, key=lambda f: (gains[f], -(_TS_FORMATS + _DATE_FORMATS).index(f)))
        if gains[best] <= max(0.0, 0.005 * w.sum()) and chosen:
            break
        if gains[best] <= 0:
            break
        chosen.append(best)
        covered |= hits[best]
    unsure = False
    for a, b in (("%d/%m", "%m/%d"), ("%d.%m", "%m.%d"), ("%d-%m", "%m-%d")):
        for f in chosen:
            if f.startswith(a) and f.replace(a, b, 1) in hits:
                other = hits[f.replace(a, b, 1)]
                if (other | ~hits[f]).all():
                    unsure = True  # every value parses both ways: day and month are never > 12
    ok = np.zeros(len(vals), bool)
    for f in chosen:
        ok |= _format_hits(vals, f)
    share = float(counts[ok].sum() / counts.sum())
    date_only = all(f in _DATE_FORMATS for f in chosen)
    return chosen, share, date_only, unsure


def _all_midnight(c: _Col, formats: list[str]) -> bool:
    vals = pd.Series(c.values.iloc[:2000].astype(str).to_numpy(object))
    parsed = None
    for f in formats:
        p = pd.to_datetime(vals, format=f, errors="coerce", utc=True)
        parsed = p if parsed is None else parsed.fillna(p)
    if parsed is None or parsed.notna().sum() == 0:
        return False
    p = parsed.dropna()
    return bool(((p.dt.hour == 0) & (p.dt.minute == 0) & (p.dt.second == 0)).all())


def _epoch_unit(c: _Col) -> tuple[str | None, float]:
    nums = pd.to_numeric(pd.Series(c.values.to_numpy(object)), errors="coerce")
    if nums.isna().mean() > 0.05:
        return None, 0.0
    whole = (nums.dropna() % 1 == 0).all()
    if not whole:
        return None, 0.0
    lo, hi = _EPOCH_S
    for unit, k in (("s", 1), ("ms", 1000)):
        ok = ((nums >= lo * k) & (nums <= hi * k)).to_numpy()
        share = c.frac(ok)
        if share >= 0.95:
            return unit, share
    return None, 0.0


def _name_share(values: list[str]) -> float:
    ok = 0
    for v in values:
        t = re.sub(r"(先生|女士|小姐|太太)$", "", _nfkc(v))
        if re.fullmatch(f"[{_CJK}]{{2,4}}", t):
            if t[-1] in _NOT_NAME_END:
                continue
            if t[:2] in _COMPOUND_SURNAMES or _pinyin(t[0])[0] in _SURNAMES:
                ok += 1
        elif re.fullmatch(r"[A-Za-z]+(?:[ .·\-][A-Za-z]+){1,2}", t):
            toks = re.split(r"[ .·\-]", t.lower())
            if toks[0] in _SURNAMES or toks[-1] in _SURNAMES:
                ok += 1
    return ok / len(values) if values else 0.0


def _boolean_values(texts: list[str], *, one_sided: bool = False) -> bool:
    """Yes/no spellings only, both sides present (or one side only, when ``one_sided``)."""
    norm = {t.casefold() for t in texts}
    both = bool(norm & _TRUE) and bool(norm & _FALSE)
    return bool(norm) and norm <= (_TRUE | _FALSE) and (both or one_sided)


def _currency_of(texts: list[str]) -> tuple[str | None, set[str]]:
    found: set[str] = set()
    for t in texts[:500]:
        for sym, code in _SYMBOLS:
            if sym in t:
                found.add(code)
                break
    return (next(iter(found)) if len(found) == 1 else None), found


def _analyse(c: _Col) -> None:
    """Type guess for one column: sets c.type, c.spec, c.confidence, c.note."""
    texts = c.texts
    top = c.concept
    if c.fixed:
        return
    if c.present == 0:
        c.type, c.confidence, c.note = "string", "low", "empty in the sample: kept as text"
        return
    # --- e-mail, masked phone, phone
    if sum("@" in t or "＠" in t for t in texts[:200]) >= 0.5 * min(len(texts), 200):
        ok = normalise_emails(c.values)["email_status"].eq("valid").to_numpy(bool)
        share = c.frac(ok)
        if share >= 0.8:
            c.type, c.confidence = "email", "high" if share >= 0.95 else "medium"
            c.note = f"e-mail: {share:.0%} valid"
            return
    masked = c.share(lambda t: _MASKED.match(re.sub(r"[\s\-]", "", _nfkc(t))))
    if masked >= 0.6:
        c.type, c.confidence = "masked_phone", "high" if masked >= 0.9 else "medium"
        c.note = f"masked phone like {texts[0]!r}: {masked:.0%} of values"
        return
    # --- epoch numbers
    digits = c.share(_DIGITS)
    time_hint = top in _TIME_CONCEPTS or any(k in c.concepts for k in _TIME_CONCEPTS) or bool(
        re.search(r"(?:^|_)(ms|millis|epoch|unix)(?:_|$)", _slug(c.column)))
    if digits >= 0.95 and top not in ("phone", "quantity", "amount", "rating", "duration") + _KEY_CONCEPTS:
        unit, share = _epoch_unit(c)
        if unit and (time_hint or c.unique_ratio > 0.3):
            c.type, c.spec = "timestamp", {"unit": unit}
            c.confidence = "high" if time_hint else "low"
            c.note = (f"epoch {'seconds' if unit == 's' else 'milliseconds'}: {share:.0%} of values fall in "
                      "2000-2100" + ("" if time_hint else " (no time word in the header)"))
            return
    # --- text times and dates
    timeish = c.share(_TIMEISH)
    if timeish >= 0.6 or (time_hint and timeish >= 0.3):
        formats, share, date_only, unsure = _time_formats(c)
        if share >= 0.85:
            is_date = date_only or (top == "birth" and _all_midnight(c, formats))
            c.type = "date" if is_date else "timestamp"
            c.spec = {"formats": formats}
            c.confidence = "high" if share >= 0.98 and not unsure else ("low" if unsure else "medium")
            c.note = (f"{c.type}: {share:.0%} of values match {formats[0]!r}"
                      + (f" or {len(formats) - 1} other format(s)" if len(formats) > 1 else "")
                      + ("; every day is <= 12, so day-first vs month-first is a guess" if unsure else ""))
            return
        if time_hint or c.share(_CJK_RE) >= 0.5:
            from .normalise import parse_timestamps
            parsed = parse_timestamps(c.values.iloc[:2000]).notna().to_numpy()
            share = c.frac(np.concatenate([parsed, np.zeros(len(c.values) - len(parsed), bool)]))
            if share >= 0.85:
                c.type, c.confidence = ("date" if top == "birth" else "timestamp"), "medium"
                c.note = f"{c.type}: {share:.0%} of values parse with the built-in forms (no single format)"
                return
    # --- phones
    if c.share(lambda t: len(_NOT_DIGIT.sub("", t)) >= 7 and not _NOT_PHONE.search(t)) >= 0.5:
        status = normalise_phones(c.values)["phone_status"].to_numpy(object)
        c.phone_share = c.frac(status == "valid")
        longid = top in ("member", "id", "login") + _KEY_CONCEPTS and c.phone_share < 0.95
        if (c.phone_share >= 0.8 and not longid) or (top == "phone" and c.phone_share >= 0.4):
            c.type = "phone"
            c.confidence = "high" if c.phone_share >= 0.9 or (top == "phone" and c.phone_share >= 0.8) else "medium"
            c.note = f"phone: {c.phone_share:.0%} valid numbers"
            return
    # --- booleans
    consent_words = bool({"consent", "granted"} & set(c.concepts))
    if _boolean_values(texts, one_sided=consent_words) and top not in ("quantity", "rating", "amount", "duration",
                                                                        "gender"):
        c.type, c.confidence = "boolean", "high" if len(texts) > 2 or top in ("consent", "granted") else "medium"
        c.note = f"yes/no values {sorted(set(texts))[:6]}"
        return
    # --- numbers (parsed as ingest parses them; the 2,000 most frequent distinct values)
    if c.share(_DIGIT) >= 0.9:
        head = c.values.iloc[:2000]
        parsed = parse_number(head)
        num_ok = parsed.notna().to_numpy()
        weights = c.counts[:len(head)]
        num_share = float(weights[num_ok].sum() / weights.sum()) if weights.sum() else 0.0
    else:
        parsed, num_ok, num_share = pd.Series([], dtype=float), np.zeros(0, bool), 0.0
    long_values = float(np.median([len(t) for t in texts[:500]])) >= 4
    id_number = (top in ("member", "id", "login", "buyer", "viewer", "device", "cookie", "openid", "unionid", "phone")
                 + _KEY_CONCEPTS and long_values) or bool(any(re.fullmatch(r"0[0-9]+", t) for t in texts[:200]))
    # phone-like text ("+852 5123 4567", "138-0013-8000") parses as a number, but is not one
    id_number = id_number or c.share(_PHONE_LAYOUT) >= 0.5
    long_ints = num_ok.any() and c.share(_LONG_INT) >= 0.5
    if num_share >= 0.95 and not id_number and not long_ints:
        vals = parsed[num_ok]
        currency, found = _currency_of(texts)
        two_dec = c.share(_TWO_DECIMALS) >= 0.8
        money_hint = top in ("amount", "refund_amount", "price") or bool(found)
        whole = bool((vals % 1 == 0).all()) and not any("." in t for t in texts[:500])
        if money_hint or (two_dec and not whole and top is None):
            c.type = "amount"
            c.confidence = "high" if (top in ("amount", "refund_amount") and num_share >= 0.99) else "medium"
            c.note = f"amount: {num_share:.0%} of values are numbers"
            if currency:
                c.spec["currency"] = currency
                c.note += f"; currency {currency} from the symbol"
            elif len(found) > 1:
                c.note += f"; several currency symbols {sorted(found)}: give the rows a currency column"
            if num_share < 0.999:
                c.note += f"; {1 - num_share:.1%} would be quarantined as not a number"
            return
        c.type = "integer" if whole else "float"
        c.confidence = "high" if num_share >= 0.99 else "medium"
        c.note = f"{c.type}: {num_share:.0%} numbers, {vals.min():g} to {vals.max():g}"
        if num_share < 0.999:
            c.note += f"; {1 - num_share:.1%} would be quarantined as not a number"
        few = c.distinct <= 12 and c.present >= 3 * c.distinct
        if top in ("gender", "status", "event", "level", "purpose", "channel", "category", "region") and few:
            pass  # a coded number (gender 1/2): a category below
        else:
            return
    # --- categories
    short = max((len(t) for t in texts), default=0) <= 40
    few = c.distinct <= _MAX_CATEGORY and c.present >= 2 * c.distinct and short
    coded = top in ("gender", "status", "event", "level", "purpose", "channel", "category", "region", "currency",
                    "os", "txn_type")
    if (few and top not in _OPEN_VOCABULARY) or (coded and c.distinct <= _MAX_EVENT_NAMES and short):
        c.type = "category"
        c.codes = _generic_codes(texts)
        c.confidence = "medium"
        c.note = f"category: {c.distinct} distinct values"
        return
    # --- names
    share = _name_share(texts[:1000])
    if (top == "name" and share >= 0.5) or (share >= 0.8 and c.unique_ratio > 0.2 and top in (None, "id")):
        c.type = "name"
        c.confidence = "high" if top == "name" and share >= 0.8 else "medium"
        c.note = f"person names: {share:.0%} look like Chinese or pinyin names"
        return
    # --- ids
    c.id_like = c.share(lambda t: _IDLIKE.match(t) and _DIGIT.search(t))
    if top in _KEY_CONCEPTS or top in _IDENTITY_CONCEPTS or (top == "id" and c.id_like >= 0.5) or (
            top is None and c.id_like >= 0.9 and (c.unique_ratio > 0.05 or c.distinct > 50)):
        _id_type(c)
        return
    c.type = "string"
    c.confidence = "high" if top in _OPEN_VOCABULARY or top is not None else "medium"
    c.note = "text" + (f" ({c.distinct:,} distinct values)" if c.distinct > _MAX_CATEGORY else "")


def _id_type(c: _Col) -> None:
    """identifier (a person's or device's id) or key (the record's own id)."""
    top = c.concept
    repeats = c.unique_ratio < 0.95
    if top == "original_ref":
        c.type, c.confidence = "key", "medium"
        c.note = "key: the number of the original order (a reference, not this record's own number)"
    elif top in _KEY_CONCEPTS:
        c.type, c.confidence = "key", "medium"
        c.note = "key: the record's own number" + (" (repeats: line items or re-exports)" if repeats else "")
    elif top in _IDENTITY_CONCEPTS:
        whose = {"device": "a device's id", "cookie": "a browser cookie", "viewer": "a platform account",
                 "openid": "a WeChat account (per official account)", "unionid": "a WeChat user (across accounts)",
                 "buyer": "a platform buyer account", "login": "what the person logged in with"}
        c.type, c.confidence = "identifier", "medium"
        c.note = (f"identifier: {whose.get(top, 'a person id')} "
                  f"({'repeats over rows' if repeats else 'one row each'})")
    elif c.unique_ratio >= 0.99:
        c.type, c.confidence = "key", "low"
        c.note = "key: unique per row, no id word in the header (identifier if it names a person)"
    else:
        c.type, c.confidence = "identifier", "low"
        c.note = f"identifier: id-like values that repeat over rows ({c.unique_ratio:.0%} distinct)"
    if c.phone_share >= 0.2:
        c.note += f"; {c.phone_share:.0%} of values are phone numbers"


def _code_for(spelling: str) -> str:
    """A snake_case code for a category spelling (pinyin for Chinese, a few known words translated)."""
    t = _nfkc(spelling)
    if t in _CODE_LOOKUP:
        return _CODE_LOOKUP[t]
    if _CJK_RE.search(t):
        t = " ".join(_pinyin(t))
    s = re.sub(r"[^0-9a-z]+", "_", t.lower()).strip("_")
    return s or _nfkc(spelling)


def _generic_codes(texts: list[str]) -> dict[str, list[str]]:
    """code -> spellings for a category without canonical codes (codes in snake_case)."""
    out: dict[str, list[str]] = {}
    for t in texts:
        if t.casefold() in _ABSENT:
            continue
        code = _code_for(t)
        if t not in out.setdefault(code, []):
            out[code].append(t)
    return out


def _canonical_codes(texts: list[str], lookup) -> tuple[dict[str, list[str]], list[str]]:
    """(code -> spellings, spellings with no code) through ``lookup(spelling) -> code | None``."""
    out: dict[str, list[str]] = {}
    unknown = []
    for t in texts:
        if t.casefold() in _ABSENT:
            continue
        code = lookup(t)
        if code is None:
            unknown.append(t)
        elif t not in out.setdefault(code, []):
            out[code].append(t)
    return out, unknown


def _event_code(t: str, context: set[str]) -> str | None:
    key = _nfkc(t)
    k = re.sub(r"[^0-9a-z\u3400-\u9fff]+", "_", key.casefold()).strip("_")
    if "wechat" in context and k in ("unsubscribe", "unsubscribed", "unfollow", "取消关注"):
        return "WeChat Unfollowed"
    if "email" not in context and k in ("click", "clicked", "点击"):
        return "Product Clicked"
    if "email" not in context and k in ("open", "opened", "打开"):
        return "Application Opened" if "app" in context else None
    if "email" not in context and k in ("sent", "send", "delivered", "delivery", "bounce", "bounced"):
        return None
    return _EVENT_LOOKUP.get(k) or _EVENT_LOOKUP.get(key)


def _title(t: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", _nfkc(t)) or _pinyin(_nfkc(t))
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or _nfkc(t)


# ============================================================================ the file as a whole
@dataclass
class _FileFacts:
    path: Path
    words: set[str]      # words of the file name, its folder and the channel
    name: str            # the same, lower-cased (for Chinese and phrase look-ups)
    text: str            # the same plus the headers
    context: set[str]    # email / wechat / app: how to read ambiguous event names


def _file_facts(path: Path, cols: list[_Col], channel: str) -> _FileFacts:
    name_text = f"{path.parent.name} {path.stem} {channel}"
    words = _words(path.stem) | _words(path.parent.name) | _words(channel)
    text = (name_text + " " + " ".join(c.column for c in cols)).lower()
    ctx = set()
    types = {c.type for c in cols}
    if _has_any(words, text, ("email", "mail", "edm", "esp", "newsletter", "邮件")) or (
            "email" in types and any(c.concept == "event" for c in cols)):
        ctx.add("email")
    if _has_any(words, text, ("wechat", "weixin", "微信", "公众号")) or any(c.concept in ("openid", "unionid")
                                                                       for c in cols):
        ctx.add("wechat")
    if _has_any(words, text, ("app", "mobile", "ios", "android")) or any(c.concept == "device" for c in cols):
        ctx.add("app")
    return _FileFacts(path, words, name_text.lower(), text, ctx)


def _is_time(c: _Col) -> bool:
    return c.type in ("timestamp", "date") and c.concept != "birth"


_EVENT_FILE_WORDS = ("event", "events", "log", "logs", "click", "clicks", "track", "tracking", "behavior", "behaviour",
                     "session", "sessions", "follower", "followers", "follow", "ticket", "tickets", "live",
                     "clickstream", "activity", "activities", "interaction", "interactions", "visit", "visits",
                     "pageview", "pageviews", "stream", "行为", "日志", "事件", "埋点", "直播", "工单", "关注", "粉丝")


def _role_scores(cols: list[_Col], facts: _FileFacts) -> dict[str, tuple[float, list[str]]]:
    """Evidence for each role: (score, reasons). Infeasible roles get -inf."""
    by = {}
    for c in cols:
        by.setdefault(c.concept, []).append(c)
    times = [c for c in cols if _is_time(c)]
    amounts = [c for c in cols if c.type == "amount" or (c.concept in ("amount", "refund_amount", "price")
                                                          and c.type in ("integer", "float"))]
    keys = [c for c in cols if c.concept in ("order_ref",) and c.type in ("key", "identifier", "string", "integer")]
    w, t = facts.words, facts.name
    s: dict[str, tuple[float, list[str]]] = {}

    # orders
    sc, why = 0.0, []
    if keys:
        sc += 3
        why.append(f"an order key ({keys[0].column})")
    if amounts:
        sc += 2
        why.append(f"an amount ({amounts[0].column})")
    if any(c.concept == "order_time" for c in times):
        sc += 2
        why.append("an order time")
    elif times:
        sc += 1
    if _has_any(w, t, ("order", "orders", "sales", "sale", "receipt", "receipts", "pos", "till", "transaction",
                       "transactions", "purchase", "purchases", "trade", "订单", "销售", "小票", "交易", "流水")):
        sc += 1.5
        why.append("order words in the file name")
    if any(c.concept == "status" for c in cols):
        sc += 0.5
    if any(c.concept in ("product", "category", "quantity") for c in cols):
        sc += 0.5
    if not (times and amounts):
        sc = float("-inf")
    s["orders"] = (sc, why)

    # returns
    sc, why = 0.0, []
    if _has_any(w, t,
                ("return", "returns", "refund", "refunds", "rma", "aftersale", "退货", "退款", "售后")):
        sc += 4
        why.append("return words in the file name")
    if "original_ref" in by:
        sc += 3
        why.append(f"a reference to the original order ({by['original_ref'][0].column})")
    if any(c.concept == "return_time" for c in times):
        sc += 2
        why.append("a return time")
    if "return_ref" in by:
        sc += 1
    refs = [c for c in cols if c.concept in _KEY_CONCEPTS or c.type == "key"]
    if not (times and amounts and refs):
        sc = float("-inf")
    s["returns"] = (sc, why)

    # events
    sc, why = 0.0, []
    ev = [c for c in cols if c.concept == "event"]
    if ev:
        sc += 4
        why.append(f"an event-name column ({ev[0].column})")
    if times:
        sc += 2
    if _has_any(w | _words(facts.text), facts.text, _EVENT_FILE_WORDS):
        sc += 2.5
        why.append("event words in the file name or headers")
    if any(c.concept in ("cookie", "device", "viewer", "openid") for c in cols):
        sc += 1
        why.append("device/cookie/account ids")
    if any(c.concept in ("duration", "campaign", "page") for c in cols):
        sc += 1
    if not times:
        sc = float("-inf")
    s["events"] = (sc, why)

    # profile
    sc, why = 0.0, []
    members = [c for c in cols if c.concept == "member" and c.type in ("identifier", "key", "string")]
    if members:
        m = members[0]
        sc += 2 + (1.5 if m.unique_ratio >= 0.9 else 0)
        why.append(f"a member id ({m.column}{', one row per person' if m.unique_ratio >= 0.9 else ''})")
    traits = [k for k in ("name", "gender", "birth", "registered_time", "level", "email", "phone", "address",
                          "city") if k in by]
    sc += min(4.0, 0.8 * len(traits))
    if traits:
        why.append(f"person details ({', '.join(traits)})")
    if any(c.type == "boolean" and c.concept in ("consent", "granted") for c in cols):
        sc += 1
    if _has_any(w, t, ("member", "members", "customer", "customers", "crm", "user", "users", "profile", "profiles",
                       "contact", "contacts", "vip", "loyalty", "会员", "客户", "用户", "档案")):
        sc += 2
        why.append("member words in the file name")
    if keys and amounts:
        sc -= 3
    if ev:
        sc -= 3
    s["profile"] = (sc, why)

    # consents
    sc, why = 0.0, []
    bools = [c for c in cols if c.type == "boolean"]
    if "purpose" in by:
        sc += 4
        why.append(f"a purpose column ({by['purpose'][0].column})")
    if any(c.concept in ("granted", "consent") for c in bools):
        sc += 2
        why.append("a granted yes/no")
    if _has_any(w, t,
                ("consent", "consents", "optin", "opt", "permission", "permissions", "gdpr", "pipl", "同意", "授权")):
        sc += 3
        why.append("consent words in the file name")
    if not (times and bools and ("purpose" in by or _purpose_from_words(facts))):
        sc = float("-inf")
    s["consents"] = (sc, why)

    # campaign members
    sc, why = 0.0, []
    if "campaign" in by:
        sc += 3
        why.append(f"a campaign column ({by['campaign'][0].column})")
    if "group" in by:
        sc += 4
        why.append(f"a group column ({by['group'][0].column})")
    if any(c.concept == "sent_time" for c in times):
        sc += 1.5
        why.append("a send time")
    if _has_any(w, t, ("campaign", "campaigns", "holdout", "experiment", "活动", "营销")):
        sc += 1.5
        why.append("campaign words in the file name")
    if not (times and "campaign" in by and "group" in by):
        sc = float("-inf")
    s["campaign_members"] = (sc, why)
    return s


def _purpose_from_words(facts: _FileFacts) -> str | None:
    for code, words in _PURPOSES.items():
        if _has_any(facts.words, facts.name, words):
            return code
    return None


def _constant_event(facts: _FileFacts, channel: str) -> tuple[str, bool]:
    """(event type, is it custom) for an events file without an event-name column."""
    w, t = facts.words, facts.text
    rules = [
        (("unfollow", "取消关注"), "WeChat Unfollowed"),
        (("follow", "follower", "followers", "subscribe", "subscriber", "subscribers", "关注", "粉丝"), "WeChat Followed"),
        (("ticket", "tickets", "service", "support", "complaint", "complaints", "工单", "客服", "投诉"),
         "Service Ticket Opened"),
        (("live", "livestream", "watch", "直播"), "Live Stream Watched"),
        (("login", "logins", "signin", "登录"), "Signed In"),
        (("signup", "signups", "register", "registration", "注册"), "Signed Up"),
        (("install", "installs", "安装"), "Application Installed"),
        (("pageview", "pageviews", "page_view", "visit", "visits", "访问"), "Page Viewed"),
        (("search", "searches", "搜索"), "Products Searched"),
        (("cart", "carts", "加购"), "Product Added"),
    ]
    for needles, et in rules:
        if _has_any(w, t, needles):
            return et, False
    return f"{_title(channel)} Event", True


# ============================================================================ names for the role
# role -> [(field, concepts in order of preference, allowed types, coercion)]
_PLANS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "orders": [("order_id", ("order_ref",)), ("ordered_at", ("order_time", "time")),
               ("amount", ("amount", "price")), ("refund_amount", ("refund_amount",)),
               ("refunded_at", ("return_time",)),
               ("status", ("status",)), ("category", ("category",)), ("product", ("product",)),
               ("quantity", ("quantity",)), ("sales_channel", ("channel",)), ("store", ("store",))],
    "returns": [("order_id", ("original_ref", "order_ref")), ("return_id", ("return_ref", "order_ref", "ticket_ref")),
                ("returned_at", ("return_time", "time", "order_time")),
                ("amount", ("refund_amount", "amount", "price")),
                ("category", ("category",)), ("quantity", ("quantity",)), ("sales_channel", ("channel",)),
                ("store", ("store",))],
    "events": [("event_time", ("time", "order_time", "registered_time", "consent_time", "return_time")),
               ("event_type", ("event",)), ("quantity", ("quantity",)), ("value", ("amount", "price")),
               ("duration_seconds", ("duration",)), ("campaign", ("campaign",)), ("product", ("product",)),
               ("category", ("category",)), ("rating", ("rating",)), ("platform", ("channel",))],
    "profile": [("member_id", ("member", "id", "login")), ("registered_at", ("registered_time",)),
                ("updated_at", ("updated_time",)), ("member_level", ("level",))],
    "consents": [("consented_at", ("consent_time", "time")), ("granted", ("granted", "consent")),
                 ("purpose", ("purpose",))],
    "campaign_members": [("campaign_id", ("campaign",)), ("campaign_name", ("campaign",)), ("group", ("group",)),
                         ("sent_at", ("sent_time", "time")), ("response_window_days", ("window",))],
}
_TRAIT_PLAN = [("name", ("name",)), ("gender", ("gender",)), ("birth_date", ("birth",)), ("city", ("city",)),
               ("address", ("address",)), ("phone", ("phone",)), ("email", ("email",))]


def _allowed(role: str, name: str) -> tuple[str, ...]:
    spec = ROLES[role].fields.get(name) or TRAITS.get(name)
    return spec.types if spec else tuple(FIELD_TYPES)


def _coerce(c: _Col, name: str, role: str) -> str | None:
    """The type ``c`` gets as canonical field ``name``, or None when it cannot be that field."""
    allowed = _allowed(role, name)
    if c.type in allowed:
        return c.type
    if name in ("amount", "refund_amount", "value") and c.type in ("integer", "float"):
        return "amount"
    if name == "birth_date" and c.type == "timestamp":
        return "date"
    if c.type == "category" and "string" in allowed:
        return "string"
    if c.type in ("string", "integer", "identifier", "key") and "category" in allowed and name in (
            "event_type", "status", "gender", "purpose", "group") and c.distinct <= _MAX_EVENT_NAMES:
        return "category"
    if c.type in ("string", "identifier", "key", "category") and name in ("member_id", "order_id", "return_id",
                                                                           "product"):
        return "identifier" if name == "member_id" else ("key" if "key" in allowed else "string")
    if c.type in ("phone", "email") and name == "member_id":
        return "identifier"
    if c.type == "string" and name in ("member_level", "sales_channel", "platform", "store", "campaign"):
        return "string"
    if name == "granted" and c.type == "boolean":
        return "boolean"
    return None


def _assign(cols: list[_Col], role: str) -> dict[int, tuple[str, str]]:
    """column index -> (canonical field, type) for the role's fields and the person traits."""
    out: dict[int, tuple[str, str]] = {}
    used: set[str] = set()

    def pick(name: str, concepts: tuple[str, ...], fallback_types: tuple[str, ...] = ()) -> None:
        best, best_key = None, None
        for rank, concept in enumerate(concepts):
            for c in cols:
                if c.index in out or c.concept != concept or (c.receiver and name in TRAITS):
                    continue
                if name in ("refunded_at", "returned_at", "ordered_at", "event_time", "registered_at", "updated_at",
                            "consented_at") and not _is_time(c):
                    continue
                t = _coerce(c, name, role)
                if t is None:
                    continue
                key = (-rank, c.concepts.get(concept, 0.0) + 3 * c.fill)
                if best_key is None or key > best_key:
                    best, best_key = (c, t), key
            if best:
                break
        if best is None and fallback_types:
            cands = [c for c in cols if c.index not in out and c.type in fallback_types and c.concept != "birth"]
            cands.sort(key=lambda c: (-c.fill, c.index))
            if cands:
                c = cands[0]
                t = _coerce(c, name, role)
                if t:
                    best = (c, t)
                    c.confidence = "low"
                    c.note += f"; taken as {name} for want of a better column"
        if best:
            out[best[0].index] = (name, best[1])
            used.add(name)

    # required fields: when no header names them, the best column of a fitting type
    fallbacks = {"ordered_at": ("timestamp", "date"), "returned_at": ("timestamp", "date"),
                 "event_time": ("timestamp", "date"), "consented_at": ("timestamp", "date"),
                 "sent_at": ("timestamp", "date"),
                 "amount": ("amount", "float", "integer"), "granted": ("boolean",)}
    if role == "returns":
        fallbacks["order_id"] = ("key", "identifier")
    for name, concepts in _PLANS[role]:
        pick(name, concepts, fallbacks.get(name, ()))
    if role == "profile" and "member_id" not in used:
        pick("member_id", ("cookie", "device", "buyer", "viewer", "openid", "unionid", "ticket_ref"))
    for name, concepts in _TRAIT_PLAN:
        if name not in used:
            pick(name, concepts)
    # type-only traits: a phone / e-mail / name column whose header said nothing
    for name, typ in (("phone", "phone"), ("email", "email"), ("name", "name")):
        if name not in used:
            cands = [c for c in cols if c.index not in out and c.type == typ and c.concept in (None, "id", name)
                     and not c.receiver]
            if cands:
                out[cands[0].index] = (name, typ)
                used.add(name)
    if role == "profile" and not used & {"member_id", "phone", "email"}:
        # the role needs some id of the person: the most id-like column left, as a guess
        free = [c for c in cols if c.index not in out] or []
        plain = [c for c in free if c.type in ("identifier", "key", "string", "integer", "name")] or free
        if plain:
            c = max(plain, key=lambda c: (c.unique_ratio, c.fill, -c.index))
            c.confidence = "low"
            c.note += "; no column names the person's id: taken as member_id — check, or set another role"
            out[c.index] = ("member_id", "identifier")
    return out


def _own_name(c: _Col, taken: set[str], reserved: set[str]) -> str:
    ascii_header = c.column.isascii() and _slug(c.column)
    if c.concept == "member" and c.type in ("identifier", "key", "string") and "member_id" not in taken:
        base = "member_id"
    elif ascii_header:
        base = _slug(c.column)
    elif c.concept in _CONCEPT_NAMES:
        base = _CONCEPT_NAMES[c.concept]
        if c.concept == "buyer" and ("nick" in c.column.lower() or "昵称" in c.column):
            base = "buyer_nick"
        if c.receiver and c.concept in ("name", "phone", "address", "city"):
            base = f"receiver_{c.concept}"
        elif c.concept == "phone" and c.type == "masked_phone":
            base = "phone_masked"
    else:
        base = _slug(c.column) or f"col_{c.index + 1}"
    if c.receiver and not base.startswith("receiver") and c.concept in ("name", "phone", "address", "city"):
        base = f"receiver_{base}" if ascii_header and "receiver" not in base else base
    base = base[:60].strip("_") or f"col_{c.index + 1}"
    name, k = base, 2
    while name in taken or name in reserved:
        name = f"{base}_{k}"
        k += 1
    return name


# ============================================================================ the draft
def _channel_name(path: Path, raw_dir: Path | None) -> str:
    if raw_dir is not None:
        try:
            rel = path.resolve().relative_to(raw_dir.resolve())
            if len(rel.parts) > 1:
                s = _slug(rel.parts[0])
                if s:
                    return s
        except ValueError:
            pass
    return _slug(path.stem) or "channel"


def _pattern(path: Path, raw_dir: Path | None) -> tuple[str, str | None]:
    if raw_dir is not None:
        try:
            rel = path.resolve().relative_to(raw_dir.resolve())
        except ValueError:
            return path.name, (f"the file is not under {raw_dir}: the pattern is its name; move it to "
                               f"{raw_dir}/<channel>/ and use '<channel>/*{path.suffix}'")
        if len(rel.parts) > 1:
            pattern = f"{rel.parent.as_posix()}/*{path.suffix}"
            others = [p for p in path.parent.glob(f"*{path.suffix}") if p.is_file() and p.name != path.name]
            note = (f"the pattern also matches {len(others)} other file(s) in {rel.parent.as_posix()}/ — they must "
                    "have the same columns" if others else None)
            return pattern, note
        return rel.as_posix(), None
    return path.name, None


def _flow(value: Any) -> str:
    """One-line YAML for a value (a scalar's document-end marker dropped)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30, sort_keys=False)
    return re.sub(r"\n\.\.\.\n?$", "", text).strip()


def _comment(text: str) -> str:
    return " ".join(str(text).split())


def draft_mapping(path: str | Path, *, raw_dir: str | Path | None = None, channel: str | None = None,
                  role: str | None = None, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> Draft:
    """Draft a mapping for one data file from its first ``sample_rows`` rows.

    ``raw_dir`` is the data folder's ``raw/``: a file under ``raw/<folder>/`` gets the pattern
    ``<folder>/*<ext>`` and the channel ``<folder>``; otherwise the pattern is the file name
    and the channel comes from it. ``channel`` and ``role`` override the guesses (a ``role``
    whose required fields no column can fill raises :class:`MappingError`). The mapping in
    the result always passes ``ChannelMapping.from_dict``.

    >>> import tempfile, pathlib
    >>> raw = pathlib.Path(tempfile.mkdtemp())
    >>> (raw / "crm").mkdir()
    >>> _ = (raw / "crm" / "members.csv").write_text(
    ...     "会员编号,姓名,手机,注册时间\\nM001,张伟,13800138001,2024年3月5日 10:20\\n"
    ...     "M002,李娜,13900139002,2024年3月6日 11:05\\n", encoding="utf-8")
    >>> d = draft_mapping(raw / "crm" / "members.csv", raw_dir=raw)
    >>> d.mapping["channel"], d.role, d.mapping["source"]["pattern"]
    ('crm', 'profile', 'crm/*.csv')
    >>> d.mapping["fields"]["registered_at"]["formats"], d.mapping["fields"]["phone"]["type"]
    (['%Y年%m月%d日 %H:%M'], 'phone')
    """
    t0 = time.perf_counter()
    if not isinstance(sample_rows, (int, np.integer)) or isinstance(sample_rows, bool) or sample_rows < 1:
        raise ValueError(f"The 'sample_rows' parameter must be a positive integer. Got {sample_rows!r} instead.")
    if role is not None and role not in ROLES:
        raise MappingError(f"role must be one of {list(ROLES)}. Got {role!r} instead.")
    path = _check_path(path)
    raw = Path(raw_dir) if raw_dir is not None else None
    src = sniff_source(path)
    notes: list[str] = []
    bad = 0
    if src.format == "csv":
        df, bad = _csv_sample(path, src, sample_rows)
    elif src.format == "jsonl":
        df, bad = _jsonl_sample(path, src, sample_rows)
    elif src.format == "parquet":
        df = _parquet_sample(path, sample_rows)
    else:
        df = _excel_sample(path, src, sample_rows)
    if bad:
        notes.append(f"{bad} row(s) among the first {len(df) + bad:,} could not be parsed (ingest quarantines such "
                     "rows with the reason)")
    if df.shape[1] == 0:
        raise MappingError(f"{path}: no columns found. Expected a header row and data rows (or JSON objects).")
    if len(df) == 0:
        notes.append("the file has a header but no data rows: types are guesses from the header words only")
    if len(df) >= sample_rows:
        notes.append(f"drafted from the first {sample_rows:,} rows; later rows may hold other spellings")
    chan = channel if channel is not None else _channel_name(path, raw)
    cols = _measure(df, df.attrs.get("zoned_text"))
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        notes.append(f"duplicate column names {dupes}: only the first of each is mapped; rename the others")
    facts = _file_facts(path, cols, chan)
    for c in cols:
        _analyse(c)
        _refine_concept(c)
    facts = _file_facts(path, cols, chan)
    scores = _role_scores(cols, facts)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1][0])
    feasible = [(r, s) for r, s in ranked if s[0] != float("-inf")]
    if role is None:
        if feasible:
            role_name, (best, why) = feasible[0]
            second = feasible[1][1][0] if len(feasible) > 1 else float("-inf")
            margin = best - second
            role_conf = "high" if margin >= 4 else ("medium" if margin >= 2 else "low")
            runner = f"; next best: {feasible[1][0]}" if len(feasible) > 1 else ""
            role_note = (", ".join(why) or "no strong signal") + runner
        else:
            role_name, role_conf = "profile", "low"
            role_note = "nothing looks like a time with an amount or an event: taken as member data"
    else:
        role_name, role_conf, role_note = role, "high", "set by the caller"
    mapping, guesses, extra_notes = _build(cols, df, role_name, facts, chan, path, raw, src)
    notes.extend(extra_notes)
    text = _yaml(mapping, guesses, role_name, role_conf, role_note, src, notes, path, len(df))
    if yaml.safe_load(text) != mapping:  # the comments must not change what the YAML says
        raise AssertionError("internal error: the commented YAML does not read back as the drafted mapping")
    return Draft(mapping=mapping, yaml=text, columns=guesses, role=role_name, role_confidence=role_conf,
                 role_note=role_note, source=src, rows_sampled=len(df), notes=notes,
                 seconds=round(time.perf_counter() - t0, 3))


def _measure(df: pd.DataFrame, zoned_text: dict[str, str] | None = None) -> list[_Col]:
    zoned_text = zoned_text or {}
    cols = []
    seen: set[str] = set()
    for i, name in enumerate(df.columns):
        if name in seen:
            continue
        seen.add(name)
        s = df.iloc[:, i]
        n = len(s)
        numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            c = _Col(i, str(name), n, int(s.notna().sum()), int(s.nunique()), pd.Series([], dtype=object),
                     np.array([], dtype=np.int64))
            c.type, c.confidence, c.note = "timestamp", "high", "a date-time column in the file itself"
            c.concepts = header_concepts(str(name))
            c.concept = next(iter(c.concepts), None)
            c.fill = c.present / n if n else 0.0
            c.fixed = True
            zoned = zoned_text.get(str(name))
            if zoned:
                c.spec = {"timezone": "UTC"}
                c.note += (f"; the text carries offsets (like {zoned!r}) and the JSON reader turns them into UTC "
                           "without a zone: timezone UTC")
            cols.append(c)
            continue
        # count the raw values, then tidy the distinct ones (strip, drop "missing" spellings) and regroup
        raw_counts = s.value_counts(dropna=True, sort=False)
        if numeric and pd.api.types.is_float_dtype(s.dtype):
            keys = pd.Series([str(int(v)) if float(v).is_integer() else repr(float(v))
                              for v in raw_counts.index.tolist()], dtype="string")
        else:
            keys = pd.Series(raw_counts.index.astype("string"), dtype="string").str.strip()
        keep = ~keys.str.casefold().isin(list(_ABSENT)).fillna(True).to_numpy(bool)
        vc = pd.Series(raw_counts.to_numpy(np.int64)[keep], index=pd.Index(keys[keep].astype(object)))
        vc = vc.groupby(level=0, sort=False).sum().sort_values(ascending=False, kind="stable")
        c = _Col(i, str(name), n, int(vc.sum()), len(vc),
                 pd.Series(vc.index[:_MAX_UNIQUE].astype(str), dtype=object),
                 vc.to_numpy()[:_MAX_UNIQUE].astype(np.int64), numeric_dtype=numeric)
        c.fill = c.present / n if n else 0.0
        c.max_repeat = int(vc.iloc[0]) if len(vc) else 0
        c.unique_ratio = c.distinct / c.present if c.present else 0.0
        c.concepts = header_concepts(str(name))
        c.concept = next(iter(c.concepts), None)
        _, low = _header_tokens(str(name))
        c.receiver = any(w in low for w in _RECEIVER_WORDS)
        cols.append(c)
    return cols


def _refine_concept(c: _Col) -> None:
    """Let the values correct or fill in what the header said."""
    typed = {"email": "email", "phone": "phone", "masked_phone": "phone", "name": "name"}
    if c.type in typed and (typed[c.type] in c.concepts or c.concept not in (
            *_IDENTITY_CONCEPTS, "nickname")):
        c.concept = typed[c.type]
    if c.type in ("timestamp", "date") and c.concept not in _TIME_CONCEPTS:
        c.concept = "birth" if c.type == "date" and c.concept == "birth" else "time"
    if c.type == "category" and c.codes is not None:
        texts = [t for code in c.codes.values() for t in code]
        if c.concept is None or c.concept in ("id", "txn_type", "os", "level", "category", "channel", "status",
                                              "time", "event"):
            ev = sum(_event_code(t, set()) is not None for t in texts)
            st = sum(t.casefold() in _STATUS_LOOKUP for t in texts)
            ge = sum(t.casefold() in _GENDER for t in texts)
            cur = sum(t.upper() in _CURRENCY_CODES for t in texts)
            n = max(len(texts), 1)
            if c.concept not in ("status", "category", "channel", "level") and ev / n >= 0.5 and ev >= 2:
                c.concept = "event"
            elif c.concept is None and st / n >= 0.5 and st >= 2:
                c.concept = "status"
            elif c.concept is None and ge == n and {_GENDER[t.casefold()] for t in texts} >= {"M", "F"}:
                c.concept = "gender"
            elif c.concept in (None, "id") and cur == n:
                c.concept = "currency"
            elif c.concept in (None, "id") and all(re.fullmatch(r"[A-Z]{2}", t) for t in texts) and n >= 1:
                import phonenumbers
                if all(t in phonenumbers.SUPPORTED_REGIONS for t in texts):
                    c.concept = "region"
    if c.type in ("string", "category") and c.concept in ("currency", "region", "store"):
        c.type = "string"
        c.codes = None
        c.confidence = "high"
        c.note = {"currency": "currency codes", "region": "region codes (phone region and time zone of the row)",
                  "store": "store codes"}[c.concept] + f": {c.distinct} distinct"


def _build(cols: list[_Col], df: pd.DataFrame, role: str, facts: _FileFacts, chan: str, path: Path,
           raw: Path | None, src: SourceGuess) -> tuple[dict[str, Any], list[ColumnGuess], list[str]]:
    notes: list[str] = []
    assigned = _assign(cols, role)
    fields: dict[str, dict[str, Any]] = {}
    guesses: list[ColumnGuess] = []
    names: dict[int, str] = {}
    reserved = set(ROLES[role].fields) | set(TRAITS) | ({f"consent_{p}" for p in CONSENT_PURPOSES}
                                                        if role == "profile" else set())
    taken: set[str] = set()
    for c in cols:
        if c.index in assigned:
            name, typ = assigned[c.index]
            if typ != c.type:
                c.note += f"; read as {typ} for {name}"
                c.type = typ
            names[c.index] = name
            taken.add(name)
    for c in cols:
        if c.index in names:
            continue
        if role == "profile" and c.type == "boolean" and ({"consent", "granted"} & set(c.concepts)):
            purpose = None
            for code, words in _PURPOSES.items():
                if _has_any(_words(c.column), c.column.lower(), words):
                    purpose = code
                    break
            base = f"consent_{purpose or _slug(c.column) or c.index + 1}"
            name, k = base, 2
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            names[c.index] = name
            taken.add(name)
            continue
        names[c.index] = _own_name(c, taken, reserved)
        taken.add(names[c.index])
    # a region or currency column of the row: phones, naive times and amounts refer to it
    region_field = next((names[c.index] for c in cols if c.concept == "region" and c.type == "string"), None)
    currency_field = next((names[c.index] for c in cols if c.concept == "currency" and c.type == "string"), None)
    ev_custom: list[str] = []
    for c in cols:
        name = names[c.index]
        spec: dict[str, Any] = {"column": c.column, "type": c.type}
        canon = ROLES[role].fields.get(name) or TRAITS.get(name)
        if canon is not None and canon.required:
            spec["required"] = True
        if c.type in ("timestamp", "date"):
            keep = ("formats", "unit", "timezone") if c.type == "timestamp" else ("formats",)
            spec.update({k: v for k, v in c.spec.items() if k in keep and v})
            if region_field and c.type == "timestamp" and "unit" not in spec and "timezone" not in spec and not any(
                    "%z" in f for f in spec.get("formats", [])):
                spec["timezone_field"] = region_field
                c.note += f"; naive times read in the zone of {region_field}"
        if c.type == "phone" and region_field:
            spec["region_field"] = region_field
        if c.type == "amount":
            if currency_field:
                spec["currency_field"] = currency_field
                c.note += f"; currency from {currency_field}"
            elif c.spec.get("currency"):
                spec["currency"] = c.spec["currency"]
            elif _currency_from_header(c.column):
                spec["currency"] = _currency_from_header(c.column)
                c.note += f"; currency {spec['currency']} from the header"
            else:
                c.note += "; currency: the mapping's (CNY)"
                c.confidence = "medium" if c.confidence == "high" else c.confidence
        if c.type == "category":
            values, note = _category_values(c, name, role, facts, ev_custom)
            if values is None:  # no code fits: text instead
                spec["type"] = c.type = "string"
                c.note = note
            else:
                spec["values"] = values
                c.note = note
        spec["pii"] = _pii(c, name)
        spec = {k: v for k, v in spec.items() if not (k == "pii" and v == "none")}
        fields[name] = spec
        guesses.append(ColumnGuess(column=c.column, field=name, type=spec["type"], spec=spec,
                                   confidence=c.confidence, note=c.note, present=c.present, distinct=c.distinct,
                                   examples=[_example(v) for v in c.texts[:3]]))
    mapping: dict[str, Any] = {"channel": chan, "role": role}
    pattern, pnote = _pattern(path, raw)
    source: dict[str, Any] = {"pattern": pattern, "format": src.format}
    if pnote:
        notes.append(pnote)
    if src.format in ("csv", "jsonl"):
        source["encoding"] = src.encoding
    if src.format == "csv":
        source["delimiter"] = src.delimiter
        if src.newlines_in_values:
            source["newlines_in_values"] = True
    if src.sheet is not None:
        source["sheet"] = src.sheet
    mapping["description"] = (f"Drafted by `workbench map` from {path.name} ({len(df):,} rows sampled); "
                              "check every `# guess` comment.")
    mapping["source"] = source
    if any(c.type == "timestamp" for c in cols):
        mapping["timezone"] = "Asia/Shanghai"
    if any(c.type == "amount" for c in cols):
        mapping["currency"] = "CNY"
    if any(c.type in ("phone", "masked_phone") for c in cols):
        mapping["phone_region"] = "CN"
    # role-specific additions
    if role == "events" and "event_type" not in fields:
        et, custom = _constant_event(facts, chan)
        fields["event_type"] = {"constant": et, "type": "category"}
        if custom:
            ev_custom.append(et)
        guesses.append(ColumnGuess(column="", field="event_type", type="category", spec=fields["event_type"],
                                   confidence="low", note=f"no event-name column: every row is {et!r}"
                                   + (" (a type of your own)" if custom else "")))
    if role == "consents" and "purpose" not in fields:
        purpose = _purpose_from_words(facts) or "marketing"
        fields["purpose"] = {"constant": purpose, "type": "string", "required": True}
        guesses.append(ColumnGuess(column="", field="purpose", type="string", spec=fields["purpose"],
                                   confidence="low", note=f"no purpose column: every row is {purpose!r}"))
    mapping["fields"] = fields
    if role == "orders" and "order_id" in fields:
        oc = next(c for c in cols if names[c.index] == "order_id")
        line_cols = [c for c in cols if c.concept in ("product", "category", "quantity")]
        share_repeated = _repeated_share(df.iloc[:, oc.index])
        if share_repeated >= 0.2 and line_cols:
            mapping["grain"] = "line"
            notes.append(f"line items: {share_repeated:.0%} of rows share their {oc.column} with another row, and "
                         f"there are product columns ({', '.join(c.column for c in line_cols)}): grain: line")
        elif share_repeated > 0:
            mapping["dedupe"] = {"key": ["order_id"], "keep": "first"}
            notes.append(f"{share_repeated:.1%} of rows repeat an order number (re-exports?): dedupe keeps the "
                         "first; check it is not a line-item file")
        return_codes = any(c.concept in ("txn_type", "status") and c.codes and any(
            k in ("return", "returns", "refund", "refunded") for k in c.codes) for c in cols)
        if return_codes or any(c.concept == "original_ref" for c in cols):
            notes.append("the file seems to hold returns too (a return type or an original-order column): give it "
                         "a second mapping with role returns, each with a `filter` on the type column")
    if role == "returns" and "return_id" in fields:
        mapping["dedupe"] = {"key": ["return_id"], "keep": "first"}
    if role == "profile" and "member_id" in fields:
        mc = next((c for c in cols if names[c.index] == "member_id"), None)
        if mc is not None and mc.unique_ratio < 1.0 and mc.present:
            order_by = "updated_at" if "updated_at" in fields else None
            mapping["dedupe"] = {"key": ["member_id"], "keep": "latest" if order_by else "first",
                                 **({"order_by": order_by} if order_by else {})}
            notes.append(f"{1 - mc.unique_ratio:.1%} of member ids repeat (re-exports?): dedupe keeps "
                         + ("the latest by updated_at" if order_by else "the first"))
    if role == "events":
        extra = _extra_events(cols, names, facts)
        if extra:
            mapping["extra_events"] = extra
    if ev_custom:
        mapping["custom_event_types"] = sorted(set(ev_custom))
    mapping = _repair(mapping, guesses, notes)
    return mapping, guesses, notes


def _example(v: str) -> str:
    return v if len(v) <= 40 else v[:37] + "..."


def _currency_from_header(header: str) -> str | None:
    toks, low = _header_tokens(header)
    for t in toks:
        if t.upper() in ("CNY", "RMB", "HKD", "USD", "EUR", "GBP", "JPY", "MOP", "TWD", "SGD"):
            return "CNY" if t.upper() == "RMB" else t.upper()
    for word, code in (("人民币", "CNY"), ("港币", "HKD"), ("港元", "HKD"), ("美元", "USD")):
        if word in low:
            return code
    return None


def _repeated_share(s: pd.Series) -> float:
    s = s.dropna()
    s = s[s.astype(str).str.strip() != ""]
    if s.empty:
        return 0.0
    return float(s.duplicated(keep=False).mean())


def _pii(c: _Col, name: str) -> str:
    if c.type in ("phone", "masked_phone", "email", "name") or c.concept == "address" or name.endswith("address"):
        return "direct"
    if c.type == "identifier":
        if c.concept in ("device", "cookie", "viewer"):
            return "quasi"
        return "direct"
    if c.concept in ("birth", "city", "province", "nickname", "device", "cookie", "description") or name in (
            "birth_date", "city"):
        return "quasi"
    return "none"


def _category_values(c: _Col, name: str, role: str, facts: _FileFacts,
                     custom: list[str]) -> tuple[dict[str, list[str]] | None, str]:
    texts = [t for spellings in (c.codes or {}).values() for t in spellings]
    if name not in {**ROLES[role].fields, **TRAITS} or not (ROLES[role].fields.get(name) or TRAITS[name]).codes and (
            name not in ("event_type", "purpose")):
        name = ""  # not a coded canonical field here: codes from the spellings
    if name == "gender":
        numeric = any(t in ("1", "2") for t in texts)
        values, unknown = _canonical_codes(texts, lambda t: _GENDER.get(t.casefold()) or _GENDER_NUMERIC.get(t))
        note = "gender: spellings mapped to F/M/U" + ("; 1 = male, 2 = female is the WeChat convention" if numeric
                                                      else "")
        c.confidence = "medium" if numeric or unknown else "high"
    elif name == "status":
        values, unknown = _canonical_codes(texts, lambda t: _STATUS_LOOKUP.get(_nfkc(t).casefold()))
        note = f"order status: spellings mapped to {list(ORDER_STATUSES)}"
        c.confidence = "medium" if unknown else "high"
    elif name == "event_type" and role == "events":
        ctx = facts.context

        def lookup(t: str) -> str:
            et = _event_code(t, ctx)
            if et is None:
                et = _title(t)
                if et not in EVENT_TYPES:
                    custom.append(et)
            return et
        values, unknown = _canonical_codes(texts, lookup)
        mine = sorted({et for et in values if et not in EVENT_TYPES})
        note = "event names mapped to the vocabulary (workbench.roles.EVENT_TYPES)"
        if mine:
            note += f"; {mine} are types of your own (custom_event_types): map them onto the vocabulary if one fits"
            c.confidence = "low"
        else:
            c.confidence = "medium"
        if c.distinct > len(c.texts):
            note += f"; only the {len(c.texts)} most frequent names were listed"
        return values, note
    elif name == "group" and role == "campaign_members":
        values, unknown = _canonical_codes(texts, lambda t: _GROUP_WORDS.get(_nfkc(t).casefold()))
        note = "campaign group: spellings mapped to treatment / control"
        c.confidence = "medium" if unknown else "high"
    elif name == "purpose" and role == "consents":
        def lookup(t: str) -> str:
            for code, words in _PURPOSES.items():
                if _has_any(_words(t), t.lower(), words):
                    return code
            return _code_for(t)
        values, unknown = _canonical_codes(texts, lookup)
        note = "consent purposes"
        c.confidence = "medium"
    else:
        values, unknown = dict(c.codes or {}), []
        if c.distinct > len(texts) or c.distinct > _MAX_CATEGORY:
            c.confidence = "low"
            return values, f"category: {c.distinct} distinct values; spellings not seen here will not map"
        return values, (f"category: {len(values)} codes drafted from the spellings "
                        f"({', '.join(list(values)[:6])}{', ...' if len(values) > 6 else ''}); rename the codes")
    if unknown:
        note += f"; no code for {unknown[:8]} (left unmapped)"
    if not values:
        return None, f"text: none of the values {texts[:6]} is a known {name} spelling"
    return values, note


_EXTRA_RULES = [  # (header words, field types, event type, needs context)
    (("comment", "comments", "评论", "弹幕"), ("integer", "float"), "Live Stream Commented", None),
    (("gift", "gifts", "礼物", "打赏"), ("integer",), "Live Gift Sent", None),
    (("product click", "product clicks", "商品点击"), ("integer",), "Live Product Clicked", None),
    (("unsubscribe", "unfollow", "取消关注"), ("timestamp", "date"), "WeChat Unfollowed", "wechat"),
]


def _extra_events(cols: list[_Col], names: dict[int, str], facts: _FileFacts) -> list[dict[str, Any]]:
    out = []
    live = _has_any(facts.words, facts.text, ("live", "livestream", "直播", "watch"))
    value = next((names[c.index] for c in cols if c.type == "amount" and "gift" in c.column.lower()), None)
    for c in cols:
        toks, low = _header_tokens(c.column)
        for needles, types, et, ctx in _EXTRA_RULES:
            if c.type not in types or names[c.index] in ("event_time", "quantity", "duration_seconds"):
                continue
            if et.startswith("Live") and not live:
                continue
            if ctx and ctx not in facts.context:
                continue
            if not _has_any(set(toks), " ".join(toks) + " " + low, needles):
                continue
            if et == "Live Gift Sent" and "value" in low:
                continue
            e: dict[str, Any] = {"type": et}
            if c.type in ("timestamp", "date"):
                e["time"] = names[c.index]
            else:
                e["quantity"] = names[c.index]
                if et == "Live Gift Sent" and value:
                    e["value"] = value
            if all(x["type"] != et for x in out):
                out.append(e)
            break
    return out


def _repair(mapping: dict[str, Any], guesses: list[ColumnGuess], notes: list[str]) -> dict[str, Any]:
    """Make sure the mapping validates: demote a field the validator names to text, at most a few times."""
    for _ in range(len(mapping["fields"]) + 2):
        try:
            ChannelMapping.from_dict(mapping)
            return mapping
        except MappingError as exc:
            msg = str(exc)
            m = re.search(r"field '([^']+)'", msg)
            name = m.group(1) if m else None
            if name is None or name not in mapping["fields"] or "column" not in mapping["fields"][name]:
                raise MappingError(f"Could not draft a valid mapping: {msg}") from None
            spec = mapping["fields"].pop(name)
            base = f"{name}_raw"
            new, k = base, 2
            while new in mapping["fields"]:
                new, k = f"{base}_{k}", k + 1
            mapping["fields"][new] = {"column": spec["column"], "type": "string",
                                      **({"pii": spec["pii"]} if "pii" in spec else {})}
            for g in guesses:
                if g.field == name:
                    g.field, g.type, g.spec, g.confidence = new, "string", mapping["fields"][new], "low"
                    g.note += f"; kept as text ({msg})"
            notes.append(f"field {name!r} did not validate and was kept as text {new!r}: {msg}")
    raise MappingError("Could not draft a valid mapping.")


# ============================================================================ YAML text
def _yaml(mapping: dict[str, Any], guesses: list[ColumnGuess], role: str, role_conf: str, role_note: str,
          src: SourceGuess, notes: list[str], path: Path, rows: int) -> str:
    ids = [f"{g.field} ({g.column}: {g.type})" for g in guesses
           if g.type in ("identifier", "key", "phone", "email", "masked_phone")]
    lines = [f"# Draft mapping for {path.name}, written by `workbench map` from {rows:,} sampled rows.",
             "# A starting point: check every line marked `# guess`, then save it under workbench/channels/ (or your",
             "# mappings folder). Check first:",
             f"#   - role: {role} ({role_conf} confidence: {_comment(role_note)}). Roles: {', '.join(ROLES)}.",
             "#   - identity columns: identifier = an id of a person or device (links records to persons), key = an",
             "#     id of the record itself (order, receipt, ticket); never the other way round.",
             f"#     Here: {', '.join(ids) if ids else 'none found'}.",
             "#   - field names on the left: the role's canonical names (workbench.roles) mean something downstream;",
             "#     the others are yours to rename. Categories: every spelling must be listed under its code."]
    if not src.header:
        hdr = src.delimiter.join(g.column for g in guesses if g.column)
        lines += ["#   - THIS FILE HAS NO HEADER ROW. The csv reader takes the first line as the column names, so",
                  "#     add this line at the top of the file (and of every later file) before ingesting:",
                  f"#     {hdr}"]
    for n in src.notes + notes:
        lines.append(f"#   - {_comment(n)}")
    lines.append("")
    top_comments = {
        "role": f"guess ({role_conf}): {_comment(role_note)}; check" if role_conf != "high" else _comment(role_note),
        "timezone": "guess: naive times are local to this zone; check",
        "currency": "guess: amounts without a currency are in this one; check",
        "phone_region": "guess: numbers without a country code are read in this region; check",
        "grain": "guess: one row per line item; check",
        "dedupe": "guess: check the key and which version to keep",
        "custom_event_types": "event types outside the vocabulary: map them onto it if one fits",
        "extra_events": "guess: further events derived from each row; check",
    }
    for key, value in mapping.items():
        if key == "fields":
            lines.append("fields:")
            by_field = {g.field: g for g in guesses}
            for name, spec in value.items():
                g = by_field.get(name)
                line = f"  {_flow(name)}: {_flow(spec)}"
                if g is not None:
                    text = _comment(g.note)
                    line += f"  # {text}" if g.confidence == "high" else f"  # guess: {text}; check"
                lines.append(line)
            continue
        line = f"{_flow(key)}: {_flow(value)}"
        if key in top_comments:
            line += f"  # {top_comments[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


# ============================================================================ command line
def map_command(file: str, *, out: str | None = None, channel: str | None = None, role: str | None = None,
                raw_dir: str | None = None) -> int:
    """``workbench map FILE``: print the drafted mapping, or write it to ``out`` and say where.

    ``raw_dir`` defaults to the data folder's ``raw/`` (``$WORKBENCH_DATA_DIR``), used for the
    pattern when the file lies under it. Returns the exit code: 0, or 2 after printing the
    error (a missing file, an unknown format, an ``out`` that exists).

    >>> map_command("no/such/file.csv")
    2
    """
    try:
        if raw_dir is None:
            from .config import get_paths
            raw_dir = str(get_paths().raw)
        if out is not None and Path(out).exists():
            raise MappingError(f"{out} already exists: expected a new file name for the draft (it is never "
                               "overwritten).")
        draft = draft_mapping(file, raw_dir=raw_dir, channel=channel, role=role)
    except (MappingError, FileNotFoundError, ValueError) as exc:
        print(f"workbench map: {exc}", file=sys.stderr)
        return 2
    if out is None:
        print(draft.yaml, end="")
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(draft.yaml, encoding="utf-8")
        print(f"drafted mapping for {file} (role {draft.role}, {draft.role_confidence} confidence; "
              f"{len(draft.columns)} fields) written to {out}: check the `# guess` comments")
    return 0


def add_map_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``workbench map`` on ``parser`` (for the CLI's subparser).

    >>> add_map_arguments(argparse.ArgumentParser()).parse_args(["a.csv", "--role", "orders"]).role
    'orders'
    """
    parser.add_argument("file", help="the data file to draft a mapping from (csv, tsv, txt, jsonl, parquet, xlsx)")
    parser.add_argument("--out", default=None, help="write the YAML here instead of printing it")
    parser.add_argument("--channel", default=None, help="channel name (default: the file's folder under raw/)")
    parser.add_argument("--role", default=None, choices=list(ROLES), help="the role, when the guess is wrong")
    parser.add_argument("--raw-dir", default=None, help="the raw data folder the pattern is relative to "
                                                        "(default: data/raw)")
    return parser


def cli_map(args: argparse.Namespace) -> int:
    """Run ``workbench map`` from parsed arguments (see :func:`add_map_arguments`)."""
    return map_command(args.file, out=args.out, channel=args.channel, role=args.role,
                       raw_dir=getattr(args, "raw_dir", None))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m workbench.draft FILE [--out F] [--channel NAME] [--role ROLE]``."""
    parser = add_map_arguments(argparse.ArgumentParser(prog="workbench map",
                                                       description="Draft a channel mapping from a data file."))
    return cli_map(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

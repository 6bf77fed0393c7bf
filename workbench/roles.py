"""The canonical customer model: what each channel mapping's *role* means, in one place.

Every channel mapping declares a **role** — what the channel *is* — and names its fields
after that role's canonical fields. Everything after the identity stage reads only the
canonical tables built from these roles (:mod:`workbench.canonical`), so a brand's own
exports work whatever their channels are called.

=========  =====================================================================================
role       one row is ...
=========  =====================================================================================
profile    a member / customer master record (member id, name, gender, birth date, city, tier,
           registered at, consent per purpose as ``consent_<purpose>`` booleans)
orders     an order — or, with ``grain: line``, one line item of an order (several rows share the
           order key; they aggregate to one order and stay as line items for category mixes)
returns    a return or refund of an order (original order reference, returned at, amount),
           netted onto the order it names
events     a behavioural event (time, type from :data:`EVENT_TYPES`, optional quantity, value,
           duration, campaign, product, category, rating); ``extra_events`` derive further events
           from one row (a live-stream session with its comments and gifts)
consents   consent given or withdrawn for one purpose at a time
campaign_  a person's membership of a past campaign: campaign id and name, group (treatment or
members    held-out control), when it was sent — the campaign tool's export, for measuring results
=========  =====================================================================================

One mapping, one role; a file that holds two kinds of thing gets two mappings, each with a
``filter`` that keeps its own rows.

Besides its role's fields, any mapping may carry **person traits** (:data:`TRAITS`: name,
gender, birth date, city, phone, e-mail, address) — the customer 360 reconciles them across
channels — and any other field (identity evidence such as a cookie or an openid, or
something kept for the record). Only the names below have a meaning to the canonical layer.

Example:
    >>> ROLES["orders"].fields["ordered_at"].required
    True
    >>> event_slug("Live Stream Watched")
    'live_stream_watched'
    >>> EVENT_TYPES["Email Opened"].family
    'email'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CanonicalField", "RoleSpec", "ROLES", "TRAITS", "EventType", "EVENT_TYPES", "EVENT_FAMILIES",
           "ORDER_STATUSES", "GENDERS", "CAMPAIGN_GROUPS", "CONSENT_PURPOSES", "CONSENT_EVENTS", "SESSION_FAMILIES", "event_slug",
           "describe_roles"]

TIME_TYPES = ("timestamp", "date")
TEXT_TYPES = ("string", "category", "key", "identifier")
NUMBER_TYPES = ("integer", "float")

#: Codes of an orders mapping's ``status`` category (map your spellings onto these).
ORDER_STATUSES = ("paid", "cancelled", "refunded")
#: Codes of a ``gender`` category.
GENDERS = ("F", "M", "U")
#: Codes of a campaign member's ``group``.
CAMPAIGN_GROUPS = ("treatment", "control")
#: Consent purposes every brand knows; a profile field ``consent_<word>`` adds a purpose of its own.
CONSENT_PURPOSES = ("sms", "email", "wechat", "ads")


@dataclass(frozen=True)
class CanonicalField:
    """A field a role knows: the field types a mapping may give it, whether it must be mapped,
    its fixed codes (for categories) and what it means."""

    types: tuple[str, ...]
    meaning: str
    required: bool = False
    codes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RoleSpec:
    """One role: its canonical fields, the time that dates a row, and which fields it needs."""

    name: str
    meaning: str
    fields: dict[str, CanonicalField]
    time_fields: tuple[str, ...]           # the first one present dates a row (as-of filters use it)
    one_of: tuple[tuple[str, ...], ...] = ()  # at least one field of each group must be mapped


#: Person traits any mapping may carry; the customer 360 reconciles them across channels.
TRAITS: dict[str, CanonicalField] = {
    "name": CanonicalField(("name",), "the person's name"),
    "gender": CanonicalField(("category",), "gender (codes F, M, U)", codes=GENDERS),
    "birth_date": CanonicalField(("date",), "date of birth"),
    "city": CanonicalField(("string", "category"), "city the person lives in"),
    "address": CanonicalField(("string",), "postal address"),
    "phone": CanonicalField(("phone",), "the person's mobile phone"),
    "email": CanonicalField(("email",), "the person's e-mail address"),
}

_PROFILE = {
    "member_id": CanonicalField(("identifier", "key"), "member / customer number of the brand"),
    "member_level": CanonicalField(("category", "string"), "membership tier or level"),
    "registered_at": CanonicalField(TIME_TYPES, "when the person became a member"),
    "updated_at": CanonicalField(TIME_TYPES, "when the record was last changed (a snapshot's time)"),
    **TRAITS,
}
_ORDERS = {
    "order_id": CanonicalField(("key", "string", "identifier"),
                               "order number (without one, every row is an order of its own)"),
    "ordered_at": CanonicalField(TIME_TYPES, "when the order was placed", required=True),
    "amount": CanonicalField(("amount",), "amount paid (a line's amount with grain: line)", required=True),
    "status": CanonicalField(("category",), "paid, cancelled or refunded (missing: paid)", codes=ORDER_STATUSES),
    "refund_amount": CanonicalField(("amount",), "amount refunded on the order, when the export says"),
    "refunded_at": CanonicalField(TIME_TYPES, "when it was refunded (missing: at the order's time)"),
    "category": CanonicalField(("category", "string"), "product category"),
    "product": CanonicalField(("string", "key", "identifier"), "product name or SKU"),
    "quantity": CanonicalField(NUMBER_TYPES, "units bought"),
    "sales_channel": CanonicalField(("category", "string"),
                                    "where it was sold (a platform such as tmall, or 'store'; "
                                    "missing: the mapping's channel)"),
    "store": CanonicalField(("string", "key", "category"), "shop or store code"),
}
_RETURNS = {
    "order_id": CanonicalField(("key", "string", "identifier"), "the order the return belongs to", required=True),
    "returned_at": CanonicalField(TIME_TYPES, "when it was returned or refunded", required=True),
    "amount": CanonicalField(("amount",), "amount refunded (the sign is ignored: a return always reduces "
                                          "revenue)", required=True),
    "return_id": CanonicalField(("key", "string", "identifier"), "number of the return itself"),
    "category": CanonicalField(("category", "string"), "product category"),
    "quantity": CanonicalField(NUMBER_TYPES, "units returned"),
    "sales_channel": CanonicalField(("category", "string"), "where the order was sold (to find it)"),
    "store": CanonicalField(("string", "key", "category"), "shop or store code"),
}
_EVENTS = {
    "event_time": CanonicalField(TIME_TYPES, "when it happened", required=True),
    "event_type": CanonicalField(("category",), "the event's name in the canonical vocabulary "
                                                "(EVENT_TYPES; map source names with `values`)", required=True),
    "quantity": CanonicalField(NUMBER_TYPES, "how many (default 1)"),
    "value": CanonicalField(("amount",), "money involved (a gift's value)"),
    "duration_seconds": CanonicalField(NUMBER_TYPES, "how long (seconds watched)"),
    "campaign": CanonicalField(("string", "key", "category"), "campaign or message id"),
    "product": CanonicalField(("string", "key", "identifier"), "product name or SKU"),
    "category": CanonicalField(("category", "string"), "product category, or a service ticket's category"),
    "rating": CanonicalField(NUMBER_TYPES, "satisfaction rating given"),
    "platform": CanonicalField(("category", "string"), "platform it happened on (douyin, a mini-program, ...)"),
}
_CONSENTS = {
    "purpose": CanonicalField(("category", "string"), "what the consent is for (sms, email, wechat, ads, ...)",
                              required=True),
    "granted": CanonicalField(("boolean",), "true = given, false = withdrawn or refused", required=True),
    "consented_at": CanonicalField(TIME_TYPES, "when it was given or withdrawn", required=True),
}
_CAMPAIGN_MEMBERS = {
    "campaign_id": CanonicalField(("key", "string", "identifier", "category"), "the campaign's id", required=True),
    "campaign_name": CanonicalField(("string", "category"), "the campaign's name"),
    "group": CanonicalField(("category",), "treatment (was sent the message) or control (held out at random)",
                            required=True, codes=CAMPAIGN_GROUPS),
    "sent_at": CanonicalField(TIME_TYPES, "when it was sent (for the control group: when it would have been)",
                              required=True),
    "response_window_days": CanonicalField(NUMBER_TYPES, "days after the send in which a purchase counts as a "
                                                         "response (missing: the results' default)"),
}

ROLES: dict[str, RoleSpec] = {
    "profile": RoleSpec("profile", "member / customer master data", _PROFILE, ("registered_at", "updated_at"),
                        one_of=(("member_id", "phone", "email"),)),
    "orders": RoleSpec("orders", "purchases: one row per order, or per line item with grain: line", _ORDERS,
                       ("ordered_at",)),
    "returns": RoleSpec("returns", "returns and refunds as their own rows, netted onto their order", _RETURNS,
                        ("returned_at",)),
    "events": RoleSpec("events", "behavioural events", _EVENTS, ("event_time",)),
    "consents": RoleSpec("consents", "consent given or withdrawn per purpose", _CONSENTS, ("consented_at",)),
    "campaign_members": RoleSpec("campaign_members", "members of past campaigns: treatment or held-out control",
                                 _CAMPAIGN_MEMBERS, ("sent_at",)),
}


# ----------------------------------------------------------------------------- event vocabulary
@dataclass(frozen=True)
class EventType:
    """One name of the canonical event vocabulary."""

    name: str
    family: str
    meaning: str
    spec: str = "Segment e-commerce v2"


#: Families of event types: how the profile and the features group them.
EVENT_FAMILIES = {
    "browsing": "site and app browsing (sessions are counted over these, the promotion, ordering and app families)",
    "promotion": "promotions seen and clicked",
    "ordering": "cart and checkout steps",
    "coupon": "coupons",
    "app": "app lifecycle",
    "email": "e-mail messages",
    "live": "live-stream rooms",
    "wechat": "WeChat official account",
    "service": "customer service",
    "account": "sign-in and sign-up",
}
_VOCAB = [
    # Segment / RudderStack e-commerce spec v2
    ("Products Searched", "browsing", "searched the catalogue"),
    ("Product List Viewed", "browsing", "viewed a product list or category page"),
    ("Product List Filtered", "browsing", "filtered a product list"),
    ("Product Clicked", "browsing", "clicked a product in a list"),
    ("Product Viewed", "browsing", "viewed a product's page"),
    ("Promotion Viewed", "promotion", "saw a promotion"),
    ("Promotion Clicked", "promotion", "clicked a promotion"),
    ("Product Added", "ordering", "added a product to the cart"),
    ("Product Removed", "ordering", "removed a product from the cart"),
    ("Cart Viewed", "ordering", "viewed the cart"),
    ("Checkout Started", "ordering", "started checkout"),
    ("Checkout Step Viewed", "ordering", "viewed a checkout step"),
    ("Checkout Step Completed", "ordering", "completed a checkout step"),
    ("Payment Info Entered", "ordering", "entered payment details"),
    ("Order Completed", "ordering", "completed an order (as an event; purchases come from the orders role)"),
    ("Order Updated", "ordering", "changed an order"),
    ("Order Refunded", "ordering", "an order was refunded (as an event)"),
    ("Order Cancelled", "ordering", "cancelled an order (as an event)"),
    ("Coupon Entered", "coupon", "typed a coupon code"),
    ("Coupon Applied", "coupon", "a coupon was applied"),
    ("Coupon Denied", "coupon", "a coupon was refused"),
    ("Coupon Removed", "coupon", "removed a coupon"),
]
_VOCAB_OTHER = [
    ("Page Viewed", "browsing", "viewed a page (Segment's page call)", "Segment page"),
    ("Signed In", "account", "signed in", "Segment B2B"),
    ("Signed Up", "account", "created an account", "Segment B2B"),
    ("Application Opened", "app", "opened the app", "Segment mobile"),
    ("Application Installed", "app", "installed the app", "Segment mobile"),
    ("Email Sent", "email", "an e-mail was sent to the person", "workbench"),
    ("Email Delivered", "email", "an e-mail was delivered", "Segment e-mail"),
    ("Email Opened", "email", "opened an e-mail", "Segment e-mail"),
    ("Email Link Clicked", "email", "clicked a link in an e-mail", "Segment e-mail"),
    ("Email Bounced", "email", "an e-mail bounced", "Segment e-mail"),
    ("Email Marked as Spam", "email", "marked an e-mail as spam", "Segment e-mail"),
    ("Unsubscribed", "email", "unsubscribed from e-mail (withdraws e-mail consent)", "Segment e-mail"),
    ("Live Stream Entered", "live", "entered a live-stream room", "workbench"),
    ("Live Stream Watched", "live", "watched a live stream (duration: seconds watched)", "workbench"),
    ("Live Stream Commented", "live", "commented in a live stream", "workbench"),
    ("Live Gift Sent", "live", "sent a gift in a live stream (value: its price)", "workbench"),
    ("Live Product Clicked", "live", "clicked a product in a live stream", "workbench"),
    ("WeChat Followed", "wechat", "followed the official account (gives WeChat consent)", "workbench"),
    ("WeChat Unfollowed", "wechat", "unfollowed the official account (withdraws WeChat consent)", "workbench"),
    ("Service Ticket Opened", "service", "contacted customer service (category, rating)", "workbench"),
]
EVENT_TYPES: dict[str, EventType] = {n: EventType(n, f, m) for n, f, m in _VOCAB}
EVENT_TYPES.update({n: EventType(n, f, m, s) for n, f, m, s in _VOCAB_OTHER})

#: Events that say something about consent: event type -> (purpose, granted).
CONSENT_EVENTS: dict[str, tuple[str, bool]] = {
    "Unsubscribed": ("email", False),
    "WeChat Unfollowed": ("wechat", False),
    "WeChat Followed": ("wechat", True),
}
#: Families whose events make up a digital session (30-minute gaps).
SESSION_FAMILIES = ("browsing", "promotion", "ordering", "coupon", "app", "account")


def event_slug(name: str) -> str:
    """Column-name form of an event type (``"Email Link Clicked"`` -> ``email_link_clicked``).

    >>> event_slug("WeChat Followed"), event_slug("Products Searched")
    ('wechat_followed', 'products_searched')
    """
    return re.sub(r"[^0-9a-z]+", "_", str(name).casefold()).strip("_")


def describe_roles() -> str:
    """The roles and their canonical fields as Markdown (for the README and ``workbench map``).

    >>> "| orders | ordered_at |" in describe_roles()
    True
    """
    rows = ["| role | field | types | required | meaning |", "|---|---|---|---|---|"]
    for role in ROLES.values():
        for name, f in role.fields.items():
            codes = f" (codes: {', '.join(f.codes)})" if f.codes else ""
            rows.append(f"| {role.name} | {name} | {', '.join(f.types)} | {'yes' if f.required else ''} | "
                        f"{f.meaning}{codes} |")
    return "\n".join(rows)

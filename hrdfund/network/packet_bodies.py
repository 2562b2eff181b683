"""The body of each kind of packet, validated whole: every key known, every value of its
type and within the limits the forms apply, or the whole packet is refused."""

import base64
import binascii
import functools
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import lazy_gettext as _l

from ..cases.categories import CATEGORY_FIELDS, CHOICE_LABELS
from ..cases.cleaning import EXTENSIONS, NAME_MAX, display_name, sniff
from ..cases.forms import LONG_MAX, STORY_MAX, TEXT_MAX
from ..cases.models import DocumentKind, Gender, Urgency
from ..core import geo
from ..core.money import CURRENCIES, smallest_unit
from ..core.support import Category
from ..reviews.models import Recommendation, RiskLevel
from ..reviews.network_check import NetworkWord
from .models import Referral

#: The kinds of packet.
REFERRAL = "referral"
ANSWER = "answer"
DUPLICATE_ASK = "duplicate-ask"
DUPLICATE_ANSWER = "duplicate-answer"
KINDS = (REFERRAL, ANSWER, DUPLICATE_ASK, DUPLICATE_ANSWER)
#: At most this many documents travel in one referral packet.
DOCUMENTS_MAX = 20
#: A duplicate-check ask carries the keyed hash of one defender, as hrdfund makes it: a
#: partner cannot probe for several names in one ask its staff import. At most this many
#: matches in its answer.
HASHES_MAX = 1
MATCHES_MAX = 50
_HEX = re.compile(r"^[0-9a-f]+$")
_AMOUNT = re.compile(r"^\d{1,12}\.\d{2}$")
#: An amount answered to a category question: whole units, or with cents.
_DETAIL_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
#: A month, YYYY-MM, of a year a date can hold (from 0001).
_MONTH = re.compile(r"^(?!0000)\d{4}-(0[1-9]|1[0-2])$")


@functools.cache
def _countries():
    """Every country code the forms offer (``geo.countries``)."""
    return frozenset(code for code, _name in geo.countries("en"))


class BodyInvalid(ValueError):
    """A body that is not valid for its kind; ``words`` say what, for the page."""

    def __init__(self, words):
        super().__init__(words)
        self.words = words


def _invalid(problem):
    return BodyInvalid(problem)


def _unb64(text, what):
    if not isinstance(text, str):
        raise _invalid(what)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(what) from None


def _keys(value, required, optional=(), what="body"):
    if not isinstance(value, dict):
        raise _invalid(_l("its parts are not those of a packet of this kind."))
    missing = set(required) - set(value)
    unknown = set(value) - set(required) - set(optional)
    if missing or unknown:
        raise _invalid(_l("its parts are not those of a packet of this kind."))
    return value


def _text(value, limit, what, required=True):
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise _invalid(_l("a text is missing or longer than this server accepts."))
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise _invalid(_l("a text holds control characters."))
    return value


def _int(value, low, high, what):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(_l("a number is outside its range."))
    return value


def _choice(value, allowed, what):
    # Every value a form offers is text: a list or an object is refused before it is
    # looked up (it cannot be hashed).
    if not isinstance(value, str) or value not in allowed:
        raise _invalid(_l("a value is not one this server knows."))
    return value


def _uid(value, what):
    if not isinstance(value, str) or not re.match(r"^[0-9a-f]{20}$", value):
        raise _invalid(_l("an identifier is not valid."))
    return value


def _amount(value):
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise _invalid(_l("the amount is not in cents."))
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _invalid(_l("the amount is not in cents.")) from None
    if amount <= 0:
        raise _invalid(_l("the amount is not above zero."))
    return amount


def _months(value):
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise _invalid(_l("the months are not a first and a last month."))
    first = _int(value[0], 1, Referral.MONTHS_MAX, "months")
    last = _int(value[1], 1, Referral.MONTHS_MAX, "months")
    if first > last:
        raise _invalid(_l("the first month is after the last."))
    return (first, last)


def _day(value, what):
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise _invalid(_l("a date is not valid.")) from None


def _detail_value(value, kind):
    """An answer to a category question, checked as the form of its kind checks it."""
    if value is None:
        return None
    if kind == "text":
        return _text(value, TEXT_MAX, kind, required=False)
    if kind == "long":
        return _text(value, LONG_MAX, kind, required=False)
    if kind == "int":
        return _int(value, 0, 1000, kind)
    if kind == "money":
        if not isinstance(value, str) or not _DETAIL_AMOUNT.match(value):
            raise _invalid(_l("the amount is not in cents."))
        return value
    if kind == "country":
        return _choice(value, _countries(), kind)
    return _choice(value, CHOICE_LABELS[kind], kind)


def _answers(value, category):
    value = _keys(
        value,
        ("defender_name", "country"),
        (
            "defender_work",
            "threat",
            "urgency_reason",
            "other_funders",
            "details",
            "region",
            "gender",
            "dependants_count",
            "dependants",
        ),
        what="answers",
    )
    out = {
        "defender_name": _text(value["defender_name"], TEXT_MAX, "name", required=False),
        "country": value["country"],
    }
    if value["country"] is not None and (
        not isinstance(value["country"], str) or value["country"] not in _countries()
    ):
        raise _invalid(_l("the country is not a country code."))
    for name in ("defender_work", "threat", "urgency_reason", "other_funders"):
        out[name] = _text(value.get(name), STORY_MAX, name, required=False)
    region = value.get("region")
    if region is not None and not isinstance(region, str):
        raise _invalid(_l("the region is not a region code."))
    # A region this server does not know (a partner's newer table) is left out: the case's
    # region follows from its country here.
    out["region"] = region if region in geo.REGIONS else None
    gender = value.get("gender")
    out["gender"] = None if gender is None else _choice(gender, {g.value for g in Gender}, "gender")
    out["dependants_count"] = _int(value.get("dependants_count", 0), 0, 1000, "dependants")
    kinds = {name: kind for name, kind, *_ in CATEGORY_FIELDS[Category(category)]}
    details = value.get("details") or {}
    if not isinstance(details, dict) or not set(details) <= set(kinds):
        raise _invalid(_l("the answers name questions this kind of support does not ask."))
    out["details"] = {k: _detail_value(v, kinds[k]) for k, v in details.items()}
    dependants = value.get("dependants") or []
    if not isinstance(dependants, list) or len(dependants) > 50:
        raise _invalid(_l("the dependants are not a list."))
    out["dependants"] = [
        {
            "age": _int(d.get("age"), 0, 120, "age"),
            "relation": _text(d.get("relation"), TEXT_MAX, "relation", required=False),
            "needs": _text(d.get("needs"), LONG_MAX, "needs", required=False),
        }
        for d in (_keys(d, ("age",), ("relation", "needs"), "dependant") for d in dependants)
    ]
    return out


def _documents(value):
    if not isinstance(value, list) or len(value) > DOCUMENTS_MAX:
        raise _invalid(_l("more documents than one packet carries."))
    limit = current_app.config["HRDFUND_MAX_DOCUMENT_BYTES"]
    kinds = {k.value for k in DocumentKind} - {DocumentKind.PROOF_OF_PAYMENT.value}
    out = []
    for item in value:
        item = _keys(item, ("kind", "name", "type", "data"), what="document")
        data = _unb64(item["data"], _l("a document is not readable."))
        if not data or len(data) > limit:
            raise _invalid(_l("a document is empty or larger than this server accepts."))
        content_type = _choice(item["type"], EXTENSIONS, "type")
        if sniff(data) != content_type:
            raise _invalid(_l("a document is not the type it says."))
        out.append(
            {
                "kind": _choice(item["kind"], kinds, "kind"),
                # Named as an upload here is named: no folders, markup or hidden
                # characters, and an extension that fits its type.
                "name": display_name(_text(item["name"], NAME_MAX, "name"), content_type),
                "type": content_type,
                "data": data,
            }
        )
    return out


def _assessment(value):
    if not isinstance(value, list) or len(value) > 20:
        raise _invalid(_l("the assessment is not a list."))
    out = []
    for item in value:
        item = _keys(item, ("risk", "recommendation", "text"), what="assessment")
        out.append(
            {
                "risk": _choice(item["risk"], {r.value for r in RiskLevel}, "risk"),
                "recommendation": _choice(
                    item["recommendation"], {r.value for r in Recommendation}, "recommendation"
                ),
                "text": _text(item["text"], STORY_MAX, "assessment", required=False),
            }
        )
    return out


def validate_referral(body):
    """A referral: what is asked (kind of support, months, amount and currency), why, by
    when, and the parts shared."""
    body = _keys(
        body,
        (
            "referral",
            "category",
            "months",
            "amount",
            "currency",
            "urgency",
            "reason",
            "answer_by",
            "shared",
            "answers",
            "documents",
            "assessment",
        ),
    )
    category = _choice(body["category"], {c.value for c in Category}, "category")
    shared = body["shared"]
    if (
        not isinstance(shared, list)
        or not all(isinstance(part, str) for part in shared)
        or not set(shared) <= {"answers", "documents", "assessment"}
    ):
        raise _invalid(_l("the parts shared are not ours."))
    if ("answers" in shared) != (body["answers"] is not None):
        raise _invalid(_l("the parts shared are not the parts carried."))
    if "documents" not in shared and body["documents"]:
        raise _invalid(_l("the parts shared are not the parts carried."))
    if "assessment" not in shared and body["assessment"]:
        raise _invalid(_l("the parts shared are not the parts carried."))
    currency = _choice(body["currency"], CURRENCIES, "currency")
    amount = _amount(body["amount"])
    if amount != amount.quantize(smallest_unit(currency)):
        raise _invalid(_l("the amount has cents its currency does not have."))
    return {
        "referral": _uid(body["referral"], "referral"),
        "category": category,
        "months": _months(body["months"]),
        "amount": amount,
        "currency": currency,
        "urgency": _choice(body["urgency"], {u.value for u in Urgency}, "urgency"),
        "reason": _text(body["reason"], LONG_MAX, "reason").strip(),
        "answer_by": _day(body["answer_by"], "answer_by"),
        "shared": sorted(set(shared)),
        "answers": None if body["answers"] is None else _answers(body["answers"], category),
        "documents": _documents(body["documents"]),
        "assessment": _assessment(body["assessment"]),
    }


ANSWER_STATES = ("accepted", "declined", "supported")


def validate_answer(body):
    """The answer to a referral: accepted, declined with a reason, or the months supported."""
    body = _keys(body, ("referral", "status", "reason", "months"))
    status = _choice(body["status"], ANSWER_STATES, "status")
    reason = _text(body["reason"], LONG_MAX, "reason", required=status == "declined")
    months = _months(body["months"])
    # A part asked without months is supported without them.
    if months is not None and status != "supported":
        raise _invalid(_l("the months supported come with a support answer only."))
    return {
        "referral": _uid(body["referral"], "referral"),
        "status": status,
        "reason": reason.strip() if reason else None,
        "months": months,
    }


def validate_ask(body):
    """A duplicate check: keyed hashes only, a kind of support, the month it asks from."""
    body = _keys(body, ("ask", "hashes", "category", "since"))
    hashes = body["hashes"]
    if (
        not isinstance(hashes, list)
        or not 1 <= len(hashes) <= HASHES_MAX
        or not all(isinstance(h, str) and len(h) == 64 and _HEX.match(h) for h in hashes)
    ):
        raise _invalid(_l("the keyed hashes are not hashes."))
    if not isinstance(body["since"], str) or not _MONTH.match(body["since"]):
        raise _invalid(_l("the period is not a month."))
    return {
        "ask": _uid(body["ask"], "ask"),
        "hashes": hashes,
        "category": _choice(body["category"], {c.value for c in Category}, "category"),
        "since": body["since"],
    }


def validate_duplicate_answer(body):
    """The answer to a duplicate check: for each case found, one word and a month."""
    body = _keys(body, ("ask", "matches"))
    matches = body["matches"]
    if not isinstance(matches, list) or len(matches) > MATCHES_MAX:
        raise _invalid(_l("the answer is not a list of matches."))
    out = []
    for item in matches:
        item = _keys(item, ("word", "month"), what="match")
        if not isinstance(item["month"], str) or not _MONTH.match(item["month"]):
            raise _invalid(_l("the period is not a month."))
        out.append(
            {
                "word": _choice(item["word"], {w.value for w in NetworkWord}, "word"),
                "month": item["month"],
            }
        )
    return {"ask": _uid(body["ask"], "ask"), "matches": out}


VALIDATORS = {
    REFERRAL: validate_referral,
    ANSWER: validate_answer,
    DUPLICATE_ASK: validate_ask,
    DUPLICATE_ANSWER: validate_duplicate_answer,
}

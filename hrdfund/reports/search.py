"""Finding a case from what staff have at hand: its short code, its long code, a payment's
reference or code, or the defender's name.

Nothing is searched in clear: a payment reference is matched through its keyed hash
(``ledger.models.reference_key``), a name through the keyed hash of the name and country
the case keeps (``cases.services.defender_key``, the same the duplicate check uses), so a
name is found only as a whole, whatever its case, accents or spacing, and never by a part
of it. Only the cases the reader may open are looked at (``cases.access.visible_cases``:
their fund, no declared conflict, finance from approval on); a name is looked for only
for reviewers and managers, who see the names of their cases, and each such search is an
entry in the fund's audit chain that says who searched and how many cases came back,
never the name.
"""

import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import audit
from ..cases.access import REVIEW_ROLES, visible_cases
from ..cases.codes import PREFIX, parse_code
from ..cases.models import Application
from ..cases.models import ApplicationStatus as S
from ..cases.services import defender_key
from ..core import geo
from ..core.extensions import db
from ..grants.models import Grant
from ..ledger.models import Disbursement, reference_key

#: What staff may type, at most; more is no code, reference or name.
TERM_MAX = 200
#: At most this many cases or payments are listed for one search.
LIMIT = 50
_UID = re.compile(r"^[0-9a-f]{20}$")
#: A case's code without its fund: the year's two figures and the number ("26-0103",
#: "26 103"), or the number alone ("103", "0103").
_SHORT = re.compile(r"^(?:(?P<year>\d{2})[\s-]+)?(?P<number>\d{1,6})$")


class Kind:
    CODE = "code"
    UID = "uid"
    REFERENCE = "reference"
    NAME = "name"


@dataclass
class Found:
    """What a search came to: the kind of term it read, the cases (rows of uid, code,
    category, status, submitted_at) and the payments (rows of payment uid, paid_on, case
    uid, case code) it found."""

    kind: str | None = None
    cases: list = field(default_factory=list)
    payments: list = field(default_factory=list)

    @property
    def count(self):
        return len(self.cases) + len(self.payments)


def _case_columns():
    return sa.select(
        Application.uid,
        Application.code,
        Application.category,
        Application.status,
        Application.submitted_at,
    )


def _cases(user, *where):
    return db.session.execute(
        _case_columns()
        .where(visible_cases(user), Application.status != S.DRAFT, *where)
        .order_by(Application.submitted_at.desc(), Application.id.desc())
        .limit(LIMIT)
    ).all()


def _payments(user, *where):
    return db.session.execute(
        sa.select(
            Disbursement.uid,
            Disbursement.paid_on,
            Application.uid.label("case_uid"),
            Application.code.label("case_code"),
        )
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(visible_cases(user), *where)
        .order_by(Disbursement.paid_on.desc(), Disbursement.id.desc())
        .limit(LIMIT)
    ).all()


def _references(user, term):
    """The payments (not reversals) whose reference is ``term``."""
    return _payments(
        user,
        Disbursement.reference_key == reference_key(term),
        Disbursement.reversal_of_id.is_(None),
    )


def name_keys(name, country=None):
    """The keys a case of the defender ``name`` would keep: in ``country``, or, with none
    given, in any country the form offers or none."""
    if country:
        return [defender_key(name, country)]
    return [defender_key(name, None)] + [defender_key(name, code) for code, _ in geo.countries()]


def may_search_names(user):
    """Whether ``user`` sees the names of their cases, and so may look one up."""
    return user.role in REVIEW_ROLES


def find(user, term, country=None):
    """What ``term`` names among what ``user`` may open (see the module): a :class:`Found`,
    empty when nothing is."""
    term = (term or "").strip()
    if not term or len(term) > TERM_MAX:
        return Found()
    code = parse_code(term)
    if code is not None:
        return Found(Kind.CODE, cases=_cases(user, Application.code == code))
    short = _SHORT.match(term)
    if short is not None and user.fund_id is not None and int(short["number"]) > 0:
        # The code said aloud, the fund's own: "26-0103" or "26 103", or "103" of any year;
        # a figure alone may be a payment's reference too.
        number = int(short["number"])
        year = f"{int(short['year']):02d}" if short["year"] else "__"
        pattern = f"{PREFIX}{user.fund_id}-{year}-{number:04d}"
        payments = [] if short["year"] else _references(user, term)
        return Found(
            Kind.CODE, cases=_cases(user, Application.code.like(pattern)), payments=payments
        )
    if _UID.match(term.lower()):
        uid = term.lower()
        return Found(
            Kind.UID,
            cases=_cases(user, Application.uid == uid),
            payments=_payments(user, Disbursement.uid == uid),
        )
    payments = _references(user, term)
    # A name has no digits: a term with one was a code or a reference, and no name search.
    if payments or not may_search_names(user) or any(c.isdigit() for c in term):
        return Found(Kind.REFERENCE, payments=payments)
    keys = name_keys(term, country)
    return Found(Kind.NAME, cases=_cases(user, Application.defender_key.in_(keys)))


def record_name_search(actor, found):
    """Audit a search by name in the reader's fund: who, and how many cases came back."""
    return audit.record(
        "search.name",
        actor=actor,
        fund=actor.fund_id,
        object_type="searches",
        object_id="name",
        found=found.count,
    )

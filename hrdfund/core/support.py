"""The kinds of protection support a fund gives: the words cases, pools, reports and
staff pages share when they name what money is for."""

import enum

from flask_babel import lazy_gettext as _l


class Category(enum.StrEnum):
    LONGER_TERM = "longer_term"
    RELOCATION = "relocation"
    MEDICAL = "medical"
    DEPENDANTS = "dependants"
    LEGAL = "legal"
    PRISON_VISITS = "prison_visits"
    TRIAL_MONITORING = "trial_monitoring"
    PHYSICAL_SECURITY = "physical_security"
    DIGITAL_SECURITY = "digital_security"
    HUMANITARIAN = "humanitarian"
    OTHER = "other"


#: What each kind of support is called on every page.
CATEGORY_LABELS = {
    Category.LONGER_TERM: _l("Longer-term support"),
    Category.RELOCATION: _l("Relocation"),
    Category.MEDICAL: _l("Medical costs"),
    Category.DEPENDANTS: _l("Dependants' costs"),
    Category.LEGAL: _l("Legal fees"),
    Category.PRISON_VISITS: _l("Prison visits"),
    Category.TRIAL_MONITORING: _l("Trial monitoring"),
    Category.PHYSICAL_SECURITY: _l("Physical security"),
    Category.DIGITAL_SECURITY: _l("Digital security and equipment"),
    Category.HUMANITARIAN: _l("Humanitarian or subsistence costs"),
    Category.OTHER: _l("Other"),
}

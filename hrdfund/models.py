"""Imports every feature's models so the metadata knows every table (migrations, tests)."""

from .alerts.models import Alert  # noqa: F401
from .applications.models import (  # noqa: F401
    Application,
    BudgetLine,
    Consent,
    Dependant,
    Document,
    Message,
    Reference,
    StatusChange,
    Story,
    UseOfFundsReport,
)
from .applications.review_models import (  # noqa: F401
    CaseNote,
    Cofunding,
    ConflictDeclaration,
    Decision,
    Review,
)
from .audit.models import AuditEvent  # noqa: F401
from .auth.models import (  # noqa: F401
    Fund,
    PartnerOrganisation,
    PasswordCheckBudget,
    RecoveryCode,
    SignInLimit,
    User,
)
from .disbursements.models import (  # noqa: F401
    Delivery,
    Disbursement,
    HeldPayment,
    Receipt,
    StatementImport,
)
from .grants.models import Allocation, Grant, Instalment, PaymentPlan, Release  # noqa: F401
from .pools.models import Contribution, Donor, ExchangeRate, Pool, PoolRestriction  # noqa: F401
from .reports.models import IssuedFigures  # noqa: F401

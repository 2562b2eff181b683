"""Imports every feature's models so the metadata knows every table (migrations, tests),
then installs the audit chains' appends at the commit, the ledger's seals and no-edit
rules on them, the pools' money by day kept
as ledger rows are written, and the open items staff chase kept as they open and close:
the one place they are registered, before anything writes a row or creates the tables."""

from . import audit
from .alerts.models import Alert  # noqa: F401
from .audit.models import AuditEvent  # noqa: F401
from .auth.models import (  # noqa: F401
    Fund,
    Invitation,
    PartnerOrganisation,
    PasswordCheckBudget,
    RecoveryCode,
    SignInLimit,
    User,
)
from .directory.models import DirectoryEntry  # noqa: F401
from .disbursements import open_items
from .disbursements.models import HeldPayment, StatementImport  # noqa: F401
from .grants.models import Grant, Instalment, PaymentPlan  # noqa: F401
from .ledger import daily, seals
from .ledger.models import (  # noqa: F401
    Allocation,
    Contribution,
    Delivery,
    Disbursement,
    ReceiptAnswer,
    ReceiptResolution,
    Release,
)
from .network.models import FundKey, ImportedPacket, Referral  # noqa: F401
from .pools.models import Donor, ExchangeRate, Pool, PoolRestriction  # noqa: F401
from .reports.models import IssuedFigures, VarianceNote  # noqa: F401

audit.install()
seals.install()
daily.install()
open_items.install()

"""The approval form: an amount, and the pools it is drawn from."""

from flask_babel import lazy_gettext as _l
from wtforms import DecimalField, FieldList, Form, FormField, SelectField
from wtforms.validators import DataRequired, Optional

from ..applications.forms import POSITIVE
from ..applications.review_forms import PrefixedForm

#: Pools one approval can draw on; more is rare and can be done as a second grant.
DRAW_ROWS = 3


class DrawForm(Form):
    pool = SelectField(_l("Pool"), validate_choice=False)
    amount = DecimalField(_l("Amount from this pool"), [Optional(), POSITIVE], places=2)


class ApproveForm(PrefixedForm):
    PREFIX = "approve"

    amount = DecimalField(
        _l("Amount approved"), [DataRequired(_l("Enter the amount approved.")), POSITIVE], places=2
    )
    draws = FieldList(FormField(DrawForm), min_entries=DRAW_ROWS, max_entries=DRAW_ROWS)

"""A fund's outbox, for its admin: whether alerts and notices go out, counted (never what
they say nor whom they are for), and another round for those the mail server refused
too often."""

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from ..alerts import notices, outbox
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases import alerts
from ..core.forms import ConfirmForm
from ..core.work import perform
from . import bp


@bp.get("/fund/outbox")
@role_required(Role.ADMIN)
def outbox_page():
    """The alerts on the fund's cases: waiting, sent this week, given up; and what stops
    them going out, when something does."""
    return render_template(
        "network/outbox.html",
        box=alerts.fund_outbox(current_user.fund_id),
        mail_configured=outbox.mail_configured(),
        held_back=notices.held_back_by_settings(current_user.fund_id),
        max_attempts=outbox.MAX_ATTEMPTS,
        form=ConfirmForm(),
    )


@bp.post("/fund/outbox/try-again")
@role_required(Role.ADMIN)
def try_again():
    """The alerts the mail server refused too often, tried again at the next sending."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    count = perform(
        alerts.try_again, current_user._get_current_object(), current_user.fund_id
    ).value
    if count:
        flash(
            ngettext(
                "%(num)d alert will be tried again at the next sending.",
                "%(num)d alerts will be tried again at the next sending.",
                count,
            ),
            "info",
        )
    else:
        flash(_("No alert was given up: there is nothing to try again."), "info")
    return redirect(url_for("network.outbox_page"))

"""The network report as CSV, for a fund's managers: the same figures as its page, one
line per other fund and per kind of support, referrals made and received apart, then the
fund's own cases another fund took a part of. Headings and words in the reader's language,
figures in plain digits; a cell a spreadsheet could run as a formula is neutralised."""

import csv
import io

from flask_babel import gettext as _

from ..core.support import CATEGORY_LABELS
from ..network.models import ReferralStatus
from .anonymise import csv_safe


def columns():
    """The headings, in the reader's language."""
    return (
        _("Section"),
        _("Made or received"),
        _("Other fund or kind of support"),
        _("Referrals"),
        _("Referrals accepted"),
        _("Referrals declined"),
        _("Referrals withdrawn"),
        _("Referrals still waiting"),
        _("Median hours to an answer"),
        _("Months of support accepted"),
        _("Months in the accepting fund's plan"),
        _("Case"),
    )


def _line(section, direction, label, counts):
    median = counts.median_hours
    return (
        section,
        direction,
        label,
        counts.referrals,
        counts.states[ReferralStatus.ACCEPTED],
        counts.states[ReferralStatus.DECLINED],
        counts.states[ReferralStatus.WITHDRAWN],
        counts.states[ReferralStatus.PENDING],
        "" if median is None else median,
        counts.months_accepted,
        counts.months_planned,
        "",
    )


def render_network_csv(report):
    """CSV text of :func:`~.network.fund_report`'s figures."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns())
    lines = []
    made, received = _("Made by your fund"), _("Received by your fund")
    for direction, side in ((made, report["made"]), (received, report["received"])):
        lines.append(_line(_("Total"), direction, "", side.total))
        lines += [_line(_("By fund"), direction, name, c) for name, c in side.funds()]
        lines += [
            _line(_("By kind of support"), direction, str(CATEGORY_LABELS[category]), c)
            for category, c in side.categories()
        ]
    section = _("Cases another fund took a part of")
    lines.append((section, made, "", report["gap_cases"], *[""] * 8))
    for gap in report["gaps"]:
        months = gap["months_to"] - gap["months_from"] + 1 if gap["months_from"] is not None else ""
        label = str(CATEGORY_LABELS[gap["category"]])
        lines.append(
            (section, made, f"{gap['fund']} · {label}", 1, 1, 0, 0, 0, "")
            + (months, gap["months_planned"], gap["case"])
        )
    for line in lines:
        writer.writerow(csv_safe(value) for value in line)
    return out.getvalue()

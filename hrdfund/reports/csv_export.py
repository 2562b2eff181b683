"""The donor report's line items as CSV: one row per grant paid in the period whose
defender agreed that donors may see the case, under the donor's own code, with the same
anonymisation as the PDF; the other grants in one line; a total line. Headings and words in
the language the report is issued in (the donor's), figures in plain digits for a spreadsheet."""

import csv
import io

from flask_babel import gettext as _

from . import anonymise
from .pdf_kit import place_label, row_label, why_hidden


def columns():
    """The headings, in the language the report is issued in."""
    return (
        _("Grant code"),
        _("Grants"),
        _("Kind of support"),
        _("Place"),
        _("Committed to the grant by the period's end"),
        _("Paid in the period"),
        _("Currency"),
    )


def render_csv(report):
    """CSV text: a header, one line per listed grant, one line for the grants not listed
    (their number shown from 5 only, and only where the period's number of grants is;
    where no grant is listed, what they had committed hidden), a line with the totals:
    the period's payments less reversals as recorded by its end;
    last, how many of the period's defenders other funds supported too (shown from 5, as
    the other counts are; no fund named). For a period that has not ended, one line
    saying so and the total of the account's payments less reversals so far."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns())
    total = row_label("", "total")
    if not report["ended"]:
        s = report["summary"]
        paid = s["disbursements"] - s["reversals"]
        writer.writerow((_("Period not ended"), "", "", "", "", "", report["currency"]))
        writer.writerow(
            anonymise.csv_safe(v)
            for v in (total, "", "", "", "", f"{paid:.2f}", report["currency"])
        )
        return out.getvalue()
    paid = committed = 0
    for item in report["items"]:
        writer.writerow(
            anonymise.csv_safe(v)
            for v in (
                item["code"],
                1,
                row_label("category", item["category"]),
                place_label(item["place"]),
                item["committed"],
                item["paid"],
                report["currency"],
            )
        )
        paid += item["paid"]
        committed += item["committed"]
    others = report["unlisted"]
    # A period that lists no line hides what its grants had committed (see line_items).
    hidden = others["committed"] is None
    writer.writerow(
        anonymise.csv_safe(v)
        for v in (
            _("Not listed"),
            _count(others["count"]),
            "",
            "",
            why_hidden(anonymise.SECONDARY) if hidden else f"{others['committed']:.2f}",
            f"{others['paid']:.2f}",
            report["currency"],
        )
    )
    paid += others["paid"]
    committed = (
        why_hidden(anonymise.SECONDARY) if hidden else f"{committed + others['committed']:.2f}"
    )
    writer.writerow(
        anonymise.csv_safe(v)
        for v in (total, "", "", "", committed, f"{paid:.2f}", report["currency"])
    )
    cell = report.get("other_funds")
    if cell is not None:
        writer.writerow(
            anonymise.csv_safe(v) for v in (other_funds_label(), _count(cell), "", "", "", "", "")
        )
    return out.getvalue()


def other_funds_label():
    """The label of the line on defenders other funds supported too."""
    return _("Defenders also supported by other funds")


def _count(cell):
    """A count, or why it is not shown."""
    if cell.shown:
        return cell.value
    return why_hidden(cell.hidden)

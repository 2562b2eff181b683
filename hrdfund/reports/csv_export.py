"""The donor report's line items as CSV: one row per grant paid in the period, under the
donor's own code, with the same anonymisation as the PDF."""

import csv
import io

from . import anonymise

COLUMNS = ("grant_code", "category", "place", "committed", "paid_in_period", "currency")


def render_csv(report):
    """CSV text: a header, one line per grant, and a closing line with the totals, which
    equal the report's disbursements less reversals of the period."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    paid = committed = 0
    for item in report["items"]:
        writer.writerow(
            anonymise.csv_safe(v)
            for v in (
                item["code"],
                item["category"],
                item["place"],
                item["committed"],
                item["paid"],
                report["currency"],
            )
        )
        paid += item["paid"]
        committed += item["committed"]
    writer.writerow(
        anonymise.csv_safe(v)
        for v in ("total", "", "", f"{committed:.2f}", f"{paid:.2f}", report["currency"])
    )
    return out.getvalue()

"""The donor report as a PDF (ReportLab): cover, the pool's account, budget against actual,
breakdowns as tables and charts, timeliness, outcomes and stories; on every page when it
was generated and page x of y; on the last, the digest of the report's data.

Everything shown comes from the report built by ``data.build_report``, already through the
anonymisation rules. The PDF's metadata names no one.
"""

import io
import os
from datetime import timedelta

from babel.numbers import format_currency
from flask_babel import format_decimal
from flask_babel import gettext as _
from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from ..core.money import format_money
from ..core.support import CATEGORY_LABELS, Category
from . import anonymise
from .data import VARIANCE_FLAG

_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
_FONTS = {}


def _fonts():
    """DejaVu when the system has it (every script a fund's names use), else Helvetica."""
    if not _FONTS:
        regular = os.path.join(_FONT_DIR, "DejaVuSans.ttf")
        bold = os.path.join(_FONT_DIR, "DejaVuSans-Bold.ttf")
        if os.path.exists(regular) and os.path.exists(bold):
            pdfmetrics.registerFont(TTFont("ReportSans", regular))
            pdfmetrics.registerFont(TTFont("ReportSans-Bold", bold))
            _FONTS.update(regular="ReportSans", bold="ReportSans-Bold")
        else:
            _FONTS.update(regular="Helvetica", bold="Helvetica-Bold")
    return _FONTS


def _styles():
    fonts = _fonts()
    sheet = getSampleStyleSheet()
    base = ParagraphStyle("base", parent=sheet["Normal"], fontName=fonts["regular"], fontSize=9.5)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, textColor=colors.grey),
        "title": ParagraphStyle(
            "title", parent=base, fontName=fonts["bold"], fontSize=20, leading=26
        ),
        "h2": ParagraphStyle(
            "h2", parent=base, fontName=fonts["bold"], fontSize=13, leading=17, spaceBefore=10
        ),
        "h3": ParagraphStyle(
            "h3", parent=base, fontName=fonts["bold"], fontSize=10.5, leading=14, spaceBefore=6
        ),
    }


def _label(dimension, value):
    """A breakdown row's label as a donor reads it."""
    if value == "total":
        return _("Total")
    if value == anonymise.NOT_SHOWN:
        return _("Not shown")
    if dimension == "category":
        return str(CATEGORY_LABELS[Category(value)])
    if dimension == "gender":
        return {
            "woman": _("Women"),
            "man": _("Men"),
            "non_binary": _("Non-binary"),
            "undisclosed": _("Not said"),
        }[value]
    return value


def _why(hidden):
    """Why a figure is not shown, as a donor reads it."""
    return _("fewer than 5") if hidden == anonymise.SMALL else _("hidden")


def _cell(cell, currency=None):
    """A figure, or why it is not shown."""
    if not cell.shown:
        return _why(cell.hidden)
    if currency:
        return _whole(cell.value, currency)
    return format_decimal(cell.value)


def _whole(value, currency):
    """A rounded amount: currency sign, whole units."""
    return format_currency(value, currency, format="¤#,##0", currency_digits=False, locale="en")


def _table(data, widths, numeric_from=1, total=True):
    fonts = _fonts()
    style = [
        ("FONT", (0, 0), (-1, -1), fonts["regular"], 8.5),
        ("FONT", (0, 0), (-1, 0), fonts["bold"], 8.5),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f2f2")]),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if total:
        style += [
            ("FONT", (0, -1), (-1, -1), fonts["bold"], 8.5),
            ("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.black),
        ]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle(style))
    return table


def _less(value):
    """A figure taken away, with its minus sign (and no minus on nothing)."""
    return 0 - value


def _summary(report, styles):
    """The pool's account as sums that add up as printed: each term with its sign."""
    c, s = report["currency"], report["summary"]

    def block(title, rows):
        return _table(
            [[title, c]] + [[label, format_money(v, c)] for label, v in rows], [110 * mm, 50 * mm]
        )

    money = block(
        _("The pool's account"),
        [
            (_("Opening balance"), s["opening_balance"]),
            (_("Contributions received"), s["contributions"]),
            (_("Contributions taken back"), _less(s["contributions_reversed"])),
            (_("Disbursements"), _less(s["disbursements"])),
            (_("Reversals of disbursements"), s["reversals"]),
            (_("Transfer fees"), _less(s["fees"])),
            (_("Exchange differences"), _less(s["exchange_differences"])),
            (_("Closing balance"), s["closing_balance"]),
        ],
    )
    available = block(
        _("At the end of the period"),
        [
            (_("Closing balance"), s["closing_balance"]),
            (_("Committed to grants, not yet paid"), _less(s["committed_unpaid"])),
            (_("Available for new grants"), s["available"]),
        ],
    )
    commitments = _table(
        [[_("Commitments to grants in the period"), c]]
        + [
            [_("Committed in the period"), format_money(s["commitments"], c)],
            [_("Released back to the pool"), format_money(s["releases"], c)],
        ],
        [110 * mm, 50 * mm],
        total=False,
    )
    p = report["position"]
    position = block(
        _("Since the pool opened, at the end of the period"),
        [
            (_("Received"), p["received"]),
            (_("Committed to grants"), _less(p["committed"])),
            (_("Fees"), _less(p["fees"])),
            (_("Exchange differences"), _less(p["exchange_differences"])),
            (_("Available"), p["available"]),
        ],
    )
    committed = block(
        _("What was committed to grants, at the end of the period"),
        [
            (_("Disbursed"), p["disbursed"]),
            (_("Not yet paid"), p["outstanding"]),
            (_("Committed to grants"), p["committed"]),
        ],
    )
    return [
        Paragraph(_("Financial summary"), styles["h2"]),
        Paragraph(
            _(
                "In %(currency)s, to the cent. Each figure has the sign it has in its sum:"
                " the last line of each table is the sum of the lines above it. Fees and"
                " exchange differences are costs of the pool shown apart from the money"
                " that reached grants.",
                currency=c,
            ),
            styles["body"],
        ),
        Spacer(1, 4),
        money,
        Spacer(1, 8),
        available,
        Spacer(1, 8),
        commitments,
        Spacer(1, 8),
        position,
        Spacer(1, 8),
        committed,
    ]


def _budget(report, styles):
    c = report["currency"]
    data = [[_("Category"), _("Grants"), _("Committed"), _("Paid"), _("Variance"), "%"]]
    for line in report["budget"]:
        percent = "" if line["percent"] is None else f"{line['percent']}%"
        if line["flagged"]:
            percent += " !"
        data.append(
            [
                _label("category", line["label"]),
                _cell(line["grants"]),
                _cell(line["budget"], c),
                _cell(line["actual"], c),
                "" if line["variance"] is None else _whole(line["variance"], c),
                percent,
            ]
        )
    return [
        Paragraph(_("Budget against actual"), styles["h2"]),
        Paragraph(
            _(
                "Grants this pool committed to in the period, by category: what was committed"
                " and what has been paid. Variances of %(pct)s%% or more are marked with !.",
                pct=int(VARIANCE_FLAG * 100),
            ),
            styles["body"],
        ),
        Spacer(1, 4),
        _table(data, [62 * mm, 16 * mm, 28 * mm, 28 * mm, 26 * mm, 16 * mm]),
    ]


def _chart(table, currency, horizontal):
    """Amounts of the shown rows of a breakdown as a bar chart."""
    rows = [r for r in table.rows if r.cells["amount"].shown]
    drawing = Drawing(170 * mm, 60 * mm if horizontal else 55 * mm)
    if not rows:
        return None
    chart = HorizontalBarChart() if horizontal else VerticalBarChart()
    chart.x, chart.y = (55 * mm, 5 * mm) if horizontal else (15 * mm, 12 * mm)
    chart.width = 105 * mm if horizontal else 150 * mm
    chart.height = 50 * mm if horizontal else 38 * mm
    chart.data = [[float(r.cells["amount"].value) for r in rows]]
    chart.categoryAxis.categoryNames = [_label(table.dimension, r.label)[:28] for r in rows]
    chart.categoryAxis.labels.fontName = _fonts()["regular"]
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = _fonts()["regular"]
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.bars[0].fillColor = colors.HexColor("#3b6ea5")
    if not horizontal:
        chart.categoryAxis.labels.angle = 30
        chart.categoryAxis.labels.boxAnchor = "ne"
    drawing.add(chart)
    return drawing


def _counted(report):
    """From the account's payments to what the figures about people count, to the cent."""
    c, n = report["currency"], report["counted"]
    return _table(
        [
            [_("Payments counted below"), c],
            [_("Disbursements less reversals, in the account"), format_money(n["account"], c)],
            [
                _("Recorded after the period ended: counted in the month recorded"),
                format_money(_less(n["recorded_after"]), c),
            ],
            [
                _("Recorded in the period, dated before it"),
                format_money(n["recorded_before"], c),
            ],
            [_("Counted below"), format_money(n["counted"], c)],
        ],
        [110 * mm, 50 * mm],
    )


def _not_yet(report, styles):
    """For a period that has not ended: what comes when it has."""
    return [
        Paragraph(_("Who the pool supported"), styles["h2"]),
        Paragraph(
            _(
                "This period has not ended: this report shows the pool's account so far."
                " Who the pool supported, budget against actual, timeliness and outcomes,"
                " and the CSV's lines come in the reports of this period once it has ended,"
                " on %(day)s; from then on every copy shows the same figures.",
                day=report["period_end"].isoformat(),
            ),
            styles["body"],
        ),
    ]


def _breakdowns(report, styles):
    c = report["currency"]
    titles = {
        "category": _("By category"),
        "region": _("By region"),
        "gender": _("By gender"),
        "month": _("By month of payment"),
    }
    parts = [
        PageBreak(),
        Paragraph(_("Who the pool supported"), styles["h2"]),
        Paragraph(
            _(
                "Grants paid in the period, net of reversals. Defenders and their dependants"
                " are counted apart. Counts under 5 show as \u201cfewer than 5\u201d, and"
                " other figures are hidden where they would reveal one, in this report or"
                " beside the reports of the other years, quarters and months. Amounts are"
                " rounded to whole units. These figures were issued once the period ended"
                " and every copy of this report shows the same: they count what was"
                " recorded by the end of the period, and a payment or reversal recorded"
                " later counts in the month it was recorded."
            ),
            styles["body"],
        ),
        Spacer(1, 4),
        _counted(report),
    ]
    for name, table in report["breakdowns"].items():
        data = [[titles[name], _("Grants"), _("Defenders"), _("Dependants"), _("Amount")]]
        for row in table.rows + [table.total]:
            data.append(
                [
                    _label(name, row.label),
                    _cell(row.cells["grants"]),
                    _cell(row.cells["defenders"]),
                    _cell(row.cells["dependants"]),
                    _cell(row.cells["amount"], c),
                ]
            )
        block = [
            Paragraph(titles[name], styles["h3"]),
            _table(data, [66 * mm, 22 * mm, 24 * mm, 24 * mm, 34 * mm]),
        ]
        if not table.broken_down:
            block.append(
                Paragraph(
                    _("Fewer than 5 grants were paid in the period: no breakdown."),
                    styles["small"],
                )
            )
        chart = _chart(table, c, horizontal=name != "month")
        if chart is not None and name in ("category", "month"):
            block.append(chart)
        parts.append(KeepTogether(block))
    return parts


def _timeliness(report, styles):
    t = report["timeliness"]
    data = [[_("Hours"), _("Cases"), _("Median"), _("90th percentile"), _("Target"), _("Within")]]
    for label, m in (
        (_("From submission to decision"), t["decision"]),
        (_("From decision to first payment"), t["payment"]),
    ):
        if m["shown"]:
            data.append([label, m["cases"], m["median"], m["p90"], m["target"], f"{m['within']}%"])
        else:
            data.append([label, _why(m["hidden"]), "", "", "", ""])
    o = report["outcomes"]
    outcome_rows = [[_("From the applicants' reports"), _("Answers"), _("Share")]]
    for label, m in (
        (_("Felt safer"), o["felt_safer"]),
        (_("Could continue their work"), o["continued_work"]),
    ):
        outcome_rows.append(
            [
                label,
                m["answers"] if m["shown"] else _why(m["hidden"]),
                f"{m['percent']}%" if m["shown"] else "",
            ]
        )
    return [
        Paragraph(_("Timeliness"), styles["h2"]),
        Paragraph(
            _("For the grants this pool committed to in the period, against the fund's targets."),
            styles["body"],
        ),
        Spacer(1, 4),
        _table(data, [62 * mm, 18 * mm, 20 * mm, 28 * mm, 18 * mm, 18 * mm], total=False),
        Paragraph(_("Outcomes"), styles["h2"]),
        _table(outcome_rows, [100 * mm, 30 * mm, 30 * mm], total=False),
    ]


def _stories(report, styles):
    if not report["stories"]:
        return []
    parts = [
        Paragraph(_("Stories"), styles["h2"]),
        Paragraph(
            _(
                "Written and approved by the fund for you, with the defenders' consent, and"
                " changed so that no one can be recognised."
            ),
            styles["small"],
        ),
    ]
    for text in report["stories"]:
        parts += [Spacer(1, 4), Paragraph(_escape(text), styles["body"])]
    return parts


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cover(report, styles):
    return [
        Spacer(1, 50 * mm),
        Paragraph(_escape(report["fund"]), styles["h2"]),
        Paragraph(_("Report to %(donor)s", donor=_escape(report["donor"])), styles["title"]),
        Spacer(1, 6),
        Paragraph(_("Pool: %(pool)s", pool=_escape(report["pool"])), styles["h3"]),
        Paragraph(
            _(
                "Period: %(period)s (%(start)s to %(end)s)",
                period=report["period"],
                start=report["period_start"].isoformat(),
                end=(report["period_end"] - timedelta(days=1)).isoformat(),
            ),
            styles["body"],
        ),
        Paragraph(_("Currency: %(currency)s", currency=report["currency"]), styles["body"]),
        Spacer(1, 20 * mm),
        Paragraph(
            _(
                "This report counts every unit of the pool's money and names no one. Figures"
                " about people are aggregates, with small counts suppressed."
            ),
            styles["small"],
        ),
        PageBreak(),
    ]


def _footer_canvas(generated):
    """A canvas class that writes 'generated at, page x of y' on each page once it knows y."""

    class FooterCanvas(canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802 (ReportLab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(_fonts()["regular"], 7.5)
                self.setFillColor(colors.grey)
                self.drawString(18 * mm, 10 * mm, _("Generated at %(at)s UTC", at=generated))
                self.drawRightString(
                    A4[0] - 18 * mm,
                    10 * mm,
                    _("Page %(page)d of %(pages)d", page=number, pages=total),
                )
                super().showPage()
            super().save()

    return FooterCanvas


def render_pdf(report):
    """The report as PDF bytes."""
    styles = _styles()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=_("Donor report"),
        author="",
        subject="",
        creator="",
        producer="",
        keywords=[],
        lang="en",
    )
    if report["ended"]:
        people = _budget(report, styles) + _breakdowns(report, styles) + _timeliness(report, styles)
    else:
        people = _not_yet(report, styles)
    story = (
        _cover(report, styles)
        + _summary(report, styles)
        + people
        + _stories(report, styles)
        + [
            Spacer(1, 10),
            Paragraph(_("Checking this copy"), styles["h3"]),
            Paragraph(
                _(
                    "SHA-256 digest of this report's data: %(digest)s. The fund can rebuild"
                    " the report and compare.",
                    digest=report["digest"],
                ),
                styles["small"],
            ),
        ]
    )
    generated = report["generated_at"].strftime("%Y-%m-%d %H:%M")
    document.build(story, canvasmaker=_footer_canvas(generated))
    return buffer.getvalue()

"""The donor report as a PDF (ReportLab): cover, the pool's account, budget against actual,
breakdowns as tables and charts, timeliness, outcomes and stories; on every page when it
was generated and page x of y; on the last, the digest of the report's data.

Everything shown comes from the report built by ``data.build_report``, already through the
anonymisation rules. The PDF's metadata names no one.
"""

import io
from datetime import timedelta

from flask_babel import format_decimal, get_locale, pgettext
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer

from ..core import times
from ..core.money import money_words
from .data import VARIANCE_FLAG
from .pdf_kit import (
    bar_chart,
    days,
    escape_text,
    figures_table,
    footer_canvas,
    less,
    paragraph_styles,
    percent_words,
    rolled_note,
    row_label,
    shown_figure,
    whole_units,
    why_hidden,
)
from .periods import parse_period, period_name


def _summary(report, styles):
    """The pool's account as sums that add up as printed: each term with its sign."""
    return [
        Paragraph(_("Financial summary"), styles["h2"]),
        Paragraph(
            _(
                "In %(currency)s, to the cent. Each figure has the sign it has in its sum:"
                " the last line of each table is the sum of the lines above it. Fees and"
                " exchange differences are costs of the pool shown apart from the money"
                " that reached grants.",
                currency=report["currency"],
            ),
            styles["body"],
        ),
        Spacer(1, 4),
        *_spaced(_period_tables(report["summary"], report["currency"])),
        Spacer(1, 8),
        *_spaced(_position_tables(report["position"], report["currency"])),
    ]


def _spaced(tables):
    """``tables`` with a space between each two."""
    spaced = []
    for table in tables:
        spaced += [Spacer(1, 8), table] if spaced else [table]
    return spaced


def _sum_table(title, rows, currency):
    """A sum as a table: a line per term, the last line the sum of those above it."""
    return figures_table(
        [[title, currency]] + [[label, money_words(v, currency)] for label, v in rows],
        [110 * mm, 50 * mm],
    )


def _period_tables(s, c):
    """The period's account, what was available at its end, and its commitments."""
    money = _sum_table(
        _("The pool's account"),
        [
            (_("Opening balance"), s["opening_balance"]),
            (_("Contributions received"), s["contributions"]),
            (_("Contributions taken back"), less(s["contributions_reversed"])),
            (_("Disbursements"), less(s["disbursements"])),
            (_("Reversals of disbursements"), s["reversals"]),
            (_("Transfer fees"), less(s["fees"])),
            (_("Exchange differences"), less(s["exchange_differences"])),
            (_("Closing balance"), s["closing_balance"]),
        ],
        c,
    )
    available = _sum_table(
        _("At the end of the period"),
        [
            (_("Closing balance"), s["closing_balance"]),
            (_("Committed to grants, not yet paid"), less(s["committed_unpaid"])),
            (_("Available for new grants"), s["available"]),
        ],
        c,
    )
    # Its last line is the net the portal shows as committed in the period, as every
    # table's last line is the sum of those above it.
    commitments = _sum_table(
        _("Commitments to grants in the period"),
        [
            (_("Committed in the period"), s["commitments"]),
            (_("Released back to the pool"), less(s["releases"])),
            (_("Committed in the period, net of releases"), s["commitments"] - s["releases"]),
        ],
        c,
    )
    return money, available, commitments


def _position_tables(p, c):
    """The pool since it opened, at the end of the period: its money, and its commitments."""
    position = _sum_table(
        _("Since the pool opened, at the end of the period"),
        [
            (pgettext("money", "Received"), p["received"]),
            (_("Committed to grants"), less(p["committed"])),
            (_("Fees"), less(p["fees"])),
            (_("Exchange differences"), less(p["exchange_differences"])),
            (_("Available"), p["available"]),
        ],
        c,
    )
    committed = _sum_table(
        _("What was committed to grants, at the end of the period"),
        [
            (_("Disbursed"), p["disbursed"]),
            (_("Not yet paid"), p["outstanding"]),
            (_("Committed to grants"), p["committed"]),
        ],
        c,
    )
    return position, committed


def _budget(report, styles):
    c = report["currency"]
    data = [[_("Category"), _("Grants"), _("Committed"), _("Paid"), _("Variance"), "%"]]
    for line in report["budget"]:
        percent = "" if line["percent"] is None else percent_words(line["percent"])
        if line["flagged"]:
            percent += "\u00a0!"  # kept beside its figure
        data.append(
            [
                row_label("category", line["label"]),
                shown_figure(line["grants"]),
                shown_figure(line["budget"], c),
                shown_figure(line["actual"], c),
                "" if line["variance"] is None else whole_units(line["variance"], c),
                percent,
            ]
        )
    return [
        Paragraph(_("Budget against actual"), styles["h2"]),
        Paragraph(
            _(
                "Grants this pool committed to in the period, by category: what was committed"
                " and what has been paid on them by the period's end (not the period's"
                " payments, which the account above gives: those may be on grants committed"
                " before). Variances of %(pct)s%% or more are marked with !.",
                pct=int(VARIANCE_FLAG * 100),
            ),
            styles["body"],
        ),
        Spacer(1, 4),
        figures_table(data, [43 * mm, 26 * mm, 28 * mm, 28 * mm, 26 * mm, 18 * mm]),
        *_explanations(report, styles),
    ]


def _explanations(report, styles):
    """Under budget against actual: each variance of 10% or more with the fund's
    explanation, or "not yet explained"."""
    parts = []
    for line in report["budget"]:
        if not line["flagged"]:
            continue
        words = line.get("explanation")
        parts += [
            Spacer(1, 3),
            Paragraph(
                _(
                    "%(line)s, %(percent)s%%: %(words)s",
                    line=escape_text(row_label("category", line["label"])),
                    percent=format_decimal(line["percent"]),
                    words=escape_text(words) if words else _("not yet explained"),
                ),
                styles["small"],
            ),
        ]
    if parts:
        parts.insert(0, Paragraph(_("Why they differ, as the fund explains it"), styles["h3"]))
    return parts


def _counted(report):
    """From the account's payments to what the figures about people count, to the cent."""
    c, n = report["currency"], report["counted"]
    return figures_table(
        [
            [_("Payments counted below"), c],
            [_("Disbursements less reversals, in the account"), money_words(n["account"], c)],
            [
                _("Recorded after the period ended: counted in the month recorded"),
                money_words(less(n["recorded_after"]), c),
            ],
            [
                _("Recorded in the period, dated before it"),
                money_words(n["recorded_before"], c),
            ],
            [_("Counted below"), money_words(n["counted"], c)],
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
                day=times.day(report["period_end"]),
            ),
            styles["body"],
        ),
    ]


def _breakdowns(report, styles):
    c = report["currency"]
    titles = {
        "category": _("By category"),
        "category_group": _("By group of categories"),
        "region": _("By region"),
        "area": _("By area"),
        "gender": _("By gender"),
        "month": _("By month of payment"),
        "quarter": _("By quarter of payment"),
        "half": _("By half-year of payment"),
        "year": _("By period of payment"),
    }
    parts = [
        PageBreak(),
        Paragraph(_("Who the pool supported"), styles["h2"]),
        Paragraph(
            _(
                "Grants paid in the period, net of reversals. Defenders and their dependants"
                " are counted apart. Counts under 5 show as \u201cfewer than 5\u201d, the"
                " dependants of fewer than 5 defenders are hidden, and other figures are"
                " hidden where they would reveal one, in this report or"
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
        *_other_funds(report, styles),
    ]
    for name, table in report["breakdowns"].items():
        title = titles.get(table.dimension, titles[name])
        data = [[title, _("Grants"), _("Defenders"), _("Dependants"), _("Amount")]]
        for row in table.rows + [table.total]:
            data.append(
                [
                    row_label(table.dimension, row.label),
                    shown_figure(row.cells["grants"]),
                    shown_figure(row.cells["defenders"]),
                    shown_figure(row.cells["dependants"]),
                    shown_figure(row.cells["amount"], c),
                ]
            )
        block = [
            Paragraph(title, styles["h3"]),
            figures_table(data, [55 * mm, 26 * mm, 26 * mm, 28 * mm, 34 * mm]),
        ]
        note = rolled_note(table)
        if note:
            block.append(Paragraph(note, styles["small"]))
        if not table.broken_down:
            block.append(
                Paragraph(
                    _("Fewer than 5 grants were paid in the period: no breakdown."),
                    styles["small"],
                )
            )
        chart = bar_chart(table, c, horizontal=name != "month")
        if chart is not None and name in ("category", "month"):
            block.append(chart)
        parts.append(KeepTogether(block))
    return parts


def _other_funds(report, styles):
    """The line on defenders other funds of the network supported too, never naming them."""
    cell = report["other_funds"]
    if cell is None:
        return []
    return [
        Spacer(1, 4),
        Paragraph(
            _(
                "Defenders the pool supported in the period whom other funds of the network"
                " supported too: %(count)s.",
                count=cell.value if cell.shown else why_hidden(cell.hidden),
            ),
            styles["body"],
        ),
    ]


def _timeliness(report, styles):
    t = report["timeliness"]
    data = [[_("Days"), _("Cases"), _("Median"), _("90th percentile"), _("Target"), _("Within")]]
    for label, m in (
        (_("From submission to decision"), t["decision"]),
        (_("From decision to first payment"), t["payment"]),
    ):
        if m["shown"]:
            data.append(
                [
                    label,
                    m["cases"],
                    days(m["median"]),
                    days(m["p90"]),
                    days(m["target"]),
                    percent_words(m["within"]),
                ]
            )
        else:
            data.append([label, why_hidden(m["hidden"]), "", "", "", ""])
    o = report["outcomes"]
    outcome_rows = [[_("From the applicants' reports"), _("Answers"), _("Share")]]
    for label, m in (
        (_("Felt safer"), o["felt_safer"]),
        (_("Could continue their work"), o["continued_work"]),
    ):
        outcome_rows.append(
            [
                label,
                m["answers"] if m["shown"] else why_hidden(m["hidden"]),
                percent_words(m["percent"]) if m["shown"] else "",
            ]
        )
    return [
        Paragraph(_("Timeliness"), styles["h2"]),
        Paragraph(
            _(
                "For the grants this pool committed to in the period, against the fund's"
                " targets, in days (a day is 24 hours). Shown where 5 cases or more count in"
                " a figure."
            ),
            styles["body"],
        ),
        Spacer(1, 4),
        figures_table(data, [62 * mm, 18 * mm, 20 * mm, 28 * mm, 18 * mm, 18 * mm], total=False),
        Paragraph(_("Outcomes"), styles["h2"]),
        figures_table(outcome_rows, [100 * mm, 30 * mm, 30 * mm], total=False),
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
        parts += [Spacer(1, 4), Paragraph(escape_text(text), styles["body"])]
    return parts


def _cover(report, styles):
    """Whose report it is, for which pool and period: the head of the first page, which
    the pool's account follows (a cover page of its own held nothing else)."""
    return [
        Spacer(1, 6 * mm),
        Paragraph(escape_text(report["fund"]), styles["h2"]),
        Paragraph(_("Report to %(donor)s", donor=escape_text(report["donor"])), styles["title"]),
        Spacer(1, 6),
        Paragraph(_("Pool: %(pool)s", pool=escape_text(report["pool"])), styles["h3"]),
        Paragraph(
            _(
                "Period: %(period)s (%(start)s to %(end)s)",
                period=period_name(parse_period(report["period"])),
                start=times.day(report["period_start"]),
                end=times.day(report["period_end"] - timedelta(days=1)),
            ),
            styles["body"],
        ),
        Paragraph(_("Currency: %(currency)s", currency=report["currency"]), styles["body"]),
        Spacer(1, 4 * mm),
        Paragraph(
            _(
                "This report counts every unit of the pool's money and names no one. Figures"
                " about people are aggregates, with small counts suppressed."
            ),
            styles["small"],
        ),
        Spacer(1, 8 * mm),
    ]


def render_pdf(report):
    """The report as PDF bytes."""
    styles = paragraph_styles()
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
        lang=str(get_locale() or "en").replace("_", "-"),
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
    document.build(story, canvasmaker=footer_canvas(generated))
    return buffer.getvalue()

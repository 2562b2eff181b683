"""The donor report's PDF pieces (ReportLab): fonts, paragraph styles, tables, bar charts,
the words for a breakdown's rows and for a hidden figure, and the footer on every page."""

import os
import re
from decimal import Decimal

from arabic_reshaper import reshape
from babel import Locale
from babel.numbers import format_currency, format_percent
from bidi import get_display
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from reportlab import rl_config
from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, Table, TableStyle

from ..core import geo
from ..core.money import code_pattern
from ..core.support import CATEGORY_LABELS, Category
from . import anonymise, rollup

_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
_FONTS = {}
#: Fonts for the letters DejaVu has not (Chinese, Japanese, Korean), tried in turn: a
#: name of a place or a quote in those scripts is drawn in the first that has its glyphs.
FALLBACK_FONTS = (("ReportCJK", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),)
_FALLBACKS = []


def report_fonts():
    """DejaVu when the system has it (every script a fund's names use), else Helvetica."""
    if not _FONTS:
        regular = os.path.join(_FONT_DIR, "DejaVuSans.ttf")
        bold = os.path.join(_FONT_DIR, "DejaVuSans-Bold.ttf")
        if os.path.exists(regular) and os.path.exists(bold):
            pdfmetrics.registerFont(TTFont("ReportSans", regular))
            pdfmetrics.registerFont(TTFont("ReportSans-Bold", bold))
            pdfmetrics.registerFontFamily(
                "ReportSans",
                normal="ReportSans",
                bold="ReportSans-Bold",
                italic="ReportSans",
                boldItalic="ReportSans-Bold",
            )
            # Charts and a fresh page start in this font too, never in a base-14 font
            # (Helvetica) that is not embedded and has no glyph beyond Latin.
            rl_config.defaultGraphicsFontName = "ReportSans"
            rl_config.canvas_basefontname = "ReportSans"
            _FONTS.update(regular="ReportSans", bold="ReportSans-Bold")
        else:
            _FONTS.update(regular="Helvetica", bold="Helvetica-Bold")
    return _FONTS


def paragraph_styles():
    fonts = report_fonts()
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


def place_label(value):
    """Where a listed grant's case is, as the donor reads it in the report's language: the
    country's name, its region's, or "not shown" (the report keeps them in English, so that
    its figures and digest are the same in every language)."""
    if value == anonymise.NOT_SHOWN:
        return _("Not shown")
    if value in geo.REGIONS:
        return str(geo.region_label(value))
    code = geo.country_code(value)
    return geo.country_name(code, str(get_locale())) if code else value


def row_label(dimension, value):
    """A breakdown row's label as a donor reads it."""
    if value == "total":
        return _("Total")
    if value == anonymise.NOT_SHOWN:
        return _("Not shown")
    if dimension == "category":
        return str(CATEGORY_LABELS[Category(value)])
    if dimension == "category_group":
        return str(rollup.GROUP_LABELS.get(value, value))
    if dimension == "area":
        return str(rollup.AREA_LABELS.get(value, value))
    if dimension == "region":
        return str(geo.region_label(value))
    if dimension == "half" and "-H" in value:
        year, half = value.split("-H")
        if half == "1":
            return _("First half of %(year)s", year=year)
        return _("Second half of %(year)s", year=year)
    if dimension == "gender":
        return {
            "woman": _("Women"),
            "man": _("Men"),
            "non_binary": _("Non-binary"),
            "undisclosed": _("Not said"),
        }[value]
    return value


def days(hours):
    """Hours as days, to a tenth of a day."""
    return format_decimal(round(hours / 24, 1), format="#,##0.0")


def level_name(level):
    """A level a table is shown at, as a donor reads it after "by"."""
    return {
        "category": _("category"),
        "category_group": _("group of categories"),
        "region": _("region"),
        "area": _("area"),
        "gender": _("gender"),
        "month": _("month"),
        "quarter": _("quarter"),
        "half": _("half-year"),
        "year": _("year"),
    }[level]


def rolled_note(table):
    """What a rolled-up table says under it, or None for a table shown as it is."""
    if not table.rolled_from:
        return None
    if not table.rows and table.dimension in ("year", "quarter"):
        return _(
            "Shown for the %(level)s as a whole: by %(finer)s, most counts would be fewer"
            " than 5 or hidden.",
            level=level_name(table.dimension),
            finer=level_name(table.rolled_from),
        )
    return _(
        "Shown by %(level)s: by %(finer)s, most counts would be fewer than 5 or hidden.",
        level=level_name(table.dimension),
        finer=level_name(table.rolled_from),
    )


def why_hidden(hidden):
    """Why a figure is not shown, as a donor reads it."""
    return _("fewer than 5") if hidden == anonymise.SMALL else _("hidden")


def shown_figure(cell, currency=None):
    """A figure, or why it is not shown. An amount hidden says so, never "fewer than 5",
    which would read as a sum under 5 of the currency."""
    if not cell.shown:
        return _("hidden") if currency else why_hidden(cell.hidden)
    if currency:
        return whole_units(cell.value, currency)
    return format_decimal(cell.value)


def whole_units(value, currency):
    """A rounded amount, whole units, written as the report's language writes amounts:
    €3,210 in English, 3 210 € in French."""
    locale = Locale.parse(str(get_locale() or "en"))
    pattern = locale.currency_formats["standard"].pattern.split(";")[0]
    return format_currency(
        value,
        currency,
        format=code_pattern(currency, locale, re.sub(r"\.0+", "", pattern)),
        currency_digits=False,
        locale=locale,
    )


def percent_words(value):
    """A percentage (64.7 for 64.7%) to one decimal at most, as the report's language writes
    one: 64.7% in English, 64,7 % in French."""
    locale = Locale.parse(str(get_locale() or "en"))
    pattern = locale.percent_formats[None].pattern.split(";")[0]
    one_decimal = pattern.replace("#0", "#0.#", 1)  # "#,##0 %": its only digit that shows
    return format_percent(Decimal(value) / 100, format=one_decimal, locale=locale)


def figures_table(data, widths, numeric_from=1, total=True):
    """A table of figures whose every cell wraps inside its column: a heading longer than
    its column (French and Spanish ones often are) goes on two lines instead of running
    over the next heading. Headings and the total in bold, figures aligned right."""
    fonts = report_fonts()
    last = len(data) - 1
    cells = [
        [
            _cell(
                value,
                bold=r == 0 or (total and r == last),
                right=c >= numeric_from,
                fonts=fonts,
            )
            for c, value in enumerate(row)
        ]
        for r, row in enumerate(data)
    ]
    style = [
        # The table sets a font around each cell even where a paragraph draws the words.
        ("FONT", (0, 0), (-1, -1), fonts["regular"], 8.5),
        ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f2f2")]),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if total:
        style.append(("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.black))
    table = Table(cells, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle(style))
    return table


_CELL_STYLES = {}


def _cell(value, bold, right, fonts):
    """One cell's words as a paragraph that wraps at its column's width."""
    key = (bold, right, fonts["regular"])
    if key not in _CELL_STYLES:
        _CELL_STYLES[key] = ParagraphStyle(
            f"cell-{int(bold)}{int(right)}",
            fontName=fonts["bold" if bold else "regular"],
            fontSize=8.5,
            leading=10.5,
            alignment=TA_RIGHT if right else TA_LEFT,
        )
    return Paragraph(escape_text(str(value)), _CELL_STYLES[key])


def less(value):
    """A figure taken away, with its minus sign (and no minus on nothing)."""
    return 0 - value


def bar_chart(table, currency, horizontal):
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
    chart.categoryAxis.categoryNames = [row_label(table.dimension, r.label)[:28] for r in rows]
    chart.categoryAxis.labels.fontName = report_fonts()["regular"]
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = report_fonts()["regular"]
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.bars[0].fillColor = colors.HexColor("#3b6ea5")
    if not horizontal:
        chart.categoryAxis.labels.angle = 30
        chart.categoryAxis.labels.boxAnchor = "ne"
    drawing.add(chart)
    return drawing


#: Letters written right to left (Hebrew, Arabic and their presentation forms).
_RIGHT_TO_LEFT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


def visual(text):
    """``text`` as the page must draw it: ReportLab lays glyphs left to right one by one,
    so Arabic letters are joined into their contextual forms first and each right-to-left
    run is put in the order the eye reads it (inside a left-to-right report)."""
    if not _RIGHT_TO_LEFT.search(text):
        return text
    return get_display(reshape(text), base_dir="L")


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback_fonts():
    """The fallback fonts this system has, registered once: (name, the letters it has)."""
    if not _FALLBACKS:
        for name, path, index in FALLBACK_FONTS:
            if os.path.exists(path):
                font = TTFont(name, path, subfontIndex=index)
                pdfmetrics.registerFont(font)
                _FALLBACKS.append((name, font.face.charToGlyph))
        _FALLBACKS.append(None)  # looked once, whatever was found
    return [found for found in _FALLBACKS if found]


def _font_for(char, has):
    """The fallback font that draws ``char``, or None where the report's own font does."""
    if ord(char) in has or char.isspace():
        return None
    for name, letters in fallback_fonts():
        if ord(char) in letters:
            return name
    return None


def escape_text(text):
    """What a person wrote, as a paragraph shows it: markup escaped, every script drawn,
    each run of letters the report's font lacks set in a fallback font that has them."""
    text = visual(text)
    regular = report_fonts()["regular"]
    if regular == "Helvetica":
        return _escape(text)
    has = pdfmetrics.getFont(regular).face.charToGlyph
    if all(ord(c) in has for c in text):
        return _escape(text)
    runs = []
    for char in text:
        face = _font_for(char, has)
        if runs and runs[-1][0] == face:
            runs[-1][1].append(char)
        else:
            runs.append((face, [char]))
    return "".join(
        _escape("".join(chars))
        if face is None
        else f'<font face="{face}">{_escape("".join(chars))}</font>'
        for face, chars in runs
    )


def footer_canvas(generated):
    """A canvas class that writes 'generated at, page x of y' on each page once it knows y."""

    class FooterCanvas(canvas.Canvas):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("initialFontName", report_fonts()["regular"])
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802 (ReportLab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(report_fonts()["regular"], 7.5)
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
